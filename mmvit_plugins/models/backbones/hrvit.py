"""HRViT: Multi-Scale High-Resolution Vision Transformer for Semantic Segmentation.

Gu et al., CVPR 2022, arXiv 2111.01236; original code facebookresearch/HRViT (one commit,
``models/hrvit.py`` and ``segmentation/mmseg/models/backbones/hrvit.py``). Re-implemented from
the project's specification of that code (``specs/hrvit.md``); module names and orderings follow
the original state dict (``stem.*``, ``features.{2m}.blocks.{i}.{j}.*`` for the fusion of module
``m``, ``features.{2m+1}.{patch_embed,branches,norm}.*`` for its body), so original checkpoints
load key for key.

Differences from the original:

* Any input size works. The original upsamples by a fixed factor and so needs inputs that are
  multiples of 32. Here branch ``i`` has ``ceil(H / s_i) x ceil(W / s_i)`` positions (the strided
  convs give exactly that), and an up path's nearest x f upsampling is cropped to its target. For
  multiples of 32 this is the original computation.
* ``norm_cfg`` is copied, never mutated: with ``with_cp`` only the attention BN gets the momentum
  ``1 - sqrt(0.9)`` of the original (whose in-place ``norm_cfg`` edit also leaked it into later
  fusion BNs).
* ``out_indices``, ``frozen_stages``, ``norm_eval`` as in other OpenMMLab backbones.
"""
import copy
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...registry import MODELS
from ._base import ArchBackbone, drop_path_rates

# ----------------------------------------------------------------------------- helpers


def _bn(norm_cfg: dict, channels: int) -> nn.Module:
    return build_norm_layer(copy.deepcopy(norm_cfg), channels)[1]


def stripe_attention(q: Tensor, v: Tensor, ws: int, heads: int, scale: float,
                     vertical: bool) -> Tensor:
    """Attention inside stripes of ``ws`` rows (or columns when ``vertical``), with k = v.

    Args:
        q, v: ``[B, H, W, C]`` (one direction's half of the channels).
        ws (int): stripe width.
        heads (int): heads; ``C // heads`` channels each.
        scale (float): logit scale.
        vertical (bool): stripes of columns instead of rows.

    Returns:
        Tensor: ``[B, H, W, C]``. The map is zero-padded at the end to a multiple of ``ws``;
        logits of pairs involving a padded token get -100, as in the original.
    """
    if vertical:
        q, v = q.transpose(1, 2), v.transpose(1, 2)  # stripes of rows of the transposed map
    B, H, W, C = q.shape
    pad = (ws - H % ws) % ws
    if pad:
        q = F.pad(q, (0, 0, 0, 0, 0, pad))
        v = F.pad(v, (0, 0, 0, 0, 0, pad))
    n = (H + pad) // ws
    d = C // heads

    def stripes(x):  # [B, H+pad, W, C] -> [B, n, heads, ws*W, d]
        return x.reshape(B, n, ws * W, heads, d).transpose(2, 3)

    qs, vs = stripes(q), stripes(v)
    logits = (qs * scale) @ vs.transpose(-2, -1)  # [B, n, heads, ws*W, ws*W]
    if pad:
        valid = torch.arange(n * ws, device=q.device) < H  # row validity
        valid = valid.view(n, ws, 1).expand(n, ws, W).reshape(n, ws * W)
        both = valid[:, :, None] & valid[:, None, :]  # [n, ws*W, ws*W]
        logits = logits + (~both).to(logits.dtype)[None, :, None] * -100.0
    out = logits.softmax(dim=-1) @ vs  # [B, n, heads, ws*W, d]
    out = out.transpose(2, 3).reshape(B, n * ws, W, C)[:, :H]
    return out.transpose(1, 2) if vertical else out


# ----------------------------------------------------------------------------- block


