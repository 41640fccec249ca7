"""Backbones, necks and heads (one family per file), registered on import.

Heads that subclass a downstream library's base class register only when that library is
installed: mmseg for the decode heads.
"""
import importlib.util

from .backbones import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403

if importlib.util.find_spec('mmseg') is not None:
    from .decode_heads import *  # noqa: F401,F403
