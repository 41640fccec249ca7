# Container-Light ImageNet-1K classifier, the released model and its DeiT recipe (spec
# container.md 2.1 / 7.9; 82.3 top-1, 20.63M parameters): the released head (BN -> global average
# pool -> Linear), AdamW lr 5e-4 x batch / 512 (1e-3 at 8 GPUs x 128), wd 0.05 (none on 1-D
# parameters: norms, biases, sa_weight), 5 warm-up epochs, cosine to 1e-5 over 300 epochs, drop
# path 0.1, RandAugment m9-mstd0.5, mixup 0.8, cutmix 1.0, label smoothing 0.1, random erasing
# 0.25, repeated augmentation (3 repeats), AMP; evaluation Resize 256 -> CenterCrop 224, bicubic.
# Not kept: the original's weight EMA (0.99996), which it stores but does not evaluate
# (mmengine's EMAHook would evaluate the EMA weights instead of the raw model).
_base_ = './_base_/cls_in1k.py'

model = dict(
    # final_norm: the released BN `norm` on the stage-4 map, before pooling
    backbone=dict(type='Container', arch='light', drop_path_rate=0.1, out_indices=(3, ),
                  final_norm=True),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(in_channels=512,
              init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.)))

train_dataloader = dict(batch_size=128, sampler=dict(type='RepeatAugSampler', shuffle=True))
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5)
]

optim_wrapper = dict(type='AmpOptimWrapper')
