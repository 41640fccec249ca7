# Cascade Mask R-CNN, ELSA-Swin-T + FPN, 3x (36 epochs, multi-scale) on COCO: steps at 27 and
# 33, drop path 0.2 (51.0 box / 44.2 mask AP).
_base_ = './cascade_maskrcnn_elsa_swin_tiny_coco.py'

model = dict(backbone=dict(drop_path_rate=0.2))
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1)
]
