# The bundled ADE20K-format demo set (tools/dataset_converters/make_demo_data.py): 40 train /
# 10 val images of 256x192, ADE20K label ids, 128x128 crops. Used like _base_/coco_demo.py.
demo_crop_size = (128, 128)
_data_root = 'data/demo/ade/ADEChallengeData2016'
_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(256, 192), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=demo_crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 192), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
demo_train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(
        type='ADE20KDataset',
        data_root=_data_root,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=_train_pipeline))
demo_val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    dataset=dict(
        type='ADE20KDataset',
        data_root=_data_root,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=_test_pipeline))
