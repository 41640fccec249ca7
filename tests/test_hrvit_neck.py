"""HRViTNeck: channels, strides and levels like FPN's; usable from mmdet configs."""
import math

import pytest
import torch

from mmvit_plugins.models import HRViT, HRViTNeck

B1 = (32, 64, 128, 256)


def branch_maps(H, W, channels=B1):
    return tuple(torch.randn(2, c, math.ceil(H / s), math.ceil(W / s))
                 for c, s in zip(channels, (4, 8, 16, 32)))


@pytest.mark.parametrize('H,W', [(64, 96), (100, 75)])
def test_default_five_levels_strides_4_to_64(H, W):
    neck = HRViTNeck(B1)
    outs = neck(branch_maps(H, W))
    assert len(outs) == 5
    for out, s in zip(outs, (4, 8, 16, 32, 64)):
        assert out.shape == (2, 256, math.ceil(H / s), math.ceil(W / s))


def test_retinanet_style_levels_8_to_128():
    neck = HRViTNeck(B1, out_channels=64, start_level=1, num_outs=5, add_extra_convs=True)
    outs = neck(branch_maps(128, 96))
    assert [o.shape[1] for o in outs] == [64] * 5
    assert [tuple(o.shape[-2:]) for o in outs] == [(16, 12), (8, 6), (4, 3), (2, 2), (1, 1)]
    assert len(neck.extra_convs) == 2


def test_on_the_backbone_and_gradients():
    backbone = HRViT(dict(channels=(16, 32, 32, 64), head_dims=16, mlp_ratios=(2, 2, 2, 2),
                          depths=((1, ), (1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1, 1),
                                  (1, 1, 1, 1))))
    neck = HRViTNeck((16, 32, 32, 64), out_channels=32)
    neck.init_weights()
    x = torch.randn(2, 3, 70, 45, requires_grad=True)
    outs = neck(backbone(x))
    assert [o.shape[-2:] for o in outs] == [(18, 12), (9, 6), (5, 3), (3, 2), (2, 1)]
    sum(o.sum() for o in outs).backward()
    assert all(p.grad is not None for p in neck.parameters())
    assert x.grad is not None


def test_levels_exchange_information_both_ways():
    # Unlike FPN's top-down path, the finest level also feeds the coarsest one.
    neck = HRViTNeck(B1).eval()
    maps = branch_maps(64, 64)
    base = neck(maps)
    changed = list(maps)
    changed[0] = changed[0] + 1.0
    outs = neck(tuple(changed))
    assert not torch.allclose(outs[3], base[3])


def test_bad_arguments():
    with pytest.raises(ValueError, match='start_level must be in 0..3'):
        HRViTNeck(B1, start_level=4)
    with pytest.raises(ValueError, match='num_outs=3 must be >= the 4 levels'):
        HRViTNeck(B1, num_outs=3)
    with pytest.raises(ValueError, match='expects 4 inputs, got 3'):
        HRViTNeck(B1)(branch_maps(64, 64)[:3])


def test_builds_from_mmdet_registry():
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS
    neck = MODELS.build(dict(type='HRViTNeck', in_channels=list(B1), out_channels=256,
                             num_outs=5))
    assert isinstance(neck, HRViTNeck)


def test_channels_last_inputs_give_contiguous_outputs():
    """A channels-last input (which convs propagate) must not reach mmcv ops downstream."""
    neck = HRViTNeck(B1, 16).eval()
    maps = [m.contiguous(memory_format=torch.channels_last) for m in branch_maps(40, 56)]
    with torch.no_grad():
        outs = neck(maps)
        ref = neck([m.contiguous() for m in maps])
    for out, r in zip(outs, ref):
        assert out.is_contiguous()
        torch.testing.assert_close(out, r)
