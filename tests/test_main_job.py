"""The main job: a clear stop without data, and the demo driver end to end (on tiny data).

``train.py`` runs from the command line here; ``test.py`` and ``demo.py`` run their ``main`` in
this process (``demo.py`` from the command line: ``tests/test_amp_cpu.py``)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from _cli import run_main_here
from mmvit_plugins.utils import check_data, missing_data_paths

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def run_tool(args, cwd):
    result = subprocess.run([sys.executable] + args, cwd=cwd, capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


def test_train_without_coco_stops_with_a_clear_message(tmp_path):
    rc, out = run_tool([osp.join(ROOT, 'tools', 'train.py'),
                        osp.join(ROOT, 'configs', 'maskrcnn_hrvit_b1_coco.py')], cwd=tmp_path)
    assert rc != 0
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('train.py: error: data not found: '), out
    for expected in ('data/coco/annotations/instances_train2017.json', 'data/coco/train2017/',
                     'make demo', 'configs/demo/maskrcnn_hrvit_b1_coco_demo.py'):
        assert expected in out
    assert 'Traceback' not in out


def test_test_without_data_stops_with_a_clear_message(tmp_path):
    ckpt = tmp_path / 'model.pth'
    import torch
    torch.save({'state_dict': {}}, ckpt)  # a readable checkpoint: the data is what is missing
    result = run_main_here(osp.join(ROOT, 'tools', 'test.py'),
                           osp.join(ROOT, 'configs', 'segformer_hrvit_b1_ade20k.py'), ckpt,
                           cwd=tmp_path)  # the config's data paths are relative
    out = result.stdout + result.stderr
    assert result.returncode != 0 and 'test.py: error: data not found: ' in out
    assert 'data/ade/ADEChallengeData2016/images/validation' in out and 'ADE20K' in out


def test_missing_data_paths_unwraps_dataset_wrappers(tmp_path):
    (tmp_path / 'imgs').mkdir()
    (tmp_path / 'imgs' / 'a.png').write_bytes(b'x')
    (tmp_path / 'empty').mkdir()
    ann = tmp_path / 'ann.json'
    ann.write_text('{}')
    cfg = Config(dict(
        train_dataloader=dict(dataset=dict(type='RepeatDataset', times=2, dataset=dict(
            data_root=str(tmp_path), ann_file='ann.json', data_prefix=dict(img='imgs/')))),
        val_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
            dict(data_root=str(tmp_path), data_prefix=dict(img_path='empty')),
            dict(data_root=str(tmp_path), ann_file='missing.json', data_prefix=dict(
                img_path='s3://bucket/imgs'))]))))
    assert missing_data_paths(cfg, ['train_dataloader']) == []
    assert missing_data_paths(cfg, ['train_dataloader', 'val_dataloader', 'test_dataloader']) == [
        str(tmp_path / 'empty'), str(tmp_path / 'missing.json')]  # remote paths are not checked
    with pytest.raises(FileNotFoundError, match='data not found: .*empty'):
        check_data(cfg, ['val_dataloader'])


@pytest.mark.slow
def test_demo_driver_end_to_end(demo_data, tmp_path):
    """tools/demo.py on tiny demo data for one epoch: checkpoint, logs, metrics and the PNG."""
    work = tmp_path / 'work'
    result = run_main_here(osp.join(ROOT, 'tools', 'demo.py'), '--data-root', demo_data,
                           '--work-dir', work, '--num-images', '3', '--cfg-options',
                           'train_cfg.max_epochs=1',
                           'train_dataloader.dataset.indices=4',  # one iteration of batch 4
                           cwd=tmp_path)
    rc, out = result.returncode, result.stdout + result.stderr
    assert rc == 0, out[-3000:]
    assert 'demo data: found in' in out and 'demo summary' in out
    assert 'Epoch(train)' in out  # progress lines
    with open(work / 'summary.json') as f:
        summary = json.load(f)
    assert set(summary['metrics']) == {'bbox_mAP', 'bbox_mAP_50', 'segm_mAP', 'segm_mAP_50'}
    assert all(0 <= v <= 1 for v in summary['metrics'].values())
    assert summary['amp'] is None and summary['train_loss']['all_finite']
    assert osp.isfile(summary['checkpoint']) and summary['checkpoint'].endswith('epoch_1.pth')
    assert osp.isdir(summary['log_dir'])
    import mmcv
    png = mmcv.imread(summary['predictions_png'])
    assert png.shape[0] >= 160 and png.shape[1] >= 3 * 160  # three tiles in a row
    # it ends with tools/infer.py's inference on four val images
    assert summary['infer']['images'] == 4
    assert len(os.listdir(summary['infer']['vis'])) == 4
    assert len([f for f in os.listdir(summary['infer']['preds']) if f.endswith('.json')]) == 4
