"""Resolve ``_base_ = 'mmdet::...'`` config bases from a per-process index of the package's zoo.

mmengine finds the file of an external base (``'<package>::<dir>/<name>.py'``) by loading the
package's whole model index, ``.mim/model-index.yml`` and every metafile it imports (for mmdet
about 75 YAML files, 0.3-0.5 s of one core), and it does so again for every such base of every
config it reads: most of the time ``Config.fromfile`` spends on one of our configs. Here each
package's index is read once per process (again when its ``model-index.yml`` changes); the
answers, and the error for a name it does not hold, are mmengine's.
"""
import os
import os.path as osp
from typing import Dict, Tuple

from mmengine.config import utils as config_utils
from mmengine.fileio import load

__all__ = ['index_external_configs']

_indexes: Dict[str, Tuple[float, dict]] = {}  # package path -> (index mtime, name -> model)


def _package_index(package_path: str) -> dict:
    """Config name (``'<dir>/<name>'``, no ``.py``, as mmengine asks) -> the first model of
    the package's metafiles with that config, as mmengine picks it."""
    index_path = osp.join(package_path, '.mim', 'model-index.yml')
    mtime = os.stat(index_path).st_mtime
    cached = _indexes.get(package_path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    models: dict = {}
    for metafile in load(index_path)['Import']:
        for model in load(osp.join(package_path, '.mim', metafile))['Models']:
            if 'Config' in model:
                models.setdefault(model['Config'].partition('/')[-1], model)
    _indexes[package_path] = (mtime, models)
    return models


def _cached_metainfo(package_path: str, cfg_path: str) -> dict:
    try:
        models = _package_index(package_path)
    except (OSError, KeyError, TypeError):  # no or an odd index: mmengine reports it
        return _cached_metainfo.original(package_path, cfg_path)
    if cfg_path not in models:
        # mmengine's miss, word for word. Its config parser catches it and takes the base from
        # the package's .mim/configs: the path of every '<package>::_base_/...' base, and of
        # every zoo config too (mmengine asks without '.py', its index keys end in '.py').
        raise ValueError(f'Expected configs: {models.keys()}, but got {cfg_path}')
    return dict(models[cfg_path])


def index_external_configs() -> None:
    """Make mmengine look external config bases up in an index read once per package and
    process (see the module's docstring). Idempotent; the answers are mmengine's."""
    if config_utils._get_cfg_metainfo is not _cached_metainfo:
        _cached_metainfo.original = config_utils._get_cfg_metainfo
        config_utils._get_cfg_metainfo = _cached_metainfo
