"""What every backbone of this package shares: arch tables, initialisation, frozen stages, and
multi-head attention over the positions of conv feature maps."""
import logging
import warnings
from typing import Iterator, Optional

from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import constant_init, trunc_normal_init
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


def conv_map_attention(q: Tensor, k: Tensor, v: Tensor, num_heads: int,
                       scale: Optional[float] = None) -> Tensor:
    """Softmax attention of every query position of ``q`` over every position of ``k``/``v``.

    ``q`` is ``[B, h*d, H, W]``, ``k`` and ``v`` ``[B, h*d, H', W']`` with head-major channels
    (head ``i`` owns channels ``i*d .. i*d + d - 1``); returns ``[B, h*d, H, W]``. The heads go
    to SDPA contiguous, so that on the CPU it can take its flash kernel (memory linear in the
    number of positions, forward and backward); transposed views fall back to the math kernel,
    which stores the ``[B, h, HW, H'W']`` weights (285 GB for the full Container's stride-4 map
    of an 800x1333 image).
    """
    B, C, H, W = q.shape

    def heads(t):  # [B, h*d, H, W] -> [B, h, HW, d]; no -1: B may be 0
        L = t.shape[-2] * t.shape[-1]
        return t.reshape(B, num_heads, C // num_heads, L).transpose(-2, -1).contiguous()

    out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), scale=scale)
    return out.transpose(-2, -1).reshape(B, C, H, W)


def token_attention(q: Tensor, k: Tensor, v: Tensor, num_heads: int,
                    scale: Optional[float] = None, dropout_p: float = 0.) -> Tensor:
    """Multi-head softmax attention of token sequences, the heads contiguous for SDPA.

    ``q`` is ``[B, N, h*d]``, ``k`` and ``v`` ``[B, M, h*d]`` with head-major channels; returns
    ``[B, N, h*d]``. As :func:`conv_map_attention`, the per-head tensors are made contiguous so
    that SDPA can take a kernel whose memory is linear in ``N`` and ``M``.
    """
    B, N, C = q.shape

    def heads(t):  # [B, L, h*d] -> [B, h, L, d]; no -1: B may be 0
        return t.reshape(B, t.shape[1], num_heads, C // num_heads).transpose(1, 2).contiguous()

    out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), dropout_p=dropout_p,
                                         scale=scale)
    return out.transpose(1, 2).reshape(B, N, C)


def drop_path_rates(drop_path_rate: float, num_blocks: int) -> list:
    """The stochastic-depth rate of each of ``num_blocks`` blocks, rising linearly from 0 to
    ``drop_path_rate`` (the original codes' ``torch.linspace``), as floats. Computed on the CPU
    whatever the default device, so that a model also builds under ``torch.device('meta')``."""
    return torch.linspace(0, drop_path_rate, num_blocks, device='cpu').tolist()


