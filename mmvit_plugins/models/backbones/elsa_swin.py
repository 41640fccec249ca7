"""ELSA-Swin: Swin Transformer with Enhanced Local Self-Attention in stages 1-3.

Zhou et al., "ELSA: Enhanced Local Self-Attention for Vision Transformer", arXiv 2112.12786;
original code damo-cv/ELSA (MIT). Re-implemented from the project's specification of that code
(``specs/elsa.md``). Module names follow the original state dict (``patch_embed.*``,
``layers.{i}.blocks.{j}.attn.{ghost_head,pre_proj,attn.0,attn.2,post_proj}``,
``layers.3.blocks.{j}.attn.{rb,relative_id,pre_proj,post_proj}``, ``layers.{i}.downsample.*``,
``norm{i}``), so the original detection and segmentation backbones load key for key.

Stages 1-3 use ELSA blocks: Hadamard attention (``q * k`` at the same pixel -> grouped k x k conv
-> GELU -> 1x1 conv to one logit per head and tap, softmax over the taps) with the additive
ghost head, aggregated over centred, zero-padded 7 x 7 windows by our compiled ELSA op
(:func:`mmvit_plugins.ops.elsa_aggregate`; its pure-PyTorch reference when the extension is
missing). Stage 4 is a plain Swin block with the original's parameter layout: the qkv output is
split v, q, k; the bias table ``rb`` is ``(heads, (2w-1)^2)`` indexed by key - query offsets.

Behaviour as the original's detection/segmentation backbone: any input size (the patch
embedding pads to a multiple of 4, patch merging pads odd sizes, stage 4 pads to the window and
shifts every second block by 3 with the -100 mask), one LayerNorm per returned stage.

Differences from the original:

* Under ``torch.autocast`` (fp16 or bf16) the attention softmax and the ELSA op run in float32
  and the rest follows autocast; the original forced float32 and had no bf16 path.
* A stage-4 map that fits in one window (inputs up to 224 x 224) is not shifted, as in the
  original classifier at 224, so classifier outputs match the original. The original det/seg
  backbone shifts (and masks) such a map too; for larger maps the two agree.
* ``out_indices``, ``frozen_stages``, ``norm_eval``, ``with_cp`` as in other OpenMMLab
  backbones (there is no BatchNorm, so ``norm_eval`` has nothing to act on).
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor, nn

from ...ops import elsa_aggregate
from ...ops._checks import check_window
from ...registry import MODELS
from ._base import ArchBackbone, drop_path_rates

HALF_DTYPES = (torch.float16, torch.bfloat16)

# ----------------------------------------------------------------------------- stage 1-3: ELSA


class ELSAAttention(BaseModule):
    """Enhanced local self-attention (the original ``ELSA`` module) on ``[B, H, W, C]``.

    Args:
        embed_dims (int): channels ``C``.
        num_heads (int): attention maps ``G``; ``C // G`` channels share one map.
        kernel_size (int): window side. Defaults to 7.
        dilation (int): tap spacing. Defaults to 1.
        group_width (int): channels per group of the k x k attention conv. Defaults to 8.
        qk_dims (int, optional): channels of q and k. Defaults to None:
            ``floor(C / 3) * 2``. Either way rounded up to a multiple of ``group_width``.
        qk_scale (float): scale of ``q * k``; 0 or None means ``(C / G) ** -0.5``.
            Defaults to 1 (ELSA-Swin).
        qkv_bias (bool): bias of the q/k/v projection. Defaults to True.
        lam (float): exponent of the multiplicative ghost (0: off). Defaults to 0.
        gamma (float): factor of the additive ghost (0: off). Defaults to 1.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 kernel_size: int = 7,
                 dilation: int = 1,
                 group_width: int = 8,
                 qk_dims: Optional[int] = None,
                 qk_scale: Optional[float] = 1.,
                 qkv_bias: bool = True,
                 lam: float = 0.,
                 gamma: float = 1.,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        check_window(kernel_size, dilation)
        if embed_dims % num_heads:
            raise ValueError(f'num_heads ({num_heads}) must divide embed_dims ({embed_dims})')
        qk_dims = qk_dims or embed_dims // 3 * 2
        qk_dims = -(-qk_dims // group_width) * group_width
        self.embed_dims, self.num_heads, self.qk_dims = embed_dims, num_heads, qk_dims
        self.kernel_size, self.dilation = kernel_size, dilation
        self.scale = qk_scale or (embed_dims // num_heads)**-0.5
        self.lam, self.gamma = lam, gamma
        k2 = kernel_size * kernel_size
        self.pre_proj = nn.Conv2d(embed_dims, 2 * qk_dims + embed_dims, 1, bias=qkv_bias)
        self.attn = nn.Sequential(
            nn.Conv2d(qk_dims, qk_dims, kernel_size, padding=kernel_size // 2 * dilation,
                      dilation=dilation, groups=qk_dims // group_width),
            nn.GELU(),
            nn.Conv2d(qk_dims, k2 * num_heads, 1))
        ghost = (embed_dims, kernel_size, kernel_size)
        if lam and gamma:  # [2, 1, C, k, k]: mul (randn), add (trunc normal)
            self.ghost_head = nn.Parameter(torch.cat(
                [torch.randn(1, 1, *ghost), trunc_normal_(torch.zeros(1, 1, *ghost), std=.02)]))
        elif gamma:
            self.ghost_head = nn.Parameter(trunc_normal_(torch.zeros(1, *ghost), std=.02))
        elif lam:
            self.ghost_head = nn.Parameter(torch.randn(1, *ghost))
        else:
            self.ghost_head = None
        self.post_proj = nn.Linear(embed_dims, embed_dims)

    def ghosts(self) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """The ``[C, k, k]`` mul and add ghosts given to the op (``M ** lam``, ``gamma * Bg``)."""
        if self.lam and self.gamma:
            mul, add = self.ghost_head[0, 0], self.ghost_head[1, 0]
        elif self.gamma:
            mul, add = None, self.ghost_head[0]
        elif self.lam:
            mul, add = self.ghost_head[0], None
        else:
            return None, None
        if mul is not None and self.lam != 1:
            mul = mul**self.lam
        if add is not None and self.gamma != 1:
            add = add * self.gamma
        return mul, add

    def forward(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        G, K = self.num_heads, self.kernel_size * self.kernel_size
        # the 1x1 conv pre_proj as a GEMM on the [B, H, W, C] rows (same weights, same state
        # dict): faster than a channels-last 1x1 convolution on the CPU (ELSA-Swin-T train
        # step 2-4% faster); q * k goes to the grouped conv as a channels-last NCHW view
        y = F.linear(x, self.pre_proj.weight.view(-1, C), self.pre_proj.bias)
        q, k, v = y.split([self.qk_dims, self.qk_dims, C], dim=-1)
        logits = self.attn((q * k * self.scale).permute(0, 3, 1, 2))  # [B, G*K, H, W]
        # the softmax in float32 under autocast, as the original's (whose op ran in float32)
        dtype = torch.float32 if logits.dtype in HALF_DTYPES else logits.dtype
        attn = logits.reshape(B, G, K, H, W).softmax(dim=2, dtype=dtype)  # channel g*K + t
        if not torch.is_autocast_enabled(x.device.type):
            attn = attn.to(v.dtype)
        mul, add = self.ghosts()
        out = elsa_aggregate(v.permute(0, 3, 1, 2), attn, self.kernel_size, self.dilation, mul,
                             add)
        return self.post_proj(out.permute(0, 2, 3, 1))  # [B, H, W, C]


# ----------------------------------------------------------------------------- stage 4: Swin


def window_partition(x: Tensor, w: int) -> Tensor:
    """``[B, H, W, C]`` (H, W multiples of w) -> ``[B * H/w * W/w, w*w, C]``."""
    B, H, W, C = x.shape
    x = x.view(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, C)


def window_reverse(windows: Tensor, w: int, H: int, W: int) -> Tensor:
    """Inverse of :func:`window_partition`: ``[B * nW, w*w, C]`` -> ``[B, H, W, C]``."""
    C = windows.shape[-1]
    x = windows.view(-1, H // w, W // w, w, w, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, H, W, C)


def shift_mask(H: int, W: int, w: int, shift: int, device) -> Tensor:
    """The shifted-window mask of Swin: ``[nW, w*w, w*w]``, 0 within a region, -100 across."""
    region = torch.zeros(1, H, W, 1, device=device)
    slices = (slice(0, -w), slice(-w, -shift), slice(-shift, None))
    n = 0
    for hs in slices:
        for ws in slices:
            region[:, hs, ws] = n
            n += 1
    ids = window_partition(region, w).squeeze(-1)  # [nW, w*w]
    diff = ids[:, None, :] - ids[:, :, None]
    return diff.ne(0).float() * -100.


class WindowAttention(BaseModule):
    """Swin window attention in the original ELSA-Swin layout, on ``[B*nW, w*w, C]``.

    ``pre_proj`` gives v, q, k (in that order); ``rb[:, relative_id]`` is the bias, with
    ``relative_id`` built from key - query offsets.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int = 7,
                 qkv_bias: bool = True, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if embed_dims % num_heads:
            raise ValueError(f'num_heads ({num_heads}) must divide embed_dims ({embed_dims})')
        self.num_heads, self.window_size = num_heads, window_size
        self.scale = (embed_dims // num_heads)**-0.5
        w = window_size
        self.rb = nn.Parameter(trunc_normal_(torch.zeros(num_heads, (2 * w - 1)**2), std=.02))
        yx = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing='ij'))
        yx = yx.flatten(1)  # [2, w*w]
        rel = yx[:, None, :] - yx[:, :, None] + (w - 1)  # [2, query, key]: key - query
        self.register_buffer('relative_id', (rel[0] * (2 * w - 1) + rel[1]).flatten())
        self.pre_proj = nn.Linear(embed_dims, 3 * embed_dims, bias=qkv_bias)
        self.post_proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        B_, N, C = x.shape
        h = self.num_heads
        v, q, k = self.pre_proj(x).view(B_, N, 3, h, C // h).permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.rb[:, self.relative_id].view(1, h, N, N)
        if mask is not None:  # [nW, N, N]
            nW = mask.shape[0]
            bias = (bias + mask[:, None]).repeat(B_ // nW, 1, 1, 1)  # [B_, h, N, N]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype),
                                             scale=self.scale)
        return self.post_proj(out.transpose(1, 2).reshape(B_, N, C))


# ----------------------------------------------------------------------------- blocks, stages


class Mlp(nn.Module):
    """``fc1 -> GELU -> fc2`` (timm's ``Mlp`` names)."""

    def __init__(self, embed_dims: int, hidden_dims: int):
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(BaseModule):
    """Pre-norm residual block on ``[B, H, W, C]``: ``x + mix(LN(x))``, ``x + MLP(LN(x))``."""

    def __init__(self, embed_dims: int, mlp_ratio: float, drop_path: float, with_cp: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.with_cp = with_cp

    def mix(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _inner_forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.mix(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def forward(self, x: Tensor) -> Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._inner_forward, x, use_reentrant=False)
        return self._inner_forward(x)


class ELSABlock(_Block):
    """ELSA-Swin block of stages 1-3 (the original ``ELSASwinBlock``): no windows, no shift."""

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float = 4.,
                 drop_path: float = 0., with_cp: bool = False, **elsa_kwargs):
        super().__init__(embed_dims, mlp_ratio, drop_path, with_cp)
        self.attn = ELSAAttention(embed_dims, num_heads, **elsa_kwargs)

    def mix(self, x: Tensor) -> Tensor:
        return self.attn(x)


class SwinBlock(_Block):
    """Swin block of stage 4: (shifted) window attention, the map padded to the window."""

    def __init__(self, embed_dims: int, num_heads: int, window_size: int = 7,
                 shift_size: int = 0, mlp_ratio: float = 4., qkv_bias: bool = True,
                 drop_path: float = 0., with_cp: bool = False):
        super().__init__(embed_dims, mlp_ratio, drop_path, with_cp)
        self.window_size, self.shift_size = window_size, shift_size
        self.attn = WindowAttention(embed_dims, num_heads, window_size, qkv_bias)

    def mix(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        w = self.window_size
        x = F.pad(x, (0, 0, 0, (-W) % w, 0, (-H) % w))
        Hp, Wp = x.shape[1:3]
        # no shift when the map fits in one window (the original classifier at 224)
        shift = self.shift_size if max(H, W) > w else 0
        mask = None
        if shift:
            x = torch.roll(x, (-shift, -shift), dims=(1, 2))
            mask = shift_mask(Hp, Wp, w, shift, x.device)
        x = window_reverse(self.attn(window_partition(x, w), mask), w, Hp, Wp)
        if shift:
            x = torch.roll(x, (shift, shift), dims=(1, 2))
        return x[:, :H, :W]


class PatchEmbed(nn.Module):
    """4 x 4 stride-4 conv + LayerNorm; pads the image to a multiple of 4. -> ``[B, H, W, C]``."""

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int = 4):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, patch_size)
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        p = self.patch_size
        x = F.pad(x, (0, (-x.shape[3]) % p, 0, (-x.shape[2]) % p))
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class PatchMerging(nn.Module):
    """2 x 2 neighbours concatenated (Swin's order) -> LN(4C) -> Linear(4C, 2C); pads odd sizes."""

    def __init__(self, embed_dims: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * embed_dims)
        self.reduction = nn.Linear(4 * embed_dims, 2 * embed_dims, bias=False)

    def forward(self, x: Tensor) -> Tensor:  # [B, H, W, C] -> [B, ceil(H/2), ceil(W/2), 2C]
        x = F.pad(x, (0, 0, 0, x.shape[2] % 2, 0, x.shape[1] % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]],
                      dim=-1)
        return self.reduction(self.norm(x))


class ELSASwinStage(nn.Module):
    """``blocks`` then an optional ``downsample`` (the original ``BasicLayer``)."""

    def __init__(self, blocks: Sequence[nn.Module], downsample: Optional[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x


# ----------------------------------------------------------------------------- backbone


@MODELS.register_module()
class ELSASwin(ArchBackbone):
    """ELSA-Swin backbone (tiny / small / base).

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'``, or a dict with the keys of the
            :attr:`arch_zoo` entries. Defaults to ``'tiny'``.
        in_channels (int): image channels. Defaults to 3.
        out_indices (Sequence[int]): stages to return (0..3). Defaults to (0, 1, 2, 3).
        drop_path_rate (float): stochastic depth, linear from 0 over all blocks.
            Defaults to 0.1.
        kernel_size (int): ELSA window side. Defaults to 7.
        dilation (int): ELSA tap spacing. Defaults to 1.
        window_size (int): stage-4 window side. Defaults to 7.
        mlp_ratio (float): MLP hidden ratio. Defaults to 4.
        lam (float): ELSA mul-ghost exponent (0: off, as released). Defaults to 0.
        gamma (float): ELSA add-ghost factor (1: on, as released). Defaults to 1.
        frozen_stages (int): freeze the patch embedding and stages 1..n, with their output
            norms (-1: nothing). Defaults to -1.
        norm_eval (bool): keep BatchNorm layers in eval mode while training (the backbone has
            none; kept for the OpenMMLab interface). Defaults to False.
        with_cp (bool): gradient checkpointing per block. Defaults to False.
        init_cfg (dict, optional): mmengine init config. Defaults to None: Linear layers
            truncated normal std 0.02 with zero bias, LayerNorm (1, 0), convs at PyTorch's
            default, as the original. A ``Pretrained`` entry without checkpoint means the same,
            with a warning.
        pretrained (str, optional): deprecated alias of ``init_cfg=dict(type='Pretrained',
            checkpoint=pretrained)`` (a warning), for mmseg configs' ``model.pretrained``;
            an error together with ``init_cfg``. Defaults to None.

    Returns (forward): tuple of ``[B, C_i, ceil(H / s_i), ceil(W / s_i)]`` for ``i`` in
    ``out_indices``, ``s_i = 4 * 2**i``, each after its own LayerNorm ``norm{i}``; contiguous
    NCHW.
    """
    arch_zoo = {
        'tiny': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
                     group_width=4),
        'small': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24),
                      group_width=8),
        'base': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32),
                     group_width=8),
    }

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 drop_path_rate: float = 0.1,
                 kernel_size: int = 7,
                 dilation: int = 1,
                 window_size: int = 7,
                 mlp_ratio: float = 4.,
                 lam: float = 0.,
                 gamma: float = 1.,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None):
        super().__init__(init_cfg=init_cfg, pretrained=pretrained)
        self.in_channels = in_channels
        arch = self._parse_arch(arch)
        self._set_stage_args(out_indices, frozen_stages, norm_eval, drop_path_rate)
        out_indices = self.out_indices
        E, depths, heads = arch['embed_dims'], arch['depths'], arch['num_heads']
        self.channels = tuple(E * 2**i for i in range(4))

        self.patch_embed = PatchEmbed(in_channels, E)
        rates = drop_path_rates(drop_path_rate, sum(depths))
        self.layers = nn.ModuleList()
        for i, (dims, depth, h) in enumerate(zip(self.channels, depths, heads)):
            dpr = rates[sum(depths[:i]):sum(depths[:i + 1])]
            if i < 3:
                blocks = [
                    ELSABlock(dims, h, mlp_ratio, dpr[j], with_cp, kernel_size=kernel_size,
                              dilation=dilation, group_width=arch['group_width'], lam=lam,
                              gamma=gamma) for j in range(depth)
                ]
            else:
                blocks = [
                    SwinBlock(dims, h, window_size, 0 if j % 2 == 0 else window_size // 2,
                              mlp_ratio, drop_path=dpr[j], with_cp=with_cp)
                    for j in range(depth)
                ]
            self.layers.append(ELSASwinStage(blocks, PatchMerging(dims) if i < 3 else None))
        for i in out_indices:
            self.add_module(f'norm{i}', nn.LayerNorm(self.channels[i]))
        self.out_channels = tuple(self.channels[i] for i in out_indices)
        self._freeze_stages()

    @classmethod
    def _parse_arch(cls, arch) -> dict:
        arch = super()._parse_arch(arch)
        if len(arch['depths']) != 4 or len(arch['num_heads']) != 4:
            raise ValueError('arch depths and num_heads need one entry per stage (4), got '
                             f'{arch["depths"]} and {arch["num_heads"]}')
        return arch

    def _frozen_modules(self):
        return self._stem_and_stages(self.patch_embed, self.layers)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        self._check_input(x)
        x = self.patch_embed(x)  # [B, H/4, W/4, C], channels last
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)
                outs.append(out.permute(0, 3, 1, 2).contiguous())  # NCHW memory (RoIAlign)
            if layer.downsample is not None:
                x = layer.downsample(x)
        return tuple(outs)


