"""Measurement helpers shared by ``tools/analysis/benchmark_*.py`` (../shared/BENCHMARKS.md).

Times are medians with p10/p90 over at least ``min_iters`` iterations and ``min_time`` seconds
after warm-up (CUDA: CUDA events around each iteration; optionally the L2 flushed before each
one, and the GPU-only time per step from ``torch.profiler``). Peak memory of one iteration after
warm-up: on the CPU the growth of the process's peak resident set (freed heap returned first
with ``malloc_trim``, the high-water mark reset through ``/proc/self/clear_refs``); on CUDA the
growth of ``torch.cuda.max_memory_allocated``. Both include outputs and gradients.
"""
import ctypes
import gc
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable, Optional

import torch

_libc = ctypes.CDLL('libc.so.6') if sys.platform.startswith('linux') else None


def _status_bytes(key: str) -> Optional[int]:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return None


def reset_peak() -> Optional[int]:
    """Return freed memory to the OS and reset the peak-RSS mark; returns the current RSS."""
    gc.collect()
    if _libc is None:
        return None
    _libc.malloc_trim(0)
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        return None
    return _status_bytes('VmRSS:')


def peak_growth(fn: Callable, device: str = 'cpu') -> Optional[int]:
    """Bytes by which one call of ``fn`` raises the peak memory of ``device`` (None: unknown)."""
    if device == 'cuda':
        gc.collect()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        result = fn()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        del result
        return max(0, peak - base)
    base = reset_peak()
    result = fn()
    peak = _status_bytes('VmHWM:') if base is not None else None
    del result
    return None if peak is None else max(0, peak - base)


def time_step(step: Callable, warmup: int = 3, min_iters: int = 5, min_time: float = 1.0,
              max_iters: int = 200, device: str = 'cpu',
              before: Optional[Callable] = None) -> dict:
    """Median / p10 / p90 milliseconds of ``step()`` and the number of timed iterations.

    ``before`` (e.g. :class:`L2Flush`) runs ahead of every timed iteration, outside the timing.
    """
    for _ in range(warmup):
        step()
    times = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_time:
        if before is not None:
            before()
        if device == 'cuda':
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            step()
            end.record()
            end.synchronize()
            times.append(begin.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1e3)
        if len(times) >= max_iters:
            break
    q = statistics.quantiles(times, n=10) if len(times) > 1 else [times[0]] * 9
    return dict(median_ms=statistics.median(times), p10_ms=q[0], p90_ms=q[-1], iters=len(times))


def interleaved(steps: dict, rounds: int, warmup: int = 3, device: str = 'cpu') -> dict:
    """Times the ``steps`` (name -> callable) interleaved: every round runs each once, in order,
    so that load that comes and goes on a shared machine hits them alike.

    Returns:
        dict: name -> ``dict(min_ms, median_ms, times_ms)`` over the ``rounds`` rounds.
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            times[name].append(time_step(step, warmup=0, min_iters=1, min_time=0.0,
                                         device=device)['median_ms'])
    return {name: dict(min_ms=min(t), median_ms=statistics.median(t), times_ms=t)
            for name, t in times.items()}


class L2Flush:
    """Overwrites a buffer of ``factor`` x the GPU's L2 size, so that the next kernel reads its
    inputs from device memory (cold L2). Enqueued on the current stream; run ahead of a timed
    step it also lets the host queue the step's launches while the GPU writes the buffer."""

    def __init__(self, factor: int = 8):
        l2 = getattr(torch.cuda.get_device_properties(0), 'L2_cache_size', 0) or 64 * 2**20
        self.nbytes = factor * l2
        self.buf = torch.empty(self.nbytes // 4, device='cuda')

    def __call__(self):
        self.buf.fill_(1.0)


def kernel_time(step: Callable, iters: int = 3) -> Optional[float]:
    """Milliseconds per call of ``step()`` spent in GPU work (kernels, memsets, copies), from
    ``torch.profiler``: the time without host launch gaps. None where the profiler gives none."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    try:
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(iters):
                step()
            torch.cuda.synchronize()
        us = sum(e.time_range.elapsed_us() for e in prof.events()
                 if e.device_type == DeviceType.CUDA)
    except Exception as e:  # noqa: BLE001  (a profiler problem must not end the benchmark)
        print(f'kernel_time: no profile ({type(e).__name__}: {e})', file=sys.stderr)
        return None
    return us / iters / 1e3 if us > 0 else None


def machine_info(dtype: str = 'float32') -> dict:
    """CPU / GPU, threads, load, versions and git revision, for the report header."""
    import mmvit_plugins
    from mmvit_plugins import ops
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if 'model name' in line)
    except (OSError, StopIteration):
        pass
    try:
        rev = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True,
                             text=True, cwd=osp.dirname(osp.abspath(__file__))).stdout.strip()
    except OSError:
        rev = ''
    info = dict(cpu=cpu, logical_cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                load_avg_start=os.getloadavg(), torch=torch.__version__,
                mmvit_plugins=mmvit_plugins.__version__, git=rev, has_ext=ops.HAS_EXT,
                dtype=dtype)
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda,
                    gpu_capability='.'.join(map(str, torch.cuda.get_device_capability())),
                    gpu_memory_gb=props.total_memory / 1e9,
                    gpu_l2_mb=getattr(props, 'L2_cache_size', 0) / 2**20,
                    allow_tf32=dict(matmul=torch.backends.cuda.matmul.allow_tf32,
                                    cudnn=torch.backends.cudnn.allow_tf32))
    return info


def write_json(path: str, report: dict) -> None:
    """Writes ``report`` to ``path`` through a temporary file, so that a run cut short leaves the
    last complete report, never a truncated one."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path + '.tmp', 'w') as f:
        json.dump(report, f, indent=2)
    os.replace(path + '.tmp', path)
