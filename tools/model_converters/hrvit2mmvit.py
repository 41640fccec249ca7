"""Convert an original HRViT checkpoint (facebookresearch/HRViT) for mmvit_plugins.

    python tools/model_converters/hrvit2mmvit.py SRC DST

SRC: a timm ImageNet checkpoint of the original code, an original mmseg segmentor checkpoint,
or a bare state dict. DST then loads with ``load_checkpoint(model, DST, strict=True)`` into
``configs/cls_hrvit_b*_in1k.py``'s classifier (or, from a segmentor, into the matching
``configs/{segformer,upernet}_hrvit_*.py`` segmentor), and its backbone part through the
backbone's ``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')`` in any
config.

SRC is read with ``torch.load(weights_only=True)``: nothing in it can run code. Only
``argparse.Namespace`` (the ``args`` timm stores) is allowed beyond tensors and containers.
DST holds plain tensors only.
"""
import argparse
import os.path as osp
import sys

import torch

from mmvit_plugins.models.backbones.hrvit import convert_hrvit


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='original checkpoint')
    parser.add_argument('dst', help='converted checkpoint to write')
    args = parser.parse_args(argv)
    if not osp.isfile(args.src):
        sys.exit(f'hrvit2mmvit.py: error: checkpoint not found: {args.src}')
    with torch.serialization.safe_globals([argparse.Namespace]):
        checkpoint = torch.load(args.src, map_location='cpu', weights_only=True)
    try:
        state_dict = convert_hrvit(checkpoint)
    except ValueError as e:
        sys.exit(f'hrvit2mmvit.py: error: {e}')
    torch.save({'state_dict': state_dict, 'meta': {'converted_from': osp.basename(args.src)}},
               args.dst)
    print(f'wrote {args.dst}: {len(state_dict)} tensors')


if __name__ == '__main__':
    main()
