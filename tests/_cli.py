"""A command-line tool's ``main(argv)`` run in this process, with what its command line gives."""
import contextlib
import importlib.util
import io
import os.path as osp
import types

_MODULES = {}


def run_main_here(script: str, *args) -> types.SimpleNamespace:
    """``script``'s ``main([str(a) for a in args])`` in this process (no interpreter start-up).

    Returns ``returncode``, ``stdout`` and ``stderr`` as the command line would: a
    ``sys.exit(message)`` is status 1 with the message on stderr; a traceback would propagate.
    """
    if script not in _MODULES:
        name = '_cli_' + osp.splitext(osp.basename(script))[0]
        spec = importlib.util.spec_from_file_location(name, script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _MODULES[script] = module
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            _MODULES[script].main([str(a) for a in args])
        except SystemExit as e:
            if isinstance(e.code, str):
                print(e.code, file=err)
                code = 1
            else:
                code = e.code or 0
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())
