"""The test suite's cache of builds (the CUDA build, the ASan build, the host emulation of the
CUDA kernels): folders under ``$MMVIT_CACHE`` (default ``~/.cache/mmvit_plugins``), keyed by the
content of what a build reads. ``MMVIT_NO_BUILD_CACHE=1`` turns the cache off."""
import glob
import hashlib
import os
import os.path as osp
from typing import Iterable

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# every file of the ops' C++/CUDA sources
CSRC_FILES = sorted(
    p for p in glob.glob(osp.join(ROOT, 'mmvit_plugins', 'ops', 'csrc', '**', '*'), recursive=True)
    if osp.isfile(p))


def use_cache() -> bool:
    return os.environ.get('MMVIT_NO_BUILD_CACHE') != '1'


def cache_dir(name: str) -> str:
    """``$MMVIT_CACHE/<name>`` (not created)."""
    root = os.environ.get('MMVIT_CACHE') or osp.join(osp.expanduser('~'), '.cache',
                                                     'mmvit_plugins')
    return osp.join(root, name)


def content_key(files: Iterable[str], extra: str = '') -> str:
    """24 hex digits of a SHA-256 over each file's path (relative to the repository) and bytes,
    then ``extra`` (tool versions, inline sources)."""
    h = hashlib.sha256()
    for path in files:
        h.update(osp.relpath(path, ROOT).encode() + b'\0')
        with open(path, 'rb') as f:
            h.update(f.read() + b'\0')
    h.update(extra.encode())
    return h.hexdigest()[:24]
