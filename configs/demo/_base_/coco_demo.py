# The bundled COCO-format demo set (tools/dataset_converters/make_demo_data.py): 3 shape
# classes, 200 train / 50 val images of 160-224 px. A demo config lists this file after the real
# config in `_base_` and takes the `demo_*` values, e.g.
#   train_dataloader = {{_base_.demo_train_dataloader}}
# which merges into (and so overrides the data of) the real config's dataloader. The evaluator
# names no metric, so the real config's metrics are kept.
demo_data_root = 'data/demo/coco/'
demo_metainfo = dict(classes=('square', 'circle', 'triangle'))
demo_num_classes = 3
demo_img_scale = (192, 192)

demo_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=demo_img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
demo_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=demo_img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
demo_train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        type='CocoDataset',
        data_root=demo_data_root,
        metainfo=demo_metainfo,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=demo_train_pipeline))
demo_val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        type='CocoDataset',
        data_root=demo_data_root,
        metainfo=demo_metainfo,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=demo_test_pipeline))
demo_val_evaluator = dict(
    type='CocoMetric', ann_file=demo_data_root + 'annotations/instances_val2017.json')
