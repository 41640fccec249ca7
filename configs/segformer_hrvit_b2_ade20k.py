# HRViT-b2 + SegFormer head, ADE20K (spec hrvit.md 5.2: 48.76 mIoU, 20.8M parameters).
_base_ = './segformer_hrvit_b1_ade20k.py'

model = dict(
    backbone=dict(arch='b2', drop_path_rate=0.2),
    decode_head=dict(in_channels=[48, 96, 240, 384]))
