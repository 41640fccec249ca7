# ELSA-Swin-S ImageNet-1K classifier: the tiny recipe with drop path 0.3 (83.5 top-1).
_base_ = './cls_elsa_swin_tiny_in1k.py'

model = dict(backbone=dict(arch='small', drop_path_rate=0.3))
