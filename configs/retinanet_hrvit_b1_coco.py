# RetinaNet, HRViT-b1 + HRViTNeck, 1x on COCO, AdamW lr 1e-4 / wd 0.05. As RetinaNet's FPN, the
# neck starts at stride 8 and adds stride-2 convs for the levels past the backbone (strides
# 8-128).
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='HRViT',
        arch='b1',
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='HRViTNeck',
        in_channels=[32, 64, 128, 256],
        out_channels=256,
        start_level=1,
        add_extra_convs=True,
        num_outs=5))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
# RetinaNet's FPN starts at stride 8 (start_level=1): the last modules of HRViT's stride-4 branch
# (44 parameters at b1) get no gradient, which DistributedDataParallel refuses at the second
# iteration unless told to look for unused parameters.
find_unused_parameters = True
