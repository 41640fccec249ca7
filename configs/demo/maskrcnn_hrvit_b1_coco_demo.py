# The main job on the bundled demo data (`make demo`): Mask R-CNN + HRViT-b1 trained from scratch
# on the CPU. Same model as ../maskrcnn_hrvit_b1_coco.py except: 3 classes, 192 px images, 128-wide
# neck and heads with lighter RPN/ROI sampling (the heads dominate the cost on a CPU), no drop
# path, and a short schedule with a higher learning rate: the demo_main_* values of
# ./_base_/coco_demo.py (6 epochs, lr 8e-4, 64 sampled RoIs per image).
_base_ = ['../maskrcnn_hrvit_b1_coco.py', './_base_/coco_demo.py']

model = {{_base_.demo_main_maskrcnn_model}}
train_dataloader = {{_base_.demo_train_dataloader}}
val_dataloader = {{_base_.demo_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.demo_val_evaluator}}
test_evaluator = val_evaluator
train_cfg = {{_base_.demo_main_train_cfg}}
optim_wrapper = {{_base_.demo_main_optim_wrapper}}
param_scheduler = {{_base_.demo_main_param_scheduler}}
default_hooks = {{_base_.demo_main_default_hooks}}
