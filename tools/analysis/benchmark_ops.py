"""Benchmark the compiled sliding-window ops against their pure-PyTorch references.

For every case it times forward (under ``torch.inference_mode``) and forward+backward of:

* ``compiled``: our op (``mmvit_plugins.ops``, C++ on the CPU);
* ``reference``: the eager pure-PyTorch reference (ELSA: ``F.unfold``; NA: gather + einsum);
* ``reference+compile``: the same reference under ``torch.compile`` (NA cases by default);
* ``wsa-sdpa`` (NA cases without dilation): Swin window attention through
  ``F.scaled_dot_product_attention``, the same-FLOPs dense yardstick;
* ``dwconv`` (ELSA cases): a depthwise ``k x k`` convolution of ``v``, the same-MACs dense
  yardstick (ELSA reads ``k*k`` attention weights per output besides).

On the CPU the compiled ops run the build of the kernels for the CPU's instruction set
(``ops.cpu_isa()``: baseline x86-64 or AVX2 + FMA; printed at the top, ``MMVIT_CPU_ISA``
overrides it). After the table, every case with a yardstick is timed again **interleaved**:
``--rounds`` rounds, each running ours under every available ISA and then the yardstick once
(forward, then forward+backward), and the ratio of ours to the yardstick is given on the
minima and on the medians of those rounds (single runs on a shared machine swing 2-5x, so only
same-round comparisons are trusted).

Times are medians (with p10/p90) over at least ``--min-iters`` iterations and ``--min-time``
seconds after warm-up. Peak memory is the growth of the process's peak resident set over one
iteration after warm-up (freed heap returned first with ``malloc_trim``, the high-water mark
reset through ``/proc/self/clear_refs``); it includes outputs and gradients. Before timing,
every implementation's output is checked against the reference on the benchmark inputs.

Shapes follow ../shared/BENCHMARKS.md: the CPU targets (ELSA-Swin-T stage 1 at 224:
B=8, C=96, heads=3, 56x56, k=7; NA: B=2, heads=4, 56x56, d=32, k=7) by default, and with
``--sweep`` more ELSA-Swin-T stages, kernel sizes, a dilation and a non-square map. With
``--gpu-shapes``: the CPU targets, the NA rows of BENCHMARKS.md section 4 (Swin-T S1-S4 and
HRViT-b1 B1-B4 at 512 and 1024, k=7, d=32, B=2; two of them also at B=16) and ELSA-Swin-T
stages 1-3 at 224 (B=8) and 512 (B=2).

The ``wsa-sdpa`` yardstick partitions the map into k x k windows where it divides into them
(Swin's window attention exactly); elsewhere it runs the same SDPA on groups of k*k consecutive
tokens, the token count padded up to a multiple of k*k (the same FLOPs and bytes, up to that
padding, which each row records as ``wsa_padding``).

On CUDA (``--device cuda``) times come from CUDA events, peak memory from
``max_memory_allocated``, and every row also gives the achieved bandwidth: the compulsory bytes
(inputs and output; backward: output gradient in, inputs again, their gradients out) over the
median time, as a fraction of a measured device-to-device copy. ``--flush-l2`` overwrites 8x the
L2 before every timed iteration: cold-cache numbers (small stages otherwise fit in L2), and
while the GPU writes that buffer the host queues the timed step's launches, so launch gaps
mostly drop out. ``kernel_ms`` (compiled and wsa-sdpa rows) is the GPU-only time per call from
``torch.profiler`` over calls run back to back (no launch gaps, warm L2), with the bandwidth
over that time as ``kernel_gbytes_per_s``. The GPU targets are judged on the timed (cold)
bandwidth; the kernel-only (warm) one is printed beside it.

Usage::

    python tools/analysis/benchmark_ops.py [--sweep] [--quick] [--device cpu|cuda]
        [--dtype fp32|fp16|bf16] [--gpu-shapes] [--flush-l2] [--rounds N] [--out FILE.json]
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

from mmvit_plugins import ops
from mmvit_plugins.utils.benchmark import interleaved as interleaved_times
from mmvit_plugins.utils.benchmark import (L2Flush, kernel_time, machine_info, peak_growth,
                                           time_step, write_json)

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


def _na_rows():
    """The NA rows of ../shared/BENCHMARKS.md section 4: k=7, d=32, B=2 (2 also at B=16)."""
    rows = []
    for model, stage, dims, heads in (('SwinT', 'S', (128, 64, 32, 16), (3, 6, 12, 24)),
                                      ('HRViTb1', 'B', (128, 64, 32, 16), (1, 2, 4, 8))):
        for scale, size in ((1, 512), (2, 1024)):
            for i, (side, h) in enumerate(zip(dims, heads)):
                side *= scale
                name = f'NA {model}@{size} {stage}{i + 1} {side}x{side}h{h}'
                rows.append(dict(op='na', name=name, B=2, heads=h, H=side, W=side, d=32, k=7,
                                 dil=1))
    for name, side, h in (('NA SwinT@512 S1 B16', 128, 3), ('NA SwinT@512 S2 B16', 64, 6)):
        rows.append(dict(op='na', name=name, B=16, heads=h, H=side, W=side, d=32, k=7, dil=1))
    return rows


GPU_SHAPES = [
    *TARGETS,
    dict(op='elsa', name='ELSA-Swin-T S2@224', B=8, C=192, G=6, H=28, W=28, k=7, dil=1),
    dict(op='elsa', name='ELSA-Swin-T S3@224', B=8, C=384, G=12, H=14, W=14, k=7, dil=1),
    dict(op='elsa', name='ELSA-Swin-T S1@512 B2', B=2, C=96, G=3, H=128, W=128, k=7, dil=1),
    dict(op='elsa', name='ELSA-Swin-T S2@512 B2', B=2, C=192, G=6, H=64, W=64, k=7, dil=1),
    dict(op='elsa', name='ELSA-Swin-T S3@512 B2', B=2, C=384, G=12, H=32, W=32, k=7, dil=1),
    *_na_rows(),
]

# ----------------------------------------------------------------------------- implementations


# where and in what dtype the inputs live (--device, --dtype)
SETTINGS = dict(device='cpu', dtype=torch.float32)
# CUDA only: the L2 flush before each timed iteration (--flush-l2), GPU-only kernel time
TIMING = dict(flush=None, kernel_time=False)


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
    """Swin window attention (no shift) over k x k windows, via SDPA. [B, H, W, heads, d].

    A map that does not divide into windows is attended in groups of ``window**2``
    consecutive tokens instead (token count zero-padded to a multiple): the same SDPA work."""
    B, H, W, h, d = q.shape
    if H % window or W % window:
        n, group = H * W, window * window
        pad = -n % group

        def groups(x):  # -> [B * groups, heads, window^2, d]
            x = F.pad(x.reshape(B, n, h, d), (0, 0, 0, 0, 0, pad))
            return x.view(B, -1, group, h, d).transpose(2, 3).reshape(-1, h, group, d)

        out = F.scaled_dot_product_attention(groups(q), groups(k), groups(v))
        out = out.view(B, -1, h, group, d).transpose(2, 3).reshape(B, n + pad, h, d)
        return out[:, :n].reshape(B, H, W, h, d)

    def part(x):  # -> [B * nW, heads, window^2, d]
        x = x.view(B, H // window, window, W // window, window, h, d)
        return x.permute(0, 1, 3, 5, 2, 4, 6).reshape(-1, h, window * window, d)

    out = F.scaled_dot_product_attention(part(q), part(k), part(v))
    out = out.view(B, H // window, W // window, h, window, window, d)
    return out.permute(0, 1, 4, 2, 5, 3, 6).reshape(B, H, W, h, d)


def depthwise_conv(c):
    """The ELSA yardstick: ``v -> conv2d(v, w[C, 1, k, k], groups=C)`` with ELSA's padding and
    dilation (the same multiply-adds as the aggregation; its weight gets a gradient too)."""
    g = torch.Generator().manual_seed(1)
    weight = (torch.randn(c['C'], 1, c['k'], c['k'], generator=g) * 0.02).to(**SETTINGS)
    weight.requires_grad_(True)
    pad = c['k'] // 2 * c['dil']
    return lambda v, a, g: F.conv2d(v, weight, padding=pad, dilation=c['dil'], groups=c['C'])


YARDSTICKS = ('wsa-sdpa', 'dwconv')  # not the same function: no output check, only timings


def implementations(c, compile_ref):
    k, dil = c['k'], c['dil']
    if c['op'] == 'elsa':
        impls = {
            'compiled': lambda v, a, g: ops.elsa_aggregate(v, a, k, dil, None, g),
            'reference': lambda v, a, g: ops.elsa_aggregate_reference(v, a, k, dil, None, g),
            'dwconv': depthwise_conv(c),
        }
        make = elsa_inputs
    else:
        impls = {
            'compiled': lambda q, kk, v: ops.na2d(q, kk, v, k, dil),
            'reference': lambda q, kk, v: ops.na2d_reference(q, kk, v, k, dil),
        }
        if dil == 1:
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


def make_step(fn, args, mode):
    """One forward (under inference mode) or forward+backward of ``fn(*args)``, as a callable."""
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
    return step


def measure(fn, args, mode, warmup, min_iters, min_time, kernel=True):
    """Median/p10/p90 ms and peak memory of one forward or forward+backward (``kernel``: also
    the GPU-only time, where TIMING asks for it)."""
    device = SETTINGS['device']
    step = make_step(fn, args, mode)
    stats = time_step(step, warmup, min_iters, min_time, device=device,
                      before=TIMING['flush'])
    if TIMING['kernel_time'] and kernel:
        stats['kernel_ms'] = kernel_time(step)
    for a in args:
        a.grad = None
    peak = peak_growth(step, device)
    with torch.no_grad():
        nbytes = compulsory_bytes(args, fn(*args), mode)
    stats.update(peak_mb=None if peak is None else peak / 2**20, compulsory_mb=nbytes / 1e6,
                 gbytes_per_s=nbytes / (stats['median_ms'] / 1e3) / 1e9)
    if stats.get('kernel_ms'):
        stats['kernel_gbytes_per_s'] = nbytes / (stats['kernel_ms'] / 1e3) / 1e9
    return stats


def check_outputs(impls, make, case, failures):
    """Max abs difference of every implementation from the reference, on the bench inputs
    (an implementation that raises is left out and its error added to ``failures``)."""
    args = make(case, False)
    errors = {}
    with torch.inference_mode():
        try:
            ref = impls['reference'](*args)
        except Exception as e:  # noqa: BLE001
            failures.append(note_failure(case['name'], 'reference', 'check', e))
            return errors
        for name, fn in impls.items():
            if name == 'reference' or name in YARDSTICKS:
                continue
            try:
                errors[name] = float((fn(*args) - ref).abs().max())
            except Exception as e:  # noqa: BLE001
                failures.append(note_failure(case['name'], name, 'check', e))
    return errors


def note_failure(case, impl, mode, error):
    """One measurement that raised: reported, and the run goes on with the next one."""
    text = f'{case} / {impl} / {mode}: {type(error).__name__}: {str(error)[:500]}'
    print(f'  FAILED: {text}', file=sys.stderr)
    if SETTINGS['device'] == 'cuda':
        torch.cuda.empty_cache()
    return text


def interleaved(case, impls, make, rounds, warmup=3):
    """Ours (under every available CPU ISA) against the case's yardstick, interleaved: every
    round times each of them once, forward and forward+backward. Returns rows of min/median ms
    per implementation and mode and the ratios ours / yardstick."""
    yard = next((n for n in YARDSTICKS if n in impls), None)
    if yard is None:
        return []
    isas = ops.available_cpu_isas() if SETTINGS['device'] == 'cpu' else [None]
    rows = []
    for mode in ('fwd', 'fwd+bwd'):
        inputs = make(case, mode == 'fwd+bwd')
        steps = {}
        for isa in isas:
            step = make_step(impls['compiled'], inputs, mode)

            def run(step=step, isa=isa):
                if isa is not None:
                    ops.set_cpu_isa(isa)
                return step()

            steps[f'ours[{isa}]' if isa else 'ours'] = run
        steps[yard] = make_step(impls[yard], inputs, mode)
        active = ops.cpu_isa()
        try:
            stats = interleaved_times(steps, rounds, warmup, SETTINGS['device'])
        finally:
            if active is not None:
                ops.set_cpu_isa(active)
        best = {n: st['min_ms'] for n, st in stats.items()}
        med = {n: st['median_ms'] for n, st in stats.items()}
        for name in steps:
            if name == yard:
                continue
            rows.append(dict(case=case['name'], mode=mode, impl=name, yardstick=yard,
                             rounds=rounds, min_ms=best[name], median_ms=med[name],
                             yard_min_ms=best[yard], yard_median_ms=med[yard],
                             ratio_min=best[name] / best[yard],
                             ratio_median=med[name] / med[yard]))
    return rows


def print_interleaved(rows):
    if not rows:
        return
    print(f'\nOurs vs the same-work yardstick, interleaved ({rows[0]["rounds"]} rounds; '
          'ratio = ours / yardstick, < 1 is faster):')
    head = f'{"case":28s} {"mode":8s} {"ours":15s} {"min ms":>8s} {"med ms":>8s}   ' \
           f'{"yardstick":9s} {"min ms":>8s} {"med ms":>8s}   {"ratio min":>9s} {"ratio med":>9s}'
    print(head)
    print('-' * len(head))
    for r in rows:
        print(f'{r["case"]:28s} {r["mode"]:8s} {r["impl"]:15s} {r["min_ms"]:8.2f} '
              f'{r["median_ms"]:8.2f}   {r["yardstick"]:9s} {r["yard_min_ms"]:8.2f} '
              f'{r["yard_median_ms"]:8.2f}   {r["ratio_min"]:9.2f} {r["ratio_median"]:9.2f}')


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
                if ours[mode] is None or other[mode] is None:  # that measurement failed
                    continue
                row = dict(case=case, mode=mode, vs=name,
                           speedup=other[mode]['median_ms'] / ours[mode]['median_ms'])
                if ours[mode]['peak_mb'] is not None and other[mode]['peak_mb']:
                    row['memory_ratio'] = ours[mode]['peak_mb'] / other[mode]['peak_mb']
                rows.append(row)
    return rows


# Issue 17: ours / the same-work yardstick on the target shapes, interleaved minima.
YARDSTICK_TARGETS = {('elsa', 'fwd'): 2.0, ('elsa', 'fwd+bwd'): 0.6, ('na', 'fwd'): 1.2,
                     ('na', 'fwd+bwd'): 1.2}


def print_targets(rows, inter=()):
    """The CPU targets of BENCHMARKS.md, checked on the target cases, and the yardstick targets
    (on the interleaved minima of the ISA in use)."""
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
    for case in TARGETS:
        for mode in ('fwd', 'fwd+bwd'):
            r = next((x for x in inter if x['case'] == case['name'] and x['mode'] == mode
                      and x['impl'] == f'ours[{ops.cpu_isa()}]'), None)
            if r:
                limit = YARDSTICK_TARGETS[(case['op'], mode)]
                checks.append((f'{case["op"].upper()} {mode} ours / {r["yardstick"]} <= {limit:g}'
                               f' ({r["impl"]})', r['ratio_min'], limit, r['ratio_min'] <= limit))
    if checks:
        print('\nCPU targets (../shared/BENCHMARKS.md, issue 17), measured on the target shapes:')
        for text, value, target, ok in checks:
            print(f'  [{"met" if ok else "MISSED"}] {text}: {value:.2f} (target {target:g})')
    return [dict(target=t, value=v, threshold=th, met=ok) for t, v, th, ok in checks]


def print_gpu_targets(results, rows, copy_gbytes_per_s, dtype):
    """The GPU targets of BENCHMARKS.md: NA (16-bit, k=7, 56x56 to 128x128 maps) forward >= 50%
    and forward+backward >= 30% of the measured copy bandwidth and >= 10x the gather reference;
    ELSA bf16 forward+backward >= 50%. Kernel-only bandwidth where the profiler gave it."""
    checks = []
    for r in results:
        c = r['shape']
        if r['impl'] != 'compiled' or c['k'] != 7 or c['dil'] != 1 or \
                r['fwd'] is None or r['fwd+bwd'] is None:
            continue
        frac = {m: r[m]['gbytes_per_s'] / copy_gbytes_per_s for m in ('fwd', 'fwd+bwd')}
        warm = {m: (r[m].get('kernel_gbytes_per_s') or 0) / copy_gbytes_per_s
                for m in ('fwd', 'fwd+bwd')}
        if c['op'] == 'na' and dtype in ('fp16', 'bf16') and 56 <= min(c['H'], c['W']) \
                and max(c['H'], c['W']) <= 128:
            checks.append((f'{r["case"]}: NA fwd >= 50% of copy bandwidth', frac['fwd'], 0.5,
                           warm['fwd']))
            checks.append((f'{r["case"]}: NA fwd+bwd >= 30% of copy bandwidth',
                           frac['fwd+bwd'], 0.3, warm['fwd+bwd']))
            for mode in ('fwd', 'fwd+bwd'):
                ref = next((x for x in rows if x['case'] == r['case'] and x['mode'] == mode
                            and x['vs'] == 'reference'), None)
                if ref:
                    checks.append((f'{r["case"]}: NA {mode} >= 10x the gather reference',
                                   ref['speedup'], 10.0, None))
        elif c['op'] == 'elsa' and dtype == 'bf16':
            checks.append((f'{r["case"]}: ELSA bf16 fwd+bwd >= 50% of copy bandwidth',
                           frac['fwd+bwd'], 0.5, warm['fwd+bwd']))
    if checks:
        print('\nGPU targets (../shared/BENCHMARKS.md), on the timed bandwidth (cold L2 with '
              '--flush-l2); in brackets the kernel-only one (warm L2):')
        for text, value, target, kernel in checks:
            extra = f' [kernels only {kernel:.3g}]' if kernel else ''
            print(f'  [{"met" if value >= target else "MISSED"}] {text}: {value:.3g}{extra}')
    return [dict(target=t, value=v, threshold=th, met=v >= th, kernel_only=k)
            for t, v, th, k in checks]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sweep', action='store_true', help='also run the sweep cases')
    parser.add_argument('--quick', action='store_true', help='tiny shapes (smoke test)')
    parser.add_argument('--gpu-shapes', action='store_true',
                        help='the CPU targets, the BENCHMARKS.md section 4 NA shapes and '
                        'ELSA-Swin-T stages at 224 and 512 (for --device cuda)')
    parser.add_argument('--flush-l2', action='store_true',
                        help="CUDA: overwrite 8x the L2 before every timed iteration")
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
    parser.add_argument('--rounds', type=int, default=41,
                        help='rounds of the interleaved ours-vs-yardstick timing (0: skip it)')
    parser.add_argument('--out', default='work_dirs/benchmark_ops.json', help='JSON output')
    args = parser.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    SETTINGS.update(device=args.device, dtype={'fp32': torch.float32, 'fp16': torch.float16,
                                               'bf16': torch.bfloat16}[args.dtype])
    TIMING.update(kernel_time=args.device == 'cuda',
                  flush=L2Flush() if args.flush_l2 and args.device == 'cuda' else None)

    if args.threads:
        torch.set_num_threads(args.threads)
    if not ops.HAS_EXT:
        print('WARNING: the compiled extension is not loaded; "compiled" is the reference.')
    if args.quick:
        cases = QUICK
    elif args.gpu_shapes:
        cases = GPU_SHAPES + (SWEEP if args.sweep else [])
    else:
        cases = TARGETS + (SWEEP if args.sweep else [])
    if args.quick:
        args.compile_ref, args.warmup, args.min_iters, args.min_time = 'none', 1, 2, 0.0
        args.rounds = min(args.rounds, 3)
    info = machine_info(args.dtype)
    info['cpu_isa'] = ops.cpu_isa()
    info['available_cpu_isas'] = ops.available_cpu_isas()
    print(f'CPU: {info["cpu"]}, {info["logical_cores"]} logical cores, torch threads '
          f'{info["torch_threads"]}, load avg {info["load_avg_start"]}; torch {info["torch"]}; '
          f'{args.dtype} on {args.device}')
    print(f'CPU kernels: the {info["cpu_isa"]} build (available here: '
          f'{", ".join(info["available_cpu_isas"]) or "none"}; MMVIT_CPU_ISA overrides)\n')
    if args.device == 'cuda':
        info['copy_gbytes_per_s'] = copy_bandwidth('cuda') / 1e9
        info['l2_flush_mb'] = TIMING['flush'].nbytes / 2**20 if TIMING['flush'] else 0
        print(f'GPU: {info.get("gpu")}; measured device-to-device copy '
              f'{info["copy_gbytes_per_s"]:.0f} GB/s (read + write); L2 flushed before each '
              f'timed iteration: {"yes" if TIMING["flush"] else "no"}\n')

    results, failures, inter = [], [], []
    for case in cases:
        impls, make = implementations(case, args.compile_ref)
        errors = check_outputs(impls, make, case, failures)
        for name, fn in impls.items():
            row = dict(case=case['name'], impl=name, shape=case, max_abs_err=errors.get(name))
            if name == 'wsa-sdpa':
                n, group = case['H'] * case['W'], case['k']**2
                row['wsa_padding'] = (-n % group) / n if case['H'] % case['k'] or \
                    case['W'] % case['k'] else 0.0
            for mode in ('fwd', 'fwd+bwd'):
                try:
                    inputs = make(case, mode == 'fwd+bwd')
                    row[mode] = measure(fn, inputs, mode, args.warmup, args.min_iters,
                                        args.min_time, kernel=name in ('compiled', 'wsa-sdpa'))
                except Exception as e:  # noqa: BLE001  (one failure must not end the run)
                    row[mode] = None
                    failures.append(note_failure(case['name'], name, mode, e))
                    row.setdefault('errors', {})[mode] = failures[-1]
            results.append(row)
            print(f'  done: {case["name"]} / {name}', file=sys.stderr)
        if args.rounds > 0:
            try:
                inter += interleaved(case, impls, make, args.rounds)
            except Exception as e:  # noqa: BLE001
                failures.append(note_failure(case['name'], 'interleaved', 'both', e))
        if args.out:  # what is measured so far survives a run cut short (a time limit)
            write_json(args.out, dict(machine=info, results=results, failures=failures,
                                      partial=True))
    print_table(results)
    print_interleaved(inter)
    if args.device == 'cuda':
        print('\nachieved bandwidth (compulsory bytes / median time) as a fraction of the '
              'measured copy:')
        copy = info['copy_gbytes_per_s']

        def bw(m):
            if m is None:
                return '-'
            kernel = f' (kernels only {m["kernel_gbytes_per_s"] / copy:.1%})' \
                if m.get('kernel_gbytes_per_s') else ''
            return f'{m["gbytes_per_s"]:.0f} GB/s = {m["gbytes_per_s"] / copy:.1%}{kernel}'

        for r in results:
            print(f'  {r["case"]:28s} {r["impl"]:18s} ' + '   '.join(
                f'{mode} {bw(r[mode])}' for mode in ('fwd', 'fwd+bwd')))
    rows = ratios(results)
    if args.device == 'cuda':
        targets = print_gpu_targets(results, rows, info['copy_gbytes_per_s'], args.dtype)
    else:
        targets = print_targets(rows, inter)
    info['load_avg_end'] = os.getloadavg()
    if args.out:
        write_json(args.out, dict(machine=info, results=results, ratios=rows,
                                  interleaved=inter, targets=targets, failures=failures))
        print(f'\nwrote {args.out}')
    if failures:
        print(f'\n{len(failures)} measurement(s) FAILED:\n  ' + '\n  '.join(failures))
        sys.exit(1)


if __name__ == '__main__':
    main()
