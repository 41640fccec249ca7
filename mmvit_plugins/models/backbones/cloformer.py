"""CloFormer: Rethinking Local Perception in Lightweight Vision Transformer.

Fan et al., arXiv 2303.17803; original code qhfan/CloFormer (no weights were ever released).
Re-implemented from the project's specification of that code (``specs/cloformer.md``). Module
names follow the original state dict (``patch_embed.conv{1..4}.conv.{0,1}``,
``patch_embed.{conv5,layernorm}``, ``layers.{i}.blocks.{j}.{norm1,norm2,attn.*,mlp.*,
downsample.*}``, ``norm``), so original checkpoints would load key for key.

* Stem: 4 x (conv3x3 + BN + ReLU), strides 2, 2, 1, 1, then a 1x1 conv and GroupNorm(1).
* Clo block: ``x + Attn(GN(x))`` with a local AttnConv branch (one 1x1 to Q|K|V, one depthwise
  k x k conv over all three, ``tanh(FC(Swish(FC(Qs * Ks))) / sqrt(dh)) * Vs``) and a global
  branch (multi-head attention whose K/V come from the avg-pooled input), concatenated (local
  first) and projected; then ``shortcut(x) + ConvFFN(GN(x))``. The last block of stages 1-3
  downsamples: the ConvFFN's depthwise 5x5 has stride 2 and the shortcut is a dense 5x5 stride-2
  conv -> BN -> 1x1 to the next width.
* "LayerNorm" is ``GroupNorm(1, C)`` everywhere, as in the code.

Differences from the original: any input size (the input is zero-padded to a multiple of 32 so
that every stage divides by its pooling window, and the outputs are cropped back to
``ceil(H / s) x ceil(W / s)``; the original crashes otherwise); pyramid taps for dense tasks as
in the author's FAT (the pre-FFN feature of each stage's last block, stage 4's output) with
optional new GroupNorm(1) per level (``norm{i}``); ``out_indices``, ``frozen_stages``,
``norm_eval``, ``with_cp``.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from torch import Tensor, nn

from ...registry import MODELS
from ...utils.convert import convert_classifier
from ._base import ArchBackbone, drop_path_rates, conv_map_attention


def gn(channels: int) -> nn.GroupNorm:
    """The code's "LayerNorm": GroupNorm with one group (over C, H, W), eps 1e-5."""
    return nn.GroupNorm(1, channels)


