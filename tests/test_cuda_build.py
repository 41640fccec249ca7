"""``FORCE_CUDA=1`` builds the CUDA extension without a GPU, for sm_80 and sm_90, and its ops
register for the CUDA dispatch key (a compile-only check: the kernels run in tests/test_ops_cuda.py
on a machine with a GPU). It runs whenever the CUDA toolkit is present; nvcc takes 2-8 minutes
on two cores. ``MMVIT_SKIP_CUDA_BUILD=1`` skips it.

The build is cached by content, as the mmcv wheel is: the library and the build log go to
``$MMVIT_CACHE/cuda-build/<key>`` (default ``~/.cache/mmvit_plugins``), the key a hash of every
file the build reads (``setup.py``, all of ``mmvit_plugins/ops/csrc``) and of the torch, nvcc and
Python versions. Any change to those rebuilds; with the key unchanged the test checks the cached
library and log. ``MMVIT_NO_BUILD_CACHE=1`` always rebuilds (and stores nothing).
"""
import glob
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from _build_cache import CSRC_FILES, cache_dir, content_key, use_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Not derived from `which nvcc`: that may be a wrapper script outside the toolkit (then torch
# would guess CUDA_HOME=/usr/local and fail to link libcudart).
CUDA_HOME = os.environ.get('CUDA_HOME') or os.environ.get('CUDA_PATH') or '/usr/local/cuda'
NVCC = shutil.which(os.path.join(CUDA_HOME, 'bin', 'nvcc'))
CACHE = cache_dir('cuda-build')

CHECK = textwrap.dedent('''
    import importlib.util, sys, torch
    spec = importlib.util.spec_from_file_location('mmvit_plugins._ext', sys.argv[1])
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    assert ext.with_cuda()
    for op in ['elsa_aggregate_forward', 'elsa_aggregate_backward', 'na2d_qk_forward',
               'na2d_qk_backward', 'na2d_av_forward', 'na2d_av_backward', 'na2d_fused_forward',
               'na2d_fused_backward']:
        for key in ('CPU', 'CUDA'):
            name = 'mmvit_plugins::' + op
            assert torch._C._dispatch_has_kernel_for_dispatch_key(name, key), (op, key)
    print('cuda build ok')
''')


def build_key() -> str:
    """A hash of everything the CUDA build reads: setup.py, the op sources, the tool versions."""
    import torch
    nvcc = subprocess.run([NVCC, '--version'], capture_output=True, text=True).stdout
    return content_key([os.path.join(ROOT, 'setup.py')] + CSRC_FILES,
                       f'{torch.__version__}|{torch.version.cuda}|{nvcc}|{sys.version}')


def cuda_build(tmp_path):
    """The CUDA build's library and log: from the cache when the key matches, else built (and
    then stored, unless ``MMVIT_NO_BUILD_CACHE=1``)."""
    entry = os.path.join(CACHE, build_key())
    if use_cache() and os.path.isfile(os.path.join(entry, 'build.log')):
        so = glob.glob(os.path.join(entry, '_ext*.so'))
        if len(so) == 1:
            with open(os.path.join(entry, 'build.log')) as f:
                return so, f.read()
    env = dict(os.environ, FORCE_CUDA='1', CUDA_HOME=CUDA_HOME, MAX_JOBS='2')
    env.pop('TORCH_CUDA_ARCH_LIST', None)  # setup.py's default: 8.0;9.0
    build = subprocess.run(
        [sys.executable, 'setup.py', 'build_ext', '--build-lib', str(tmp_path / 'lib'),
         '--build-temp', str(tmp_path / 'tmp')], cwd=ROOT, env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    log = build.stdout + build.stderr
    so = glob.glob(str(tmp_path / 'lib' / 'mmvit_plugins' / '_ext*.so'))
    if use_cache() and len(so) == 1:  # stored whole or not at all (a rename is atomic)
        staging = f'{entry}.tmp{os.getpid()}'
        os.makedirs(staging, exist_ok=True)
        shutil.copy2(so[0], staging)
        with open(os.path.join(staging, 'build.log'), 'w') as f:
            f.write(log)
        try:
            os.rename(staging, entry)
        except OSError:  # another run stored it first
            shutil.rmtree(staging, ignore_errors=True)
    return so, log


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get('MMVIT_SKIP_CUDA_BUILD') == '1',
                    reason='MMVIT_SKIP_CUDA_BUILD=1 was set')
@pytest.mark.skipif(NVCC is None, reason=f'no CUDA toolkit (nvcc) at CUDA_HOME={CUDA_HOME}')
def test_cuda_extension_compiles_for_sm80_and_sm90(tmp_path):
    so, log = cuda_build(tmp_path)
    for arch in ('80', '90'):
        assert f'arch=compute_{arch},code=sm_{arch}' in log, arch
    assert len(so) == 1
    check = subprocess.run([sys.executable, '-c', CHECK, so[0]], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr[-3000:]
    assert 'cuda build ok' in check.stdout
