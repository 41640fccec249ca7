"""tools/analysis/profile_train.py: the profile of training iterations of a demo config (smoke
test: that it runs through the real training step and reports every part; no timings asserted).
"""
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))

import profile_train  # noqa: E402


def test_profile_of_a_demo_detector(demo_data, capsys, tmp_path):
    config = osp.join(ROOT, 'configs', 'demo', 'retinanet_hrvit_b1_coco_demo.py')
    trace = tmp_path / 'trace.json'
    profile_train.main([
        config, '--iters', '1', '--warmup', '0', '--row-limit', '5', '--trace', str(trace),
        '--cfg-options', f'train_dataloader.dataset.data_root={osp.join(demo_data, "coco/")}',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False'])
    out = capsys.readouterr().out
    assert 'ms per iteration' in out
    parts = {line.split()[0] for line in out.splitlines() if line.startswith('  ')}
    # the forward and losses of each part of the detector, and what remains of the step
    assert {'backbone', 'neck', 'bbox_head', 'rest', 'train_step'} <= parts
    assert 'Self CPU' in out  # the operator table
    assert trace.stat().st_size > 0


def test_bad_arguments_are_one_line_errors(capsys):
    with pytest.raises(SystemExit) as e:
        profile_train.main(['no/such/config.py'])
    assert e.value.code == 2
    assert 'config not found: no/such/config.py' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        profile_train.main([osp.join(ROOT, 'configs', 'demo', 'retinanet_hrvit_b1_coco_demo.py'),
                            '--iters', '0'])
    assert '--iters and --row-limit must be >= 1' in capsys.readouterr().err
