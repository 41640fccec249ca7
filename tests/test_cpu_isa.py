"""The per-ISA builds of the CPU kernels: which one runs, how to choose, and that the baseline
build really is baseline x86-64 (so one wheel runs on any x86-64 CPU).

The numerical tests of every op run under each available build (the ``cpu_isa`` fixture of
conftest.py, and the ISA drawn in test_fuzz_ops.py).
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

from mmvit_plugins import ops
from mmvit_plugins.ops import _ext


def _cpu_flags():
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('flags'):
                return set(line.split(':', 1)[1].split())
    return set()


# Loads the extension file alone (torch, not the whole package: faster) and prints its choice.
_LOAD_EXT = f"""
import importlib.util, torch
spec = importlib.util.spec_from_file_location('mmvit_plugins._ext', {_ext.EXT_PATH!r})
ext = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ext)
print(ext.cpu_isa(), *ext.available_cpu_isas())
"""


def _run(code, env_isa):
    env = dict(os.environ)
    env.pop('MMVIT_CPU_ISA', None)
    if env_isa is not None:
        env['MMVIT_CPU_ISA'] = env_isa
    return subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_best_build_for_this_cpu_runs_by_default():
    res = _run(_LOAD_EXT, None)
    assert res.returncode == 0, res.stderr
    out = res.stdout.split()
    flags = _cpu_flags()
    has_avx2 = os.uname().machine == 'x86_64' and {'avx2', 'fma'} <= flags
    assert out[0] == ('avx2' if has_avx2 else 'baseline')
    assert out[1:] == (['baseline', 'avx2'] if has_avx2 else ['baseline'])


def test_environment_variable_picks_the_baseline_build():
    res = _run(_LOAD_EXT, 'baseline')
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[0] == 'baseline'


def test_a_bad_environment_variable_fails_the_import_in_one_line():
    res = _run('import mmvit_plugins', 'avx512')
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert last == ("ImportError: mmvit_plugins: MMVIT_CPU_ISA='avx512': expected one of "
                    "'baseline', 'avx2'")


def test_set_cpu_isa_and_override():
    before = ops.cpu_isa()
    for isa in ops.available_cpu_isas():
        with ops.cpu_isa_override(isa):
            assert ops.cpu_isa() == isa
        assert ops.cpu_isa() == before
    with pytest.raises(TypeError, match='isa must be a str'):
        ops.set_cpu_isa(2)
    with pytest.raises(ValueError, match="isa='sse4': expected one of 'baseline', 'avx2'"):
        ops.set_cpu_isa('sse4')
    assert ops.cpu_isa() == before


@pytest.mark.skipif('avx2' in ops.available_cpu_isas(),
                    reason='checks the refusal on a CPU without AVX2/FMA; this CPU has them')
def test_avx2_refused_where_the_cpu_lacks_it():
    with pytest.raises(ValueError, match='avx2'):
        ops.set_cpu_isa('avx2')


def _functions_with_vex_code(path):
    """{demangled function name: whether it holds a VEX-encoded (AVX) instruction or ymm/zmm
    register}, from objdump's disassembly of the library."""
    dis = subprocess.run(['objdump', '-d', '-C', '--no-show-raw-insn', path], capture_output=True,
                         text=True, check=True).stdout
    funcs, name = {}, None
    for line in dis.splitlines():
        head = re.match(r'^[0-9a-f]+ <(.*)>:$', line)
        if head:
            name = head.group(1)
            funcs[name] = False
        elif name is not None and '\t' in line:
            insn = line.split('\t')[1].strip()
            if insn.startswith('v') or 'ymm' in insn or 'zmm' in insn:
                funcs[name] = True
    return funcs


@pytest.mark.skipif(shutil.which('objdump') is None,
                    reason='needs objdump (binutils) to disassemble the extension')
@pytest.mark.skipif(os.uname().machine != 'x86_64',
                    reason='disassembles x86-64 code; this machine is not x86-64')
def test_only_the_avx2_build_holds_avx_instructions():
    funcs = _functions_with_vex_code(_ext.EXT_PATH)
    with_vex = sorted(n for n, vex in funcs.items() if vex)
    assert [n for n in with_vex if 'cpu_avx2::' not in n] == [], \
        'AVX code outside the AVX2 build: the library would crash on a CPU without AVX'
    baseline = [n for n in funcs if 'cpu_baseline::' in n]
    assert baseline, 'no baseline build of the CPU loops found'
    if 'avx2' in ops.available_cpu_isas():  # the AVX2 build really is AVX2 code
        for loop in ('na_dot<float>', 'na_sum<float>', 'na_inverse_sum<float>'):
            assert any(f'cpu_avx2::{loop}' in n for n in with_vex), loop
