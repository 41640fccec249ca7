"""docs/reproduce.md stays true to the repository.

Every ``configs/...py`` path and ``tools/...`` script the page names exists; every config name it
uses for a work dir or a converted checkpoint is a config; each converter command parses with that
converter's real command line (``mmvit_plugins.utils.convert.converter_main``, loaded without
importing the package); the flags given to ``tools/train.py`` / ``tools/test.py`` (directly or
through ``tools/dist_*.sh``) are flags those tools define; and a test command's checkpoint belongs
to the config it tests. Text only: no config is loaded, no model built.
"""
import ast
import glob
import importlib.util
import os.path as osp
import re
import shlex

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DOC = osp.join(ROOT, 'docs', 'reproduce.md')
CONVERTERS = osp.join(ROOT, 'tools', 'model_converters')

# A path that starts here, not inside another one (e.g. mmseg's `.mim/tools/...`).
_START = r'(?<![\w./~$-])'
CONFIG_RE = re.compile(_START + r'configs/[\w./-]+?\.py\b')
TOOL_RE = re.compile(_START + r'tools/[\w./-]+?\.(?:py|sh)\b')
# Where the page names a config by its stem: work dirs and converted checkpoints.
WORK_DIR_RE = re.compile(_START + r'work_dirs/([\w-]+)/')
CHECKPOINT_RE = re.compile(_START + r'checkpoints/([\w-]+)\.pth\b')
# A bare config file name (our prefixes), outside a configs/ path.
_PREFIXES = 'cls|maskrcnn|cascade_maskrcnn|retinanet|detr|upernet|segformer|fpn'
BARE_CONFIG_RE = re.compile(r'(?<![\w/.-])((?:' + _PREFIXES + r')_\w+)\.py\b')
# One command (`python tools/...` or `bash tools/...`): the script and its arguments up to the
# end of the line, a closing backtick, a table bar or a shell comment.
COMMAND_RE = re.compile(r'(?:python|bash) (tools/(?:model_converters/\w+\.py|train\.py|test\.py|'
                        r'dist_train\.sh|dist_test\.sh))([^`|#\n]*)')
# Work dirs of tools rather than of configs.
NON_CONFIG_WORK_DIRS = {'gpu_check'}


@pytest.fixture(scope='module')
def doc():
    with open(DOC, encoding='utf-8') as f:
        return f.read()


@pytest.fixture(scope='module')
def commands(doc):
    """(script, argument list) for every command on the page; ``[--x]`` counts as ``--x``."""
    found = []
    for script, rest in COMMAND_RE.findall(doc):
        args = [a.strip('[]') for a in shlex.split(rest)]
        found.append((script, [a for a in args if a and a != '...']))
    return found


