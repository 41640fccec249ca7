"""``tools/train.py --resume`` continues a run exactly.

Each test trains a config N iterations in one run (A) and N/2, then ``--resume`` to N, in
another (B), in mmengine's deterministic mode, with random augmentations and dropout, and
compares what B logs and saves after the resume with A: iteration numbers, learning rates and
losses of every iteration, validation metrics, and the final weights, optimizer state and
scheduler state, all bitwise. mmengine restores the model, optimizer, schedulers, message hub
and seed; :class:`~mmvit_plugins.utils.runner.ResumeRNGStateHook` adds the states of the global
random number generators (torch, numpy, ``random``), without which dropout masks and, with
``num_workers=0``, augmentations differ after the resume. The runs call ``tools/train.py``'s
``main`` in this process (a subprocess per run would spend most of the time importing).
"""
import glob
import importlib.util
import itertools
import json
import os
import os.path as osp
import random
import time

import numpy as np
import pytest
import torch

from mmvit_plugins.utils import allow_mmengine_checkpoints
from mmvit_plugins.utils.runner import ResumeRNGStateHook

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Per-iteration values that depend on the clock, not on the training.
CLOCK_KEYS = {'time', 'data_time', 'eta', 'memory'}

# UperNet + ELSA-Swin at a tiny arch on the demo ADE20K copy, at half the demo's image sizes:
# IterBasedTrainLoop, random resize / crop / flip / photometric distortion, dropout in the
# heads. 6 images, batch 2: the demo's InfiniteSampler shuffles them anew every 3 iterations,
# so the checkpoint at 4 is in the middle of a pass, and the validation at 4 runs after it in A
# only.
SEG_CONFIG = """\
_base_ = {base!r}
model = dict(backbone=dict(arch=dict(_delete_=True, embed_dims=16, depths=(1, 1, 2, 2),
                                     num_heads=(1, 2, 2, 4), group_width=4)),
             decode_head=dict(in_channels=[16, 32, 64, 128], channels=32),
             auxiliary_head=dict(in_channels=64, channels=16))
model.update(data_preprocessor=dict(size=(64, 64)))
train_pipeline = [  # the demo's, at half the size
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(128, 96), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(64, 64), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 96), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={data_root!r}, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root={data_root!r}, pipeline=val_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=8, val_interval=4)
log_processor = dict(window_size=1)  # log each iteration's own loss, not a running mean
randomness = dict(seed=0, deterministic=True)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=4, by_epoch=False, max_keep_ckpts=-1))
"""

