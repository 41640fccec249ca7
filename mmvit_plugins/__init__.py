"""mmvit_plugins: recent vision backbones and sliding-window attention ops for OpenMMLab.

Importing the package registers all of its models in mmengine's root ``MODELS`` registry, where
mmdet, mmseg and mmpretrain configs find them (see :mod:`mmvit_plugins.registry`); the mmseg
decode heads as soon as ``mmseg.models`` is imported (:mod:`mmvit_plugins.models`). Load it from
a config with ``custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)``.
Importing it also lets ``torch.load(weights_only=True)`` read mmengine's checkpoints
(:func:`mmvit_plugins.utils.allow_mmengine_checkpoints`), and makes mmengine read each package's
model index once per process for ``'mmdet::'``-style config bases
(:func:`mmvit_plugins.utils.index_external_configs`).
"""
from . import models, ops, utils  # noqa: F401  (registers the classes)
from .version import __version__

# Checkpoints that mmengine writes (ours and the libraries') hold a few mmengine and numpy
# objects that torch.load(weights_only=True) refuses; allow-list exactly those, so that the
# libraries' own APIs (init_detector, DetInferencer, MMSegInferencer, load_from, ...) load them
# as soon as a config's custom_imports has imported this package. Nothing else is allowed.
utils.allow_mmengine_checkpoints()
# Config.fromfile with 'mmdet::...' bases: each package's model index read once, not per base.
utils.index_external_configs()

__all__ = ['__version__', 'models', 'ops', 'utils']
