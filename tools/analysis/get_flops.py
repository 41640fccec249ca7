"""Print the FLOPs and parameters of a config's model, like OpenMMLab's ``get_flops.py``.

Usage::

    python tools/analysis/get_flops.py CONFIG [--shape H [W]] [--cfg-options KEY=VALUE ...]
        [--show-table] [--show-arch]

The model is built in the library its config's ``default_scope`` names (mmpretrain, mmdet or
mmseg; the config loads ``mmvit_plugins`` through ``custom_imports``), in eval mode with SyncBN
turned into BN, and traced once on a random image by mmengine's
``mmengine.analysis.get_model_complexity_info``, with our FLOP handles
(:mod:`mmvit_plugins.utils.flops`: the compiled ELSA / neighbourhood ops and
``aten::scaled_dot_product_attention``, which mmengine alone counts as 0). As in mmengine (and
fvcore), one multiply-add counts as one FLOP: the numbers are MACs, the convention of the
papers. Ops without a handle (element-wise adds, activations, softmax, pooling other than
adaptive average pooling, ...) count 0 and are listed after the result.

What is traced, per ``default_scope``, and the default ``--shape`` (height, width), those of the
OpenMMLab tools:

* ``mmpretrain``: the whole classifier (backbone, neck, head: ``mode='tensor'`` gives the
  logits); 224 x 224. (mmpretrain's own tool counts ``extract_feat`` only, without the head.)
* ``mmdet``: ``mode='tensor'`` of the detector, as mmdet's tool; 1280 x 800 as mmdet 2.x's
  tool (mmdet 3.x reads images from the validation set instead). For two-stage detectors this
  runs the box and mask heads on every RPN proposal (up to ``test_cfg.rpn.max_per_img``, 1000),
  so the RoI heads dominate (Cascade Mask R-CNN: about 95%); the proposals are those of one
  seeded random image.
* ``mmseg``: the backbone, neck and decode head (``mode='tensor'``); the auxiliary head, used
  only in training, is removed, as mmseg's tool does; 2048 x 1024.

The input goes through the model's data preprocessor, so the traced shape may be padded (mmdet
pads to multiples of 32); it is the one printed. Bad input (a missing config, a bad shape, a
size the model rejects) gives a one-line error and exit status 1 (2 for bad arguments).
"""
import argparse
import logging
import os.path as osp
import re
import sys
import warnings
from collections import Counter
from functools import partial
from typing import Dict, List, Optional, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

# (torch, mmengine and the package are imported after the arguments are checked: bad arguments
# fail at once)
_DEFAULT_SHAPES = {'mmpretrain': (224, 224), 'mmdet': (1280, 800), 'mmseg': (2048, 1024)}
_SKIPPED = re.compile(r'Unsupported operator (\S+) encountered (\d+) time')


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line."""

    def error(self, message):
        self.exit(2, f'{self.prog}: error: {message}\n')


class _DictAction(argparse.Action):
    """``--cfg-options``: mmengine's DictAction, imported when the option is used."""

    def __call__(self, parser, namespace, values, option_string=None):
        from mmengine.config import DictAction
        DictAction(self.option_strings, self.dest)(parser, namespace, values, option_string)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = _Parser(prog='get_flops.py', description="Print a config's model FLOPs and params")
    parser.add_argument('config', help='config file (or a package-scoped name, mmdet::...)')
    parser.add_argument(
        '--shape', type=int, nargs='+', metavar='N',
        help='input size: H W, or one number for a square (default: 224 224 for classifiers, '
        '1280 800 for detectors, 2048 1024 for segmentors)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=_DictAction, metavar='KEY=VALUE',
        help='override settings of the config, e.g. model.backbone.arch=b2')
    parser.add_argument('--show-table', action='store_true', help='print the per-module table')
    parser.add_argument('--show-arch', action='store_true', help='print the model with counts')
    args = parser.parse_args(argv)
    if args.shape is not None:
        if len(args.shape) not in (1, 2) or min(args.shape) < 1:
            parser.error(f'--shape takes one or two positive integers (H W), got {args.shape}')
        args.shape = (args.shape[0], args.shape[-1])  # one number: a square
    if '::' not in args.config and not osp.isfile(args.config):
        parser.exit(1, f'{parser.prog}: error: FileNotFoundError: config file not found: '
                    f'{args.config}\n')
    return args


def build_model(cfg):
    """The config's model in eval mode (SyncBN -> BN), in its ``default_scope``'s library."""
    from mmengine.model import revert_sync_batchnorm

    from mmvit_plugins.utils.runner import build_config_model
    model, scope = build_config_model(cfg, tuple(_DEFAULT_SHAPES))
    if scope == 'mmseg' and getattr(model, 'auxiliary_head', None) is not None:
        model.auxiliary_head = None  # training only (as in mmseg's tool)
    return revert_sync_batchnorm(model).eval(), scope


