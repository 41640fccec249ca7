# HRViT-b1 + UPerHead, Cityscapes 1024x1024 crops, with the Cityscapes recipe of the SegFormer
# configs (drop path 0.15, 8 GPUs x 1 image, sliding-window test). The original ships no UperNet
# Cityscapes result; this is the ADE20K UperNet model on the Cityscapes protocol.
_base_ = [
    './_base_/models/upernet_hrvit.py',
    'mmseg::_base_/datasets/cityscapes_1024x1024.py',
    'mmseg::_base_/default_runtime.py',
    './_base_/schedules/hrvit_seg_160k.py',
]
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

crop_size = (1024, 1024)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(drop_path_rate=0.15),
    decode_head=dict(num_classes=19),
    auxiliary_head=dict(num_classes=19),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(768, 768)))
train_dataloader = dict(batch_size=1)
train_cfg = dict(val_interval=4000)
