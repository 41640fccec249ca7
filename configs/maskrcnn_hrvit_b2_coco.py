# Mask R-CNN, HRViT-b2 + HRViTNeck, 1x on COCO (recipe of maskrcnn_hrvit_b1_coco.py; drop path
# 0.2 as in HRViT-b2's ADE20K configs).
_base_ = './maskrcnn_hrvit_b1_coco.py'

model = dict(
    backbone=dict(arch='b2', drop_path_rate=0.2),
    neck=dict(in_channels=[48, 96, 240, 384]))
