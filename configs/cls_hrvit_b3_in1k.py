_base_ = './cls_hrvit_b1_in1k.py'

model = dict(
    backbone=dict(arch='b3'),
    neck=dict(in_channels=(64, 128, 256, 512)))
