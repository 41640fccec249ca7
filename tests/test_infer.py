"""Inference with checkpoints that our tools wrote: ``tools/infer.py`` and the libraries' own
APIs (``init_detector``, ``DetInferencer``, mmseg's ``init_model`` / ``MMSegInferencer``,
mmpretrain's ``ImageClassificationInferencer``), which load them with
``torch.load(weights_only=True)`` once a config's ``custom_imports`` has imported our package.
"""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch

from _cli import run_main_here

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools'))
import infer  # noqa: E402

DET_CONFIG = osp.join(ROOT, 'configs', 'demo', 'maskrcnn_hrvit_b1_coco_demo.py')
SEG_CONFIG = osp.join(ROOT, 'configs', 'demo', 'upernet_hrvit_b1_ade20k_demo.py')
CLS_CONFIG = osp.join(ROOT, 'configs', 'cls_cloformer_xxs_in1k.py')


def run(cmd, cwd, timeout=600):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return proc.returncode, proc.stdout


def train_one_iteration(config, work_dir, options):
    """``tools/train.py`` for one iteration (two images), in this process, without the
    validation at the end of training (``val_begin=2``) and without data loader workers (they
    would load batches ahead that are never used): the checkpoint it writes."""
    result = run_main_here(osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', work_dir,
                           '--cfg-options', 'train_cfg.val_begin=2', *options,
                           'train_dataloader.num_workers=0',  # no workers loading ahead
                           'train_dataloader.persistent_workers=False')
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    ckpts = glob.glob(osp.join(work_dir, '*.pth'))
    assert len(ckpts) == 1, ckpts
    return ckpts[0]


@pytest.fixture(scope='module')
def checkpoints(demo_data, tmp_path_factory):
    coco = osp.join(demo_data, 'coco') + '/'
    ade = osp.join(demo_data, 'ade', 'ADEChallengeData2016')
    det = train_one_iteration(DET_CONFIG, tmp_path_factory.mktemp('det'), [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=10',
        'default_hooks.checkpoint.interval=1', 'train_dataloader.batch_size=2',
        'train_dataloader.dataset.indices=2', f'train_dataloader.dataset.data_root={coco}',
        f'val_dataloader.dataset.data_root={coco}', f'test_dataloader.dataset.data_root={coco}',
        f'val_evaluator.ann_file={coco}annotations/instances_val2017.json',
        f'test_evaluator.ann_file={coco}annotations/instances_val2017.json'])
    seg = train_one_iteration(SEG_CONFIG, tmp_path_factory.mktemp('seg'), [
        'train_cfg.max_iters=1', 'train_cfg.val_interval=10',
        'default_hooks.checkpoint.interval=1', 'train_dataloader.batch_size=2',
        f'train_dataloader.dataset.data_root={ade}', f'val_dataloader.dataset.data_root={ade}',
        f'test_dataloader.dataset.data_root={ade}'])
    return dict(det=det, seg=seg, coco=coco, ade=ade)


def test_checkpoints_hold_what_weights_only_refuses_by_default(checkpoints, tmp_path):
    """The premise: without our package, torch.load refuses these files (mmengine objects)."""
    rc, out = run([sys.executable, '-c', f'import torch; torch.load({checkpoints["det"]!r})'],
                  cwd=tmp_path)
    assert rc != 0 and 'HistoryBuffer' in out


def test_library_apis_load_our_checkpoints(checkpoints, tmp_path):
    """A fresh process that imports only the libraries: the config's custom_imports brings in
    mmvit_plugins, and with it the allow-list; a pickled callable is still refused."""
    # a classifier checkpoint with the mmengine objects of a real one: the det checkpoint's
    # message hub and meta around a CloFormer classifier's state dict
    import mmpretrain.models  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS as CLS_MODELS

    import mmvit_plugins  # noqa: F401  (the allow-list, in this process too)
    classifier = tmp_path / 'cls.pth'
    ckpt = torch.load(checkpoints['det'], weights_only=True)
    ckpt['meta'].pop('dataset_meta')  # the detector's 3 classes
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        ckpt['state_dict'] = CLS_MODELS.build(Config.fromfile(CLS_CONFIG).model).state_dict()
    torch.save(ckpt, classifier)
    image = sorted(glob.glob(osp.join(checkpoints['coco'], 'val2017', '*')))[0]
    ade_image = sorted(glob.glob(osp.join(checkpoints['ade'], 'images', 'validation', '*')))[0]
    script = textwrap.dedent(f"""
        import os, pickle, sys, torch
        from mmpretrain.apis import ImageClassificationInferencer
        assert 'mmvit_plugins' not in sys.modules
        r = ImageClassificationInferencer(model={CLS_CONFIG!r}, pretrained={str(classifier)!r},
                                          device='cpu')({image!r})[0]
        assert 'mmvit_plugins' in sys.modules  # through the config's custom_imports
        print('ImageClassificationInferencer', r['pred_label'])
        # (mmpretrain's inferencer first: it does not set the default scope, the others do)
        from mmdet.apis import DetInferencer, inference_detector, init_detector
        det = init_detector({DET_CONFIG!r}, {checkpoints['det']!r}, device='cpu')
        print('init_detector', len(inference_detector(det, {image!r}).pred_instances))
        res = DetInferencer(model={DET_CONFIG!r}, weights={checkpoints['det']!r},
                            device='cpu', show_progress=False)({image!r})
        print('DetInferencer', len(res['predictions'][0]['scores']))
        from mmseg.apis import MMSegInferencer, inference_model, init_model
        seg = init_model({SEG_CONFIG!r}, {checkpoints['seg']!r}, device='cpu')
        print('init_model', tuple(inference_model(seg, {ade_image!r}).pred_sem_seg.shape))
        out = MMSegInferencer(model={SEG_CONFIG!r}, weights={checkpoints['seg']!r},
                              device='cpu')({ade_image!r})
        print('MMSegInferencer', out['predictions'].shape)

        class Payload:
            def __reduce__(self):
                return os.system, ('echo PAYLOAD-RAN',)
        torch.save({{'state_dict': {{}}, 'x': Payload()}}, 'payload.pth')
        try:
            torch.load('payload.pth')
        except pickle.UnpicklingError as e:
            print('payload refused:', 'system' in str(e))
    """)
    rc, out = run([sys.executable, '-c', script], cwd=tmp_path)
    assert rc == 0, out[-4000:]
    for api in ('init_detector', 'DetInferencer', 'init_model', 'MMSegInferencer',
                'ImageClassificationInferencer'):
        assert f'{api} ' in out, (api, out[-2000:])  # (after a progress bar, no newline)
    assert 'MMSegInferencer (192, 256)' in out  # the demo image's size
    assert 'payload refused: True' in out and 'PAYLOAD-RAN' not in out


