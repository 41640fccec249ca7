"""Benchmark the compiled sliding-window ops against their pure-PyTorch references.

For every case it times forward (under ``torch.inference_mode``) and forward+backward of:

* ``compiled``: our op (``mmvit_plugins.ops``, C++ on the CPU);
* ``reference``: the eager pure-PyTorch reference (ELSA: ``F.unfold``; NA: gather + einsum);
* ``reference+compile``: the same reference under ``torch.compile`` (NA cases by default);
* ``wsa-sdpa`` (NA cases whose map divides into k x k windows): Swin window attention through
  ``F.scaled_dot_product_attention``, the same-FLOPs dense yardstick.

Times are medians (with p10/p90) over at least ``--min-iters`` iterations and ``--min-time``
seconds after warm-up. Peak memory is the growth of the process's peak resident set over one
iteration after warm-up (freed heap returned first with ``malloc_trim``, the high-water mark
reset through ``/proc/self/clear_refs``); it includes outputs and gradients. Before timing,
every implementation's output is checked against the reference on the benchmark inputs.

Shapes follow ../shared/BENCHMARKS.md: the CPU targets (ELSA-Swin-T stage 1 at 224:
B=8, C=96, heads=3, 56x56, k=7; NA: B=2, heads=4, 56x56, d=32, k=7) by default, and with
``--sweep`` more ELSA-Swin-T stages, kernel sizes, a dilation and a non-square map.

On CUDA (``--device cuda``) times come from CUDA events, peak memory from
``max_memory_allocated``, and every row also gives the achieved bandwidth: the compulsory bytes
(inputs and output; backward: output gradient in, inputs again, their gradients out) over the
median time, as a fraction of a measured device-to-device copy.

Usage::

    python tools/analysis/benchmark_ops.py [--sweep] [--quick] [--device cpu|cuda]
        [--dtype fp32|fp16|bf16] [--out FILE.json]
"""
import argparse
import json
import os
import os.path as osp
import sys

import torch
import torch.nn.functional as F

from mmvit_plugins import ops
from mmvit_plugins.utils.benchmark import machine_info, peak_growth, time_step

# ----------------------------------------------------------------------------- cases

TARGETS = [
    dict(op='elsa', name='ELSA-Swin-T S1@224', B=8, C=96, G=3, H=56, W=56, k=7, dil=1),
    dict(op='na', name='NA 56x56 h4 d32', B=2, heads=4, H=56, W=56, d=32, k=7, dil=1),
]
SWEEP = [
    dict(op='elsa', name='ELSA-Swin-T S2@224', B=8, C=192, G=6, H=28, W=28, k=7, dil=1),
    dict(op='elsa', name='ELSA-Swin-T S3@224', B=8, C=384, G=12, H=14, W=14, k=7, dil=1),
    dict(op='elsa', name='ELSA k7 dil2 60x45', B=2, C=96, G=3, H=60, W=45, k=7, dil=2),
    *[dict(op='na', name=f'NA 56x56 k{k}', B=2, heads=4, H=56, W=56, d=32, k=k, dil=1)
      for k in (3, 5, 9, 13)],
    dict(op='na', name='NA 56x56 k7 dil2', B=2, heads=4, H=56, W=56, d=32, k=7, dil=2),
    dict(op='na', name='NA 32x64 k7 (non-square)', B=2, heads=4, H=32, W=64, d=32, k=7, dil=1),
]
QUICK = [
    dict(op='elsa', name='ELSA tiny', B=2, C=12, G=3, H=14, W=14, k=7, dil=1),
    dict(op='na', name='NA tiny', B=1, heads=2, H=14, W=14, d=16, k=7, dil=1),
]

# ----------------------------------------------------------------------------- implementations


# where and in what dtype the inputs live (--device, --dtype)
SETTINGS = dict(device='cpu', dtype=torch.float32)


def _place(tensors, requires_grad):
    return [t.to(**SETTINGS).requires_grad_(requires_grad) for t in tensors]


def elsa_inputs(c, requires_grad):
    g = torch.Generator().manual_seed(0)
    v = torch.randn(c['B'], c['C'], c['H'], c['W'], generator=g)
    attn = torch.randn(c['B'], c['G'], c['k']**2, c['H'], c['W'], generator=g).softmax(2)
    add = torch.randn(c['C'], c['k'], c['k'], generator=g) * 0.02  # ELSA-Swin: add ghost only
    return _place((v, attn, add), requires_grad)


def na_inputs(c, requires_grad):
    g = torch.Generator().manual_seed(0)
    shape = (c['B'], c['H'], c['W'], c['heads'], c['d'])
    return _place([torch.randn(shape, generator=g) for _ in range(3)], requires_grad)


