# ELSA-Swin-B ImageNet-1K classifier: the tiny recipe with drop path 0.5 and an EMA of the
# weights (decay 0.99992), which the original evaluates (84.0 top-1).
_base_ = './cls_elsa_swin_tiny_in1k.py'

model = dict(backbone=dict(arch='base', drop_path_rate=0.5), head=dict(in_channels=1024))
custom_hooks = [dict(type='EMAHook', momentum=1 - 0.99992, priority='ABOVE_NORMAL')]
