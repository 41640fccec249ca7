# Mask R-CNN, ELSA-Swin-S + FPN, 1x on COCO: the tiny recipe with drop path 0.2
# (48.3 box / 43.0 mask AP, 72M parameters).
_base_ = './maskrcnn_elsa_swin_tiny_coco.py'

model = dict(backbone=dict(arch='small', drop_path_rate=0.2))
