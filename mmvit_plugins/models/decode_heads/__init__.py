"""Decode heads for mmsegmentation (registered only when mmseg is installed)."""
from .hrvit_segformer_head import HRViTSegformerHead

__all__ = ['HRViTSegformerHead']
