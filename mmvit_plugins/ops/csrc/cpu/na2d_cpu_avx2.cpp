// The neighbourhood-attention CPU loops (na2d_cpu_kernels.h) for AVX2 + FMA.
#include <ATen/Parallel.h>

#include "isa_avx2.h"
#include "na2d_cpu.h"
#include "simd.h"

MMVIT_BEGIN_AVX2
namespace mmvit {
namespace cpu_avx2 {
constexpr int kVecBytes = 32;  // one ymm register
constexpr int kDotBlock = 8;  // 8 accumulators + the query chunk of 16 ymm registers
#include "na2d_cpu_kernels.h"
}  // namespace cpu_avx2
}  // namespace mmvit
MMVIT_END_AVX2
