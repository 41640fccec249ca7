"""Train a model from an mmdet, mmseg or mmpretrain config.

Usage::

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--resume [CKPT]]
                                 [--cfg-options KEY=VALUE ...] [--launcher LAUNCHER]

The config's ``default_scope`` decides which library builds the model, datasets and hooks.
Without CUDA, ``--amp`` trains with bfloat16 autocast on the CPU and ``--launcher pytorch``
uses the gloo backend (see :mod:`mmvit_plugins.utils.runner`).
"""
import argparse
import sys
import warnings

# setuptools' notice about mmengine's use of pkg_resources: noise in front of every message
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

from mmvit_plugins.utils import (  # noqa: E402
    CheckpointError, add_runner_args, check_data, parse_runner_args, prepare_train_cfg, run)


def parse_args(argv=None):
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; defaults to ``sys.argv[1:]``.

    Returns:
        argparse.Namespace: The arguments.
    """
    parser = argparse.ArgumentParser(description='Train a model (mmdet, mmseg or mmpretrain)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision: CUDA AMP, or bfloat16 autocast without CUDA')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint; without a path, from the latest checkpoint '
        'in the work dir')
    add_runner_args(parser, 'train_cfg.max_epochs=2 optim_wrapper.optimizer.lr=0.01')
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = prepare_train_cfg(
            args.config,
            work_dir=args.work_dir,
            cfg_options=args.cfg_options,
            amp=args.amp,
            resume=args.resume,
            launcher=args.launcher)
        check_data(cfg, ('train_dataloader', 'val_dataloader'))
    except (FileNotFoundError, ValueError) as e:  # bad paths or arguments: one line
        sys.exit(f'train.py: error: {e}')

    try:
        run(cfg, 'train')
    except CheckpointError as e:  # from our backbones' init_weights (e.g. pretrained=PATH)
        sys.exit(f'train.py: error: {e}')


if __name__ == '__main__':
    main()
