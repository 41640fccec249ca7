"""``make test``'s scheduling holds: under ``-n 2 --dist loadgroup`` the tests of a module in
``SHARED_FIXTURE_MODULES`` run on one worker, so its module fixture is built once. (Under pytest 9
with pytest-xdist 3.8.0 no group held and both workers built each such fixture.)"""
import os
import subprocess
import sys

import pytest

pytest.importorskip('xdist')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SHARED = '''
import os
import pytest

@pytest.fixture(scope='module')
def built():
    with open(os.environ['BUILD_LOG'], 'a') as f:
        f.write(os.environ.get('PYTEST_XDIST_WORKER', '?') + '\\n')

@pytest.mark.parametrize('i', range(8))
def test_uses_fixture(built, i):
    pass
'''

OTHER = '''
import pytest

@pytest.mark.parametrize('i', range(8))
def test_other(i):
    pass
'''


def test_a_shared_fixture_module_is_built_once_under_loadgroup(tmp_path):
    # the name of a module in SHARED_FIXTURE_MODULES, with our conftest
    (tmp_path / 'conftest.py').write_text(open(os.path.join(ROOT, 'tests', 'conftest.py')).read())
    (tmp_path / 'test_infer.py').write_text(SHARED)
    (tmp_path / 'test_zz_other.py').write_text(OTHER)
    log = tmp_path / 'builds.txt'
    env = dict(os.environ, BUILD_LOG=str(log))
    proc = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-n', '2', '--dist', 'loadgroup', '-p',
         'no:cacheprovider', str(tmp_path)], cwd=str(tmp_path), env=env, capture_output=True,
        text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert '16 passed' in proc.stdout
    assert log.read_text().split() in (['gw0'], ['gw1']), log.read_text()
