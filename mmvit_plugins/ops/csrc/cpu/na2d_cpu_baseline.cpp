// The neighbourhood-attention CPU loops (na2d_cpu_kernels.h) for baseline x86-64 (any CPU).
#include <ATen/Parallel.h>

#include "na2d_cpu.h"
#include "simd.h"

namespace mmvit {
namespace cpu_baseline {
constexpr int kVecBytes = 16;  // one xmm register
constexpr int kDotBlock = 8;  // 8 accumulators + the query chunk of 16 xmm registers
#include "na2d_cpu_kernels.h"
}  // namespace cpu_baseline
}  // namespace mmvit
