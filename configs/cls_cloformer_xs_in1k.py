# CloFormer-XS ImageNet-1K classifier: the XXS recipe with drop path 0.06 (79.8 top-1, 7.172M).
_base_ = './cls_cloformer_xxs_in1k.py'

model = dict(backbone=dict(arch='xs', drop_path_rate=0.06), head=dict(in_channels=352))
