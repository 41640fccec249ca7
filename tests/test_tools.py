"""Tests of ``tools/train.py``, ``tools/test.py``, the launch scripts and their helpers.

The end-to-end tests train mmpretrain's LeNet-5 on a handful of generated 32x32 images for an
epoch or two (a few seconds per run on two CPU cores); the tools run as subprocesses, as a user
would run them, but for a few runs that call their ``main`` in this process (the interpreter's
start-up is most of such a run). The config handling is also checked on configs shipped with
mmdet, mmseg and mmpretrain.
"""
import os
import os.path as osp
import pickle
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

from _cli import run_main_here
from mmvit_plugins.utils import (CPUBF16AmpOptimWrapper, allow_mmengine_checkpoints,
                                 formatted_config_cache, init_cpu_dist, load_config,
                                 prepare_test_cfg, prepare_train_cfg, resolve_config_path)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO, 'tools')
HAS_CUDA = torch.cuda.is_available()

TINY_CONFIG = """\
default_scope = 'mmpretrain'
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(num_classes=2, mean=[127.5], std=[127.5], to_rgb=False),
    backbone=dict(type='LeNet5'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=2, in_channels=120,
              loss=dict(type='CrossEntropyLoss'), topk=(1, )))
pipeline = [dict(type='LoadImageFromFile', color_type='grayscale'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=4, num_workers=0,
    dataset=dict(type='CustomDataset', data_root='{data_root}', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=4, num_workers=0,
    dataset=dict(type='CustomDataset', data_root='{data_root}', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[1], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=1)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False))
visualizer = dict(type='UniversalVisualizer', vis_backends=[dict(type='LocalVisBackend')])
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'),
               dist_cfg=dict(backend='nccl'))
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
"""

DOWNSTREAM_CONFIGS = [
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    'mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'mmpretrain::resnet/resnet18_8xb32_in1k.py',
]


# ----------------------------------------------------------------------------------------------
# Fixtures and helpers
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def tiny_config(tmp_path_factory):
    """A LeNet-5 classifier config over 8 generated grayscale images in two class folders."""
    import cv2
    root = tmp_path_factory.mktemp('tools')
    rng = np.random.default_rng(0)
    for label, name in enumerate(['cat', 'dog']):
        os.makedirs(root / 'data' / name)
        for i in range(4):
            img = rng.integers(0, 256, (32, 32), dtype=np.uint8) // (label + 1)
            cv2.imwrite(str(root / 'data' / name / f'{i}.png'), img)
    path = root / 'tiny_lenet.py'
    path.write_text(TINY_CONFIG.format(data_root=root / 'data'))
    return str(path)


def run(cmd, cwd, env=None, timeout=300):
    """Run a command; return ``(returncode, stdout and stderr together)``."""
    full_env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    full_env.update(env or {})
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout)
    return proc.returncode, proc.stdout


def run_tool(tool, *args, cwd, **kwargs):
    """Run ``tools/<tool>.py`` with this interpreter."""
    return run([sys.executable, osp.join(TOOLS, f'{tool}.py'), *map(str, args)], cwd, **kwargs)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def trained(tiny_config):
    """One epoch of training (the config says 3: ``--cfg-options`` overrides it)."""
    work_dir = osp.join(osp.dirname(tiny_config), 'work_train')
    rc, out = run_tool('train', tiny_config, '--work-dir', work_dir,
                       '--cfg-options', 'train_cfg.max_epochs=1', cwd=osp.dirname(tiny_config))
    assert rc == 0, out
    return work_dir, out


# ----------------------------------------------------------------------------------------------
# End to end: train -> resume -> test
# ----------------------------------------------------------------------------------------------
def test_train_writes_checkpoint(trained):
    work_dir, out = trained
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    assert osp.isfile(osp.join(work_dir, 'last_checkpoint'))
    # --cfg-options train_cfg.max_epochs=1 beat the config's 3.
    assert not osp.exists(osp.join(work_dir, 'epoch_2.pth'))
    assert 'Epoch(train) [1][2/2]' in out
    assert 'accuracy/top1' in out


