# ../upernet_hrvit_b1_cityscapes.py on the bundled cityscapes demo data: 128x128 crops, 200
# iterations, lr x10.
_base_ = [
    '../upernet_hrvit_b1_cityscapes.py',
    './_base_/cityscapes_demo.py',
    './_base_/seg_demo_schedule.py',
]

model = dict(
    data_preprocessor=dict(size={{_base_.demo_crop_size}}),
    test_cfg=dict(crop_size={{_base_.demo_crop_size}}, stride=(96, 96)),
    backbone=dict(drop_path_rate=0.0))
train_dataloader = {{_base_.demo_train_dataloader}}
val_dataloader = {{_base_.demo_val_dataloader}}
test_dataloader = val_dataloader
train_cfg = {{_base_.demo_train_cfg}}
param_scheduler = {{_base_.demo_param_scheduler}}
default_hooks = {{_base_.demo_default_hooks}}
optim_wrapper = dict(optimizer=dict(lr=6e-4))
