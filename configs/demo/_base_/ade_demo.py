# The bundled ADE20K-format demo set (tools/dataset_converters/make_demo_data.py): 40 train /
# 10 val images of 256x192, ADE20K label ids, 128x128 crops. Used like _base_/coco_demo.py.
# demo_tta_pipeline is the multi-scale + flip test of ../../_base_/ade20k_ms_flip_tta.py at the
# demo's test scale (256x192 x 0.5-1.75, 12 views), for `tools/test.py --tta`.
demo_crop_size = (128, 128)
_test_scale = (256, 192)
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
    dict(type='Resize', scale=_test_scale, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
demo_tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='Resize', scale=(int(_test_scale[0] * r), int(_test_scale[1] * r)),
                     keep_ratio=True) for r in [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal'),
            ],
            [dict(type='LoadAnnotations', reduce_zero_label=True)],
            [dict(type='PackSegInputs')],
        ]),
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
