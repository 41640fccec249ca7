"""Property tests (hypothesis) of the compiled ops against their pure-PyTorch references, float64.

Every example draws an odd kernel size (1-13), a dilation (neighbourhood attention: up to
``max(3, 24 // kernel_size)``; ELSA: 1-5), a batch, heads / channel groups, a head dim (1-40), a
map size (neighbourhood attention: from the smallest it allows, ``kernel_size * dilation``,
where every window is clamped at a border, which about half of the examples draw; ELSA: from
1x1, windows often wider than the map), the optional inputs (relative position bias, mul / add
ghosts) and a memory layout for every input and for the incoming gradient (contiguous,
channels-last, a strided view at an offset, transposed), and the build of the CPU kernels to run
(baseline x86-64 or AVX2, where the CPU has it). It checks the forward and the gradient
of every input against the reference, which sees contiguous copies. The examples are
deterministic (``derandomize=True``, no example database).

``MMVIT_EXTENDED_TESTS=1`` runs 5x the examples; ``MMVIT_FUZZ_EXAMPLES=N`` sets the count of
every test here directly (``tests/test_sanitizer.py`` runs them under ASan + UBSan).
"""
import os

import pytest
import torch
from conftest import EXTENDED
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmvit_plugins import ops
from mmvit_plugins.ops import (HAS_EXT, elsa_aggregate, elsa_aggregate_reference, na2d,
                               na2d_av, na2d_av_reference, na2d_qk, na2d_qk_reference,
                               na2d_reference)
from mmvit_plugins.ops._ext import use_ext

D = torch.float64
KERNEL_SIZES = (1, 3, 5, 7, 9, 11, 13)  # the ops take any positive odd size
LAYOUTS = ('contiguous', 'channels_last', 'strided', 'transposed')


def _examples(default: int) -> int:
    value = os.environ.get('MMVIT_FUZZ_EXAMPLES')
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f'MMVIT_FUZZ_EXAMPLES must be a positive integer, got {value!r}')
        return int(value)
    return default * 5 if EXTENDED else default


def fuzz_settings(default_examples: int):
    # The function-scoped fixture is conftest's autouse torch.manual_seed(0); every example
    # draws its own generator seed, so nothing depends on it.
    return settings(max_examples=_examples(default_examples), deadline=None, derandomize=True,
                    database=None, print_blob=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@pytest.fixture(autouse=True, scope='module')
def _compiled_ops_run():
    # Every comparison below would pit the reference against itself without the extension.
    assert HAS_EXT and use_ext(torch.zeros(1)), 'the compiled ops are not in use'
    # Every example draws the build of the CPU kernels it runs on (baseline x86-64 or AVX2);
    # the one in use before comes back afterwards.
    with ops.cpu_isa_override(ops.cpu_isa()):
        yield


# The builds of the CPU kernels this CPU runs; each example draws one and runs on it.
ISAS = tuple(ops.available_cpu_isas())


def use_isa(case):
    ops.set_cpu_isa(case['isa'])


def laid_out(shape, layout: str, gen: torch.Generator) -> torch.Tensor:
    """A random float64 tensor of ``shape`` whose memory is arranged as ``layout``.

    ``channels_last``: dim 1 innermost (channels_last / channels_last_3d for 4-D / 5-D);
    ``strided``: every other element of a larger buffer along dim 1 and the last dim, starting
    at an offset; ``transposed``: the last two dims swapped in memory.
    """
    shape = tuple(shape)
    n = len(shape)
    if layout == 'contiguous':
        return torch.randn(shape, generator=gen, dtype=D)
    if layout == 'channels_last':
        perm = (0, *range(2, n), 1)
        base = torch.randn([shape[p] for p in perm], generator=gen, dtype=D)
        return base.permute(sorted(range(n), key=perm.__getitem__))
    if layout == 'strided':
        big = list(shape)
        big[1], big[-1] = 2 * big[1] + 1, 2 * big[-1] + 1
        base = torch.randn(big, generator=gen, dtype=D)
        index = [slice(None)] * n
        index[1] = index[-1] = slice(1, None, 2)
        return base[tuple(index)]
    if layout == 'transposed':
        base = torch.randn((*shape[:-2], shape[-1], shape[-2]), generator=gen, dtype=D)
        return base.transpose(-1, -2)
    raise ValueError(f'unknown layout {layout!r}')


def leaf_pair(x):
    """``(ours, ref)``: ``x`` itself (its layout kept) and a contiguous copy, both leaves."""
    if x is None:
        return None, None
    return (x.detach().requires_grad_(),
            x.detach().clone(memory_format=torch.contiguous_format).requires_grad_())


def check_backward(out, ref, grad, pairs, names, case, tol):
    out.backward(grad)
    ref.backward(grad.contiguous())
    for name, (a, b) in zip(names, pairs):
        if a is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=tol, atol=tol,
                                       msg=lambda m, name=name: f'grad of {name}, {case}: {m}')