def test_resume_auto(trained, tmp_path):
    work_dir = str(tmp_path / 'work')
    shutil.copytree(trained[0], work_dir)
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:  # it holds an absolute path
        f.write(osp.join(work_dir, 'epoch_1.pth'))
    cfg = osp.join(work_dir, 'tiny_lenet.py')  # the config dumped by the first run
    rc, out = run_tool('train', cfg, '--work-dir', work_dir, '--resume',
                       '--cfg-options', 'train_cfg.max_epochs=2', cwd=tmp_path)
    assert rc == 0, out
    assert f'Auto resumed from the latest checkpoint {work_dir}' in out
    assert 'resumed epoch: 1, iter: 2' in out
    assert 'Epoch(train) [1]' not in out  # epoch 1 was not trained again
    assert 'Epoch(train) [2][2/2]' in out
    assert osp.isfile(osp.join(work_dir, 'epoch_2.pth'))


def test_resume_from_path(trained, tiny_config, tmp_path):
    ckpt = osp.join(trained[0], 'epoch_1.pth')  # (in this process: no interpreter start-up)
    result = run_main_here(osp.join(TOOLS, 'train.py'), tiny_config, '--work-dir',
                           tmp_path / 'work', '--resume', ckpt, '--cfg-options',
                           'train_cfg.max_epochs=2', cwd=tmp_path)
    rc, out = result.returncode, result.stdout + result.stderr
    assert rc == 0, out
    assert 'resumed epoch: 1, iter: 2' in out
    assert osp.isfile(tmp_path / 'work' / 'epoch_2.pth')


def test_test_tool_prints_metric(trained, tiny_config, tmp_path):
    ckpt = osp.join(trained[0], 'epoch_1.pth')
    rc, out = run_tool('test', tiny_config, ckpt, '--show-dir', 'vis', cwd=tmp_path)
    assert rc == 0, out
    assert 'Epoch(test)' in out and 'accuracy/top1' in out
    assert osp.isdir(tmp_path / 'work_dirs' / 'tiny_lenet')  # the default work dir
    assert os.listdir(tmp_path / 'vis'), 'no painted predictions in --show-dir'


@pytest.mark.skipif(HAS_CUDA, reason='checks the CPU (bfloat16) path of --amp')
def test_amp_on_cpu(tiny_config, tmp_path):
    # from the command line: the notice goes to mmengine's current logger, which in this
    # process was made (bound to its stdout) before the run
    rc, out = run_tool('train', tiny_config, '--amp', '--work-dir', tmp_path / 'work',
                       '--cfg-options', 'train_cfg.max_epochs=1', cwd=tmp_path)
    assert rc == 0, out
    assert 'bfloat16 autocast' in out
    assert "type='CPUBF16AmpOptimWrapper'" in out  # the config the runner logged
    assert osp.isfile(tmp_path / 'work' / 'epoch_1.pth')


@pytest.mark.parametrize('tool, args', [('train', ['missing.py']),
                                        ('test', ['missing.py', 'x.pth'])])
def test_missing_config_is_one_line(tool, args, tmp_path, monkeypatch):
    # in this process (the start-up is not repeated); the next test runs from the command line
    monkeypatch.chdir(tmp_path)
    result = run_main_here(osp.join(TOOLS, f'{tool}.py'), *args)
    assert result.returncode == 1 and result.stdout == ''
    assert result.stderr.splitlines() == [f'{tool}.py: error: config file not found: missing.py']


def test_missing_checkpoint_is_one_line(tiny_config, tmp_path):
    rc, out = run_tool('test', tiny_config, 'missing.pth', cwd=tmp_path)
    assert rc != 0
    assert out.strip().splitlines() == ['test.py: error: checkpoint not found: missing.pth']


# ----------------------------------------------------------------------------------------------
# Launchers
# ----------------------------------------------------------------------------------------------
@pytest.mark.skipif(HAS_CUDA, reason='checks the CPU (gloo) path of --launcher pytorch')
def test_dist_train_on_cpu(tiny_config, tmp_path):
    env = dict(PYTHON=sys.executable, PORT=str(free_port()))
    rc, out = run(['bash', osp.join(TOOLS, 'dist_train.sh'), tiny_config, '1', '--work-dir',
                   str(tmp_path / 'work'), '--cfg-options', 'train_cfg.max_epochs=1'],
                  cwd=tmp_path, env=env)
    assert rc == 0, out
    assert 'Distributed training: True' in out
    assert "type='CPUDistributedDataParallel'" in out
    assert osp.isfile(tmp_path / 'work' / 'epoch_1.pth')


