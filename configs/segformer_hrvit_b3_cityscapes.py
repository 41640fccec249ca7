# HRViT-b3 + SegFormer head (768 channels), Cityscapes (spec hrvit.md 5.2: 83.16 mIoU, 28.6M
# parameters). Gradient checkpointing on, as in the original. The paper's b3 Cityscapes run used
# windows 1-2-3-9, which the released configs do not: this follows the released code (1-2-7-7).
_base_ = './segformer_hrvit_b1_cityscapes.py'

model = dict(
    backbone=dict(arch='b3', drop_path_rate=0.3, with_cp=True),
    decode_head=dict(in_channels=[64, 128, 256, 512], channels=768))
