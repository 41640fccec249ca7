"""Property-based fuzzing (hypothesis) of every backbone family at a tiny architecture.

For a batch ``B`` in 0..2 and an image ``H x W`` with ``H, W`` in 1..257, in train and in eval
mode, every output level ``i`` is ``[B, C_i, ceil(H / s_i), ceil(W / s_i)]`` with
``s_i = 4 * 2**i``, float32, contiguous NCHW and finite, and after a backward pass every
gradient is finite (and every parameter has one when ``B > 0``). The one input PyTorch's
BatchNorm cannot train on (one image of up to 32 x 32, whose stride-32 map is 1 x 1) must be
refused by the backbone's input check with the reason, and must really fail without it.

Deterministic and bounded: a fixed seed per arch and mode (so the archs and modes see different
sizes) and no example database, so every run draws the same cases; :data:`BUDGET` generated
cases per arch and mode plus the explicit edge cases :data:`EDGES`. Each tiny model is built
once per module (one per mode, so that train-mode BatchNorm statistics do not leak into the
eval runs). The cases, their count and their times are printed (``-s``).
"""
import math
import time
import zlib
from unittest import mock

import pytest
import torch
from hypothesis import example, given, seed, settings
from hypothesis import strategies as st

from _tiny_backbones import TINY_BACKBONES as ARCHS

WITH_BN = {'hrvit', 'container', 'container_light', 'cloformer'}
# generated cases per arch and mode (besides EDGES): about 0.05 s each on two idle CPU cores
# (each new size costs oneDNN new conv kernels), several times that on a busy machine
BUDGET = {'hrvit': 10, 'elsa_swin': 12, 'container': 12, 'container_light': 10, 'cloformer': 10,
          'maformer': 10, 'maformer_na': 10}
# (B, H, W): the extreme sizes, the BatchNorm refusal (train) and empty batches
EDGES = [(1, 1, 1), (2, 1, 1), (2, 1, 257), (1, 257, 1), (0, 1, 1), (0, 257, 131)]
_models = {}


def model_for(name: str, mode: str):
    if (name, mode) not in _models:
        torch.manual_seed(0)
        _models[name, mode] = ARCHS[name]().train(mode == 'train')
    return _models[name, mode]


def check_case(name: str, mode: str, B: int, H: int, W: int) -> str:
    """Runs one case; returns ``'ran'`` or ``'refused'`` (the BatchNorm case)."""
    model = model_for(name, mode)
    torch.manual_seed(0)  # drop path in train mode
    x = torch.randn(B, 3, H, W, requires_grad=True)
    if mode == 'train' and name in WITH_BN and B == 1 and H <= 32 and W <= 32:
        with pytest.raises(ValueError, match='BatchNorm needs more than one value per channel'):
            model(x)
        with mock.patch.object(model, '_check_input', lambda x: None):
            with pytest.raises(ValueError, match='Expected more than 1 value per channel'):
                model(x)
        return 'refused'
    outs = model(x)
    assert isinstance(outs, tuple) and len(outs) == 4
    for i, (out, c) in enumerate(zip(outs, model.out_channels)):
        s = 4 * 2**i
        assert out.shape == (B, c, math.ceil(H / s), math.ceil(W / s)), (i, out.shape)
        assert out.dtype == torch.float32 and out.is_contiguous(), (i, out.stride())
        assert torch.isfinite(out).all(), i
    model.zero_grad(set_to_none=True)
    gen = torch.Generator().manual_seed(1)
    sum((out * torch.randn(out.shape, generator=gen)).sum() for out in outs).backward()
    assert torch.isfinite(x.grad).all()
    for pname, p in model.named_parameters():
        if p.grad is None:
            # SDPA gives an empty batch's attn_mask (the bias tables) no gradient
            assert B == 0 and pname.endswith(('attn.rb', 'attn.rpb')), pname
        else:
            assert torch.isfinite(p.grad).all(), pname
    return 'ran'


@pytest.mark.parametrize('mode', ['train', 'eval'])
@pytest.mark.parametrize('name', list(ARCHS))
def test_any_batch_and_size_gives_the_documented_maps_and_finite_gradients(name, mode):
    results = []

    @seed(zlib.crc32(f'{name} {mode}'.encode()))
    @settings(max_examples=BUDGET[name], deadline=None, database=None)
    @given(B=st.integers(0, 2), H=st.integers(1, 257), W=st.integers(1, 257))
    def fuzz(B, H, W):
        start = time.perf_counter()
        outcome = check_case(name, mode, B, H, W)
        results.append(((B, H, W), outcome, time.perf_counter() - start))

    for edge in EDGES:
        fuzz = example(B=edge[0], H=edge[1], W=edge[2])(fuzz)
    fuzz()
    cases = sorted({case for case, _, _ in results})
    refused = sorted({case for case, r, _ in results if r == 'refused'})
    print(f'\n{name} {mode}: {len(cases)} cases ({len(refused)} BatchNorm refusals), '
          f'{sum(t for _, _, t in results):.1f} s: ' +
          ' '.join(f'{b}x{h}x{w}:{t:.2f}' for (b, h, w), _, t in sorted(results)))
    assert len(cases) >= len(EDGES) + BUDGET[name] // 2
    assert {e for e in EDGES} <= set(cases)
    if mode == 'train' and name in WITH_BN:
        assert (1, 1, 1) in refused
