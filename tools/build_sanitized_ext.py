"""Build the C++ CPU ops with AddressSanitizer + UndefinedBehaviorSanitizer, and run under them.

The sanitized extension is compiled from the same CPU sources as ``setup.py`` (CUDA is left out)
with ``-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g
-O1 -fno-wrapv -fopenmp`` into its own folder (default ``build/asan/``); the normal in-place
``mmvit_plugins/_ext*.so`` is never touched. A build is reused as it is while the content of
what it was built from is unchanged (the sources, our headers, this script, the torch, compiler
and Python versions: a SHA-256 stamp next to the library, so a fresh clone of the same code
reuses a build folder outside the repository, e.g. the test suite's
``$MMVIT_CACHE/asan-build``); otherwise ninja recompiles only what changed. Concurrent builds
into one folder wait for each other (a lock file).
``MMVIT_EXT_PATH`` then makes ``mmvit_plugins.ops._ext`` load that library instead of the normal
one (``mmvit_plugins.ops._ext.EXT_PATH`` says which one was loaded).

Python itself is not instrumented, so the sanitizer runtime must be preloaded: ``LD_PRELOAD`` of
gcc's ``libasan.so`` (``gcc -print-file-name=libasan.so``) and then ``libstdc++.so`` (without
it, the first C++ exception thrown anywhere aborts with ``CHECK failed: ... real___cxa_throw``);
libubsan is a plain dependency of the library and needs no preload. The run's environment
(:func:`sanitizer_env`):

* ``ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86``: the interpreter
  "leaks" its own objects by design, so the leak checker is off; every memory error stops the
  process with exit code 86.
* ``UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87``: undefined behaviour stops the
  process too (the code is also built with ``-fno-sanitize-recover=undefined``, so it cannot
  continue past a report whatever the options say).

With a command, its stderr is passed through and scanned, and the run ends with
``build_sanitized_ext.py: N sanitizer report(s)``; the exit code is the command's, or 1 when
it exited with 0 despite a report. A report ends the process at once, so run pytest with
``--capture=sys`` (or ``-s``): under its default file-descriptor capture the report's text would
be lost with the process (the exit code, 86 or 87, still counts as a report).

Usage::

    # build (or bring up to date) and print the environment to run anything under it
    python tools/build_sanitized_ext.py
    # build, then run a command under the sanitizers
    python tools/build_sanitized_ext.py -- python -m pytest tests/test_ops_na.py \\
        tests/test_ops_elsa.py tests/test_fuzz_ops.py -q -p no:cacheprovider --capture=sys

or by hand, after a build::

    LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)" \\
    MMVIT_EXT_PATH=build/asan/_ext.cpython-311-x86_64-linux-gnu.so ASAN_OPTIONS=detect_leaks=0 \\
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 python -m pytest --capture=sys ...
"""
import argparse
import fcntl
import hashlib
import os
import os.path as osp
import shlex
import subprocess
import sys
from glob import glob

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CSRC = osp.join(ROOT, 'mmvit_plugins', 'ops', 'csrc')
DEFAULT_BUILD_DIR = osp.join(ROOT, 'build', 'asan')

# -fno-wrapv undoes the -fwrapv of Python's own CFLAGS, which would define signed overflow and
# hide it from UBSan. -O1 keeps the stack traces readable and the run fast enough.
SANITIZE_FLAGS = [
    '-fsanitize=address,undefined', '-fno-sanitize-recover=undefined',
    '-fno-omit-frame-pointer', '-g', '-O1', '-fno-wrapv'
]
ASAN_OPTIONS = 'detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86'
UBSAN_OPTIONS = 'print_stacktrace=1:halt_on_error=1:exitcode=87'
# What a report starts with (the test and the CLI look for them in the output), and the exit
# codes a report ends the process with.
REPORT_MARKERS = ('ERROR: AddressSanitizer', 'runtime error:', 'ERROR: LeakSanitizer')
SANITIZER_EXIT_CODES = (86, 87)


class SanitizerBuildError(RuntimeError):
    """The sanitized build failed, or the sanitizer runtime was not found."""


def sources() -> list:
    """The C++ sources of the CPU build, as in ``setup.py`` (bindings + ``cpu/*.cpp``)."""
    return sorted(glob(osp.join(CSRC, '*.cpp')) + glob(osp.join(CSRC, 'cpu', '*.cpp')))


def compiler() -> str:
    return os.environ.get('CXX', 'c++')


