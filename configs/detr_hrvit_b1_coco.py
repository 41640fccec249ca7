# DETR, HRViT-b1, 150 epochs on COCO with mmdet's DETR recipe (AdamW lr 1e-4, wd 1e-4, backbone
# lr x0.1, gradient clipping 0.1, batch 2 x 8 GPUs). As with ResNet, DETR reads the stride-32
# map only: HRViT's last branch (256 channels) mapped to 256 by a 1x1 conv.
_base_ = 'mmdet::detr/detr_r50_8xb2-150e_coco.py'
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='HRViT',
        arch='b1',
        drop_path_rate=0.1,
        out_indices=(3, ),
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    neck=dict(in_channels=[256]))
# DETR reads branch 4 only: the last modules of branches 1-3 (165 parameters at b1) get no
# gradient, which DistributedDataParallel refuses at the second iteration unless told to look
# for unused parameters.
find_unused_parameters = True
