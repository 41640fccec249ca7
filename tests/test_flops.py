"""FLOP handles (mmvit_plugins.utils.flops) against hand counts, and tools/analysis/get_flops.py.

Every count is in mmengine's convention: one multiply-add = one FLOP (MACs).
"""
import importlib.util
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.analysis import FlopAnalyzer, get_model_complexity_info
from mmengine.analysis.complexity_analysis import (_DEFAULT_SUPPORTED_ACT_OPS,
                                                   _DEFAULT_SUPPORTED_FLOP_OPS)

from mmvit_plugins.ops import (HAS_EXT, elsa_aggregate, na2d, na2d_av, na2d_qk, reference_ops,
                               using_reference_ops)
from mmvit_plugins.ops import neighborhood_attn
from mmvit_plugins.utils import FLOP_HANDLES, count_flops, countable_ops, flop_handles

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCRIPT = osp.join(ROOT, 'tools', 'analysis', 'get_flops.py')
needs_ext = pytest.mark.skipif(
    not HAS_EXT,
    reason='the compiled extension is not built (make install builds it); these tests count '
    'its ops')


class Fn(torch.nn.Module):
    """A module that calls ``fn`` (the analyzers trace modules)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


class TensorMode(torch.nn.Module):
    """An OpenMMLab model's ``forward(x, mode='tensor')`` (the model as a submodule)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x, mode='tensor')


def macs(fn, *inputs, reference=False):
    """MACs of ``fn(*inputs)`` with our handles, on the compiled path or the references."""
    if not reference:
        return count_flops(Fn(fn), inputs)
    with countable_ops(reference=True):
        analyzer = FlopAnalyzer(Fn(fn), inputs).set_op_handle(**FLOP_HANDLES)
        analyzer.unsupported_ops_warnings(False)
        return int(analyzer.total())


def plain_macs(fn, *inputs):
    """What mmengine counts without our handles."""
    analyzer = FlopAnalyzer(Fn(fn), inputs)
    analyzer.unsupported_ops_warnings(False)
    return int(analyzer.total())


# B, H, W, heads, d, kernel, dilation: odd and even sides, a dilated window
NA_CASES = [(2, 5, 6, 2, 4, 3, 1), (1, 6, 7, 3, 2, 3, 2), (1, 5, 5, 1, 8, 5, 1)]


@pytest.mark.parametrize('reference', [False, True])
@pytest.mark.parametrize('rpb', [False, True])
@pytest.mark.parametrize('B,H,W,heads,d,k,dil', NA_CASES)
def test_na2d_handles_match_hand_count(B, H, W, heads, d, k, dil, rpb, reference):
    q = torch.randn(B, H, W, heads, d)
    bias = torch.randn(heads, 2 * k - 1, 2 * k - 1) if rpb else None
    attn = torch.randn(B, H, W, heads, k * k).softmax(-1)
    # one MAC per (query, key tap, channel); the bias is an add and costs nothing
    one_product = B * H * W * heads * (k * k) * d
    assert macs(lambda q: na2d_qk(q, q, k, dil, bias), q, reference=reference) == one_product
    assert macs(lambda a, v: na2d_av(a, v, k, dil), attn, q, reference=reference) == one_product
    # fused and unfused attention both count QK + AV (scale and softmax cost nothing)
    for fused in (True, False):
        count = macs(lambda q: na2d(q, q, q, k, dil, bias, fused=fused), q, reference=reference)
        assert count == 2 * one_product


@pytest.mark.parametrize('reference', [False, True])
@pytest.mark.parametrize('mul,add,factor', [(False, False, 1), (False, True, 1), (True, False, 2),
                                            (True, True, 2)])
def test_elsa_handle_matches_hand_count(mul, add, factor, reference):
    B, C, G, H, W, k = 2, 6, 3, 5, 7, 3
    v, attn = torch.randn(B, C, H, W), torch.randn(B, G, k * k, H, W)
    m = torch.randn(C, k, k) if mul else None
    b = torch.randn(C, k, k) if add else None
    count = macs(lambda v, a: elsa_aggregate(v, a, k, 1, m, b), v, attn, reference=reference)
    # B*C*H*W*k*k products of v with its filter; a mul ghost adds one multiply per tap
    assert count == factor * B * C * H * W * k * k == factor * 3780