# ----------------------------------------------------------------------------- strategies

layouts = st.sampled_from(LAYOUTS)


@st.composite
def na_cases(draw):
    """A neighbourhood-attention case: ``H, W >= kernel_size * dilation`` (the op's limit)."""
    ks = draw(st.sampled_from(KERNEL_SIZES))
    dil = draw(st.integers(1, max(3, 24 // ks)))
    lo = ks * dil
    # Exactly the smallest map (every window clamped) about half of the time, else a bit more.
    extra = st.one_of(st.just(0), st.integers(0, max(5, 18 - lo)))
    return dict(B=draw(st.integers(1, 2)), H=lo + draw(extra), W=lo + draw(extra),
                heads=draw(st.integers(1, 3)), d=draw(st.integers(1, 40)), ks=ks, dil=dil,
                rpb=draw(st.booleans()), isa=draw(st.sampled_from(ISAS)),
                seed=draw(st.integers(0, 2**31 - 1)))


@st.composite
def elsa_cases(draw):
    """An ELSA case: any map size from 1 up, windows often larger than the map."""
    ks = draw(st.sampled_from(KERNEL_SIZES))
    dil = draw(st.integers(1, 5))
    footprint = (ks - 1) * dil + 1
    side = st.integers(1, min(footprint + 5, 42))
    G = draw(st.integers(1, 3))
    return dict(B=draw(st.integers(1, 2)), G=G, C=G * draw(st.integers(1, 4)), H=draw(side),
                W=draw(side), ks=ks, dil=dil, mul=draw(st.booleans()), add=draw(st.booleans()),
                isa=draw(st.sampled_from(ISAS)), seed=draw(st.integers(0, 2**31 - 1)))


# ----------------------------------------------------------------------------- neighbourhood attn


@fuzz_settings(50)
@given(case=na_cases(), lq=layouts, lk=layouts, lr=layouts, lg=layouts)
def test_na2d_qk_matches_reference(case, lq, lk, lr, lg):
    use_isa(case)
    gen = torch.Generator().manual_seed(case['seed'])
    B, H, W, heads, d, ks, dil = (case[n] for n in ('B', 'H', 'W', 'heads', 'd', 'ks', 'dil'))
    q, k = laid_out((B, H, W, heads, d), lq, gen), laid_out((B, H, W, heads, d), lk, gen)
    rpb = laid_out((heads, 2 * ks - 1, 2 * ks - 1), lr, gen) if case['rpb'] else None
    pairs = [leaf_pair(t) for t in (q, k, rpb)]
    (qa, qb), (ka, kb), (ra, rb) = pairs
    out = na2d_qk(qa, ka, ks, dil, ra)
    ref = na2d_qk_reference(qb, kb, ks, dil, rb)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12, msg=lambda m: f'{case}: {m}')
    grad = laid_out(ref.shape, lg, gen)
    check_backward(out, ref, grad, pairs, ('q', 'k', 'rpb'), case, 1e-11)


@fuzz_settings(50)
@given(case=na_cases(), la=layouts, lv=layouts, lg=layouts)
def test_na2d_av_matches_reference(case, la, lv, lg):
    use_isa(case)
    gen = torch.Generator().manual_seed(case['seed'])
    B, H, W, heads, d, ks, dil = (case[n] for n in ('B', 'H', 'W', 'heads', 'd', 'ks', 'dil'))
    attn = laid_out((B, H, W, heads, ks * ks), la, gen)
    v = laid_out((B, H, W, heads, d), lv, gen)
    pairs = [leaf_pair(t) for t in (attn, v)]
    (aa, ab), (va, vb) = pairs
    out = na2d_av(aa, va, ks, dil)
    ref = na2d_av_reference(ab, vb, ks, dil)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12, msg=lambda m: f'{case}: {m}')
    check_backward(out, ref, laid_out(ref.shape, lg, gen), pairs, ('attn', 'v'), case, 1e-11)


@fuzz_settings(40)
@given(case=na_cases(), lq=layouts, lk=layouts, lv=layouts, lr=layouts, lg=layouts,
       scale=st.one_of(st.none(), st.floats(0.05, 2.0)))
def test_na2d_fused_matches_reference(case, lq, lk, lv, lr, lg, scale):
    """``na2d(fused=True)``: the vectorised CPU forward of the case's ISA build, the backward
    the CUDA kernels' element code run on the CPU; forward in inference mode too (the eval
    path), and the saved log-sum-exp."""
    use_isa(case)
    gen = torch.Generator().manual_seed(case['seed'])
    B, H, W, heads, d, ks, dil = (case[n] for n in ('B', 'H', 'W', 'heads', 'd', 'ks', 'dil'))
    q, k, v = (laid_out((B, H, W, heads, d), lay, gen) for lay in (lq, lk, lv))
    rpb = laid_out((heads, 2 * ks - 1, 2 * ks - 1), lr, gen) if case['rpb'] else None
    pairs = [leaf_pair(t) for t in (q, k, v, rpb)]
    ours, refs = [p[0] for p in pairs], [p[1] for p in pairs]
    out = na2d(*ours[:3], ks, dil, ours[3], scale, fused=True)
    ref = na2d_reference(*refs[:3], ks, dil, refs[3], scale)
    msg = lambda m: f'{case}, scale={scale}: {m}'  # noqa: E731
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10, msg=msg)
    with torch.inference_mode():
        torch.testing.assert_close(na2d(q, k, v, ks, dil, rpb, scale, fused=True), ref.detach(),
                                   rtol=1e-10, atol=1e-10, msg=msg)
        s = d**-0.5 if scale is None else scale
        _, lse = torch.ops.mmvit_plugins.na2d_fused_forward(q, k, v, rpb, ks, dil, float(s))
        logits = na2d_qk_reference(q * s, k, ks, dil, rpb)
        torch.testing.assert_close(lse, torch.logsumexp(logits, -1), rtol=1e-10, atol=1e-10,
                                   msg=msg)
    check_backward(out, ref, laid_out(ref.shape, lg, gen), pairs, ('q', 'k', 'v', 'rpb'), case,
                   1e-10)


