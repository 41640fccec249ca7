"""The ImageNet classification neck of HRViT (the original's HRNet-v2 style "incre" head).

Per branch one bottleneck (C_i -> 128, 256, 512, 1024), fused from high to low resolution with
3x3 stride-2 convs, then a 1x1 conv to 2048, global average pooling and dropout; an mmpretrain
``LinearClsHead(in_channels=2048)`` completes the original head (its ``classifier`` is the
head's ``fc``). Module names follow the original's ``head.*`` keys, so converted weights load
with ``strict=True``.
"""
import copy
from typing import Optional, Sequence, Tuple

from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...registry import MODELS


def _bn(norm_cfg, channels):
    return build_norm_layer(copy.deepcopy(norm_cfg), channels)[1]


class Bottleneck(nn.Module):
    """ResNet bottleneck (expansion 4) with a 1x1 conv + BN projection shortcut."""
    expansion = 4

    def __init__(self, in_channels: int, planes: int, norm_cfg: dict):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = _bn(norm_cfg, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = _bn(norm_cfg, planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = _bn(norm_cfg, out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), _bn(norm_cfg, out_channels))

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + self.downsample(x))


@MODELS.register_module()
class HRViTClsNeck(BaseModule):
    """Fuses the four HRViT branches into one pooled 2048-d feature (the original ImageNet head
    without its final linear layer).

    Args:
        in_channels (Sequence[int]): channels of the four branches.
        planes (Sequence[int]): bottleneck widths per branch. Defaults to (32, 64, 128, 256).
        out_channels (int): width of the final 1x1 conv. Defaults to 2048.
        dropout (float): dropout after pooling. Defaults to 0.1 (as the original).
        norm_cfg (dict): Defaults to BN.
        init_cfg (dict, optional): Defaults to None.

    Shapes: ``forward(tuple of 4 [B, C_i, H_i, W_i]) -> ([B, out_channels], )``.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 planes: Sequence[int] = (32, 64, 128, 256),
                 out_channels: int = 2048,
                 dropout: float = 0.1,
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != 4 or len(planes) != 4:
            raise ValueError(f'in_channels and planes need 4 entries, got {in_channels}, '
                             f'{planes}')
        widths = [p * Bottleneck.expansion for p in planes]
        self.incre_modules = nn.ModuleList(
            nn.Sequential(Bottleneck(c, p, norm_cfg)) for c, p in zip(in_channels, planes))
        self.downsamp_modules = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(widths[i], widths[i + 1], 3, 2, 1), _bn(norm_cfg, widths[i + 1]),
                nn.ReLU(inplace=True)) for i in range(3))
        self.final_layer = nn.Sequential(
            nn.Conv2d(widths[3], out_channels, 1), _bn(norm_cfg, out_channels),
            nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, inputs: Tuple[Tensor, ...]) -> Tuple[Tensor]:
        if len(inputs) != 4:
            raise ValueError(f'HRViTClsNeck needs the 4 branch maps, got {len(inputs)}')
        y = self.incre_modules[0](inputs[0])
        for i in range(1, 4):
            down = self.downsamp_modules[i - 1](y)
            incre = self.incre_modules[i](inputs[i])
            y = incre + down[..., :incre.shape[-2], :incre.shape[-1]]
        y = self.pool(self.final_layer(y)).flatten(1)
        return (self.dropout(y), )
