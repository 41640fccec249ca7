"""Command-line tools run in this process: their ``main(argv)``, as the command line gives it."""
import contextlib
import importlib.util
import io
import os
import os.path as osp
import types


def import_tool(path: str) -> types.ModuleType:
    """The tool script at ``path``, freshly imported as a module."""
    name = 'tool_' + osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_main_here(path: str, *args, cwd=None) -> types.SimpleNamespace:
    """The tool's ``main([str(a) for a in args])`` in this process (no interpreter start-up),
    from the working directory ``cwd`` if given (put back afterwards).

    Returns ``returncode``, ``stdout`` and ``stderr`` as the command line would: a
    ``sys.exit(message)`` is status 1 with the message on stderr; a traceback would propagate.
    The environment variables the tool sets (e.g. ``LOCAL_RANK``) are undone afterwards.
    """
    main = import_tool(path).main
    out, err, code = io.StringIO(), io.StringIO(), 0
    environ = dict(os.environ)
    where = contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext()
    with where, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            if isinstance(e.code, str):
                print(e.code, file=err)
                code = 1
            else:
                code = e.code or 0
        finally:
            if dict(os.environ) != environ:
                os.environ.clear()
                os.environ.update(environ)
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())
