"""Compiled sliding-window attention ops (C++ on the CPU; CUDA entry points for later kernels).

``HAS_EXT`` says whether the compiled extension loaded; without it every op runs its
pure-PyTorch reference (one warning is given at import). ``cpu_isa()`` says which build of the
CPU kernels runs (baseline x86-64 or AVX2 + FMA, picked from the CPU; ``MMVIT_CPU_ISA`` or
``set_cpu_isa`` overrides it).
"""
from ._ext import (HAS_EXT, WITH_CUDA, available_cpu_isas, cpu_isa, cpu_isa_override,
                   reference_ops, registered_ops, set_cpu_isa, set_reference_ops,
                   using_reference_ops)
from .elsa_aggregate import (ELSAAggregateFunction, ELSAAggregation, elsa_aggregate,
                             elsa_aggregate_reference)
from .neighborhood_attn import (NA2DAVFunction, NA2DFusedFunction, NA2DQKFunction,
                                NeighborhoodAttention2D, na2d, na2d_av, na2d_av_reference,
                                na2d_qk, na2d_qk_reference, na2d_reference)

__all__ = [
    'HAS_EXT', 'WITH_CUDA', 'registered_ops', 'reference_ops', 'set_reference_ops',
    'using_reference_ops', 'cpu_isa', 'available_cpu_isas', 'set_cpu_isa', 'cpu_isa_override',
    'elsa_aggregate', 'elsa_aggregate_reference', 'ELSAAggregateFunction',
    'ELSAAggregation', 'na2d', 'na2d_qk', 'na2d_av', 'na2d_reference', 'na2d_qk_reference',
    'na2d_av_reference', 'NA2DQKFunction', 'NA2DAVFunction', 'NA2DFusedFunction',
    'NeighborhoodAttention2D'
]
