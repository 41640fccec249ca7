"""Generate the bundled demo data sets, deterministically.

Three small synthetic data sets of coloured shapes on textured backgrounds, in the layouts that
mmdet and mmseg read from ``data/`` (so the demo configs differ from the real ones only in their
data roots, image scales and schedules):

* ``<out>/coco``: a COCO-format instance set with polygon masks. Classes ``square``, ``circle``
  and ``triangle`` (ids 1-3); the class is the shape, the colour is random. Layout::

      coco/annotations/instances_{train,val}2017.json
      coco/{train,val}2017/<id>.png

* ``<out>/ade/ADEChallengeData2016``: an ADE20K-format semantic set (``images/{training,validation}/
  ADE_*.jpg``, ``annotations/.../ADE_*.png``; label 0 = other, shapes use ADE20K ids 1-150 so the
  mmseg dataset with ``reduce_zero_label=True`` reads it unchanged).
* ``<out>/cityscapes``: a Cityscapes-format semantic set (``leftImg8bit/{train,val}/demo/
  *_leftImg8bit.png``, ``gtFine/{train,val}/demo/*_gtFine_labelTrainIds.png``; train ids 0-18).

The same seed gives byte-identical files. Usage::

    python tools/dataset_converters/make_demo_data.py [--out data/demo] [--seed 0]
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys

import numpy as np
from PIL import Image, ImageDraw

COCO_CLASSES = ('square', 'circle', 'triangle')
# Semantic demo classes: the shapes take these ids in each label space.
ADE_SHAPE_IDS = (13, 21, 24)  # ADE20K (1-based): person, car, plant
ADE_BACKGROUND_IDS = (1, 4)  # wall (top), floor (bottom)
CITYSCAPES_SHAPE_IDS = (11, 13, 6)  # train ids: person, car, traffic light
CITYSCAPES_BACKGROUND_IDS = (10, 0)  # sky (top), road (bottom)

_CIRCLE_VERTICES = 24


def _background(rng: np.random.RandomState, height: int, width: int) -> np.ndarray:
    """A smooth two-colour gradient with mild pixel noise, uint8 HxWx3."""
    c0 = rng.uniform(20, 110, size=3)
    c1 = rng.uniform(20, 110, size=3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    img = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    img += rng.normal(0, 8, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _shape_polygon(kind: int, cx: float, cy: float, size: float, angle: float) -> list:
    """Vertices [(x, y), ...] of a square (0), circle (1) or triangle (2) of diameter ``size``."""
    if kind == 0:
        n, start = 4, angle + np.pi / 4
    elif kind == 1:
        n, start = _CIRCLE_VERTICES, 0.0
    elif kind == 2:
        n, start = 3, angle - np.pi / 2
    else:
        raise ValueError(f'kind must be 0, 1 or 2, got {kind}')
    r = size / 2
    return [(float(cx + r * np.cos(start + 2 * np.pi * i / n)),
             float(cy + r * np.sin(start + 2 * np.pi * i / n))) for i in range(n)]


def _place_shapes(rng: np.random.RandomState, height: int, width: int, max_objects: int,
                  min_size: int, max_size: int) -> list:
    """Random non-overlapping shapes: a list of (kind, polygon, colour)."""
    shapes, boxes = [], []
    num = rng.randint(1, max_objects + 1)
    for _ in range(num * 10):  # rejection sampling; fewer shapes if the image is crowded
        if len(shapes) == num:
            break
        kind = int(rng.randint(0, 3))
        size = float(rng.uniform(min_size, max_size))
        cx = float(rng.uniform(size / 2 + 1, width - size / 2 - 1))
        cy = float(rng.uniform(size / 2 + 1, height - size / 2 - 1))
        poly = _shape_polygon(kind, cx, cy, size, float(rng.uniform(0, np.pi / 2)))
        xs, ys = [p[0] for p in poly], [p[1] for p in poly]
        box = (min(xs) - 2, min(ys) - 2, max(xs) + 2, max(ys) + 2)
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes):
            continue
        colour = tuple(int(c) for c in rng.randint(120, 256, size=3))
        shapes.append((kind, poly, colour))
        boxes.append(box)
    return shapes


def _polygon_area(poly: list) -> float:
    xs = np.array([p[0] for p in poly])
    ys = np.array([p[1] for p in poly])
    return float(0.5 * abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))


def make_coco(root: str, rng: np.random.RandomState, num_train: int, num_val: int) -> None:
    """Write the COCO-format instance set under ``root``."""
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    categories = [dict(id=i + 1, name=n, supercategory='shape') for i, n in enumerate(COCO_CLASSES)]
    ann_id = 1
    for split, num in (('train2017', num_train), ('val2017', num_val)):
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, annotations = [], []
        for k in range(num):
            img_id = k + 1
            height, width = int(rng.randint(160, 225)), int(rng.randint(160, 225))
            img = Image.fromarray(_background(rng, height, width))
            draw = ImageDraw.Draw(img)
            for kind, poly, colour in _place_shapes(rng, height, width, 4, 28, 72):
                draw.polygon(poly, fill=colour)
                xs, ys = [p[0] for p in poly], [p[1] for p in poly]
                x0, y0 = max(min(xs), 0.0), max(min(ys), 0.0)
                x1, y1 = min(max(xs), float(width)), min(max(ys), float(height))
                annotations.append(
                    dict(
                        id=ann_id,
                        image_id=img_id,
                        category_id=kind + 1,
                        segmentation=[[round(v, 2) for p in poly for v in p]],
                        area=round(_polygon_area(poly), 2),
                        bbox=[round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                        iscrowd=0))
                ann_id += 1
            file_name = f'{img_id:06d}.png'
            img.save(osp.join(root, split, file_name))
            images.append(dict(id=img_id, file_name=file_name, height=height, width=width))
        with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)


def _semantic_sample(rng: np.random.RandomState, height: int, width: int, shape_ids: tuple,
                     background_ids: tuple) -> tuple:
    """An image and its label map: two background regions split by a wavy line, plus shapes."""
    img = Image.fromarray(_background(rng, height, width))
    label = Image.new('L', (width, height), background_ids[0])
    split = height * rng.uniform(0.35, 0.65)
    phase, amp = rng.uniform(0, 2 * np.pi), rng.uniform(2, height / 12)
    bottom = [(float(x), float(split + amp * np.sin(phase + 6 * x / width)))
              for x in range(0, width + 8, 8)]
    bottom += [(float(width), float(height)), (0.0, float(height))]
    ground = tuple(int(c) for c in rng.randint(60, 160, size=3))
    ImageDraw.Draw(img).polygon(bottom, fill=ground)
    ImageDraw.Draw(label).polygon(bottom, fill=background_ids[1])
    draw_img, draw_lbl = ImageDraw.Draw(img), ImageDraw.Draw(label)
    for kind, poly, colour in _place_shapes(rng, height, width, 5, height // 8, height // 3):
        draw_img.polygon(poly, fill=colour)
        draw_lbl.polygon(poly, fill=shape_ids[kind])
    return img, label


def make_ade(root: str, rng: np.random.RandomState, num_train: int, num_val: int) -> None:
    """Write the ADE20K-format semantic set under ``root`` (= .../ADEChallengeData2016)."""
    for split, prefix, num in (('training', 'train', num_train), ('validation', 'val', num_val)):
        os.makedirs(osp.join(root, 'images', split), exist_ok=True)
        os.makedirs(osp.join(root, 'annotations', split), exist_ok=True)
        for k in range(num):
            img, label = _semantic_sample(rng, 192, 256, ADE_SHAPE_IDS, ADE_BACKGROUND_IDS)
            name = f'ADE_{prefix}_{k + 1:08d}'
            img.save(osp.join(root, 'images', split, name + '.jpg'), quality=95)
            label.save(osp.join(root, 'annotations', split, name + '.png'))


def make_cityscapes(root: str, rng: np.random.RandomState, num_train: int, num_val: int) -> None:
    """Write the Cityscapes-format semantic set under ``root``."""
    for split, num in (('train', num_train), ('val', num_val)):
        img_dir = osp.join(root, 'leftImg8bit', split, 'demo')
        ann_dir = osp.join(root, 'gtFine', split, 'demo')
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for k in range(num):
            img, label = _semantic_sample(rng, 128, 256, CITYSCAPES_SHAPE_IDS,
                                          CITYSCAPES_BACKGROUND_IDS)
            name = f'demo_{split}_{k + 1:06d}'
            img.save(osp.join(img_dir, name + '_leftImg8bit.png'))
            label.save(osp.join(ann_dir, name + '_gtFine_labelTrainIds.png'))


def make_demo_data(out: str = 'data/demo',
                   seed: int = 0,
                   num_coco: tuple = (200, 50),
                   num_semantic: tuple = (40, 10)) -> str:
    """Generate all three demo sets under ``out`` (replacing what is there).

    Args:
        out (str): Output directory.
        seed (int): Random seed; the same seed gives byte-identical files.
        num_coco (tuple[int, int]): Train and val images of the COCO-format set.
        num_semantic (tuple[int, int]): Train and val images of each semantic set.

    Returns:
        str: ``out``.
    """
    for name, value in (('num_coco', num_coco), ('num_semantic', num_semantic)):
        if (not isinstance(value, (tuple, list)) or len(value) != 2
                or not all(isinstance(v, int) and v > 0 for v in value)):
            raise ValueError(f'{name} must be two positive ints (train, val), got {value!r}')
    for sub in ('coco', 'ade', 'cityscapes'):
        shutil.rmtree(osp.join(out, sub), ignore_errors=True)
    # one generator per set, so each set does not depend on the sizes of the others
    make_coco(osp.join(out, 'coco'), np.random.RandomState(seed), *num_coco)
    make_ade(osp.join(out, 'ade', 'ADEChallengeData2016'), np.random.RandomState(seed + 1),
             *num_semantic)
    make_cityscapes(osp.join(out, 'cityscapes'), np.random.RandomState(seed + 2), *num_semantic)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description='Generate the bundled demo data sets')
    parser.add_argument('--out', default='data/demo', help='output directory (default data/demo)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    parser.add_argument('--num-coco', type=int, nargs=2, default=(200, 50),
                        metavar=('TRAIN', 'VAL'), help='COCO-format images (default 200 50)')
    parser.add_argument('--num-semantic', type=int, nargs=2, default=(40, 10),
                        metavar=('TRAIN', 'VAL'),
                        help='images of each semantic set (default 40 10)')
    args = parser.parse_args(argv)
    try:
        out = make_demo_data(args.out, args.seed, tuple(args.num_coco), tuple(args.num_semantic))
    except ValueError as e:
        sys.exit(f'make_demo_data.py: error: {e}')
    print(f'demo data written to {out}/{{coco,ade,cityscapes}}')


if __name__ == '__main__':
    main()