def _data_sample(scope: str, shape: Tuple[int, int]):
    """An empty data sample with the image metadata the model's ``mode='tensor'`` reads."""
    meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape, scale_factor=(1.0, 1.0))
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample
        return DetDataSample(metainfo=meta)
    if scope == 'mmseg':
        from mmseg.structures import SegDataSample
        return SegDataSample(metainfo=meta)
    from mmpretrain.structures import DataSample
    return DataSample(metainfo=meta)


class _SkippedOps(logging.Filter):
    """Collects (and hides) mmengine's "unsupported operator" and "never called" warnings."""

    def __init__(self):
        super().__init__()
        self.ops: Dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        match = _SKIPPED.match(message)
        if match:
            self.ops[match.group(1)] = int(match.group(2))
            return False
        return 'were never called during the trace' not in message


def get_flops(cfg, shape: Optional[Tuple[int, int]] = None, show_table: bool = False,
              show_arch: bool = False) -> dict:
    """Count the FLOPs (MACs) and parameters of ``cfg``'s model on one random image.

    Args:
        cfg (Config): The loaded config.
        shape (tuple[int, int], optional): ``(H, W)`` of the image. Defaults to None, the
            default of the config's library.
        show_table (bool): Also return mmengine's per-module table. Defaults to False.
        show_arch (bool): Also return the model printed with counts. Defaults to False.

    Returns:
        dict: ``get_model_complexity_info``'s result plus ``scope``, ``input_shape`` (the traced
        ``(H, W)``) and ``skipped`` (op kind -> calls, for the ops counted as 0).
    """
    import torch
    from mmengine.analysis import get_model_complexity_info
    from mmengine.analysis.complexity_analysis import _DEFAULT_SUPPORTED_FLOP_OPS
    from mmengine.logging import MMLogger

    from mmvit_plugins.utils import FLOP_HANDLES, flop_handles

    model, scope = build_model(cfg)
    shape = tuple(shape or _DEFAULT_SHAPES[scope])
    torch.manual_seed(0)
    image = torch.rand(3, *shape) * 255
    data = model.data_preprocessor(
        dict(inputs=[image], data_samples=[_data_sample(scope, shape)]), False)
    inputs = data['inputs']
    model.forward = partial(model.forward, data_samples=data['data_samples'], mode='tensor')

    logger = MMLogger.get_current_instance()
    skipped = _SkippedOps()
    logger.addFilter(skipped)
    try:
        with torch.no_grad(), flop_handles():
            result = get_model_complexity_info(
                model, inputs=(inputs, ), show_table=show_table, show_arch=show_arch)
    finally:
        logger.removeFilter(skipped)
    # Both analyzers (FLOPs, activations) warn about ops they have no handle for; an op the
    # FLOP table knows was reported by the activation analyzer only.
    known = set(_DEFAULT_SUPPORTED_FLOP_OPS) | set(FLOP_HANDLES)
    result.update(
        scope=scope,
        input_shape=tuple(inputs.shape[-2:]),
        skipped=dict(Counter({k: v for k, v in skipped.ops.items() if k not in known})
                     .most_common()))
    return result


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    warnings.simplefilter('ignore')  # deprecation and tracer notes, not about the counts
    try:
        from mmengine.logging import MMLogger

        from mmvit_plugins.utils import load_config
        MMLogger.get_current_instance().setLevel(logging.WARNING)
        cfg = load_config(args.config, args.cfg_options)
        result = get_flops(cfg, args.shape, args.show_table, args.show_arch)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, AssertionError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        sys.exit(f'get_flops.py: error: {type(e).__name__}: {message}')

    if args.show_arch:
        print(result['out_arch'])
    if args.show_table:
        print(result['out_table'])
    split_line = '=' * 30
    height, width = result['input_shape']
    print(f'{split_line}\n'
          f'Compute type: direct: randomly generate a picture\n'
          f'Input shape: ({height}, {width})\n'
          f"Flops: {result['flops_str']}\n"
          f"Params: {result['params_str']}\n"
          f"Activation: {result['activations_str']}\n"
          f'{split_line}')
    print(f"FLOPs: {result['flops'] / 1e9:.3f} G multiply-adds (one MAC = one FLOP, mmengine's "
          f"convention); params: {result['params'] / 1e6:.3f} M")
    if result['skipped']:
        ops = ', '.join(f'{op} x{n}' for op, n in result['skipped'].items())
        print(f'Counted as 0 (no FLOP handle): {ops}')
    print('!!!Please be cautious if you use the results in papers. You may need to check if '
          'all ops are supported and verify that the flops computation is correct.')


if __name__ == '__main__':
    main()
