"""bfloat16 autocast on the CPU meets mmcv's compiled ops.

Under ``torch.autocast('cpu', dtype=torch.bfloat16)`` (what ``tools/train.py --amp`` does
without CUDA, :class:`~mmvit_plugins.utils.runner.CPUBF16AmpOptimWrapper`) convolutions and
matrix products return bfloat16, so the detectors' heads hand bfloat16 boxes, scores and feature
maps to mmcv's ops. mmcv 2.1.0's CPU kernels (``nms``, ``roi_align_forward`` /
``roi_align_backward``, ...) dispatch on float and double only and stop with ``RuntimeError:
expected scalar type Float but found BFloat16``. Autocast cannot cast for them: they are
pybind functions, not dispatcher ops.

:func:`allow_bfloat16_in_mmcv_ops` wraps each function of ``mmcv._ext`` once: a call that gets
bfloat16 CPU tensors runs on float32 copies of them (autocast off), and where the op wrote into
one of its tensor arguments (mmcv's autograd functions pass preallocated outputs and gradient
buffers), the result is copied back into the bfloat16 tensor. Calls without bfloat16 CPU tensors
(every float32 run, every CUDA tensor) go straight to mmcv's function.
"""
import functools
from typing import Callable

import torch

__all__ = ['allow_bfloat16_in_mmcv_ops']

_SHIM_ATTR = '_mmvit_bf16_shim'


def _is_bf16_cpu(value) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == torch.bfloat16 \
        and value.device.type == 'cpu'


def _float32_shim(fn: Callable) -> Callable:
    """``fn`` with its bfloat16 CPU tensor arguments computed in float32 (see the module)."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if not any(_is_bf16_cpu(a) for a in (*args, *kwargs.values())):
            return fn(*args, **kwargs)
        pairs = []

        def up(value):
            if not _is_bf16_cpu(value):
                return value
            copy = value.float()
            pairs.append((value, copy))
            return copy

        args = [up(a) for a in args]
        kwargs = {k: up(v) for k, v in kwargs.items()}
        with torch.autocast('cpu', enabled=False):
            out = fn(*args, **kwargs)
        for original, copy in pairs:
            # write back only what the op changed: copying into an unchanged input would bump
            # its version counter and break autograd where another op saved it for backward
            result = copy.to(torch.bfloat16)
            if not torch.equal(result, original):
                original.copy_(result)
        return out

    setattr(call, _SHIM_ATTR, True)
    return call


def allow_bfloat16_in_mmcv_ops() -> bool:
    """Let mmcv's compiled ops take bfloat16 CPU tensors (computed in float32); idempotent.

    Returns:
        bool: False when mmcv's compiled ops are not installed (nothing to do), else True.
    """
    try:
        import mmcv._ext as ext
    except ImportError:  # mmcv-lite: no compiled ops
        return False
    for name in dir(ext):
        fn = getattr(ext, name)
        if name.startswith('_') or name.startswith('get_') or not callable(fn) \
                or getattr(fn, _SHIM_ATTR, False):
            continue
        setattr(ext, name, _float32_shim(fn))
    return True