class HRViTAttention(BaseModule):
    """Augmented cross-shaped window attention with shared key-value (HRViTAttn).

    One projection gives q and v (k = v); half the channels attend in horizontal stripes of
    ``ws`` rows, half in vertical stripes of ``ws`` columns; a depth-wise 3x3 conv of
    Hardswish(v) runs in parallel; then Hardswish -> Linear -> BN over tokens (zero-initialised
    weight and bias, so the branch starts at 0).
    """

    def __init__(self, embed_dims: int, head_dims: int, window_size: int, norm_cfg: dict,
                 with_cp: bool = False, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if embed_dims % 2:
            raise ValueError(f'embed_dims must be even, got {embed_dims}')
        self.embed_dims, self.window_size, self.with_cp = embed_dims, window_size, with_cp
        heads = embed_dims // head_dims
        head_dims = embed_dims // heads
        half = embed_dims // 2
        if half >= head_dims:
            self.heads_per_dir, self.scale = half // head_dims, head_dims**-0.5
        else:  # e.g. HRViT-b1 branch 0: one head of C/2 channels per direction
            self.heads_per_dir, self.scale = 1, half**-0.5
        self.to_qkv = nn.Linear(embed_dims, 2 * embed_dims)
        self.parallel_conv = nn.Sequential(
            nn.Hardswish(), nn.Conv2d(embed_dims, embed_dims, 3, 1, 1, groups=embed_dims))
        self.act = nn.Hardswish()
        self.to_out = nn.Sequential(nn.Linear(embed_dims, embed_dims), nn.Dropout(0.))
        bn_cfg = copy.deepcopy(norm_cfg)
        if with_cp:  # two forward passes per step: together about one 0.1 update
            bn_cfg['momentum'] = 1 - math.sqrt(0.9)
        self.attn_bn = _bn(bn_cfg, embed_dims)
        nn.init.zeros_(self.attn_bn.weight)
        nn.init.zeros_(self.attn_bn.bias)

    def _inner_forward(self, x: Tensor, H: int, W: int) -> Tensor:
        B, N, C = x.shape
        q, v = self.to_qkv(x).chunk(2, dim=-1)  # [B, N, C] each
        v_map = v.transpose(1, 2).reshape(B, C, H, W)
        v_conv = self.parallel_conv(v_map).flatten(2).transpose(1, 2)  # [B, N, C]
        q, v = q.view(B, H, W, C), v.view(B, H, W, C)
        half = C // 2
        ws, heads, scale = self.window_size, self.heads_per_dir, self.scale
        horizontal = stripe_attention(q[..., :half], v[..., :half], ws, heads, scale, False)
        vertical = stripe_attention(q[..., half:], v[..., half:], ws, heads, scale, True)
        y = torch.cat([horizontal, vertical], dim=-1).view(B, N, C) + v_conv
        y = self.to_out(self.act(y))
        # BN over all B*N tokens: [B, N, C] -> [B, C, N, 1]
        return self.attn_bn(y.transpose(1, 2).unsqueeze(-1)).squeeze(-1).transpose(1, 2)

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._inner_forward, x, H, W, use_reentrant=False)
        return self._inner_forward(x, H, W)


class DES(BaseModule):
    """Diversity-enhanced shortcut: a Kronecker-factorised token-wise projection.

    ``x`` (C channels) is viewed as ``k x p``; ``proj_right`` (p x p) mixes within each group of
    ``p`` channels, GELU, then ``proj_left`` (k x k) mixes across groups.
    """

    def __init__(self, channels: int, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if channels % 2:
            raise ValueError(f'DES needs an even channel count, got {channels}')
        e = int(math.log2(channels))
        self.p = 2**(e - e // 2)
        self.k = channels // self.p
        self.proj_right = nn.Linear(self.p, self.p)
        self.act = nn.GELU()
        self.proj_left = nn.Linear(self.k, self.k)

    def forward(self, x: Tensor) -> Tensor:
        B, N, C = x.shape
        y = self.act(self.proj_right(x.view(B, N, self.k, self.p)))  # [B, N, k, p]
        y = self.proj_left(y.transpose(-1, -2)).transpose(-1, -2)  # [B, N, k, p]
        return y.reshape(B, N, C)


class MixConv(nn.Module):
    """Half the channels through a depth-wise 3x3 conv, half through a depth-wise 5x5."""

    def __init__(self, channels: int):
        super().__init__()
        half = channels // 2
        self.conv_3 = nn.Conv2d(half, half, 3, 1, 1, groups=half)
        self.conv_5 = nn.Conv2d(channels - half, channels - half, 5, 1, 2, groups=channels - half)

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.split([self.conv_3.in_channels, self.conv_5.in_channels], dim=1)
        return torch.cat([self.conv_3(a), self.conv_5(b)], dim=1)


class MixCFN(BaseModule):
    """Mixed-scale convolutional FFN: fc1 (no act) -> MixConv -> GELU -> fc2."""

    def __init__(self, embed_dims: int, hidden_dims: int, with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.with_cp = with_cp
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.conv = MixConv(hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def _inner_forward(self, x: Tensor, H: int, W: int) -> Tensor:
        B, N, _ = x.shape
        y = self.fc1(x)
        y = self.conv(y.transpose(1, 2).reshape(B, y.shape[-1], H, W)).flatten(2).transpose(1, 2)
        return self.fc2(self.act(y))

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._inner_forward, x, H, W, use_reentrant=False)
        return self._inner_forward(x, H, W)


class HRViTBlock(BaseModule):
    """``x + DropPath(Attn(LN(x)) + DES(x))``, then ``x + DropPath(MixCFN(LN(x)))``."""

    def __init__(self, embed_dims: int, head_dims: int, window_size: int, mlp_ratio: float,
                 drop_path_rate: float, norm_cfg: dict, with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.attn_norm = nn.LayerNorm(embed_dims)
        self.attn = HRViTAttention(embed_dims, head_dims, window_size, norm_cfg, with_cp)
        self.des = DES(embed_dims)
        self.ffn_norm = nn.LayerNorm(embed_dims)
        self.ffn = MixCFN(embed_dims, int(embed_dims * mlp_ratio), with_cp)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        x = x + self.drop_path(self.attn(self.attn_norm(x), H, W) + self.des(x))
        return x + self.drop_path(self.ffn(self.ffn_norm(x), H, W))


# ----------------------------------------------------------------------------- modules


class PatchEmbed(nn.Module):
    """Point-wise 1x1 conv -> depth-wise 3x3 conv -> tokens -> LayerNorm (no stride)."""

    def __init__(self, in_channels: int, embed_dims: int):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(in_channels, embed_dims, 1),
            nn.Conv2d(embed_dims, embed_dims, 3, 1, 1, groups=embed_dims))
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))  # [B, H*W, C]


class Upsample(nn.Module):
    """Nearest upsampling by ``scale``; the caller crops to the target size."""

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=self.scale, mode='nearest')


