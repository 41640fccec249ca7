"""Benchmark the backbones: images/s and peak memory, inference and training steps.

For every backbone variant, input size, batch, dtype and ops implementation asked for, it times:

* ``infer``: one forward under ``torch.inference_mode`` (eval mode);
* ``train``: forward + backward of the mean of the outputs' squares (train mode, all
  parameters trainable), with gradients zeroed before each step; no optimiser step.

``--impl compiled`` runs our compiled ops (C++ on the CPU), ``--impl reference`` their
pure-PyTorch references (``mmvit_plugins.ops.reference_ops``); with both, a second table gives
the reference / compiled ratio of median times and of peak memory. ``--graph eager
torch.compile`` times the model as it is and ``torch.compile(model)`` (inductor), and prints
the eager / compiled ratio per backbone. ``--peers`` adds each of our backbones' counterpart from
the OpenMMLab libraries where there is one (``PEERS``: ELSA-Swin-T against mmpretrain's
``SwinTransformer`` tiny, the architecture ELSA-Swin modifies, both returning all four stages)
and times each pair again interleaved (``--rounds`` rounds of one step each, alternating), giving
ours / peer on the minima and the medians. ``--dtype bf16`` runs under
``torch.autocast`` (bfloat16). Timing and memory as ``mmvit_plugins.utils.benchmark`` says
(medians after warm-up; peak resident-set growth on the CPU, ``max_memory_allocated`` growth
on CUDA).

Usage (the ELSA-Swin-T case of issue 4; on 2 cores one configuration takes about a minute)::

    python tools/analysis/benchmark_models.py --models ELSASwin-tiny --size 224 --batch 8 \\
        --modes train --impl compiled reference

ELSA-Swin-T against Swin-T (issue 17)::

    python tools/analysis/benchmark_models.py --models ELSASwin-tiny --peers --size 224 \\
        --batch 8 --rounds 11
"""
import argparse
import itertools
import logging
import os
import sys
from contextlib import nullcontext

import torch
from mmengine.logging import MMLogger

from mmvit_plugins import ops
from mmvit_plugins.registry import MODELS
from mmvit_plugins.utils.benchmark import (interleaved, machine_info, peak_growth, time_step,
                                           write_json)

# every backbone variant that exists: 'Type-arch' (registry name and arch_zoo key). Of these
# only ELSASwin calls our compiled ops, so only its `--impl reference` differs from `compiled`
# (MAFormer does with local_attn='neighborhood', not its default).
MODELS_ALL = ['HRViT-b1', 'HRViT-b2', 'HRViT-b3', 'ELSASwin-tiny', 'ELSASwin-small',
              'ELSASwin-base', 'CloFormer-xxs', 'CloFormer-xs', 'CloFormer-s', 'Container-light',
              'Container-full', 'MAFormer-tiny', 'MAFormer-small', 'MAFormer-base',
              'MAFormer-large']


# Our backbone -> the OpenMMLab library model it is measured against (same stage outputs;
# pad_small_map only matters below 224 px, where Swin's last maps are smaller than its window).
PEERS = {
    'ELSASwin-tiny': ('mmpretrain.SwinTransformer-tiny',
                      dict(type='mmpretrain.SwinTransformer', arch='tiny',
                           out_indices=(0, 1, 2, 3), pad_small_map=True)),
}
PEER_NAMES = {peer: cfg for peer, cfg in PEERS.values()}


def build(name: str) -> torch.nn.Module:
    if name in PEER_NAMES:
        import mmpretrain.models  # noqa: F401
        from mmengine.registry import DefaultScope
        from mmpretrain.registry import MODELS as PRETRAIN_MODELS
        cfg = dict(PEER_NAMES[name])
        cfg['type'] = cfg['type'].split('.', 1)[1]
        # a default scope left by a runner in this process (mmdet, mmseg) would otherwise
        # resolve the name in that library (mmdet's SwinTransformer takes no arch)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            model = PRETRAIN_MODELS.build(cfg)
    elif name in MODELS_ALL:
        type_, arch = name.split('-', 1)
        model = MODELS.build(dict(type=type_, arch=arch))
    else:
        raise ValueError(f'unknown model {name!r}; choose from {MODELS_ALL}')
    # mmengine logs every parameter's initialisation at INFO (hundreds of lines for Swin-T)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model


