"""tools/analysis/benchmark_ops.py and benchmark_models.py (their ``main`` in this process: no
second interpreter start-up; ``tests/test_gpu_check.py`` runs benchmark_ops.py from the command
line) run and write their tables and JSON (smoke tests: no timings are asserted; benchmarks are
scripts, not tests)."""
import json
import os.path as osp

from _cli import run_main_here

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BENCH_OPS = osp.join(ROOT, 'tools', 'analysis', 'benchmark_ops.py')
BENCH_MODELS = osp.join(ROOT, 'tools', 'analysis', 'benchmark_models.py')


def test_benchmark_quick(tmp_path):
    out = tmp_path / 'bench.json'
    result = run_main_here(BENCH_OPS, '--quick', '--out', out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'fwd+bwd ms' in result.stdout and 'compiled' in result.stdout
    report = json.loads(out.read_text())
    assert report['machine']['has_ext'] is True
    impls = {(r['case'], r['impl']) for r in report['results']}
    assert {('ELSA tiny', 'compiled'), ('ELSA tiny', 'reference'), ('NA tiny', 'compiled'),
            ('NA tiny', 'reference')} <= impls
    for r in report['results']:
        for mode in ('fwd', 'fwd+bwd'):
            assert r[mode]['median_ms'] > 0 and r[mode]['iters'] >= 2
        if r['max_abs_err'] is not None:  # outputs are checked against the reference
            assert r['max_abs_err'] < 1e-4
    assert any(row['vs'] == 'reference' for row in report['ratios'])
    # the build of the CPU kernels in use is printed and recorded
    assert report['machine']['cpu_isa'] in report['machine']['available_cpu_isas']
    assert f"CPU kernels: the {report['machine']['cpu_isa']} build" in result.stdout
    # ours under every ISA against the same-work yardstick, interleaved
    inter = {(r['case'], r['mode'], r['impl'], r['yardstick']) for r in report['interleaved']}
    assert inter == {(case, mode, f'ours[{isa}]', yard)
                     for case, yard in (('ELSA tiny', 'dwconv'), ('NA tiny', 'wsa-sdpa'))
                     for mode in ('fwd', 'fwd+bwd')
                     for isa in report['machine']['available_cpu_isas']}
    for r in report['interleaved']:
        assert r['rounds'] == 3 and r['ratio_min'] > 0 and r['min_ms'] <= r['median_ms']
    assert 'interleaved (3 rounds' in result.stdout


def test_benchmark_models_quick(tmp_path):
    out = tmp_path / 'models.json'
    result = run_main_here(
        BENCH_MODELS, '--models', 'ELSASwin-tiny', '--size', '64', '--batch', '1', '--warmup',
        '0', '--min-iters', '2', '--min-time', '0', '--impl', 'compiled', 'reference',
        '--dtype', 'fp32', 'bf16', '--out', out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'reference / compiled' in result.stdout
    report = json.loads(out.read_text())
    cases = {(r['mode'], r['dtype'], r['impl']) for r in report['results']}
    assert cases == {(m, d, i) for m in ('infer', 'train') for d in ('fp32', 'bf16')
                     for i in ('compiled', 'reference')}
    for r in report['results']:
        assert r['images_per_s'] > 0 and r['iters'] >= 2
    assert len(report['ratios']) == 4 and all(r['time_ratio'] > 0 for r in report['ratios'])


def test_benchmark_models_rejects_unknown_model():
    result = run_main_here(BENCH_MODELS, '--models', 'ResNet-50')
    assert result.returncode == 2 and "unknown model 'ResNet-50'" in result.stderr


def test_benchmark_models_peer_swin(tmp_path):
    """Also in a process where mmdet's scope is the default (as after an mmdet runner): the
    peer is still mmpretrain's SwinTransformer, not mmdet's."""
    import mmdet.models  # noqa: F401
    from mmengine.registry import DefaultScope
    out = tmp_path / 'peers.json'
    with DefaultScope.overwrite_default_scope('mmdet'):
        result = run_main_here(
            BENCH_MODELS, '--models', 'ELSASwin-tiny', '--peers', '--size', '64', '--batch',
            '1', '--warmup', '0', '--min-iters', '2', '--min-time', '0', '--rounds', '2',
            '--out', out)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert {(r['model'], r['mode']) for r in report['results']} == {
        (m, mode) for m in ('ELSASwin-tiny', 'mmpretrain.SwinTransformer-tiny')
        for mode in ('infer', 'train')}
    assert [(r['model'], r['peer'], r['mode'], r['rounds']) for r in report['peers']] == [
        ('ELSASwin-tiny', 'mmpretrain.SwinTransformer-tiny', mode, 2)
        for mode in ('infer', 'train')]
    for r in report['peers']:
        assert r['ratio_min'] > 0 and r['min_ms'] <= r['median_ms']
    assert 'ours / peer, interleaved (2 rounds' in result.stdout
