# CloFormer-XXS ImageNet-1K classifier with the original recipe (spec cloformer.md 8; 77.0 top-1,
# 4.167M parameters): head GroupNorm(1) -> global average pool -> Linear, all layers at PyTorch's
# default init (no trunc-normal anywhere); 8 GPUs x 256 = 2048 images (the GPU count is not
# stated; the spec's most defensible choice), AdamW lr 5e-4 x 2048 / 512 = 2e-3, wd 0.05 (none on
# 1-D parameters and biases), 20 warm-up epochs, cosine to 2e-5 over 300 epochs, gradient
# clipping 5.0, RandAugment m9-mstd0.5, mixup 0.8, cutmix 1.0, label smoothing 0.1, random
# erasing 0.25, AMP, no EMA; evaluation Resize 256 -> CenterCrop 224, bicubic.
_base_ = './_base_/cls_in1k.py'

model = dict(
    # final_norm: the original's GroupNorm `norm` on the stage-4 map, before pooling
    backbone=dict(type='CloFormer', arch='xxs', drop_path_rate=0.0, out_indices=(3, ),
                  final_norm=True),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(in_channels=256, init_cfg=None))  # PyTorch's default Linear init, as the original

train_dataloader = dict(batch_size=256)
val_dataloader = dict(batch_size=256)
test_dataloader = val_dataloader

optim_wrapper = dict(type='AmpOptimWrapper', optimizer=dict(lr=2e-3),
                     clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=2e-5, by_epoch=True, begin=20)
]
auto_scale_lr = dict(base_batch_size=2048)
