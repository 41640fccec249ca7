"""The C++ CPU kernels under AddressSanitizer + UndefinedBehaviorSanitizer.

``tools/build_sanitized_ext.py`` compiles the CPU sources with ``-fsanitize=address,undefined``
into ``build/asan/`` (the normal in-place extension is untouched) and runs a command with that
library loaded as ``mmvit_plugins._ext`` (``MMVIT_EXT_PATH``), the ASan runtime preloaded and
every report fatal; it ends with ``N sanitizer report(s)``. The first build takes about 4 CPU
minutes (2 on an idle two-core machine); later ones only relink.

The full run (all op tests and fuzz tests; it must end with ``0 sanitizer report(s)``)::

    python tools/build_sanitized_ext.py -- python -m pytest tests/test_ops_na.py \\
        tests/test_ops_elsa.py tests/test_fuzz_ops.py -q -p no:cacheprovider --capture=sys

In the suite: the same three files less their gradcheck and opcheck tests, the fuzz tests with
``MMVIT_FUZZ_EXAMPLES=20`` (``FUZZ_EXAMPLES``). Both are skipped where the compiler has no ASan
runtime. The suite builds into ``$MMVIT_CACHE/asan-build`` (default ``~/.cache/mmvit_plugins``),
which the tool reuses while the content of the sources and tool versions is unchanged (as the
mmcv wheel and the CUDA build test's library are cached), so a fresh clone of the same code does
not recompile; ``MMVIT_NO_BUILD_CACHE=1`` builds into the test's temporary folder instead.
"""
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap

import pytest

from _build_cache import cache_dir, use_cache

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(ROOT, 'tools', 'build_sanitized_ext.py')
sys.path.insert(0, osp.join(ROOT, 'tools'))
import build_sanitized_ext as sanitized  # noqa: E402

# The in-suite subset: the op and fuzz tests less gradcheck and opcheck (a few hundred calls of
# the same kernels each; about 10 s apiece under ASan), the fuzz tests with fewer examples.
FUZZ_EXAMPLES = 20
SUITE_ARGS = ['tests/test_ops_na.py', 'tests/test_ops_elsa.py', 'tests/test_fuzz_ops.py']
SUITE_SELECT = ['-k', 'not gradcheck and not opcheck']
CACHED_BUILD_DIR = cache_dir('asan-build')


@pytest.fixture
def build_dir(tmp_path):
    """Where the sanitized build goes: the cache, or a fresh folder with MMVIT_NO_BUILD_CACHE=1."""
    if not use_cache():
        return str(tmp_path / 'asan')
    return CACHED_BUILD_DIR



def _asan_missing():
    try:
        sanitized.runtime_library('libasan.so')
    except sanitized.SanitizerBuildError as e:
        return str(e)
    return None


ASAN_MISSING = _asan_missing()
needs_asan = pytest.mark.skipif(ASAN_MISSING is not None, reason=str(ASAN_MISSING))

# Run in the sanitized process before the tests: which extension file is loaded, and the
# in-place one must not be mapped at all.
DRIVER = textwrap.dedent('''
    import glob, os, sys
    import pytest
    from mmvit_plugins.ops import _ext
    maps = open('/proc/self/maps').read()
    inplace = [p for p in glob.glob(os.path.abspath('mmvit_plugins/_ext*.so')) if p in maps]
    print(f'SANITIZED_EXT_PATH={_ext.EXT_PATH} HAS_EXT={_ext.HAS_EXT} '
          f'ASAN_MAPPED={"libasan" in maps} INPLACE_MAPPED={bool(inplace)}', flush=True)
    sys.exit(pytest.main(sys.argv[1:]))
''')


