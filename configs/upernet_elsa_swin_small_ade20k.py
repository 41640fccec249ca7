# UperNet, ELSA-Swin-S, ADE20K 512x512, 160k iterations: the tiny recipe (drop path 0.3 too, as
# in the original; 50.4 mIoU multi-scale + flip, 85M parameters).
_base_ = './upernet_elsa_swin_tiny_ade20k.py'

model = dict(backbone=dict(arch='small'))
