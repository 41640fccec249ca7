"""Reading checkpoint files safely, with one clear line for every file that cannot be read.

``torch.load(weights_only=True)`` (the default since torch 2.6) refuses to unpickle anything but
tensors, containers and allow-listed classes, so a file cannot run code while it loads. Its
failures are hard to read, though: a text file named ``x.pth`` ends in ``KeyError: 101``, a
truncated archive in a miniz error, and a file that pickles a function (an ``os.system``
payload) in a multi-line ``UnpicklingError`` whose advice is to pass ``weights_only=False``,
the one thing to avoid with a file of unknown origin.

:func:`load_checkpoint_file` loads a local file with ``weights_only=True`` and turns every such
failure into a :class:`CheckpointError` (a ``ValueError``) with a one-line message: what the file
is, or what it pickles that was refused and how to re-save a file one trusts.
:func:`check_checkpoint_file` is the cheap probe the tools run before they build anything
(zip-format checkpoints are memory-mapped, so their tensors are not read). mmengine's own
checkpoints load, because importing ``mmvit_plugins`` allow-lists the few objects they hold
(:func:`mmvit_plugins.utils.allow_mmengine_checkpoints`); nothing else is allowed.
"""
import os.path as osp
import pickle
import pickletools
import re
import warnings
import zipfile
from typing import List, Optional

__all__ = ['CheckpointError', 'check_checkpoint_file', 'is_local_checkpoint',
           'load_checkpoint_file']