class ArchBackbone(BaseModule):
    """Base of the backbones: ``arch`` from :attr:`arch_zoo` or a dict, the OpenMMLab
    ``init_cfg`` / ``frozen_stages`` / ``norm_eval`` behaviour.

    Subclasses set :attr:`arch_zoo` (name -> dict of the architecture's settings), set
    ``self.frozen_stages``, ``self.norm_eval`` and ``self.in_channels``, yield the modules to
    freeze from :meth:`_frozen_modules`, and start ``forward`` with :meth:`_check_input`.
    """
    arch_zoo: dict = {}
    in_channels: int = 3  # image channels; set per instance from the constructor argument
    strides = (4, 8, 16, 32)  # output stride of each of the four levels

    def __init__(self, init_cfg: Optional[dict] = None, pretrained: Optional[str] = None):
        """``pretrained``: as mmseg's own backbones take it (its ``EncoderDecoder`` passes the
        config's ``model.pretrained`` down): a deprecated alias of
        ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)``, with a warning."""
        if pretrained is not None:
            if not isinstance(pretrained, str):
                raise TypeError(f'pretrained must be a checkpoint path or URL (str) or None, '
                                f'got {type(pretrained).__name__}')
            if init_cfg is not None:
                raise ValueError(f'{type(self).__name__}: give pretrained={pretrained!r} or '
                                 f'init_cfg={init_cfg!r}, not both')
            warnings.warn(f'{type(self).__name__}: pretrained is deprecated, use '
                          f"init_cfg=dict(type='Pretrained', checkpoint={pretrained!r})",
                          FutureWarning, stacklevel=3)
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)

    @classmethod
    def _parse_arch(cls, arch) -> dict:
        """The settings of ``arch``: a name of :attr:`arch_zoo`, or a dict with the same keys."""
        if isinstance(arch, str):
            if arch not in cls.arch_zoo:
                raise ValueError(f'arch must be one of {sorted(cls.arch_zoo)} or a dict, '
                                 f'got {arch!r}')
            return dict(cls.arch_zoo[arch])
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a str or a dict, got {type(arch).__name__}')
        keys = set(next(iter(cls.arch_zoo.values())))
        if set(arch) != keys:
            raise ValueError(f'an arch dict needs exactly the keys {sorted(keys)}, '
                             f'got {sorted(arch)}')
        return dict(arch)

    def _set_stage_args(self, out_indices, frozen_stages: int, norm_eval: bool,
                        drop_path_rate: float = 0.) -> None:
        """Checks and stores ``out_indices`` (a non-empty subset of 0..3), ``frozen_stages``
        (-1..4) and ``norm_eval``; checks ``drop_path_rate`` (in [0, 1))."""
        out_indices = tuple(out_indices)
        if not out_indices or any(not 0 <= i < 4 for i in out_indices):
            raise ValueError(f'out_indices must be a non-empty subset of 0..3, got {out_indices}')
        if not -1 <= frozen_stages <= 4:
            raise ValueError(f'frozen_stages must be in -1..4, got {frozen_stages}')
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'drop_path_rate must be in [0, 1), got {drop_path_rate}')
        self.out_indices, self.frozen_stages, self.norm_eval = out_indices, frozen_stages, norm_eval

    def init_weights(self):
        """``init_cfg`` if given; else truncated normal (std 0.02) Linear weights with zero bias
        and LayerNorm (1, 0), the other layers as constructed. A ``Pretrained`` entry whose
        checkpoint is None (configs carry it so ``--cfg-options ...checkpoint=PATH`` can fill
        it) means the same, with a warning.

        A local ``Pretrained`` checkpoint that fails to load (a directory, an empty or text
        file, a truncated archive, or a pickle of something ``weights_only`` refuses) raises a
        :class:`~mmvit_plugins.utils.checkpoint.CheckpointError` (``ValueError``) with a
        one-line message, or ``FileNotFoundError`` for a missing file; nothing in it runs."""
        cfg = self.init_cfg
        placeholder = isinstance(cfg, dict) and cfg.get('type') == 'Pretrained' \
            and cfg.get('checkpoint') is None
        if cfg is not None and not placeholder:
            try:
                return super().init_weights()
            except Exception:
                # say why in one line if a Pretrained checkpoint is the cause; else re-raise
                from ...utils.checkpoint import CheckpointError, check_checkpoint_file
                for entry in cfg if isinstance(cfg, (list, tuple)) else [cfg]:
                    checkpoint = entry.get('checkpoint') if isinstance(entry, dict) \
                        and entry.get('type') == 'Pretrained' else None
                    if not isinstance(checkpoint, str):
                        continue
                    try:
                        check_checkpoint_file(checkpoint)
                    except (FileNotFoundError, CheckpointError) as e:
                        raise type(e)(f'{type(self).__name__}: init_cfg Pretrained: {e}') \
                            from None
                raise
        if placeholder:
            print_log(f'{type(self).__name__}: init_cfg Pretrained has no checkpoint; '
                      'initialising from scratch', logger='current', level=logging.WARNING)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_init(m, std=0.02, bias=0.)
            elif isinstance(m, nn.LayerNorm):
                constant_init(m, val=1.0, bias=0.)

    def _frozen_modules(self) -> Iterator[nn.Module]:
        return iter(())

    def _stem_and_stages(self, stem: nn.Module, stages: nn.ModuleList) -> Iterator[nn.Module]:
        """What ``frozen_stages`` freezes in a stem-then-stages backbone: the stem (from 0 on),
        then stage ``i`` and its output norm ``norm{i}`` (where it has one) for
        ``i < frozen_stages``."""
        if self.frozen_stages >= 0:
            yield stem
        for i in range(min(self.frozen_stages, len(stages))):
            yield stages[i]
            norm = getattr(self, f'norm{i}', None)
            if norm is not None:
                yield norm

    def _freeze_stages(self):
        for module in self._frozen_modules():
            module.eval()
            for p in module.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def _check_input(self, x: Tensor) -> None:
        """Checks that ``x`` is a floating-point image batch ``[B, in_channels, H, W]`` with
        ``H, W >= 1`` (``B = 0`` is fine: the forward then returns empty maps).

        Checks on ``dim()``, ``shape`` and ``dtype`` only, so ``torch.compile`` and the ONNX
        export trace through them. Also refuses, with the reason, the one input that PyTorch's
        BatchNorm cannot take in training mode: a single image whose stride-32 map is 1 x 1
        (``H, W <= 32``) while a BatchNorm layer is training (one value per channel).

        Raises:
            TypeError: ``x`` is not a Tensor, not floating point (``uint8``, ``bool``, ...),
                or (outside ``torch.autocast``) of another dtype than the weights.
            ValueError: ``x`` is not 4-D, its channels are not ``in_channels``, ``H`` or ``W``
                is 0, or the BatchNorm case above.
        """
        name, c = type(self).__name__, self.in_channels
        if not isinstance(x, Tensor):
            raise TypeError(f'{name}: expected an image batch tensor [B, {c}, H, W], got '
                            f'{type(x).__name__}')
        if x.dim() != 4 or x.shape[1] != c:
            hint = ''
            if x.dim() == 3 and x.shape[0] == c:
                hint = '; for one image add the batch dimension: x[None]'
            elif x.dim() == 4 and x.shape[3] == c:
                hint = '; for channels-last [B, H, W, C] input use x.permute(0, 3, 1, 2)'
            raise ValueError(f'{name}: expected an image batch [B, {c}, H, W] '
                             f'(in_channels={c}), got shape {list(x.shape)}{hint}')
        if not x.is_floating_point():
            raise TypeError(f'{name}: expected a floating-point image tensor, got {x.dtype} '
                            '(convert with x.float() and normalise)')
        weight = next(self.parameters(), None)
        if weight is not None and x.dtype != weight.dtype \
                and not torch.is_autocast_enabled(x.device.type):
            raise TypeError(f'{name}: the input is {x.dtype} but the weights are '
                            f'{weight.dtype}; convert with x.to({weight.dtype}) (or the model '
                            'with .to(dtype)), or run under torch.autocast')
        B, _, H, W = x.shape
        if H < 1 or W < 1:
            raise ValueError(f'{name}: expected an image of at least 1 x 1 pixels, got shape '
                             f'{list(x.shape)}')
        s = self.strides[-1]
        if self.training and B == 1 and H <= s and W <= s and any(
                m.training for m in self.modules() if isinstance(m, _BatchNorm)):
            raise ValueError(
                f'{name}: in training mode BatchNorm needs more than one value per channel, '
                f'but one {H} x {W} image gives a 1 x 1 map at stride {s}; train with a batch '
                f'of 2 or more, or images larger than {s} x {s}, or set norm_eval=True')
