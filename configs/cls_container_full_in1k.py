# Container (full) ImageNet-1K classifier: a RECONSTRUCTION (spec container.md 2.2). The full
# model was never released; here it is the Container-Light widths and depths with MixBlocks
# (dynamic + static affinity) in every stage, 22.43M parameters. Same recipe as Container-Light.
_base_ = './cls_container_light_in1k.py'

model = dict(backbone=dict(arch='full'))
