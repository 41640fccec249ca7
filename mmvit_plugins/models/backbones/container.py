"""Container and Container-Light: context aggregation networks.

Gao et al., "Container: Context Aggregation Network", NeurIPS 2021, arXiv 2106.01401; original
code allenai/container (Container-Light only). Re-implemented from the project's specification
of that code (``specs/container.md``). Module names follow the released state dict
(``patch_embed{1..4}.{proj,norm}``, ``blocks{1..4}.{i}.{pos_embed,norm1,conv1,attn|conv,conv2,
norm2,mlp.fc1,mlp.fc2,sa_weight}``, ``norm``), so the released checkpoint loads key for key.

* ``CBlock`` (Container-Light stages 1-3): conditional positional encoding (x += DWConv3x3(x)),
  then BN -> 1x1 -> depthwise 5x5 (the static affinity) -> 1x1, then BN -> conv MLP; residual
  branches with drop path.
* ``MixBlock`` (stage 4 of Light; every stage of the full Container): one 1x1 conv gives q|k|v;
  the dynamic affinity (multi-head attention, head dim 32, no projection inside) and the static
  one (depthwise 5x5 on the same v) are mixed by ``sigmoid(sa_weight)``, then a 1x1 conv.

``arch='full'`` (MixBlocks in all four stages with the Light widths) is a **reconstruction**: the
full Container was never released and its paper configuration is unverified (spec 2.2).

Differences from the original: any input size (each patch embedding pads its input to a multiple
of its patch size, so stage ``i`` has ``ceil(H / s_i) x ceil(W / s_i)`` positions; the original
asserts 224 x 224); ``out_indices``, ``frozen_stages``, ``norm_eval``, ``with_cp``; optional
per-level output norms for dense tasks (new parameters, not in the ImageNet checkpoint).
"""
import copy
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from torch import Tensor, nn

from ...registry import MODELS
from ...utils.convert import convert_classifier
from ._base import ArchBackbone, drop_path_rates, conv_map_attention


class PatchEmbed(nn.Module):
    """Conv (kernel = stride = patch, pads to a multiple) + per-token LayerNorm; NCHW."""

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, patch_size)
        self.norm = nn.LayerNorm(embed_dims)  # eps 1e-5, as released

    def forward(self, x: Tensor) -> Tensor:
        p = self.patch_size
        x = F.pad(x, (0, (-x.shape[3]) % p, 0, (-x.shape[2]) % p))
        x = self.proj(x)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()


