// Index and boundary math shared by the CPU and CUDA kernels of mmvit_plugins.
// No ATen in here: plain integers, usable on host and device.
#pragma once

#if defined(__CUDACC__)
#define MMVIT_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define MMVIT_HOST_DEVICE inline
#endif

namespace mmvit {

// ---------------------------------------------------------------------------------------------
// Zero-padded centred windows (ELSA aggregation).
// Tap t = ty * k + tx reads input (y + (ty - p) * dil, x + (tx - p) * dil), p = k / 2.
// For a fixed tap offset `off`, the outputs y whose input y + off lies inside [0, size) are
// [valid_begin, valid_end).
MMVIT_HOST_DEVICE int valid_begin(int off) { return off < 0 ? -off : 0; }
MMVIT_HOST_DEVICE int valid_end(int off, int size) { return off > 0 ? size - off : size; }

// ---------------------------------------------------------------------------------------------
// Clamped neighbourhood windows (neighbourhood attention, NATTEN semantics), along one axis.
// Position i belongs to residue class r = i % dil, whose members are r, r + dil, r + 2 dil, ...
// (n = ceil((size - r) / dil) of them; i is member j = i / dil). The window is the k members
// nearest to i: members s .. s + k - 1 with s = clamp(j - k / 2, 0, n - k). Requires
// size >= k * dil, so that n >= k for every class.
struct AxisWindow {
  int start;    // position of the first neighbour, r + s * dil (later ones every dil)
  int rpb_off;  // relative-position-bias index of the first neighbour: s - j + k - 1
};

MMVIT_HOST_DEVICE AxisWindow axis_window(int i, int size, int k, int dil) {
  const int r = i % dil;
  const int j = i / dil;
  const int n = (size - r + dil - 1) / dil;
  int s = j - k / 2;
  if (s < 0) s = 0;
  if (s > n - k) s = n - k;
  AxisWindow w;
  w.start = r + s * dil;
  w.rpb_off = s - j + k - 1;
  return w;
}

}  // namespace mmvit
