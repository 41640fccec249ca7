"""Loads the compiled extension ``mmvit_plugins._ext``.

The package always imports: when the extension is missing (not built, or built against
another torch) ``HAS_EXT`` is False, one warning says why, and every op runs its pure-PyTorch
reference instead. The ops live in ``torch.ops.mmvit_plugins``; this module also gives them
fake (shape-only) kernels so that ``torch.compile`` can trace through them.

The CPU kernels are compiled twice, for baseline x86-64 and for AVX2 + FMA, and the build to run
is chosen at import from the CPU's features (:func:`cpu_isa`); ``MMVIT_CPU_ISA=baseline|avx2``
or :func:`set_cpu_isa` overrides the choice (tests use it to run both builds).

``MMVIT_EXT_PATH=/path/to/_ext*.so`` loads another build of the extension instead of the in-place
one (the sanitized build of ``tools/build_sanitized_ext.py``); if that file does not load, the
import fails. ``EXT_PATH`` is the file that was loaded.
"""
import ctypes
import importlib.util
import mmap
import os
import os.path as osp
import sys
import warnings
from contextlib import contextmanager

import torch

HAS_EXT = False
WITH_CUDA = False  # whether the CUDA entry points were compiled in
EXT_PATH = None  # the file the extension was loaded from
ext_error = None

# MMVIT_EXT_PATH=/path/to/_ext*.so loads that build of the extension instead of the in-place
# mmvit_plugins/_ext*.so, e.g. the sanitized build of tools/build_sanitized_ext.py. A path that
# does not load is an ImportError, not a fallback to the references: that library was asked for.
EXT_PATH_ENV = 'MMVIT_EXT_PATH'


def _asan_runtime_loaded() -> bool:
    return hasattr(ctypes.CDLL(None), '__asan_init')


def _load_ext_from(path: str):
    """Imports the extension file ``path`` as ``mmvit_plugins._ext``."""
    where = f'{EXT_PATH_ENV}={path!r}'
    if not osp.isfile(path):
        raise ImportError(f'{where} is not a file; point it to a built mmvit_plugins extension '
                          '(_ext*.so) or unset it to load the in-place build')
    spec = importlib.util.spec_from_file_location('mmvit_plugins._ext', path)
    if spec is None or spec.loader is None:
        raise ImportError(f'{where} is not a Python extension module (a file named _ext*.so)')
    try:  # the sanitizer runtime is among the library's dependencies (near its start)
        with open(path, 'rb') as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            sanitized = data.find(b'libasan.so') >= 0
    except (OSError, ValueError):  # ValueError: an empty file (which then fails to load)
        sanitized = False
    if sanitized and not _asan_runtime_loaded():
        # Loading it anyway would end the process ("ASan runtime does not come first").
        raise ImportError(f'{where} is built with AddressSanitizer, whose runtime must be '
                          'loaded before Python starts: run with '
                          'LD_PRELOAD=$(gcc -print-file-name=libasan.so), as '
                          'tools/build_sanitized_ext.py does')
    try:
        module = importlib.util.module_from_spec(spec)  # dlopens the file
        spec.loader.exec_module(module)
    except (ImportError, OSError) as e:
        raise ImportError(f'{where} did not load: {type(e).__name__}: {e}') from e
    sys.modules['mmvit_plugins._ext'] = module
    setattr(sys.modules['mmvit_plugins'], '_ext', module)
    return module


if os.environ.get(EXT_PATH_ENV):
    _ext = _load_ext_from(os.environ[EXT_PATH_ENV])
    HAS_EXT = True
    WITH_CUDA = bool(_ext.with_cuda())
    EXT_PATH = osp.abspath(_ext.__file__)
