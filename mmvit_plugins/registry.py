"""Where mmvit_plugins registers its models.

mmdet, mmseg and mmpretrain each build models from a child of mmengine's root ``MODELS``
registry, and a child that does not know a name looks it up in the root. So every class of
ours is registered once, in the root registry, and ``type='HRViT'`` then resolves from a
config of any of the three (whichever are installed) without importing them here.

The price is that our names must be unique across all three libraries: on a clash the child's
own class would win silently. ``tests/test_registry.py`` checks every name we register against
the registries of the installed libraries.
"""
from mmengine.registry import MODELS

__all__ = ['MODELS']