class CMlp(nn.Module):
    """1x1 conv -> GELU -> 1x1 conv."""

    def __init__(self, dims: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Conv2d(dims, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dims, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    """Positional encoding, a token mixer and a conv MLP, each pre-normed with BN."""

    def __init__(self, dims: int, mlp_ratio: float, drop_path: float, with_cp: bool):
        super().__init__()
        self.pos_embed = nn.Conv2d(dims, dims, 3, padding=1, groups=dims)
        self.norm1 = nn.BatchNorm2d(dims)
        self.norm2 = nn.BatchNorm2d(dims)
        self.mlp = CMlp(dims, int(dims * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.with_cp = with_cp

    def mix(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _inner_forward(self, x: Tensor) -> Tensor:
        x = x + self.pos_embed(x)
        x = x + self.drop_path(self.mix(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def forward(self, x: Tensor) -> Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._inner_forward, x, use_reentrant=False)
        return self._inner_forward(x)


class CBlock(_Block):
    """Static affinity only: 1x1 -> depthwise 5x5 (``attn``) -> 1x1, no activation between."""

    def __init__(self, dims: int, mlp_ratio: float = 4., drop_path: float = 0.,
                 with_cp: bool = False):
        super().__init__(dims, mlp_ratio, drop_path, with_cp)
        self.conv1 = nn.Conv2d(dims, dims, 1)
        self.attn = nn.Conv2d(dims, dims, 5, padding=2, groups=dims)
        self.conv2 = nn.Conv2d(dims, dims, 1)

    def mix(self, x: Tensor) -> Tensor:
        return self.conv2(self.attn(self.conv1(x)))


class MixBlock(_Block):
    """Dynamic (attention) and static (depthwise 5x5 ``conv``) affinities on the same v, mixed by
    ``sigmoid(sa_weight)``; ``conv2`` is the output projection."""

    def __init__(self, dims: int, num_heads: int, mlp_ratio: float = 4., drop_path: float = 0.,
                 with_cp: bool = False):
        super().__init__(dims, mlp_ratio, drop_path, with_cp)
        if dims % num_heads:
            raise ValueError(f'num_heads ({num_heads}) must divide the stage width ({dims})')
        self.num_heads = num_heads
        self.conv1 = nn.Conv2d(dims, 3 * dims, 1)
        self.conv = nn.Conv2d(dims, dims, 5, padding=2, groups=dims)
        self.conv2 = nn.Conv2d(dims, dims, 1)
        self.sa_weight = nn.Parameter(torch.zeros(1))

    def mix(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        h = self.num_heads
        q, k, v = self.conv1(x).split(C, dim=1)
        static = self.conv(v)

        dynamic = conv_map_attention(q, k, v, h, scale=(C // h)**-0.5)
        w = torch.sigmoid(self.sa_weight)
        return self.conv2(w * dynamic + (1 - w) * static)


@MODELS.register_module()
class Container(ArchBackbone):
    """Container-Light (released) or Container (``'full'``, a reconstruction).

    Args:
        arch (str | dict): ``'light'``, ``'full'``, or a dict with the keys of the
            :attr:`arch_zoo` entries. Defaults to ``'light'``.
        in_channels (int): image channels. Defaults to 3.
        out_indices (Sequence[int]): stages to return (0..3). Defaults to (0, 1, 2, 3).
        drop_path_rate (float): stochastic depth, linear over all blocks. Defaults to 0.1.
        final_norm (bool): the released classifier's BatchNorm ``norm`` on the stage-4 output
            (for classification; dense configs leave it out, as the original port does).
            Defaults to False.
        out_norm_cfg (dict, optional): a norm layer ``out_norm{i}`` on every returned level
            (e.g. ``dict(type='GN', num_groups=32)``); new parameters. Defaults to None.
        frozen_stages (int): freeze the patch embeddings and blocks of stages 1..n
            (-1: nothing). Defaults to -1.
        norm_eval (bool): keep the BatchNorm layers in eval mode while training.
            Defaults to False.
        with_cp (bool): gradient checkpointing per block. Defaults to False.
        init_cfg (dict, optional): mmengine init config. Defaults to None: convs at PyTorch's
            default, BN (1, 0), LayerNorm (1, 0), ``sa_weight`` 0, as the original.
        pretrained (str, optional): deprecated alias of ``init_cfg=dict(type='Pretrained',
            checkpoint=pretrained)`` (a warning), for mmseg configs' ``model.pretrained``;
            an error together with ``init_cfg``. Defaults to None.

    Returns (forward): tuple of ``[B, C_i, ceil(H / s_i), ceil(W / s_i)]`` for ``i`` in
    ``out_indices``, ``s_i = 4 * 2**i``, contiguous NCHW.
    """
    arch_zoo = {
        'light': dict(embed_dims=(64, 128, 320, 512), depths=(3, 4, 8, 3),
                      patch_sizes=(4, 2, 2, 2), mlp_ratios=(8, 8, 4, 4), num_heads=16,
                      mix_stages=(False, False, False, True)),
        'full': dict(embed_dims=(64, 128, 320, 512), depths=(3, 4, 8, 3),
                     patch_sizes=(4, 2, 2, 2), mlp_ratios=(8, 8, 4, 4), num_heads=16,
                     mix_stages=(True, True, True, True)),
    }

    def __init__(self,
                 arch: Union[str, dict] = 'light',
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 drop_path_rate: float = 0.1,
                 final_norm: bool = False,
                 out_norm_cfg: Optional[dict] = None,
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
        dims, depths = arch['embed_dims'], arch['depths']
        self.channels = tuple(dims)
        rates = drop_path_rates(drop_path_rate, sum(depths))
        prev = in_channels
        for i in range(4):
            self.add_module(f'patch_embed{i + 1}',
                            PatchEmbed(prev, dims[i], arch['patch_sizes'][i]))
            dpr = rates[sum(depths[:i]):sum(depths[:i + 1])]
            if arch['mix_stages'][i]:
                blocks = [MixBlock(dims[i], arch['num_heads'], arch['mlp_ratios'][i], r, with_cp)
                          for r in dpr]
            else:
                blocks = [CBlock(dims[i], arch['mlp_ratios'][i], r, with_cp) for r in dpr]
            self.add_module(f'blocks{i + 1}', nn.ModuleList(blocks))
            prev = dims[i]
        self.norm = nn.BatchNorm2d(dims[3]) if final_norm else None
        if final_norm and 3 not in out_indices:
            raise ValueError('final_norm normalises the stage-4 output: out_indices must hold 3')
        self.out_norms = out_norm_cfg is not None
        for i in out_indices if self.out_norms else ():
            self.add_module(f'out_norm{i}', build_norm_layer(copy.deepcopy(out_norm_cfg),
                                                             dims[i])[1])
        self.out_channels = tuple(dims[i] for i in out_indices)
        self._freeze_stages()

    @classmethod
    def _parse_arch(cls, arch) -> dict:
        arch = super()._parse_arch(arch)
        for key in ('embed_dims', 'depths', 'patch_sizes', 'mlp_ratios', 'mix_stages'):
            if len(arch[key]) != 4:
                raise ValueError(f'arch {key} needs one entry per stage (4), got {arch[key]}')
        return arch

    def _frozen_modules(self):
        for i in range(min(self.frozen_stages, 4)):
            yield getattr(self, f'patch_embed{i + 1}')
            yield getattr(self, f'blocks{i + 1}')
            if self.out_norms and i in self.out_indices:
                yield getattr(self, f'out_norm{i}')

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        self._check_input(x)
        outs = []
        for i in range(4):
            x = getattr(self, f'patch_embed{i + 1}')(x)
            for block in getattr(self, f'blocks{i + 1}'):
                x = block(x)
            if i in self.out_indices:
                out = x
                if i == 3 and self.norm is not None:
                    out = self.norm(out)
                if self.out_norms:
                    out = getattr(self, f'out_norm{i}')(out)
                outs.append(out.contiguous())
        return tuple(outs)


def convert_container(checkpoint: dict) -> dict:
    """Original Container(-Light) weights -> this package's classifier layout.

    Accepts the released training checkpoint (weights under ``model``; ``model_ema`` is chosen
    by the caller), a ``state_dict`` entry, or a bare state dict, with or without a
    ``module.`` prefix. ``patch_embed*``, ``blocks*`` and ``norm.*`` -> ``backbone.*`` (names
    unchanged); ``head.*`` -> ``head.fc.*`` (mmpretrain's ``LinearClsHead``).

    Raises:
        ValueError: on keys this converter does not know, instead of dropping them silently.
    """
    return convert_classifier(checkpoint, ('patch_embed', 'blocks', 'norm.'), 'Container')
