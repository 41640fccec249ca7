// The ELSA aggregation CPU loops (elsa_cpu_kernels.h) for baseline x86-64 (any CPU).
#include <ATen/Parallel.h>

#include "elsa_cpu.h"
#include "simd.h"

namespace mmvit {
namespace cpu_baseline {
constexpr int kVecBytes = 16;     // one xmm register
constexpr int kElsaChannels = 4;  // 4 channels x 2 vectors of accumulators of 16 xmm registers
#include "elsa_cpu_kernels.h"
}  // namespace cpu_baseline
}  // namespace mmvit
