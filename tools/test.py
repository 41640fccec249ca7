"""Test (and evaluate) a checkpoint with an mmdet, mmseg or mmpretrain config.

Usage::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--tta]
                                           [--out FILE.pkl] [--cfg-options KEY=VALUE ...]
                                           [--launcher ...]

The metrics of the config's ``test_evaluator`` are printed and logged to the work dir. The
flags mean what they mean in mmdet's, mmseg's and mmpretrain's own ``tools/test.py``:

``--tta``
    Test-time augmentation with the config's ``tta_model`` and ``tta_pipeline``: the model is
    wrapped in ``tta_model`` (mmdet ``DetTTAModel``, mmseg ``SegTTAModel``, mmpretrain
    ``AverageClsScoreTTA``), which merges its predictions on the views ``tta_pipeline``'s
    ``TestTimeAug`` makes of each image. mmdet and mmpretrain configs without these settings
    get their library's defaults (the test pipeline plus a horizontal flip; mmdet: NMS at IoU
    0.5, 100 boxes), with a warning; an mmseg config without them is an error. The ELSA-Swin
    UperNet configs test at the papers' multi-scale + flip protocol
    (``configs/_base_/ade20k_ms_flip_tta.py``: (2048, 512) x [0.5, 0.75, 1.0, 1.25, 1.5, 1.75],
    each also flipped); the other segmentation configs inherit mmseg's own ADE20K / Cityscapes
    TTA. mmdet's ``DetTTAModel`` merges boxes only: ``--tta`` on a model with a mask head
    (Mask R-CNN, Cascade Mask R-CNN) is refused.

``--out FILE.pkl``
    Also dump the raw predictions (one dict per image) to a pickle file: mmdet configs through
    mmdet's ``DumpDetResults`` (masks RLE-encoded), mmseg configs through
    ``DumpSegResults`` (mmengine's ``DumpResults`` without the per-class ``seg_logits``),
    mmpretrain configs through mmengine's ``DumpResults``. The suffix must be ``.pkl`` or
    ``.pickle``; for an mmseg config a path without suffix is, as in mmseg's tool, a directory
    where the predictions are saved as png files (metrics are still computed). Read a dump
    with ``mmengine.load(FILE)``.

Test-server output (no metrics, no annotations needed) goes through ``--cfg-options``:

* COCO (mmdet ``CocoMetric``): ``test_evaluator.format_only=True
  test_evaluator.outfile_prefix=DIR/results`` writes ``DIR/results.bbox.json`` (and
  ``.segm.json`` for instance segmentation). For test-dev, point the data set and the metric at
  the image list: ``test_dataloader.dataset.ann_file=annotations/image_info_test-dev2017.json
  test_dataloader.dataset.data_prefix.img=test2017/
  test_evaluator.ann_file=data/coco/annotations/image_info_test-dev2017.json``.
* ADE20K / Cityscapes (mmseg ``IoUMetric``): ``test_evaluator.format_only=True
  test_evaluator.output_dir=DIR`` writes one png per image into ``DIR`` (ADE20K ids 1-150:
  the reduced zero label is added back; Cityscapes train ids; for the Cityscapes server's label
  ids use ``test_evaluator.type=CityscapesMetric``, which needs ``cityscapesscripts``). Point
  the data at the test images with ``test_dataloader.dataset.data_prefix.img_path=...``.

With ``format_only`` the annotation loaders are left out of the test pipeline (and mmseg's
``seg_map_path`` out of the data set), and a missing ``outfile_prefix`` / ``output_dir`` is an
error. Bad arguments end in a one-line ``test.py: error: ...``.
"""
import argparse
import sys
import warnings

# setuptools' notice about mmengine's use of pkg_resources: noise in front of every message
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

from mmvit_plugins.utils import (  # noqa: E402
    CheckpointError, add_runner_args, check_data, parse_runner_args, prepare_test_cfg, run)


def parse_args(argv=None):
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; defaults to ``sys.argv[1:]``.

    Returns:
        argparse.Namespace: The arguments.
    """
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a model (mmdet, mmseg or mmpretrain)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the dir to save the log and metrics (default: ./work_dirs/<config name>)')
    parser.add_argument(
        '--out',
        help='also dump the raw predictions to this .pkl/.pickle file (mmseg configs: a path '
        'without suffix is a directory for png predictions, as in mmseg)')
    parser.add_argument(
        '--show-dir',
        help='save painted predictions in this directory (relative to the current one); '
        'the config needs a visualization hook in default_hooks')
    parser.add_argument(
        '--tta',
        action='store_true',
        help="test-time augmentation with the config's tta_model and tta_pipeline")
    add_runner_args(parser, 'test_dataloader.batch_size=1 test_evaluator.format_only=True')
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = prepare_test_cfg(
            args.config,
            args.checkpoint,
            work_dir=args.work_dir,
            cfg_options=args.cfg_options,
            launcher=args.launcher,
            show_dir=args.show_dir,
            tta=args.tta,
            out=args.out)
        check_data(cfg, ('test_dataloader', ))
    except (FileNotFoundError, ValueError) as e:  # bad paths or arguments: one line
        sys.exit(f'test.py: error: {e}')

    try:
        run(cfg, 'test')
    except CheckpointError as e:  # a checkpoint the checks above could not see
        sys.exit(f'test.py: error: {e}')


if __name__ == '__main__':
    main()
