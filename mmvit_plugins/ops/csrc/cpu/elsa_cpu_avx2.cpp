// The ELSA aggregation CPU loops (elsa_cpu_kernels.h) for AVX2 + FMA.
#include <ATen/Parallel.h>

#include "elsa_cpu.h"
#include "isa_avx2.h"
#include "simd.h"

MMVIT_BEGIN_AVX2
namespace mmvit {
namespace cpu_avx2 {
constexpr int kVecBytes = 32;     // one ymm register
constexpr int kElsaChannels = 4;  // 4 channels x 2 vectors of accumulators of 16 ymm registers
#include "elsa_cpu_kernels.h"
}  // namespace cpu_avx2
}  // namespace mmvit
MMVIT_END_AVX2
