# EncoderDecoder with HRViT-b1 and HRViT's own SegFormer head (linear 1x1 projections; spec
# hrvit.md 5.4). SyncBN everywhere as in the original: in one process it acts as BN, and for a
# CPU run with --launcher pytorch tools/train.py turns it into BN (SyncBN syncs only CUDA).
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='HRViT',
        arch='b1',
        drop_path_rate=0.1,
        norm_cfg=norm_cfg,
        # No official weights exist: from scratch (with a warning) unless given an ImageNet
        # checkpoint converted by tools/model_converters/hrvit2mmvit.py.
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    decode_head=dict(
        type='HRViTSegformerHead',
        in_channels=[32, 64, 128, 256],
        in_index=[0, 1, 2, 3],
        channels=256,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
