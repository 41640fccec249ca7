"""Test (and evaluate) a checkpoint with an mmdet, mmseg or mmpretrain config.

Usage::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR]
                                           [--cfg-options KEY=VALUE ...] [--launcher ...]

The metrics of the config's ``test_evaluator`` are printed and logged to the work dir.
"""
import argparse
import sys
import warnings

# setuptools' notice about mmengine's use of pkg_resources: noise in front of every message
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

from mmvit_plugins.utils import (  # noqa: E402
    add_runner_args, check_data, parse_runner_args, prepare_test_cfg, run)


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
        '--show-dir',
        help='save painted predictions in this directory (relative to the current one); '
        'the config needs a visualization hook in default_hooks')
    add_runner_args(parser, 'test_dataloader.batch_size=1')
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
            show_dir=args.show_dir)
        check_data(cfg, ('test_dataloader', ))
    except (FileNotFoundError, ValueError) as e:  # bad paths or arguments: one line
        sys.exit(f'test.py: error: {e}')

    run(cfg, 'test')


if __name__ == '__main__':
    main()