def wsa_sdpa(q, k, v, window):
    """Swin window attention (no shift) over k x k windows, via SDPA. [B, H, W, heads, d]."""
    B, H, W, h, d = q.shape

    def part(x):  # -> [B * nW, heads, window^2, d]
        x = x.view(B, H // window, window, W // window, window, h, d)
        return x.permute(0, 1, 3, 5, 2, 4, 6).reshape(-1, h, window * window, d)

    out = F.scaled_dot_product_attention(part(q), part(k), part(v))
    out = out.view(B, H // window, W // window, h, window, window, d)
    return out.permute(0, 1, 4, 2, 5, 3, 6).reshape(B, H, W, h, d)


def implementations(c, compile_ref):
    k, dil = c['k'], c['dil']
    if c['op'] == 'elsa':
        impls = {
            'compiled': lambda v, a, g: ops.elsa_aggregate(v, a, k, dil, None, g),
            'reference': lambda v, a, g: ops.elsa_aggregate_reference(v, a, k, dil, None, g),
        }
        make = elsa_inputs
    else:
        impls = {
            'compiled': lambda q, kk, v: ops.na2d(q, kk, v, k, dil),
            'reference': lambda q, kk, v: ops.na2d_reference(q, kk, v, k, dil),
        }
        if dil == 1 and c['H'] % k == 0 and c['W'] % k == 0:
            impls['wsa-sdpa'] = lambda q, kk, v: wsa_sdpa(q, kk, v, k)
        make = na_inputs
    if compile_ref == 'all' or compile_ref == c['op']:
        # A fresh dynamo cache per case: every case compiles the same code object, and past
        # dynamo's recompile limit it would silently run the eager function instead.
        torch._dynamo.reset()
        ref = impls['reference']
        impls['reference+compile'] = torch.compile(lambda *xs: ref(*xs), dynamic=False)
    return impls, make


# ----------------------------------------------------------------------------- timing


def copy_bandwidth(device, nbytes=2**28):
    """Bytes per second of a device-to-device copy (read + write) of ``nbytes``."""
    src = torch.empty(nbytes // 4, device=device)
    dst = torch.empty_like(src)
    stats = time_step(lambda: dst.copy_(src), warmup=3, min_iters=20, min_time=0.5,
                      device=device)
    return 2 * nbytes / (stats['median_ms'] / 1e3)


def compulsory_bytes(args, out, mode):
    """Bytes every implementation must move at least: the inputs and the output (forward);
    backward adds reading the output gradient and the inputs again and writing their
    gradients."""
    inputs = sum(a.numel() * a.element_size() for a in args)
    output = out.numel() * out.element_size()
    return inputs + output if mode == 'fwd' else 3 * inputs + 2 * output


def measure(fn, args, mode, warmup, min_iters, min_time):
    """Median/p10/p90 ms and peak memory of one forward or forward+backward."""
    device = SETTINGS['device']
    if mode == 'fwd':
        def step():
            with torch.inference_mode():
                return fn(*args)
    else:
        out_shape = fn(*args).shape
        grad = torch.randn(out_shape).to(**SETTINGS)

        def step():
            for a in args:
                a.grad = None
            out = fn(*args)
            out.backward(grad)
            return out

    stats = time_step(step, warmup, min_iters, min_time, device=device)
    for a in args:
        a.grad = None
    peak = peak_growth(step, device)
    with torch.no_grad():
        nbytes = compulsory_bytes(args, fn(*args), mode)
    return dict(stats, peak_mb=None if peak is None else peak / 2**20,
                gbytes_per_s=nbytes / (stats['median_ms'] / 1e3) / 1e9)


def check_outputs(impls, make, case):
    """Max abs difference of every implementation from the reference, on the bench inputs."""
    args = make(case, False)
    with torch.inference_mode():
        ref = impls['reference'](*args)
        return {name: float((fn(*args) - ref).abs().max()) for name, fn in impls.items()
                if name not in ('reference', 'wsa-sdpa')}


# ----------------------------------------------------------------------------- report


def fmt(r):
    if r is None:
        return '-'
    mem = '   n/a' if r['peak_mb'] is None else f'{r["peak_mb"]:7.1f}'
    return f'{r["median_ms"]:9.2f} ({r["p10_ms"]:.1f}-{r["p90_ms"]:.1f}) {mem}'


def print_table(results):
    head = f'{"case":28s} {"implementation":18s} {"fwd ms (p10-p90)":>26s} {"MB":>7s}   ' \
           f'{"fwd+bwd ms (p10-p90)":>26s} {"MB":>7s}   max|err|'
    print(head)
    print('-' * len(head))
    for r in results:
        err = r.get('max_abs_err')
        err = '' if err is None else f'{err:.1e}'
        print(f'{r["case"]:28s} {r["impl"]:18s} {fmt(r["fwd"]):>35s}   '
              f'{fmt(r["fwd+bwd"]):>35s}   {err}')


def ratios(results):
    """Speed-up and memory ratio of `compiled` against every other implementation."""
    rows = []
    by_case = {}
    for r in results:
        by_case.setdefault(r['case'], {})[r['impl']] = r
    for case, impls in by_case.items():
        ours = impls.get('compiled')
        for name, other in impls.items():
            if name == 'compiled' or ours is None:
                continue
            for mode in ('fwd', 'fwd+bwd'):
                row = dict(case=case, mode=mode, vs=name,
                           speedup=other[mode]['median_ms'] / ours[mode]['median_ms'])
                if ours[mode]['peak_mb'] is not None and other[mode]['peak_mb']:
                    row['memory_ratio'] = ours[mode]['peak_mb'] / other[mode]['peak_mb']
                rows.append(row)
    return rows


def print_targets(rows):
    """The CPU targets of BENCHMARKS.md, checked on the target cases."""
    def get(case, mode, vs):
        return next((r for r in rows if r['case'] == case and r['mode'] == mode and r['vs'] == vs),
                    None)

    checks = []
    elsa = get(TARGETS[0]['name'], 'fwd+bwd', 'reference')
    if elsa:
        checks.append(('ELSA fwd+bwd speed-up vs eager reference >= 4x', elsa['speedup'], 4.0,
                       elsa['speedup'] >= 4.0))
        if 'memory_ratio' in elsa:
            checks.append(('ELSA fwd+bwd peak memory vs eager reference <= 1/4',
                           elsa['memory_ratio'], 0.25, elsa['memory_ratio'] <= 0.25))
    na = get(TARGETS[1]['name'], 'fwd+bwd', 'reference')
    if na:
        checks.append(('NA fwd+bwd speed-up vs eager reference >= 3x', na['speedup'], 3.0,
                       na['speedup'] >= 3.0))
    na_c = get(TARGETS[1]['name'], 'fwd+bwd', 'reference+compile')
    if na_c:
        checks.append(('NA fwd+bwd faster than the torch.compile reference (> 1x)',
                       na_c['speedup'], 1.0, na_c['speedup'] > 1.0))
    if checks:
        print('\nCPU targets (../shared/BENCHMARKS.md), measured on the target shapes:')
        for text, value, target, ok in checks:
            print(f'  [{"met" if ok else "MISSED"}] {text}: {value:.2f} (target {target:g})')
    return [dict(target=t, value=v, threshold=th, met=ok) for t, v, th, ok in checks]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sweep', action='store_true', help='also run the sweep cases')
    parser.add_argument('--quick', action='store_true', help='tiny shapes (smoke test)')
    parser.add_argument('--compile-ref', choices=['none', 'na', 'elsa', 'all'], default='na',
                        help='time the reference under torch.compile for these ops '
                        '(compiling takes a minute or more per op on 2 cores)')
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--min-iters', type=int, default=5)
    parser.add_argument('--min-time', type=float, default=1.0, help='seconds per measurement')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--dtype', choices=['fp32', 'fp16', 'bf16'], default='fp32',
                        help='input dtype (the CPU kernels compute 16-bit types in float32)')
    parser.add_argument('--out', default='work_dirs/benchmark_ops.json', help='JSON output')
    args = parser.parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    SETTINGS.update(device=args.device, dtype={'fp32': torch.float32, 'fp16': torch.float16,
                                               'bf16': torch.bfloat16}[args.dtype])

    if args.threads:
        torch.set_num_threads(args.threads)
    if not ops.HAS_EXT:
        print('WARNING: the compiled extension is not loaded; "compiled" is the reference.')
    cases = QUICK if args.quick else TARGETS + (SWEEP if args.sweep else [])
    if args.quick:
        args.compile_ref, args.warmup, args.min_iters, args.min_time = 'none', 1, 2, 0.0
    info = machine_info(args.dtype)
    print(f'CPU: {info["cpu"]}, {info["logical_cores"]} logical cores, torch threads '
          f'{info["torch_threads"]}, load avg {info["load_avg_start"]}; torch {info["torch"]}; '
          f'{args.dtype} on {args.device}\n')
    if args.device == 'cuda':
        info['copy_gbytes_per_s'] = copy_bandwidth('cuda') / 1e9
        print(f'GPU: {info.get("gpu")}; measured device-to-device copy '
              f'{info["copy_gbytes_per_s"]:.0f} GB/s (read + write)\n')

    results = []
    for case in cases:
        impls, make = implementations(case, args.compile_ref)
        errors = check_outputs(impls, make, case)
        for name, fn in impls.items():
            row = dict(case=case['name'], impl=name, shape=case, max_abs_err=errors.get(name))
            for mode in ('fwd', 'fwd+bwd'):
                inputs = make(case, mode == 'fwd+bwd')
                row[mode] = measure(fn, inputs, mode, args.warmup, args.min_iters, args.min_time)
            results.append(row)
            print(f'  done: {case["name"]} / {name}', file=sys.stderr)
    print_table(results)
    if args.device == 'cuda':
        print('\nachieved bandwidth (compulsory bytes / median time) as a fraction of the '
              'measured copy:')
        for r in results:
            print(f'  {r["case"]:28s} {r["impl"]:18s} ' + '   '.join(
                f'{mode} {r[mode]["gbytes_per_s"]:.0f} GB/s = '
                f'{r[mode]["gbytes_per_s"] / info["copy_gbytes_per_s"]:.1%}'
                for mode in ('fwd', 'fwd+bwd')))
    rows = ratios(results)
    targets = print_targets(rows)
    info['load_avg_end'] = os.getloadavg()
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(machine=info, results=results, ratios=rows, targets=targets), f,
                      indent=2)
        print(f'\nwrote {args.out}')


if __name__ == '__main__':
    main()
