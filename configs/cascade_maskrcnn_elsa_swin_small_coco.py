# Cascade Mask R-CNN, ELSA-Swin-S + FPN, 1x on COCO: drop path 0.2 (51.6 box / 44.4 mask AP,
# 110M parameters).
_base_ = './cascade_maskrcnn_elsa_swin_tiny_coco.py'

model = dict(backbone=dict(arch='small', drop_path_rate=0.2))
