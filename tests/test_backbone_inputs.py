"""What every backbone does with every image-shaped input: bad ranks, channel counts and dtypes
are refused by the shared :meth:`ArchBackbone._check_input` with a message that names the
expected ``[B, in_channels, H, W]``; an empty batch gives empty maps of the documented shapes
(and zero gradients) in train and eval mode; the one input BatchNorm cannot train on (a single
image whose stride-32 map is 1 x 1) is refused with the reason."""
import math
from unittest import mock

import numpy as np
import pytest
import torch

from mmvit_plugins.models.backbones import HRViT, CloFormer, Container, ELSASwin, MAFormer

# Tiny architectures (as in each family's tests); Container-Light and MAFormer with
# neighbourhood attention take other code paths, so they are here too.
ARCHS = {
    'hrvit': (HRViT, dict(arch=dict(
        channels=(16, 32, 32, 64), head_dims=16, mlp_ratios=(2, 2, 2, 2),
        depths=((1, ), (1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1))))),
    'elsa_swin': (ELSASwin, dict(arch=dict(
        embed_dims=16, depths=(1, 1, 2, 2), num_heads=(1, 2, 2, 4), group_width=4))),
    'container': (Container, dict(arch=dict(
        embed_dims=(8, 16, 24, 32), depths=(1, 1, 2, 1), patch_sizes=(4, 2, 2, 2),
        mlp_ratios=(2, 2, 2, 2), num_heads=4, mix_stages=(True, True, True, True)))),
    'container_light': (Container, dict(arch=dict(
        embed_dims=(8, 16, 24, 32), depths=(1, 1, 2, 1), patch_sizes=(4, 2, 2, 2),
        mlp_ratios=(2, 2, 2, 2), num_heads=4, mix_stages=(False, False, False, True)))),
    'cloformer': (CloFormer, dict(arch=dict(
        embed_dims=(8, 16, 24, 32), num_heads=(2, 2, 3, 4), local_heads=(1, 1, 2, 1)))),
    'maformer': (MAFormer, dict(arch=dict(embed_dims=8, depths=(1, 1, 1, 1),
                                          num_heads=(2, 2, 2, 4)), gld_grid=((6, 6), (3, 3)))),
    'maformer_na': (MAFormer, dict(arch=dict(embed_dims=8, depths=(1, 1, 1, 1),
                                             num_heads=(2, 2, 2, 4)),
                                   gld_grid=((6, 6), (3, 3)), local_attn='neighborhood')),
}
FAMILIES = ['hrvit', 'elsa_swin', 'container', 'cloformer', 'maformer']
WITH_BN = ['hrvit', 'container', 'container_light', 'cloformer']  # BatchNorm layers inside
_built = {}


def build(name, **kwargs):
    cls, base = ARCHS[name]
    return cls(**base, **kwargs)


def model_of(name):
    """One eval-mode model per arch for the tests that do not train (built once)."""
    if name not in _built:
        _built[name] = build(name).eval()
    return _built[name]


SHAPE = r'expected an image batch \[B, 3, H, W\] \(in_channels=3\), got shape '
BAD_INPUTS = [
    # (id, input, error, message)
    ('unbatched', torch.zeros(3, 64, 64), ValueError,
     SHAPE + r'\[3, 64, 64\]; for one image add the batch dimension: x\[None\]'),
    ('2-D', torch.zeros(64, 64), ValueError, SHAPE + r'\[64, 64\]$'),
    ('5-D', torch.zeros(1, 1, 3, 64, 64), ValueError, SHAPE + r'\[1, 1, 3, 64, 64\]$'),
    ('1 channel', torch.zeros(2, 1, 64, 64), ValueError, SHAPE + r'\[2, 1, 64, 64\]$'),
    ('4 channels', torch.zeros(1, 4, 64, 64), ValueError, SHAPE + r'\[1, 4, 64, 64\]$'),
    ('channels last', torch.zeros(1, 64, 48, 3), ValueError,
     SHAPE + r'\[1, 64, 48, 3\]; for channels-last .* x\.permute\(0, 3, 1, 2\)'),
    ('empty unbatched', torch.zeros(3, 0, 0), ValueError, SHAPE + r'\[3, 0, 0\]'),
    ('H = 0', torch.zeros(1, 3, 0, 64), ValueError,
     r'expected an image of at least 1 x 1 pixels, got shape \[1, 3, 0, 64\]'),
    ('W = 0', torch.zeros(2, 3, 5, 0), ValueError,
     r'expected an image of at least 1 x 1 pixels, got shape \[2, 3, 5, 0\]'),
    ('uint8', torch.zeros(1, 3, 64, 64, dtype=torch.uint8), TypeError,
     r'expected a floating-point image tensor, got torch\.uint8 \(convert with x\.float\(\) '
     r'and normalise\)'),
    ('int64', torch.zeros(1, 3, 64, 64, dtype=torch.int64), TypeError,
     r'expected a floating-point image tensor, got torch\.int64'),
    ('bool', torch.zeros(1, 3, 64, 64, dtype=torch.bool), TypeError,
     r'expected a floating-point image tensor, got torch\.bool'),
    ('empty uint8', torch.zeros(0, 3, 64, 64, dtype=torch.uint8), TypeError,
     r'expected a floating-point image tensor, got torch\.uint8'),
    ('float64 for float32 weights', torch.zeros(1, 3, 64, 64, dtype=torch.float64), TypeError,
     r'the input is torch\.float64 but the weights are torch\.float32; convert with '
     r'x\.to\(torch\.float32\)'),
    ('numpy', np.zeros((1, 3, 64, 64), np.float32), TypeError,
     r'expected an image batch tensor \[B, 3, H, W\], got ndarray'),
    ('list', [torch.zeros(3, 64, 64)], TypeError,
     r'expected an image batch tensor \[B, 3, H, W\], got list'),
]
CLASS_NAMES = {'hrvit': 'HRViT', 'elsa_swin': 'ELSASwin', 'container': 'Container',
               'container_light': 'Container', 'cloformer': 'CloFormer', 'maformer': 'MAFormer',
               'maformer_na': 'MAFormer'}


