# Cascade Mask R-CNN, ELSA-Swin-S + FPN, 3x (multi-scale) on COCO: drop path 0.75
# (52.3 box / 45.2 mask AP).
_base_ = './cascade_maskrcnn_elsa_swin_tiny_3x_coco.py'

model = dict(backbone=dict(arch='small', drop_path_rate=0.75))
