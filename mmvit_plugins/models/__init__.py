"""Backbones and necks (one family per file), registered on import."""
from .backbones import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
