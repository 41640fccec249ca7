# UperNet, MAFormer-S, ADE20K 512x512, 160k iterations: the (inferred) tiny recipe with drop path
# 0.4.
_base_ = './upernet_maformer_tiny_ade20k.py'

model = dict(backbone=dict(arch='small', drop_path_rate=0.4))