def test_infer_tool_detection_folder(checkpoints, tmp_path, capsys):
    folder = osp.join(checkpoints['coco'], 'val2017')
    out_dir = tmp_path / 'out'
    outputs = infer.main([folder, DET_CONFIG, '--weights', checkpoints['det'],
                          '--out-dir', str(out_dir), '--score-thr', '0.05'])
    images = sorted(os.listdir(folder))
    assert sorted(os.listdir(out_dir / 'vis')) == images
    for name, out in zip(images, outputs):
        with open(out_dir / 'preds' / (osp.splitext(name)[0] + '.json')) as f:
            assert json.load(f) == out
        assert out['masks'] is True and out['score_thr'] == 0.05
        for inst in out['instances']:
            assert inst['score'] >= 0.05 and len(inst['bbox']) == 4
            assert inst['class'] in ('circle', 'square', 'triangle')
    assert sum(len(o['instances']) for o in outputs) > 0
    assert f'{len(images)} image(s) -> {len(images)} drawn' in capsys.readouterr().out


def test_infer_tool_segmentation_glob(checkpoints, tmp_path):
    pattern = osp.join(checkpoints['ade'], 'images', 'validation', '*.jpg')
    out_dir = tmp_path / 'out'
    outputs = infer.main([pattern, SEG_CONFIG, '--weights', checkpoints['seg'],
                          '--out-dir', str(out_dir)])
    from PIL import Image
    assert len(outputs) == len(glob.glob(pattern)) == len(os.listdir(out_dir / 'vis'))
    for out in outputs:
        seg = Image.open(out['png'])
        assert list(seg.size[::-1]) == out['shape']
        assert abs(sum(out['classes'].values()) - 1) < 1e-3


def test_infer_tool_classification_without_weights(checkpoints, tmp_path, capsys):
    image = sorted(glob.glob(osp.join(checkpoints['coco'], 'val2017', '*')))[0]
    (out,) = infer.main([image, CLS_CONFIG, '--out-dir', str(tmp_path / 'out')])
    assert 0 <= out['pred_label'] < 1000 and len(out['top5']) == 5
    assert out['top5'][0]['label'] == out['pred_label']
    assert 'no --weights' in capsys.readouterr().err
    assert len(os.listdir(tmp_path / 'out' / 'vis')) == 1


ERRORS = [
    (['missing_dir', DET_CONFIG], 'no such file, folder or glob match: missing_dir'),
    (['{img}', 'missing.py'], 'config file not found: missing.py'),
    (['{img}', DET_CONFIG, '--weights', 'missing.pth'], 'checkpoint not found: missing.pth'),
    (['{img}', DET_CONFIG, '--score-thr', '2'], '--score-thr must be in [0, 1], got 2.0'),
    (['{img}', DET_CONFIG, '--device', 'tpu'], '--device must be cpu, cuda or cuda:N'),
    (['{img}', SEG_CONFIG, '--weights', '{det}'], 'does not fit the config'),
]


def error_args(checkpoints, args):
    image = sorted(glob.glob(osp.join(checkpoints['coco'], 'val2017', '*')))[0]
    return [a.format(img=image, det=checkpoints['det']) for a in args]


@pytest.mark.parametrize('args,message', ERRORS)
def test_infer_tool_errors_are_one_line(checkpoints, tmp_path, monkeypatch, args, message):
    """In this process: ``main`` exits with the one-line message (``sys.exit(str)``: status 1,
    the line on stderr)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        infer.main(error_args(checkpoints, args))
    line = exc.value.code
    assert isinstance(line, str) and '\n' not in line, line
    assert line.startswith('infer.py: error: ') and message in line, line


def test_infer_tool_error_from_the_command_line(checkpoints, tmp_path):
    """The same as a user sees it, for the error found last (after the model is built): status
    1, the message as the last line, no traceback."""
    args, message = ERRORS[-1]
    rc, out = run([sys.executable, osp.join(ROOT, 'tools', 'infer.py'),
                   *error_args(checkpoints, args)], cwd=tmp_path)
    lines = [line for line in out.strip().splitlines() if 'Warning' not in line
             and not line.startswith('  ')]
    assert rc == 1 and lines[-1].startswith('infer.py: error: ') and message in lines[-1], out
    assert 'Traceback' not in out
