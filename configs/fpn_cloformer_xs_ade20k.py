# Semantic FPN, CloFormer-XS, ADE20K 512x512: the protocol of the author's FAT (spec
# cloformer.md 9; CloFormer's own was never published): 80k iterations, AdamW lr 1e-4 / wd 1e-4,
# no gradient clipping, poly (power 0.9) to 0, 8 GPUs x 2 images, whole-image test at
# (2048, 512), drop path 0.05; FAT's taps with a GroupNorm per level.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py', 'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_80k.py'
]
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='CloFormer',
        arch='xs',
        drop_path_rate=0.05,
        out_indices=(0, 1, 2, 3),
        out_norms=True,
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    neck=dict(in_channels=[48, 96, 160, 352]),
    decode_head=dict(num_classes=150))

train_dataloader = dict(batch_size=2)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=80000, by_epoch=False)
]