def make_step(model, mode, dtype, batch, size, device):
    """One inference or training step of ``model`` on a random batch, as a callable."""
    x = torch.randn(batch, 3, size, size, device=device)
    autocast = torch.autocast(device, dtype=torch.bfloat16) if dtype == 'bf16' \
        else nullcontext()
    model.train(mode == 'train')

    if mode == 'infer':
        def step():
            with torch.inference_mode(), autocast:
                return model(x)
    else:
        def step():
            model.zero_grad(set_to_none=True)
            with autocast:
                outs = model(x)
            loss = sum(o.float().pow(2).mean() for o in outs)
            loss.backward()
            return loss
    return step


def run_case(model, mode, impl, dtype, batch, size, device, timing):
    step = make_step(model, mode, dtype, batch, size, device)
    with ops.reference_ops(impl == 'reference'):
        stats = time_step(step, device=device, **timing)
        model.zero_grad(set_to_none=True)
        peak = peak_growth(step, device)
    model.zero_grad(set_to_none=True)
    stats['images_per_s'] = batch / stats['median_ms'] * 1e3
    stats['peak_mb'] = None if peak is None else peak / 2**20
    return stats


def print_tables(results, impls):
    head = (f'{"model":31s} {"mode":5s} {"dtype":5s} {"size":>4s} {"batch":>5s} '
            f'{"impl":9s} {"graph":13s} {"ms (p10-p90)":>24s} {"img/s":>8s} {"peak MB":>8s}')
    print(head)
    print('-' * len(head))
    for r in results:
        mem = '     n/a' if r['peak_mb'] is None else f'{r["peak_mb"]:8.0f}'
        ms = f'{r["median_ms"]:.1f} ({r["p10_ms"]:.1f}-{r["p90_ms"]:.1f})'
        print(f'{r["model"]:31s} {r["mode"]:5s} {r["dtype"]:5s} {r["size"]:4d} {r["batch"]:5d} '
              f'{r["impl"]:9s} {r["graph"]:13s} {ms:>24s} {r["images_per_s"]:8.2f} {mem}')
    rows = []
    if set(impls) == {'compiled', 'reference'}:
        rows += ratio_table(results, 'impl', 'reference', 'compiled',
                            'reference / compiled (time ratio > 1: the compiled op is faster; '
                            'memory ratio > 1: it needs less):')
    if set(r['graph'] for r in results) == {'eager', 'torch.compile'}:
        rows += ratio_table(results, 'graph', 'eager', 'torch.compile',
                            'eager / torch.compile (time ratio > 1: the compiled model is '
                            'faster; compilation time not included):')
    return rows


def ratio_table(results, field, a, b, title):
    """Print and return the ``a`` / ``b`` ratios of median time and peak memory of the results
    that differ only in ``field``."""
    key = tuple(k for k in ('model', 'mode', 'dtype', 'size', 'batch', 'impl', 'graph')
                if k != field)
    by_key = {}
    for r in results:
        by_key.setdefault(tuple(r[k] for k in key), {})[r[field]] = r
    print('\n' + title)
    rows = []
    for k, pair in by_key.items():
        if a not in pair or b not in pair:
            continue
        ra, rb = pair[a], pair[b]
        row = dict(zip(key, k), ratio_of=f'{a}/{b}', time_ratio=ra['median_ms'] / rb['median_ms'])
        if rb['peak_mb'] and ra['peak_mb'] is not None:
            row['memory_ratio'] = ra['peak_mb'] / rb['peak_mb']
        rows.append(row)
        mem = f', peak memory {ra["peak_mb"]:.0f} / {rb["peak_mb"]:.0f} MB = ' \
              f'{row["memory_ratio"]:.2f}x' if 'memory_ratio' in row else ''
        print(f'  {" ".join(str(v) for v in k[:3])} {k[3]}px batch {k[4]} {" ".join(k[5:])}: '
              f'median {ra["median_ms"]:.1f} / {rb["median_ms"]:.1f} ms = '
              f'{row["time_ratio"]:.2f}x{mem}')
    return rows


