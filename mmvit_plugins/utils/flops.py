"""FLOP handles for mmengine's model-complexity analysis (``mmengine.analysis``).

mmengine counts FLOPs as fvcore does: it traces one forward pass with ``torch.jit`` and sums,
for every graph node whose kind has a *handle*, what the handle returns. Nodes without a handle
are skipped (and listed as "unsupported"). This module adds handles for what the stock table
misses in our models:

* ``prim::PythonOp.NA2DQKFunction`` and ``mmvit_plugins::na2d_qk_forward``:
  ``B*H*W*heads*k*k*d`` for ``q [B, H, W, heads, d]`` (one MAC per query, key tap and channel;
  the relative position bias is an add: 0);
* ``prim::PythonOp.NA2DAVFunction`` and ``mmvit_plugins::na2d_av_forward``:
  ``B*H*W*heads*k*k*d``;
* ``prim::PythonOp.NA2DFusedFunction`` and ``mmvit_plugins::na2d_fused_forward``:
  ``2*B*H*W*heads*k*k*d`` (QK plus AV);
* ``prim::PythonOp.ELSAAggregateFunction`` and ``mmvit_plugins::elsa_aggregate_forward``:
  ``B*C*H*W*k*k`` for ``v [B, C, H, W]``, twice that with a mul ghost (the filter
  ``attn * M + Bg`` costs one more multiply per channel, tap and pixel; an add ghost alone is an
  add: 0);
* ``aten::scaled_dot_product_attention``: ``N*L*S*(E + Ev)`` for ``q [N.., L, E]``,
  ``k [N.., S, E]``, ``v [N.., S, Ev]`` (the two matrix products; ``N`` the output's batch and
  head dims, so grouped keys are counted per query head).

**Convention.** Like every mmengine handle, these count one fused multiply-add as one FLOP, so
the totals are MACs (what papers call "FLOPs" in this field). Element-wise adds, scaling,
softmax and masking cost nothing, as ``aten::add``, ``aten::mul`` and ``aten::softmax`` cost
nothing in mmengine's table; so a fused op counts what its unfused form counts. Taps of an ELSA
window that fall on the zero padding are counted, as mmengine counts a padded convolution; a
neighbourhood always has ``k*k`` keys inside the map. A causal SDPA is counted in full, as its
math kernel computes it.

**Which path is traced.** An autograd ``Function`` traces as one opaque
``prim::PythonOp.<class name>`` node (its inner ``torch.ops.mmvit_plugins.*`` call is not
recorded), so the compiled ops are counted by the ``prim::PythonOp`` handles; the handles keyed
on the ``torch.ops`` names count direct calls of those ops. The pure-PyTorch references trace
as what they are made of: ELSA's as ``F.unfold`` plus element-wise products, which mmengine
counts as 0; neighbourhood attention's as index gathers plus einsums, which mmengine happens to
count right (as generic ``einsum``) while the gathers materialise ``k*k`` copies of the keys.
:func:`countable_ops` therefore makes every op trace as its opaque node: it selects the compiled
kernels (overriding ``MMVIT_REFERENCE_OPS``) and, where they cannot run (extension not built,
a device without kernels, or ``reference=True``), wraps each reference in an opaque ``Function``
of the compiled one's name, so the same handles give the same count on either path.

Usage::

    from mmengine.analysis import get_model_complexity_info
    from mmvit_plugins.utils import flop_handles

    with flop_handles():  # our handles in mmengine's tables, our ops countable
        info = get_model_complexity_info(model, inputs=(x, ))

or, with an analyzer of one's own, ``add_flop_handles(FlopAnalyzer(model, (x, )))`` inside
``countable_ops()``.
"""
import importlib
from contextlib import contextmanager
from math import prod
from typing import Any, Callable, Dict, Iterator, List, Sequence

import torch
from mmengine.analysis import complexity_analysis
from mmengine.analysis.jit_handles import generic_activation_jit, get_shape

