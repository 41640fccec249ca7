"""Export a backbone or a whole mmpretrain classifier of a config to ONNX.

Usage::

    python tools/deployment/pytorch2onnx.py CONFIG [--checkpoint CKPT] [--shape H W]
        [--dynamic] [--output FILE] [--opset N] [--backbone-only] [--verify] [--no-optimize]

What is exported:

* an mmpretrain classifier config (``configs/cls_*_in1k.py``): the whole ``ImageClassifier``,
  image ``input [N, 3, H, W]`` to ``logits [N, num_classes]`` (before the softmax). The input is
  the normalised image, as after the config's ``data_preprocessor`` (its mean and std are
  printed); the normalisation itself is not in the graph.
* ``--backbone-only`` (any config: mmpretrain, mmdet or mmseg): the backbone, ``input`` to its
  feature maps ``out0 .. outN`` (NCHW, one per ``out_indices`` entry).
* Not supported: whole detectors and segmentors (necks, heads, box decoding, NMS, resizing of
  the masks). Export their backbone with ``--backbone-only``; for whole models use mmdeploy.

The exporter is torch's own (``torch.onnx.export(dynamo=True)``: ``torch.export``, then the
translation to ONNX by onnxscript, then its optimiser). Four things are arranged for it:

* our compiled ops (ELSA aggregation, neighbourhood attention) are not ONNX operators: during
  the export they trace their pure-PyTorch references (``mmvit_plugins.ops._ext.use_ext``),
  which export as standard ONNX operators, so the file runs on any ONNX runtime without our
  extension;
* ``F.scaled_dot_product_attention`` is traced as matmul / softmax / matmul
  (:func:`sdpa_as_matmuls`; torch 2.14 fails on ELSA-Swin's masked window attention);
* integer divisions of sizes are floored (:func:`sym_floordiv`; torch 2.14 truncates them, which
  breaks ceil divisions such as HRViT's for sizes that are not multiples of the stride);
* with ``--dynamic``, adaptive average pooling to a fixed grid computes its bins from the input
  size (:func:`adaptive_pool_from_sizes`; torch 2.14 keeps the traced size's bins, which is
  silently wrong at other sizes: MAFormer's token grid).

``--dynamic`` makes the batch, height and width dynamic (the export traces a batch of 2);
without it the file takes exactly ``1 x 3 x H x W``. Shape arithmetic stays symbolic, but where
a model branches on sizes in Python the file keeps the traced size's branch, so it holds only
for sizes that take the same branches. The default traced size of ``--dynamic`` is 232 x 232:

* padding: HRViT, ELSA-Swin and MAFormer pad a map only when it is not a multiple of the
  window or stripe width; padding by 0 gives the same numbers, so a trace at which every stage
  pads holds at every size. 232 x 232 is one for all of them (224 x 224 is not: its stride-32
  map is 7 x 7, its stride-8 map even);
* ELSA-Swin shifts its stage-4 windows only where that map is larger than 7 on a side: a
  232 x 232 trace holds for inputs larger than 224 on at least one side and is silently wrong
  at 224 x 224 and below (export ELSA-Swin classifiers at a fixed size);
* MAFormer pools its stage-1/2 maps to the token grid (``gld_grid``, 56 x 56 and 28 x 28 by
  default) when larger and interpolates when smaller: a 232 x 232 trace holds for inputs of at
  least 224 on both sides;
* Container and CloFormer have no such branches.

The tool prints a note for ELSA-Swin and MAFormer (``SIZE_BRANCHES``). Check a dynamic file
with ``--verify``. A dynamic export takes much longer than a fixed one (symbolic shape
analysis): minutes for ELSA-Swin and HRViT.

``--verify`` runs the file with onnxruntime (CPU) on random inputs and prints the largest
relative error against PyTorch (which runs the compiled ops), ``max |onnx - torch| / max |torch|``
over all outputs; with ``--dynamic`` it also checks a second size, ``H + 35 x W + 51`` (odd,
non-square). It exits with 1 above ``--tolerance`` (default 1e-4).

Needs ``requirements/deploy.txt`` (onnx, onnxscript for torch's exporter, onnxruntime).
"""
import argparse
import importlib
import logging
import operator
import os
import os.path as osp
import sys
import time
import warnings
from contextlib import contextmanager, nullcontext
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