def run_tool(*command, build_dir, env=None, timeout=1800):
    return subprocess.run([sys.executable, TOOL, '--build-dir', build_dir, '--', *command],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@needs_asan
def test_op_and_fuzz_tests_clean_under_asan_and_ubsan(tmp_path, build_dir):
    env = dict(os.environ, MMVIT_FUZZ_EXAMPLES=str(FUZZ_EXAMPLES))
    # --capture=sys: a report must reach the real stderr (see tools/build_sanitized_ext.py)
    result = run_tool(sys.executable, '-c', DRIVER, *SUITE_ARGS, *SUITE_SELECT, '-q', '-p',
                      'no:cacheprovider', '--capture=sys', f'--basetemp={tmp_path / "inner"}',
                      build_dir=build_dir, env=env)
    output = result.stdout + result.stderr
    assert sanitized.count_reports(output) == 0, output[-6000:]
    assert 'build_sanitized_ext.py: 0 sanitizer report(s); the command exited with 0' in output, \
        output[-6000:]
    assert result.returncode == 0, output[-6000:]
    expected = sanitized.built_library(build_dir)
    assert expected is not None and f'SANITIZED_EXT_PATH={expected} HAS_EXT=True' in output, \
        output[-3000:]
    assert 'ASAN_MAPPED=True INPLACE_MAPPED=False' in output, output[-3000:]
    assert ' passed' in output and ' failed' not in output, output[-3000:]


def test_a_build_is_reused_while_the_content_of_its_inputs_is_unchanged(tmp_path, monkeypatch):
    # By content, not by mtime: a fresh clone (new mtimes) of the same code reuses the build;
    # any change of content does not.
    src = tmp_path / 'kernel.cpp'
    src.write_text('int a;')
    monkeypatch.setattr(sanitized, '_inputs', lambda: [str(src)])
    key = sanitized.inputs_key()
    build = tmp_path / 'build'
    build.mkdir()
    lib = build / '_ext.cpython-311-x86_64-linux-gnu.so'
    lib.write_bytes(b'')
    assert sanitized._up_to_date(str(build), key) is None  # never stamped: not a finished build
    (build / sanitized.STAMP).write_text(key + '\n')
    assert sanitized._up_to_date(str(build), key) == str(lib)
    os.utime(src, (1e9, 2e9))  # touched, same content
    assert sanitized.inputs_key() == key
    src.write_text('int b;')
    changed = sanitized.inputs_key()
    assert changed != key and sanitized._up_to_date(str(build), changed) is None


# ----------------------------------------------------------------------------- the run can fail

# A library built like the sanitized extension (Python's -fwrapv first, as setuptools passes it)
# that reads one element past a tensor torch allocated, or overflows a signed int.
BAD_CPP = '''
extern "C" double read_at(const double* p, long i) { return p[i]; }
extern "C" int add(int a, int b) { return a + b; }
'''
BAD_CALLER = textwrap.dedent('''
    import ctypes, sys, torch
    lib = ctypes.CDLL(sys.argv[1])
    lib.read_at.restype = ctypes.c_double
    lib.read_at.argtypes = [ctypes.c_void_p, ctypes.c_long]
    x = torch.zeros(5, dtype=torch.float64)
    lib.read_at(x.data_ptr(), 4)  # the last element: fine
    print('in bounds ok', flush=True)
    if sys.argv[2] == 'oob':
        lib.read_at(x.data_ptr(), 5)
    else:
        lib.add(2**31 - 1, 1)
    print('NOT REPORTED', flush=True)
''')


@needs_asan
@pytest.mark.parametrize('fault,report,exit_code', [
    ('oob', 'ERROR: AddressSanitizer: heap-buffer-overflow', 86),
    ('overflow', 'runtime error: signed integer overflow', 87),
])
def test_sanitized_run_fails_on_a_report(tmp_path, fault, report, exit_code):
    src = tmp_path / 'bad.cpp'
    src.write_text(BAD_CPP)
    lib = tmp_path / 'libbad.so'
    subprocess.run([sanitized.compiler(), '-shared', '-fPIC', '-fwrapv', *sanitized.SANITIZE_FLAGS,
                    str(src), '-o', str(lib)], check=True)
    result = subprocess.run([sys.executable, '-c', BAD_CALLER, str(lib), fault],
                            env=sanitized.sanitizer_env(), capture_output=True, text=True,
                            timeout=300)
    assert 'in bounds ok' in result.stdout, result.stdout + result.stderr[-3000:]
    assert 'NOT REPORTED' not in result.stdout
    assert report in result.stderr, result.stderr[-3000:]
    assert result.returncode == exit_code
    assert sanitized.count_reports(result.stderr, result.returncode) == 1
    assert sanitized.count_reports('', result.returncode) == 1  # the text lost, still counted


# ----------------------------------------------------------------------------- MMVIT_EXT_PATH

IMPORT = 'import mmvit_plugins.ops as ops; print("EXT_PATH", ops._ext.EXT_PATH, ops.HAS_EXT)'
INPLACE = glob.glob(osp.join(ROOT, 'mmvit_plugins', '_ext*.so'))


def test_ext_path_unset_loads_the_inplace_build():
    from mmvit_plugins.ops import _ext
    assert _ext.HAS_EXT and [_ext.EXT_PATH] == INPLACE


def test_ext_path_loads_that_file(tmp_path):
    # A copy of the in-place build at another path is the one loaded.
    copy = tmp_path / osp.basename(INPLACE[0])
    shutil.copy(INPLACE[0], copy)
    result = subprocess.run([sys.executable, '-c', IMPORT], capture_output=True, text=True,
                            env=dict(os.environ, MMVIT_EXT_PATH=str(copy)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'EXT_PATH {copy} True' in result.stdout


def test_unusable_ext_path_fails_the_import(tmp_path):
    # Not a fallback to the references with a warning: the library asked for did not load.
    result = subprocess.run([sys.executable, '-c', IMPORT], capture_output=True, text=True,
                            env=dict(os.environ, MMVIT_EXT_PATH=str(tmp_path / 'missing.so')))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('ImportError: MMVIT_EXT_PATH=') and 'is not a file' in last, \
        result.stderr[-3000:]


@pytest.mark.parametrize('kind,match', [
    ('missing', 'is not a file'),
    ('folder', 'is not a file'),
    ('text', 'is not a Python extension module'),
    ('broken', 'did not load: ImportError: .*file too short'),
])
def test_unusable_ext_path_errors(tmp_path, kind, match):
    from mmvit_plugins.ops._ext import _load_ext_from
    path = tmp_path / dict(missing='missing.so', folder='', text='notes.txt',
                           broken='_ext.cpython-311-x86_64-linux-gnu.so')[kind]
    if kind == 'text':
        path.write_text('not a library')
    elif kind == 'broken':
        path.write_bytes(b'\x7fELF')  # a truncated shared object
    with pytest.raises(ImportError, match=f'MMVIT_EXT_PATH=.* {match}'):
        _load_ext_from(str(path))


@pytest.mark.slow
@needs_asan
def test_sanitized_build_without_preload_is_a_clear_import_error(build_dir):
    # Loaded without the ASan runtime first, the library would end the process ("ASan runtime
    # does not come first"); the import says how to run it instead. (This process has no ASan.)
    from mmvit_plugins.ops._ext import _asan_runtime_loaded, _load_ext_from
    assert not _asan_runtime_loaded()
    path = sanitized.build(build_dir, quiet=True)  # reused when up to date
    with pytest.raises(ImportError, match=r'built with AddressSanitizer.*LD_PRELOAD=\$\(gcc'):
        _load_ext_from(path)
