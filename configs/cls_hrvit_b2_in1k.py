_base_ = './cls_hrvit_b1_in1k.py'

model = dict(
    backbone=dict(arch='b2'),
    neck=dict(in_channels=(48, 96, 240, 384)))
