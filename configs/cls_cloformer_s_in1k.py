# CloFormer-S ImageNet-1K classifier: the XXS recipe with drop path 0.06 (81.6 top-1, 12.346M).
_base_ = './cls_cloformer_xxs_in1k.py'

model = dict(backbone=dict(arch='s', drop_path_rate=0.06), head=dict(in_channels=448))
