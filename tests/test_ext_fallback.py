"""Without the compiled extension the package still imports, warns once, and the ops run their
pure-PyTorch references."""
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import sys, warnings
    sys.modules['mmvit_plugins._ext'] = None  # makes `import mmvit_plugins._ext` fail
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        import mmvit_plugins
        from mmvit_plugins import ops
    ours = [w for w in caught if 'mmvit_plugins' in str(w.message)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    assert 'did not load' in str(ours[0].message) and 'pure-PyTorch' in str(ours[0].message)
    assert ops.HAS_EXT is False

    import torch
    v = torch.randn(2, 4, 6, 5, dtype=torch.float64, requires_grad=True)
    attn = torch.randn(2, 2, 9, 6, 5, dtype=torch.float64)
    out = ops.elsa_aggregate(v, attn, 3)
    assert torch.equal(out, ops.elsa_aggregate_reference(v, attn, 3))
    out.sum().backward()
    assert v.grad is not None

    q = torch.randn(1, 6, 7, 2, 4, requires_grad=True)
    out = ops.na2d(q, q, q, 3, 2)
    assert torch.equal(out, ops.na2d_reference(q, q, q, 3, 2))
    out.sum().backward()
    assert q.grad is not None
    try:
        ops.na2d(q, q, q, 4)
    except ValueError as e:
        assert 'kernel_size' in str(e)
    else:
        raise AssertionError('bad kernel_size accepted')
    print('fallback ok')
''')


def test_import_without_extension_falls_back():
    result = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'fallback ok' in result.stdout
