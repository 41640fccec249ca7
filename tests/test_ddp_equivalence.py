"""Two gloo processes with batch b each train like one process with batch 2b.

DETR + HRViT (``configs/demo/detr_hrvit_b1_coco_demo.py`` at a tiny arch) from the same initial
weights, 3 SGD steps: ``tools/dist_train.sh`` with 2 processes x 2 images against
``tools/train.py`` with 4 images; the parameters must agree up to float rounding (the two sum
the gradients in different orders). What makes the two runs comparable:

* Data: mmengine's samplers give rank r the samples r, r + 2, ... (``shuffle=False``), so the
  ranks' batches together hold the single process's batch. mmdet's default
  ``AspectRatioBatchSampler`` is switched off: it regroups each rank's samples by aspect ratio,
  so the batches would differ. Images are resized to one size (no padding differences) and not
  flipped (no augmentation randomness); no dropout.
* Normalisation: DistributedDataParallel averages the ranks' gradients, which equals the
  gradient of the 2b-batch loss only if each rank's loss is normalised by the same
  (global) count. DETR's box and IoU losses divide by the number of boxes averaged over the
  ranks (``reduce_mean``); its classification loss divides by a per-rank count unless
  ``sync_cls_avg_factor=True`` (mmdet's default, and the official DETR's, is per rank: with
  ranks holding 2 and 6 boxes here the gradients then differ by up to ~45%). The test sets it.
* BatchNorm: HRViT's BN layers would normalise over b samples per rank against 2b in one
  process (SyncBN syncs only CUDA tensors); the test trains them with ``norm_eval=True``
  (running statistics), which is the same in both.
* Unused parameters: DETR reads HRViT's last branch only, so the last modules of the other
  branches get no gradient; the config sets ``find_unused_parameters = True``, without which
  DistributedDataParallel stops at the second iteration.
"""
import importlib.util
import os
import os.path as osp
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmvit_plugins.utils import allow_mmengine_checkpoints, prepare_train_cfg

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(REPO, 'configs', 'demo', 'detr_hrvit_b1_coco_demo.py')
HAS_CUDA = torch.cuda.is_available()
STEPS = 3  # optimiser steps

TINY_DETR = """\
_base_ = {base!r}
_attn = dict(embed_dims=32, num_heads=4, dropout=0.0)
_ffn = dict(embed_dims=32, feedforward_channels=64, ffn_drop=0.0)
model = dict(
    num_queries=10,
    backbone=dict(arch=dict(_delete_=True, channels=(16, 32, 32, 64), head_dims=16,
                            mlp_ratios=(2, 2, 2, 2),
                            depths=((1, ), (1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1, 1),
                                    (1, 1, 1, 1))),
                  norm_eval=True),
    neck=dict(in_channels=[64], out_channels=32),
    encoder=dict(num_layers=1, layer_cfg=dict(self_attn_cfg=_attn, ffn_cfg=_ffn)),
    decoder=dict(num_layers=2, layer_cfg=dict(self_attn_cfg=_attn, cross_attn_cfg=_attn,
                                              ffn_cfg=_ffn)),
    positional_encoding=dict(num_feats=16),
    bbox_head=dict(embed_dims=32, sync_cls_avg_factor=True))
_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
             dict(type='Resize', scale=(96, 96), keep_ratio=False), dict(type='PackDetInputs')]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=False), batch_sampler=None,
    dataset=dict(data_root={data_root!r}, pipeline=_pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={steps})
optim_wrapper = dict(optimizer=dict(_delete_=True, type='SGD', lr=0.01, momentum=0.9,
                                    weight_decay=0.0))
param_scheduler = []
log_processor = dict(by_epoch=False, window_size=1)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={steps}, by_epoch=False))
randomness = dict(seed=0)
load_from = {load_from!r}
"""

# mmpretrain's LeNet-5 on 8 generated 32x32 images, the samples in order.
LENET = """\
default_scope = 'mmpretrain'
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(num_classes=2, mean=[127.5], std=[127.5], to_rgb=False),
    backbone=dict(type='LeNet5'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=2, in_channels=120,
              loss=dict(type='CrossEntropyLoss'), topk=(1, )))
train_dataloader = dict(
    batch_size=4, num_workers=0,
    dataset=dict(type='CustomDataset', data_root={data_root!r},
                 pipeline=[dict(type='LoadImageFromFile', color_type='grayscale'),
                           dict(type='PackInputs')]),
    sampler=dict(type='InfiniteSampler', shuffle=False))
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
train_cfg = dict(type='IterBasedTrainLoop', max_iters={steps})
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', interval={steps}, by_epoch=False))
visualizer = dict(type='UniversalVisualizer', vis_backends=[dict(type='LocalVisBackend')])
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
load_from = {load_from!r}
"""


