"""Every entry point that reads a checkpoint says in one line why a bad file cannot be used.

The bad files: a text file named ``x.pth``, two pickled payloads (``os.system`` and
``builtins.exec``, each of which would create a marker file if it ran), an empty file, a real
checkpoint cut in half, and a directory. The entry points: ``tools/test.py CONFIG CKPT``,
``tools/train.py --resume CKPT``, ``load_from=CKPT``, a backbone's ``init_cfg`` ``Pretrained``
checkpoint (from the command line and from Python), ``tools/infer.py --weights CKPT`` and the
four converters. The command lines are called in-process for every combination (each must end
in ``SystemExit`` with one ``<tool>.py: error: ...`` line and print nothing else); ``test.py``
and ``train.py`` also run once each as subprocesses (exit status 1, one line of output, no
traceback). No payload may ever run.
"""
import builtins
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from _cli import import_tool

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO, 'tools')
CONVERTERS = ('hrvit', 'elsa', 'container', 'cloformer')

# what each bad file's message must say
EXPECTED = {
    'text': 'is not a PyTorch checkpoint (neither the zip archive nor the pickle',
    'system': f'refused to load: it pickles `{os.system.__module__}.system`, which weights_only '
              'loading does not allow',
    'exec': 'refused to load: it pickles `builtins.exec`, which weights_only loading does not '
            'allow',
    'empty': 'is not a PyTorch checkpoint (the file is empty)',
    'truncated': 'is not a readable PyTorch checkpoint: its zip archive is truncated (the end '
                 'of the archive is missing',
    'directory': 'is a directory, not a checkpoint file',
}
KINDS = sorted(EXPECTED)

TINY_CONFIG = """\
default_scope = 'mmpretrain'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='LeNet5'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=2, in_channels=120,
              loss=dict(type='CrossEntropyLoss')))
train_dataloader = dict(batch_size=2, num_workers=0,
                        dataset=dict(type='CustomDataset', data_root='missing_data'))
"""


class SystemPayload:
    """Unpickling calls ``os.system('touch MARKER')``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class ExecPayload:
    """Unpickling calls ``exec("open(MARKER, 'w').close()")``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({self.marker!r}, 'w').close()", )


def mmengine_like_checkpoint():
    """What mmengine's CheckpointHook saves: tensors plus numpy scalars and a HistoryBuffer."""
    from mmengine.logging import HistoryBuffer
    loss = HistoryBuffer()
    loss.update(0.5)
    return dict(meta=dict(epoch=1, seed=np.int64(0), eta=np.float64(1.5)),
                state_dict={'backbone.w': torch.arange(12.).reshape(3, 4)},
                message_hub=dict(log_scalars={'train/loss': loss}))


