# Cascade Mask R-CNN, MAFormer-T + FPN, 3x (36 epochs, multi-scale) on COCO (the paper has a
# Cascade table; its numbers and recipe are unknown). *Inferred*, as CSWin's and Swin's cascade
# protocol: three ConvFCBBoxHead stages (4 shared convs with SyncBN + 1 FC, GIoU loss x10 on
# decoded boxes), AdamW lr 1e-4 / wd 0.05 (none on norms, window bias tables and GLD's pos),
# warm-up 500 iterations, steps at epochs 27 and 33, batch 2 x 8 GPUs, mixed precision, the
# DETR-style multi-scale augmentation, drop path 0.2. ImageNet weights:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = ('mmdet::convnext/'
          'cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py')
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='MAFormer',
        arch='tiny',
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 256, 512]))

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1)
]
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'norm': dict(decay_mult=0.),
            '.rpb': dict(decay_mult=0.),
            '.pos': dict(decay_mult=0.)
        }))
