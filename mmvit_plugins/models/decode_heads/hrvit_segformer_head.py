"""The SegFormer-style all-MLP decode head as shipped with HRViT.

HRViT's segmentation code carries its own copy of the SegFormer head, configured with
``mlp_norm=False, mlp_act=False``: the per-input projections are plain 1x1 convolutions with bias
(a linear "MLP"), unlike mmseg's ``SegformerHead`` whose projections are conv + norm + ReLU. The
fusion is a 1x1 convolution without bias followed by a norm and ReLU (spec hrvit.md 5.4).
"""
from typing import Sequence

import torch
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from torch import Tensor

from ...registry import MODELS

__all__ = ['HRViTSegformerHead']


@MODELS.register_module()
class HRViTSegformerHead(BaseDecodeHead):
    """SegFormer head of HRViT: linear 1x1 projections, resize to stride 4, concat, fuse.

    For each input ``i`` (in order): ``p_i = conv1x1(x_i)`` to ``channels`` (with bias; a norm
    and ReLU only when ``mlp_norm`` / ``mlp_act``), bilinearly resized to the first input's size;
    then ``cls_seg(fusion_conv(cat(p_0..p_n)))`` where ``fusion_conv`` is 1x1 conv (no bias) +
    ``norm_cfg`` + ReLU, and ``cls_seg`` is Dropout2d + 1x1 classifier. The logits are at the
    first input's resolution (stride 4).

    Parameter names match the original (``convs.{i}.conv.*``, ``fusion_conv.conv.weight``,
    ``fusion_conv.bn.*``, ``conv_seg.*``), so original segmentor checkpoints load strictly.

    Args:
        interpolate_mode (str): Mode of the resize to the first input's size. Default 'bilinear'.
        mlp_norm (bool): Norm (``norm_cfg``) after each projection. Default False (HRViT).
        mlp_act (bool): Activation (``act_cfg``) after each projection. Default False (HRViT).
        **kwargs: :class:`BaseDecodeHead` arguments (``in_channels`` a sequence,
            ``in_index``, ``channels``, ``num_classes``, ``norm_cfg`` ...), with
            ``input_transform='multiple_select'``.
    """

    def __init__(self,
                 interpolate_mode: str = 'bilinear',
                 mlp_norm: bool = False,
                 mlp_act: bool = False,
                 **kwargs):
        in_channels, in_index = kwargs.get('in_channels'), kwargs.get('in_index')
        if (not isinstance(in_channels, Sequence) or not isinstance(in_index, Sequence)
                or len(in_channels) != len(in_index)):
            raise ValueError('in_channels and in_index must be sequences of the same length, '
                             f'got {in_channels!r} and {in_index!r}')
        if interpolate_mode not in ('bilinear', 'nearest', 'bicubic'):
            raise ValueError("interpolate_mode must be 'bilinear', 'nearest' or 'bicubic', "
                             f'got {interpolate_mode!r}')
        super().__init__(input_transform='multiple_select', **kwargs)
        self.interpolate_mode = interpolate_mode
        self.convs = torch.nn.ModuleList(
            ConvModule(
                in_channels=c,
                out_channels=self.channels,
                kernel_size=1,
                norm_cfg=self.norm_cfg if mlp_norm else None,
                act_cfg=self.act_cfg if mlp_act else None) for c in self.in_channels)
        self.fusion_conv = ConvModule(
            in_channels=self.channels * len(self.in_channels),
            out_channels=self.channels,
            kernel_size=1,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Logits (B, num_classes, H0, W0) from the selected multi-level features."""
        inputs = self._transform_inputs(inputs)
        size = inputs[0].shape[2:]
        outs = [
            resize(
                conv(x), size=size, mode=self.interpolate_mode, align_corners=self.align_corners)
            for conv, x in zip(self.convs, inputs)
        ]
        return self.cls_seg(self.fusion_conv(torch.cat(outs, dim=1)))
