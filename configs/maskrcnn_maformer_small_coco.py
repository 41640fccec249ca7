# Mask R-CNN, MAFormer-S + FPN, 1x on COCO: the (inferred) tiny recipe with drop path 0.3.
_base_ = './maskrcnn_maformer_tiny_coco.py'

model = dict(backbone=dict(arch='small', drop_path_rate=0.3))
