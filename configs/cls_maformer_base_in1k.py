# MAFormer-B ImageNet-1K classifier: the (inferred) tiny recipe with CSWin-B's drop path 0.5 and
# weight decay 0.1.
_base_ = './cls_maformer_tiny_in1k.py'

model = dict(backbone=dict(arch='base', drop_path_rate=0.5), head=dict(in_channels=768))
optim_wrapper = dict(optimizer=dict(weight_decay=0.1))
