import os

import pytest

# Extended random sweeps of the op tests: MMVIT_EXTENDED_TESTS=1 make test
EXTENDED = os.environ.get('MMVIT_EXTENDED_TESTS', '0') == '1'


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


@pytest.fixture(params=_cpu_isas())
def cpu_isa(request):
    """Runs the test once per build of the CPU kernels this CPU supports (baseline x86-64, AVX2);
    'reference' where the extension is missing."""
    from mmvit_plugins import ops
    if request.param == 'reference':
        yield request.param
        return
    with ops.cpu_isa_override(request.param):
        yield request.param
