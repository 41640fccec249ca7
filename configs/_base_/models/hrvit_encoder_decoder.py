# The EncoderDecoder shared by HRViT's segmentors: HRViT-b1 backbone, SyncBN everywhere as in
# the original (in one process it acts as BN; for a CPU run with --launcher pytorch tools/train.py
# turns it into BN, since SyncBN syncs only CUDA). The head files add the decode heads.
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
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
