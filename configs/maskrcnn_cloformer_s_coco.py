# Mask R-CNN, CloFormer-S + FPN, 1x on COCO: the XS recipe on the S widths.
_base_ = './maskrcnn_cloformer_xs_coco.py'

model = dict(backbone=dict(arch='s'), neck=dict(in_channels=[64, 128, 224, 448]))
