# ELSA-Swin-T ImageNet-1K classifier with the original recipe (spec elsa.md 3.1): 8 GPUs x 128
# images = 1024, AdamW lr 1e-3 / wd 0.05 (none on 1-D parameters; ghost_head and rb decayed),
# 20 warm-up epochs from 1e-6, cosine to 1e-5 over 300 epochs, drop path 0.1, gradient clipping
# 5.0, RandAugment rand-m9-mstd0.5-inc1, mixup 0.8, cutmix 1.0, label smoothing 0.1, random
# erasing 0.25 (pixel mode), native AMP, bicubic evaluation at crop_pct 0.9 (82.7 top-1).
# Not reproduced: timm's per-batch mixup/cutmix switch (mmpretrain picks one per batch the same
# way, with its own RNG).
_base_ = './_base_/cls_in1k.py'

model = dict(
    # out_indices=(3, ): stage 4 and its LayerNorm norm3 (the original's final `norm`)
    backbone=dict(type='ELSASwin', arch='tiny', drop_path_rate=0.1, out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(in_channels=768,
              init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.)))

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128, dataset=dict(pipeline={{_base_.crop09_test_pipeline}}))
test_dataloader = val_dataloader

optim_wrapper = dict(type='AmpOptimWrapper', clip_grad=dict(max_norm=5.0))
