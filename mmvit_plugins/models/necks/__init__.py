from .hrvit_cls_neck import HRViTClsNeck
from .hrvit_neck import HRViTNeck

__all__ = ['HRViTClsNeck', 'HRViTNeck']
