# UperNet, CloFormer-XS (+ auxiliary FCN head on stage 3), ADE20K 512x512, 160k iterations,
# 8 GPUs x 2 images. No CloFormer segmentation recipe was published (spec cloformer.md 9, 13):
# the Swin/ELSA UperNet recipe (AdamW 6e-5, wd 0.01, poly) with FAT's taps, per-level GroupNorms
# and drop path 0.05. For the author's own (FAT) protocol see fpn_cloformer_xs_ade20k.py.
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
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
    decode_head=dict(in_channels=[48, 96, 160, 352]),
    auxiliary_head=dict(in_channels=160))
