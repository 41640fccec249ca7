"""CloFormer: parameter counts and key layout of the original, the attention against an
independent reference, any input size, pyramid taps, the contract, configs and the converter."""
import math
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from mmvit_plugins.models.backbones import CloFormer
from mmvit_plugins.models.backbones.cloformer import CloAttention
from mmvit_plugins.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONVERTER = osp.join(ROOT, 'tools', 'model_converters', 'cloformer2mmvit.py')
TINY = dict(embed_dims=(8, 16, 24, 32), num_heads=(2, 2, 3, 4), local_heads=(1, 1, 2, 1))


@pytest.mark.parametrize('arch,params', [('xxs', 4.167), ('xs', 7.172), ('s', 12.346)])
def test_classifier_parameter_counts_match_the_original(arch, params):
    model = CloFormer(arch, out_indices=(3, ), final_norm=True)
    C = model.out_channels[0]
    n = sum(p.numel() for p in model.parameters()) + C * 1000 + 1000  # + the linear head
    assert round(n / 1e6, 3) == params
    assert len(model.state_dict()) + 2 == 351  # spec 10: 351 tensors (with the head)


def test_original_key_layout():
    sd = CloFormer('xxs', out_indices=(3, ), final_norm=True).state_dict()
    expected = {  # spec 10; XXS stage 1: dh 8, 3 local heads (Cl 24), 1 global (Cg 8)
        'patch_embed.conv1.conv.0.weight': (16, 3, 3, 3),
        'patch_embed.conv4.conv.1.running_var': (32, ),
        'patch_embed.conv5.weight': (32, 32, 1, 1), 'patch_embed.layernorm.weight': (32, ),
        'layers.0.blocks.0.norm1.weight': (32, ),
        'layers.0.blocks.0.attn.qkvs.0.weight': (72, 32, 1, 1),
        'layers.0.blocks.0.attn.convs.0.weight': (72, 1, 3, 3),
        'layers.0.blocks.0.attn.act_blocks.0.act_block.0.weight': (24, 24, 1, 1),
        'layers.0.blocks.0.attn.act_blocks.0.act_block.2.bias': (24, ),
        'layers.0.blocks.0.attn.global_q.weight': (8, 32, 1, 1),
        'layers.0.blocks.0.attn.global_kv.weight': (16, 32, 1, 1),
        'layers.0.blocks.0.attn.proj.weight': (32, 32, 1, 1),
        'layers.0.blocks.1.mlp.fc1.weight': (128, 32, 1, 1),
        'layers.0.blocks.1.mlp.dwconv.weight': (128, 1, 5, 5),
        'layers.0.blocks.1.mlp.fc2.weight': (64, 128, 1, 1),
        'layers.0.blocks.1.downsample.0.weight': (32, 32, 5, 5),  # dense, not depthwise
        'layers.0.blocks.1.downsample.1.running_mean': (32, ),
        'layers.0.blocks.1.downsample.2.weight': (64, 32, 1, 1),
        'layers.3.blocks.1.attn.convs.0.weight': (192, 1, 9, 9),  # dh = 256 / 16 = 16
        'layers.3.blocks.1.attn.global_q.weight': (192, 256, 1, 1),
        'norm.weight': (256, ),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert 'layers.0.blocks.0.downsample.0.weight' not in sd
    assert 'layers.3.blocks.1.downsample.0.weight' not in sd


@pytest.mark.parametrize('size', [(224, 224), (67, 130), (33, 31), (500, 375)])
def test_shapes_on_any_size(size):
    model = CloFormer('xxs').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    for out, c, s in zip(outs, (32, 64, 128, 256), (4, 8, 16, 32)):
        assert out.shape == (1, c, math.ceil(size[0] / s), math.ceil(size[1] / s))
        assert out.is_contiguous()


@pytest.mark.slow
def test_shapes_on_800x1333_which_the_original_cannot_run():
    model = CloFormer('xs', out_indices=(0, 3)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 800, 1333))
    assert [o.shape for o in outs] == [(1, 48, 200, 334), (1, 352, 25, 42)]


def test_multiple_of_32_input_is_not_padded():
    """On sizes the original runs, no padding happens: the last level equals the classifier's
    stage-4 map, and a tap equals the pre-FFN feature of the stage's last block."""
    model = CloFormer(TINY).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        outs = model(x)
        feat = model.patch_embed(x)
        block = model.layers[0].blocks[-1]
        for b in model.layers[0].blocks[:-1]:
            feat, _ = b(feat)
        pre_ffn = feat + block.attn(block.norm1(feat))
    torch.testing.assert_close(outs[0], pre_ffn)