_ZIP_MAGIC = b'PK\x03\x04'  # what torch.save writes since torch 1.6
_PICKLE_PROTO = 0x80  # the first byte of a legacy torch.save file (pickle protocol >= 2)
_RESAVE_HINT = ("If you trust the file, re-save its weights in a separate Python session, "
                "e.g. torch.save(torch.load(PATH, weights_only=False)['state_dict'], NEW_PATH), "
                'and load NEW_PATH')


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded; the message is one line saying why."""


def is_local_checkpoint(path) -> bool:
    """Whether ``path`` names a local file (not a URL such as ``https://`` or ``s3://``).

    URLs are left to mmengine's ``CheckpointLoader``, which downloads them.
    """
    return isinstance(path, str) and '://' not in path


def _one_line(text: str, limit: int = 200) -> str:
    """The first sentence of ``text``, on one line and at most ``limit`` characters."""
    text = ' '.join(text.split())
    match = re.match(r'(.+?[.!?])(\s|$)', text)
    text = match.group(1).rstrip('.') if match else text
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _reason(error: BaseException) -> str:
    """A short description of an exception raised while reading a file."""
    message = str(error).strip()
    if isinstance(error, EOFError) or not message:
        return 'unexpected end of file' if isinstance(error, EOFError) else type(error).__name__
    return _one_line(message)


def _pickled_globals(stream) -> List[str]:
    """The ``module.name`` globals a pickle refers to, read without unpickling anything.

    ``pickletools.genops`` only decodes opcodes; nothing is imported or called. Names pushed for
    ``STACK_GLOBAL`` are followed through the memo. Stops quietly at malformed data.
    """
    names, strings, memo = [], [], {}
    try:
        for opcode, arg, _ in pickletools.genops(stream):
            if opcode.name == 'GLOBAL':
                names.append(arg.replace(' ', '.'))
            elif opcode.name == 'STACK_GLOBAL' and len(strings) >= 2:
                names.append(f'{strings[-2]}.{strings[-1]}')
            elif isinstance(arg, str) and 'UNICODE' in opcode.name:
                strings.append(arg)
            elif opcode.name == 'MEMOIZE' and strings:
                memo[len(memo)] = strings[-1]
            elif opcode.name in ('BINPUT', 'LONG_BINPUT', 'PUT') and strings:
                memo[arg] = strings[-1]
            elif opcode.name in ('BINGET', 'LONG_BINGET', 'GET') and arg in memo:
                strings.append(memo[arg])
    except Exception:  # malformed or truncated: report what was found before
        pass
    return list(dict.fromkeys(names))


def _globals_in_file(path: str, is_zip: bool) -> List[str]:
    """The globals the pickle of a checkpoint file (its ``data.pkl`` for a zip) refers to."""
    try:
        if not is_zip:
            with open(path, 'rb') as f:
                return _pickled_globals(f)
        with zipfile.ZipFile(path) as archive:
            member = next((n for n in archive.namelist() if n.endswith('data.pkl')), None)
            if member is None:
                return []
            with archive.open(member) as f:
                return _pickled_globals(f)
    except (OSError, zipfile.BadZipFile):
        return []


def _refused_global(message: str) -> Optional[str]:
    """The global that ``torch.load(weights_only=True)`` refused, parsed from its message."""
    patterns = (
        r'GLOBAL (\S+) whose module \S+ is blocked',  # os, posix, subprocess, ...
        r'GLOBAL (\S+) was not an allowed global',
        r'unrecognized function (.+?)(?: which belongs to |$)',
        r"but got <class '([^']+)'>",
    )
    for pattern in patterns:
        match = re.search(pattern, message, flags=re.MULTILINE)
        if match:
            name = match.group(1).strip()
            # torch strips ``builtins.`` from the names it reports (``exec``, ``eval``)
            return name if '.' in name or name.startswith('<') else f'builtins.{name}'
    return None


def _unpickler_message(message: str) -> str:
    """The unpickler's own words inside torch's ``Weights only load failed`` text."""
    message = message.split('\n\nCheck the documentation of torch.load')[0]
    if 'WeightsUnpickler error:' in message:
        message = message.rsplit('WeightsUnpickler error:', 1)[1]
    elif '\n\n' in message:
        message = message.rsplit('\n\n', 1)[1]
    return _one_line(message)


def _refused_error(path: str, error: pickle.UnpicklingError, head: bytes) -> CheckpointError:
    """The one-line error for a file ``weights_only`` unpickling refused.

    A refused global is named (parsed from torch's message, or else read from the pickle's
    opcodes). A file that is neither a zip archive nor a binary pickle is no checkpoint at all,
    whatever the unpickler made of it (text starting with ``n`` is "Unsupported operand 110").
    """
    is_zip = head.startswith(_ZIP_MAGIC)
    if not is_zip and head[:1] != bytes([_PICKLE_PROTO]):
        return _unreadable_error(path, error, head)
    message = str(error)
    name = _refused_global(message)
    names = [name] if name else _globals_in_file(path, is_zip)
    if names:
        what = ', '.join(f'`{n}`' for n in names[:3]) + (', ...' if len(names) > 3 else '')
        why = (f'it pickles {what}, which weights_only loading does not allow (unpickling it '
               'could run code)')
    else:
        why = (f'weights_only loading does not allow what it pickles '
               f'({_unpickler_message(message)})')
    return CheckpointError(f'{path}: refused to load: {why}. {_RESAVE_HINT}')


def _unreadable_error(path: str, error: BaseException, head: bytes) -> CheckpointError:
    """The one-line error for a file ``torch.load`` could not read (not a refusal)."""
    reason = _reason(error)
    if head.startswith(_ZIP_MAGIC) and not zipfile.is_zipfile(path):
        return CheckpointError(
            f'{path} is not a readable PyTorch checkpoint: its zip archive is truncated (the '
            'end of the archive is missing: was a download or copy cut short?)')
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                has_pickle = any(n.endswith('data.pkl') for n in archive.namelist())
        except (OSError, zipfile.BadZipFile):
            has_pickle = True
        if not has_pickle:
            return CheckpointError(f'{path} is a zip archive, not a PyTorch checkpoint (it has '
                                   'no data.pkl, which torch.save writes)')
        return CheckpointError(
            f'{path} is not a readable PyTorch checkpoint: its zip archive is corrupted or '
            f'not written by torch.save ({reason})')
    if head[:1] == bytes([_PICKLE_PROTO]):
        return CheckpointError(
            f'{path} is not a readable PyTorch checkpoint: the legacy (pickle) file is '
            f'truncated, corrupted or not written by torch.save ({reason})')
    return CheckpointError(
        f'{path} is not a PyTorch checkpoint (neither the zip archive nor the pickle that '
        f'torch.save writes; it starts with {head[:8]!r})')


def _load(path: str, map_location, probe: bool, **kwargs):
    """``torch.load(path, weights_only=True)`` with every failure turned into one line.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If it is a directory, empty, not a checkpoint, truncated, or refused.
    """
    import torch
    path = osp.expanduser(path)
    if osp.isdir(path):
        raise CheckpointError(f'{path} is a directory, not a checkpoint file')
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        with open(path, 'rb') as f:
            head = f.read(16)
    except OSError as e:
        raise CheckpointError(f'{path} cannot be read ({_reason(e)})') from None
    if not head:
        raise CheckpointError(f'{path} is not a PyTorch checkpoint (the file is empty)')
    is_zip = head.startswith(_ZIP_MAGIC)
    kwargs['weights_only'] = True
    if probe and is_zip:
        kwargs['mmap'] = True  # the pickle is read, the tensors only mapped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            checkpoint = torch.load(path, map_location=map_location, **kwargs)
        except pickle.UnpicklingError as e:
            raise _refused_error(path, e, head) from None
        except Exception as e:  # KeyError, EOFError, RuntimeError, ...: not a readable file
            raise _unreadable_error(path, e, head) from None
    for w in caught:  # the file loaded: pass torch's warnings on
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return checkpoint


def load_checkpoint_file(path: str, map_location='cpu', **kwargs):
    """Load a local checkpoint file with ``torch.load(..., weights_only=True)``.

    Args:
        path (str): The file (``~`` is expanded).
        map_location: As in :func:`torch.load`. Defaults to ``'cpu'``.
        **kwargs: Passed to :func:`torch.load` (``weights_only`` is always True). To allow
            more classes, wrap the call in ``torch.serialization.safe_globals([...])``.

    Returns:
        The loaded object.

    Raises:
        FileNotFoundError: If the file does not exist (``checkpoint not found: PATH``).
        CheckpointError: A ``ValueError`` with a one-line message, if ``path`` is a directory,
            an empty file, not a PyTorch checkpoint, truncated or corrupted, or pickles a class
            or function that ``weights_only`` refuses (the message names it; nothing in the file
            runs).
    """
    return _load(path, map_location, probe=False, **kwargs)


def check_checkpoint_file(path: str) -> None:
    """Check that a checkpoint loads under ``weights_only``, before a run starts.

    The cheap version of :func:`load_checkpoint_file`: a zip-format checkpoint (what
    ``torch.save`` writes) is memory-mapped, so only its pickle is read, not its tensors; a
    legacy-format file is loaded in full. URLs are not checked (mmengine downloads them later).

    Args:
        path (str): A local path or a URL.

    Raises:
        FileNotFoundError, CheckpointError: As :func:`load_checkpoint_file`.
    """
    if is_local_checkpoint(path):
        _load(path, 'cpu', probe=True)
