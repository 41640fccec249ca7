# HRViT-b1 + HRViT's SegFormer head, ADE20K 512x512, 160k iterations, 8 GPUs x 2 images
# (spec hrvit.md 5.2/5.4: 45.88 mIoU single scale, 8.2M parameters).
_base_ = [
    './_base_/models/segformer_hrvit.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    './_base_/schedules/hrvit_seg_160k.py',
]
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

crop_size = (512, 512)
model = dict(data_preprocessor=dict(size=crop_size))
train_dataloader = dict(batch_size=2)
