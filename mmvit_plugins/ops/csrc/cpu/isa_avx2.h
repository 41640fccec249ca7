// Opens and closes the AVX2+FMA target region of an ISA translation unit (cpu/*_avx2.cpp):
// the functions defined in between are compiled for AVX2 and FMA, everything included before
// (torch, the standard library) for the baseline. Only GCC on x86-64 builds the AVX2 variant;
// elsewhere the region compiles for the baseline and avx2_build_compiled() is false, so the
// dispatcher never picks it.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MMVIT_AVX2_BUILD 1
#define MMVIT_BEGIN_AVX2 _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma\")")
#define MMVIT_END_AVX2 _Pragma("GCC pop_options")
#else
#define MMVIT_AVX2_BUILD 0
#define MMVIT_BEGIN_AVX2
#define MMVIT_END_AVX2
#endif
