# HRViT-b2 + SegFormer head, Cityscapes (spec hrvit.md 5.2: 82.81 mIoU, 20.8M parameters).
# Gradient checkpointing on, as in the original.
_base_ = './segformer_hrvit_b1_cityscapes.py'

model = dict(
    backbone=dict(arch='b2', drop_path_rate=0.2, with_cp=True),
    decode_head=dict(in_channels=[48, 96, 240, 384]))
