# Semantic FPN, CloFormer-S, ADE20K 512x512, 80k iterations: the XS (FAT) recipe.
_base_ = './fpn_cloformer_xs_ade20k.py'

model = dict(backbone=dict(arch='s'), neck=dict(in_channels=[64, 128, 224, 448]))