@pytest.fixture(scope='module')
def converter_main():
    """``converter_main`` from ``mmvit_plugins/utils/convert.py``, without the package import."""
    path = osp.join(ROOT, 'mmvit_plugins', 'utils', 'convert.py')
    spec = importlib.util.spec_from_file_location('_reproduce_doc_convert', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.converter_main


def _converter_call(script: str):
    """(docstring, prog, ema_key) of the ``converter_main(...)`` call in a converter script."""
    with open(osp.join(ROOT, script), encoding='utf-8') as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'converter_main':
            names = ['convert', 'doc', 'prog', 'ema_key', 'argv']
            given = dict(zip(names, node.args))
            given.update({k.arg: k.value for k in node.keywords})
            ema_key = ast.literal_eval(given['ema_key']) if 'ema_key' in given else None
            return ast.get_docstring(tree), ast.literal_eval(given['prog']), ema_key
    raise AssertionError(f'{script}: no converter_main(...) call')


def test_config_paths_exist(doc):
    paths = sorted(set(CONFIG_RE.findall(doc)))
    assert len(paths) > 40, 'the page should name the configs it uses'
    missing = [p for p in paths if not osp.isfile(osp.join(ROOT, p))]
    assert not missing, f'docs/reproduce.md names configs that do not exist: {missing}'


def test_config_globs_match(doc):
    """Patterns such as ``configs/cls_*_in1k.py`` or ``configs/maskrcnn_*`` match configs."""
    patterns = set(re.findall(_START + r'configs/[\w./-]*\*[\w*./-]*', doc))
    assert patterns
    empty = sorted(p for p in patterns
                   if not glob.glob(osp.join(ROOT, p if p.endswith('.py') else p + '*.py')))
    assert not empty, f'docs/reproduce.md names config patterns that match nothing: {empty}'


def test_config_names_exist(doc):
    names = set(BARE_CONFIG_RE.findall(doc)) | set(CHECKPOINT_RE.findall(doc))
    names |= set(WORK_DIR_RE.findall(doc)) - NON_CONFIG_WORK_DIRS
    missing = sorted(n for n in names if not osp.isfile(osp.join(ROOT, 'configs', n + '.py')))
    assert not missing, f'docs/reproduce.md uses config names with no configs/<name>.py: {missing}'


def test_tool_scripts_exist(doc):
    scripts = sorted(set(TOOL_RE.findall(doc)))
    assert 'tools/test.py' in scripts and 'tools/dist_train.sh' in scripts
    missing = [s for s in scripts if not osp.isfile(osp.join(ROOT, s))]
    assert not missing, f'docs/reproduce.md names tools that do not exist: {missing}'


def test_every_converter_is_documented_with_its_usage(commands):
    """Each converter appears with exactly its usage line: ``SRC DST`` (+ ``[--ema]``)."""
    scripts = sorted(glob.glob('*2mmvit.py', root_dir=CONVERTERS))
    assert scripts == ['cloformer2mmvit.py', 'container2mmvit.py', 'elsa2mmvit.py',
                       'hrvit2mmvit.py'], 'a converter was added: document it in docs/reproduce.md'
    scripts = [f'tools/model_converters/{f}' for f in scripts]
    for script in scripts:
        assert osp.isfile(osp.join(ROOT, script)), script
        _, _, ema_key = _converter_call(script)
        usage = ['SRC', 'DST'] + (['--ema'] if ema_key else [])
        assert (script, usage) in commands, f'docs/reproduce.md lacks `{script} {" ".join(usage)}`'


def test_converter_commands_parse(commands, converter_main, tmp_path, monkeypatch):
    """Every converter command's arguments pass the converter's own argparse.

    Run from an empty directory, a command that parses stops at 'checkpoint not found' (a
    message); one that does not stops with argparse's exit status 2.
    """
    monkeypatch.chdir(tmp_path)
    converter_commands = [(s, a) for s, a in commands if s.startswith('tools/model_converters/')]
    assert len(converter_commands) > 15
    for script, args in converter_commands:
        doc_string, prog, ema_key = _converter_call(script)
        with pytest.raises(SystemExit) as exc:
            converter_main(lambda checkpoint: checkpoint, doc_string, prog, ema_key, args)
        assert isinstance(exc.value.code, str) and 'checkpoint not found' in exc.value.code, (
            f'`{script} {" ".join(args)}` does not match {prog}\'s arguments '
            f'(SRC DST{" [--ema]" if ema_key else ""})')


def _defined_flags(tool: str) -> set:
    """The ``'--flag'`` literals of a tool and of the runner arguments it shares."""
    flags = set()
    runner = osp.join(ROOT, 'mmvit_plugins', 'utils', 'runner.py')
    for path in (osp.join(ROOT, 'tools', tool), runner):
        with open(path, encoding='utf-8') as f:
            flags |= set(re.findall(r"""['"](--[\w-]+)['"]""", f.read()))
    return flags


def test_train_and_test_flags_exist(commands):
    """Flags passed to tools/train.py and tools/test.py (also via tools/dist_*.sh) exist there
    (``--tta`` included)."""
    defined = {'train': _defined_flags('train.py'), 'test': _defined_flags('test.py')}
    unknown = []
    for script, args in commands:
        kind = 'train' if 'train' in script else 'test' if 'test' in script else None
        if kind is None:
            continue
        for flag in (a.split('=')[0] for a in args if a.startswith('--')):
            if flag not in defined[kind]:
                unknown.append(f'{script} {flag}')
    assert not unknown, f'docs/reproduce.md passes flags the tools do not define: {unknown}'


def test_test_commands_name_a_config_and_its_checkpoint(commands):
    """``tools/test.py CONFIG CKPT`` / ``tools/dist_test.sh CONFIG CKPT GPUS``: the checkpoint of a
    real config is that config's (its work dir, or checkpoints/<config name>.pth)."""
    checked = 0
    for script, args in commands:
        if script not in ('tools/test.py', 'tools/dist_test.sh'):
            continue
        positional = [a for a in args if not a.startswith('--')]
        assert len(positional) >= 2, f'{script} {" ".join(args)}: needs CONFIG and CHECKPOINT'
        config, checkpoint = positional[:2]
        if script == 'tools/dist_test.sh':
            assert len(positional) >= 3 and (positional[2].isdigit() or positional[2] == 'GPUS'), (
                f'{script} {" ".join(args)}: needs the number of GPUs after the checkpoint')
        if not config.startswith('configs/'):
            continue  # a placeholder (CONFIG)
        name = osp.splitext(osp.basename(config))[0]
        owner = (WORK_DIR_RE.findall(checkpoint) or CHECKPOINT_RE.findall(checkpoint) or [None])[0]
        assert owner == name, (
            f'{script} {config} tests a checkpoint of another config: {checkpoint}')
        checked += 1
    assert checked > 30
