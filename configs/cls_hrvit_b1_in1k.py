# HRViT-b1 ImageNet-1K classifier with the original recipe (spec 5.4): 32 GPUs x 32 images
# = 1024, AdamW lr 1e-3 / wd 0.05 (no decay on norms and biases), 20 warm-up epochs from 1e-6
# then cosine to 1e-5 over 300 epochs, drop path 0.1, gradient clipping 1.0, RandAugment
# m9-mstd0.5, mixup 0.8, cutmix 1.0, label smoothing 0.1, random erasing 0.25, bicubic
# evaluation at crop_pct 0.9. Not reproduced: timm's 10 extra cool-down epochs at lr 1e-5 and
# its per-batch mixup/cutmix switch.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(type='HRViT', arch='b1', drop_path_rate=0.1),
    neck=dict(type='HRViTClsNeck', in_channels=(32, 64, 128, 256), dropout=0.1),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=2048,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

train_dataloader = dict(batch_size=32)
val_dataloader = dict(batch_size=32)
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

optim_wrapper = dict(clip_grad=dict(max_norm=1.0))