@pytest.mark.skipif(HAS_CUDA, reason='CPU-only path')
def test_init_cpu_dist_without_torchrun(monkeypatch):
    cfg = prepare_train_cfg(Config(dict(work_dir='wd')), launcher='pytorch')
    monkeypatch.delenv('RANK', raising=False)
    with pytest.raises(RuntimeError, match='RANK.*torchrun'):
        init_cpu_dist(cfg)
    assert not init_cpu_dist(prepare_train_cfg(Config(dict(work_dir='wd'))))  # launcher none


@pytest.mark.slow
@pytest.mark.skipif(HAS_CUDA, reason='checks the CPU (gloo) path of --launcher pytorch')
def test_dist_train_and_test_two_processes(tiny_config, tmp_path):
    env = dict(PYTHON=sys.executable, PORT=str(free_port()))
    work_dir = str(tmp_path / 'work')
    rc, out = run(['bash', osp.join(TOOLS, 'dist_train.sh'), tiny_config, '2', '--work-dir',
                   work_dir, '--cfg-options', 'train_cfg.max_epochs=1'],
                  cwd=tmp_path, env=env)
    assert rc == 0, out
    assert 'GPU number: 2' in out  # mmengine's name for the world size
    env['PORT'] = str(free_port())
    rc, out = run(['bash', osp.join(TOOLS, 'dist_test.sh'), tiny_config,
                   osp.join(work_dir, 'epoch_1.pth'), '2', '--work-dir', work_dir],
                  cwd=tmp_path, env=env)
    assert rc == 0, out
    assert 'accuracy/top1' in out


def test_slurm_train_command_line(tmp_path):
    """slurm_train.sh hands srun the job and train.py the slurm launcher (srun is faked)."""
    fake_bin = tmp_path / 'bin'
    fake_bin.mkdir()
    srun = fake_bin / 'srun'
    srun.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    srun.chmod(0o755)
    env = dict(PATH=f'{fake_bin}{os.pathsep}{os.environ["PATH"]}', GPUS='4', GPUS_PER_NODE='4')
    rc, out = run(['bash', osp.join(TOOLS, 'slurm_train.sh'), 'part', 'job', 'cfg.py', 'wd',
                   '--amp'], cwd=tmp_path, env=env)
    assert rc == 0, out
    args = out.splitlines()
    for expected in ['-p', 'part', '--job-name=job', '--gres=gpu:4', '--ntasks=4', 'python',
                     '-u', osp.join(TOOLS, 'train.py'), 'cfg.py', '--work-dir', 'wd',
                     '--launcher', 'slurm', '--amp']:
        assert expected in args, (expected, args)


# ----------------------------------------------------------------------------------------------
# torch.load(weights_only=True) and mmengine checkpoints
# ----------------------------------------------------------------------------------------------
class NotAllowed:
    """A class no allow-list knows: loading an instance must fail with weights_only=True."""

    def __init__(self):
        self.value = 1


