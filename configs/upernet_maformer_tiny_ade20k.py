# UperNet, MAFormer-T (+ auxiliary FCN head on stage 3), ADE20K 512x512, 160k iterations, 8 GPUs
# x 2 images. The paper has an ADE20K comparison whose recipe and numbers are unknown; *inferred*
# as CSWin's (= Swin's) UperNet protocol: AdamW lr 6e-5 / wd 0.01 (none on norms, window bias
# tables and GLD's pos), 1500 warm-up iterations then poly (power 1) to 0, drop path 0.3, SyncBN
# in the heads, whole-image test. GLD resamples every map to its 224-px grid, so the ImageNet
# backbone loads unchanged: --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='MAFormer',
        arch='tiny',
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.rpb': dict(decay_mult=0.), '.pos': dict(decay_mult=0.)}))
