# The Cascade Mask R-CNN of the 4conv1fc-GIoU configs (ELSA-Swin, MAFormer) made light enough to
# train from scratch on the CPU, merged into the real config's model like _base_/coco_demo.py's
# `demo_maskrcnn_model`: no drop path, 3 classes, 128-wide FPN and heads, fewer proposals and 128
# sampled RoIs per stage (the real 4-conv box heads at 256 channels on 512 RoIs x 3 stages take
# ~25 s per iteration on 2 cores). The box heads keep their structure (4 convs + 1 FC, GIoU, the
# per-stage target stds); their SyncBN runs as BN in a non-distributed run. Used as
#   model = {{_base_.demo_cascade_model}}
_width = 128
_num_classes = 3
_stage_stds = ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
demo_cascade_model = dict(
    backbone=dict(drop_path_rate=0.0),
    neck=dict(out_channels=_width),
    rpn_head=dict(in_channels=_width, feat_channels=_width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=_width),
        bbox_head=[  # a list replaces the base's list whole, so the heads are given in full
            dict(
                type='ConvFCBBoxHead',
                num_shared_convs=4,
                num_shared_fcs=1,
                in_channels=_width,
                conv_out_channels=_width,
                fc_out_channels=512,
                roi_feat_size=7,
                num_classes=_num_classes,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=stds),
                reg_class_agnostic=False,
                reg_decoded_bbox=True,
                norm_cfg=dict(type='SyncBN', requires_grad=True),
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='GIoULoss', loss_weight=10.0)) for stds in _stage_stds
        ],
        mask_roi_extractor=dict(out_channels=_width),
        mask_head=dict(in_channels=_width, conv_out_channels=_width, num_classes=_num_classes)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=[  # the base's three stages (IoU 0.5 / 0.6 / 0.7) with 128 sampled RoIs
            dict(
                assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou,
                              min_pos_iou=iou, match_low_quality=False, ignore_iof_thr=-1),
                sampler=dict(type='RandomSampler', num=128, pos_fraction=0.25, neg_pos_ub=-1,
                             add_gt_as_proposals=True),
                mask_size=28,
                pos_weight=-1,
                debug=False) for iou in (0.5, 0.6, 0.7)
        ]),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))
