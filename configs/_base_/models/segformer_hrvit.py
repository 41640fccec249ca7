# HRViT-b1 with HRViT's own SegFormer head (linear 1x1 projections; spec hrvit.md 5.4).
_base_ = './hrvit_encoder_decoder.py'

model = dict(
    decode_head=dict(
        type='HRViTSegformerHead',
        in_channels=[32, 64, 128, 256],
        in_index=[0, 1, 2, 3],
        channels=256,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg={{_base_.norm_cfg}},
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
