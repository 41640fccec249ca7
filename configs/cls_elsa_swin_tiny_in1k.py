# ELSA-Swin-T ImageNet-1K classifier with the original recipe (spec elsa.md 3.1): 8 GPUs x 128
# images = 1024, AdamW lr 1e-3 / wd 0.05 (none on 1-D parameters; ghost_head and rb decayed),
# 20 warm-up epochs from 1e-6, cosine to 1e-5 over 300 epochs, drop path 0.1, gradient clipping
# 5.0, RandAugment rand-m9-mstd0.5-inc1, mixup 0.8, cutmix 1.0, label smoothing 0.1, random
# erasing 0.25 (pixel mode), native AMP, bicubic evaluation at crop_pct 0.9 (82.7 top-1).
# Not reproduced: timm's per-batch mixup/cutmix switch (mmpretrain picks one per batch the same
# way, with its own RNG).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    # out_indices=(3, ): stage 4 and its LayerNorm norm3 (the original's final `norm`)
    backbone=dict(type='ELSASwin', arch='tiny', drop_path_rate=0.1, out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader
# crop_pct 0.9: resize the short edge to int(224 / 0.9) = 248, then centre-crop 224
_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=248, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=_test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=_test_pipeline))

optim_wrapper = dict(type='AmpOptimWrapper', clip_grad=dict(max_norm=5.0))