from ..ops import _ext
from ..ops.elsa_aggregate import ELSAAggregateFunction, elsa_aggregate_reference
from ..ops.neighborhood_attn import (NA2DAVFunction, NA2DFusedFunction, NA2DQKFunction,
                                     na2d_av_reference, na2d_qk_reference)

__all__ = [
    'ACTIVATION_HANDLES', 'FLOP_HANDLES', 'add_flop_handles', 'count_flops', 'countable_ops',
    'elsa_aggregate_flop_jit', 'flop_handles', 'na2d_av_flop_jit', 'na2d_fused_flop_jit',
    'na2d_qk_flop_jit', 'sdpa_flop_jit'
]

Handle = Callable[[List[Any], List[Any]], Any]

# ----------------------------------------------------------------------------- arguments


def _value(v: Any) -> Any:
    """A traced input: its shape for a tensor, its value for a constant, else None."""
    if v.type().kind() == 'TensorType':
        return get_shape(v)
    if v.node().kind() == 'prim::Constant':
        return v.toIValue()
    return None


def _arguments(inputs: List[Any], outputs: List[Any]) -> List[Any]:
    """The positional arguments of the node that made ``outputs``.

    Tensors become their shapes (``list[int]``), constants their values, absent optional
    tensors None. A ``prim::PythonOp`` node lists only its tensor inputs; the others are its
    ``scalar_args()``, interleaved as its calling convention ``cconv()`` says (``'d'``: tensor,
    ``'c'``: scalar), so the result has the ``Function.apply`` argument order either way.
    """
    node = outputs[0].node()
    if node.kind() != 'prim::PythonOp':
        return [_value(v) for v in inputs]
    tensors, scalars = iter(inputs), iter(node.scalar_args())
    return [get_shape(next(tensors)) if c == 'd' else next(scalars) for c in node.cconv()]


# ----------------------------------------------------------------------------- handles
# Argument orders (the same for the Function and its torch op):
#   na2d_qk    (q, k, rpb, kernel_size, dilation)
#   na2d_av    (attn, v, kernel_size, dilation)
#   na2d_fused (q, k, v, rpb, kernel_size, dilation, scale)
#   elsa       (v, attn, mul_ghost, add_ghost, kernel_size, dilation)


def na2d_qk_flop_jit(inputs: List[Any], outputs: List[Any]) -> Dict[str, int]:
    """MACs of the neighbourhood logits: ``q [B, H, W, heads, d]`` -> ``B*H*W*heads*k*k*d``.

    The relative position bias is an add and costs nothing.
    """
    q, _, _, kernel_size = _arguments(inputs, outputs)[:4]
    return {'na2d_qk': prod(q) * kernel_size * kernel_size}


def na2d_av_flop_jit(inputs: List[Any], outputs: List[Any]) -> Dict[str, int]:
    """MACs of the neighbourhood sum: ``attn [B, H, W, heads, k*k]``, ``v [.., d]`` ->
    ``B*H*W*heads*k*k*d``."""
    attn, v = _arguments(inputs, outputs)[:2]
    return {'na2d_av': prod(attn) * v[-1]}


def na2d_fused_flop_jit(inputs: List[Any], outputs: List[Any]) -> Dict[str, int]:
    """MACs of fused neighbourhood attention: QK plus AV, ``2*B*H*W*heads*k*k*d``.

    The scale, the bias and the softmax cost nothing, as in the unfused form.
    """
    args = _arguments(inputs, outputs)
    q, kernel_size = args[0], args[4]
    return {'na2d': 2 * prod(q) * kernel_size * kernel_size}


