# HRViT-b1 ImageNet-1K classifier with the original recipe (spec 5.4): 32 GPUs x 32 images
# = 1024, AdamW lr 1e-3 / wd 0.05 (no decay on norms and biases), 20 warm-up epochs from 1e-6
# then cosine to 1e-5 over 300 epochs, drop path 0.1, gradient clipping 1.0, RandAugment
# m9-mstd0.5, mixup 0.8, cutmix 1.0, label smoothing 0.1, random erasing 0.25, bicubic
# evaluation at crop_pct 0.9. Not reproduced: timm's 10 extra cool-down epochs at lr 1e-5 and
# its per-batch mixup/cutmix switch.
_base_ = './_base_/cls_in1k.py'

model = dict(
    backbone=dict(type='HRViT', arch='b1', drop_path_rate=0.1),
    neck=dict(type='HRViTClsNeck', in_channels=(32, 64, 128, 256), dropout=0.1),
    head=dict(in_channels=2048))

train_dataloader = dict(batch_size=32)
val_dataloader = dict(batch_size=32, dataset=dict(pipeline={{_base_.crop09_test_pipeline}}))
test_dataloader = val_dataloader

optim_wrapper = dict(clip_grad=dict(max_norm=1.0))
