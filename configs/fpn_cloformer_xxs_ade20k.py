# Semantic FPN, CloFormer-XXS, ADE20K 512x512, 80k iterations: the XS (FAT) recipe.
_base_ = './fpn_cloformer_xs_ade20k.py'

model = dict(backbone=dict(arch='xxs'), neck=dict(in_channels=[32, 64, 128, 256]))
