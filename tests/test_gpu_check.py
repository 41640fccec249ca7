"""tools/gpu_check.sh without a GPU: it says so, runs its CPU part (import check, extension
check, CPU benchmark smoke run) with the extension already built, writes its summary, and exits
3. The GPU steps themselves need a GPU machine (docs/benchmarks.md)."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCRIPT = osp.join(ROOT, 'tools', 'gpu_check.sh')

pytestmark = pytest.mark.skipif(
    shutil.which('bash') is None or shutil.which('timeout') is None,
    reason='needs bash and coreutils timeout')


def test_gpu_check_without_a_gpu_runs_its_cpu_part(tmp_path):
    out = tmp_path / 'out'
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='')  # no GPU, even on a GPU machine
    result = subprocess.run(
        ['bash', SCRIPT, '--python', sys.executable, '--skip-build', '--wheels',
         str(tmp_path / 'no_wheels'), '--out', str(out), '--budget', '150'],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    log = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 3, log
    assert 'no CUDA GPU found: ' in result.stdout, log

    summary = (out / 'summary.txt').read_text()
    assert 'no CUDA GPU found: ' in summary and 'torch.cuda.is_available() = False' in summary
    assert f'python: {sys.executable}' in summary
    for line in ('build          not run (--skip-build)', 'verify         ok',
                 'test           skipped: no CUDA GPU', 'ops            skipped: no CUDA GPU',
                 'models         skipped: no CUDA GPU', 'smoke          ok'):
        assert line in summary, line
    assert 'RESULT: no CUDA GPU found' in summary
    assert summary in result.stdout  # the summary is also the end of what it prints

    report = json.loads((out / 'ops_cpu_quick.json').read_text())
    assert report['machine']['has_ext'] is True
    assert {r['case'] for r in report['results']} == {'ELSA tiny', 'NA tiny'}
    assert '===== verify' in (out / 'gpu_check.log').read_text()
    # the device tool brings back at most 8 files, from the top of the folder
    assert sorted(p.name for p in out.iterdir()) == ['gpu_check.log', 'ops_cpu_quick.json',
                                                     'summary.txt']


@pytest.mark.parametrize('args, message', [
    (['--steps', 'install,bogus'], 'unknown step in --steps: bogus'),
    (['--budget', 'soon'], '--budget must be a whole number'),
    (['--frobnicate'], 'unknown argument: --frobnicate'),
])
def test_gpu_check_rejects_bad_arguments(args, message):
    result = subprocess.run(['bash', SCRIPT, *args], capture_output=True, text=True, cwd=ROOT,
                            timeout=30)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_gpu_check_help_is_its_header():
    result = subprocess.run(['bash', SCRIPT, '--help'], capture_output=True, text=True,
                            cwd=ROOT, timeout=30)
    assert result.returncode == 0
    assert 'Usage:' in result.stdout and 'pip download --no-deps -d .devwheels' in result.stdout
    assert 'Exit status: 0' in result.stdout and not result.stdout.startswith('#')
