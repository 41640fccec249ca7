# ../cascade_maskrcnn_elsa_swin_tiny_coco.py on the bundled COCO-format demo data: 3 classes,
# 192 px, float32, 12 short epochs with a higher learning rate. The three ConvFC box heads
# (4 convs + 1 FC, GIoU) are the real ones with 3 classes; their SyncBN runs as BN in a
# non-distributed run. The 3x and ELSA-Swin-S configs take the same overrides.
_base_ = ['../cascade_maskrcnn_elsa_swin_tiny_coco.py', './_base_/coco_demo.py']

_num_classes = 3
_stage_stds = ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
model = dict(
    roi_head=dict(
        bbox_head=[  # a list replaces the base's list whole, so the heads are given in full
            dict(
                type='ConvFCBBoxHead',
                num_shared_convs=4,
                num_shared_fcs=1,
                in_channels=256,
                conv_out_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=_num_classes,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=stds),
                reg_class_agnostic=False,
                reg_decoded_bbox=True,
                norm_cfg=dict(type='SyncBN', requires_grad=True),
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='GIoULoss', loss_weight=10.0)) for stds in _stage_stds
        ],
        mask_head=dict(num_classes=_num_classes)))
train_dataloader = {{_base_.demo_train_dataloader}}
val_dataloader = {{_base_.demo_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.demo_val_evaluator}}
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=12, val_interval=12)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(lr=4e-4), clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[9, 11], gamma=0.1)
]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=12, max_keep_ckpts=1))
