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

from mmvit_plugins.models.backbones.hrvit import convert_hrvit
from mmvit_plugins.utils.convert import converter_main


def main(argv=None):
    converter_main(convert_hrvit, __doc__, 'hrvit2mmvit.py', None, argv)


if __name__ == '__main__':
    main()
