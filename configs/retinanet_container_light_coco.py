# RetinaNet, Container-Light + FPN, 1x on COCO: the likely protocol of the paper's 43.8 box AP
# (spec container.md 4.1; no detection config was ever published): PVT's mmdet setting, AdamW
# lr 1e-4 / wd 1e-4, 12 epochs with steps at 8 and 11, batch 2 x 8 GPUs, FPN from stride 8 with
# extra convs on the input. The in-block BatchNorms stay trainable (the authors never said; a
# detectron2 port froze them). ImageNet weights: container2mmvit.py, then
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='Container',
        arch='light',
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 320, 512], start_level=1, add_extra_convs='on_input'))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4))
