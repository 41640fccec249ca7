# ../maskrcnn_maformer_tiny_coco.py on the bundled COCO-format demo data, trained from scratch
# on the CPU with the demo Mask R-CNN settings of ./_base_/coco_demo.py (3 classes, 192 px,
# 128-wide FPN and heads, lighter sampling, no drop path, float32, 12 short epochs). The 3x and
# MAFormer-S configs take the same overrides: list one of them instead in `_base_`.
_base_ = ['../maskrcnn_maformer_tiny_coco.py', './_base_/coco_demo.py']

model = {{_base_.demo_maskrcnn_model}}
train_dataloader = {{_base_.demo_train_dataloader}}
val_dataloader = {{_base_.demo_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.demo_val_evaluator}}
test_evaluator = val_evaluator
train_cfg = {{_base_.demo_train_cfg}}
optim_wrapper = {{_base_.demo_optim_wrapper}}
param_scheduler = {{_base_.demo_param_scheduler}}
default_hooks = {{_base_.demo_default_hooks}}
