"""Convert an original CloFormer checkpoint (qhfan/CloFormer) for mmvit_plugins.

    python tools/model_converters/cloformer2mmvit.py SRC DST

SRC: a checkpoint of the original training script (``ckpt_epoch_*.pth``: weights under
``model``) or a bare state dict; no official weights were ever released. DST then loads with
``load_checkpoint(model, DST, strict=True)`` into ``configs/cls_cloformer_*_in1k.py``'s
classifier, and its backbone part into dense configs through
``--cfg-options model.backbone.init_cfg.checkpoint=DST``. SRC is read with
``torch.load(weights_only=True)``.
"""

from mmvit_plugins.models.backbones.cloformer import convert_cloformer
from mmvit_plugins.utils.convert import converter_main


def main(argv=None):
    converter_main(convert_cloformer, __doc__, 'cloformer2mmvit.py', None, argv)


if __name__ == '__main__':
    main()
