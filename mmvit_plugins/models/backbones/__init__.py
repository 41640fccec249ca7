from .cloformer import CloFormer, convert_cloformer
from .container import Container, convert_container
from .elsa_swin import ELSASwin, convert_elsa_swin
from .hrvit import HRViT, convert_hrvit
from .maformer import MAFormer

__all__ = ['CloFormer', 'Container', 'ELSASwin', 'HRViT', 'MAFormer', 'convert_cloformer',
           'convert_container', 'convert_elsa_swin', 'convert_hrvit']
