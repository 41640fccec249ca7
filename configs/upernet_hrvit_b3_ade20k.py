# HRViT-b3 + UPerHead, ADE20K (spec hrvit.md 5.2: 50.04 mIoU; 55.4M parameters reported, 55.8M
# computed from the released code).
_base_ = './upernet_hrvit_b1_ade20k.py'

model = dict(
    backbone=dict(arch='b3', drop_path_rate=0.3),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
