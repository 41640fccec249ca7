# ../cascade_maskrcnn_hrvit_b1_coco.py on the bundled COCO-format demo data: 3 classes, 192 px,
# 12 short epochs with a higher learning rate (the heads keep their full width).
_base_ = ['../cascade_maskrcnn_hrvit_b1_coco.py', './_base_/coco_demo.py']

_num_classes = 3
_stage_stds = ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
model = dict(
    backbone=dict(drop_path_rate=0.0),
    roi_head=dict(
        bbox_head=[
            dict(
                type='Shared2FCBBoxHead',
                in_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=_num_classes,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=stds),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
            for stds in _stage_stds
        ],
        mask_head=dict(num_classes=_num_classes)))
train_dataloader = {{_base_.demo_train_dataloader}}
val_dataloader = {{_base_.demo_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.demo_val_evaluator}}
test_evaluator = val_evaluator

train_cfg = {{_base_.demo_train_cfg}}
optim_wrapper = {{_base_.demo_optim_wrapper}}
param_scheduler = {{_base_.demo_param_scheduler}}
default_hooks = {{_base_.demo_default_hooks}}