def test_attention_matches_the_spec_float64():
    """Spec 3-5: local tanh(FC(Swish(FC(Qs*Ks))) / sqrt(dh)) * Vs with one DW conv over Q|K|V;
    global softmax attention with K/V from the avg-pooled input; concat local first; proj."""
    torch.manual_seed(0)
    m = CloAttention(24, 3, 2, kernel_size=5, pool=2).double()
    for p in m.parameters():
        p.data.normal_(0, 0.3)
    x = torch.randn(2, 24, 6, 8, dtype=torch.float64)
    dh = 8
    qkv = F.conv2d(F.conv2d(x, m.qkvs[0].weight, m.qkvs[0].bias), m.convs[0].weight,
                   m.convs[0].bias, padding=2, groups=48)
    q, k, v = qkv[:, :16], qkv[:, 16:32], qkv[:, 32:]
    fc1, fc2 = m.act_blocks[0].act_block[0], m.act_blocks[0].act_block[2]
    a = F.conv2d(F.silu(F.conv2d(q * k, fc1.weight, fc1.bias)), fc2.weight, fc2.bias)
    local = torch.tanh(a / math.sqrt(dh)) * v
    gq = F.conv2d(x, m.global_q.weight, m.global_q.bias).flatten(2)  # [B, 8, 48]
    kv = F.conv2d(F.avg_pool2d(x, 2), m.global_kv.weight, m.global_kv.bias).flatten(2)
    gk, gv = kv[:, :8], kv[:, 8:]  # one global head of 8 channels
    attn = (torch.einsum('bcn,bcm->bnm', gq, gk) / math.sqrt(dh)).softmax(-1)
    glob = torch.einsum('bnm,bcm->bcn', attn, gv).view(2, 8, 6, 8)
    ref = F.conv2d(torch.cat([local, glob], 1), m.proj.weight, m.proj.bias)
    torch.testing.assert_close(m(x), ref)


def test_global_attention_runs_in_linear_memory():
    """At stride 4 of 800x1333 the global branch has 66,800 queries: SDPA must be able to take
    its flash kernel (memory linear in the positions) in forward and backward; restricted to it,
    a strided head layout raises 'No available kernel'. Same result as the math kernel."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    torch.manual_seed(0)
    m = CloAttention(24, 3, 2, kernel_size=5, pool=2).double()
    x = torch.randn(2, 24, 6, 10, dtype=torch.float64, requires_grad=True)
    outs, grads = [], []
    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.MATH):
        with sdpa_kernel([backend]):
            y = m(x)
            y.square().sum().backward()
        outs.append(y)
        grads.append(x.grad)
        x.grad = None
    torch.testing.assert_close(*outs)
    torch.testing.assert_close(*grads)


def test_registry_out_norms_and_contract():
    model = MODELS.build(dict(type='CloFormer', arch=TINY, out_indices=(1, 3), out_norms=True))
    assert model.out_channels == (16, 32) and hasattr(model, 'norm1')
    assert not hasattr(model, 'norm0') and model.norm is None
    frozen = CloFormer(TINY, frozen_stages=1, norm_eval=True).train()
    for name, p in frozen.named_parameters():
        assert p.requires_grad != name.startswith(('patch_embed.', 'layers.0.')), name
    assert not any(m.training for m in frozen.modules() if isinstance(m, torch.nn.BatchNorm2d))
    a = CloFormer(TINY)
    b = CloFormer(TINY, with_cp=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    grads = []
    for m in (a, b):
        sum(o.sum() for o in m.train()(x)).backward()
        grads.append(m.layers[2].blocks[0].attn.proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(arch='m'), ValueError, 'arch must be one of'),
    (dict(arch=dict(TINY, num_heads=(2, 2))), ValueError, 'one entry per stage'),
    (dict(arch=dict(TINY, local_heads=(2, 1, 2, 1))), ValueError, 'local_heads'),
    (dict(out_indices=(5, )), ValueError, 'out_indices'),
    (dict(final_norm=True, out_indices=(1, )), ValueError, 'final_norm'),
])
def test_bad_arguments(kwargs, error, match):
    kwargs.setdefault('arch', TINY)
    with pytest.raises(error, match=match):
        CloFormer(**kwargs)


def build(config):
    import importlib
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    importlib.import_module('mmpretrain.models')
    from mmpretrain.registry import MODELS as PRETRAIN
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return PRETRAIN.build(cfg.model)


@pytest.mark.parametrize('arch,params', [('xxs', 4.167), ('xs', 7.172), ('s', 12.346)])
def test_classifier_configs(arch, params):
    model = build(f'cls_cloformer_{arch}_in1k.py')
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 3) == params


def test_converter_round_trip_strict(tmp_path):
    model = build('cls_cloformer_xxs_in1k.py').eval()
    for p in model.parameters():
        p.data.add_(0.01 * torch.randn_like(p))
    sd = {k[len('backbone.'):] if k.startswith('backbone.') else 'head.' + k[len('head.fc.'):]:
          v.clone() for k, v in model.state_dict().items()}
    src = tmp_path / 'ckpt_epoch_299.pth'
    torch.save({'model': sd, 'epoch': 299, 'max_accuracy': 77.0}, src)
    dst = tmp_path / 'out.pth'
    result = subprocess.run([sys.executable, CONVERTER, str(src), str(dst)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    fresh = build('cls_cloformer_xxs_in1k.py').eval()
    load_checkpoint(fresh, str(dst), map_location='cpu', strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x, mode='tensor'), model(x, mode='tensor'), rtol=0,
                                   atol=0)
    # the ImageNet backbone into a dense one (new per-level GroupNorms, no final norm there)
    dense = CloFormer('xxs', out_norms=True,
                      init_cfg=dict(type='Pretrained', checkpoint=str(dst), prefix='backbone.'))
    dense.init_weights()
    for name, param in dense.named_parameters():
        if not name.startswith(('norm0.', 'norm1.', 'norm2.', 'norm3.')):
            torch.testing.assert_close(param, model.backbone.get_parameter(name), rtol=0,
                                       atol=0, msg=name)
    assert torch.all(dense.norm3.weight == 1) and torch.all(dense.norm3.bias == 0)