def elsa_aggregate_flop_jit(inputs: List[Any], outputs: List[Any]) -> Dict[str, int]:
    """MACs of ELSA aggregation: ``v [B, C, H, W]`` -> ``B*C*H*W*k*k``.

    With a mul ghost the filter ``attn * M (+ Bg)`` costs one more multiply(-add) per channel,
    tap and pixel, doubling the count; an add ghost alone is an add. Taps on the zero padding
    are counted, as for a convolution.
    """
    v, _, mul_ghost, _, kernel_size = _arguments(inputs, outputs)[:5]
    taps = prod(v) * kernel_size * kernel_size
    return {'elsa_aggregate': taps * (2 if mul_ghost is not None else 1)}


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> Dict[str, int]:
    """MACs of ``F.scaled_dot_product_attention``: ``q @ k^T`` plus ``softmax(.) @ v``.

    For ``q [N.., L, E]``, ``k [N.., S, E]``, ``v [N.., S, Ev]`` and output ``[N.., L, Ev]``:
    ``N*L*S*E + N*L*S*Ev``, with ``N`` the output's (broadcast) batch and head dims, so grouped
    keys (``enable_gqa``) are counted per query head. Mask, dropout, scale and softmax cost
    nothing; a causal mask is counted in full, as the math kernel computes it.
    """
    q, k, v = _arguments(inputs, outputs)[:3]
    out = get_shape(outputs[0])
    rows = prod(out[:-1])  # N * L
    return {'scaled_dot_product_attention': rows * k[-2] * (q[-1] + v[-1])}


def _python_op(function: type) -> str:
    """The node kind of an autograd Function in a trace (keyed on its class name)."""
    return f'prim::PythonOp.{function.__name__}'


_OPS = {
    'na2d_qk': (NA2DQKFunction, 'mmvit_plugins::na2d_qk_forward', na2d_qk_flop_jit),
    'na2d_av': (NA2DAVFunction, 'mmvit_plugins::na2d_av_forward', na2d_av_flop_jit),
    'na2d': (NA2DFusedFunction, 'mmvit_plugins::na2d_fused_forward', na2d_fused_flop_jit),
    'elsa_aggregate': (ELSAAggregateFunction, 'mmvit_plugins::elsa_aggregate_forward',
                       elsa_aggregate_flop_jit),
}

#: Node kind -> FLOP (MAC) handle, for ``FlopAnalyzer.set_op_handle(**FLOP_HANDLES)``.
FLOP_HANDLES: Dict[str, Handle] = {'aten::scaled_dot_product_attention': sdpa_flop_jit}
#: Node kind -> activation handle (output elements), for ``ActivationAnalyzer``.
ACTIVATION_HANDLES: Dict[str, Handle] = {
    'aten::scaled_dot_product_attention': generic_activation_jit()
}
for _function, _op, _handle in _OPS.values():
    for _kind in (_python_op(_function), _op):
        FLOP_HANDLES[_kind] = _handle
        ACTIVATION_HANDLES[_kind] = generic_activation_jit()


def add_flop_handles(analyzer):
    """Give an mmengine ``FlopAnalyzer`` (or ``ActivationAnalyzer``) our handles.

    Args:
        analyzer (JitModelAnalysis): ``mmengine.analysis.FlopAnalyzer`` or
            ``ActivationAnalyzer``; the matching table is added with ``set_op_handle``.

    Returns:
        JitModelAnalysis: ``analyzer``, for chaining.
    """
    from mmengine.analysis import ActivationAnalyzer
    table = ACTIVATION_HANDLES if isinstance(analyzer, ActivationAnalyzer) else FLOP_HANDLES
    return analyzer.set_op_handle(**table)


# ----------------------------------------------------------------------------- traced path


def _opaque_function(like: type, reference: Callable) -> type:
    """A forward-only autograd Function named like ``like`` that runs ``reference``.

    It traces as one ``prim::PythonOp.<like's name>`` node, so the compiled op's handle counts
    it. For counting only: it has no backward.
    """

    def forward(ctx, *args):
        return reference(*args)

    return type(like.__name__, (torch.autograd.Function, ), {
        'forward': staticmethod(forward),
        '__doc__': f'Opaque stand-in for {like.__name__} (FLOP counting only).',
    })


_OpaqueQK = _opaque_function(
    NA2DQKFunction, lambda q, k, rpb, kernel_size, dilation: na2d_qk_reference(
        q, k, kernel_size, dilation, rpb))
