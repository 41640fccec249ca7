# What the ImageNet-1K classifier configs share: mmpretrain's Swin-style ImageNet data pipeline,
# AdamW schedule and runtime; an ImageClassifier whose 1000-class linear head has label smoothing
# 0.1; mixup 0.8 and cutmix 1.0. A config adds its backbone, neck, head width and recipe numbers.
# Those evaluated at crop_pct 0.9 (bicubic) take
#   val_dataloader = dict(dataset=dict(pipeline={{_base_.crop09_test_pipeline}}))
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

# crop_pct 0.9: resize the short edge to int(224 / 0.9) = 248, then centre-crop 224
crop09_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=248, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
