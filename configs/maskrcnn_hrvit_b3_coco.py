# Mask R-CNN, HRViT-b3 + HRViTNeck, 1x on COCO (recipe of maskrcnn_hrvit_b1_coco.py; drop path
# 0.3 as in HRViT-b3's ADE20K configs).
_base_ = './maskrcnn_hrvit_b1_coco.py'

model = dict(
    backbone=dict(arch='b3', drop_path_rate=0.3),
    neck=dict(in_channels=[64, 128, 256, 512]))
