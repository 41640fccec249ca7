# MAFormer-S ImageNet-1K classifier: the (inferred) tiny recipe with CSWin-S's drop path 0.4.
_base_ = './cls_maformer_tiny_in1k.py'

model = dict(backbone=dict(arch='small', drop_path_rate=0.4), head=dict(in_channels=512))
