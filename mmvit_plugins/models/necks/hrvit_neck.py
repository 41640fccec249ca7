"""HRViTNeck: a multi-branch neck for detectors on HRViT (a drop-in replacement for FPN).

Design. HRViT already keeps four parallel branches (strides 4/8/16/32) and exchanges
information between them densely in every module, so the neck does not need FPN's top-down
path. It adds one more round of the backbone's own dense cross-resolution fusion at a common
width:

1. lateral 1x1 convs map every used branch to ``out_channels``;
2. a fusion exactly like HRViT's (every level receives every other: strided depth-wise-separable
   convs + BN from higher resolutions, 1x1 conv + BN + nearest upsampling from lower ones,
   identity from itself, summed, then GELU), so each level mixes fine detail and context in
   both directions (FPN only passes context downwards in resolution);
3. a 3x3 conv per level;
4. extra coarser levels: a stride-2 max-pool of the last level (FPN's default, e.g. Mask R-CNN
   with 5 levels at strides 4-64), or stride-2 3x3 convs (``add_extra_convs=True``, e.g.
   RetinaNet with ``start_level=1``: strides 8-128).

The arguments follow mmdet's FPN (``in_channels``, ``out_channels``, ``num_outs``,
``start_level``, ``add_extra_convs``), so a config swaps ``type='FPN'`` for ``type='HRViTNeck'``.
"""
from typing import Optional, Sequence, Tuple

import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...registry import MODELS
from ..backbones.hrvit import Fusion


@MODELS.register_module()
class HRViTNeck(BaseModule):
    """Multi-branch neck for HRViT (see the module docstring for the design).

    Args:
        in_channels (Sequence[int]): channels of the backbone outputs (4 for HRViT).
        out_channels (int): channels of every output level. Defaults to 256.
        num_outs (int): number of output levels. Defaults to 5.
        start_level (int): first backbone output used. Defaults to 0.
        add_extra_convs (bool): extra levels from stride-2 3x3 convs instead of max-pooling.
            Defaults to False.
        norm_cfg (dict): BN of the fusion paths. Defaults to BN.
        init_cfg (dict | list[dict], optional): Defaults to Xavier-uniform convs, as FPN.

    Shapes: ``forward(tuple of [B, C_i, H_i, W_i])`` -> ``num_outs`` maps of
    ``[B, out_channels, H / s, W / s]``, strides doubling from the start level's.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int = 256,
                 num_outs: int = 5,
                 start_level: int = 0,
                 add_extra_convs: bool = False,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 init_cfg: Optional[dict] = dict(
                     type='Xavier', layer='Conv2d', distribution='uniform')):
        super().__init__(init_cfg=init_cfg)
        in_channels = list(in_channels)
        if not 0 <= start_level < len(in_channels):
            raise ValueError(f'start_level must be in 0..{len(in_channels) - 1}, '
                             f'got {start_level}')
        used = len(in_channels) - start_level
        if num_outs < used:
            raise ValueError(f'num_outs={num_outs} must be >= the {used} levels used '
                             f'(in_channels from start_level)')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_outs, self.start_level = num_outs, start_level
        self.lateral_convs = nn.ModuleList(
            nn.Conv2d(c, out_channels, 1) for c in in_channels[start_level:])
        self.fusion = Fusion([out_channels] * used, [out_channels] * used, norm_cfg)
        self.fpn_convs = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in range(used))
        self.extra_convs = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, 2, 1)
            for _ in range(num_outs - used)) if add_extra_convs else None

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'HRViTNeck expects {len(self.in_channels)} inputs, '
                             f'got {len(inputs)}')
        # contiguous NCHW in, so contiguous NCHW out: convs keep a channels-last layout, and
        # mmcv's CPU RoIAlign reads its input as NCHW whatever its strides
        laterals = [
            conv(x.contiguous()) for conv, x in zip(self.lateral_convs, inputs[self.start_level:])
        ]
        sizes = [tuple(x.shape[-2:]) for x in laterals]
        outs = [conv(x) for conv, x in zip(self.fpn_convs, self.fusion(laterals, sizes))]
        while len(outs) < self.num_outs:
            if self.extra_convs is None:
                outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                outs.append(self.extra_convs[len(outs) - len(laterals)](outs[-1]))
        return tuple(outs)
