// Whether the AVX2 builds of the CPU loops (cpu/*_avx2.cpp) were compiled for AVX2.
#include "cpu_isa.h"
#include "isa_avx2.h"

namespace mmvit {
bool avx2_build_compiled() { return MMVIT_AVX2_BUILD == 1; }
}  // namespace mmvit