# setuptools' notice about mmengine's use of pkg_resources: noise in front of every message
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

PROG = 'pytorch2onnx.py'
# The default traced size of a --dynamic export: every family pads every stage at it (HRViT:
# odd stride-8 maps for its width-2 stripes, stride-16/32 maps of 15 and 8 for width 7;
# MAFormer: 58 and 29 for its 7 x 7 windows; ELSA-Swin: 8 at stride 32 for its 7 x 7 windows).
DYNAMIC_TRACE_SHAPE = (232, 232)
# The other size branches a --dynamic file freezes at the traced size's side (checked: a
# 232-traced tiny ELSA-Swin is off by 0.13 relative at 224 x 224 and 64 x 64 and right at
# 160 x 300; a 232-traced tiny MAFormer fails in onnxruntime at 200 x 200).
SIZE_BRANCHES = {
    'ELSASwin': 'ELSA-Swin shifts its stage-4 windows only where that map is larger than 7 x 7, '
                'i.e. for inputs larger than 224 on a side',
    'MAFormer': 'MAFormer pools its stage-1/2 maps to gld_grid where they are larger and '
                'interpolates where smaller (inputs of 4 x gld_grid[0], 224 x 224 by default)',
}
_SCOPES = ('mmdet', 'mmseg', 'mmpretrain')
_DEPLOY_HINT = 'pip install -r requirements/deploy.txt'


class ExportError(Exception):
    """A bad argument or input file: reported as one line, exit status 1."""


