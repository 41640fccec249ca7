# MAFormer-T ImageNet-1K classifier (a reconstruction: spec maformer.md 6). The paper's recipe is
# unknown; this one is *inferred* from its comparisons, which are all against CSWin at 224: the
# CSWin / DeiT recipe of 300 epochs, 8 GPUs x 256 = 2048 images, AdamW lr 2e-3 / wd 0.05 (none
# on norms, biases, the window bias tables `rpb` and GLD's `pos`), 20 warm-up epochs, cosine to
# 1e-5, drop path 0.2 (CSWin-T's), gradient clipping 5.0, RandAugment m9-mstd0.5, mixup 0.8,
# cutmix 1.0, label smoothing 0.1, random erasing 0.25, AMP; evaluation at crop_pct 0.9 (bicubic).
# Not reproduced: CSWin's EMA of the weights. Head: the backbone's LayerNorm on stage 4 ->
# global average pooling -> Linear.
_base_ = './_base_/cls_in1k.py'

model = dict(
    # out_indices=(3, ): stage 4 and its LayerNorm norm3
    backbone=dict(type='MAFormer', arch='tiny', drop_path_rate=0.2, out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(in_channels=512,
              init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.)))

train_dataloader = dict(batch_size=256)
val_dataloader = dict(batch_size=256, dataset=dict(pipeline={{_base_.crop09_test_pipeline}}))
test_dataloader = val_dataloader

optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(lr=2e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(custom_keys={'.rpb': dict(decay_mult=0.), '.pos': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=20)
]
auto_scale_lr = dict(base_batch_size=2048)
