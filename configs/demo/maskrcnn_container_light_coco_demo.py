# ../maskrcnn_container_light_coco.py on the bundled COCO-format demo data, trained from scratch
# on the CPU. Same model except: 3 classes, 192 px images, 128-wide FPN and heads with lighter
# RPN/ROI sampling, no drop path, and a short schedule with a higher learning rate.
_base_ = ['../maskrcnn_container_light_coco.py', './_base_/coco_demo.py']

_width = 128
model = dict(
    backbone=dict(drop_path_rate=0.0),
    neck=dict(out_channels=_width),
    rpn_head=dict(in_channels=_width, feat_channels=_width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=_width),
        bbox_head=dict(in_channels=_width, fc_out_channels=512,
                       num_classes={{_base_.demo_num_classes}}),
        mask_roi_extractor=dict(out_channels=_width),
        mask_head=dict(in_channels=_width, conv_out_channels=_width,
                       num_classes={{_base_.demo_num_classes}})),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))

train_dataloader = {{_base_.demo_train_dataloader}}
val_dataloader = {{_base_.demo_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.demo_val_evaluator}}
test_evaluator = val_evaluator

_epochs = 12
train_cfg = dict(max_epochs=_epochs, val_interval=_epochs)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(lr=4e-4), clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=_epochs, by_epoch=True, milestones=[9, 11], gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=_epochs, max_keep_ckpts=1))
