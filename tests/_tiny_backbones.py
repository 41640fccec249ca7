"""Tiny architectures of the five backbone families, shared by the tests that run every family
(fuzzing, ONNX export). Container-Light (attention only in stage 4) and MAFormer with
neighbourhood attention (the compiled na2d op) take other code paths than their siblings."""
from mmvit_plugins.models.backbones import HRViT, CloFormer, Container, ELSASwin, MAFormer

TINY_BACKBONES = {
    'hrvit': lambda: HRViT(dict(
        channels=(16, 32, 32, 64), head_dims=16, mlp_ratios=(2, 2, 2, 2),
        depths=((1, ), (1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1)))),
    'elsa_swin': lambda: ELSASwin(dict(
        embed_dims=16, depths=(1, 1, 2, 2), num_heads=(1, 2, 2, 4), group_width=4)),
    'container': lambda: Container(dict(
        embed_dims=(8, 16, 24, 32), depths=(1, 1, 2, 1), patch_sizes=(4, 2, 2, 2),
        mlp_ratios=(2, 2, 2, 2), num_heads=4, mix_stages=(True, True, True, True))),
    'container_light': lambda: Container(dict(
        embed_dims=(8, 16, 24, 32), depths=(1, 1, 2, 1), patch_sizes=(4, 2, 2, 2),
        mlp_ratios=(2, 2, 2, 2), num_heads=4, mix_stages=(False, False, False, True))),
    'cloformer': lambda: CloFormer(dict(
        embed_dims=(8, 16, 24, 32), num_heads=(2, 2, 3, 4), local_heads=(1, 1, 2, 1))),
    'maformer': lambda: MAFormer(dict(embed_dims=8, depths=(1, 1, 1, 1),
                                      num_heads=(2, 2, 2, 4)), gld_grid=((6, 6), (3, 3))),
    'maformer_na': lambda: MAFormer(dict(embed_dims=8, depths=(1, 1, 1, 1),
                                         num_heads=(2, 2, 2, 4)),
                                    gld_grid=((6, 6), (3, 3)), local_attn='neighborhood'),
}