class ClassifierLogits(nn.Module):
    """An mmpretrain ``ImageClassifier`` as ``input [N, 3, H, W] -> logits [N, classes]``."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x, mode='tensor')


def _require(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ExportError(f'{module} is not installed ({e}): {_DEPLOY_HINT}') from None


def build_model(config: str, backbone_only: bool = False) -> Tuple[nn.Module, dict]:
    """Build the model of ``config`` to export (no weights are loaded; eval mode).

    Args:
        config (str): a config path (or ``scope::name``).
        backbone_only (bool): only the backbone. Defaults to False.

    Returns:
        tuple[nn.Module, dict]: the module to export and facts for the log (``scope``,
        ``what``, and ``mean`` / ``std`` of a classifier's data preprocessor).

    Raises:
        ExportError: the config is missing, of an unknown scope, or a whole detector or
            segmentor was asked for.
    """
    from mmengine.registry import DefaultScope

    from mmvit_plugins.utils import load_config
    try:
        cfg = load_config(config)
    except FileNotFoundError as e:
        raise ExportError(str(e)) from None
    scope = cfg.get('default_scope')
    if scope not in _SCOPES:
        raise ExportError(f'{config}: default_scope must be one of {_SCOPES}, got {scope!r}')
    model_cfg = cfg.get('model')
    if not model_cfg or not model_cfg.get('backbone'):
        raise ExportError(f'{config}: the config has no model.backbone')
    if scope != 'mmpretrain' and not backbone_only:
        kind = 'detectors' if scope == 'mmdet' else 'segmentors'
        raise ExportError(f'{config}: exporting whole {scope} {kind} is not supported (heads, '
                          'post-processing); export the backbone with --backbone-only')
    importlib.import_module('mmvit_plugins')
    importlib.import_module(f'{scope}.models')
    registry = importlib.import_module(f'{scope}.registry').MODELS
    info = dict(scope=scope, backbone=str(model_cfg.backbone.type).split('.')[-1])
    with DefaultScope.overwrite_default_scope(scope):
        if backbone_only:
            model = registry.build(model_cfg.backbone)
            info['what'] = f'backbone {model_cfg.backbone.type}'
        else:
            if model_cfg.get('type') != 'ImageClassifier':
                raise ExportError(f'{config}: only ImageClassifier models are exported whole, '
                                  f'got {model_cfg.get("type")!r}; try --backbone-only')
            classifier = registry.build(model_cfg)
            model = ClassifierLogits(classifier)
            info['what'] = f'ImageClassifier with backbone {model_cfg.backbone.type}'
            pre = model_cfg.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
            info.update(mean=pre.get('mean'), std=pre.get('std'), to_rgb=pre.get('to_rgb'))
    return model.eval(), info


def load_weights(model: nn.Module, checkpoint: str, backbone_only: bool) -> int:
    """Load ``checkpoint`` into ``model`` strictly (a one-line error on any mismatch).

    Reads the file with ``torch.load(weights_only=True)`` (plus the few classes mmengine's own
    checkpoints pickle). Takes ``state_dict`` when present. For a backbone, a checkpoint of a
    whole model (keys ``backbone.*``) gives its backbone part; a bare backbone state dict loads
    as it is.

    Returns:
        int: the number of tensors loaded.
    """
    from mmvit_plugins.utils import allow_mmengine_checkpoints
    if not osp.isfile(checkpoint):
        raise ExportError(f'checkpoint not found: {checkpoint}')
    allow_mmengine_checkpoints()
    try:
        ckpt = torch.load(checkpoint, map_location='cpu', weights_only=True)
    except Exception as e:  # not a torch file, or pickled objects weights_only refuses
        first = str(e).strip().splitlines()[0] if str(e).strip() else ''
        raise ExportError(f'cannot read checkpoint {checkpoint}: {type(e).__name__}: '
                          f'{first}') from None
    state_dict = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state_dict, dict):
        raise ExportError(f'{checkpoint} holds a {type(ckpt).__name__}, not a state dict')
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                  for k, v in state_dict.items()}
    target = model
    if backbone_only:
        if any(k.startswith('backbone.') for k in state_dict):
            state_dict = {k[len('backbone.'):]: v for k, v in state_dict.items()
                          if k.startswith('backbone.')}
    else:
        target = model.classifier
    missing, unexpected = _mismatch(target, state_dict)
    if missing or unexpected:
        parts = [f'{len(keys)} {what} (e.g. {", ".join(keys[:3])})'
                 for what, keys in (('missing', missing), ('unexpected', unexpected)) if keys]
        raise ExportError(f'checkpoint {checkpoint} does not fit the model: '
                          + '; '.join(parts))
    try:
        target.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:  # shape mismatches
        lines = [ln.strip() for ln in str(e).splitlines() if 'size mismatch' in ln]
        raise ExportError(f'checkpoint {checkpoint} does not fit the model: '
                          f'{lines[0] if lines else str(e).splitlines()[0]}') from None
    return len(state_dict)


def _mismatch(model: nn.Module, state_dict: dict) -> Tuple[List[str], List[str]]:
    expected = set(model.state_dict())
    return sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)


@contextmanager
def sdpa_as_matmuls():
    """Inside, ``F.scaled_dot_product_attention`` runs as ``softmax(q k^T * scale + mask) v``.

    A work-around for torch 2.14's ONNX exporter, which fails on ELSA-Swin's masked window
    attention: in its decomposition pass the ``reshape`` after the attention has become a
    ``view`` that the strides it now derives for the attention's output do not allow ("Cannot
    view a tensor with shape torch.Size([1, 49, 4, 32]) and strides (6272, 32, 1568, 1) as a
    tensor with shape (1, 49, 128)"), and it fails to translate an attention with a 2-D float
    mask. The explicit form exports as MatMul / Softmax / MatMul and computes the same numbers
    (eval mode: no dropout). Calls with dropout, ``is_causal`` or ``enable_gqa`` keep the
    original function.
    """
    original = F.scaled_dot_product_attention

    def sdpa(q, k, v, attn_mask=None, dropout_p=0., is_causal=False, scale=None,
             enable_gqa=False):
        if dropout_p or is_causal or enable_gqa:
            return original(q, k, v, attn_mask, dropout_p, is_causal, scale=scale,
                            enable_gqa=enable_gqa)
        scale = q.shape[-1]**-0.5 if scale is None else scale
        logits = (q * scale) @ k.transpose(-2, -1)  # [..., L, S]
        if attn_mask is not None:
            logits = logits.masked_fill(~attn_mask, float('-inf')) \
                if attn_mask.dtype == torch.bool else logits + attn_mask
        return logits.softmax(dim=-1) @ v  # [..., L, Ev]

    F.scaled_dot_product_attention = sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def _adaptive_mean(x: torch.Tensor, dim: int, out: int) -> torch.Tensor:
    """Adaptive average pooling of ``x`` along ``dim`` to ``out`` bins, from symbolic sizes.

    Bin ``i`` averages ``[floor(i * n / out), ceil((i + 1) * n / out))`` of the ``n`` inputs, as
    PyTorch's adaptive pooling; the sums are differences of a cumulative sum.
    """
    n = x.shape[dim]
    i = torch.arange(out, device=x.device)
    start = (i * n) // out
    end = ((i + 1) * n + out - 1) // out
    cs = torch.cat([torch.zeros_like(x.narrow(dim, 0, 1)), x.cumsum(dim)], dim)  # n + 1 along dim
    sums = cs.index_select(dim, end) - cs.index_select(dim, start)
    shape = [1] * x.dim()
    shape[dim] = out
    return sums / (end - start).to(x.dtype).view(shape)


@contextmanager
def adaptive_pool_from_sizes():
    """Inside, ``F.adaptive_avg_pool2d`` to outputs other than 1 x 1 computes its bins from the
    input's (symbolic) size.

    A work-around for torch 2.14's ONNX exporter: with a dynamic input size it exports
    ``adaptive_avg_pool2d(x, (6, 6))`` with the bins of the traced size, which is silently
    wrong at other sizes (relative error 0.77 for a 25 x 29 input after a 16 x 16 trace; MAFormer's
    token grid). This form (:func:`_adaptive_mean` per axis) exports as CumSum / Gather / Div.
    Global pooling (output 1 x 1) keeps the original.
    """
    original = F.adaptive_avg_pool2d

    def pool(x, output_size):
        size = (output_size, output_size) if isinstance(output_size, int) else output_size
        if tuple(size) == (1, 1) or x.dim() not in (3, 4):
            return original(x, output_size)
        for dim, out in zip((-2, -1), size):
            if out is not None:
                x = _adaptive_mean(x, dim, out)
        return x

    F.adaptive_avg_pool2d = pool
    try:
        yield
    finally:
        F.adaptive_avg_pool2d = original


def sym_floordiv(a, b):
    """ONNX for ``a // b`` on sizes (``operator.floordiv`` in the exported graph), floored.

    torch 2.14's exporter (onnxscript's ``operator_floordiv``) emits a bare integer ``Div``,
    which truncates towards zero, so ceil divisions written ``-(-H // s)`` (HRViT's sizes)
    come out one too small whenever ``H`` is not a multiple of ``s``. This subtracts 1 where
    the remainder is nonzero and the signs differ, as Python's ``//`` does.
    """
    import onnx
    from onnxscript import opset18 as op
    inexact = op.Not(op.Equal(op.Mod(a, b), 0))
    signs_differ = op.Not(op.Equal(op.Less(a, 0), op.Less(b, 0)))
    return op.Sub(op.Div(a, b), op.Cast(op.And(inexact, signs_differ), to=onnx.TensorProto.INT64))


def export_onnx(model: nn.Module,
                output: str,
                shape: Sequence[int] = (224, 224),
                dynamic: bool = False,
                opset: Optional[int] = None,
                output_names: Optional[Sequence[str]] = None,
                optimize: bool = True) -> List[str]:
    """Export ``model`` (image in, a tensor or a tuple of tensors out) with torch's exporter.

    Uses ``torch.onnx.export(dynamo=True)``: ``torch.export`` traces the model with symbolic
    sizes (``--dynamic``: batch, height, width), so shape arithmetic such as window padding
    stays symbolic. The weights are stored inside the file. Attention is traced as explicit
    matmuls (:func:`sdpa_as_matmuls`), our ops as their references (``use_ext``), size
    divisions as floor divisions (:func:`sym_floordiv`) and, for ``dynamic``, adaptive pooling
    from the symbolic sizes (:func:`adaptive_pool_from_sizes`).

    Args:
        model (nn.Module): in eval mode.
        output (str): the ``.onnx`` file to write.
        shape (Sequence[int]): the traced ``(H, W)``. Defaults to ``(224, 224)``.
        dynamic (bool): dynamic batch, height and width. Defaults to False.
        opset (int, optional): the ONNX opset. Defaults to None (torch's default).
        output_names (Sequence[str], optional): defaults to ``out0 .. outN``.
        optimize (bool): run onnxscript's graph optimiser (constant folding, pattern
            rewrites) on the translated graph. Defaults to True. Its pattern matcher is a large
            part of the export time of a deep graph (about 10 of 24 s for the tests' tiny HRViT
            on one core); without it the file computes the same, in more nodes.

    Returns:
        list[str]: the output names.
    """
    _require('onnx')
    _require('onnxscript')
    x = torch.randn(2 if dynamic else 1, 3, *shape)  # batch 2: a batch of 1 would specialise
    if output_names is None:
        with torch.no_grad():
            out = model(x[:1])
        n = len(out) if isinstance(out, (tuple, list)) else 1
        output_names = [f'out{i}' for i in range(n)]
    dynamic_shapes = ({0: 'batch', 2: 'height', 3: 'width'}, ) if dynamic else None
    with warnings.catch_warnings(), sdpa_as_matmuls(), \
            adaptive_pool_from_sizes() if dynamic else nullcontext():
        warnings.simplefilter('ignore')  # exporter notes (e.g. opset conversion) are not ours
        torch.onnx.export(
            model, (x, ),
            output,
            dynamo=True,
            input_names=['input'],
            output_names=list(output_names),
            opset_version=opset,
            dynamic_shapes=dynamic_shapes,
            external_data=False,
            custom_translation_table={operator.floordiv: sym_floordiv},
            optimize=optimize,
            verbose=False)
    return list(output_names)


def max_rel_error(onnx_outs: Sequence, torch_outs: Sequence[torch.Tensor]) -> float:
    """``max |onnx - torch| / max |torch|`` per output, the largest over all outputs."""
    errors = []
    for a, b in zip(onnx_outs, torch_outs):
        a = torch.from_numpy(a)
        if a.shape != b.shape:
            raise ExportError(f'onnxruntime gave shape {tuple(a.shape)}, PyTorch '
                              f'{tuple(b.shape)}')
        errors.append(float((a - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-12)))
    return max(errors)


def verify_onnx(model: nn.Module, path: str, sizes: Sequence[Tuple[int, int, int]],
                seed: int = 0) -> List[Tuple[Tuple[int, ...], float]]:
    """Run ``path`` with onnxruntime (CPU) and ``model`` on the same random inputs.

    Args:
        model (nn.Module): the exported module (PyTorch runs the compiled ops).
        path (str): the ``.onnx`` file.
        sizes (Sequence[tuple[int, int, int]]): ``(N, H, W)`` of each check.
        seed (int): seed of the inputs. Defaults to 0.

    Returns:
        list[tuple[tuple, float]]: the input shape and :func:`max_rel_error` of each check.
    """
    ort = _require('onnxruntime')
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    gen = torch.Generator().manual_seed(seed)
    results = []
    for n, h, w in sizes:
        x = torch.randn(n, 3, h, w, generator=gen)
        with torch.no_grad():
            ref = model(x)
        ref = list(ref) if isinstance(ref, (tuple, list)) else [ref]
        try:
            outs = session.run(None, {name: x.numpy()})
        except Exception as e:  # onnxruntime's Fail / InvalidArgument: not an input error
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportError(
                f'onnxruntime failed on a {"x".join(map(str, x.shape))} input ({first[:300]}); '
                'where a model branches on sizes in Python, a --dynamic file holds only for '
                'sizes that take the traced size\'s branches: trace at a size where every '
                'stage pads, or export at a fixed --shape') from None
        if len(outs) != len(ref):
            raise ExportError(f'onnxruntime gave {len(outs)} outputs, PyTorch {len(ref)}')
        results.append((tuple(x.shape), max_rel_error(outs, ref)))
    return results


def second_size(h: int, w: int) -> Tuple[int, int]:
    """The second check size of a dynamic export: larger than the traced one, not square, and
    (from an even traced size) odd on both sides, so strided maps round up."""
    return h + 35, w + 51


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description='Export a backbone or an mmpretrain classifier to ONNX')
    parser.add_argument('config', help='config file (mmpretrain; mmdet/mmseg with '
                        '--backbone-only)')
    parser.add_argument('--checkpoint', help='weights to load (default: random init)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width (the traced ones with --dynamic); '
                        'default: 224 224, with --dynamic 232 232 (see the module docstring)')
    parser.add_argument('--dynamic', action='store_true',
                        help='dynamic batch, height and width')
    parser.add_argument('--output', help='the .onnx file (default: work_dirs/onnx/'
                        '<config name>[_backbone].onnx)')
    parser.add_argument('--opset', type=int, help="ONNX opset (default: torch's)")
    parser.add_argument('--backbone-only', action='store_true', help='export the backbone')
    parser.add_argument('--verify', action='store_true',
                        help='compare onnxruntime (CPU) with PyTorch on random inputs')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='--verify fails above this max relative error (default: 1e-4)')
    parser.add_argument('--no-optimize', dest='optimize', action='store_false',
                        help="skip onnxscript's graph optimiser: a faster export of the same "
                        'computation in more nodes')
    args = parser.parse_args(argv)
    if args.shape is None:
        args.shape = DYNAMIC_TRACE_SHAPE if args.dynamic else (224, 224)
    if min(args.shape) < 1:
        parser.error(f'--shape must be positive, got {args.shape[0]} {args.shape[1]}')
    if args.opset is not None and not 7 <= args.opset <= 23:
        parser.error(f'--opset must be within 7..23, got {args.opset}')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    warnings.simplefilter('ignore')  # library deprecation notes are not about the export
    logging.getLogger('torch.onnx').setLevel(logging.ERROR)
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    try:
        for module in ('onnx', 'onnxscript') + (('onnxruntime', ) if args.verify else ()):
            _require(module)
        model, info = build_model(args.config, args.backbone_only)
        loaded = None
        if args.checkpoint:
            loaded = load_weights(model, args.checkpoint, args.backbone_only)
        output = args.output or osp.join(
            'work_dirs', 'onnx', osp.splitext(osp.basename(args.config.split('::')[-1]))[0]
            + ('_backbone' if args.backbone_only else '') + '.onnx')
        if osp.dirname(output):
            os.makedirs(osp.dirname(output), exist_ok=True)
        h, w = args.shape
        start = time.perf_counter()
        names = export_onnx(model, output, (h, w), args.dynamic, args.opset,
                            None if args.backbone_only else ['logits'], args.optimize)
        took = time.perf_counter() - start
        onnx = _require('onnx')
        opset = next((o.version for o in onnx.load(output, load_external_data=False).opset_import
                      if o.domain in ('', 'ai.onnx')), None)
        weights = (f'{loaded} tensors from {args.checkpoint}' if loaded is not None
                   else 'random init (no --checkpoint)')
        shape = f"{'N' if args.dynamic else 1} x 3 x {'H' if args.dynamic else h} x " \
                f"{'W' if args.dynamic else w}"
        print(f'wrote {output} ({osp.getsize(output) / 2**20:.1f} MiB, opset {opset}, '
              f'{took:.0f} s): {info["what"]} ({info["scope"]}), weights: {weights}')
        print(f'input: input [{shape}] float32; outputs: {", ".join(names)}')
        if args.dynamic and info.get('backbone') in SIZE_BRANCHES:
            print(f'note: {SIZE_BRANCHES[info["backbone"]]}: the file holds only for inputs on '
                  f'the same side of that as the traced {h} x {w}')
        if args.dynamic and not args.verify:
            print('note: where a model branches on sizes in Python (e.g. padding only when '
                  'needed), the file follows the traced size; check other sizes with --verify')
        if info.get('mean') is not None:
            order = 'RGB' if info.get('to_rgb') else 'as loaded'
            print(f'the input is normalised, (image - mean) / std with mean {info["mean"]} and '
                  f'std {info["std"]} (channels {order}); that is not part of the graph')
        if args.verify:
            sizes = [(2 if args.dynamic else 1, h, w)]
            if args.dynamic:
                sizes.append((1, *second_size(h, w)))
            worst = 0.
            for x_shape, err in verify_onnx(model, output, sizes):
                print(f'verify {"x".join(map(str, x_shape))}: max relative error {err:.2e} '
                      '(onnxruntime CPU vs PyTorch)')
                worst = max(worst, err)
            if not worst <= args.tolerance:
                raise ExportError(f'verification failed: max relative error {worst:.2e} > '
                                  f'--tolerance {args.tolerance:g}')
    except ExportError as e:
        sys.exit(f'{PROG}: error: {e}')


if __name__ == '__main__':
    main()
