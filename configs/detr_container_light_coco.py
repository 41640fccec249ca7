# DETR, Container-Light (stride-32 stage), 50 epochs on COCO: the PVT DETR baseline protocol the
# paper's 38.9 box AP most likely used (spec container.md 4.1): AdamW lr 1e-4 / wd 1e-4, backbone
# lr x0.1, gradient clipping 0.1, step at epoch 33, batch 2 x 8 GPUs, multi-scale training
# (short side 640-800, long side <= 1333). ImageNet weights: container2mmvit.py, then
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = 'mmdet::detr/detr_r50_8xb2-150e_coco.py'
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='Container',
        arch='light',
        drop_path_rate=0.1,
        out_indices=(3, ),
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    neck=dict(in_channels=[512]))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoiceResize', scales=[(s, 1333) for s in range(640, 801, 32)],
         keep_ratio=True),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

max_epochs = 50
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[33], gamma=0.1)
]