else:
    try:
        from mmvit_plugins import _ext  # noqa: F401  (loading it registers the ops)
        HAS_EXT = True
        WITH_CUDA = bool(_ext.with_cuda())
        EXT_PATH = osp.abspath(_ext.__file__)
    except (ImportError, OSError) as e:  # OSError: undefined symbols against another torch
        ext_error = e
        warnings.warn(
            'mmvit_plugins: the compiled ops (mmvit_plugins._ext) did not load, so ELSA '
            'aggregation and neighbourhood attention run their slower pure-PyTorch references. '
            'Build them with `make install` or `pip install -v -e . --no-build-isolation`. '
            f'Cause: {type(e).__name__}: {e}',
            RuntimeWarning,
            stacklevel=2)

# The build of the CPU kernels (ISA) that runs: the best the CPU supports unless MMVIT_CPU_ISA
# says otherwise. Read once here, so that a bad value fails the import with one clear line.
if HAS_EXT:
    try:
        _ext.cpu_isa()
    except ValueError as e:
        raise ImportError(f'mmvit_plugins: {e}') from None


def cpu_isa():
    """The instruction set of the CPU kernels that run: ``'avx2'`` (AVX2 + FMA) or
    ``'baseline'`` (any x86-64 CPU); None without the compiled extension."""
    return _ext.cpu_isa() if HAS_EXT else None


def available_cpu_isas() -> list:
    """The CPU kernel builds this extension has and this CPU can run, baseline first."""
    return list(_ext.available_cpu_isas()) if HAS_EXT else []


def set_cpu_isa(isa: str) -> None:
    """Runs the CPU kernels built for ``isa`` (``'baseline'`` or ``'avx2'``) from now on.

    Raises:
        TypeError: ``isa`` is not a str.
        ValueError: an unknown name, or one this build or CPU cannot run.
        RuntimeError: the compiled extension did not load.
    """
    if not isinstance(isa, str):
        raise TypeError(f'isa must be a str (one of {available_cpu_isas()}), '
                        f'got {type(isa).__name__}')
    if not HAS_EXT:
        raise RuntimeError('set_cpu_isa: the compiled ops (mmvit_plugins._ext) did not load, so '
                           'there are no CPU kernels to choose from')
    _ext.set_cpu_isa(isa)


@contextmanager
def cpu_isa_override(isa: str):
    """Context manager: the CPU kernels built for ``isa`` run inside."""
    previous = cpu_isa()
    set_cpu_isa(isa)
    try:
        yield
    finally:
        set_cpu_isa(previous)


# The device types with compiled kernels (both op families).
_KERNEL_DEVICES = (('cpu', 'cuda') if WITH_CUDA else ('cpu', )) if HAS_EXT else ()


# The switch between compiled ops and references (for comparisons and benchmarks): the
# environment variable MMVIT_REFERENCE_OPS=1 sets it at import, set_reference_ops() later.
_force_reference = os.environ.get('MMVIT_REFERENCE_OPS', '0') == '1'


def set_reference_ops(enabled: bool) -> None:
    """Run every op's pure-PyTorch reference (True) or the compiled kernels where they exist."""
    global _force_reference
    if not isinstance(enabled, bool):
        raise TypeError(f'enabled must be a bool, got {type(enabled).__name__}')
    _force_reference = enabled


def using_reference_ops() -> bool:
    """Whether :func:`set_reference_ops` (or ``MMVIT_REFERENCE_OPS=1``) forces the references."""
    return _force_reference


@contextmanager
def reference_ops(enabled: bool = True):
    """Context manager: the ops run their references inside (``enabled=False``: compiled)."""
    previous = _force_reference
    set_reference_ops(enabled)
    try:
        yield
    finally:
        set_reference_ops(previous)


def use_ext(t: torch.Tensor) -> bool:
    """Whether the compiled ops run for tensors on ``t``'s device.

    Never during ONNX export (``torch.onnx.export``, both the dynamo and the TorchScript
    exporter): ONNX has no ``mmvit_plugins`` ops, so every op traces its pure-PyTorch reference
    and exports as standard ONNX operators. ``torch.export`` and ``torch.compile`` outside ONNX
    export keep the compiled ops (their fake kernels make them traceable).
    """
    if _force_reference or t.device.type not in _KERNEL_DEVICES:
        return False
    return not torch.onnx.is_in_onnx_export()


