from .hrvit import HRViT, convert_hrvit

__all__ = ['HRViT', 'convert_hrvit']
