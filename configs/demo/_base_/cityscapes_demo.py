# The bundled Cityscapes-format demo set (tools/dataset_converters/make_demo_data.py): 40 train /
# 10 val images of 256x128, Cityscapes train ids, 128x128 crops. Used like _base_/coco_demo.py.
demo_crop_size = (128, 128)
_data_root = 'data/demo/cityscapes/'
_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(256, 128), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=demo_crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
demo_train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(
        type='CityscapesDataset',
        data_root=_data_root,
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=_train_pipeline))
demo_val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    dataset=dict(
        type='CityscapesDataset',
        data_root=_data_root,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=_test_pipeline))
