"""Our models resolve from mmdet, mmseg and mmpretrain configs, under names none of them uses."""
import importlib
import subprocess
import sys
import textwrap

import pytest
from mmengine.registry import MODELS as ROOT

import mmvit_plugins  # noqa: F401

LIBS = ['mmdet', 'mmseg', 'mmpretrain']


def our_names():
    """Every name we register; the mmseg decode heads register once ``mmseg.models`` is
    imported (``mmvit_plugins.models``), so it is imported first."""
    importlib.import_module('mmseg.models')
    return sorted(n for n, c in ROOT._module_dict.items()
                  if c.__module__.startswith('mmvit_plugins.'))


def test_both_op_families_registered():
    assert {'ELSAAggregation', 'NeighborhoodAttention2D'} <= set(our_names())
    from mmvit_plugins.ops import registered_ops
    assert registered_ops() == {
        f'{op}_{step}': ['CPU'] + (['CUDA'] if mmvit_plugins.ops.WITH_CUDA else [])
        for op in ('elsa_aggregate', 'na2d_qk', 'na2d_av', 'na2d_fused')
        for step in ('forward', 'backward')
    }


@pytest.mark.parametrize('lib', LIBS)
def test_names_unique_and_resolved(lib):
    importlib.import_module(f'{lib}.models')  # fills the library's own registry
    registry = importlib.import_module(f'{lib}.registry').MODELS
    for name in our_names():
        assert name not in registry._module_dict, f'{name} clashes with {lib}'
        assert registry.get(name) is ROOT.get(name)


CONFIG = '''
default_scope = '{lib}'
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)
model = dict(type='NeighborhoodAttention2D', embed_dims=8, num_heads=2, kernel_size=3)
op = dict(type='ELSAAggregation', channels=4, kernel_size=3)
'''

BUILD = textwrap.dedent('''
    import importlib, sys
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    assert 'mmvit_plugins' not in sys.modules
    results = []
    for lib, path in zip(sys.argv[1::2], sys.argv[2::2]):
        cfg = Config.fromfile(path)  # runs custom_imports
        if lib == 'mmdet':  # the first: our import did not import mmseg's models
            results.append(f"mmseg.models:{'mmseg.models' in sys.modules}")
        registry = importlib.import_module(lib + '.registry').MODELS
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            model, op = registry.build(cfg.model), registry.build(cfg.op)
            if lib == 'mmseg':  # our decode head, registered as mmseg's scope imports its models
                head = registry.build(dict(type='HRViTSegformerHead', in_channels=[8, 16],
                                           in_index=[0, 1], channels=8, num_classes=3))
                results.append(f'{lib}:{type(head).__name__}')
        results.append(f'{lib}:{type(model).__name__}:{type(op).__name__}')
    print(' '.join(results))
''')


def test_config_with_custom_imports_resolves_in_each_library(tmp_path):
    args = []
    for lib in LIBS:
        path = tmp_path / f'{lib}_cfg.py'
        path.write_text(CONFIG.format(lib=lib))
        args += [lib, str(path)]
    result = subprocess.run([sys.executable, '-c', BUILD, *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [
        'mmseg.models:False', 'mmdet:NeighborhoodAttention2D:ELSAAggregation',
        'mmseg:HRViTSegformerHead', 'mmseg:NeighborhoodAttention2D:ELSAAggregation',
        'mmpretrain:NeighborhoodAttention2D:ELSAAggregation']
