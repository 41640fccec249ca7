# Mask R-CNN, ELSA-Swin-S + FPN, 3x (multi-scale) on COCO: drop path 0.75 as in the original
# (49.2 box / 43.6 mask AP).
_base_ = './maskrcnn_elsa_swin_tiny_3x_coco.py'

model = dict(backbone=dict(arch='small', drop_path_rate=0.75))
