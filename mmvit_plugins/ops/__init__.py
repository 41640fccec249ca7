"""Compiled sliding-window attention ops (C++ on the CPU; CUDA entry points for later kernels).

``HAS_EXT`` says whether the compiled extension loaded; without it every op runs its
pure-PyTorch reference (one warning is given at import).
"""
from ._ext import (HAS_EXT, WITH_CUDA, reference_ops, registered_ops, set_reference_ops,
                   using_reference_ops)
from .elsa_aggregate import (ELSAAggregateFunction, ELSAAggregation, elsa_aggregate,
                             elsa_aggregate_reference)
from .neighborhood_attn import (NA2DAVFunction, NA2DFusedFunction, NA2DQKFunction,
                                NeighborhoodAttention2D, na2d, na2d_av, na2d_av_reference,
                                na2d_qk, na2d_qk_reference, na2d_reference)

__all__ = [
    'HAS_EXT', 'WITH_CUDA', 'registered_ops', 'reference_ops', 'set_reference_ops',
    'using_reference_ops',
    'elsa_aggregate', 'elsa_aggregate_reference', 'ELSAAggregateFunction',
    'ELSAAggregation', 'na2d', 'na2d_qk', 'na2d_av', 'na2d_reference', 'na2d_qk_reference',
    'na2d_av_reference', 'NA2DQKFunction', 'NA2DAVFunction', 'NA2DFusedFunction',
    'NeighborhoodAttention2D'
]