def _load_train_tool():
    spec = importlib.util.spec_from_file_location('train_tool', osp.join(REPO, 'tools', 'train.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_tool = _load_train_tool()


@pytest.fixture
def one_thread():
    """One intra-op thread in this process, as torchrun gives each of its processes: for the
    tiny model a second thread costs more than it gives (much more on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def load_weights(path):
    allow_mmengine_checkpoints()
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


@pytest.mark.parametrize('name', [
    'detr_hrvit_b1_coco.py', 'demo/detr_hrvit_b1_coco_demo.py', 'retinanet_hrvit_b1_coco.py',
    'demo/retinanet_hrvit_b1_coco_demo.py', 'retinanet_cloformer_xxs_coco.py',
    'retinanet_cloformer_xs_coco.py', 'retinanet_cloformer_s_coco.py',
    'demo/retinanet_cloformer_xs_coco_demo.py'])
def test_configs_with_unused_backbone_outputs_find_unused_parameters(name):
    """Configs whose head leaves backbone parameters without gradient (DETR reads one branch
    of HRViT; RetinaNet's FPN skips the stride-4 map of HRViT and of CloFormer, whose norm0 then
    gets none) ask DDP to look for unused parameters, on GPUs and on the CPU (gloo) path."""
    for name in (osp.join(REPO, 'configs', name), ):
        assert Config.fromfile(name).find_unused_parameters is True
        if not HAS_CUDA:
            cfg = prepare_train_cfg(name, launcher='pytorch')
            assert cfg.model_wrapper_cfg.type == 'CPUDistributedDataParallel'
            assert cfg.model_wrapper_cfg.find_unused_parameters is True


def train_both(config, tmp_path, name):
    """Train ``config`` with 2 gloo processes x 2 images and with 1 process x 4 images.

    Returns:
        tuple[dict, dict]: The weights after the last step: one process, two processes.
    """
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
               PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    work_ddp, work_one = str(tmp_path / 'ddp'), str(tmp_path / 'one')
    ddp = subprocess.run(
        ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), str(config), '2', '--work-dir',
         work_ddp, '--cfg-options', 'train_dataloader.batch_size=2'],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stdout[-4000:]
    assert 'GPU number: 2' in ddp.stdout and 'CPUDistributedDataParallel' in ddp.stdout
    # one process: tools/train.py's main here (with its own visualizer name, as a process of
    # its own would have: mmengine keeps one visualizer per name)
    train_tool.main([str(config), '--work-dir', work_one, '--cfg-options',
                     'train_dataloader.batch_size=4', f'visualizer.name=visualizer_{name}'])
    return (load_weights(osp.join(work_one, f'iter_{STEPS}.pth')),
            load_weights(osp.join(work_ddp, f'iter_{STEPS}.pth')))


def assert_equal_up_to_rounding(start, w_one, w_ddp):
    """The two runs' weights differ by at most 1e-4 of the largest update (from ``start``)."""
    update = max((w_one[k] - v).abs().max().item() for k, v in start.items())
    diff = max((w_one[k] - w_ddp[k]).abs().max().item() for k in start)
    assert update > 1e-4  # the steps moved the weights
    # float32 rounding only: the gradients are summed in another order
    assert diff <= 1e-4 * update, f'max |param diff| {diff:.3g} vs max update {update:.3g}'


@pytest.mark.slow
@pytest.mark.skipif(HAS_CUDA, reason='checks the CPU (gloo) path of --launcher pytorch')
def test_detr_two_processes_equal_one_with_the_double_batch(demo_data, tmp_path, one_thread):
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DefaultScope

    from mmvit_plugins.utils.runner import build_config_model

    # the initial weights, saved once and loaded by both runs
    init = str(tmp_path / 'init.pth')
    config = tmp_path / 'detr_tiny.py'
    config.write_text(TINY_DETR.format(base=DEMO_CONFIG, data_root=osp.join(demo_data, 'coco/'),
                                       load_from=init, steps=STEPS))
    cfg = Config.fromfile(str(config))
    torch.manual_seed(0)
    model, _ = build_config_model(cfg)
    model.init_weights()
    torch.save({'state_dict': model.state_dict()}, init)
    # the parameters the loss does not reach (DETR reads HRViT's last branch only)
    model.train()
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(4)]), True)
        loss, _ = model.parse_losses(model(**data, mode='loss'))
    loss.backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert unused and all(n.startswith('backbone.features.') for n in unused), unused

    w_one, w_ddp = train_both(config, tmp_path, 'ddp_equivalence_detr')
    start = {k: v for k, v in load_weights(init).items() if v.is_floating_point()}
    assert_equal_up_to_rounding(start, w_one, w_ddp)
    # the unused parameters stayed as they were, in both runs
    assert all(torch.equal(w[k], start[k]) for k in unused for w in (w_one, w_ddp))


@pytest.mark.slow
@pytest.mark.skipif(HAS_CUDA, reason='checks the CPU (gloo) path of --launcher pytorch')
def test_classifier_two_processes_equal_one_with_the_double_batch(tmp_path, one_thread):
    """mmpretrain's LeNet-5 (no BatchNorm), cross-entropy averaged over each batch: the
    cleanest case, nothing to set up beyond the data order."""
    import cv2

    from mmvit_plugins.utils.runner import build_config_model

    rng = np.random.default_rng(0)
    for label, name in enumerate(['cat', 'dog']):
        os.makedirs(tmp_path / 'data' / name)
        for i in range(4):
            img = rng.integers(0, 256, (32, 32), dtype=np.uint8) // (label + 1)
            cv2.imwrite(str(tmp_path / 'data' / name / f'{i}.png'), img)
    init = str(tmp_path / 'init.pth')
    config = tmp_path / 'lenet.py'
    config.write_text(LENET.format(data_root=str(tmp_path / 'data'), load_from=init, steps=STEPS))
    torch.manual_seed(0)
    model, _ = build_config_model(Config.fromfile(str(config)))
    model.init_weights()
    torch.save({'state_dict': model.state_dict()}, init)

    w_one, w_ddp = train_both(config, tmp_path, 'ddp_equivalence_lenet')
    start = {k: v for k, v in load_weights(init).items() if v.is_floating_point()}
    assert_equal_up_to_rounding(start, w_one, w_ddp)
