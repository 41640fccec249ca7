"""Check, before a run starts, that the files a config's datasets read exist.

Without it, a missing data set surfaces minutes later as a traceback from deep inside a dataset
class (or, for mmseg, as an empty data set and a sampler error). ``tools/train.py`` and
``tools/test.py`` call :func:`check_data` and print its message instead.
"""
import glob
import os.path as osp
from typing import Iterable, List

from mmengine.config import Config

__all__ = ['missing_data_paths', 'check_data']

# What each standard layout needs, for the error message.
_LAYOUT_HINTS = {
    'coco': 'COCO in the mmdet layout: annotations/instances_{train,val}2017.json, train2017/, '
            'val2017/',
    'ade': 'ADE20K in the mmseg layout: images/{training,validation}/*.jpg, '
           'annotations/{training,validation}/*.png',
    'cityscapes': 'Cityscapes in the mmseg layout: leftImg8bit/{train,val}/, gtFine/{train,val}/ '
                  '(labelTrainIds made by mmseg\'s tools/dataset_converters/cityscapes.py)',
    'imagenet': 'ImageNet in the mmpretrain layout: train/, val/ (and meta/ for annotation files)',
}


def _is_local(path: str) -> bool:
    return '://' not in path


def _dataset_paths(dataset: dict) -> List[str]:
    """The local files and directories a dataset config reads (wrappers are unwrapped)."""
    if not isinstance(dataset, dict):
        return []
    if 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset, ...
        return _dataset_paths(dataset['dataset'])
    if 'datasets' in dataset:  # ConcatDataset
        return [p for d in dataset['datasets'] for p in _dataset_paths(d)]
    data_root = dataset.get('data_root') or ''
    paths = []
    ann_file = dataset.get('ann_file') or ''
    if ann_file:
        paths.append(osp.join(data_root, ann_file))
    prefix = dataset.get('data_prefix') or {}
    if isinstance(prefix, str):
        prefix = {'img': prefix}
    for value in prefix.values():
        if isinstance(value, str) and value:
            paths.append(osp.join(data_root, value))
    if not paths and data_root:
        paths.append(data_root)
    return [p for p in paths if _is_local(p)]


def missing_data_paths(cfg: Config, loaders: Iterable[str]) -> List[str]:
    """The data paths of ``cfg``'s ``loaders`` (e.g. ``'train_dataloader'``) that do not exist.

    A directory counts as missing when it is absent or empty.

    Args:
        cfg (Config): The config.
        loaders (Iterable[str]): Names of the dataloader entries to check; absent ones are
            skipped.

    Returns:
        list[str]: Missing paths, in config order, without duplicates.
    """
    missing = []
    for name in loaders:
        loader = cfg.get(name)
        if not loader:
            continue
        for path in _dataset_paths(loader.get('dataset')):
            exists = osp.isfile(path) or (osp.isdir(path) and bool(glob.glob(osp.join(path, '*'))))
            if not exists and path not in missing:
                missing.append(path)
    return missing


def check_data(cfg: Config, loaders: Iterable[str]) -> None:
    """Raise a clear ``FileNotFoundError`` if the data of ``cfg``'s ``loaders`` is missing.

    The message names the missing files, the expected layout, and how to run without the data
    (``make demo``, or the config's demo variant in ``configs/demo/``).

    Args:
        cfg (Config): The config.
        loaders (Iterable[str]): Dataloader entries to check, e.g.
            ``('train_dataloader', 'val_dataloader')``.

    Raises:
        FileNotFoundError: If a path is missing.
    """
    missing = missing_data_paths(cfg, loaders)
    if not missing:
        return
    shown = ', '.join(missing[:4]) + (f' (and {len(missing) - 4} more)' if len(missing) > 4 else '')
    hints = [hint for key, hint in _LAYOUT_HINTS.items() if any(key in p.lower() for p in missing)]
    name = osp.splitext(osp.basename(cfg.filename or ''))[0]
    demo = osp.join(osp.dirname(cfg.filename or ''), 'demo', f'{name}_demo.py')
    if name and osp.isfile(demo):
        demo_hint = f'or train this model on demo data: python tools/train.py {osp.relpath(demo)}'
    else:
        demo_hint = 'or a config of configs/demo/ (see configs/README.md)'
    raise FileNotFoundError(
        f'data not found: {shown}. Expected {"; ".join(hints) or "the files above"}. '
        'Put the data set there (a symlink will do) or point the config at it with '
        '--cfg-options, e.g. train_dataloader.dataset.data_root=PATH. '
        f'To try the package without the data set: make demo (bundled demo data), {demo_hint}')
