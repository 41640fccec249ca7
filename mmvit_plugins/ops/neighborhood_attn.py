"""Neighbourhood attention 2-D (NAT, arXiv 2204.07143), NATTEN-compatible semantics.

Every query attends to exactly ``k x k`` keys: along each axis, the ``k`` positions of its own
residue class modulo ``dilation`` that are nearest to it, the window shifted to stay inside
the map (so maps must be at least ``k * dilation`` along each axis). Tap ``t = ty * k + tx`` in
window order. The optional relative position bias ``rpb [heads, 2k-1, 2k-1]`` is indexed per
axis by ``(key - query) / dilation + k - 1``.

Layout is heads-last, as in NATTEN: ``q, k, v, out: [B, H, W, heads, d]``,
``attn: [B, H, W, heads, k*k]``. Layers per op: ``*_reference`` (pure PyTorch gather, the oracle
and the fallback) -> ``NA2D{QK,AV}Function`` (compiled forward and backward) -> ``na2d_qk``,
``na2d_av``, ``na2d`` (checks, then compiled or reference) -> ``NeighborhoodAttention2D``.
Unlike NATTEN >= 0.20, the unfused entry points, relative position bias, float64 and a CPU
backward are all kept.
"""
from typing import Optional

import torch
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor, nn

from ..registry import MODELS
from . import _ext
from ._checks import (autocast_inputs, check_like, check_shape, check_tensor, check_window,
                      compute_dtype)

# ----------------------------------------------------------------------------- reference


