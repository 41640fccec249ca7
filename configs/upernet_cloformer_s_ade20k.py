# UperNet, CloFormer-S, ADE20K 512x512, 160k iterations: the XS recipe on the S widths.
_base_ = './upernet_cloformer_xs_ade20k.py'

model = dict(
    backbone=dict(arch='s'),
    decode_head=dict(in_channels=[64, 128, 224, 448]),
    auxiliary_head=dict(in_channels=224))