def test_reference_path_needs_countable_ops():
    """Traced as it is, ELSA's reference (unfold + products) counts 0: why countable_ops exists."""
    v, attn = torch.randn(1, 4, 5, 6), torch.randn(1, 2, 9, 5, 6)
    with reference_ops(True):
        analyzer = FlopAnalyzer(Fn(lambda v, a: elsa_aggregate(v, a, 3)), (v, attn))
        assert analyzer.set_op_handle(**FLOP_HANDLES).unsupported_ops_warnings(False).total() == 0
    assert macs(lambda v, a: elsa_aggregate(v, a, 3), v, attn, reference=True) == 4 * 30 * 9


@needs_ext
def test_torch_op_names_have_handles():
    """Direct calls of the compiled ops (outside our autograd Functions) are counted too."""
    q, k, d = torch.randn(1, 5, 6, 2, 4), 3, 4
    attn = torch.randn(1, 5, 6, 2, 9)
    ops = torch.ops.mmvit_plugins
    n = 5 * 6 * 2 * 9 * d
    assert macs(lambda q: ops.na2d_qk_forward(q, q, None, k, 1), q) == n
    assert macs(lambda a, v: ops.na2d_av_forward(a, v, k, 1), attn, q) == n
    assert macs(lambda q: ops.na2d_fused_forward(q, q, q, None, k, 1, 0.5)[0], q) == 2 * n
    v, a = torch.randn(1, 4, 5, 6), torch.randn(1, 2, 9, 5, 6)
    g = torch.randn(4, 3, 3)
    assert macs(lambda v, a: ops.elsa_aggregate_forward(v, a, g, None, k, 1), v, a) == 2 * 1080
    assert macs(lambda v, a: ops.elsa_aggregate_forward(v, a, None, g, k, 1), v, a) == 1080


def math_attention(q, k, v, mask=None):
    logits = q @ k.transpose(-2, -1) * q.shape[-1]**-0.5
    if mask is not None:
        logits = logits.masked_fill(~mask, float('-inf')) if mask.dtype == torch.bool \
            else logits + mask
    return logits.softmax(-1) @ v


@pytest.mark.parametrize('mask', [None, 'float', 'bool', 'causal'])
@pytest.mark.parametrize('L,S,E,Ev', [(7, 7, 8, 8), (5, 11, 8, 6), (1, 9, 4, 4)])
def test_sdpa_handle_matches_hand_count(L, S, E, Ev, mask):
    N, heads = 2, 3
    q, k = torch.randn(N, heads, L, E), torch.randn(N, heads, S, E)
    v = torch.randn(N, heads, S, Ev)
    m = {None: None, 'float': torch.randn(L, S), 'bool': torch.rand(L, S) > 0.3,
         'causal': None}[mask]
    kwargs = dict(is_causal=True) if mask == 'causal' else dict(attn_mask=m)
    count = macs(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kwargs), q, k, v)
    # q @ k^T and weights @ v; the mask (an add or a select) and the softmax cost nothing
    assert count == N * heads * L * S * (E + Ev)
    if mask != 'causal':  # the same as mmengine's count of the explicit math
        assert count == plain_macs(lambda q, k, v: math_attention(q, k, v, m), q, k, v)
    assert plain_macs(lambda q, k, v: F.scaled_dot_product_attention(q, k, v), q, k, v) == 0


def test_sdpa_handle_grouped_query_heads():
    q, kv = torch.randn(1, 4, 6, 8), torch.randn(1, 2, 10, 8)
    count = macs(lambda q, k: F.scaled_dot_product_attention(q, k, k, enable_gqa=True), q, kv)
    assert count == 4 * 6 * 10 * (8 + 8)  # per query head


def test_handles_are_keyed_on_the_function_names():
    """Renaming an autograd Function must break this test, not silently zero the counts."""
    for name in ('NA2DQKFunction', 'NA2DAVFunction', 'NA2DFusedFunction',
                 'ELSAAggregateFunction'):
        assert f'prim::PythonOp.{name}' in FLOP_HANDLES
    for op in ('na2d_qk_forward', 'na2d_av_forward', 'na2d_fused_forward',
               'elsa_aggregate_forward'):
        assert f'mmvit_plugins::{op}' in FLOP_HANDLES
    assert 'aten::scaled_dot_product_attention' in FLOP_HANDLES


