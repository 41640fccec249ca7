# ../retinanet_container_light_coco.py on the bundled COCO-format demo data: 3 classes, 192 px,
# 12 short epochs with a higher learning rate, no drop path.
_base_ = ['../retinanet_container_light_coco.py', './_base_/coco_demo.py']

model = dict(
    backbone=dict(drop_path_rate=0.0),
    bbox_head=dict(num_classes={{_base_.demo_num_classes}}))
train_dataloader = {{_base_.demo_train_dataloader}}
val_dataloader = {{_base_.demo_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.demo_val_evaluator}}  # merges: keeps the real config's metric
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=12, val_interval=12)
optim_wrapper = dict(optimizer=dict(lr=4e-4), clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[9, 11], gamma=0.1)
]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=12, max_keep_ckpts=1))
