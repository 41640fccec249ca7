"""The CUDA entry points compile (FORCE_CUDA=1, nvcc) and register for the CUDA dispatch key.

Their kernels are a later milestone; this keeps them compiling meanwhile. nvcc takes 2 to 4
minutes on two cores, so it runs only when asked: MMVIT_TEST_CUDA_BUILD=1 make test.
"""
import glob
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Not derived from `which nvcc`: that may be a wrapper script outside the toolkit (then torch
# would guess CUDA_HOME=/usr/local and fail to link libcudart).
CUDA_HOME = os.environ.get('CUDA_HOME') or os.environ.get('CUDA_PATH') or '/usr/local/cuda'
NVCC = shutil.which(os.path.join(CUDA_HOME, 'bin', 'nvcc'))

CHECK = textwrap.dedent('''
    import importlib.util, sys, torch
    spec = importlib.util.spec_from_file_location('mmvit_plugins._ext', sys.argv[1])
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    assert ext.with_cuda()
    for op in ['elsa_aggregate_forward', 'elsa_aggregate_backward', 'na2d_qk_forward',
               'na2d_qk_backward', 'na2d_av_forward', 'na2d_av_backward']:
        for key in ('CPU', 'CUDA'):
            name = 'mmvit_plugins::' + op
            assert torch._C._dispatch_has_kernel_for_dispatch_key(name, key), (op, key)
    print('cuda build ok')
''')


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get('MMVIT_TEST_CUDA_BUILD') != '1',
                    reason='compiles the CUDA entry points with nvcc (2 to 4 minutes): '
                    'set MMVIT_TEST_CUDA_BUILD=1 to run it')
@pytest.mark.skipif(NVCC is None, reason=f'no CUDA toolkit at CUDA_HOME={CUDA_HOME}')
def test_cuda_entry_points_compile(tmp_path):
    env = dict(os.environ, FORCE_CUDA='1', CUDA_HOME=CUDA_HOME,
               TORCH_CUDA_ARCH_LIST=os.environ.get('TORCH_CUDA_ARCH_LIST', '9.0'))
    build = subprocess.run(
        [sys.executable, 'setup.py', 'build_ext', '--build-lib', str(tmp_path / 'lib'),
         '--build-temp', str(tmp_path / 'tmp')], cwd=ROOT, env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    so = glob.glob(str(tmp_path / 'lib' / 'mmvit_plugins' / '_ext*.so'))
    assert len(so) == 1
    check = subprocess.run([sys.executable, '-c', CHECK, so[0]], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr[-3000:]
    assert 'cuda build ok' in check.stdout