# ----------------------------------------------------------------------------- ELSA


@fuzz_settings(120)
@given(case=elsa_cases(), lv=layouts, la=layouts, lm=layouts, lb=layouts, lg=layouts)
def test_elsa_aggregate_matches_reference(case, lv, la, lm, lb, lg):
    use_isa(case)
    gen = torch.Generator().manual_seed(case['seed'])
    B, G, C, H, W, ks, dil = (case[n] for n in ('B', 'G', 'C', 'H', 'W', 'ks', 'dil'))
    v = laid_out((B, C, H, W), lv, gen)
    attn = laid_out((B, G, ks * ks, H, W), la, gen)
    mul = laid_out((C, ks, ks), lm, gen) if case['mul'] else None
    add = laid_out((C, ks, ks), lb, gen) if case['add'] else None
    pairs = [leaf_pair(t) for t in (v, attn, mul, add)]
    ours, refs = [p[0] for p in pairs], [p[1] for p in pairs]
    out = elsa_aggregate(ours[0], ours[1], ks, dil, ours[2], ours[3])
    ref = elsa_aggregate_reference(refs[0], refs[1], ks, dil, refs[2], refs[3])
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12, msg=lambda m: f'{case}: {m}')
    check_backward(out, ref, laid_out(ref.shape, lg, gen), pairs,
                   ('v', 'attn', 'mul_ghost', 'add_ghost'), case, 1e-11)
