# UperNet, ELSA-Swin-T (+ auxiliary FCN head on stage 3), ADE20K 512x512, 160k iterations,
# 8 GPUs x 2 images: the original recipe (spec elsa.md 4.3; 47.9 mIoU multi-scale + flip, 61M
# parameters). AdamW lr 6e-5 / wd 0.01 (none on norms), 1500 warm-up iterations from 1e-6 then
# poly (power 1) to 0, drop path 0.3, SyncBN in the heads, whole-image test; tools/test.py --tta
# tests at the paper's multi-scale + flip (_base_/ade20k_ms_flip_tta.py). ImageNet weights:
# elsa2mmvit.py, then --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = [
    'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py',
    './_base_/ade20k_ms_flip_tta.py',
]
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='ELSASwin',
        arch='tiny',
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')))
tta_model = {{_base_.ade20k_ms_flip_tta_model}}
tta_pipeline = {{_base_.ade20k_ms_flip_tta_pipeline}}
