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
# `tools/test.py --tta` for the demo detectors that have mmdet's TTA (RetinaNet): its
# retinanet_tta.py at the demo scale, i.e. (192, 192) x 1, 0.5 and 1.5 as (1333, 800) x 1, 0.5
# and 1.5 there, each view plain and flipped. Mask R-CNN has none: DetTTAModel merges boxes only.
demo_tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=s, keep_ratio=True)
             for s in [demo_img_scale, (96, 96), (288, 288)]],
            [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
            [dict(type='LoadAnnotations', with_bbox=True)],
            [dict(type='PackDetInputs',
                  meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                             'flip', 'flip_direction'))],
        ]),
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

# Mask R-CNN made light enough to train from scratch on a CPU (merged into the real config's
# model): 128-wide neck and heads, lighter RPN/ROI sampling, no drop path; and the demo schedule:
# 12 short epochs, a higher learning rate with warm-up, float32 (a real config's mixed precision
# would run as slow bfloat16 emulation on most CPUs). The detector demo configs take
#   model = {{_base_.demo_maskrcnn_model}}, optim_wrapper = {{_base_.demo_optim_wrapper}}, ...
_demo_width = 128
demo_maskrcnn_model = dict(
    backbone=dict(drop_path_rate=0.0),
    neck=dict(out_channels=_demo_width),
    rpn_head=dict(in_channels=_demo_width, feat_channels=_demo_width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=_demo_width),
        bbox_head=dict(in_channels=_demo_width, fc_out_channels=512, num_classes=demo_num_classes),
        mask_roi_extractor=dict(out_channels=_demo_width),
        mask_head=dict(in_channels=_demo_width, conv_out_channels=_demo_width,
                       num_classes=demo_num_classes)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))
_demo_epochs = 12
demo_train_cfg = dict(max_epochs=_demo_epochs, val_interval=_demo_epochs)
demo_optim_wrapper = dict(type='OptimWrapper', optimizer=dict(lr=4e-4),
                          clip_grad=dict(max_norm=5.0))
demo_param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=_demo_epochs, by_epoch=True, milestones=[9, 11],
         gamma=0.1)
]
demo_default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=_demo_epochs, max_keep_ckpts=1))

# The main job (`make demo`, ../maskrcnn_hrvit_b1_coco_demo.py) takes these instead: half the
# schedule (6 epochs, 300 iterations; one step down after epoch 5) at twice the learning rate,
# and 64 RoIs sampled per image, not 128 (mmcv's RoIAlign runs on one thread on the CPU; with
# its backward it took about a sixth of an iteration). 6 epochs so: bbox mAP 0.759; the same at
# lr 4e-4: 0.523; 6 epochs, lr 4e-4, 128 RoIs, steps after epochs 4 and 5: 0.511 (issue 17).
_main_epochs = 6
demo_main_maskrcnn_model = dict(
    demo_maskrcnn_model,
    train_cfg=dict(demo_maskrcnn_model['train_cfg'], rcnn=dict(sampler=dict(num=64))))
demo_main_train_cfg = dict(max_epochs=_main_epochs, val_interval=_main_epochs)
demo_main_optim_wrapper = dict(type='OptimWrapper', optimizer=dict(lr=8e-4),
                               clip_grad=dict(max_norm=5.0))
demo_main_param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=_main_epochs, by_epoch=True, milestones=[5],
         gamma=0.1)
]
demo_main_default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=_main_epochs, max_keep_ckpts=1))
