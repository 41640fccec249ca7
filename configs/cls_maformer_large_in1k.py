# MAFormer-L ImageNet-1K classifier: the (inferred) base recipe (drop path 0.5, weight decay 0.1).
# The one published MAFormer number is this variant's: 85.9 top-1 at 224 (the abstract; CSWin-B
# + 1.7). The architecture behind it is unknown; this width is our reconstruction.
_base_ = './cls_maformer_base_in1k.py'

model = dict(backbone=dict(arch='large'), head=dict(in_channels=1152))
