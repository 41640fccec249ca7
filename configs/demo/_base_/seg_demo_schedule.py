# A short schedule for the segmentation demo configs: 200 iterations, evaluated at the end.
demo_train_cfg = dict(type='IterBasedTrainLoop', max_iters=200, val_interval=200)
demo_param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=20, end=200),
]
demo_default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=200, max_keep_ckpts=1))