@pytest.mark.parametrize('case', BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
@pytest.mark.parametrize('family', FAMILIES)
def test_bad_input_is_refused_naming_the_expected_batch(family, case):
    _, x, error, message = case
    with pytest.raises(error, match=f'^{CLASS_NAMES[family]}: {message}'):
        model_of(family)(x)


@pytest.mark.parametrize('family', FAMILIES)
def test_the_check_follows_in_channels(family):
    """A 1-channel backbone names ``[B, 1, H, W]``, refuses RGB and runs on one channel."""
    model = build(family, in_channels=1).eval()
    with pytest.raises(ValueError, match=r'expected an image batch \[B, 1, H, W\] '
                       r'\(in_channels=1\), got shape \[1, 3, 40, 40\]'):
        model(torch.zeros(1, 3, 40, 40))
    with torch.no_grad():
        outs = model(torch.randn(1, 1, 40, 40))
    assert [o.shape[-2:] for o in outs] == [(10, 10), (5, 5), (3, 3), (2, 2)]


@pytest.mark.parametrize('mode', ['train', 'eval'])
@pytest.mark.parametrize('name', list(ARCHS))
def test_empty_batch_gives_empty_maps_of_the_documented_shapes(name, mode):
    """B = 0: exactly the maps of a B > 0 forward with B replaced by 0 (sizes, dtype, device,
    contiguous NCHW), with zero gradients, BatchNorm statistics unchanged."""
    torch.manual_seed(0)
    model = build(name).train(mode == 'train')
    stats = {k: v.clone() for k, v in model.state_dict().items() if 'running' in k}
    for H, W in [(64, 64), (37, 45), (1, 1), (1, 257)]:
        x = torch.zeros(0, 3, H, W, requires_grad=True)
        outs = model(x)
        assert isinstance(outs, tuple) and len(outs) == len(model.out_indices)
        for out, c, i in zip(outs, model.out_channels, model.out_indices):
            s = 4 * 2**i  # the documented strides (what B > 0 gives: test_fuzz_backbones.py)
            assert out.shape == (0, c, math.ceil(H / s), math.ceil(W / s))
            assert out.dtype == torch.float32 and out.device == x.device
            assert out.is_contiguous()
        model.zero_grad(set_to_none=True)
        sum(o.sum() for o in outs).backward()
        no_grad = []
        for pname, p in model.named_parameters():
            if p.grad is None:
                no_grad.append(pname)
            else:
                assert not p.grad.any(), pname
        # the relative position bias tables reach the output only as SDPA's attn_mask, to
        # which PyTorch's SDPA gives no gradient for an empty batch; every other one is zero
        assert all(n.endswith(('attn.rb', 'attn.rpb')) for n in no_grad), no_grad
        assert x.grad.shape == x.shape
    for k, v in stats.items():
        assert torch.equal(model.state_dict()[k], v), k


@pytest.mark.parametrize('name', WITH_BN)
def test_a_single_tiny_image_in_training_is_refused_with_the_reason(name):
    """BatchNorm cannot train on one value per channel; a single image of up to 32 x 32 has a
    1 x 1 map at stride 32. The refusal says why and what to do; without it the forward fails
    inside BatchNorm (so the check refuses nothing that would have worked)."""
    model = build(name).train()
    x = torch.randn(1, 3, 32, 20)
    with pytest.raises(ValueError, match=f'^{CLASS_NAMES[name]}: in training mode BatchNorm '
                       'needs more than one value per channel, but one 32 x 20 image gives a '
                       '1 x 1 map at stride 32; train with a batch of 2 or more, or images '
                       'larger than 32 x 32, or set norm_eval=True'):
        model(x)
    with mock.patch.object(model, '_check_input', lambda x: None):
        with pytest.raises(ValueError, match='Expected more than 1 value per channel'):
            model(x)
    # what works: a batch of two, a larger image, eval mode, norm_eval, a frozen model
    assert all(o.shape[0] == 2 for o in model(torch.randn(2, 3, 32, 20)))
    assert model(torch.randn(1, 3, 33, 20))[-1].shape[-2:] == (2, 1)
    with torch.no_grad():
        assert model.eval()(x)[-1].shape == (1, model.out_channels[-1], 1, 1)
    assert build(name, norm_eval=True).train()(x)[-1].shape[-2:] == (1, 1)
    assert build(name, frozen_stages=4).train()(x)[-1].shape[-2:] == (1, 1)


@pytest.mark.parametrize('name', ['elsa_swin', 'maformer'])
def test_families_without_batchnorm_train_on_a_single_tiny_image(name):
    model = build(name).train()
    outs = model(torch.randn(1, 3, 5, 7))
    assert [o.shape[-2:] for o in outs] == [(2, 2), (1, 1), (1, 1), (1, 1)]


def test_other_dtypes_are_fine_with_matching_weights_or_under_autocast():
    """The dtype check compares with the weights, and lets autocast do its casting."""
    model = build('container_light').eval()
    with torch.no_grad():
        ref = model(torch.randn(1, 3, 40, 40))
        with torch.autocast('cpu', dtype=torch.bfloat16):
            outs = model(torch.randn(1, 3, 40, 40, dtype=torch.bfloat16))
        assert [o.shape for o in outs] == [r.shape for r in ref]
        outs = model.double()(torch.randn(1, 3, 40, 40, dtype=torch.float64))
        assert all(o.dtype == torch.float64 for o in outs)
