"""Build and install mmvit_plugins and its compiled ops (``mmvit_plugins._ext``).

Install into an environment that already has torch, with no build isolation (an isolated
build would install another torch just to compile against it)::

    pip install -v -e . --no-build-isolation

C++ CPU kernels are always built. The CUDA entry points are added when torch sees a GPU or
``FORCE_CUDA=1`` is set (nvcc needed; ``TORCH_CUDA_ARCH_LIST`` picks the architectures, by
default ``8.0;9.0``).
``MAX_JOBS`` limits parallel compile jobs.
"""
import os
import os.path as osp
from glob import glob

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))


def get_version():
    scope = {}
    with open(osp.join(ROOT, 'mmvit_plugins', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def get_extensions():
    try:
        import torch
        from torch.utils.cpp_extension import CppExtension, CUDAExtension
    except ImportError as e:
        raise SystemExit(
            'mmvit_plugins compiles its ops against the installed torch, which was not found '
            f'({e}). Install torch first, then `pip install -v -e . --no-build-isolation` '
            '(or run `make install`).')
    csrc = osp.join('mmvit_plugins', 'ops', 'csrc')
    sources = sorted(glob(osp.join(csrc, '*.cpp')) + glob(osp.join(csrc, 'cpu', '*.cpp')))
    # -fopenmp: at::parallel_for is an inline `#pragma omp parallel`, so without it the
    # kernels would run on one thread. -ffp-contract=fast: a * b + c may become one FMA where the
    # target has it (only the AVX2 builds of the loops, cpu/*_avx2.cpp; ISO C++ mode otherwise
    # forbids it). The baseline build targets plain x86-64, so one build runs on any x86-64 CPU.
    extra_compile_args = {'cxx': ['-O3', '-fopenmp', '-ffp-contract=fast']}
    define_macros = []
    extension = CppExtension
    with_cuda = os.getenv('FORCE_CUDA', '0') == '1' or torch.cuda.is_available()
    if with_cuda:
        # sm_80 (A100) and sm_90 (H100/H200) unless TORCH_CUDA_ARCH_LIST says otherwise: without
        # a visible GPU torch would otherwise guess the architectures
        os.environ.setdefault('TORCH_CUDA_ARCH_LIST', '8.0;9.0')
        extension = CUDAExtension
        sources += sorted(glob(osp.join(csrc, 'cuda', '*.cu')))
        define_macros.append(('WITH_CUDA', None))
        extra_compile_args['nvcc'] = ['-O3']
    print(f'mmvit_plugins: building the ops for CPU{" and CUDA" if with_cuda else ""} '
          f'against torch {torch.__version__}')
    return [
        extension(
            'mmvit_plugins._ext',
            sources,
            include_dirs=[osp.join(ROOT, csrc)],
            define_macros=define_macros,
            extra_compile_args=extra_compile_args,
            extra_link_args=['-fopenmp'])
    ]


def build_ext_cmdclass():
    from torch.utils.cpp_extension import BuildExtension
    return {'build_ext': BuildExtension}


setup(
    name='mmvit_plugins',
    version=get_version(),
    description='HRViT, ELSA-Swin, Container, CloFormer and MAFormer backbones and compiled '
    'sliding-window attention ops for mmdetection, mmsegmentation and mmpretrain',
    long_description=open(osp.join(ROOT, 'README.md')).read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.8',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'tests.*')),
    package_data={'mmvit_plugins.ops': ['csrc/*.h', 'csrc/*/*.h', 'csrc/*.cpp', 'csrc/*/*.cpp',
                                        'csrc/*/*.cu', 'csrc/*/*.cuh']},
    # The OpenMMLab stack is pinned in requirements/ and installed by `make install`; it is not
    # declared here because pip would pick an mmcv (2.2) that mmdet 3.3 and mmseg 1.2 refuse.
    install_requires=[],
    ext_modules=get_extensions(),
    cmdclass=build_ext_cmdclass(),
    zip_safe=False)
