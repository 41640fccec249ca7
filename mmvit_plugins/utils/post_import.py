"""Run a function once a given module has been imported (a post-import hook).

Our mmseg decode heads subclass mmseg's ``BaseDecodeHead``, and importing ``mmseg.models`` takes
about 3 s (it imports ``mmdet.models`` and ``mmpretrain.models`` on the way). Registering the
heads when ``mmseg.models`` is imported, not when ``mmvit_plugins`` is, spares that to every
process that never builds an mmseg model; an mmseg config still finds them, since mmseg's scope
imports ``mmseg.models`` before it looks a name up.
"""
import importlib.abc
import importlib.util
import sys
import threading
from typing import Callable

__all__ = ['when_imported']

_lock = threading.Lock()


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path`` until ``name`` is imported; lets the other finders find the
    module and calls ``callback`` once the module's code has run (then steps aside)."""

    def __init__(self, name: str, callback: Callable[[], object]):
        self.name = name
        self.callback = callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        with _lock:
            if self not in sys.meta_path:
                return None
            sys.meta_path.remove(self)  # one shot; the search below must not find us again
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, 'exec_module'):
            return spec
        loader, callback = spec.loader, self.callback

        class _Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                # the module keeps its own loader (for importlib.resources, inspect, pickle)
                module.__loader__ = module.__spec__.loader = loader
                loader.exec_module(module)
                callback()

        spec.loader = _Loader()
        return spec


def when_imported(name: str, callback: Callable[[], object]) -> None:
    """Call ``callback()`` right after module ``name`` is first imported, or now if it is.

    If the import of ``name`` fails, ``callback`` is not called. An exception from ``callback``
    propagates from that import.

    Args:
        name (str): Full dotted name of the module, e.g. ``'mmseg.models'``.
        callback (callable): Called with no arguments, once.
    """
    if name in sys.modules:
        callback()
        return
    sys.meta_path.insert(0, _PostImportFinder(name, callback))
