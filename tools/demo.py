"""The main job on bundled demo data (``make demo``).

1. Generates the demo data sets under ``data/demo`` (deterministic; skipped when present).
2. Trains Mask R-CNN + HRViT-b1 from scratch on the CPU with
   ``configs/demo/maskrcnn_hrvit_b1_coco_demo.py`` (log lines every 10 iterations).
3. Evaluates COCO bbox and segm mAP on the demo val split.
4. Draws the predictions on validation images into one PNG.
5. Runs ``tools/infer.py``'s inference (mmdet's ``DetInferencer``) with the trained checkpoint
   on the first four validation images: drawn images and JSON in ``<work dir>/infer``.

Everything goes to the work dir (default ``work_dirs/demo``): the checkpoint, the logs
(``<timestamp>/<timestamp>.log`` and ``vis_data/``), ``predictions.png``, ``infer/`` and
``summary.json``.

Usage::

    python tools/demo.py [--work-dir DIR] [--config CONFIG] [--data-root data/demo]
                         [--cfg-options KEY=VALUE ...] [--num-images 8] [--amp]

``--amp`` trains with mixed precision as ``tools/train.py --amp`` does (bfloat16 autocast on a
machine without CUDA). The run fails if any logged training loss is NaN or infinite.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
import warnings

warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools', 'dataset_converters'))
sys.path.insert(0, osp.join(ROOT, 'tools'))

from infer import infer  # noqa: E402
from make_demo_data import make_demo_data  # noqa: E402

from mmvit_plugins.utils import (  # noqa: E402
    add_runner_args, allow_mmengine_checkpoints, build_runner, check_data, formatted_config_cache,
    parse_runner_args, prepare_train_cfg)

DEFAULT_CONFIG = osp.join(ROOT, 'configs', 'demo', 'maskrcnn_hrvit_b1_coco_demo.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train Mask R-CNN + HRViT-b1 on the bundled demo data and evaluate it')
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='demo detection config')
    parser.add_argument('--work-dir', default='work_dirs/demo', help='default work_dirs/demo')
    parser.add_argument('--data-root', default='data/demo',
                        help='where the demo data is (generated when missing)')
    parser.add_argument('--num-images', type=int, default=8,
                        help='validation images drawn into predictions.png (default 8)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='score threshold of the drawn predictions (default 0.3)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (bfloat16 autocast without CUDA), as train.py --amp')
    add_runner_args(parser, 'train_cfg.max_epochs=1')
    args = parse_runner_args(parser, argv)
    if args.launcher != 'none':
        parser.error('the demo runs in one process (--launcher none)')
    if args.num_images < 1:
        parser.error(f'--num-images must be >= 1, got {args.num_images}')
    return args


def ensure_demo_data(data_root: str) -> None:
    """Generate the demo data unless all three sets are there."""
    marker = osp.join(data_root, 'coco', 'annotations', 'instances_val2017.json')
    if osp.isfile(marker) and osp.isdir(osp.join(data_root, 'ade')) and osp.isdir(
            osp.join(data_root, 'cityscapes')):
        print(f'demo data: found in {data_root}')
        return
    t0 = time.time()
    make_demo_data(data_root)
    print(f'demo data: generated in {data_root} ({time.time() - t0:.1f} s)')


def draw_predictions(runner, num_images: int, score_thr: float, out_file: str) -> str:
    """Run the trained model on the first val images and tile the drawn predictions."""
    import mmcv
    from mmdet.apis import inference_detector

    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    model.cfg = runner.cfg
    model.eval()
    dataset = runner.val_dataloader.dataset
    visualizer = runner.visualizer
    visualizer.dataset_meta = dataset.metainfo
    tiles = []
    for idx in range(min(num_images, len(dataset))):
        path = dataset.get_data_info(idx)['img_path']
        with torch.no_grad():
            result = inference_detector(model, path)
        image = mmcv.imread(path, channel_order='rgb')
        visualizer.add_datasample(
            osp.basename(path), image, result, draw_gt=False, pred_score_thr=score_thr)
        tiles.append(visualizer.get_image())
    height = max(t.shape[0] for t in tiles)
    width = max(t.shape[1] for t in tiles)
    cols = min(4, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    grid = np.full((rows * height, cols * width, 3), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        grid[r * height:r * height + tile.shape[0], c * width:c * width + tile.shape[1]] = tile
    mmcv.imwrite(grid[..., ::-1], out_file)  # RGB -> BGR for cv2
    return out_file


def main(argv=None):
    args = parse_args(argv)
    t0 = time.time()
    ensure_demo_data(args.data_root)
    options = dict(args.cfg_options or {})
    if osp.normpath(args.data_root) != osp.normpath('data/demo'):
        root = osp.join(args.data_root, 'coco') + '/'
        for split in ('train', 'val', 'test'):
            options[f'{split}_dataloader.dataset.data_root'] = root
        for split in ('val', 'test'):
            options[f'{split}_evaluator.ann_file'] = root + 'annotations/instances_val2017.json'
    try:
        cfg = prepare_train_cfg(args.config, work_dir=args.work_dir, cfg_options=options,
                                amp=args.amp)
        check_data(cfg, ('train_dataloader', 'val_dataloader'))
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'demo.py: error: {e}')
    cfg.train_cfg.val_interval = cfg.train_cfg.max_epochs  # evaluate once, at the end

    allow_mmengine_checkpoints()
    with formatted_config_cache():
        runner = build_runner(cfg)
        runner.train()
    train_s = time.time() - t0
    hub = runner.message_hub
    metrics = {
        key: float(hub.get_scalar(f'val/coco/{key}').current())
        for key in ('bbox_mAP', 'bbox_mAP_50', 'segm_mAP', 'segm_mAP_50')
        if f'val/coco/{key}' in hub.log_scalars
    }
    losses = hub.get_scalar('train/loss').data[0] if 'train/loss' in hub.log_scalars else []
    loss = dict(iterations=len(losses), first=round(float(losses[0]), 4) if len(losses) else None,
                last=round(float(losses[-1]), 4) if len(losses) else None,
                all_finite=bool(np.isfinite(losses).all()))
    png = draw_predictions(runner, args.num_images, args.score_thr,
                           osp.join(cfg.work_dir, 'predictions.png'))
    checkpoint = osp.join(cfg.work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    inferred = None
    if osp.isfile(checkpoint):  # what a user does next: the trained model on their images
        val = cfg.val_dataloader.dataset
        folder = osp.join(val.data_root, val.data_prefix['img'])
        images = sorted(osp.join(folder, f) for f in os.listdir(folder))[:4]
        out_dir = osp.join(cfg.work_dir, 'infer')
        infer(images, osp.join(cfg.work_dir, osp.basename(args.config)), checkpoint, out_dir,
              score_thr=args.score_thr)
        inferred = dict(images=len(images), vis=osp.join(out_dir, 'vis'),
                        preds=osp.join(out_dir, 'preds'))
    summary = dict(
        config=osp.relpath(args.config),
        amp=cfg.optim_wrapper.get('type') if args.amp else None,
        wall_time_s=round(time.time() - t0, 1),
        train_and_eval_s=round(train_s, 1),
        metrics=metrics,
        train_loss=loss,
        checkpoint=checkpoint if osp.isfile(checkpoint) else None,
        log_dir=osp.join(cfg.work_dir, runner.timestamp),
        predictions_png=png,
        infer=inferred)
    with open(osp.join(cfg.work_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    print('\n==== demo summary ====')
    for key, value in summary.items():
        print(f'{key:>18}: {value}')
    if not metrics:
        sys.exit('demo.py: error: no COCO metrics were recorded')
    if not loss['all_finite']:
        sys.exit('demo.py: error: a training loss was NaN or infinite (see the log)')


if __name__ == '__main__':
    main()
