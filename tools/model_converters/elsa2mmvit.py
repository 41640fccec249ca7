"""Convert an original ELSA-Swin checkpoint (damo-cv/ELSA) for mmvit_plugins.

    python tools/model_converters/elsa2mmvit.py SRC DST [--ema]

SRC: a timm ImageNet checkpoint of the original code (weights under ``state_dict``; ``--ema``
takes ``state_dict_ema``, the weights the original evaluates for ELSA-Swin-B), an original
mmdet 2.11 / mmseg 0.11 checkpoint (Mask R-CNN, Cascade Mask R-CNN, UperNet), or a bare state
dict. DST then loads with ``load_checkpoint(model, DST, strict=True)`` into
``configs/cls_elsa_swin_*_in1k.py``'s classifier, or into the matching
``configs/{maskrcnn,cascade_maskrcnn}_elsa_swin_*_coco.py`` detector /
``configs/upernet_elsa_swin_*_ade20k.py`` segmentor, and its backbone part through
``--cfg-options model.backbone.init_cfg.checkpoint=DST`` in any of the dense configs (an
ImageNet checkpoint gives stage 4's ``norm3`` only; ``norm0``-``norm2`` start fresh, as in the
original).

SRC is read with ``torch.load(weights_only=True)``: nothing in it can run code. Only
``argparse.Namespace`` (the ``args`` timm stores) is allowed beyond tensors and containers.
DST holds plain tensors only.
"""
import argparse
import os.path as osp
import sys

import torch

from mmvit_plugins.models.backbones.elsa_swin import convert_elsa_swin


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='original checkpoint')
    parser.add_argument('dst', help='converted checkpoint to write')
    parser.add_argument('--ema', action='store_true',
                        help="take the checkpoint's EMA weights (state_dict_ema)")
    args = parser.parse_args(argv)
    if not osp.isfile(args.src):
        sys.exit(f'elsa2mmvit.py: error: checkpoint not found: {args.src}')
    with torch.serialization.safe_globals([argparse.Namespace]):
        checkpoint = torch.load(args.src, map_location='cpu', weights_only=True)
    if not isinstance(checkpoint, dict):
        sys.exit(f'elsa2mmvit.py: error: {args.src} holds a {type(checkpoint).__name__}, '
                 'not a checkpoint dict')
    if args.ema:
        if not isinstance(checkpoint.get('state_dict_ema'), dict):
            sys.exit(f'elsa2mmvit.py: error: --ema: {args.src} has no state_dict_ema')
        checkpoint = checkpoint['state_dict_ema']
    try:
        state_dict = convert_elsa_swin(checkpoint)
    except ValueError as e:
        sys.exit(f'elsa2mmvit.py: error: {e}')
    torch.save({'state_dict': state_dict, 'meta': {'converted_from': osp.basename(args.src)}},
               args.dst)
    print(f'wrote {args.dst}: {len(state_dict)} tensors')


if __name__ == '__main__':
    main()
