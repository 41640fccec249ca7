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

from mmvit_plugins.models.backbones.elsa_swin import convert_elsa_swin
from mmvit_plugins.utils.convert import converter_main


def main(argv=None):
    converter_main(convert_elsa_swin, __doc__, 'elsa2mmvit.py', 'state_dict_ema', argv)


if __name__ == '__main__':
    main()