def runtime_library(name: str = 'libasan.so') -> str:
    """The absolute path of the compiler's sanitizer runtime ``name`` (``-print-file-name``)."""
    try:
        path = subprocess.run([compiler(), f'-print-file-name={name}'], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        raise SanitizerBuildError(f'cannot ask the compiler {compiler()!r} for {name}: {e}')
    if not osp.isabs(path) or not osp.isfile(path):
        raise SanitizerBuildError(
            f'the compiler {compiler()!r} has no {name} (got {path!r}); install its sanitizer '
            'runtime (Debian: libasan8 / libubsan1 for gcc 12)')
    return path


def built_library(build_dir: str = DEFAULT_BUILD_DIR):
    """The sanitized ``_ext*.so`` in ``build_dir``, or None when it has not been built."""
    found = sorted(glob(osp.join(build_dir, '_ext*.so')))
    return found[0] if found else None


def _inputs() -> list:
    """Every file the build depends on: sources, our headers, this script (its flags) and torch
    (its version file stands for its headers)."""
    import torch
    headers = [p for ext in ('h', 'cuh', 'hpp') for p in glob(osp.join(CSRC, '**', f'*.{ext}'),
                                                               recursive=True)]
    return sources() + headers + [osp.abspath(__file__), osp.join(osp.dirname(torch.__file__),
                                                                   'version.py')]


STAMP = '.inputs-sha256'


def inputs_key() -> str:
    """A SHA-256 of everything the build reads: the content of :func:`_inputs` (names relative
    to the repository) and the torch, compiler and Python versions."""
    import torch
    h = hashlib.sha256()
    for path in _inputs():
        h.update(osp.relpath(path, ROOT).encode() + b'\0')
        with open(path, 'rb') as f:
            h.update(f.read() + b'\0')
    try:
        cxx = subprocess.run([compiler(), '--version'], capture_output=True, text=True).stdout
    except OSError:
        cxx = compiler()
    h.update(f'{torch.__version__}|{cxx}|{sys.version}'.encode())
    return h.hexdigest()


def _up_to_date(build_dir: str, key: str):
    """The built library when ``build_dir``'s stamp is ``key``, else None."""
    path = built_library(build_dir)
    try:
        with open(osp.join(build_dir, STAMP)) as f:
            stamp = f.read().strip()
    except OSError:
        return None
    return path if path is not None and stamp == key else None


def build(build_dir: str = DEFAULT_BUILD_DIR, quiet: bool = False) -> str:
    """Compile the sanitized extension into ``build_dir`` unless it is up to date; returns its
    path. Only what changed is recompiled (ninja)."""
    try:
        import setuptools  # noqa: F401
        import torch.utils.cpp_extension  # noqa: F401
    except ImportError as e:
        raise SanitizerBuildError(f'the sanitized build needs torch and setuptools ({e})')
    runtime_library('libasan.so')  # fail early, with a clear message, if it is missing
    os.makedirs(build_dir, exist_ok=True)
    lock = open(osp.join(build_dir, '.lock'), 'w')
    fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent build into build_dir waits; released on close
    with lock:
        key = inputs_key()
        path = _up_to_date(build_dir, key)
        if path is not None:
            if not quiet:
                print(f'build_sanitized_ext.py: {path} is up to date', file=sys.stderr)
            return path
        if osp.exists(osp.join(build_dir, STAMP)):  # stale: gone until this build succeeds
            os.remove(osp.join(build_dir, STAMP))
        return _compile(build_dir, key, quiet)


def _compile(build_dir: str, key: str, quiet: bool) -> str:
    from setuptools import Distribution
    from torch.utils.cpp_extension import BuildExtension, CppExtension
    ext = CppExtension(
        '_ext',
        sources(),
        include_dirs=[CSRC],
        extra_compile_args={'cxx': SANITIZE_FLAGS + ['-fopenmp']},
        extra_link_args=['-fsanitize=address,undefined', '-fopenmp'])
    dist = Distribution(dict(name='mmvit_plugins_sanitized', ext_modules=[ext],
                             cmdclass={'build_ext': BuildExtension}))
    cmd = dist.get_command_obj('build_ext')
    cmd.build_lib = build_dir
    cmd.build_temp = osp.join(build_dir, 'tmp')
    # Something changed (see _inputs): hand over to ninja, which recompiles only what did.
    # Without force, setuptools would skip the build when only a header changed.
    cmd.force = True
    os.makedirs(cmd.build_temp, exist_ok=True)
    env_jobs = os.environ.setdefault('MAX_JOBS', '2')
    if not quiet:
        print(f'build_sanitized_ext.py: compiling {len(ext.sources)} sources into {build_dir} '
              f'(MAX_JOBS={env_jobs})', file=sys.stderr)
    try:
        cmd.ensure_finalized()
        cmd.run()
    except Exception as e:  # compiler errors surface as distutils/setuptools exceptions
        raise SanitizerBuildError(f'the sanitized build failed: {type(e).__name__}: {e}')
    path = built_library(build_dir)
    if path is None:
        raise SanitizerBuildError(f'the build finished but no _ext*.so is in {build_dir}')
    with open(osp.join(build_dir, STAMP), 'w') as f:  # only after a build that succeeded
        f.write(key + '\n')
    return path


def sanitizer_env(ext_path=None, base=None) -> dict:
    """The environment of a run under the sanitizers.

    Args:
        ext_path (str, optional): the library loaded as ``mmvit_plugins._ext``. Defaults to
            None (``MMVIT_EXT_PATH`` is left as it is).
        base (dict, optional): the environment to extend. Defaults to ``os.environ``.
    """
    env = dict(os.environ if base is None else base)
    # libasan first (it must come before everything it intercepts), then libstdc++: Python
    # does not link it, and without it loaded at ASan's start-up the interceptor of
    # __cxa_throw finds no real function, so the first C++ exception (in torch, matplotlib, ...)
    # ends the process with "CHECK failed: ... real___cxa_throw".
    preload = [runtime_library('libasan.so'), runtime_library('libstdc++.so')]
    if env.get('LD_PRELOAD'):
        preload.append(env['LD_PRELOAD'])
    env.update(LD_PRELOAD=' '.join(preload), ASAN_OPTIONS=ASAN_OPTIONS,
               UBSAN_OPTIONS=UBSAN_OPTIONS)
    if ext_path is not None:
        env['MMVIT_EXT_PATH'] = osp.abspath(ext_path)
    return env


def count_reports(text: str, returncode=None) -> int:
    """How many sanitizer reports ``text`` holds (each starts with one marker line); at least
    one when ``returncode`` is a sanitizer's exit code (the report text may have been lost)."""
    count = sum(any(m in line for m in REPORT_MARKERS) for line in text.splitlines())
    return max(count, int(returncode in SANITIZER_EXIT_CODES))


def run_under_sanitizers(command, ext_path=None):
    """Runs ``command`` under the sanitizers, its stderr copied to ours and scanned for reports.

    Returns:
        tuple[int, int]: the command's exit code and the number of reports.
    """
    proc = subprocess.Popen(command, env=sanitizer_env(ext_path), stderr=subprocess.PIPE,
                            text=True, errors='replace')
    count = 0
    for line in proc.stderr:
        sys.stderr.write(line)
        count += count_reports(line)
    returncode = proc.wait()
    return returncode, max(count, count_reports('', returncode))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='build_sanitized_ext.py',
        description='Build the C++ CPU ops with ASan + UBSan into a separate folder and run a '
        'command under them (see the module docstring).')
    parser.add_argument('--build-dir', default=DEFAULT_BUILD_DIR,
                        help='where the sanitized _ext*.so goes. Defaults to build/asan.')
    parser.add_argument('command', nargs=argparse.REMAINDER,
                        help='after "--": the command to run under the sanitizers')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    command = args.command[1:] if args.command[:1] == ['--'] else args.command
    try:
        path = build(osp.abspath(args.build_dir))
        env = sanitizer_env(path)
    except (SanitizerBuildError, OSError) as e:
        print(f'build_sanitized_ext.py: error: {e}', file=sys.stderr)
        return 1
    names = ('LD_PRELOAD', 'MMVIT_EXT_PATH', 'ASAN_OPTIONS', 'UBSAN_OPTIONS')
    assignments = ' '.join(f'{n}={shlex.quote(env[n])}' for n in names)
    if not command:
        print(f'build_sanitized_ext.py: built {path}\nRun under the sanitizers with:\n'
              f'{assignments} <command>')
        return 0
    print(f'build_sanitized_ext.py: running under the sanitizers: {assignments} '
          f'{shlex.join(command)}', file=sys.stderr, flush=True)
    try:
        returncode, count = run_under_sanitizers(command, path)
    except OSError as e:
        print(f'build_sanitized_ext.py: error: cannot run {command[0]!r}: {e}', file=sys.stderr)
        return 1
    print(f'build_sanitized_ext.py: {count} sanitizer report(s); the command exited with '
          f'{returncode}', file=sys.stderr)
    return returncode or (1 if count else 0)


if __name__ == '__main__':
    sys.exit(main())
