"""The command line shared by ``tools/model_converters/*2mmvit.py``.

Each converter script is its docstring plus one call of :func:`converter_main` with the model
family's ``convert_*`` function. SRC is read with ``torch.load(weights_only=True)``
(:func:`~mmvit_plugins.utils.checkpoint.load_checkpoint_file`): nothing in it can run code; only
``argparse.Namespace`` (the ``args`` the original training scripts store) is allowed beyond
tensors and containers, and a file that is not a checkpoint, is truncated or pickles anything
else ends in one line ``<script>: error: ...``. DST holds plain tensors only.
"""
import argparse
import os.path as osp
import sys
from typing import Callable, Optional, Sequence, Tuple


def converter_main(convert: Callable[[dict], dict],
                   doc: str,
                   prog: str,
                   ema_key: Optional[str] = None,
                   argv: Optional[Sequence[str]] = None) -> None:
    """Parse ``SRC DST [--ema]``, convert and write DST; errors exit with one line.

    Args:
        convert: the family's converter, original checkpoint -> our state dict. Raises
            ``ValueError`` on unknown keys.
        doc (str): the script's docstring (its first paragraph is the description).
        prog (str): the script name, for error messages.
        ema_key (str, optional): the checkpoint entry ``--ema`` selects (no ``--ema`` option
            when None).
        argv (Sequence[str], optional): the arguments. Defaults to ``sys.argv[1:]``.
    """
    import torch
    parser = argparse.ArgumentParser(prog=prog, description=doc.split('\n\n')[0])
    parser.add_argument('src', help='original checkpoint')
    parser.add_argument('dst', help='converted checkpoint to write')
    if ema_key:
        parser.add_argument('--ema', action='store_true',
                            help=f"take the checkpoint's EMA weights ({ema_key})")
    args = parser.parse_args(argv)
    if not osp.exists(osp.expanduser(args.src)):
        sys.exit(f'{prog}: error: checkpoint not found: {args.src}')
    # imported here: this module also loads on its own, without the package
    from mmvit_plugins.utils.checkpoint import CheckpointError, load_checkpoint_file
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = load_checkpoint_file(args.src, map_location='cpu')
    except (FileNotFoundError, CheckpointError) as e:  # a directory, not a checkpoint, ...
        sys.exit(f'{prog}: error: {e}')
    if not isinstance(checkpoint, dict):
        sys.exit(f'{prog}: error: {args.src} holds a {type(checkpoint).__name__}, not a '
                 'checkpoint dict')
    if ema_key and args.ema:
        if not isinstance(checkpoint.get(ema_key), dict):
            sys.exit(f'{prog}: error: --ema: {args.src} has no {ema_key}')
        checkpoint = checkpoint[ema_key]
    try:
        state_dict = convert(checkpoint)
    except ValueError as e:
        sys.exit(f'{prog}: error: {e}')
    torch.save({'state_dict': state_dict, 'meta': {'converted_from': osp.basename(args.src)}},
               args.dst)
    print(f'wrote {args.dst}: {len(state_dict)} tensors')


def convert_classifier(checkpoint: dict, backbone_prefixes: Tuple[str, ...], name: str) -> dict:
    """A timm-style classifier (backbone keys at the top, ``head.*`` the Linear) -> ours.

    Accepts a training checkpoint (weights under ``model``), a ``state_dict`` entry, or a bare
    state dict, with or without a ``module.`` prefix. Keys starting with one of
    ``backbone_prefixes`` -> ``backbone.*`` (names unchanged); ``head.*`` -> ``head.fc.*``
    (mmpretrain's ``LinearClsHead``); ``backbone.*`` keys pass unchanged.

    Raises:
        ValueError: on any other key (``name`` says which converter), instead of dropping it.
    """
    state_dict = checkpoint
    for key in ('model', 'state_dict'):
        if isinstance(checkpoint.get(key), dict):
            state_dict = checkpoint[key]
            break
    converted, unknown = {}, []
    for key, value in state_dict.items():
        if key.startswith('module.'):
            key = key[len('module.'):]
        if key.startswith(backbone_prefixes):
            converted['backbone.' + key] = value
        elif key.startswith('head.'):
            converted['head.fc.' + key[len('head.'):]] = value
        elif key.startswith('backbone.'):
            converted[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f'convert_{name.lower()}: {len(unknown)} keys of unknown layout, e.g. '
                         f'{unknown[:3]}; only {name} classifiers are converted')
    return converted
