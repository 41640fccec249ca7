# ../cascade_maskrcnn_elsa_swin_tiny_coco.py on the bundled COCO-format demo data, trained from
# scratch on the CPU: 3 classes, 192 px, float32, 12 short epochs with a higher learning rate, and
# the light cascade heads of ./_base_/coco_cascade_demo.py. The 3x and ELSA-Swin-S configs take
# the same overrides.
_base_ = ['../cascade_maskrcnn_elsa_swin_tiny_coco.py', './_base_/coco_demo.py',
          './_base_/coco_cascade_demo.py']

model = {{_base_.demo_cascade_model}}
train_dataloader = {{_base_.demo_train_dataloader}}
val_dataloader = {{_base_.demo_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.demo_val_evaluator}}
test_evaluator = val_evaluator

train_cfg = {{_base_.demo_train_cfg}}
optim_wrapper = {{_base_.demo_optim_wrapper}}
param_scheduler = {{_base_.demo_param_scheduler}}
default_hooks = {{_base_.demo_default_hooks}}