def registered_ops() -> dict:
    """The compiled ops (``torch.ops.mmvit_plugins.<name>``) and the devices with kernels.

    Returns:
        dict[str, list[str]]: e.g. ``{'na2d_qk_forward': ['CPU'], ...}``; empty without the
        extension. ``'CUDA'`` appears once the CUDA entry points are compiled in.
    """
    names = sorted(n.split('::', 1)[1] for n in torch._C._dispatch_get_all_op_names()
                   if n.startswith('mmvit_plugins::'))
    return {
        name: [key for key in ('CPU', 'CUDA')
               if torch._C._dispatch_has_kernel_for_dispatch_key(f'mmvit_plugins::{name}', key)]
        for name in names
    }


def _empty(like):
    return like.new_empty((0, ))


def _like(t):
    """What the kernels allocate for an output shaped like input ``t``: they make every input
    contiguous first and then call ``empty_like`` on that copy, so the output is contiguous
    (row-major) whatever ``t``'s layout (channels-last, transposed, sliced). The fake kernels
    must promise exactly these strides, or ``torch.compile`` fails on its first call."""
    return torch.empty_like(t.contiguous())


if HAS_EXT:
    lib = 'mmvit_plugins::'

    @torch.library.register_fake(lib + 'elsa_aggregate_forward')
    def _(v, attn, mul_ghost, add_ghost, kernel_size, dilation):
        return _like(v)

    @torch.library.register_fake(lib + 'elsa_aggregate_backward')
    def _(grad_out, v, attn, mul_ghost, add_ghost, kernel_size, dilation, output_mask):
        k = kernel_size
        mul = v.new_empty((v.shape[1], k, k)) if output_mask[2] and mul_ghost is not None \
            else _empty(v)
        add = v.new_empty((v.shape[1], k, k)) if output_mask[3] and add_ghost is not None \
            else _empty(v)
        return (_like(v) if output_mask[0] else _empty(v),
                _like(attn) if output_mask[1] else _empty(v), mul, add)

    @torch.library.register_fake(lib + 'na2d_qk_forward')
    def _(q, k, rpb, kernel_size, dilation):
        return q.new_empty((*q.shape[:4], kernel_size * kernel_size))

    @torch.library.register_fake(lib + 'na2d_qk_backward')
    def _(grad_attn, q, k, kernel_size, dilation, output_mask):
        n = 2 * kernel_size - 1
        return (_like(q) if output_mask[0] else _empty(q),
                _like(k) if output_mask[1] else _empty(q),
                q.new_empty((q.shape[3], n, n)) if output_mask[2] else _empty(q))

    @torch.library.register_fake(lib + 'na2d_fused_forward')
    def _(q, k, v, rpb, kernel_size, dilation, scale):
        acc = torch.float64 if q.dtype == torch.float64 else torch.float32
        return _like(q), q.new_empty(q.shape[:4], dtype=acc)

    @torch.library.register_fake(lib + 'na2d_fused_backward')
    def _(grad_out, q, k, v, rpb, out, lse, kernel_size, dilation, scale, output_mask):
        n = 2 * kernel_size - 1
        return tuple(
            (_like(t) if output_mask[i] else _empty(q))
            for i, t in enumerate((q, k, v))) + (
                q.new_empty((q.shape[3], n, n)) if output_mask[3] and rpb is not None
                else _empty(q), )

    @torch.library.register_fake(lib + 'na2d_av_forward')
    def _(attn, v, kernel_size, dilation):
        return _like(v)

    @torch.library.register_fake(lib + 'na2d_av_backward')
    def _(grad_out, attn, v, kernel_size, dilation, output_mask):
        return (_like(attn) if output_mask[0] else _empty(v),
                _like(v) if output_mask[1] else _empty(v))
