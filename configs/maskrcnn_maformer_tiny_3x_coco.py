# Mask R-CNN, MAFormer-T + FPN, 3x (36 epochs, multi-scale) on COCO: the (inferred) 1x recipe
# with steps at epochs 27 and 33. CSWin-T's 3x row, the abstract's comparison: 49.0 box / 43.6
# mask AP at 42M parameters.
_base_ = './maskrcnn_maformer_tiny_coco.py'

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1)
]
