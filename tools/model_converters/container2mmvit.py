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

from mmvit_plugins.models.backbones.container import convert_container
from mmvit_plugins.utils.convert import converter_main


def main(argv=None):
    converter_main(convert_container, __doc__, 'container2mmvit.py', 'model_ema', argv)


if __name__ == '__main__':
    main()