def neighborhood_index(size: int, kernel_size: int, dilation: int, device=None):
    """Window positions and bias indices along one axis.

    Returns:
        tuple[Tensor, Tensor]: ``pos [size, k]``, the key position of tap ``m`` for query ``i``,
        and ``rel [size, k]``, its relative-position-bias index ``(pos - i) / dilation + k - 1``.
    """
    i = torch.arange(size, device=device)
    r, j = i % dilation, i // dilation
    members = (size - r + dilation - 1) // dilation  # size of i's residue class
    start = torch.minimum((j - kernel_size // 2).clamp(min=0), members - kernel_size)
    m = torch.arange(kernel_size, device=device)
    pos = r[:, None] + (start[:, None] + m) * dilation
    rel = (start - j)[:, None] + m + kernel_size - 1
    return pos, rel


def _gather_neighbours(x: Tensor, kernel_size: int, dilation: int) -> Tensor:
    """``x [B, H, W, heads, d]`` -> ``[B, H, W, k*k, heads, d]``, the window of every query."""
    B, H, W = x.shape[:3]
    py, _ = neighborhood_index(H, kernel_size, dilation, x.device)
    px, _ = neighborhood_index(W, kernel_size, dilation, x.device)
    idx = py[:, None, :, None] * W + px[None, :, None, :]  # [H, W, k, k] flat key index
    flat = x.reshape(B, H * W, *x.shape[3:])
    return flat[:, idx.reshape(-1)].reshape(B, H, W, kernel_size * kernel_size, *x.shape[3:])


def _rpb_table(rpb: Tensor, H: int, W: int, kernel_size: int, dilation: int) -> Tensor:
    """``rpb [heads, 2k-1, 2k-1]`` -> the bias of every (query, tap), ``[H, W, heads, k*k]``."""
    _, ry = neighborhood_index(H, kernel_size, dilation, rpb.device)
    _, rx = neighborhood_index(W, kernel_size, dilation, rpb.device)
    bias = rpb[:, ry[:, None, :, None], rx[None, :, None, :]]  # [heads, H, W, k, k]
    return bias.permute(1, 2, 0, 3, 4).reshape(H, W, rpb.shape[0], -1)


def na2d_qk_reference(q: Tensor,
                      k: Tensor,
                      kernel_size: int,
                      dilation: int = 1,
                      rpb: Optional[Tensor] = None) -> Tensor:
    """Pure-PyTorch :func:`na2d_qk` (materialises every window of ``k``). No checks."""
    kn = _gather_neighbours(k, kernel_size, dilation)  # [B, H, W, K, heads, d]
    attn = torch.einsum('byxhd,byxthd->byxht', q, kn)
    if rpb is not None:
        attn = attn + _rpb_table(rpb, q.shape[1], q.shape[2], kernel_size, dilation)
    return attn


def na2d_av_reference(attn: Tensor, v: Tensor, kernel_size: int, dilation: int = 1) -> Tensor:
    """Pure-PyTorch :func:`na2d_av` (materialises every window of ``v``). No checks."""
    vn = _gather_neighbours(v, kernel_size, dilation)  # [B, H, W, K, heads, d]
    return torch.einsum('byxht,byxthd->byxhd', attn, vn)


def na2d_reference(q: Tensor,
                   k: Tensor,
                   v: Tensor,
                   kernel_size: int,
                   dilation: int = 1,
                   rpb: Optional[Tensor] = None,
                   scale: Optional[float] = None) -> Tensor:
    """Pure-PyTorch :func:`na2d`. No checks."""
    scale = q.shape[-1]**-0.5 if scale is None else scale
    attn = na2d_qk_reference(q * scale, k, kernel_size, dilation, rpb).softmax(dim=-1)
    return na2d_av_reference(attn, v, kernel_size, dilation)


# ----------------------------------------------------------------------------- compiled


class NA2DQKFunction(torch.autograd.Function):
    """Compiled :func:`na2d_qk` (``torch.ops.mmvit_plugins.na2d_qk_*``)."""

    @staticmethod
    def forward(ctx, q, k, rpb, kernel_size, dilation):
        ctx.save_for_backward(q, k)
        ctx.kernel_size, ctx.dilation = kernel_size, dilation
        return torch.ops.mmvit_plugins.na2d_qk_forward(q, k, rpb, kernel_size, dilation)

    @staticmethod
    def backward(ctx, grad_attn):
        q, k = ctx.saved_tensors
        mask = list(ctx.needs_input_grad[:3])
        grads = torch.ops.mmvit_plugins.na2d_qk_backward(grad_attn, q, k, ctx.kernel_size,
                                                         ctx.dilation, mask)
        return (*(g if need else None for g, need in zip(grads, mask)), None, None)


class NA2DAVFunction(torch.autograd.Function):
    """Compiled :func:`na2d_av` (``torch.ops.mmvit_plugins.na2d_av_*``)."""

    @staticmethod
    def forward(ctx, attn, v, kernel_size, dilation):
        ctx.save_for_backward(attn, v)
        ctx.kernel_size, ctx.dilation = kernel_size, dilation
        return torch.ops.mmvit_plugins.na2d_av_forward(attn, v, kernel_size, dilation)

    @staticmethod
    def backward(ctx, grad_out):
        attn, v = ctx.saved_tensors
        mask = list(ctx.needs_input_grad[:2])
        grads = torch.ops.mmvit_plugins.na2d_av_backward(grad_out, attn, v, ctx.kernel_size,
                                                         ctx.dilation, mask)
        return (*(g if need else None for g, need in zip(grads, mask)), None, None)


class NA2DFusedFunction(torch.autograd.Function):
    """Fused :func:`na2d` (``torch.ops.mmvit_plugins.na2d_fused_*``, CUDA and CPU).

    The forward keeps every query's ``k*k`` weights in on-chip scratch and saves only the output
    and the log-sum-exp of the logits ``[B, H, W, heads]``; the backward recomputes the weights
    from them, so no ``k*k`` tensor is ever stored in device memory.
    """

    @staticmethod
    def forward(ctx, q, k, v, rpb, kernel_size, dilation, scale):
        out, lse = torch.ops.mmvit_plugins.na2d_fused_forward(q, k, v, rpb, kernel_size,
                                                              dilation, scale)
        ctx.save_for_backward(q, k, v, rpb, out, lse)
        ctx.params = (kernel_size, dilation, scale)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, rpb, out, lse = ctx.saved_tensors
        mask = list(ctx.needs_input_grad[:4])
        mask[3] = mask[3] and rpb is not None
        grads = torch.ops.mmvit_plugins.na2d_fused_backward(grad_out.contiguous(), q, k, v, rpb,
                                                            out, lse, *ctx.params, mask)
        return (*(g if need else None for g, need in zip(grads, mask)), None, None, None)


# ----------------------------------------------------------------------------- functional

_MAP = '[B, H, W, heads, d]'


def _check_map(name: str, x: Tensor, kernel_size: int, dilation: int) -> None:
    check_tensor(name, x, 5, _MAP)
    H, W = x.shape[1:3]
    if min(H, W) < kernel_size * dilation:
        raise ValueError(f'{name}: kernel_size * dilation = {kernel_size * dilation} is larger '
                         f'than the {H}x{W} map; neighbourhood attention needs both sides '
                         f'>= kernel_size * dilation')


def _check_qk(q, k, kernel_size, dilation, rpb) -> None:
    check_window(kernel_size, dilation)
    _check_map('q', q, kernel_size, dilation)
    check_tensor('k', k, 5, _MAP)
    check_like('k', k, 'q', q)
    check_shape('k', k, q.shape, _MAP + ' (the shape of q)')
    if rpb is not None:
        n = 2 * kernel_size - 1
        check_tensor('rpb', rpb, 3, '[heads, 2k-1, 2k-1]')
        check_like('rpb', rpb, 'q', q)
        check_shape('rpb', rpb, (q.shape[3], n, n), '[heads, 2k-1, 2k-1]')


def _check_av(attn, v, kernel_size, dilation) -> None:
    check_window(kernel_size, dilation)
    _check_map('v', v, kernel_size, dilation)
    check_tensor('attn', attn, 5, '[B, H, W, heads, k*k]')
    check_like('attn', attn, 'v', v)
    check_shape('attn', attn, (*v.shape[:4], kernel_size * kernel_size), '[B, H, W, heads, k*k]')


def _cast_all(dtype, *tensors):
    return [None if t is None else t.to(dtype) for t in tensors]


def _needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _qk(q, k, kernel_size, dilation, rpb):
    if not _ext.use_ext(q):
        return na2d_qk_reference(q, k, kernel_size, dilation, rpb)
    q_, k_, rpb_ = _cast_all(compute_dtype(q), q, k, rpb)
    return NA2DQKFunction.apply(q_, k_, rpb_, kernel_size, dilation).to(q.dtype)


def _av(attn, v, kernel_size, dilation):
    if not _ext.use_ext(v):
        return na2d_av_reference(attn, v, kernel_size, dilation)
    attn_, v_ = _cast_all(compute_dtype(v), attn, v)
    return NA2DAVFunction.apply(attn_, v_, kernel_size, dilation).to(v.dtype)


def na2d_qk(q: Tensor,
            k: Tensor,
            kernel_size: int,
            dilation: int = 1,
            rpb: Optional[Tensor] = None) -> Tensor:
    """Attention logits of every query with its ``k x k`` neighbourhood (no scaling inside).

    Args:
        q (Tensor): queries ``[B, H, W, heads, d]``.
        k (Tensor): keys, the shape of ``q``.
        kernel_size (int): window side, odd.
        dilation (int): spacing of the window. Defaults to 1. ``H, W >= kernel_size * dilation``.
        rpb (Tensor, optional): relative position bias ``[heads, 2k-1, 2k-1]``, added to the
            logits. Defaults to None.

    Returns:
        Tensor: logits ``[B, H, W, heads, k*k]``, tap ``t = ty * k + tx``. Under autocast all
        three ops compute and return float32.
    """
    q, k, rpb = autocast_inputs(q, k, rpb)
    _check_qk(q, k, kernel_size, dilation, rpb)
    return _qk(q, k, kernel_size, dilation, rpb)


def na2d_av(attn: Tensor, v: Tensor, kernel_size: int, dilation: int = 1) -> Tensor:
    """Weighted sum of every query's ``k x k`` neighbourhood of values.

    Args:
        attn (Tensor): weights ``[B, H, W, heads, k*k]`` (softmaxed logits of :func:`na2d_qk`).
        v (Tensor): values ``[B, H, W, heads, d]``.
        kernel_size (int): window side, odd.
        dilation (int): spacing of the window. Defaults to 1.

    Returns:
        Tensor: ``[B, H, W, heads, d]``.
    """
    attn, v = autocast_inputs(attn, v)
    _check_av(attn, v, kernel_size, dilation)
    return _av(attn, v, kernel_size, dilation)


def na2d(q: Tensor,
         k: Tensor,
         v: Tensor,
         kernel_size: int,
         dilation: int = 1,
         rpb: Optional[Tensor] = None,
         scale: Optional[float] = None,
         fused: Optional[bool] = None) -> Tensor:
    """Neighbourhood attention: ``na2d_av(softmax(na2d_qk(q * scale, k) + rpb), v)``.

    Args:
        q, k, v (Tensor): ``[B, H, W, heads, d]`` each.
        kernel_size (int): window side, odd.
        dilation (int): spacing of the window. Defaults to 1.
        rpb (Tensor, optional): relative position bias ``[heads, 2k-1, 2k-1]``. Defaults to None.
        scale (float, optional): query scale. Defaults to None, meaning ``d ** -0.5``.
        fused (bool, optional): the fused kernels (:class:`NA2DFusedFunction`: no ``k*k``
            tensor in memory) instead of :func:`na2d_qk` + softmax + :func:`na2d_av`, where
            compiled kernels exist (else the reference). Defaults to None: fused on CUDA; on the
            CPU fused only when no gradient is needed (inference), since the CPU's fused
            backward (the CUDA kernels' element code) is slower than the unfused one.

    Returns:
        Tensor: ``[B, H, W, heads, d]``.
    """
    q, k, v, rpb = autocast_inputs(q, k, v, rpb)
    _check_qk(q, k, kernel_size, dilation, rpb)
    check_tensor('v', v, 5, _MAP)
    check_like('v', v, 'q', q)
    check_shape('v', v, q.shape, _MAP + ' (the shape of q)')
    if scale is None:
        scale = q.shape[-1]**-0.5
    if fused is None:
        fused = q.device.type == 'cuda' or not _needs_grad(q, k, v, rpb)
    if fused and _ext.use_ext(q):
        q_, k_, v_, rpb_ = _cast_all(compute_dtype(q), q, k, v, rpb)
        out = NA2DFusedFunction.apply(q_, k_, v_, rpb_, kernel_size, dilation, float(scale))
        return out.to(q.dtype)
    attn = _qk(q * scale, k, kernel_size, dilation, rpb).softmax(dim=-1)
    return _av(attn, v, kernel_size, dilation)


# ----------------------------------------------------------------------------- module


@MODELS.register_module()
class NeighborhoodAttention2D(BaseModule):
    """Multi-head 2-D neighbourhood attention on channels-last maps.

    ``x [B, H, W, C]`` -> qkv projection -> :func:`na2d_qk` (+ relative position bias) ->
    softmax -> attention dropout -> :func:`na2d_av` -> output projection -> ``[B, H, W, C]``.

    Args:
        embed_dims (int): channels ``C``.
        num_heads (int): heads; must divide ``embed_dims``.
        kernel_size (int): window side, odd. Defaults to 7.
        dilation (int): window spacing. Defaults to 1.
        qkv_bias (bool): bias in the qkv projection. Defaults to True.
        qk_scale (float, optional): query scale. Defaults to None (``head_dims ** -0.5``).
        rel_pos_bias (bool): learn a ``[heads, 2k-1, 2k-1]`` bias table (truncated normal,
            std 0.02). Defaults to True.
        attn_drop (float): dropout on the attention weights. Defaults to 0.
        proj_drop (float): dropout after the output projection. Defaults to 0.
        init_cfg (dict, optional): mmengine init config. Defaults to None.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 kernel_size: int = 7,
                 dilation: int = 1,
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None,
                 rel_pos_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        check_window(kernel_size, dilation)
        if num_heads < 1 or embed_dims % num_heads:
            raise ValueError(f'num_heads={num_heads} must divide embed_dims={embed_dims}')
        self.embed_dims, self.num_heads = embed_dims, num_heads
        self.kernel_size, self.dilation = kernel_size, dilation
        self.scale = qk_scale or (embed_dims // num_heads)**-0.5
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.rpb = None
        if rel_pos_bias:
            n = 2 * kernel_size - 1
            self.rpb = nn.Parameter(torch.zeros(num_heads, n, n))
            trunc_normal_(self.rpb, std=0.02)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[-1] != self.embed_dims:
            raise ValueError(f'x must be [B, H, W, {self.embed_dims}] (channels-last), '
                             f'got {tuple(x.shape)}')
        B, H, W, C = x.shape
        qkv = self.qkv(x).reshape(B, H, W, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.unbind(3)  # each [B, H, W, heads, d]
        if self.training and self.attn_drop.p > 0:
            attn = na2d_qk(q * self.scale, k, self.kernel_size, self.dilation, self.rpb)
            attn = self.attn_drop(attn.softmax(dim=-1))
            out = na2d_av(attn, v, self.kernel_size, self.dilation)  # [B, H, W, heads, d]
        else:  # fused on CUDA and in inference (no dropout on the weights needed)
            out = na2d(q, k, v, self.kernel_size, self.dilation, self.rpb, self.scale)
        return self.proj_drop(self.proj(out.reshape(B, H, W, C)))

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, '
                f'kernel_size={self.kernel_size}, dilation={self.dilation}, '
                f'rel_pos_bias={self.rpb is not None}')