class GetattrPayload:
    """Pickles as ``getattr(HistoryBuffer, 'update')``: only the statistics are allowed."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return getattr, (HistoryBuffer, 'update')


def test_mmengine_checkpoint_needs_the_allow_list(trained, tmp_path):
    """Without allow_mmengine_checkpoints (a fresh process), torch.load refuses the file."""
    ckpt = osp.join(trained[0], 'epoch_1.pth')
    rc, out = run([sys.executable, '-c', f'import torch; torch.load({ckpt!r})'], cwd=tmp_path)
    assert rc != 0 and 'Weights only load failed' in out


def test_allow_mmengine_checkpoints_loads_checkpoint(trained):
    from mmengine.logging import HistoryBuffer
    allow_mmengine_checkpoints()
    allow_mmengine_checkpoints()  # idempotent
    ckpt = torch.load(osp.join(trained[0], 'epoch_1.pth'), weights_only=True)
    assert ckpt['meta']['epoch'] == 1
    loss = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer) and np.isfinite(loss.mean())
    assert isinstance(ckpt['message_hub']['runtime_info']['eta'], np.floating)


def test_allow_mmengine_checkpoints_numpy(tmp_path):
    allow_mmengine_checkpoints()
    obj = dict(array=np.arange(6, dtype=np.float32).reshape(2, 3), f=np.float64(1.5),
               i=np.int64(3), b=np.bool_(True), dtype=np.dtype('int16'))
    torch.save(obj, tmp_path / 'np.pth')
    loaded = torch.load(tmp_path / 'np.pth', weights_only=True)
    np.testing.assert_array_equal(loaded['array'], obj['array'])
    assert loaded['f'] == 1.5 and loaded['i'] == 3 and loaded['b']
    assert loaded['dtype'] == np.dtype('int16')


@pytest.mark.parametrize('payload', [NotAllowed(), GetattrPayload()],
                         ids=['custom-class', 'getattr'])
def test_allow_mmengine_checkpoints_stays_narrow(payload, tmp_path):
    allow_mmengine_checkpoints()
    torch.save({'state_dict': {}, 'meta': payload}, tmp_path / 'evil.pth')
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / 'evil.pth', weights_only=True)


# ----------------------------------------------------------------------------------------------
# CPU bfloat16 optim wrapper
# ----------------------------------------------------------------------------------------------
def test_cpu_bf16_optim_wrapper_autocasts():
    model = torch.nn.Linear(4, 2)
    wrapper = CPUBF16AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled('cpu')
        assert torch.get_autocast_dtype('cpu') == torch.bfloat16
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    assert not torch.is_autocast_enabled('cpu')
    wrapper.update_params(out.float().sum())
    # State of an AmpOptimWrapper (CUDA) checkpoint: the loss scaler is ignored.
    state = wrapper.state_dict()
    wrapper.load_state_dict(dict(state, loss_scaler={'scale': 1024.0}))


# ----------------------------------------------------------------------------------------------
# Config handling on mmdet, mmseg and mmpretrain configs
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', DOWNSTREAM_CONFIGS)
def test_prepare_train_cfg_downstream(name):
    stem = osp.splitext(osp.basename(name))[0]
    cfg = prepare_train_cfg(name)
    assert cfg.work_dir == osp.join('./work_dirs', stem)
    assert cfg.launcher == 'none'
    assert not cfg.get('resume', False)

    cfg = prepare_train_cfg(name, work_dir='wd', amp=True, resume='auto', launcher='pytorch',
                            cfg_options={'train_cfg.val_interval': 7})
    assert cfg.work_dir == 'wd'
    assert cfg.train_cfg.val_interval == 7
    assert cfg.resume is True and cfg.load_from is None
    if HAS_CUDA:
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
        assert cfg.optim_wrapper.loss_scale == 'dynamic'
    else:
        assert cfg.optim_wrapper.type == 'CPUBF16AmpOptimWrapper'
        assert 'loss_scale' not in cfg.optim_wrapper
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert cfg.model_wrapper_cfg.type == 'CPUDistributedDataParallel'


@pytest.mark.skipif(HAS_CUDA, reason='CPU-only path')
def test_cpu_distributed_run_replaces_sync_bn():
    """torch's SyncBatchNorm raises on CPU tensors once a process group exists: BN instead."""
    name = osp.join(REPO, 'configs', 'segformer_hrvit_b1_ade20k.py')
    assert Config.fromfile(name).model.backbone.norm_cfg.type == 'SyncBN'
    cfg = prepare_train_cfg(name, launcher='pytorch')
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    assert cfg.model.decode_head.norm_cfg.type == 'BN'
    assert 'SyncBN' not in str(cfg.model)
    # one process: SyncBN is kept (it computes plain batch statistics there)
    assert prepare_train_cfg(name).model.backbone.norm_cfg.type == 'SyncBN'


def test_prepare_train_cfg_resume_path(tiny_config, trained):
    ckpt = osp.join(trained[0], 'epoch_1.pth')
    cfg = prepare_train_cfg(tiny_config, resume=ckpt)
    assert cfg.resume is True and cfg.load_from == ckpt
    with pytest.raises(FileNotFoundError, match='checkpoint not found: nope.pth'):
        prepare_train_cfg(tiny_config, resume='nope.pth')


