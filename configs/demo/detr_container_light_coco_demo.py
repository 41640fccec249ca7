# ../detr_container_light_coco.py on the bundled COCO-format demo data: 3 classes, 192 px (no
# multi-scale), 12 short epochs. DETR converges slowly: expect a low mAP this short.
_base_ = ['../detr_container_light_coco.py', './_base_/coco_demo.py']

model = dict(
    backbone=dict(drop_path_rate=0.0),
    bbox_head=dict(num_classes={{_base_.demo_num_classes}}))
train_dataloader = {{_base_.demo_train_dataloader}}
val_dataloader = {{_base_.demo_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.demo_val_evaluator}}  # merges: keeps the real config's metric
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=12, val_interval=12)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[10], gamma=0.1)
]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=12, max_keep_ckpts=1))
