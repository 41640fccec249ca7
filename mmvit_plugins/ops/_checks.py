"""Argument checks shared by the ops' functional APIs.

Every failure is a ``TypeError`` (wrong type or dtype) or ``ValueError`` (wrong value or
shape) whose message names the argument and what was expected.
"""
from typing import Optional

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_tensor(name: str, t, ndim: int, layout: str) -> None:
    """``t`` is a floating-point tensor of rank ``ndim`` (``layout`` describes it)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f'{name} must be a torch.Tensor {layout}, got {type(t).__name__}')
    if t.dim() != ndim:
        raise ValueError(f'{name} must be {ndim}-D {layout}, got shape {tuple(t.shape)}')
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f'{name} must be a floating-point tensor (float16, bfloat16, float32 or '
                        f'float64), got {t.dtype}')


def check_like(name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    """``t`` has ``ref``'s dtype and device."""
    if t.dtype != ref.dtype:
        raise TypeError(f'{name} has dtype {t.dtype} but {ref_name} has {ref.dtype}; '
                        'they must match')
    if t.device != ref.device:
        raise ValueError(f'{name} is on {t.device} but {ref_name} is on {ref.device}; '
                         'they must be on the same device')


def check_shape(name: str, t: torch.Tensor, expected: tuple, layout: str) -> None:
    if tuple(t.shape) != tuple(expected):
        raise ValueError(f'{name} must have shape {layout} = {tuple(expected)}, '
                         f'got {tuple(t.shape)}')


def check_window(kernel_size, dilation) -> None:
    """``kernel_size`` is a positive odd int and ``dilation`` a positive int."""
    for name, value in (('kernel_size', kernel_size), ('dilation', dilation)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f'{name} must be an int, got {type(value).__name__} ({value!r})')
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f'kernel_size must be a positive odd integer, got {kernel_size}')
    if dilation < 1:
        raise ValueError(f'dilation must be >= 1, got {dilation}')


def autocast_inputs(*tensors: Optional[torch.Tensor]) -> list:
    """Inputs as the op should see them under autocast.

    Inside ``torch.autocast`` for the tensors' device, activations arrive in mixed dtypes
    (e.g. a bfloat16 conv output beside a float32 softmax and float32 parameters). The ops then
    run in float32 and return float32, as autocast does for its own float32 ops. Outside
    autocast the tensors are returned unchanged, and mismatched dtypes are an error.
    """
    first = next((t for t in tensors if isinstance(t, torch.Tensor)), None)
    if first is None or not torch.is_autocast_enabled(first.device.type):
        return list(tensors)
    return [
        t.float() if isinstance(t, torch.Tensor) and t.dtype in FLOAT_DTYPES else t
        for t in tensors
    ]


def compute_dtype(t: torch.Tensor) -> torch.dtype:
    """The dtype the compiled kernels take for ``t``. The CPU kernels get float16/bfloat16 as
    float32; the CUDA kernels load them as they are and accumulate in float32."""
    if t.dtype in (torch.float16, torch.bfloat16) and t.device.type != 'cuda':
        return torch.float32
    return t.dtype
