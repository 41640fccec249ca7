from .hrvit_cls_neck import HRViTClsNeck

__all__ = ['HRViTClsNeck']
