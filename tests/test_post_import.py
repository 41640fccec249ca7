"""``when_imported``: the post-import hook that registers the mmseg decode heads lazily."""
import sys

import pytest

from mmvit_plugins.utils.post_import import _PostImportFinder, when_imported


def hooked(name):
    return any(isinstance(f, _PostImportFinder) and f.name == name for f in sys.meta_path)


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    """A package ``hookpkg`` with a submodule ``sub`` (records that its code ran) and a
    submodule ``broken`` that raises."""
    root = tmp_path / 'hookpkg'
    root.mkdir()
    (root / '__init__.py').write_text('')
    (root / 'sub.py').write_text('import builtins\nbuiltins._hook_events.append("sub ran")\n'
                                 'VALUE = 7\n')
    (root / 'broken.py').write_text('raise RuntimeError("broken on import")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    import builtins
    monkeypatch.setattr(builtins, '_hook_events', [], raising=False)
    meta_path = list(sys.meta_path)
    yield builtins._hook_events
    for name in ('hookpkg', 'hookpkg.sub', 'hookpkg.broken'):
        sys.modules.pop(name, None)
    sys.meta_path[:] = meta_path


def test_called_once_after_the_module_ran(pkg):
    when_imported('hookpkg.sub', lambda: pkg.append(sys.modules['hookpkg.sub'].VALUE))
    assert pkg == [] and hooked('hookpkg.sub')
    import hookpkg  # noqa: F401  (the parent alone does not trigger it)
    assert pkg == []
    import hookpkg.sub
    assert pkg == ['sub ran', 7]
    assert not hooked('hookpkg.sub')
    # the module keeps its own loader
    assert type(hookpkg.sub.__loader__).__name__ == 'SourceFileLoader'
    assert hookpkg.sub.__spec__.loader is hookpkg.sub.__loader__
    del sys.modules['hookpkg.sub']
    import hookpkg.sub  # noqa: F811  (a re-import: the hook is gone)
    assert pkg == ['sub ran', 7, 'sub ran']


def test_called_at_once_when_already_imported(pkg):
    import hookpkg.sub  # noqa: F401
    when_imported('hookpkg.sub', lambda: pkg.append('callback'))
    assert pkg == ['sub ran', 'callback']


def test_not_called_when_the_import_fails(pkg):
    when_imported('hookpkg.broken', lambda: pkg.append('callback'))
    with pytest.raises(RuntimeError, match='broken on import'):
        import hookpkg.broken  # noqa: F401
    assert pkg == [] and 'hookpkg.broken' not in sys.modules
    assert not hooked('hookpkg.broken')


def test_a_missing_module_is_still_missing(pkg):
    when_imported('hookpkg.nothere', lambda: pkg.append('callback'))
    with pytest.raises(ModuleNotFoundError, match='hookpkg.nothere'):
        import hookpkg.nothere  # noqa: F401
    assert pkg == []