# LeNet-5 on 8 generated images, EpochBasedTrainLoop (4 iterations an epoch): shuffled
# sampler, random flips (numpy, in the main process) and a dropout layer (torch).
CLS_CONFIG = """\
default_scope = 'mmpretrain'
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(num_classes=2, mean=[127.5], std=[127.5], to_rgb=False),
    backbone=dict(type='LeNet5'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='StackedLinearClsHead', num_classes=2, in_channels=120, mid_channels=[32],
              dropout_rate=0.5, loss=dict(type='CrossEntropyLoss'), topk=(1, )))
train_pipeline = [dict(type='LoadImageFromFile', color_type='grayscale'),
                  dict(type='RandomFlip', prob=0.5, direction='horizontal'),
                  dict(type='PackInputs')]
test_pipeline = [dict(type='LoadImageFromFile', color_type='grayscale'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=2, num_workers=0,
    dataset=dict(type='CustomDataset', data_root={data_root!r}, pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=4, num_workers=0,
    dataset=dict(type='CustomDataset', data_root={data_root!r}, pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
# explicit ends: a scheduler without one ends at the max_epochs of the run that built it, and
# the first half of B, run with max_epochs=2, would save (and B's resume restore) end=2
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
                   dict(type='MultiStepLR', by_epoch=True, begin=0, end=4, milestones=[3],
                        gamma=0.1)]
train_cfg = dict(by_epoch=True, max_epochs=4, val_interval=2)
val_cfg = dict()
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'))
# an extra checkpoint in the middle of epoch 2, to resume from in the mid-epoch test
custom_hooks = [dict(type='CheckpointHook', interval=6, by_epoch=False, save_last=False)]
log_processor = dict(window_size=1)
visualizer = dict(type='UniversalVisualizer', vis_backends=[dict(type='LocalVisBackend')])
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0, deterministic=True)
"""


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
def _load_train_tool():
    spec = importlib.util.spec_from_file_location('train_tool', osp.join(REPO, 'tools', 'train.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TRAIN_TOOL = _load_train_tool()


@pytest.fixture(scope='module', autouse=True)
def _keep_global_modes():
    """The runs set torch's deterministic mode for the whole process: undo that afterwards.

    All runs train on one intra-op thread (set before the module's other fixtures run): for
    these tiny models a second thread costs more than it gives, much more on a busy machine
    (an order of magnitude seen), and A and B must use the same number, since it changes the
    order of float sums and so the last bits of the results.
    """
    modes = (torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(modes[0], warn_only=modes[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = modes[2:]


_last_start = [0.]
_run_count = itertools.count()


def train(config, work_dir, *args):
    """Run ``tools/train.py`` (its ``main``, in this process: every run builds its own Runner,
    seeded afresh, as a new process would); return the log the run wrote.

    mmengine names a run's log directory, message hub and logger after the second it started
    in, and keeps one instance per name in the process: each run starts in a later second than
    the one before. mmseg's configs name their visualizer: each run gets its own name.
    """
    while int(time.time()) <= int(_last_start[0]):
        time.sleep(0.05)
    _last_start[0] = time.time()
    before = set(glob.glob(osp.join(work_dir, '*', '*.log')))
    name = f'visualizer_{next(_run_count)}'
    TRAIN_TOOL.main([config, '--work-dir', work_dir, *args, '--cfg-options',
                     f'visualizer.name={name}'])
    log, = set(glob.glob(osp.join(work_dir, '*', '*.log'))) - before
    with open(log) as f:
        return f.read()


def logged(work_dir):
    """The scalars a work dir's runs logged: ``({iteration: train scalars}, {step: val})``."""
    train_log, val_log = {}, {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                scalars = json.loads(line)
                if 'loss' in scalars:  # a training iteration (a resumed run logs later ones)
                    train_log[scalars['iter']] = scalars
                else:
                    val_log[scalars['step']] = scalars
    return train_log, val_log


def load(path):
    allow_mmengine_checkpoints()
    return torch.load(path, map_location='cpu', weights_only=True)


def max_abs_diff(a, b):
    """The largest absolute difference between two nests of tensors / numbers (same keys)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        return max([max_abs_diff(a[k], b[k]) for k in a], default=0.)
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        return max([max_abs_diff(x, y) for x, y in zip(a, b)], default=0.)
    if isinstance(a, torch.Tensor):
        assert a.shape == b.shape and a.dtype == b.dtype
        return (a.double() - b.double()).abs().max().item() if a.numel() else 0.
    if isinstance(a, (int, float)):
        return abs(a - b)
    assert a == b, (a, b)
    return 0.


def assert_same_run(work_a, work_b, first, last, ckpt_a, ckpt_b):
    """B logged iterations ``first..last`` (and the validations) as A, and ends as A."""
    train_a, val_a = logged(work_a)
    train_b, val_b = logged(work_b)
    assert sorted(train_a) == sorted(train_b) == list(range(1, last + 1))
    assert sorted(val_a) == sorted(val_b)
    loss_diffs = {}
    for it in range(first, last + 1):
        a = {k: v for k, v in train_a[it].items() if k not in CLOCK_KEYS}
        b = {k: v for k, v in train_b[it].items() if k not in CLOCK_KEYS}
        assert a.keys() == b.keys()
        assert a['lr'] == b['lr'] and a['iter'] == b['iter'] == it
        loss_diffs[it] = abs(a['loss'] - b['loss'])
        assert a == b, f'iteration {it}: {a} != {b} (|loss diff| per iteration: {loss_diffs})'
    for step in val_a:
        assert ({k: v for k, v in val_a[step].items() if k not in CLOCK_KEYS}
                == {k: v for k, v in val_b[step].items() if k not in CLOCK_KEYS}), step
    a, b = load(ckpt_a), load(ckpt_b)
    assert a['meta']['epoch'] == b['meta']['epoch'] and a['meta']['iter'] == b['meta']['iter']
    weights = max_abs_diff(a['state_dict'], b['state_dict'])
    optimizer = max_abs_diff(a['optimizer'], b['optimizer'])
    assert weights == 0 and optimizer == 0, (weights, optimizer)
    assert a['param_schedulers'] == b['param_schedulers']
    assert max_abs_diff(a['rng_state'], b['rng_state']) == 0


# ----------------------------------------------------------------------------------------------
# The hook's states
# ----------------------------------------------------------------------------------------------
def test_rng_states_round_trip_and_load_without_allow_list(tmp_path):
    """get_states / set_states restore all three generators, and the states are plain
    tensors, ints and tuples: torch.load(weights_only=True) reads them with no allow-list."""
    states = ResumeRNGStateHook.get_states()
    draws = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    torch.save(states, tmp_path / 'states.pth')
    allowed = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        loaded = torch.load(tmp_path / 'states.pth', weights_only=True)
    finally:
        torch.serialization.add_safe_globals(allowed)
    ResumeRNGStateHook.set_states(loaded)
    assert torch.equal(torch.rand(3), draws[0])
    np.testing.assert_array_equal(np.random.rand(3), draws[1])
    assert [random.random() for _ in range(3)] == draws[2]


# ----------------------------------------------------------------------------------------------
# End to end
# ----------------------------------------------------------------------------------------------
def test_resume_is_exact_iter_based(demo_data, tmp_path):
    """UperNet (ELSA-Swin) demo config, 8 iterations vs 4 + resume + 4."""
    config = tmp_path / 'upernet_tiny.py'
    config.write_text(SEG_CONFIG.format(
        base=osp.join(REPO, 'configs', 'demo', 'upernet_elsa_swin_tiny_ade20k_demo.py'),
        data_root=osp.join(demo_data, 'ade', 'ADEChallengeData2016')))
    work_a, work_b = str(tmp_path / 'A'), str(tmp_path / 'B')
    train(str(config), work_a)
    train(str(config), work_b, '--cfg-options', 'train_cfg.max_iters=4')
    out = train(str(config), work_b, '--resume')
    assert 'resumed epoch: 0, iter: 4' in out
    assert 'Advance dataloader 4 steps' in out  # mmengine skips the trained batches
    assert_same_run(work_a, work_b, 5, 8, osp.join(work_a, 'iter_8.pth'),
                    osp.join(work_b, 'iter_8.pth'))


@pytest.fixture(scope='module')
def cls_config(tmp_path_factory):
    import cv2
    root = tmp_path_factory.mktemp('resume_cls')
    rng = np.random.default_rng(0)
    for label, name in enumerate(['cat', 'dog']):
        os.makedirs(root / 'data' / name)
        for i in range(4):
            img = rng.integers(0, 256, (32, 32), dtype=np.uint8) // (label + 1)
            img[:, :8] = 255  # so that a horizontal flip changes the image
            cv2.imwrite(str(root / 'data' / name / f'{i}.png'), img)
    path = root / 'lenet_dropout.py'
    path.write_text(CLS_CONFIG.format(data_root=str(root / 'data')))
    return str(path)


@pytest.fixture(scope='module')
def cls_runs(cls_config):
    """A: 4 epochs. B: 2 epochs (B/epoch_2.pth, B/iter_6.pth in the middle of epoch 2)."""
    root = osp.dirname(cls_config)
    work_a, work_b = osp.join(root, 'A'), osp.join(root, 'B')
    train(cls_config, work_a)
    train(cls_config, work_b, '--cfg-options', 'train_cfg.max_epochs=2')
    return work_a, work_b


def test_resume_is_exact_epoch_based(cls_config, cls_runs):
    """mmpretrain LeNet-5 with dropout and flips, 16 iterations vs 8 + resume + 8."""
    work_a, work_b = cls_runs
    out = train(cls_config, work_b, '--resume', osp.join(work_b, 'epoch_2.pth'))
    assert 'resumed epoch: 2, iter: 8' in out
    assert 'iterations into epoch' not in out
    assert_same_run(work_a, work_b, 9, 16, osp.join(work_a, 'epoch_4.pth'),
                    osp.join(work_b, 'epoch_4.pth'))


def test_resume_mid_epoch_is_not_exact_and_warns(cls_config, cls_runs, tmp_path):
    """mmengine's EpochBasedTrainLoop resumed from an iteration checkpoint in the middle of an
    epoch does not skip that epoch's trained batches: it trains the epoch again from its start
    (2 iterations more here). The hook says so."""
    work_b = cls_runs[1]
    work = str(tmp_path / 'work')
    out = train(cls_config, work, '--resume', osp.join(work_b, 'iter_6.pth'))
    assert 'resumed epoch: 1, iter: 6' in out
    assert ('iteration 6 is 2 iterations into epoch 2, and mmengine trains that epoch again '
            'from its first batch (2 iterations more' in out)
    assert 'Epoch(train) [2][1/4]' in out  # epoch 2 from its first batch again
    assert load(osp.join(work, 'epoch_4.pth'))['meta']['iter'] == 18  # not 16
