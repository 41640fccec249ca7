# UperNet, Container-Light (+ auxiliary FCN head on stage 3), ADE20K 512x512, 160k iterations,
# 8 GPUs x 2 images. No Container segmentation result or recipe was published; this is the
# Swin/ELSA UperNet recipe (AdamW 6e-5, wd 0.01, poly, drop path 0.1) on the Light widths.
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='Container',
        arch='light',
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    decode_head=dict(in_channels=[64, 128, 320, 512]),
    auxiliary_head=dict(in_channels=320))