@pytest.mark.skipif(HAS_CUDA, reason='CPU-only switch')
def test_prepare_train_cfg_amp_config_on_cpu():
    """A config that asks for AmpOptimWrapper itself is switched too (it would fail on CPU)."""
    cfg = Config(dict(optim_wrapper=dict(type='AmpOptimWrapper', loss_scale=512.0,
                                         optimizer=dict(type='SGD', lr=0.1)),
                      work_dir='wd'))
    cfg = prepare_train_cfg(cfg)
    assert cfg.optim_wrapper.type == 'CPUBF16AmpOptimWrapper'
    assert 'loss_scale' not in cfg.optim_wrapper


@pytest.mark.parametrize('name', DOWNSTREAM_CONFIGS)
def test_prepare_test_cfg_downstream(name, tmp_path):
    show_dir = str(tmp_path / 'vis')
    cfg = prepare_test_cfg(name, 'https://example.com/model.pth', show_dir=show_dir)
    assert cfg.load_from == 'https://example.com/model.pth'
    hook = cfg.default_hooks.visualization
    if name.startswith('mmdet'):  # DetVisualizationHook
        assert hook.draw is True and hook.test_out_dir == show_dir
    elif name.startswith('mmseg'):  # SegVisualizationHook + the visualizer's save_dir
        assert hook.draw is True and cfg.visualizer.save_dir == show_dir
    else:  # mmpretrain's VisualizationHook
        assert hook.enable is True and hook.out_dir == show_dir


def test_formatted_config_cache_formats_each_text_once(tiny_config, monkeypatch):
    """Inside the block the config's text is formatted (yapf) once however often it is read,
    and is what mmengine gives without the cache; a changed config is formatted anew."""
    from mmengine.config import config as config_module
    plain = Config.fromfile(tiny_config).pretty_text
    calls = []
    original = config_module.FormatCode

    def counting(text, *args, **kwargs):
        calls.append(text)
        return original(text, *args, **kwargs)

    monkeypatch.setattr(config_module, 'FormatCode', counting)
    cfg = Config.fromfile(tiny_config)
    with formatted_config_cache():
        assert [cfg.pretty_text for _ in range(3)] == [plain] * 3
        assert len(calls) == 1
        cfg.train_cfg.max_epochs = 7
        assert 'max_epochs=7' in cfg.pretty_text and len(calls) == 2
    assert config_module.FormatCode is counting  # put back
    cfg.pretty_text
    assert len(calls) == 3  # no cache outside the block


def test_resolve_config_path():
    path = resolve_config_path(DOWNSTREAM_CONFIGS[0])
    assert osp.isfile(path) and path.endswith(osp.join('configs', 'retinanet',
                                                       'retinanet_r50_fpn_1x_coco.py'))
    with pytest.raises(FileNotFoundError, match='mmdet::nope.py'):
        resolve_config_path('mmdet::nope.py')
    with pytest.raises(FileNotFoundError, match='no installed package'):
        resolve_config_path('not_a_package_xyz::a/b.py')
    with pytest.raises(FileNotFoundError, match='config file not found: nope.py'):
        load_config('nope.py')


def test_train_parse_args_local_rank(monkeypatch):
    """``--local-rank`` (torch >= 2) and ``--local_rank`` both set LOCAL_RANK if unset."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('train_tool', osp.join(TOOLS, 'train.py'))
    train_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_tool)
    monkeypatch.setenv('LOCAL_RANK', '0')  # so that monkeypatch restores the variable
    for flag in ('--local-rank', '--local_rank'):
        monkeypatch.delenv('LOCAL_RANK')
        args = train_tool.parse_args(['cfg.py', flag, '3', '--resume'])
        assert args.local_rank == 3 and args.resume == 'auto'
        assert os.environ['LOCAL_RANK'] == '3'
    args = train_tool.parse_args(['cfg.py', '--cfg-options', 'a.b=1', 'c=[1,2]'])
    assert args.cfg_options == {'a.b': 1, 'c': [1, 2]}
    assert args.resume is None and args.launcher == 'none' and not args.amp
