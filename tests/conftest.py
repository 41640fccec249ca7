import os

import pytest

# Extended random sweeps of the op tests: MMVIT_EXTENDED_TESTS=1 make test
EXTENDED = os.environ.get('MMVIT_EXTENDED_TESTS', '0') == '1'


@pytest.fixture(autouse=True)
def _seed():
    import torch
    torch.manual_seed(0)