@pytest.fixture(scope='module')
def bad(tmp_path_factory):
    """``(files, marker)``: the bad files by kind, and the file a payload would create."""
    root = tmp_path_factory.mktemp('bad_checkpoints')
    marker = str(root / 'PAYLOAD_RAN')
    files = {kind: str(root / f'{kind}.pth') for kind in KINDS}
    with open(files['text'], 'w') as f:
        f.write('not a checkpoint, just text\n')
    torch.save({'state_dict': {}, 'meta': SystemPayload(marker)}, files['system'])
    torch.save({'state_dict': {}, 'meta': ExecPayload(marker)}, files['exec'])
    open(files['empty'], 'wb').close()
    good = str(root / 'good.pth')
    torch.save(mmengine_like_checkpoint(), good)
    with open(good, 'rb') as f:
        data = f.read()
    with open(files['truncated'], 'wb') as f:
        f.write(data[:len(data) // 2])
    os.makedirs(files['directory'])
    config = root / 'tiny.py'
    config.write_text(TINY_CONFIG)
    image = str(root / 'img.png')
    import cv2
    cv2.imwrite(image, np.zeros((8, 8, 3), np.uint8))
    return dict(files=files, marker=marker, good=good, config=str(config), image=image)


def _tool_call(entry, file, env):
    """``(prog, main, argv)`` of the command line that reads ``file`` through ``entry``."""
    if entry in CONVERTERS:
        path = osp.join(TOOLS, 'model_converters', f'{entry}2mmvit.py')
        return f'{entry}2mmvit.py', path, [file, osp.join(osp.dirname(env['good']), 'out.pth')]
    if entry == 'test':
        return 'test.py', osp.join(TOOLS, 'test.py'), [env['config'], file]
    if entry == 'infer':
        return 'infer.py', osp.join(TOOLS, 'infer.py'), [env['image'], env['config'],
                                                         '--weights', file]
    options = {
        'resume': ['--resume', file],
        'load_from': ['--cfg-options', f'load_from={file}'],
        'init_cfg': ['--cfg-options', 'model.backbone.init_cfg.type=Pretrained',
                     f'model.backbone.init_cfg.checkpoint={file}'],
    }[entry]
    return 'train.py', osp.join(TOOLS, 'train.py'), [env['config'], *options]


ENTRIES = ['test', 'resume', 'load_from', 'init_cfg', 'infer', *CONVERTERS]


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('entry', ENTRIES)
def test_command_line_one_line_in_process(entry, kind, bad, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    file = bad['files'][kind]
    prog, path, argv = _tool_call(entry, file, bad)
    tool = import_tool(path)
    with pytest.raises(SystemExit) as exc:
        tool.main(argv)
    message = exc.value.code
    assert isinstance(message, str), message  # sys.exit(str): printed, exit status 1
    assert message.startswith(f'{prog}: error: ') and '\n' not in message, message
    assert EXPECTED[kind] in message and file in message, message
    if entry in ('resume', 'load_from', 'init_cfg'):  # says which setting holds the file
        where = {'resume': '--resume', 'load_from': 'load_from',
                 'init_cfg': 'model.backbone.init_cfg.checkpoint'}[entry]
        assert message.startswith(f'train.py: error: {where}: '), message
    assert capsys.readouterr().err == ''
    assert not osp.exists(bad['marker']), 'the payload ran'
    assert not osp.exists(tmp_path / 'work_dirs'), 'the run started'


@pytest.mark.parametrize('entry, kind', [('test', 'system'), ('init_cfg', 'exec')])
def test_command_line_one_line_subprocess(entry, kind, bad, tmp_path):
    """As a user runs them: exit status 1, one line on stderr, nothing else, no traceback."""
    prog, path, argv = _tool_call(entry, bad['files'][kind], bad)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, path, *argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert 'Traceback' not in proc.stderr and proc.stdout == '', proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'{prog}: error: '), proc.stderr
    assert EXPECTED[kind] in lines[0], proc.stderr
    assert not osp.exists(bad['marker']), 'the payload ran'


@pytest.mark.parametrize('kind', KINDS)
def test_load_checkpoint_file_one_line(kind, bad):
    from mmvit_plugins.utils import CheckpointError, check_checkpoint_file, load_checkpoint_file
    file = bad['files'][kind]
    for load in (load_checkpoint_file, check_checkpoint_file):
        with pytest.raises(CheckpointError) as exc:
            load(file)
        message = str(exc.value)
        assert isinstance(exc.value, ValueError)
        assert EXPECTED[kind] in message and '\n' not in message, message
        assert exc.value.__context__ is None or exc.value.__suppress_context__  # from None
        if kind in ('system', 'exec'):  # how to convert a file one trusts; no bare advice
            assert 'If you trust the file, re-save its weights in a separate Python session' \
                in message
    assert not osp.exists(bad['marker']), 'the payload ran'


def test_good_checkpoints_still_load(bad, tmp_path):
    """mmengine's checkpoints (zip and legacy format) pass the probe and load; a missing file
    is ``checkpoint not found``; URLs are left to mmengine (no download here)."""
    from mmvit_plugins.utils import check_checkpoint_file, load_checkpoint_file
    legacy = str(tmp_path / 'legacy.pth')
    torch.save(mmengine_like_checkpoint(), legacy, _use_new_zipfile_serialization=False)
    for good in (bad['good'], legacy):
        check_checkpoint_file(good)
        ckpt = load_checkpoint_file(good)
        assert ckpt['meta']['epoch'] == 1
        assert ckpt['message_hub']['log_scalars']['train/loss'].mean() == 0.5
    with pytest.raises(FileNotFoundError, match='checkpoint not found: '):
        check_checkpoint_file(str(tmp_path / 'missing.pth'))
    check_checkpoint_file('https://download.invalid/model.pth')


def test_prepare_cfg_checks_before_the_run(bad):
    """``prepare_train_cfg`` finds ``Pretrained`` init configs at any depth (also in lists) and
    skips placeholders and URLs; ``prepare_test_cfg`` only checks the checkpoint under test
    (testing never loads the backbone's pretrained weights)."""
    from mmvit_plugins.utils import CheckpointError, prepare_test_cfg, prepare_train_cfg
    text = bad['files']['text']
    options = {'model.neck.init_cfg': [dict(type='Xavier', layer='Conv2d'),
                                       dict(type='Pretrained', checkpoint=text)]}
    with pytest.raises(CheckpointError, match=r'^model\.neck\.init_cfg\[1\]\.checkpoint: '):
        prepare_train_cfg(bad['config'], cfg_options=options)
    cfg = prepare_train_cfg(bad['config'], cfg_options={
        'model.backbone.init_cfg': dict(type='Pretrained', checkpoint=None),
        'model.neck.init_cfg': dict(type='Pretrained', checkpoint=bad['good']),
        'load_from': 'https://download.invalid/model.pth'})
    assert cfg.load_from == 'https://download.invalid/model.pth'
    cfg = prepare_test_cfg(bad['config'], bad['good'], cfg_options=options)
    assert cfg.load_from == bad['good']
    with pytest.raises(CheckpointError, match='refused to load'):
        prepare_train_cfg(bad['config'], resume=bad['files']['system'])
    assert not osp.exists(bad['marker']), 'the payload ran'


@pytest.mark.parametrize('kind', KINDS)
def test_backbone_init_weights_pretrained(kind, bad):
    """From Python: ``init_weights()`` of a backbone whose Pretrained checkpoint is bad."""
    from mmvit_plugins.models.backbones.hrvit import HRViT
    from mmvit_plugins.utils import CheckpointError
    file = bad['files'][kind]
    tiny = dict(channels=(16, 32, 32, 64), head_dims=16, mlp_ratios=(2, 2, 2, 2),
                depths=((1, ), (1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1)))
    model = HRViT(arch=tiny, init_cfg=dict(type='Pretrained', checkpoint=file,
                                           prefix='backbone.'))
    with pytest.raises(CheckpointError) as exc:
        model.init_weights()
    message = str(exc.value)
    assert message.startswith('HRViT: init_cfg Pretrained: ') and '\n' not in message, message
    assert EXPECTED[kind] in message
    assert exc.value.__suppress_context__  # `raise ... from None`: the message is the line
    assert not osp.exists(bad['marker']), 'the payload ran'
