"""Run a trained model on your images: drawn predictions and JSON, one of each per image.

Usage::

    python tools/infer.py INPUTS CONFIG [--weights CKPT] [--out-dir DIR] [--device cpu|cuda]
                                        [--score-thr 0.3] [--batch-size 1]

INPUTS is an image file, a folder (its images, sorted) or a quoted glob (``'data/*.jpg'``).
The config's ``default_scope`` picks the library's own inferencer: mmdet's ``DetInferencer``,
mmseg's ``MMSegInferencer`` or mmpretrain's ``ImageClassificationInferencer``, so the test
pipeline, class names and palette are the ones the config and checkpoint carry. Written under
``--out-dir`` (default ``outputs/``)::

    vis/<image name>      the image with its predictions drawn
    preds/<image stem>.json
        detection:       the instances scoring at least --score-thr: label, class, score,
                         bbox (x1 y1 x2 y2, pixels); and whether masks were predicted
        segmentation:    the map's shape, the classes present with their pixel fractions, and
                         preds/<image stem>.png, the class-index map
        classification:  pred_label, pred_score, pred_class and the top-5

Without ``--weights`` the model keeps its initial weights (a warning says so). Checkpoints that
``tools/train.py`` wrote load with ``torch.load(weights_only=True)``: importing mmvit_plugins
allow-lists mmengine's own classes and nothing else. A ``--weights`` file that is missing, empty,
not a checkpoint, truncated, or pickles anything else is refused in one line before the model
is built.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
import warnings

# setuptools' notice about mmengine's use of pkg_resources: noise in front of every message
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
SCOPES = ('mmdet', 'mmseg', 'mmpretrain')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Run a model (mmdet, mmseg or mmpretrain config) on images; write drawn '
        'predictions and JSON')
    parser.add_argument('inputs', help='an image, a folder of images or a quoted glob')
    parser.add_argument('config', help='the model config file')
    parser.add_argument('--weights', help='checkpoint file (e.g. work_dirs/x/epoch_12.pth)')
    parser.add_argument('--out-dir', default='outputs', help='output folder (default: outputs)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N (default: cpu)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detection: keep boxes scoring at least this (default: 0.3)')
    parser.add_argument('--batch-size', type=int, default=1, help='images per forward pass')
    return parser.parse_args(argv)


def list_images(inputs: str) -> list:
    """The image files INPUTS names (a file, a folder or a glob), sorted."""
    if osp.isdir(inputs):
        files = [osp.join(inputs, f) for f in os.listdir(inputs)]
    elif osp.isfile(inputs):
        return [inputs]
    else:
        files = glob.glob(inputs, recursive=True)
        if not files:
            raise FileNotFoundError(f'no such file, folder or glob match: {inputs}')
    images = sorted(f for f in files if osp.isfile(f) and f.lower().endswith(IMAGE_SUFFIXES))
    if not images:
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in {inputs}')
    return images


def check_args(args) -> None:
    if not 0 <= args.score_thr <= 1:
        raise ValueError(f'--score-thr must be in [0, 1], got {args.score_thr}')
    if args.batch_size < 1:
        raise ValueError(f'--batch-size must be >= 1, got {args.batch_size}')
    if args.weights is not None:  # before anything is built: one line for a bad file
        from mmvit_plugins.utils.checkpoint import check_checkpoint_file
        check_checkpoint_file(args.weights)
    if args.device.startswith('cuda'):
        import torch
        if not torch.cuda.is_available():
            raise ValueError(f'--device {args.device}: no CUDA device is available')
    elif args.device != 'cpu':
        raise ValueError(f'--device must be cpu, cuda or cuda:N, got {args.device!r}')


def check_weights(model, weights: str) -> None:
    """A checkpoint of another model loads "successfully" with ``strict=False`` (a logged
    warning, then random weights or a crash at inference); here it is an error: the checkpoint's
    state dict must hold exactly the model's weights, with the model's shapes."""
    from mmvit_plugins.utils.checkpoint import is_local_checkpoint, load_checkpoint_file
    if is_local_checkpoint(weights):
        ckpt = load_checkpoint_file(weights, map_location='cpu')
    else:  # a URL: mmengine downloads it (once, into its cache)
        from mmengine.runner import CheckpointLoader
        ckpt = CheckpointLoader.load_checkpoint(weights, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state:
        raise ValueError(f'{weights} holds no state dict')
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in state if k in own and getattr(state[k], 'shape', None) != own[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} of the model's {len(own)} weights are not in it "
                        f'(e.g. {missing[0]})')
    if unexpected:
        problems.append(f'{len(unexpected)} of its weights are not in the model '
                        f'(e.g. {unexpected[0]})')
    if wrong:
        k = wrong[0]
        problems.append(f'{len(wrong)} weights have other shapes (e.g. {k} '
                        f'{tuple(state[k].shape)} in the checkpoint, {tuple(own[k].shape)} in '
                        'the model)')
    if problems:
        raise ValueError(f'{weights} does not fit the config: ' + '; '.join(problems))


def build_inferencer(scope: str, config: str, weights, device: str):
    if scope == 'mmdet':
        from mmdet.apis import DetInferencer
        return DetInferencer(model=config, weights=weights, device=device, show_progress=False)
    if scope == 'mmseg':
        from mmseg.apis import MMSegInferencer
        return MMSegInferencer(model=config, weights=weights, device=device)
    from mmengine.registry import DefaultScope
    from mmpretrain.apis import ImageClassificationInferencer
    # unlike the other two, it builds its pipeline in whatever scope is current
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return ImageClassificationInferencer(model=config, pretrained=weights or False,
                                             device=device)


def _stem(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def write_detections(inferencer, images, args) -> list:
    results = inferencer(images, batch_size=args.batch_size, out_dir=args.out_dir,
                         pred_score_thr=args.score_thr, no_save_pred=True,
                         return_datasamples=True)
    outputs = []
    for image, sample in zip(images, results['predictions']):
        inst = sample.pred_instances
        keep = inst.scores >= args.score_thr
        classes = inferencer.model.dataset_meta.get('classes') or ()
        instances = [
            dict(label=label, **{'class': classes[label]} if label < len(classes) else {},
                 score=round(score, 5), bbox=[round(c, 2) for c in bbox])
            for label, score, bbox in zip(inst.labels[keep].tolist(),
                                          inst.scores[keep].tolist(),
                                          inst.bboxes[keep].tolist())]
        outputs.append(dict(image=image, score_thr=args.score_thr, masks='masks' in inst,
                            instances=instances))
    return outputs


def write_segmentation(inferencer, images, args) -> list:
    import numpy as np
    from PIL import Image
    results = inferencer(images, batch_size=args.batch_size, out_dir=args.out_dir,
                         img_out_dir='vis', pred_out_dir='', return_datasamples=True)
    samples = results if isinstance(results, list) else [results]
    classes = inferencer.model.dataset_meta.get('classes') or ()
    outputs = []
    for image, sample in zip(images, samples):
        seg = sample.pred_sem_seg.data[0].cpu().numpy()
        png = osp.join(args.out_dir, 'preds', _stem(image) + '.png')
        Image.fromarray(seg.astype(np.uint16 if seg.max() > 255 else np.uint8)).save(png)
        ids, counts = np.unique(seg, return_counts=True)
        outputs.append(dict(
            image=image, shape=list(seg.shape), png=png,
            classes={(classes[i] if i < len(classes) else str(i)): round(c / seg.size, 5)
                     for i, c in zip(ids.tolist(), counts.tolist())}))
    return outputs


def write_classification(inferencer, images, args) -> list:
    results = inferencer(images, batch_size=args.batch_size,
                         show_dir=osp.join(args.out_dir, 'vis'))
    outputs = []
    for image, r in zip(images, results):
        scores = r['pred_scores']
        top = scores.argsort()[::-1][:5].tolist()
        classes = inferencer.classes or ()
        outputs.append(dict(
            image=image, pred_label=int(r['pred_label']), pred_score=float(r['pred_score']),
            pred_class=r.get('pred_class'),
            top5=[dict(label=i, score=float(scores[i]),
                       **{'class': classes[i]} if i < len(classes) else {}) for i in top]))
    return outputs


def infer(images: list, config: str, weights=None, out_dir='outputs', device='cpu',
          score_thr=0.3, batch_size=1) -> list:
    """Run ``config`` (+ ``weights``) on ``images``; write ``out_dir/vis`` and ``out_dir/preds``.

    Returns:
        list[dict]: the JSON written for each image.

    Raises:
        FileNotFoundError, ValueError: a missing file, a bad argument, or weights that do not
        fit the config.
    """
    args = argparse.Namespace(weights=weights, out_dir=out_dir, device=device,
                              score_thr=score_thr, batch_size=batch_size)
    check_args(args)
    from mmvit_plugins.utils import load_config
    cfg = load_config(config)  # imports mmvit_plugins through custom_imports
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ValueError(f'{config}: default_scope must be one of {SCOPES} to pick an '
                         f'inferencer, got {scope!r}')
    inferencer = build_inferencer(scope, cfg.filename, weights, device)
    if weights is not None:
        check_weights(inferencer.model, weights)
    else:
        print('infer.py: warning: no --weights, the model has its initial weights',
              file=sys.stderr)
    os.makedirs(osp.join(out_dir, 'preds'), exist_ok=True)
    write = dict(mmdet=write_detections, mmseg=write_segmentation,
                 mmpretrain=write_classification)[scope]
    outputs = write(inferencer, images, args)
    for out in outputs:
        with open(osp.join(out_dir, 'preds', _stem(out['image']) + '.json'), 'w') as f:
            json.dump(out, f, indent=1)
    return outputs


def main(argv=None):
    args = parse_args(argv)
    try:
        images = list_images(args.inputs)
        outputs = infer(images, args.config, args.weights, args.out_dir, args.device,
                        args.score_thr, args.batch_size)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'infer.py: error: {e}')
    vis = sorted(glob.glob(osp.join(args.out_dir, 'vis', '*')))
    print(f'infer.py: {len(images)} image(s) -> {len(vis)} drawn in '
          f'{osp.join(args.out_dir, "vis")}, JSON in {osp.join(args.out_dir, "preds")}')
    return outputs


if __name__ == '__main__':
    main()
