"""bfloat16 CPU autocast (``--amp`` without CUDA) through mmcv's compiled ops."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

import mmcv._ext  # noqa: F401,E402  (make install builds mmcv with its ops: no skip hides a broken one)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# A fresh interpreter: once the shim is installed it stays for the process.
_WITHOUT_SHIM = """
import torch
from mmcv.ops import nms
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.]], dtype=torch.bfloat16)
scores = torch.tensor([0.9, 0.8], dtype=torch.bfloat16)
try:
    nms(boxes, scores, 0.5)
except RuntimeError as e:
    print('refused:', e)
"""


def test_mmcv_cpu_ops_refuse_bfloat16_without_the_shim():
    """What the shim is for: mmcv's CPU nms stops on bfloat16 boxes (the demo's first --amp
    iteration died here, in the RPN's proposal NMS)."""
    out = subprocess.run([sys.executable, '-c', _WITHOUT_SHIM], capture_output=True, text=True,
                         check=True).stdout
    assert 'refused: expected scalar type Float but found BFloat16' in out


def _boxes(n, generator):
    xy = torch.rand(n, 2, generator=generator) * 50
    wh = torch.rand(n, 2, generator=generator) * 20 + 1
    return torch.cat([xy, xy + wh], 1)


def test_nms_and_roi_align_take_bfloat16_as_float32():
    from mmcv.ops import RoIAlign, nms

    from mmvit_plugins.utils.amp import allow_bfloat16_in_mmcv_ops
    assert allow_bfloat16_in_mmcv_ops()
    assert allow_bfloat16_in_mmcv_ops()  # idempotent: wraps once
    g = torch.Generator().manual_seed(0)
    boxes = _boxes(40, g).bfloat16()
    scores = torch.rand(40, generator=g).bfloat16()
    dets, keep = nms(boxes, scores, 0.3)
    dets32, keep32 = nms(boxes.float(), scores.float(), 0.3)
    assert torch.equal(keep, keep32)
    assert torch.equal(dets.float(), dets32)

    # RoIAlign forward and backward (mmcv writes into preallocated bfloat16 buffers)
    feats = torch.randn(2, 8, 16, 16, generator=g)
    rois = torch.cat([torch.randint(0, 2, (6, 1), generator=g).float(),
                      _boxes(6, g) / 4], 1)
    align = RoIAlign((7, 7), spatial_scale=1.0, sampling_ratio=2)
    x16 = feats.bfloat16().requires_grad_()
    out16 = align(x16, rois.bfloat16())
    assert out16.dtype == torch.bfloat16
    x32 = feats.bfloat16().float().requires_grad_()
    out32 = align(x32, rois.bfloat16().float())
    assert torch.equal(out16, out32.bfloat16())
    assert out16.abs().sum() > 0
    # bfloat16-representable, so that both paths get the same output gradient
    weight = torch.randn(out32.shape, generator=g).bfloat16().float()
    (out16.float() * weight).sum().backward()
    (out32 * weight).sum().backward()
    assert torch.equal(x16.grad, x32.grad.bfloat16())
    assert x16.grad.abs().sum() > 0


def test_cpu_amp_wrapper_installs_the_shim(monkeypatch):
    import mmvit_plugins.utils.runner as runner
    installed = []
    monkeypatch.setattr(runner, 'allow_bfloat16_in_mmcv_ops', lambda: installed.append(1))
    model = torch.nn.Linear(2, 2)
    runner.CPUBF16AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert installed == [1]


@pytest.mark.slow
def test_demo_trains_under_amp(demo_data, tmp_path):
    """The main job's detector (Mask R-CNN: RPN NMS and RoIAlign from mmcv) under ``--amp``:
    one epoch of one image (one iteration; validation on one image), every logged loss finite,
    COCO metrics recorded. One image, not a batch of 4: on a CPU without native bfloat16 (AVX2
    only), autocast's grouped convolutions and matmuls run 10x slower than in float32."""
    work = tmp_path / 'work'
    result = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'demo.py'), '--amp', '--data-root', demo_data,
         '--work-dir', str(work), '--num-images', '1', '--cfg-options', 'train_cfg.max_epochs=1',
         'train_dataloader.dataset.indices=1', 'val_dataloader.dataset.indices=1',
         'test_dataloader.dataset.indices=1'],
        cwd=tmp_path, capture_output=True, text=True)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert 'bfloat16 autocast' in out
    with open(work / 'summary.json') as f:
        summary = json.load(f)
    assert summary['amp'] == 'CPUBF16AmpOptimWrapper'
    assert summary['train_loss']['iterations'] > 0 and summary['train_loss']['all_finite']
    assert set(summary['metrics']) == {'bbox_mAP', 'bbox_mAP_50', 'segm_mAP', 'segm_mAP_50'}
