"""Tests of ``tools/test.py --tta``, ``--out`` and test-server output (``format_only``).

The tool runs in-process (``main(argv)``) on the generated demo data, with freshly initialised
checkpoints of three demo configs: UperNet + CloFormer-XS (decode heads narrowed to 32/16
channels by ``--cfg-options``, which apply to the checkpoint and every run), Mask R-CNN and
RetinaNet + CloFormer-XS. Each run reads one or two images (``test_dataloader.dataset.indices``).
The models are untrained, so the metrics are near zero: the tests check that the metrics are
computed and what the tool writes (dumps, json files, pngs), not accuracy.
"""
import glob
import importlib
import importlib.util
import json
import os.path as osp

import mmengine
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from PIL import Image

from mmvit_plugins.utils import prepare_test_cfg

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(ROOT, 'configs', 'demo')
SEG_CONFIG = osp.join(DEMO, 'upernet_cloformer_xs_ade20k_demo.py')
MASKRCNN_CONFIG = osp.join(DEMO, 'maskrcnn_cloformer_xs_coco_demo.py')
RETINANET_CONFIG = osp.join(DEMO, 'retinanet_cloformer_xs_coco_demo.py')
# Narrow UperNet heads (512 channels in the config): the TTA run makes 12 forward passes.
SEG_MODEL_OPTS = ['model.decode_head.channels=32', 'model.auxiliary_head.channels=16']
LOADER_OPTS = ['test_dataloader.num_workers=0']


