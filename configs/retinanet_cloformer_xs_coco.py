# RetinaNet, CloFormer-XS + FPN, 1x on COCO. CloFormer never published a detection protocol
# (spec cloformer.md 9, 13): the inferred default for a lightweight backbone, AdamW lr 1e-4 /
# wd 0.05, 12 epochs with steps at 8 and 11, batch 2 x 8 GPUs, FPN from stride 8 with extra
# convs on the input. Pyramid taps and per-level GroupNorms as the author's FAT (out_norms=True),
# drop path 0.05 as FAT's dense configs. ImageNet weights: cloformer2mmvit.py, then
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='CloFormer',
        arch='xs',
        drop_path_rate=0.05,
        out_indices=(0, 1, 2, 3),
        out_norms=True,
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    neck=dict(in_channels=[48, 96, 160, 352], start_level=1, add_extra_convs='on_input'))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05))
# The FPN starts at stride 8 (start_level=1), so the stride-4 output norm (backbone.norm0) gets
# no gradient, which DistributedDataParallel refuses at the second iteration unless told to look
# for unused parameters.
find_unused_parameters = True
