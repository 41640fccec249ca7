# Mask R-CNN, MAFormer-T + FPN, 1x (12 epochs) on COCO. The paper's detection recipe is unknown
# (spec maformer.md 3); its COCO claim is against CSWin, so this is CSWin's (= Swin's) protocol,
# *inferred*: AdamW lr 1e-4 / wd 0.05 (none on norms, window bias tables and GLD's pos), warm-up
# 500 iterations from 0.001, steps at epochs 8 and 11, batch 2 x 8 GPUs, mixed precision, the
# DETR-style multi-scale augmentation (flip, then resize to 480-800 or resize -> crop -> resize),
# drop path 0.2. GLD resamples every map to its 224-px grid, so the ImageNet backbone loads
# unchanged: --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'
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

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11],
         gamma=0.1)
]
optim_wrapper = dict(
    type='AmpOptimWrapper',
    paramwise_cfg=dict(custom_keys={'.rpb': dict(decay_mult=0.), '.pos': dict(decay_mult=0.)}))
