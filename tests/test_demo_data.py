"""The demo data generator: deterministic, and readable by mmdet and mmseg."""
import hashlib
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools', 'dataset_converters'))

from make_demo_data import (ADE_BACKGROUND_IDS, ADE_SHAPE_IDS,  # noqa: E402
                            CITYSCAPES_BACKGROUND_IDS, CITYSCAPES_SHAPE_IDS, make_demo_data)


def _digest(root):
    files = sorted(
        osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
    h = hashlib.sha256()
    for rel in files:
        h.update(rel.encode())
        with open(osp.join(root, rel), 'rb') as f:
            h.update(f.read())
    return files, h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = _digest(make_demo_data(str(tmp_path / 'a'), seed=3, num_coco=(3, 2), num_semantic=(2, 1)))
    b = _digest(make_demo_data(str(tmp_path / 'b'), seed=3, num_coco=(3, 2), num_semantic=(2, 1)))
    c = _digest(make_demo_data(str(tmp_path / 'c'), seed=4, num_coco=(3, 2), num_semantic=(2, 1)))
    assert a == b
    assert a[0] == c[0] and a[1] != c[1]
    assert len(a[0]) == 2 + 5 + 2 * (3 * 2)  # 2 json + 5 coco images + 2 sets x 3 (img + label)


def test_coco_annotations_match_the_drawn_shapes(demo_data):
    from pycocotools.coco import COCO
    ann_file = osp.join(demo_data, 'coco', 'annotations', 'instances_train2017.json')
    coco = COCO(ann_file)
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == ['square', 'circle', 'triangle']
    assert len(coco.imgs) == 8 and len(coco.anns) >= 8
    for ann in coco.anns.values():
        info = coco.imgs[ann['image_id']]
        mask = coco.annToMask(ann)
        assert mask.shape == (info['height'], info['width'])
        assert abs(mask.sum() - ann['area']) <= 0.15 * ann['area'] + 20  # rasterisation edge
        x, y, w, h = ann['bbox']
        ys, xs = np.nonzero(mask)
        assert abs(xs.min() - x) <= 1.5 and abs(xs.max() + 1 - (x + w)) <= 1.5
        assert abs(ys.min() - y) <= 1.5 and abs(ys.max() + 1 - (y + h)) <= 1.5
        # the shape is drawn in one colour (channels >= 120) under the mask, edges aside
        img = np.asarray(Image.open(osp.join(demo_data, 'coco', 'train2017', info['file_name'])))
        pixels = img[mask.astype(bool)]
        assert (pixels.min(axis=1) >= 120).mean() > 0.85


def test_semantic_sets_use_the_documented_label_ids(demo_data):
    ade = osp.join(demo_data, 'ade', 'ADEChallengeData2016', 'annotations', 'training')
    city = osp.join(demo_data, 'cityscapes', 'gtFine', 'train', 'demo')
    ade_ids = set(np.unique(np.concatenate(
        [np.asarray(Image.open(osp.join(ade, f))).ravel() for f in os.listdir(ade)])))
    city_ids = set(np.unique(np.concatenate(
        [np.asarray(Image.open(osp.join(city, f))).ravel() for f in os.listdir(city)])))
    assert ade_ids <= set(ADE_SHAPE_IDS + ADE_BACKGROUND_IDS)
    assert set(ADE_BACKGROUND_IDS) <= ade_ids and len(ade_ids) >= 4
    assert city_ids <= set(CITYSCAPES_SHAPE_IDS + CITYSCAPES_BACKGROUND_IDS)
    assert set(CITYSCAPES_BACKGROUND_IDS) <= city_ids and len(city_ids) >= 4


def test_mmdet_and_mmseg_datasets_read_it(demo_data):
    import mmdet.datasets  # noqa: F401
    import mmseg.datasets  # noqa: F401
    from mmdet.datasets import CocoDataset
    from mmseg.datasets import ADE20KDataset, CityscapesDataset
    coco = CocoDataset(
        data_root=osp.join(demo_data, 'coco'),
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        metainfo=dict(classes=('square', 'circle', 'triangle')),
        pipeline=[])
    assert len(coco) == 4 and coco[0]['instances']
    ade = ADE20KDataset(
        data_root=osp.join(demo_data, 'ade', 'ADEChallengeData2016'),
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=[])
    city = CityscapesDataset(
        data_root=osp.join(demo_data, 'cityscapes'),
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=[])
    assert len(ade) == 3 and len(city) == 3
    assert osp.isfile(city[0]['seg_map_path'])


@pytest.mark.parametrize('kwargs', [dict(num_coco=(0, 2)), dict(num_semantic=(2, )),
                                    dict(num_coco=(2.5, 1))])
def test_bad_sizes_raise(tmp_path, kwargs):
    with pytest.raises(ValueError, match='num_'):
        make_demo_data(str(tmp_path), **kwargs)


def test_command_line(tmp_path):
    import subprocess
    out = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'dataset_converters', 'make_demo_data.py'),
         '--out', str(tmp_path), '--num-coco', '2', '1', '--num-semantic', '1', '1'],
        capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    with open(tmp_path / 'coco' / 'annotations' / 'instances_val2017.json') as f:
        assert len(json.load(f)['images']) == 1
