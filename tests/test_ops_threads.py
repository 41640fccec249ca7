"""The compiled CPU ops split their work over OpenMP threads: the results with 2 and 3 threads
(uneven splits of rows and row blocks) equal the references, under every CPU ISA build.

`make test` runs pytest-xdist workers with one torch thread each (tests/conftest.py), so the
other op tests mostly run the kernels' single-thread path; these set the thread count
themselves.
"""
import pytest
import torch

from mmvit_plugins.ops import (HAS_EXT, elsa_aggregate, elsa_aggregate_reference, na2d,
                               na2d_reference)


@pytest.fixture(autouse=True, scope='module')
def _compiled_ops_run():
    # make install always builds the extension: without it these would compare the reference
    # with itself, so a missing build fails here rather than being skipped.
    assert HAS_EXT, 'the compiled ops (mmvit_plugins._ext) did not load'


D = torch.float64


@pytest.fixture(params=[2, 3])
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def _leaves(*tensors):
    return [t.clone().requires_grad_() for t in tensors], [t.clone().requires_grad_()
                                                           for t in tensors]


def _check(out, ref, ours, refs, gen):
    """Forward equal to the reference, and every input's gradient."""
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn(out.shape, dtype=D, generator=gen)
    out.backward(grad)
    ref.backward(grad)
    for a, b in zip(ours, refs):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-11, atol=1e-11)


def test_na2d_forward_and_backward(cpu_isa, threads):
    g = torch.Generator().manual_seed(threads)
    q, k, v = (torch.randn(2, 17, 15, 3, 24, dtype=D, generator=g) for _ in range(3))
    rpb = torch.randn(3, 9, 9, dtype=D, generator=g)
    ours, refs = _leaves(q, k, v, rpb)
    out = na2d(*ours[:3], 5, 2, ours[3])
    ref = na2d_reference(*refs[:3], 5, 2, refs[3])
    _check(out, ref, ours, refs, g)


def test_elsa_aggregate_forward_and_backward(cpu_isa, threads):
    g = torch.Generator().manual_seed(threads)
    v = torch.randn(2, 12, 21, 19, dtype=D, generator=g)
    attn = torch.randn(2, 3, 49, 21, 19, dtype=D, generator=g)
    mul, add = (torch.randn(12, 7, 7, dtype=D, generator=g) for _ in range(2))
    ours, refs = _leaves(v, attn, mul, add)
    out = elsa_aggregate(ours[0], ours[1], 7, 1, ours[2], ours[3])
    ref = elsa_aggregate_reference(refs[0], refs[1], 7, 1, refs[2], refs[3])
    _check(out, ref, ours, refs, g)