_OpaqueAV = _opaque_function(NA2DAVFunction, na2d_av_reference)
_OpaqueELSA = _opaque_function(
    ELSAAggregateFunction, lambda v, attn, mul, add, kernel_size, dilation:
    elsa_aggregate_reference(v, attn, kernel_size, dilation, mul, add))


def _opaque_qk(q, k, kernel_size, dilation=1, rpb=None):
    return _OpaqueQK.apply(q, k, rpb, kernel_size, dilation)


def _opaque_av(attn, v, kernel_size, dilation=1):
    return _OpaqueAV.apply(attn, v, kernel_size, dilation)


def _opaque_elsa(v, attn, kernel_size, dilation=1, mul_ghost=None, add_ghost=None):
    return _OpaqueELSA.apply(v, attn, mul_ghost, add_ghost, kernel_size, dilation)


# The references the functional layer falls back to (module, name, opaque stand-in). The
# functional code looks them up as module globals at call time, so replacing them there is
# enough; the fused op has no reference fallback of its own (it falls back to QK + AV).
_REFERENCES = (
    ('mmvit_plugins.ops.neighborhood_attn', 'na2d_qk_reference', _opaque_qk),
    ('mmvit_plugins.ops.neighborhood_attn', 'na2d_av_reference', _opaque_av),
    ('mmvit_plugins.ops.elsa_aggregate', 'elsa_aggregate_reference', _opaque_elsa),
)


@contextmanager
def countable_ops(reference: bool = False) -> Iterator[None]:
    """Inside, every ELSA / neighbourhood op traces as one node that :data:`FLOP_HANDLES` count.

    The compiled kernels are selected where they exist for the device (whatever
    ``MMVIT_REFERENCE_OPS`` or :func:`~mmvit_plugins.ops.set_reference_ops` say); where they do
    not, the pure-PyTorch references run wrapped in opaque forward-only Functions named like
    the compiled ones. Outputs are those of the usual path; only the trace changes. Meant for
    FLOP counting, not training (the wrapped references have no backward).

    Args:
        reference (bool): run the (wrapped) references even where compiled kernels exist.
            Defaults to False.
    """
    saved = []
    try:
        for module_name, name, opaque in _REFERENCES:
            module = importlib.import_module(module_name)
            saved.append((module, name, getattr(module, name)))
            setattr(module, name, opaque)
        with _ext.reference_ops(reference):
            yield
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)


@contextmanager
def _table_entries(table: dict, entries: Dict[str, Handle]) -> Iterator[None]:
    saved = {name: table[name] for name in entries if name in table}
    table.update(entries)
    try:
        yield
    finally:
        for name in entries:
            table.pop(name, None)
        table.update(saved)


@contextmanager
def flop_handles(reference: bool = False) -> Iterator[None]:
    """Inside, mmengine's counters know our ops and SDPA, and our ops are countable.

    ``mmengine.analysis.get_model_complexity_info`` (0.10.x) takes no handles: it builds a
    ``FlopAnalyzer`` and an ``ActivationAnalyzer``, which start from mmengine's module-level
    default tables. This adds :data:`FLOP_HANDLES` and :data:`ACTIVATION_HANDLES` to those
    tables for the duration (restoring them after) and enters :func:`countable_ops`.

    Args:
        reference (bool): passed to :func:`countable_ops`. Defaults to False.
    """
    with _table_entries(complexity_analysis._DEFAULT_SUPPORTED_FLOP_OPS, FLOP_HANDLES), \
            _table_entries(complexity_analysis._DEFAULT_SUPPORTED_ACT_OPS, ACTIVATION_HANDLES), \
            countable_ops(reference):
        yield


def count_flops(model: torch.nn.Module, inputs: Sequence[Any]) -> int:
    """Total MACs of ``model(*inputs)`` with our handles (a small convenience for tests)."""
    from mmengine.analysis import FlopAnalyzer
    with countable_ops():
        analyzer = add_flop_handles(FlopAnalyzer(model, tuple(inputs)))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(analyzer.total())
