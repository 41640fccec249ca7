# ../fpn_cloformer_xs_ade20k.py on the bundled ade demo data: 128x128 crops, 200 iterations,
# lr x10, no drop path. The xxs / s configs take the same overrides.
_base_ = ['../fpn_cloformer_xs_ade20k.py', './_base_/ade_demo.py',
          './_base_/seg_demo_schedule.py']

model = dict(
    data_preprocessor=dict(size={{_base_.demo_crop_size}}),
    backbone=dict(drop_path_rate=0.0))
train_dataloader = {{_base_.demo_train_dataloader}}
val_dataloader = {{_base_.demo_val_dataloader}}
test_dataloader = val_dataloader
tta_pipeline = {{_base_.demo_tta_pipeline}}
train_cfg = {{_base_.demo_train_cfg}}
param_scheduler = {{_base_.demo_param_scheduler}}
default_hooks = {{_base_.demo_default_hooks}}
optim_wrapper = dict(optimizer=dict(lr=1e-3))
