from .elsa_swin import ELSASwin, convert_elsa_swin
from .hrvit import HRViT, convert_hrvit

__all__ = ['ELSASwin', 'HRViT', 'convert_elsa_swin', 'convert_hrvit']
