"""Convert an original Container-Light checkpoint (allenai/container) for mmvit_plugins.

    python tools/model_converters/container2mmvit.py SRC DST [--ema]

SRC: the released training checkpoint (``{model, optimizer, lr_scheduler, epoch, model_ema,
scaler, args}``; the weights under ``model``, ``--ema`` takes ``model_ema``) or a bare state
dict. DST then loads with ``load_checkpoint(model, DST, strict=True)`` into
``configs/cls_container_light_in1k.py``'s classifier, and its backbone part into the dense
configs through ``--cfg-options model.backbone.init_cfg.checkpoint=DST`` (the classifier's
final BN ``norm`` is then unused, as in the original port).

SRC is read with ``torch.load(weights_only=True)``: nothing in it can run code. Only
``argparse.Namespace`` (the ``args`` the training script stores) is allowed beyond tensors and
containers. DST holds plain tensors only.
"""
import argparse
import os.path as osp
import sys

import torch

from mmvit_plugins.models.backbones.container import convert_container


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='original checkpoint')
    parser.add_argument('dst', help='converted checkpoint to write')
    parser.add_argument('--ema', action='store_true',
                        help="take the checkpoint's EMA weights (model_ema)")
    args = parser.parse_args(argv)
    if not osp.isfile(args.src):
        sys.exit(f'container2mmvit.py: error: checkpoint not found: {args.src}')
    with torch.serialization.safe_globals([argparse.Namespace]):
        checkpoint = torch.load(args.src, map_location='cpu', weights_only=True)
    if not isinstance(checkpoint, dict):
        sys.exit(f'container2mmvit.py: error: {args.src} holds a {type(checkpoint).__name__}, '
                 'not a checkpoint dict')
    if args.ema:
        if not isinstance(checkpoint.get('model_ema'), dict):
            sys.exit(f'container2mmvit.py: error: --ema: {args.src} has no model_ema')
        checkpoint = checkpoint['model_ema']
    try:
        state_dict = convert_container(checkpoint)
    except ValueError as e:
        sys.exit(f'container2mmvit.py: error: {e}')
    torch.save({'state_dict': state_dict, 'meta': {'converted_from': osp.basename(args.src)}},
               args.dst)
    print(f'wrote {args.dst}: {len(state_dict)} tensors')


if __name__ == '__main__':
    main()
