from .hrvit import HRViT

__all__ = ['HRViT']