class ConvBNReLU(nn.Module):

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Stem(nn.Module):
    """4 x (conv3x3 + BN + ReLU), strides 2, 2, 1, 1 -> 1x1 conv -> GroupNorm(1); stride 4."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.conv1 = ConvBNReLU(in_channels, channels // 2, 2)
        self.conv2 = ConvBNReLU(channels // 2, channels, 2)
        self.conv3 = ConvBNReLU(channels, channels, 1)
        self.conv4 = ConvBNReLU(channels, channels, 1)
        self.conv5 = nn.Conv2d(channels, channels, 1)
        self.layernorm = gn(channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv4(self.conv3(self.conv2(self.conv1(x))))
        return self.layernorm(self.conv5(x))


class _ActBlock(nn.Module):
    """The context-aware weights' ``FC -> Swish -> FC`` (key ``act_block.{0,2}``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.act_block = nn.Sequential(
            nn.Conv2d(channels, channels, 1), nn.SiLU(), nn.Conv2d(channels, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.act_block(x)


class CloAttention(nn.Module):
    """Local AttnConv branch + pooled global attention, concatenated (local first), projected.

    Args:
        dims (int): channels.
        num_heads (int): heads; ``dh = dims // num_heads``.
        local_heads (int): heads of the local branch (``num_heads - local_heads`` global).
        kernel_size (int): the local branch's depthwise kernel.
        pool (int): the global branch's K/V average-pooling window (1: none).
    """

    def __init__(self, dims: int, num_heads: int, local_heads: int, kernel_size: int, pool: int):
        super().__init__()
        if dims % num_heads or not 0 < local_heads < num_heads:
            raise ValueError(f'num_heads ({num_heads}) must divide the width ({dims}) and '
                             f'local_heads ({local_heads}) be in 1..num_heads-1')
        self.head_dims = dims // num_heads
        self.local_dims = local_heads * self.head_dims
        self.global_heads = num_heads - local_heads
        cl, cg = self.local_dims, self.global_heads * self.head_dims
        self.qkvs = nn.ModuleList([nn.Conv2d(dims, 3 * cl, 1)])
        self.convs = nn.ModuleList(
            [nn.Conv2d(3 * cl, 3 * cl, kernel_size, padding=kernel_size // 2, groups=3 * cl)])
        self.act_blocks = nn.ModuleList([_ActBlock(cl)])
        self.global_q = nn.Conv2d(dims, cg, 1)
        self.global_kv = nn.Conv2d(dims, 2 * cg, 1)
        self.pool = nn.AvgPool2d(pool, pool) if pool > 1 else nn.Identity()
        self.proj = nn.Conv2d(dims, dims, 1)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        scale = self.head_dims**-0.5
        q, k, v = self.convs[0](self.qkvs[0](x)).split(self.local_dims, dim=1)
        local = torch.tanh(self.act_blocks[0](q * k) * scale) * v

        h, d = self.global_heads, self.head_dims

        gk, gv = self.global_kv(self.pool(x)).split(h * d, dim=1)
        glob = conv_map_attention(self.global_q(x), gk, gv, h, scale=scale)
        return self.proj(torch.cat([local, glob], dim=1))


class ConvFFN(nn.Module):
    """1x1 -> GELU -> depthwise 5x5 (stride 1 or 2) -> 1x1 to ``out_dims``."""

    def __init__(self, dims: int, hidden: int, out_dims: int, stride: int, kernel_size: int = 5):
        super().__init__()
        self.fc1 = nn.Conv2d(dims, hidden, 1)
        self.act = nn.GELU()
        self.dwconv = nn.Conv2d(hidden, hidden, kernel_size, stride, kernel_size // 2,
                                groups=hidden)
        self.fc2 = nn.Conv2d(hidden, out_dims, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.dwconv(self.act(self.fc1(x))))


class CloBlock(nn.Module):
    """The original ``EfficientBlock``. ``forward`` returns (output, pre-FFN tap)."""

    def __init__(self, dims: int, out_dims: int, num_heads: int, local_heads: int,
                 kernel_size: int, pool: int, mlp_ratio: float, downsample: bool,
                 drop_path: float, with_cp: bool):
        super().__init__()
        self.norm1 = gn(dims)
        self.attn = CloAttention(dims, num_heads, local_heads, kernel_size, pool)
        self.norm2 = gn(dims)
        self.mlp = ConvFFN(dims, int(dims * mlp_ratio), out_dims, 2 if downsample else 1)
        self.downsample = nn.Sequential(
            nn.Conv2d(dims, dims, 5, 2, 2), nn.BatchNorm2d(dims),
            nn.Conv2d(dims, out_dims, 1)) if downsample else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.with_cp = with_cp

    def _inner_forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        shortcut = self.downsample(x) if self.downsample is not None else x
        return shortcut + self.drop_path(self.mlp(self.norm2(x))), x

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._inner_forward, x, use_reentrant=False)
        return self._inner_forward(x)


class CloStage(nn.Module):

    def __init__(self, blocks: Sequence[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        for block in self.blocks:
            x, tap = block(x)
        return x, (tap if block.downsample is not None else x)


@MODELS.register_module()
class CloFormer(ArchBackbone):
    """CloFormer backbone (xxs / xs / s).

    Args:
        arch (str | dict): ``'xxs'``, ``'xs'``, ``'s'``, or a dict with the keys of the
            :attr:`arch_zoo` entries. Defaults to ``'xxs'``.
        in_channels (int): image channels. Defaults to 3.
        out_indices (Sequence[int]): stages to return (0..3). Defaults to (0, 1, 2, 3).
        drop_path_rate (float): stochastic depth, linear over all blocks. Defaults to 0.
        final_norm (bool): the classifier's GroupNorm ``norm`` on stage 4's output (for
            classification). Defaults to False.
        out_norms (bool): a new GroupNorm(1) ``norm{i}`` on every returned level (dense tasks,
            as the author's FAT). Defaults to False.
        frozen_stages (int): freeze the stem and stages 1..n (-1: nothing). Defaults to -1.
        norm_eval (bool): keep the BatchNorm layers (stem, shortcuts) in eval mode while
            training. Defaults to False.
        with_cp (bool): gradient checkpointing per block. Defaults to False.
        init_cfg (dict, optional): mmengine init config. Defaults to None (PyTorch's default
            init, as the original).
        pretrained (str, optional): deprecated alias of ``init_cfg=dict(type='Pretrained',
            checkpoint=pretrained)`` (a warning), for mmseg configs' ``model.pretrained``;
            an error together with ``init_cfg``. Defaults to None.

    Returns (forward): tuple of ``[B, C_i, ceil(H / s_i), ceil(W / s_i)]`` for ``i`` in
    ``out_indices``, ``s_i = 4 * 2**i``; level ``i < 3`` is the pre-FFN feature of stage
    ``i``'s last block (width ``C_i``), level 3 stage 4's output.
    """
    arch_zoo = {
        'xxs': dict(embed_dims=(32, 64, 128, 256), num_heads=(4, 4, 8, 16),
                    local_heads=(3, 2, 4, 4)),
        'xs': dict(embed_dims=(48, 96, 160, 352), num_heads=(3, 6, 10, 22),
                   local_heads=(2, 3, 5, 7)),
        's': dict(embed_dims=(64, 128, 224, 448), num_heads=(4, 8, 14, 28),
                  local_heads=(3, 4, 7, 7)),
    }
    depths = (2, 2, 6, 2)
    kernel_sizes = (3, 5, 7, 9)
    pools = (8, 4, 2, 1)
    mlp_ratio = 4

    def __init__(self,
                 arch: Union[str, dict] = 'xxs',
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 drop_path_rate: float = 0.,
                 final_norm: bool = False,
                 out_norms: bool = False,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None):
        super().__init__(init_cfg=init_cfg, pretrained=pretrained)
        self.in_channels = in_channels
        arch = self._parse_arch(arch)
        self._set_stage_args(out_indices, frozen_stages, norm_eval, drop_path_rate)
        dims = tuple(arch['embed_dims'])
        self.channels = dims
        self.patch_embed = Stem(in_channels, dims[0])
        rates = drop_path_rates(drop_path_rate, sum(self.depths))
        self.layers = nn.ModuleList()
        n = 0
        for i, depth in enumerate(self.depths):
            blocks = []
            for j in range(depth):
                last = j == depth - 1 and i < 3
                blocks.append(
                    CloBlock(dims[i], dims[i + 1] if last else dims[i], arch['num_heads'][i],
                             arch['local_heads'][i], self.kernel_sizes[i], self.pools[i],
                             self.mlp_ratio, last, rates[n], with_cp))
                n += 1
            self.layers.append(CloStage(blocks))
        if final_norm and 3 not in self.out_indices:
            raise ValueError('final_norm normalises the stage-4 output: out_indices must hold 3')
        self.norm = gn(dims[3]) if final_norm else None
        self.out_norms = out_norms
        for i in self.out_indices if out_norms else ():
            self.add_module(f'norm{i}', gn(dims[i]))
        self.out_channels = tuple(dims[i] for i in self.out_indices)
        self._freeze_stages()

    @classmethod
    def _parse_arch(cls, arch) -> dict:
        arch = super()._parse_arch(arch)
        for key in ('embed_dims', 'num_heads', 'local_heads'):
            if len(arch[key]) != 4:
                raise ValueError(f'arch {key} needs one entry per stage (4), got {arch[key]}')
        return arch

    def _frozen_modules(self):
        return self._stem_and_stages(self.patch_embed, self.layers)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        self._check_input(x)
        H, W = x.shape[-2:]
        x = F.pad(x, (0, (-W) % 32, 0, (-H) % 32))  # every stage divides by its pool window
        x = self.patch_embed(x)
        outs = []
        for i, layer in enumerate(self.layers):
            x, tap = layer(x)
            if i in self.out_indices:
                if i == 3 and self.norm is not None:
                    tap = self.norm(tap)
                if self.out_norms:
                    tap = getattr(self, f'norm{i}')(tap)
                s = 4 * 2**i
                outs.append(tap[..., :math.ceil(H / s), :math.ceil(W / s)].contiguous())
        return tuple(outs)


def convert_cloformer(checkpoint: dict) -> dict:
    """Original CloFormer weights -> this package's classifier layout.

    Accepts a training checkpoint (weights under ``model``), a ``state_dict`` entry, or a bare
    state dict, with or without a ``module.`` prefix. ``patch_embed.*``, ``layers.*`` and
    ``norm.*`` -> ``backbone.*`` (names unchanged); ``head.*`` -> ``head.fc.*``.

    Raises:
        ValueError: on keys this converter does not know, instead of dropping them silently.
    """
    return convert_classifier(checkpoint, ('patch_embed.', 'layers.', 'norm.'), 'CloFormer')
