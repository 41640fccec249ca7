# HRViT-b2 + UPerHead, ADE20K (spec hrvit.md 5.2: 49.10 mIoU, 49.7M parameters).
_base_ = './upernet_hrvit_b1_ade20k.py'

model = dict(
    backbone=dict(arch='b2', drop_path_rate=0.2),
    decode_head=dict(in_channels=[48, 96, 240, 384]),
    auxiliary_head=dict(in_channels=240))
