"""mmvit_plugins: recent vision backbones and sliding-window attention ops for OpenMMLab.

Importing the package registers all of its models in mmengine's root ``MODELS`` registry, where
mmdet, mmseg and mmpretrain configs find them (see :mod:`mmvit_plugins.registry`). Load it from
a config with ``custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)``.
"""
from . import models, ops, utils  # noqa: F401  (registers the classes)
from .version import __version__

__all__ = ['__version__', 'models', 'ops', 'utils']
