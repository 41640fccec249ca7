"""Profile training iterations of a config with ``torch.profiler``: where one iteration goes.

It builds the runner as ``tools/train.py`` does (the same config preparation), its train
dataloader and optimiser wrapper, runs ``--warmup`` iterations, then profiles ``--iters``
iterations of ``model.train_step`` (forward, losses, backward, optimiser step; data loading
included, as in training). It prints:

* the wall time per iteration and the share of each top-level part of the model (the
  children of the model, e.g. ``backbone``, ``neck``, ``rpn_head``, ``roi_head``: their
  ``forward`` / ``loss`` / ``loss_and_predict`` calls, i.e. forward passes and losses, as
  ``torch.profiler`` ranges ``## <name>``) and of the rest (backward and optimiser step);
* the ``torch.profiler`` operator table, sorted by self CPU time (``--row-limit`` rows);
* optionally a Chrome trace (``--trace FILE.json``).

Usage::

    python tools/analysis/profile_train.py configs/demo/maskrcnn_hrvit_b1_coco_demo.py \\
        [--iters 5] [--warmup 2] [--row-limit 30] [--trace trace.json] [--cfg-options K=V ...]
"""
import argparse
import os.path as osp
import sys
import tempfile
import time
import warnings

warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402

from mmvit_plugins import ops  # noqa: E402
from mmvit_plugins.utils import prepare_train_cfg  # noqa: E402
from mmvit_plugins.utils.runner import (  # noqa: E402
    allow_mmengine_checkpoints, build_runner, formatted_config_cache)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--iters', type=int, default=5, help='profiled iterations')
    parser.add_argument('--warmup', type=int, default=2, help='iterations before profiling')
    parser.add_argument('--row-limit', type=int, default=30, help='rows of the operator table')
    parser.add_argument('--trace', help='write a Chrome trace of the profiled iterations')
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='config overrides, as in tools/train.py')
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or args.row_limit < 1:
        parser.error('--iters and --row-limit must be >= 1 and --warmup >= 0')
    if not osp.isfile(args.config):
        parser.error(f'config not found: {args.config}')
    return args


def _parse_options(items):
    from mmengine.config import DictAction
    ns = argparse.Namespace()
    DictAction(option_strings=[], dest='opts')(None, ns, items)
    return ns.opts


ENTRY_POINTS = ('forward', 'loss', 'loss_and_predict', 'predict')


def label_children(model):
    """Wrap the entry points of every child of ``model`` in a ``## <name>`` profiler range (only
    the outermost call of each child, e.g. not ``forward`` again inside ``loss``)."""
    for name, child in model.named_children():
        depth = [0]

        def wrap(method, label=f'## {name}', depth=depth):
            def labelled(*args, **kwargs):
                if depth[0]:
                    return method(*args, **kwargs)
                depth[0] += 1
                try:
                    with record_function(label):
                        return method(*args, **kwargs)
                finally:
                    depth[0] -= 1
            return labelled

        for entry in ENTRY_POINTS:
            if callable(getattr(child, entry, None)):
                setattr(child, entry, wrap(getattr(child, entry)))


def ranges(prof):
    """Total CPU time (ms) of each ``## ...`` range in the profile."""
    totals = {}
    for evt in prof.key_averages():
        if evt.key.startswith('## '):
            totals[evt.key[3:]] = evt.cpu_time_total / 1e3
    return totals


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    allow_mmengine_checkpoints()
    options = _parse_options(args.cfg_options) if args.cfg_options else None
    with tempfile.TemporaryDirectory() as work_dir:
        cfg = prepare_train_cfg(args.config, work_dir=work_dir, cfg_options=options)
        cfg.log_level = 'WARNING'  # not the environment and config dumps of a training run
        with formatted_config_cache():
            runner = build_runner(cfg)
        loader = runner.build_dataloader(cfg.train_dataloader)
        optim = runner.build_optim_wrapper(cfg.optim_wrapper)
        model = runner.model
        model.train()
        label_children(model)
        batches = iter(loader)

        def step():
            nonlocal batches
            try:
                data = next(batches)
            except StopIteration:
                batches = iter(loader)
                data = next(batches)
            with record_function('## train_step'):
                return model.train_step(data, optim)

        for _ in range(args.warmup):
            step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            for _ in range(args.iters):
                step()
            wall = (time.perf_counter() - start) / args.iters * 1e3
    totals = ranges(prof)
    train = totals.pop('train_step', None)
    print(f'{args.config}: {args.iters} iterations after {args.warmup} warm-up, '
          f'{torch.get_num_threads()} threads, CPU kernels {ops.cpu_isa()}; '
          f'{wall:.0f} ms per iteration (wall, under the profiler)\n')
    print('forward and losses of each part of the model, per iteration (the rest of '
          'train_step: backward, optimiser step):')
    if train:
        per_iter = train / args.iters
        parts = sum(totals.values()) / args.iters
        for name, ms in sorted(totals.items(), key=lambda kv: -kv[1]):
            print(f'  {name:28s} {ms / args.iters:9.1f} ms  {ms / train:6.1%}')
        print(f'  {"rest (backward, optimiser)":28s} {per_iter - parts:9.1f} ms  '
              f'{1 - parts / per_iter:6.1%}')
        print(f'  {"train_step":28s} {per_iter:9.1f} ms')
    print()
    print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=args.row_limit))
    if args.trace:
        prof.export_chrome_trace(args.trace)
        print(f'wrote {args.trace}')


if __name__ == '__main__':
    sys.exit(main())
