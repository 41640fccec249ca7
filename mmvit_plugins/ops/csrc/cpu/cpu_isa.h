// Runtime choice between builds of the same CPU kernel source for different instruction sets.
//
// Each kernel family has one source of loops (e.g. na2d_cpu_kernels.h) that is compiled twice:
// in namespace mmvit::cpu_baseline for baseline x86-64 (SSE2: runs on any x86-64 CPU) and, where
// the compiler can target it, in namespace mmvit::cpu_avx2 under `#pragma GCC target("avx2,fma")`
// (cpu/*_avx2.cpp). The op entry points call MMVIT_CPU_DISPATCH, which picks the build for the
// active instruction set: the best one this CPU supports, chosen at first use, overridable with
// the environment variable MMVIT_CPU_ISA=baseline|avx2 or, at run time, set_cpu_isa().
#pragma once

#include <string>
#include <vector>

namespace mmvit {

enum class CpuIsa : int { kBaseline = 0, kAvx2 = 1 };

const char* cpu_isa_name(CpuIsa isa);
// Whether the AVX2+FMA build was compiled in (x86-64 with GCC) and this CPU runs it.
bool cpu_isa_compiled(CpuIsa isa);
bool cpu_isa_supported(CpuIsa isa);
// The instruction sets that are both compiled in and supported here, baseline first.
std::vector<std::string> available_cpu_isas();
// The build the kernels dispatch to now.
CpuIsa active_cpu_isa();
// Throws std::invalid_argument (a ValueError in Python) for an unknown name or one this build
// or CPU cannot run.
void set_cpu_isa(const std::string& name);

// Defined in cpu/isa_avx2.cpp: whether that file was compiled with the AVX2 target.
bool avx2_build_compiled();

}  // namespace mmvit

// Calls mmvit::cpu_avx2::fn(args...) or mmvit::cpu_baseline::fn(args...), by the active ISA.
#define MMVIT_CPU_DISPATCH(fn, ...)                                      \
  do {                                                                   \
    if (::mmvit::active_cpu_isa() == ::mmvit::CpuIsa::kAvx2)             \
      ::mmvit::cpu_avx2::fn(__VA_ARGS__);                                \
    else                                                                 \
      ::mmvit::cpu_baseline::fn(__VA_ARGS__);                            \
  } while (0)
