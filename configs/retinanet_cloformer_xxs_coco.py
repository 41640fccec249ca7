# RetinaNet, CloFormer-XXS + FPN, 1x on COCO: the XS recipe on the XXS widths.
_base_ = './retinanet_cloformer_xs_coco.py'

model = dict(backbone=dict(arch='xxs'), neck=dict(in_channels=[32, 64, 128, 256]))