@pytest.fixture(scope='module')
def test_tool():
    spec = importlib.util.spec_from_file_location('test_tool', osp.join(ROOT, 'tools', 'test.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def save_init_checkpoint(config, path, options=()):
    """Save the initialised model of ``config`` (``options``: int ``key=value`` overrides)."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({key: int(value) for key, value in (o.split('=', 1) for o in options)})
    scope = cfg.default_scope
    importlib.import_module(f'{scope}.models')
    registry = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(cfg.model)
    model.init_weights()
    torch.save({'meta': {'note': 'initialised, untrained'}, 'state_dict': model.state_dict()},
               path)
    return str(path)


@pytest.fixture
def any_file(tmp_path):
    """An existing checkpoint path, for runs that must stop before loading it."""
    path = tmp_path / 'never_loaded.pth'
    path.write_bytes(b'')
    return str(path)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp('ckpt')
    return dict(
        seg=save_init_checkpoint(SEG_CONFIG, root / 'seg.pth', SEG_MODEL_OPTS),
        maskrcnn=save_init_checkpoint(MASKRCNN_CONFIG, root / 'maskrcnn.pth'),
        retinanet=save_init_checkpoint(RETINANET_CONFIG, root / 'retinanet.pth'))


def seg_opts(demo_data, images=1):
    return SEG_MODEL_OPTS + LOADER_OPTS + [
        f'test_dataloader.dataset.data_root={osp.join(demo_data, "ade/ADEChallengeData2016")}',
        f'test_dataloader.dataset.indices={images}']


def coco_opts(demo_data, images=1, ann_file=None):
    ann_file = ann_file or osp.join(demo_data, 'coco/annotations/instances_val2017.json')
    return LOADER_OPTS + [
        f'test_dataloader.dataset.data_root={osp.join(demo_data, "coco/")}',
        f'test_dataloader.dataset.ann_file={ann_file}', f'test_evaluator.ann_file={ann_file}',
        f'test_dataloader.dataset.indices={images}', 'test_dataloader.batch_size=1']


def run_test(test_tool, config, checkpoint, work_dir, *args, options=()):
    """Run ``tools/test.py`` in-process; return the metrics it logged."""
    argv = [config, checkpoint, '--work-dir', str(work_dir), *map(str, args)]
    if options:
        argv += ['--cfg-options', *options]
    test_tool.main(argv)
    logs = sorted(glob.glob(osp.join(str(work_dir), '*', '*.json')))
    assert logs, 'no metrics json in the work dir'
    with open(logs[-1]) as f:
        return json.load(f)


def tool_error(test_tool, *argv):
    """The one-line message ``tools/test.py`` exits with (it must not start the test)."""
    with pytest.raises(SystemExit) as excinfo:
        test_tool.main(list(map(str, argv)))
    message = excinfo.value.code
    assert isinstance(message, str) and message.startswith('test.py: error: '), message
    assert '\n' not in message
    return message


# ----------------------------------------------------------------------------------------------
# Segmentation: UperNet on the ADE20K-format demo set
# ----------------------------------------------------------------------------------------------
def test_seg_tta_and_out(test_tool, checkpoints, demo_data, tmp_path):
    out = tmp_path / 'tta.pkl'
    metrics = run_test(test_tool, SEG_CONFIG, checkpoints['seg'], tmp_path / 'work', '--tta',
                       '--out', out, options=seg_opts(demo_data))
    assert 0 <= metrics['mIoU'] <= 100 and 'aAcc' in metrics
    results = mmengine.load(str(out))
    assert len(results) == 1
    sample = results[0]
    # SegTTAModel returns the last of the 12 views: 256x192 x 1.75, flipped
    assert sample['flip'] is True and tuple(sample['img_shape']) == (336, 448)
    assert tuple(sample['ori_shape']) == (192, 256)
    pred = sample['pred_sem_seg']['data']
    assert pred.shape == (1, 192, 256) and 0 <= int(pred.min()) and int(pred.max()) < 150
    assert sample['gt_sem_seg']['data'].shape == (1, 192, 256)
    assert 'seg_logits' not in sample  # DumpSegResults drops the 150 x H x W logits


def test_seg_out_directory_as_mmseg(test_tool, checkpoints, demo_data, tmp_path):
    """For an mmseg config ``--out DIR`` means what it means in mmseg: png predictions."""
    out = tmp_path / 'pred'
    metrics = run_test(test_tool, SEG_CONFIG, checkpoints['seg'], tmp_path / 'work', '--out',
                       out, options=seg_opts(demo_data, images=2))
    assert 'mIoU' in metrics  # still evaluated
    assert sorted(osp.basename(p) for p in glob.glob(str(out / '*.png'))) == [
        'ADE_val_00000001.png', 'ADE_val_00000002.png']


def test_ade20k_format_only_needs_no_annotations(test_tool, checkpoints, demo_data, tmp_path):
    out = tmp_path / 'server' / 'ade'  # created by the metric
    options = seg_opts(demo_data, images=2) + [
        'test_evaluator.format_only=True', f'test_evaluator.output_dir={out}',
        # a test split: no label files at all
        'test_dataloader.dataset.data_prefix.seg_map_path=annotations/none']
    metrics = run_test(test_tool, SEG_CONFIG, checkpoints['seg'], tmp_path / 'work',
                       options=options)
    assert 'mIoU' not in metrics
    pngs = sorted(glob.glob(str(out / '*.png')))
    assert [osp.basename(p) for p in pngs] == ['ADE_val_00000001.png', 'ADE_val_00000002.png']
    for path in pngs:
        labels = np.array(Image.open(path))
        # ADE20K server format: the original image size, ids 1-150 (reduce_zero_label undone)
        assert labels.shape == (192, 256) and labels.dtype == np.uint8
        assert 1 <= labels.min() and labels.max() <= 150


# ----------------------------------------------------------------------------------------------
# Detection: Mask R-CNN and RetinaNet on the COCO-format demo set
# ----------------------------------------------------------------------------------------------
def test_det_tta_and_out(test_tool, checkpoints, demo_data, tmp_path):
    out = tmp_path / 'tta.pkl'
    # an untrained RetinaNet scores ~0.01 everywhere: lower the threshold to keep boxes
    options = coco_opts(demo_data) + ['model.test_cfg.score_thr=0.001']
    metrics = run_test(test_tool, RETINANET_CONFIG, checkpoints['retinanet'], tmp_path / 'work',
                       '--tta', '--out', out, options=options)
    assert 'coco/bbox_mAP' in metrics
    (sample, ) = mmengine.load(str(out))
    # DetTTAModel returns the first view (192 px, flipped) with boxes merged over all 6
    assert sample['flip'] is True and max(sample['img_shape']) == 192
    pred = sample['pred_instances']
    assert 0 < len(pred['scores']) <= 100  # tta_cfg.max_per_img
    height, width = sample['ori_shape']
    boxes = pred['bboxes']
    assert boxes.shape[1] == 4 and boxes.min() >= 0
    assert boxes[:, 2].max() <= width and boxes[:, 3].max() <= height  # in the original image


def test_maskrcnn_out(test_tool, checkpoints, demo_data, tmp_path):
    out = tmp_path / 'maskrcnn.pickle'
    metrics = run_test(test_tool, MASKRCNN_CONFIG, checkpoints['maskrcnn'], tmp_path / 'work',
                       '--out', out, options=coco_opts(demo_data))
    assert {'coco/bbox_mAP', 'coco/segm_mAP'} <= set(metrics)
    (sample, ) = mmengine.load(str(out))
    pred = sample['pred_instances']
    assert len(pred['bboxes']) == len(pred['masks']) > 0
    # DumpDetResults: masks RLE-encoded at the image size, no ground truth kept
    assert list(pred['masks'][0]['size']) == list(sample['ori_shape'])
    assert 'counts' in pred['masks'][0] and 'gt_instances' not in sample


def test_maskrcnn_tta_is_refused(test_tool, any_file):
    message = tool_error(test_tool, MASKRCNN_CONFIG, any_file, '--tta')
    assert "DetTTAModel merges boxes only" in message and 'mask head' in message


def test_coco_format_only_for_test_dev(test_tool, checkpoints, demo_data, tmp_path):
    """test-dev style: an image list without annotations; json files under a new directory."""
    with open(osp.join(demo_data, 'coco/annotations/instances_val2017.json')) as f:
        info = json.load(f)
    del info['annotations']
    image_info = tmp_path / 'image_info_test.json'
    image_info.write_text(json.dumps(info))
    prefix = tmp_path / 'server' / 'results'
    options = coco_opts(demo_data, images=2, ann_file=str(image_info)) + [
        'test_evaluator.format_only=True', f'test_evaluator.outfile_prefix={prefix}']
    metrics = run_test(test_tool, MASKRCNN_CONFIG, checkpoints['maskrcnn'], tmp_path / 'work',
                       options=options)
    assert not any(k.startswith('coco/') for k in metrics)
    image_ids = {img['id'] for img in info['images'][:2]}
    for kind in ('bbox', 'segm'):
        with open(f'{prefix}.{kind}.json') as f:
            entries = json.load(f)
        assert entries and {e['image_id'] for e in entries} <= image_ids
        assert {e['category_id'] for e in entries} <= {c['id'] for c in info['categories']}
    assert 'segmentation' in entries[0] and len(entries[0]['bbox']) == 4


# ----------------------------------------------------------------------------------------------
# Bad arguments: one line, before anything runs
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize('config, out, expected', [
    (MASKRCNN_CONFIG, 'preds.json', '--out must be a .pkl or .pickle file, got preds.json'),
    (MASKRCNN_CONFIG, 'preds', '--out must be a .pkl or .pickle file, got preds'),
    (SEG_CONFIG, 'preds.png', '--out must be a .pkl or .pickle file (or, for an mmseg config, '
     'a directory without a suffix), got preds.png'),
])
def test_bad_out_suffix(test_tool, any_file, config, out, expected):
    message = tool_error(test_tool, config, any_file, '--out', out)
    assert message == f'test.py: error: {expected}'


@pytest.mark.parametrize('config, key', [(MASKRCNN_CONFIG, 'outfile_prefix'),
                                         (SEG_CONFIG, 'output_dir')])
def test_format_only_without_output(test_tool, any_file, config, key):
    message = tool_error(test_tool, config, any_file, '--cfg-options',
                         'test_evaluator.format_only=True')
    assert f'needs `{key}`' in message and f'test_evaluator.{key}=' in message


def test_seg_tta_without_settings(test_tool, any_file):
    message = tool_error(test_tool, SEG_CONFIG, any_file, '--tta',
                         '--cfg-options', 'tta_pipeline=None')
    assert message.startswith('test.py: error: --tta needs `tta_pipeline` in the config')


# ----------------------------------------------------------------------------------------------
# The configs prepare_test_cfg builds (no run)
# ----------------------------------------------------------------------------------------------
def _tta_views(cfg):
    (tta, ) = [t for t in cfg.test_dataloader.dataset.pipeline if t.type == 'TestTimeAug']
    return tta.transforms


@pytest.mark.parametrize('arch', ['tiny', 'small'])
def test_elsa_upernet_tta_is_the_papers(arch):
    """ELSA reports ADE20K mIoU at (2048, 512) x [0.5 ... 1.75] + flip (spec elsa.md 4.3)."""
    name = osp.join(ROOT, 'configs', f'upernet_elsa_swin_{arch}_ade20k.py')
    cfg = prepare_test_cfg(name, 'https://example.com/model.pth', tta=True)
    assert cfg.model.type == 'SegTTAModel' and cfg.model.module.backbone.type == 'ELSASwin'
    resizes, flips, *_ = _tta_views(cfg)
    ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert [tuple(t.scale) for t in resizes] == [(int(2048 * r), int(512 * r)) for r in ratios]
    assert all(t.keep_ratio for t in resizes)
    assert [(t.prob, t.direction) for t in flips] == [(0., 'horizontal'), (1., 'horizontal')]
    # the single-scale test is unchanged without --tta
    plain = prepare_test_cfg(name, 'https://example.com/model.pth')
    assert plain.model.type == 'EncoderDecoder'
    assert [t.type for t in plain.test_dataloader.dataset.pipeline][1] == 'Resize'


def test_format_only_drops_annotations_inside_tta():
    name = osp.join(ROOT, 'configs', 'upernet_elsa_swin_tiny_ade20k.py')
    cfg = prepare_test_cfg(name, 'https://example.com/model.pth', tta=True, cfg_options={
        'test_evaluator.format_only': True, 'test_evaluator.output_dir': 'out'})
    dataset = cfg.test_dataloader.dataset
    assert 'seg_map_path' not in dataset.data_prefix
    assert [len(group) for group in _tta_views(cfg)] == [6, 2, 1]  # resizes, flips, pack
    assert 'LoadAnnotations' not in str(dataset.pipeline)


@pytest.mark.parametrize('name, model_type', [
    ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', 'DetTTAModel'),
    ('mmpretrain::resnet/resnet18_8xb32_in1k.py', 'AverageClsScoreTTA'),
])
def test_tta_defaults_of_the_libraries(name, model_type):
    """A config without TTA settings gets mmdet's / mmpretrain's flip defaults."""
    cfg = prepare_test_cfg(name, 'https://example.com/model.pth', tta=True)
    assert cfg.model.type == model_type and 'backbone' in cfg.model.module
    flips, (pack, ) = _tta_views(cfg)
    assert [t.prob for t in flips] == [1., 0.]
    if model_type == 'DetTTAModel':
        assert cfg.model.tta_cfg.nms.iou_threshold == 0.5
        assert {'flip', 'flip_direction'} <= set(pack.meta_keys)  # to flip the boxes back


@pytest.mark.parametrize('name, dump', [(MASKRCNN_CONFIG, 'DumpDetResults'),
                                        (SEG_CONFIG, 'DumpSegResults'),
                                        ('mmpretrain::resnet/resnet18_8xb32_in1k.py',
                                         'DumpResults')])
def test_out_appends_the_dump_metric(name, dump):
    cfg = prepare_test_cfg(name, 'https://example.com/model.pth', out='x.pkl')
    first, last = cfg.test_evaluator
    assert last == dict(type=dump, out_file_path='x.pkl')
    assert first.type in ('CocoMetric', 'IoUMetric', 'Accuracy')


def test_dump_seg_results_drops_logits(tmp_path):
    from mmvit_plugins.utils.runner import DumpSegResults
    metric = DumpSegResults(out_file_path=str(tmp_path / 'x.pkl'))
    metric.process({}, [dict(seg_logits=dict(data=torch.zeros(150, 4, 4)),
                             pred_sem_seg=dict(data=torch.ones(1, 4, 4)), img_path='a.jpg')])
    metric.compute_metrics(metric.results)
    (sample, ) = mmengine.load(str(tmp_path / 'x.pkl'))
    assert set(sample) == {'pred_sem_seg', 'img_path'}