class Fusion(nn.Module):
    """Dense cross-resolution fusion: output i = GELU(sum_j path_ij(x_j)).

    j == i: identity; j < i: depth-wise conv (kernel f+1, stride f, pad f/2, no bias) -> BN ->
    1x1 conv -> BN; j > i: 1x1 conv -> BN -> nearest x f. A module that adds a branch has one
    more output than inputs; the new one is the sum of down paths from every input.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int], norm_cfg: dict):
        super().__init__()
        self.blocks = nn.ModuleList()
        for i, c_out in enumerate(out_channels):
            paths = nn.ModuleList()
            for j, c_in in enumerate(in_channels):
                if j == i:
                    paths.append(nn.Identity())
                elif j < i:
                    f = 2**(i - j)
                    paths.append(
                        nn.Sequential(
                            nn.Conv2d(c_in, c_in, f + 1, f, f // 2, groups=c_in, bias=False),
                            _bn(norm_cfg, c_in), nn.Conv2d(c_in, c_out, 1),
                            _bn(norm_cfg, c_out)))
                else:
                    paths.append(
                        nn.Sequential(
                            nn.Conv2d(c_in, c_out, 1), _bn(norm_cfg, c_out),
                            Upsample(2**(j - i))))
            self.blocks.append(paths)
        self.act = nn.GELU()

    def forward(self, xs: List[Tensor], sizes: List[Tuple[int, int]]) -> List[Tensor]:
        outs = []
        for i, paths in enumerate(self.blocks):
            H, W = sizes[i]
            total = 0
            for x, path in zip(xs, paths):
                total = total + path(x)[..., :H, :W]
            outs.append(self.act(total))
        return outs


class HRViTModuleBody(nn.Module):
    """Per-branch patch embedding -> blocks -> LayerNorm (one module's body)."""

    def __init__(self, in_channels: Sequence[int], channels: Sequence[int],
                 depths: Sequence[int], head_dims: int, window_sizes: Sequence[int],
                 mlp_ratios: Sequence[float], drop_path_rates: Sequence[float], norm_cfg: dict,
                 with_cp: bool):
        super().__init__()
        self.patch_embed = nn.ModuleList(
            PatchEmbed(c_in, c) for c_in, c in zip(in_channels, channels))
        self.branches = nn.ModuleList(
            nn.ModuleList(
                HRViTBlock(c, head_dims, window_sizes[i], mlp_ratios[i], drop_path_rates[b],
                           norm_cfg, with_cp) for b in range(depths[i]))
            for i, c in enumerate(channels))
        self.norm = nn.ModuleList(nn.LayerNorm(c) for c in channels)

    def forward(self, xs: List[Tensor]) -> List[Tensor]:
        outs = []
        for x, embed, blocks, norm in zip(xs, self.patch_embed, self.branches, self.norm):
            B, _, H, W = x.shape
            t = embed(x)
            for block in blocks:
                t = block(t, H, W)
            # contiguous NCHW: the reshape of the transposed tokens is a channels-last view,
            # which convs propagate and raw-pointer ops (mmcv's RoIAlign on the CPU) misread
            outs.append(norm(t).transpose(1, 2).reshape(B, t.shape[-1], H, W).contiguous())
        return outs


# ----------------------------------------------------------------------------- backbone


@MODELS.register_module()
class HRViT(ArchBackbone):
    """HRViT backbone (b1 / b2 / b3).

    A conv stem (stride 4) and six modules over up to four parallel branches at strides
    4/8/16/32. Module ``m`` = a dense cross-resolution fusion (which also creates a new branch
    in modules 1, 2 and 4) and a body of per-branch transformer blocks. Stages in the paper's
    sense: stage 1 = module 0, stage 2 = module 1, stage 3 = modules 2-3, stage 4 = modules 4-5.

    Args:
        arch (str | dict): ``'b1'``, ``'b2'``, ``'b3'``, or a dict with the keys of
            :attr:`arch_zoo` entries. Defaults to ``'b1'``.
        in_channels (int): image channels. Defaults to 3.
        out_indices (Sequence[int]): branches to return. Defaults to (0, 1, 2, 3).
        drop_path_rate (float): stochastic depth, linear over the 22 (b1) or 26 (b2, b3)
            block depths; blocks at the same depth of a module share a rate. Defaults to 0.
        norm_cfg (dict): BN of the stem, the fusions and the attention. Defaults to BN.
        frozen_stages (int): freeze the stem and stages 1..n (-1: nothing). Defaults to -1.
        norm_eval (bool): keep BN layers in eval mode while training. Defaults to False.
        with_cp (bool): checkpoint the attention and the FFN of every block. Defaults to False.
        init_cfg (dict, optional): mmengine init config. Defaults to None (truncated normal
            std 0.02 for Linear weights, LayerNorm (1, 0); the attention BN stays zero). A
            ``Pretrained`` entry whose checkpoint is None means the same, with a warning.
        pretrained (str, optional): deprecated alias of ``init_cfg=dict(type='Pretrained',
            checkpoint=pretrained)`` (a warning), for mmseg configs' ``model.pretrained``;
            an error together with ``init_cfg``. Defaults to None.

    Returns (forward): tuple of ``[B, C_i, ceil(H / s_i), ceil(W / s_i)]`` for ``i`` in
    ``out_indices``, ``s_i = 4 * 2**i``.
    """
    # channels per branch, head dims, mlp ratio per branch, blocks per branch in each module
    arch_zoo = {
        'b1': dict(channels=(32, 64, 128, 256), head_dims=32, mlp_ratios=(4, 4, 4, 4),
                   depths=((1, ), (1, 1), (1, 1, 6), (1, 1, 6), (1, 1, 6, 2), (1, 1, 2, 2))),
        'b2': dict(channels=(48, 96, 240, 384), head_dims=24, mlp_ratios=(2, 3, 3, 3),
                   depths=((1, ), (1, 1), (1, 1, 6), (1, 1, 6), (1, 1, 6, 2), (1, 1, 6, 2))),
        'b3': dict(channels=(64, 128, 256, 512), head_dims=32, mlp_ratios=(2, 2, 2, 2),
                   depths=((1, ), (1, 1), (1, 1, 6), (1, 1, 6), (1, 1, 6, 3), (1, 1, 6, 3))),
    }
    stem_channels = 64
    window_sizes = (1, 2, 7, 7)
    strides = (4, 8, 16, 32)
    module_stages = (1, 2, 3, 3, 4, 4)  # the paper's stage of each module

    def __init__(self,
                 arch: Union[str, dict] = 'b1',
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None):
        super().__init__(init_cfg=init_cfg, pretrained=pretrained)
        self.in_channels = in_channels
        arch = self._parse_arch(arch)
        self.channels = tuple(arch['channels'])
        depths = [tuple(d) for d in arch['depths']]
        self._set_stage_args(out_indices, frozen_stages, norm_eval, drop_path_rate)
        out_indices = self.out_indices

        self.stem = nn.Sequential()
        self.stem.add_module('conv1', nn.Conv2d(in_channels, self.stem_channels // 2, 3, 2, 1))
        self.stem.add_module('bn1', _bn(norm_cfg, self.stem_channels // 2))
        self.stem.add_module('relu1', nn.ReLU(inplace=True))
        self.stem.add_module('conv2', nn.Conv2d(self.stem_channels // 2, self.stem_channels, 3,
                                                2, 1))
        self.stem.add_module('bn2', _bn(norm_cfg, self.stem_channels))
        self.stem.add_module('relu2', nn.ReLU(inplace=True))

        rates = drop_path_rates(drop_path_rate, sum(max(d) for d in depths))
        self.features = nn.ModuleList()
        prev = [self.stem_channels]
        start = 0
        for module_depths in depths:
            n = len(module_depths)
            fusion_out = list(prev) + [self.channels[n - 1]] * (n - len(prev))
            self.features.append(Fusion(prev, fusion_out, norm_cfg))
            self.features.append(
                HRViTModuleBody(fusion_out, self.channels[:n], module_depths, arch['head_dims'],
                                self.window_sizes, arch['mlp_ratios'],
                                rates[start:start + max(module_depths)], norm_cfg, with_cp))
            start += max(module_depths)
            prev = list(self.channels[:n])
        self.out_channels = tuple(self.channels[i] for i in out_indices)
        self._freeze_stages()

    @classmethod
    def _parse_arch(cls, arch) -> dict:
        arch = super()._parse_arch(arch)
        depths = arch['depths']
        if len(depths) != 6 or [len(d) for d in depths] != [1, 2, 3, 3, 4, 4]:
            raise ValueError('arch depths must give blocks per branch for 6 modules with '
                             f'1, 2, 3, 3, 4, 4 branches, got {depths}')
        if len(arch['channels']) != 4 or len(arch['mlp_ratios']) != 4:
            raise ValueError('arch channels and mlp_ratios need one entry per branch (4)')
        return arch

    def _frozen_modules(self):
        if self.frozen_stages >= 0:
            yield self.stem
        for m, stage in enumerate(self.module_stages):
            if stage <= self.frozen_stages:
                yield self.features[2 * m]
                yield self.features[2 * m + 1]

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        self._check_input(x)
        H, W = x.shape[-2:]
        sizes = []
        for s in self.strides:  # ceil(H / s): what the stride-2 stem and strided convs give
            sizes.append((-(-H // s), -(-W // s)))
        xs = [self.stem(x)]
        for m in range(len(self.features) // 2):
            fusion, body = self.features[2 * m], self.features[2 * m + 1]
            xs = body(fusion(xs, sizes[:len(fusion.blocks)]))
        return tuple(xs[i] for i in self.out_indices)


# ----------------------------------------------------------------------------- checkpoints


def convert_hrvit(checkpoint: dict) -> dict:
    """Original HRViT weights -> this package's classifier or segmentor layout.

    Accepts a timm training checkpoint (``state_dict``, else ``state_dict_ema``, else ``model``),
    an original mmseg segmentor checkpoint (``state_dict``), or a bare state dict, with or
    without a ``module.`` prefix. Mapping: ``stem.*`` and ``features.*`` -> ``backbone.*``
    (names unchanged inside); ``head.classifier.*`` -> ``head.fc.*``; the rest of ``head.*`` ->
    ``neck.*`` (:class:`HRViTClsNeck`). A segmentor's ``backbone.*``, ``decode_head.*`` and
    ``auxiliary_head.*`` keys pass through unchanged: the SegFormer head
    (:class:`HRViTSegformerHead`) and mmseg's ``UPerHead`` / ``FCNHead`` keep the original
    names.

    Raises:
        ValueError: on keys this converter does not know, instead of dropping them silently.
    """
    state_dict = checkpoint
    for key in ('state_dict', 'state_dict_ema', 'model'):
        if isinstance(checkpoint.get(key), dict):
            state_dict = checkpoint[key]
            break
    converted, unknown = {}, []
    for key, value in state_dict.items():
        if key.startswith('module.'):
            key = key[len('module.'):]
        if key.startswith(('stem.', 'features.')):
            converted['backbone.' + key] = value
        elif key.startswith(('backbone.', 'decode_head.', 'auxiliary_head.')):
            converted[key] = value
        elif key.startswith('head.classifier.'):
            converted['head.fc.' + key[len('head.classifier.'):]] = value
        elif key.startswith('head.'):
            converted['neck.' + key[len('head.'):]] = value
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f'convert_hrvit: {len(unknown)} keys of unknown layout, e.g. '
                         f'{unknown[:3]}; only HRViT ImageNet models and segmentors are '
                         'converted')
    return converted
