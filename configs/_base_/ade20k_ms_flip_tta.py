# Multi-scale + flip testing (tools/test.py --tta) as the ADE20K papers report it: mmseg 0.x's
# `--aug-test`, i.e. the single-scale test scale (2048, 512) times each ratio of
# [0.5, 0.75, 1.0, 1.25, 1.5, 1.75] (keep ratio: long side <= 2048 r, short side <= 512 r), each
# view plain and horizontally flipped; SegTTAModel averages the 12 softmax maps. (The ade20k.py
# base of mmseg 1.x scales the raw image by the ratios instead, which differs for the ADE20K images
# whose short side is not 512.) The names are prefixed so that this file can sit beside mmseg's
# bases in `_base_` (bases must not share keys); a config takes
#   tta_model = {{_base_.ade20k_ms_flip_tta_model}}
#   tta_pipeline = {{_base_.ade20k_ms_flip_tta_pipeline}}
ade20k_ms_flip_test_scale = (2048, 512)
ade20k_ms_flip_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
ade20k_ms_flip_tta_model = dict(type='SegTTAModel')
ade20k_ms_flip_tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(
                    type='Resize',
                    scale=(int(ade20k_ms_flip_test_scale[0] * r),
                           int(ade20k_ms_flip_test_scale[1] * r)),
                    keep_ratio=True) for r in ade20k_ms_flip_ratios
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal'),
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ]),
]
