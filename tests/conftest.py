import os
import sys

import pytest

# Extended random sweeps of the op tests: MMVIT_EXTENDED_TESTS=1 make test
EXTENDED = os.environ.get('MMVIT_EXTENDED_TESTS', '0') == '1'

# Under pytest-xdist (`make test` runs two workers on two cores) each worker and every process it
# starts (the tools run as subprocesses) gets one intra-op thread: two workers with two threads
# each would oversubscribe the cores. Set here, before torch is imported.
XDIST_WORKER = os.environ.get('PYTEST_XDIST_WORKER')
if XDIST_WORKER:
    for _var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ[_var] = '1'

# Modules whose module-scoped fixtures are expensive (a training run, a compiled extension, built
# models): their tests go to one xdist worker together (`--dist loadgroup`), so that the fixture
# is built once, not once per worker.
SHARED_FIXTURE_MODULES = ('test_cuda_kernels_on_host', 'test_hrvit_cls', 'test_infer',
                          'test_resume_exact', 'test_test_tool', 'test_tools')
# The longest tests, started first: under xdist a long test that starts last holds the whole
# run up while the other worker has nothing left to do. A test's position elsewhere is kept.
LONG_FIRST = ('test_cuda_build.py', 'test_sanitizer.py::test_op_and_fuzz_tests_clean',
              'test_compile.py::test_demo_config_trains', 'test_infer.py', 'test_tools.py',
              'test_ddp_equivalence.py::test_detr', 'test_resume_exact.py',
              'test_cuda_kernels_on_host.py', 'test_test_tool.py', 'test_demo_training.py')


def pytest_configure(config):
    # torch imported before this file (by a plugin) has read OMP_NUM_THREADS already; one
    # imported later reads the 1 set above (a worker that runs no torch test never imports it)
    if XDIST_WORKER and 'torch' in sys.modules:
        sys.modules['torch'].set_num_threads(1)


# tryfirst: xdist's worker reads the xdist_group marks in its own collection_modifyitems hook;
# the marks added here must be there before it runs, whatever the plugin order
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.path.stem
        if module in SHARED_FIXTURE_MODULES:
            item.add_marker(pytest.mark.xdist_group(module))

    def long_first(item):
        name = f'{item.path.name}::{item.name}'
        return next((i for i, prefix in enumerate(LONG_FIRST) if name.startswith(prefix)),
                    len(LONG_FIRST))

    items.sort(key=long_first)  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def _seed():
    import torch
    torch.manual_seed(0)


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """A small copy of the bundled demo data (generated once per session); returns its root."""
    import os.path as osp
    import sys
    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools',
                                'dataset_converters'))
    from make_demo_data import make_demo_data
    root = str(tmp_path_factory.mktemp('demo_data'))
    return make_demo_data(root, seed=0, num_coco=(8, 4), num_semantic=(6, 3))


def _cpu_isas():
    from mmvit_plugins import ops
    return ops.available_cpu_isas() or ['reference']


def pytest_generate_tests(metafunc):
    # the builds are looked up (torch and our ops imported) only where a test asks for them,
    # not when this file loads: pytest-xdist's controller process imports it too
    if 'cpu_isa' in metafunc.fixturenames:
        metafunc.parametrize('cpu_isa', _cpu_isas(), indirect=True)


@pytest.fixture
def cpu_isa(request):
    """Runs the test once per build of the CPU kernels this CPU supports (baseline x86-64, AVX2);
    'reference' where the extension is missing."""
    from mmvit_plugins import ops
    if request.param == 'reference':
        yield request.param
        return
    with ops.cpu_isa_override(request.param):
        yield request.param
