"""MAFormer: a documented reconstruction (no code or architecture table was ever published).

Wang et al., "MAFormer: A Transformer Network with Multi-scale Attention Fusion for Visual
Recognition", arXiv 2209.01620 (Neurocomputing 595:127828, 2024). Only the abstract, a citing
paper's restatement of the block equations and a summary of the paper were available
(``specs/maformer.md``); **every number of the architecture below is our choice** (spec section
6), each exposed as an argument so that it can be revised:

* **MAF blocks in stages 1-2** (``MAFBlock``). A local branch, the complete pre-LN sub-block
  ``x_l = x + LWA(LN(x)); x_l = x_l + MLP(LN(x_l))``; LWA is multi-head self-attention inside
  non-overlapping ``window_size`` x ``window_size`` windows (no shift) with a relative position
  bias, or neighbourhood attention through our compiled ``na2d`` op
  (``local_attn='neighborhood'``, the paper ablates local aggregation choices). **GLD**
  (global learning with down-sampling): ``LN`` -> a Linear along the *token* axis, shared by
  the channels, from ``M0`` to ``floor(gld_ratio * M0)`` tokens (ratio 0.5 is the paper's) ->
  ``+ Pos``. **Fusion**: multi-head cross-attention in which the local tokens (``LN(x_l)``)
  query the GLD tokens (keys and values), scale ``d ** -0.5``, an output projection and a
  residual onto ``x_l``; no MLP after it. ``fusion='parallel'`` (the paper's MAF design, its
  figure (c)): GLD reads the block input; ``fusion='sequential'`` (its figure (b)): GLD reads
  the local branch's output.
* ``pos='learned'``: one learned ``[floor(gld_ratio * M0), C]`` table per MAF block;
  ``pos='interp'``: the other reading of the paper's ``Pos(X)``, a parameter-free linear
  interpolation of the pooled tokens themselves down to the GLD token count.
* **GLD at any resolution**: the token-axis Linear is bound to its token count (at stride 4 of
  an 800x1333 image it would need 2.3 billion weights), so the stage's map is first resampled
  to the fixed ``gld_grid`` (default: the stage's grid at 224, 56x56 and 28x28): adaptive
  average pooling where the map is larger, bilinear up-sampling where it is smaller. GLD's
  parameters are therefore the same for ImageNet and for dense tasks, and its cost is fixed.
* **Stages 3-4**: plain pre-LN ViT blocks with global multi-head self-attention (SDPA with
  contiguous heads: memory linear in the token count). Stem: a 4x4 stride-4 conv + LN;
  between stages a 3x3 stride-2 conv + LN (as CSWin); widths ``C, 2C, 4C, 8C``.
* **Variants** mirror CSWin's hierarchy (every claim of the paper is against CSWin): tiny as
  CSWin-T (C 64, depths 1-2-21-1), base and large as CSWin-B / -L (depths 2-4-32-2); small
  keeps CSWin-S's depths except for **one stage-1 block instead of two**: with two, GLD's
  56x56 token-axis Linear (4.9M weights a block) puts small 30% above CSWin-S's 35M, against
  the abstract's "similar-sized parameters".

Any input size: the stem pads to a multiple of 4, windows pad to a multiple of the window with
the padded keys masked out (so border windows are partial windows and the result does not
depend on the padding), neighbourhood attention pads maps smaller than its window with zeros
(as NAT does); outputs are ``ceil(H / s) x ceil(W / s)`` NCHW maps with one LayerNorm each.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor, nn

from ...ops import NeighborhoodAttention2D
from ...ops._checks import check_window
from ...registry import MODELS
from ._base import ArchBackbone, drop_path_rates, token_attention

LOCAL_ATTNS = ('window', 'neighborhood')
FUSIONS = ('parallel', 'sequential')
POS_MODES = ('learned', 'interp')


class Mlp(nn.Module):
    """``fc1 -> GELU -> dropout -> fc2 -> dropout`` on the last dimension."""

    def __init__(self, embed_dims: int, hidden_dims: int, drop: float = 0.):
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class WindowAttention(BaseModule):
    """Multi-head self-attention inside non-overlapping windows of a ``[B, H, W, C]`` map.

    The windows tile the map from its top-left corner; those at the bottom and right borders
    hold fewer positions when ``window_size`` does not divide the map (the map is padded and
    the padded keys are masked out). The bias ``rpb [heads, 2w-1, 2w-1]`` is indexed by
    ``key - query + w - 1`` per axis, the layout of :class:`NeighborhoodAttention2D`, so that
    the two local attentions have the same parameters (``qkv``, ``rpb``, ``proj``).

    Args:
        embed_dims (int): channels ``C``.
        num_heads (int): heads; must divide ``embed_dims``.
        window_size (int): window side ``w``.
        qkv_bias (bool): bias in the qkv projection. Defaults to True.
        attn_drop (float): dropout on the attention weights. Defaults to 0.
        proj_drop (float): dropout after the output projection. Defaults to 0.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, qkv_bias: bool = True,
                 attn_drop: float = 0., proj_drop: float = 0.,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.num_heads, self.window_size = num_heads, window_size
        self.scale = (embed_dims // num_heads)**-0.5
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=qkv_bias)
        n = 2 * window_size - 1
        self.rpb = nn.Parameter(torch.zeros(num_heads, n, n))
        trunc_normal_(self.rpb, std=0.02)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        yy, xx = torch.meshgrid(torch.arange(window_size), torch.arange(window_size),
                                indexing='ij')
        yy, xx = yy.flatten(), xx.flatten()  # [N], N = w*w positions of a window
        rel = (yy[None] - yy[:, None] + n // 2) * n + (xx[None] - xx[:, None] + n // 2)
        self.register_buffer('rel_index', rel, persistent=False)  # [N query, N key]

    def forward(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        h, ws = self.num_heads, self.window_size
        ph, pw = (-H) % ws, (-W) % ws
        qkv = F.pad(self.qkv(x), (0, 0, 0, pw, 0, ph))  # [B, Hp, Wp, 3C]
        nh, nw = (H + ph) // ws, (W + pw) // ws
        # [B, nh, ws, nw, ws, 3, h, d] -> [3, B, nh, nw, h, ws, ws, d]
        qkv = qkv.view(B, nh, ws, nw, ws, 3, h, C // h).permute(5, 0, 1, 3, 6, 2, 4, 7)
        q, k, v = qkv.reshape(3, B, nh * nw * h, ws * ws, C // h).unbind(0)
        mask = self.rpb.flatten(1)[:, self.rel_index].expand(nh * nw, -1, -1, -1)  # [nW, h, N, N]
        if ph or pw:
            valid = (torch.arange(H + ph, device=x.device) < H)[:, None] \
                & (torch.arange(W + pw, device=x.device) < W)[None]
            valid = valid.view(nh, ws, nw, ws).transpose(1, 2).reshape(nh * nw, 1, 1, -1)
            mask = mask.masked_fill(~valid, float('-inf'))  # padded keys out
        mask = mask.reshape(-1, ws * ws, ws * ws).to(q.dtype)  # [nW*h, N, N]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_drop if self.training else 0.,
            scale=self.scale)  # [B, nW*h, N, d]
        # [B, nh, nw, h, ws, ws, d] -> [B, nh, ws, nw, ws, h, d]
        out = out.view(B, nh, nw, h, ws, ws, C // h).permute(0, 1, 4, 2, 5, 3, 6)
        out = out.reshape(B, H + ph, W + pw, C)[:, :H, :W]
        return self.proj_drop(self.proj(out))

    def extra_repr(self) -> str:
        return f'num_heads={self.num_heads}, window_size={self.window_size}'


class GLD(BaseModule):
    """Global learning with down-sampling: ``[B, H, W, C]`` -> ``[B, floor(ratio*M0), C]``.

    ``LN`` -> resample to ``grid`` (``M0 = H0 * W0`` tokens) -> a Linear along the token axis to
    ``floor(ratio * M0)`` tokens, shared by the channels -> ``+ Pos``.

    Args:
        embed_dims (int): channels ``C``.
        grid (tuple[int, int]): ``(H0, W0)``, the token grid the Linear is built for.
        ratio (float): token ratio ``N``. Defaults to 0.5.
        pos (str): ``'learned'`` (a ``[N*M0, C]`` table) or ``'interp'`` (the pooled tokens
            linearly interpolated to ``N*M0``). Defaults to ``'learned'``.
    """

    def __init__(self, embed_dims: int, grid: Tuple[int, int], ratio: float = 0.5,
                 pos: str = 'learned', init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.grid = tuple(grid)
        m0 = self.grid[0] * self.grid[1]
        self.num_tokens = math.floor(ratio * m0)
        self.norm = nn.LayerNorm(embed_dims)
        self.fc = nn.Linear(m0, self.num_tokens)
        self.pos_mode = pos
        self.pos = None
        if pos == 'learned':
            self.pos = nn.Parameter(torch.zeros(self.num_tokens, embed_dims))
            trunc_normal_(self.pos, std=0.02)

    def resample(self, x: Tensor) -> Tensor:
        """``[B, C, H, W]`` -> ``[B, C, H0, W0]``: average pooling along the axes longer than
        the grid, then bilinear up-sampling along those shorter (identity on the grid)."""
        (H, W), (H0, W0) = x.shape[-2:], self.grid
        if (H, W) == (H0, W0):
            return x
        x = F.adaptive_avg_pool2d(x, (min(H, H0), min(W, W0)))
        if H < H0 or W < W0:
            x = F.interpolate(x, size=self.grid, mode='bilinear', align_corners=False)
        return x

    def forward(self, x: Tensor) -> Tensor:
        g = self.resample(self.norm(x).permute(0, 3, 1, 2)).flatten(2)  # [B, C, M0]
        t = self.fc(g)  # [B, C, N*M0]
        if self.pos is not None:
            t = t + self.pos.t()
        else:
            t = t + F.interpolate(g, size=self.num_tokens, mode='linear', align_corners=False)
        return t.transpose(1, 2)  # [B, N*M0, C]

    def extra_repr(self) -> str:
        return f'grid={self.grid}, num_tokens={self.num_tokens}, pos={self.pos_mode!r}'


class CrossAttention(BaseModule):
    """Multi-head attention of ``x [B, N, C]`` (queries) over ``y [B, M, C]`` (keys, values):
    ``q``, ``kv`` and ``proj`` Linears, scale ``d ** -0.5`` (the MAF fusion). With
    ``self_attn=True`` it is self-attention of ``x`` (the global blocks): one ``qkv`` Linear,
    and ``y`` is not given."""

    def __init__(self, embed_dims: int, num_heads: int, self_attn: bool = False,
                 qkv_bias: bool = True, attn_drop: float = 0., proj_drop: float = 0.,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.num_heads, self.self_attn = num_heads, self_attn
        self.scale = (embed_dims // num_heads)**-0.5
        if self_attn:
            self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=qkv_bias)
        else:
            self.q = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
            self.kv = nn.Linear(embed_dims, 2 * embed_dims, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if self.self_attn:
            q, k, v = self.qkv(x).chunk(3, dim=-1)
        else:
            q, (k, v) = self.q(x), self.kv(y).chunk(2, dim=-1)
        out = token_attention(q, k, v, self.num_heads, self.scale,
                              self.attn_drop if self.training else 0.)
        return self.proj_drop(self.proj(out))


class _Block(BaseModule):
    """Gradient checkpointing around :meth:`_inner_forward`."""
    with_cp = False

    def forward(self, x: Tensor) -> Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._inner_forward, x, use_reentrant=False)
        return self._inner_forward(x)


class MAFBlock(_Block):
    """Multi-scale attention fusion block on ``[B, H, W, C]`` (see the module docstring).

    Args:
        embed_dims (int): channels ``C``.
        num_heads (int): heads of the local attention and of the fusion.
        window_size (int): local window side.
        gld_grid (tuple[int, int]): GLD's token grid.
        gld_ratio (float): GLD's token ratio.
        local_attn (str): ``'window'`` or ``'neighborhood'``.
        fusion (str): ``'parallel'`` (GLD reads the block input) or ``'sequential'`` (GLD
            reads the local branch's output).
        pos (str): GLD's ``Pos``: ``'learned'`` or ``'interp'``.
        mlp_ratio (float): hidden width of the local branch's MLP over ``C``.
        qkv_bias (bool): bias of the q/k/v projections.
        drop (float): dropout after projections and in the MLP.
        attn_drop (float): dropout on attention weights.
        drop_path (float): stochastic depth of the three residual branches.
        with_cp (bool): gradient checkpointing.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int,
                 gld_grid: Tuple[int, int], gld_ratio: float = 0.5, local_attn: str = 'window',
                 fusion: str = 'parallel', pos: str = 'learned', mlp_ratio: float = 4.,
                 qkv_bias: bool = True, drop: float = 0., attn_drop: float = 0.,
                 drop_path: float = 0., with_cp: bool = False, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.window_size, self.local_attn, self.fusion = window_size, local_attn, fusion
        self.with_cp = with_cp
        self.norm1 = nn.LayerNorm(embed_dims)
        if local_attn == 'window':
            self.attn = WindowAttention(embed_dims, num_heads, window_size, qkv_bias,
                                        attn_drop, drop)
        else:
            self.attn = NeighborhoodAttention2D(embed_dims, num_heads, window_size,
                                                qkv_bias=qkv_bias, attn_drop=attn_drop,
                                                proj_drop=drop)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio), drop)
        self.gld = GLD(embed_dims, gld_grid, gld_ratio, pos)
        self.norm3 = nn.LayerNorm(embed_dims)
        self.fuse = CrossAttention(embed_dims, num_heads, qkv_bias=qkv_bias,
                                   attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def local(self, x: Tensor) -> Tensor:
        """The local attention of ``x [B, H, W, C]`` (already normalised)."""
        H, W = x.shape[1:3]
        if self.local_attn == 'window':
            return self.attn(x)
        ph, pw = max(0, self.window_size - H), max(0, self.window_size - W)
        if ph or pw:  # neighbourhood attention needs maps at least as large as its window
            return self.attn(F.pad(x, (0, 0, 0, pw, 0, ph)))[:, :H, :W]
        return self.attn(x)

    def _inner_forward(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        x_l = x + self.drop_path(self.local(self.norm1(x)))
        x_l = x_l + self.drop_path(self.mlp(self.norm2(x_l)))
        g = self.gld(x if self.fusion == 'parallel' else x_l)  # [B, M, C]
        fused = self.fuse(self.norm3(x_l).reshape(B, H * W, C), g)
        return x_l + self.drop_path(fused.view(B, H, W, C))


class GlobalBlock(_Block):
    """Pre-LN ViT block on ``[B, H, W, C]``: global multi-head self-attention, then an MLP."""

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float = 4.,
                 qkv_bias: bool = True, drop: float = 0., attn_drop: float = 0.,
                 drop_path: float = 0., with_cp: bool = False, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.with_cp = with_cp
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = CrossAttention(embed_dims, num_heads, self_attn=True, qkv_bias=qkv_bias,
                                   attn_drop=attn_drop, proj_drop=drop)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def _inner_forward(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        t = x.reshape(B, H * W, C)
        t = t + self.drop_path(self.attn(self.norm1(t)))
        t = t + self.drop_path(self.mlp(self.norm2(t)))
        return t.view(B, H, W, C)


class ConvEmbed(nn.Module):
    """Conv -> LayerNorm -> ``[B, H', W', C]``. ``stem=True``: the stem, on the image
    ``[B, C_in, H, W]`` (4x4 stride 4, the input padded to a multiple of 4); else a merging
    layer between stages, on ``[B, H, W, C_in]`` (3x3 stride 2, padding 1: ``ceil`` sizes)."""

    def __init__(self, in_channels: int, embed_dims: int, stem: bool):
        super().__init__()
        self.stem = stem
        if stem:
            self.proj = nn.Conv2d(in_channels, embed_dims, 4, 4)
        else:
            self.proj = nn.Conv2d(in_channels, embed_dims, 3, 2, 1)
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        if self.stem:
            x = F.pad(x, (0, (-x.shape[-1]) % 4, 0, (-x.shape[-2]) % 4))
        else:
            x = x.permute(0, 3, 1, 2)  # [B, H, W, C] -> [B, C, H, W]
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class MAFormerStage(nn.Module):

    def __init__(self, downsample: Optional[nn.Module], blocks: Sequence[nn.Module]):
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        for block in self.blocks:
            x = block(x)
        return x


@MODELS.register_module()
class MAFormer(ArchBackbone):
    """MAFormer backbone (tiny / small / base / large), a documented reconstruction.

    Every argument from ``window_size`` to ``gld_grid`` is a reconstruction choice of ours
    (``specs/maformer.md`` section 6), with the spec's default; the module docstring says what
    each means.

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'``, ``'large'``, or a dict with the
            keys ``embed_dims`` (stage-1 width, doubled per stage), ``depths`` and
            ``num_heads`` (4 each). Defaults to ``'tiny'``.
        in_channels (int): image channels. Defaults to 3.
        window_size (int): local window side of the MAF blocks. Defaults to 7.
        local_attn (str): ``'window'`` (non-overlapping windows) or ``'neighborhood'``
            (sliding windows through the compiled ``na2d`` op; ``window_size`` must be odd).
            Defaults to ``'window'``.
        fusion (str): ``'parallel'`` (GLD reads the block input, the paper's MAF) or
            ``'sequential'`` (GLD reads the local branch's output). Defaults to ``'parallel'``.
        pos (str): GLD's ``Pos``, ``'learned'`` or ``'interp'``. Defaults to ``'learned'``.
        gld_ratio (float): GLD's token ratio ``N``. Defaults to 0.5.
        gld_grid (Sequence[tuple[int, int]]): GLD's token grid in stages 1 and 2, where maps of
            other sizes are resampled to. Defaults to ``((56, 56), (28, 28))``, the grids of a
            224 x 224 input.
        mlp_ratio (float): MLP hidden width over the block width. Defaults to 4.
        qkv_bias (bool): bias of the q/k/v projections. Defaults to True.
        drop_rate (float): dropout after projections and in MLPs. Defaults to 0.
        attn_drop_rate (float): dropout on attention weights. Defaults to 0.
        drop_path_rate (float): stochastic depth, linear over all blocks. Defaults to 0.
        out_indices (Sequence[int]): stages to return (0..3). Defaults to (0, 1, 2, 3).
        frozen_stages (int): freeze the stem and stages 1..n (-1: nothing). Defaults to -1.
        norm_eval (bool): BatchNorm layers in eval mode while training (there are none: kept
            for the interface). Defaults to False.
        with_cp (bool): gradient checkpointing per block. Defaults to False.
        init_cfg (dict, optional): mmengine init config. Defaults to None (truncated normal
            Linear weights, std 0.02).
        pretrained (str, optional): deprecated alias of ``init_cfg=dict(type='Pretrained',
            checkpoint=pretrained)`` (a warning), for mmseg configs' ``model.pretrained``;
            an error together with ``init_cfg``. Defaults to None.

    Returns (forward): tuple of ``[B, C_i, ceil(H / s_i), ceil(W / s_i)]`` (contiguous NCHW,
    after the LayerNorm ``norm{i}``) for ``i`` in ``out_indices``, ``C_i = embed_dims * 2**i``,
    ``s_i = 4 * 2**i``.
    """
    arch_zoo = {
        'tiny': dict(embed_dims=64, depths=(1, 2, 21, 1), num_heads=(2, 4, 8, 16)),
        'small': dict(embed_dims=64, depths=(1, 4, 32, 2), num_heads=(2, 4, 8, 16)),
        'base': dict(embed_dims=96, depths=(2, 4, 32, 2), num_heads=(4, 8, 16, 32)),
        'large': dict(embed_dims=144, depths=(2, 4, 32, 2), num_heads=(6, 12, 24, 24)),
    }
    num_maf_stages = 2

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 window_size: int = 7,
                 local_attn: str = 'window',
                 fusion: str = 'parallel',
                 pos: str = 'learned',
                 gld_ratio: float = 0.5,
                 gld_grid: Sequence[Tuple[int, int]] = ((56, 56), (28, 28)),
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None):
        super().__init__(init_cfg=init_cfg, pretrained=pretrained)
        self.in_channels = in_channels
        arch = self._parse_arch(arch)
        self._set_stage_args(out_indices, frozen_stages, norm_eval, drop_path_rate)
        gld_grid = self._check_choices(window_size, local_attn, fusion, pos, gld_ratio,
                                       gld_grid)
        dims = tuple(arch['embed_dims'] * 2**i for i in range(4))
        depths, heads = arch['depths'], arch['num_heads']
        for c, h in zip(dims, heads):
            if h < 1 or c % h:
                raise ValueError(f'arch num_heads {tuple(heads)} must divide the stage widths '
                                 f'{dims}')
        self.channels = dims
        self.local_attn, self.fusion, self.pos = local_attn, fusion, pos
        rates = drop_path_rates(drop_path_rate, sum(depths))
        common = dict(mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop=drop_rate,
                      attn_drop=attn_drop_rate, with_cp=with_cp)
        self.patch_embed = ConvEmbed(in_channels, dims[0], stem=True)
        self.stages = nn.ModuleList()
        for i, depth in enumerate(depths):
            blocks = []
            for _ in range(depth):
                rate = rates.pop(0)
                if i < self.num_maf_stages:
                    blocks.append(MAFBlock(dims[i], heads[i], window_size, gld_grid[i],
                                           gld_ratio, local_attn, fusion, pos,
                                           drop_path=rate, **common))
                else:
                    blocks.append(GlobalBlock(dims[i], heads[i], drop_path=rate, **common))
            down = ConvEmbed(dims[i - 1], dims[i], stem=False) if i else None
            self.stages.append(MAFormerStage(down, blocks))
        for i in self.out_indices:
            self.add_module(f'norm{i}', nn.LayerNorm(dims[i]))
        self.out_channels = tuple(dims[i] for i in self.out_indices)
        self._freeze_stages()

    @classmethod
    def _parse_arch(cls, arch) -> dict:
        arch = super()._parse_arch(arch)
        for key in ('depths', 'num_heads'):
            if len(arch[key]) != 4:
                raise ValueError(f'arch {key} needs one entry per stage (4), got {arch[key]}')
        if min(arch['depths']) < 1:
            raise ValueError(f'arch depths must be >= 1, got {arch["depths"]}')
        return arch

    @classmethod
    def _check_choices(cls, window_size, local_attn, fusion, pos, gld_ratio, gld_grid):
        """Checks the reconstruction choices; returns ``gld_grid`` as a tuple of pairs."""
        for name, value, choices in (('local_attn', local_attn, LOCAL_ATTNS),
                                     ('fusion', fusion, FUSIONS), ('pos', pos, POS_MODES)):
            if value not in choices:
                raise ValueError(f'{name} must be one of {choices}, got {value!r}')
        if local_attn == 'neighborhood':
            check_window(window_size, 1)
        elif not (isinstance(window_size, int) and window_size >= 1):
            raise ValueError(f'window_size must be a positive int, got {window_size!r}')
        grid = tuple(tuple(g) for g in gld_grid)
        if len(grid) != cls.num_maf_stages or any(
                len(g) != 2 or min(g) < 1 for g in grid):
            raise ValueError('gld_grid must hold one (H0, W0) of positive sizes per MAF stage '
                             f'({cls.num_maf_stages}), got {gld_grid!r}')
        if not 0 < gld_ratio <= 1 or any(math.floor(gld_ratio * h * w) < 1 for h, w in grid):
            raise ValueError(f'gld_ratio must be in (0, 1] and leave at least one GLD token, '
                             f'got {gld_ratio} for grids {grid}')
        return grid

    def _frozen_modules(self):
        return self._stem_and_stages(self.patch_embed, self.stages)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        self._check_input(x)
        x = self.patch_embed(x)  # [B, H/4, W/4, C]
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(getattr(self, f'norm{i}')(x).permute(0, 3, 1, 2).contiguous())
        return tuple(outs)
