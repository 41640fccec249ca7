"""ELSA aggregation: the sliding-window operator of ELSA (arXiv 2112.12786, damo-cv/ELSA).

Every channel ``c`` (head ``g = c // (C / G)``) is filtered by its own per-pixel ``k x k`` filter,
the head's attention map combined with static per-channel "ghost" matrices::

    out[b,c,y,x] = sum_t v[b,c,y+(ty-p)*dil, x+(tx-p)*dil] * (attn[b,g,t,y,x] * M[c,ty,tx]
                                                                + Bg[c,ty,tx])

with ``p = k // 2``, tap ``t = ty * k + tx`` (row-major) and zero padding outside the map. A
missing mul ghost means ``M = 1``, a missing add ghost ``Bg = 0``. Layers:
``elsa_aggregate_reference`` (pure PyTorch, the oracle and the fallback) ->
``ELSAAggregateFunction`` (compiled forward and backward) -> ``elsa_aggregate`` (checks, then
picks one of the two) -> ``ELSAAggregation`` (an ``nn.Module`` that owns the ghosts).

Unlike the original op, any map size works (windows larger than the map read zeros), the
gradients of both ghosts are reduced over the batch inside the op, and float16/bfloat16
inputs are computed in float32 and cast back on the CPU, and loaded as they are with float32
accumulation by the CUDA kernels (the original ran in float32 only).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor

from ..registry import MODELS
from . import _ext
from ._checks import (autocast_inputs, check_like, check_shape, check_tensor, check_window,
                      compute_dtype)


def elsa_aggregate_reference(v: Tensor,
                             attn: Tensor,
                             kernel_size: int,
                             dilation: int = 1,
                             mul_ghost: Optional[Tensor] = None,
                             add_ghost: Optional[Tensor] = None) -> Tensor:
    """Pure-PyTorch ELSA aggregation (``F.unfold``, as in the original's CPU path).

    It materialises ``B * C * k^2 * H * W`` elements, so it is meant for tests and small inputs.
    Arguments as in :func:`elsa_aggregate`; no checks.
    """
    B, C, H, W = v.shape
    G, K = attn.shape[1], kernel_size * kernel_size
    pad = kernel_size // 2 * dilation
    cols = F.unfold(v, kernel_size, dilation=dilation, padding=pad)  # [B, C*K, H*W]
    cols = cols.view(B, G, C // G, K, H * W)
    filt = attn.reshape(B, G, 1, K, H * W)
    if mul_ghost is not None:
        filt = filt * mul_ghost.reshape(1, G, C // G, K, 1)
    if add_ghost is not None:
        filt = filt + add_ghost.reshape(1, G, C // G, K, 1)
    out = (cols * filt).sum(3)  # [B, G, C/G, H*W]
    return out.reshape(B, C, H, W)


class ELSAAggregateFunction(torch.autograd.Function):
    """Compiled ELSA aggregation (``torch.ops.mmvit_plugins.elsa_aggregate_*``).

    Saves only its inputs; the backward recomputes what it needs, so no ``k^2``-times larger
    tensor is ever stored.
    """

    @staticmethod
    def forward(ctx, v, attn, mul_ghost, add_ghost, kernel_size, dilation):
        ctx.save_for_backward(v, attn, mul_ghost, add_ghost)
        ctx.kernel_size, ctx.dilation = kernel_size, dilation
        return torch.ops.mmvit_plugins.elsa_aggregate_forward(v, attn, mul_ghost, add_ghost,
                                                              kernel_size, dilation)

    @staticmethod
    def backward(ctx, grad_out):
        v, attn, mul_ghost, add_ghost = ctx.saved_tensors
        mask = list(ctx.needs_input_grad[:4])
        grads = torch.ops.mmvit_plugins.elsa_aggregate_backward(grad_out, v, attn, mul_ghost,
                                                                add_ghost, ctx.kernel_size,
                                                                ctx.dilation, mask)
        grads = [g if need else None for g, need in zip(grads, mask)]
        return (*grads, None, None)


def elsa_aggregate(v: Tensor,
                   attn: Tensor,
                   kernel_size: int,
                   dilation: int = 1,
                   mul_ghost: Optional[Tensor] = None,
                   add_ghost: Optional[Tensor] = None) -> Tensor:
    """ELSA aggregation of ``v`` with per-pixel attention ``attn`` (see the module docstring).

    Args:
        v (Tensor): values, ``[B, C, H, W]``.
        attn (Tensor): attention over the taps, ``[B, G, k*k, H, W]``; head ``g`` serves
            channels ``g * C/G .. (g+1) * C/G - 1``. ``G`` must divide ``C``.
        kernel_size (int): window side ``k``, odd.
        dilation (int): spacing of the taps. Defaults to 1.
        mul_ghost (Tensor, optional): ``[C, k, k]`` multiplied with the attention.
            Defaults to None (ones).
        add_ghost (Tensor, optional): ``[C, k, k]`` added to the attention.
            Defaults to None (zeros).

    Returns:
        Tensor: ``[B, C, H, W]``, the dtype of ``v`` (float32 under autocast). Runs the compiled
        kernels where they exist for the device (float16/bfloat16 computed in float32), else
        the reference.
    """
    v, attn, mul_ghost, add_ghost = autocast_inputs(v, attn, mul_ghost, add_ghost)
    check_window(kernel_size, dilation)
    check_tensor('v', v, 4, '[B, C, H, W]')
    check_tensor('attn', attn, 5, '[B, G, k*k, H, W]')
    check_like('attn', attn, 'v', v)
    B, C, H, W = v.shape
    G, K = attn.shape[1], kernel_size * kernel_size
    if G < 1 or C % G:
        raise ValueError(f"attn's head count G={G} (dim 1) must divide the channels of v, C={C}")
    check_shape('attn', attn, (B, G, K, H, W), '[B, G, k*k, H, W]')
    for name, ghost in (('mul_ghost', mul_ghost), ('add_ghost', add_ghost)):
        if ghost is not None:
            check_tensor(name, ghost, 3, '[C, k, k]')
            check_like(name, ghost, 'v', v)
            check_shape(name, ghost, (C, kernel_size, kernel_size), '[C, k, k]')
    if not _ext.use_ext(v):
        return elsa_aggregate_reference(v, attn, kernel_size, dilation, mul_ghost, add_ghost)
    dtype = compute_dtype(v)
    cast = (lambda t: None if t is None else t.to(dtype)) if dtype != v.dtype else (lambda t: t)
    out = ELSAAggregateFunction.apply(
        cast(v), cast(attn), cast(mul_ghost), cast(add_ghost), kernel_size, dilation)
    return out.to(v.dtype)


@MODELS.register_module()
class ELSAAggregation(BaseModule):
    """ELSA aggregation with learnable ghost heads (``ELSA``'s ``ghost_head``).

    Args:
        channels (int): channels ``C`` of the values.
        kernel_size (int): window side, odd. Defaults to 7.
        dilation (int): tap spacing. Defaults to 1.
        mul_ghost (bool): learn a ``[C, k, k]`` multiplicative ghost (original init: standard
            normal). Defaults to False.
        add_ghost (bool): learn a ``[C, k, k]`` additive ghost (original init: truncated
            normal, std 0.02). Defaults to True, as in the released ELSA-Swin models.
        init_cfg (dict, optional): mmengine init config. Defaults to None.

    Shapes: ``forward(v [B, C, H, W], attn [B, G, k*k, H, W]) -> [B, C, H, W]``.
    """

    def __init__(self,
                 channels: int,
                 kernel_size: int = 7,
                 dilation: int = 1,
                 mul_ghost: bool = False,
                 add_ghost: bool = True,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        check_window(kernel_size, dilation)
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f'channels must be a positive int, got {channels!r}')
        self.channels, self.kernel_size, self.dilation = channels, kernel_size, dilation
        shape = (channels, kernel_size, kernel_size)
        self.mul_ghost = torch.nn.Parameter(torch.randn(shape)) if mul_ghost else None
        self.add_ghost = torch.nn.Parameter(torch.zeros(shape)) if add_ghost else None
        if add_ghost:
            trunc_normal_(self.add_ghost, std=0.02)

    def forward(self, v: Tensor, attn: Tensor) -> Tensor:
        return elsa_aggregate(v, attn, self.kernel_size, self.dilation, self.mul_ghost,
                              self.add_ghost)

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, kernel_size={self.kernel_size}, '
                f'dilation={self.dilation}, mul_ghost={self.mul_ghost is not None}, '
                f'add_ghost={self.add_ghost is not None}')