def test_countable_ops_keeps_outputs_and_restores_state():
    q = torch.randn(1, 6, 7, 2, 4, dtype=torch.float64)
    expected = na2d(q, q, q, 3, fused=False)
    reference_fn = neighborhood_attn.na2d_qk_reference
    before = using_reference_ops()
    with pytest.raises(RuntimeError, match='boom'):
        with countable_ops(reference=True):
            assert neighborhood_attn.na2d_qk_reference is not reference_fn
            torch.testing.assert_close(na2d(q, q, q, 3, fused=False), expected, rtol=0,
                                       atol=1e-12)
            raise RuntimeError('boom')
    assert neighborhood_attn.na2d_qk_reference is reference_fn
    assert using_reference_ops() is before


def test_flop_handles_feed_get_model_complexity_info():
    q = torch.randn(1, 2, 9, 8)
    model = Fn(lambda q: F.scaled_dot_product_attention(q, q, q))
    flop_table, act_table = dict(_DEFAULT_SUPPORTED_FLOP_OPS), dict(_DEFAULT_SUPPORTED_ACT_OPS)
    with flop_handles():
        info = get_model_complexity_info(model, inputs=(q, ), show_table=False, show_arch=False)
    assert info['flops'] == 2 * 9 * 9 * 16
    assert info['activations'] == q.numel()
    assert _DEFAULT_SUPPORTED_FLOP_OPS == flop_table and _DEFAULT_SUPPORTED_ACT_OPS == act_table
    outside = get_model_complexity_info(model, inputs=(q, ), show_table=False, show_arch=False)
    assert outside['flops'] == 0  # mmengine alone skips SDPA


# ----------------------------------------------------------------------------- the script


def load_script():
    spec = importlib.util.spec_from_file_location('get_flops', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_get_flops_tiny_classifier(capsys):
    # CloFormer-XXS (4.2M parameters), 10 classes through --cfg-options, on a 64x96 image
    config = osp.join(ROOT, 'configs', 'cls_cloformer_xxs_in1k.py')
    load_script().main([config, '--shape', '64', '96', '--cfg-options',
                        'model.head.num_classes=10'])
    out = capsys.readouterr().out
    assert 'Input shape: (64, 96)' in out
    line = next(s for s in out.splitlines() if s.startswith('FLOPs: '))
    gmacs, mparams = float(line.split()[1]), float(line.split('params: ')[1].split()[0])

    # the same classifier, counted here: parameters from the model, MACs by an analyzer
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({'model.head.num_classes': 10})
    # in mmpretrain's scope whatever scope an earlier test in this process left current
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model).eval()
    assert model.head.fc.out_features == 10
    assert mparams == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6, abs=5e-4)
    with torch.no_grad():
        expected = count_flops(TensorMode(model), (torch.randn(1, 3, 64, 96), ))
    assert expected > 0 and gmacs == pytest.approx(expected / 1e9, abs=5e-4)
    assert 'Counted as 0 (no FLOP handle)' in out  # e.g. the activations, listed


@pytest.mark.parametrize('argv,match', [(['--shape', '0', '224'], 'positive integers'),
                                        (['--shape', '1', '2', '3'], 'one or two'),
                                        (['--shape', 'x'], 'invalid int value')])
def test_get_flops_bad_shape_is_one_line(argv, match, capsys):
    with pytest.raises(SystemExit) as exc:
        load_script().main([osp.join(ROOT, 'configs', 'cls_hrvit_b1_in1k.py'), *argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert len(err.strip().splitlines()) == 1 and match in err


def test_get_flops_model_error_is_one_line():
    with pytest.raises(SystemExit) as exc:
        load_script().main([osp.join(ROOT, 'configs', 'cls_hrvit_b1_in1k.py'), '--cfg-options',
                            'model.backbone.arch=b9'])
    message = exc.value.code
    assert isinstance(message, str) and '\n' not in message
    assert message.startswith('get_flops.py: error: ValueError: arch must be one of')


def test_get_flops_missing_config_is_one_line():
    result = subprocess.run([sys.executable, SCRIPT, 'configs/no_such_config.py'],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == ['get_flops.py: error: FileNotFoundError: config file not found: '
                     'configs/no_such_config.py'], result.stderr
