# ../retinanet_cloformer_xs_coco.py on the bundled COCO-format demo data: 3 classes, 192 px,
# 12 short epochs with a higher learning rate, no drop path. The xxs / s configs take the same
# overrides.
_base_ = ['../retinanet_cloformer_xs_coco.py', './_base_/coco_demo.py']

model = dict(
    backbone=dict(drop_path_rate=0.0),
    bbox_head=dict(num_classes={{_base_.demo_num_classes}}))
train_dataloader = {{_base_.demo_train_dataloader}}
val_dataloader = {{_base_.demo_val_dataloader}}
test_dataloader = val_dataloader
tta_pipeline = {{_base_.demo_tta_pipeline}}
val_evaluator = {{_base_.demo_val_evaluator}}  # merges: keeps the real config's metric
test_evaluator = val_evaluator

train_cfg = {{_base_.demo_train_cfg}}
optim_wrapper = {{_base_.demo_optim_wrapper}}
param_scheduler = {{_base_.demo_param_scheduler}}
default_hooks = {{_base_.demo_default_hooks}}
