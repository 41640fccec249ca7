// Which build of the CPU kernels runs (see cpu_isa.h).
#include "cpu_isa.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace mmvit {
namespace {

bool cpu_has_avx2_fma() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

const char* const kNames[] = {"baseline", "avx2"};

bool parse(const std::string& name, CpuIsa* isa) {
  for (int i = 0; i < 2; ++i) {
    if (name == kNames[i]) {
      *isa = static_cast<CpuIsa>(i);
      return true;
    }
  }
  return false;
}

std::string join(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "'" : ", '") + n + "'";
  return s;
}

void check_runnable(const std::string& name, CpuIsa isa, const char* where) {
  if (!cpu_isa_compiled(isa))
    throw std::invalid_argument(std::string(where) + "'" + name +
                                "': this build of mmvit_plugins has no " + name +
                                " kernels (they need x86-64 and GCC); available: " +
                                join(available_cpu_isas()));
  if (!cpu_isa_supported(isa))
    throw std::invalid_argument(std::string(where) + "'" + name + "': this CPU does not support " +
                                name + " (it needs AVX2 and FMA); available: " +
                                join(available_cpu_isas()));
}

// The best build this CPU runs, unless MMVIT_CPU_ISA names another. An unusable value is an
// error at the first op call (and at `import mmvit_plugins.ops`, which calls active_cpu_isa()).
CpuIsa initial_isa() {
  const char* env = std::getenv("MMVIT_CPU_ISA");
  if (env == nullptr || *env == '\0')
    return cpu_isa_supported(CpuIsa::kAvx2) ? CpuIsa::kAvx2 : CpuIsa::kBaseline;
  CpuIsa isa;
  if (!parse(env, &isa))
    throw std::invalid_argument(std::string("MMVIT_CPU_ISA='") + env +
                                "': expected one of 'baseline', 'avx2'");
  check_runnable(env, isa, "MMVIT_CPU_ISA=");
  return isa;
}

std::atomic<int>& active() {
  static std::atomic<int> isa{static_cast<int>(initial_isa())};
  return isa;
}

}  // namespace

const char* cpu_isa_name(CpuIsa isa) { return kNames[static_cast<int>(isa)]; }

bool cpu_isa_compiled(CpuIsa isa) {
  return isa == CpuIsa::kBaseline || avx2_build_compiled();
}

bool cpu_isa_supported(CpuIsa isa) {
  if (!cpu_isa_compiled(isa)) return false;
  return isa == CpuIsa::kBaseline || cpu_has_avx2_fma();
}

std::vector<std::string> available_cpu_isas() {
  std::vector<std::string> names;
  for (int i = 0; i < 2; ++i)
    if (cpu_isa_supported(static_cast<CpuIsa>(i))) names.emplace_back(kNames[i]);
  return names;
}

CpuIsa active_cpu_isa() { return static_cast<CpuIsa>(active().load(std::memory_order_relaxed)); }

void set_cpu_isa(const std::string& name) {
  CpuIsa isa;
  if (!parse(name, &isa))
    throw std::invalid_argument("isa='" + name + "': expected one of 'baseline', 'avx2'");
  check_runnable(name, isa, "isa=");
  active().store(static_cast<int>(isa), std::memory_order_relaxed);
}

}  // namespace mmvit
