"""Print the parameter counts of configs' models (whole model, backbone, neck, heads).

Usage::

    python tools/analysis/count_params.py [CONFIG ...] [--include-demo]

Without arguments, every config in ``configs/`` (not ``_base_`` and, unless ``--include-demo``,
not ``configs/demo``). Models are built from their configs (no weights are loaded) in the
library their ``default_scope`` names. Counts are in millions of parameters (buffers excluded).
"""
import argparse
import glob
import logging
import os.path as osp
import sys
import warnings
from typing import Dict, List

from mmengine.config import Config
from mmengine.logging import MMLogger

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmvit_plugins.utils.runner import build_config_model, resolve_config_path  # noqa: E402

_SCOPES = ('mmdet', 'mmseg', 'mmpretrain')


def default_configs(include_demo: bool = False) -> List[str]:
    """The repository's configs, sorted (``_base_`` excluded)."""
    files = sorted(glob.glob(osp.join(ROOT, 'configs', '*.py')))
    if include_demo:
        files += sorted(glob.glob(osp.join(ROOT, 'configs', 'demo', '*.py')))
    return files


def count_params(config: str) -> Dict[str, float]:
    """Build the model of ``config`` and count its parameters by top-level child.

    Args:
        config (str): A config path (or ``scope::name``).

    Returns:
        dict[str, float]: ``total`` plus one entry per top-level child module (``backbone``,
        ``neck``, ``decode_head``, ...), in millions.
    """
    cfg = Config.fromfile(resolve_config_path(config))
    model, _ = build_config_model(cfg, _SCOPES)
    counts = {'total': sum(p.numel() for p in model.parameters()) / 1e6}
    for name, child in model.named_children():
        n = sum(p.numel() for p in child.parameters())
        if n:
            counts[name] = n / 1e6
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description="Print the parameter counts of configs' models")
    parser.add_argument('configs', nargs='*', help='config files (default: all in configs/)')
    parser.add_argument('--include-demo', action='store_true', help='also configs/demo/*.py')
    args = parser.parse_args(argv)
    configs = args.configs or default_configs(args.include_demo)
    warnings.simplefilter('ignore')  # deprecation notes of the libraries, not about the counts
    MMLogger.get_current_instance().setLevel(logging.WARNING)

    rows = []
    for config in configs:
        try:
            counts = count_params(config)
        except (FileNotFoundError, ValueError) as e:
            sys.exit(f'count_params.py: error: {e}')
        parts = ', '.join(f'{k} {v:.3f}' for k, v in counts.items() if k != 'total')
        rows.append((osp.relpath(config, ROOT) if osp.isfile(config) else config,
                     f"{counts['total']:.3f}", parts))
    width = max(len(r[0]) for r in rows)
    print(f"{'config':<{width}}  {'params (M)':>10}  by part (M)")
    for name, total, parts in rows:
        print(f'{name:<{width}}  {total:>10}  {parts}')


if __name__ == '__main__':
    main()
