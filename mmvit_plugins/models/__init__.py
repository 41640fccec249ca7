"""Backbones, necks and heads (one family per file), registered on import.

Heads that subclass a downstream library's base class register only when that library is
installed, and only once its models are imported: the mmseg decode heads when ``mmseg.models``
is (which an mmseg config's scope, ``mmseg.utils.register_all_modules`` or any import of mmseg's
models does before a name is looked up), so that ``import mmvit_plugins`` does not pay the 3 s
of ``mmseg.models`` in processes that build no mmseg model. ``from mmvit_plugins.models import
HRViTSegformerHead`` imports them on demand.
"""
import importlib
import importlib.util

from ..utils.post_import import when_imported
from .backbones import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403

_DECODE_HEADS = f'{__name__}.decode_heads'
_HAS_MMSEG = importlib.util.find_spec('mmseg') is not None
if _HAS_MMSEG:
    when_imported('mmseg.models', lambda: importlib.import_module(_DECODE_HEADS))


def __getattr__(name):
    """``mmvit_plugins.models.HRViTSegformerHead`` (and the ``decode_heads`` module): imported
    on first use."""
    if _HAS_MMSEG and name in ('decode_heads', 'HRViTSegformerHead'):
        module = importlib.import_module(_DECODE_HEADS)
        return module if name == 'decode_heads' else getattr(module, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