def interleaved_peers(pairs, modes, dtypes, sizes, batches, device, rounds, warmup):
    """Ours and its peer, one step each per round, alternating; min/median ms and ours / peer."""
    rows = []
    for (name, model), (peer, peer_model) in pairs:
        for size, mode, dtype in itertools.product(sizes, modes, dtypes):
            steps = {m: make_step(mod, mode, dtype, batches[size], size, device)
                     for m, mod in ((name, model), (peer, peer_model))}
            stats = interleaved(steps, rounds, warmup, device)
            for mod in (model, peer_model):
                mod.zero_grad(set_to_none=True)
            best = {m: st['min_ms'] for m, st in stats.items()}
            med = {m: st['median_ms'] for m, st in stats.items()}
            rows.append(dict(model=name, peer=peer, mode=mode, dtype=dtype, size=size,
                             batch=batches[size], rounds=rounds, min_ms=best[name],
                             median_ms=med[name], peer_min_ms=best[peer],
                             peer_median_ms=med[peer], ratio_min=best[name] / best[peer],
                             ratio_median=med[name] / med[peer]))
    if rows:
        print(f'\nours / peer, interleaved ({rounds} rounds of one step each; < 1: ours is '
              'faster):')
        for r in rows:
            print(f'  {r["model"]} vs {r["peer"]} {r["mode"]} {r["dtype"]} {r["size"]}px '
                  f'batch {r["batch"]}: min {r["min_ms"]:.1f} / {r["peer_min_ms"]:.1f} ms = '
                  f'{r["ratio_min"]:.2f}x, median {r["median_ms"]:.1f} / '
                  f'{r["peer_median_ms"]:.1f} ms = {r["ratio_median"]:.2f}x')
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=MODELS_ALL, metavar='NAME',
                        help=f'Type-arch names (default: all of {MODELS_ALL})')
    parser.add_argument('--size', type=int, nargs='+', default=[224], help='square input sides')
    parser.add_argument('--batch', type=int, nargs='+', default=[8],
                        help='one batch size, or one per --size')
    parser.add_argument('--modes', nargs='+', choices=['infer', 'train'],
                        default=['infer', 'train'])
    parser.add_argument('--dtype', nargs='+', choices=['fp32', 'bf16'], default=['fp32'],
                        help='bf16: under torch.autocast(dtype=torch.bfloat16)')
    parser.add_argument('--impl', nargs='+', choices=['compiled', 'reference'],
                        default=['compiled'], help='our compiled ops or their references')
    parser.add_argument('--graph', nargs='+', choices=['eager', 'torch.compile'],
                        default=['eager'],
                        help='the model as it is, or torch.compile(model) (inductor; the '
                        'compilation happens in the warm-up, outside the timed runs)')
    parser.add_argument('--peers', action='store_true',
                        help='also time the OpenMMLab counterpart of each model that has one '
                        f'({", ".join(f"{a}: {b}" for a, (b, _) in PEERS.items())}), and the '
                        'pair interleaved')
    parser.add_argument('--rounds', type=int, default=11,
                        help='rounds of the interleaved ours-vs-peer timing (with --peers)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--min-iters', type=int, default=5)
    parser.add_argument('--min-time', type=float, default=2.0, help='seconds per measurement')
    parser.add_argument('--out', default='work_dirs/benchmark_models.json', help='JSON output')
    args = parser.parse_args(argv)
    for name in args.models:
        if name not in MODELS_ALL:
            parser.error(f'unknown model {name!r}; choose from {MODELS_ALL}')
    if len(args.batch) not in (1, len(args.size)):
        parser.error('--batch takes one value or one per --size')
    if any(b < 1 for b in args.batch) or any(s < 32 for s in args.size):
        parser.error('--batch must be >= 1 and every --size >= 32')
    batches = dict(zip(args.size, args.batch * len(args.size) if len(args.batch) == 1
                       else args.batch))
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    if args.threads:
        torch.set_num_threads(args.threads)
    if 'compiled' in args.impl and not ops.HAS_EXT:
        print('WARNING: the compiled extension is not loaded; "compiled" is the reference.')
    timing = dict(warmup=args.warmup, min_iters=args.min_iters, min_time=args.min_time)
    info = machine_info(','.join(args.dtype))
    where = info.get('gpu', info['cpu']) if args.device == 'cuda' else info['cpu']
    print(f'{args.device}: {where}, {info["logical_cores"]} logical cores, torch threads '
          f'{info["torch_threads"]}, load avg {info["load_avg_start"]}; torch {info["torch"]}\n')

    names = list(args.models)
    if args.peers:
        names += [PEERS[n][0] for n in args.models if n in PEERS]
    results, failures, built = [], [], {}
    for name in names:
        model = build(name).to(args.device)
        graphs = {g: torch.compile(model) if g == 'torch.compile' else model for g in args.graph}
        for size in args.size:
            for mode in args.modes:
                for dtype in args.dtype:
                    impls = args.impl if name in MODELS_ALL else ['-']  # peers: no ops of ours
                    for impl, graph in itertools.product(impls, args.graph):
                        case = f'{name} {mode} {dtype} {size} {impl} {graph}'
                        try:
                            stats = run_case(graphs[graph], mode, impl, dtype, batches[size],
                                             size, args.device, timing)
                        except Exception as e:  # noqa: BLE001  (the run goes on)
                            failures.append(f'{case}: {type(e).__name__}: {str(e)[:500]}')
                            print(f'  FAILED: {failures[-1]}', file=sys.stderr)
                            model.zero_grad(set_to_none=True)
                            if args.device == 'cuda':
                                torch.cuda.empty_cache()
                            continue
                        results.append(dict(model=name, mode=mode, dtype=dtype, size=size,
                                            batch=batches[size], impl=impl, graph=graph,
                                            **stats))
                        print(f'  done: {case}', file=sys.stderr)
                if args.out:  # what is measured so far survives a run cut short
                    write_json(args.out, dict(machine=info, command=sys.argv, results=results,
                                              failures=failures, partial=True))
        if args.peers and (name in PEERS or name in PEER_NAMES):
            built[name] = model  # kept for the interleaved pairs
        del model, graphs
    rows = print_tables(results, args.impl)
    peer_rows = []
    if args.peers:
        pairs = [((n, built[n]), (PEERS[n][0], built[PEERS[n][0]])) for n in args.models
                 if n in PEERS and n in built and PEERS[n][0] in built]
        try:
            peer_rows = interleaved_peers(pairs, args.modes, args.dtype, args.size, batches,
                                          args.device, args.rounds, args.warmup)
        except Exception as e:  # noqa: BLE001  (the tables above still get written)
            failures.append(f'interleaved peers: {type(e).__name__}: {str(e)[:500]}')
            print(f'  FAILED: {failures[-1]}', file=sys.stderr)
    info['load_avg_end'] = os.getloadavg()
    if args.out:
        write_json(args.out, dict(machine=info, command=sys.argv, results=results, ratios=rows,
                                  peers=peer_rows, failures=failures))
        print(f'\nwrote {args.out}')
    if failures:
        print(f'\n{len(failures)} case(s) FAILED:\n  ' + '\n  '.join(failures))
        sys.exit(1)


if __name__ == '__main__':
    main()
