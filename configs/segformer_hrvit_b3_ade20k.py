# HRViT-b3 + SegFormer head (768 channels), ADE20K (spec hrvit.md 5.2: 50.20 mIoU, 28.7M
# parameters). As in the original b3 config, the head has no x10 learning rate.
_base_ = './segformer_hrvit_b1_ade20k.py'

model = dict(
    backbone=dict(arch='b3', drop_path_rate=0.3),
    decode_head=dict(in_channels=[64, 128, 256, 512], channels=768))
optim_wrapper = dict(
    paramwise_cfg=dict(_delete_=True, custom_keys=dict(norm=dict(decay_mult=0.))))