# ----------------------------------------------------------------------------- checkpoints


def convert_elsa_swin(checkpoint: dict) -> dict:
    """Original ELSA-Swin weights -> this package's classifier, detector or segmentor layout.

    Accepts a timm ImageNet checkpoint (``state_dict``; ``state_dict_ema`` is chosen by the
    caller), an original mmdet / mmseg checkpoint (``state_dict``), a ``model`` entry, or a
    bare state dict, with or without a ``module.`` prefix. Mapping: ``patch_embed.*`` and
    ``layers.*`` -> ``backbone.*`` (names unchanged); ``norm.*`` -> ``backbone.norm3.*`` (the
    final norm is stage 4's output norm); ``head.*`` -> ``head.fc.*`` (mmpretrain's
    ``LinearClsHead``). Detector and segmentor keys (``backbone.``, ``neck.``, ``rpn_head.``,
    ``roi_head.``, ``decode_head.``, ``auxiliary_head.``) pass through: mmdet 3 / mmseg 1 keep
    the mmdet 2.11 / mmseg 0.11 names of these heads.

    Raises:
        ValueError: on keys this converter does not know, instead of dropping them silently.
    """
    state_dict = checkpoint
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), dict):
            state_dict = checkpoint[key]
            break
    passthrough = ('backbone.', 'neck.', 'rpn_head.', 'roi_head.', 'bbox_head.', 'decode_head.',
                   'auxiliary_head.')
    converted, unknown = {}, []
    for key, value in state_dict.items():
        if key.startswith('module.'):
            key = key[len('module.'):]
        if key.startswith(('patch_embed.', 'layers.')):
            converted['backbone.' + key] = value
        elif key.startswith('norm.'):
            converted['backbone.norm3.' + key[len('norm.'):]] = value
        elif key.startswith('head.'):
            converted['head.fc.' + key[len('head.'):]] = value
        elif key.startswith(passthrough):
            converted[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f'convert_elsa_swin: {len(unknown)} keys of unknown layout, e.g. '
                         f'{unknown[:3]}; only ELSA-Swin classifiers, detectors and segmentors '
                         'are converted')
    return converted

