// The loops of elsa_cpu.h, written once and compiled once per instruction set: a translation
// unit includes ATen/Parallel.h, elsa_cpu.h and simd.h, then (for AVX2) switches the target,
// then includes this file inside `namespace mmvit { namespace cpu_<isa> {`, with kVecBytes and
// kElsaChannels defined. No include guard: each ISA unit includes it exactly once.
//
// Forward: per work item (sample, head, block of kElsaRows output rows) the head's value rows
// are copied once with zero columns on both sides, so every tap of a vector of outputs is one
// unaligned load with no bounds check. Each vector of outputs of kElsaChannels channels then
// sums all k*k taps in registers and is written once; the head's attention vector of a tap is
// loaded once for those channels (they share it).
// Backward: per (b, c) plane for grad_v and the ghosts, per (b, g, tap) plane for grad_attn,
// over the rectangle of outputs whose tap input is inside the map.

MMVIT_SIMD_HELPERS

constexpr int kElsaRows = 8;  // output rows per forward work item
static_assert(kElsaChannels >= 1 && kElsaChannels <= 4,
              "forward_loop's switch has channel blocks of 1 to 4");

// The rows of one forward work item: the head's values at input rows r0 .. r1 - 1, each row
// between pad zeros (channel c's input row iy at v + (iy - r0) * rstride + c * Wp + pad), the
// head's attention and its ghosts, transposed per block of channels so that a tap's ghosts of
// the block are adjacent (block j0 of nb channels: tap t, channel j0 + j at j0 * k*k + t * nb
// + j).
template <typename T>
struct ElsaRows {
  T* v;
  int64_t rstride;
  int Wp, r0;
  const T* a;   // the head's attention, [k*k, H, W]
  T *m, *bg;    // transposed ghosts of the head, cg * k*k each (unused when absent)
};

// Copies the input rows [r0, r1) of the head's cg planes (HW apart, W wide) to s.v.
template <typename T>
static void pad_rows(const T* src, int64_t HW, int cg, int W, int r0, int r1, int pad,
                     const ElsaRows<T>& s) {
  for (int c = 0; c < cg; ++c) {  // rows r0 .. r1 - 1 of a plane are adjacent: one stream
    for (int r = r0; r < r1; ++r) {
      T* d = s.v + (r - r0) * s.rstride + int64_t(c) * s.Wp;
      for (int x = 0; x < pad; ++x) d[x] = d[pad + W + x] = T(0);
      std::memcpy(d + pad, src + c * HW + int64_t(r) * W, sizeof(T) * W);
    }
  }
}

// Transposes the ghosts [cg, K] of a head into blocks of kElsaChannels channels (ElsaRows).
template <typename T>
static void block_ghosts(const T* src, int cg, int K, T* dst) {
  for (int j0 = 0; j0 < cg; j0 += kElsaChannels) {
    const int nb = cg - j0 < kElsaChannels ? cg - j0 : kElsaChannels;
    for (int j = 0; j < nb; ++j)
      for (int t = 0; t < K; ++t) dst[int64_t(j0) * K + t * nb + j] = src[int64_t(j0 + j) * K + t];
  }
}

// Outputs x .. x + NX * L of row y of channels j0 .. j0 + NB - 1: all taps summed in NB * NX
// registers of type V (a vector of L lanes, or T itself for the columns past the last vector).
template <typename T, typename V, int L, bool HAS_M, bool HAS_B, int NB, int NX>
static inline void forward_block(const ElsaGeometry& g, const ElsaRows<T>& s, int y, int x,
                                 int j0, T* __restrict__ out) {
  const int k = g.k, p = k / 2, dil = g.dil, Wp = s.Wp;
  const int64_t HW = g.plane();
  V acc[NB][NX];
  for (int j = 0; j < NB; ++j)
    for (int n = 0; n < NX; ++n) acc[j][n] = V{};
  const T* vx = s.v + j0 * Wp + x;
  const T* ax = s.a + int64_t(y) * g.W + x;
  const int64_t go = int64_t(j0) * k * k;
  for (int ty = 0; ty < k; ++ty) {
    const int iy = y + (ty - p) * dil;
    if (iy < 0 || iy >= g.H) continue;  // zero padding: the row adds nothing
    const T* vt = vx + (iy - s.r0) * s.rstride;
    const T* at = ax + ty * k * HW;
    const T* __restrict__ mt = s.m + go + ty * k * NB;
    const T* __restrict__ bt = s.bg + go + ty * k * NB;
    for (int tx = 0; tx < k; ++tx) {
      V av[NX];
      for (int n = 0; n < NX; ++n) av[n] = vload<V>(at + n * L);
      for (int j = 0; j < NB; ++j) {
        V f[NX];
        for (int n = 0; n < NX; ++n) {
          f[n] = av[n];
          if (HAS_M) f[n] *= vsplat<V>(mt[j]);
          if (HAS_B) f[n] += vsplat<V>(bt[j]);
          acc[j][n] += vload<V>(vt + j * Wp + n * L) * f[n];
        }
      }
      vt += dil;
      at += HW;
      mt += NB;
      bt += NB;
    }
  }
  for (int j = 0; j < NB; ++j)
    for (int n = 0; n < NX; ++n) vstore(out + (j0 + j) * HW + int64_t(y) * g.W + x + n * L,
                                        acc[j][n]);
}

// Row y of channels j0 .. j0 + NB - 1: pairs of vectors, then one vector, then the columns
// past the last vector as one more vector that ends at the row's end (it rewrites a few
// outputs with the same values), or one by one in a row narrower than a vector.
template <typename T, bool HAS_M, bool HAS_B, int NB>
static inline void forward_row(const ElsaGeometry& g, const ElsaRows<T>& s, int y, int j0,
                               T* out) {
  using V = typename Simd<T, kVecBytes>::V;
  constexpr int L = Simd<T, kVecBytes>::L;
  const int W = g.W;
  int x = 0;
  for (; x + 2 * L <= W; x += 2 * L)
    forward_block<T, V, L, HAS_M, HAS_B, NB, 2>(g, s, y, x, j0, out);
  if (x + L <= W) {
    forward_block<T, V, L, HAS_M, HAS_B, NB, 1>(g, s, y, x, j0, out);
    x += L;
  }
  if (x < W && W >= L) {
    forward_block<T, V, L, HAS_M, HAS_B, NB, 1>(g, s, y, W - L, j0, out);
  } else {
    for (; x < W; ++x) forward_block<T, T, 1, HAS_M, HAS_B, NB, 1>(g, s, y, x, j0, out);
  }
}

// Asks for one row of n planes (HW apart, W wide) ahead of its use: the k*k attention planes
// of a head are more streams than the hardware prefetchers follow (the row is read from memory
// by the first channel block, then from L1).
template <typename T>
static inline void prefetch_row(const T* row, int64_t HW, int n, int W) {
  constexpr int kLine = 64 / sizeof(T);
  for (int c = 0; c < n; ++c)
    for (int x = 0; x < W; x += kLine) __builtin_prefetch(row + c * HW + x);
}

template <typename T, bool HAS_M, bool HAS_B>
static void forward_loop(const ElsaGeometry& g, const T* v, const T* a, const T* m,
                         const T* bg, T* out) {
  const int H = g.H, W = g.W, G = g.G, cg = g.cg(), K = g.k * g.k;
  const int pad = g.k / 2 * g.dil, Wp = W + 2 * pad;
  const int64_t HW = g.plane();
  const int blocks = (H + kElsaRows - 1) / kElsaRows;
  const int most_rows = kElsaRows + 2 * pad < H ? kElsaRows + 2 * pad : H;
  at::parallel_for(0, int64_t(g.B) * G * blocks, 1, [&](int64_t begin, int64_t end) {
    // (new[], not std::vector: no std template is instantiated in an ISA build)
    T* buf = new T[int64_t(most_rows) * cg * Wp + 2 * int64_t(cg) * K];
    ElsaRows<T> s{buf, int64_t(cg) * Wp, Wp, 0, nullptr, buf + int64_t(most_rows) * cg * Wp,
                  buf + int64_t(most_rows) * cg * Wp + int64_t(cg) * K};
    int ghost_head = -1;  // the head whose ghosts s holds
    for (int64_t item = begin; item < end; ++item) {
      const int64_t bh = item / blocks;  // b * G + head
      const int head = int(bh % G);
      const int y0 = int(item % blocks) * kElsaRows;
      const int y1 = y0 + kElsaRows < H ? y0 + kElsaRows : H;
      const int r0 = y0 - pad > 0 ? y0 - pad : 0, r1 = y1 + pad < H ? y1 + pad : H;
      const int64_t c0 = bh / G * g.C + int64_t(head) * cg;  // the head's first (b, c) plane
      s.r0 = r0;
      s.a = a + bh * K * HW;
      pad_rows(v + c0 * HW, HW, cg, W, r0, r1, pad, s);
      if (head != ghost_head) {
        if (HAS_M) block_ghosts(m + int64_t(head) * cg * K, cg, K, s.m);
        if (HAS_B) block_ghosts(bg + int64_t(head) * cg * K, cg, K, s.bg);
        ghost_head = head;
      }
      T* o = out + c0 * HW;
      for (int y = y0; y < y1; ++y) {
        const int nblk = (cg + kElsaChannels - 1) / kElsaChannels;
        for (int j0 = 0, blk = 0; j0 < cg; j0 += kElsaChannels, ++blk) {
          // each channel block asks for its share of the taps of this plane's next row
          if (y + 1 < H) {
            const int t0 = blk * K / nblk, t1 = (blk + 1) * K / nblk;
            prefetch_row(s.a + t0 * HW + int64_t(y + 1) * W, HW, t1 - t0, W);
          }
          switch (cg - j0 < kElsaChannels ? cg - j0 : kElsaChannels) {
            case 4: forward_row<T, HAS_M, HAS_B, 4>(g, s, y, j0, o); break;
            case 3: forward_row<T, HAS_M, HAS_B, 3>(g, s, y, j0, o); break;
            case 2: forward_row<T, HAS_M, HAS_B, 2>(g, s, y, j0, o); break;
            default: forward_row<T, HAS_M, HAS_B, 1>(g, s, y, j0, o); break;
          }
        }
      }
    }
    delete[] buf;
  });
}

template <typename T>
void elsa_forward(const ElsaGeometry& g, const T* v, const T* a, const T* m, const T* bg,
                  T* out) {
  if (m && bg) forward_loop<T, true, true>(g, v, a, m, bg, out);
  else if (m) forward_loop<T, true, false>(g, v, a, m, bg, out);
  else if (bg) forward_loop<T, false, true>(g, v, a, m, bg, out);
  else forward_loop<T, false, false>(g, v, a, m, bg, out);
}

// One (b, c) plane of the backward: grad_v (the transposed filter, scattered within the plane)
// and the per-sample ghost-gradient sums gm[t] = sum_o dy*v_t*a_t, gb[t] = sum_o dy*v_t, all in
// one pass over each row. The ghost sums accumulate per column in `col_m`/`col_b` (W entries)
// and are reduced once per tap: a per-row horizontal reduction costs more than the row itself.
// The template flags drop the parts that are not needed.
template <typename T, bool NEED_V, bool NEED_M, bool NEED_B>
static void backward_plane(const ElsaGeometry& g, const T* __restrict__ dy,
                           const T* __restrict__ v, const T* __restrict__ a, const T* m,
                           const T* bg, T* dv, double* gm, double* gb, T* cols) {
  const int W = g.W, K = g.k * g.k;
  const int64_t HW = g.plane();
  if (NEED_V)
    for (int64_t i = 0; i < HW; ++i) dv[i] = T(0);
  T* __restrict__ col_m = cols;
  T* __restrict__ col_b = cols + W;
  for (int t = 0; t < K; ++t) {
    const ElsaTap& tp = g.taps[t];
    const T mt = m ? m[t] : T(1);
    const T bt = bg ? bg[t] : T(0);
    const T* at = a + t * HW;
    const int x0 = tp.x0, x1 = tp.x1;
    if (NEED_M || NEED_B)
      for (int x = 0; x < 2 * W; ++x) cols[x] = T(0);
    for (int y = tp.y0; y < tp.y1; ++y) {
      const T* __restrict__ dyr = dy + int64_t(y) * W;
      const T* __restrict__ ar = at + int64_t(y) * W;
      const int64_t in_row = int64_t(y + tp.oy) * W + tp.ox;
      const T* __restrict__ vr = v + in_row;
      T* __restrict__ dvr = NEED_V ? dv + in_row : nullptr;
      for (int x = x0; x < x1; ++x) {
        const T gr = dyr[x];
        if (NEED_V) dvr[x] += gr * (ar[x] * mt + bt);
        const T pr = gr * vr[x];
        if (NEED_M) col_m[x] += pr * ar[x];
        if (NEED_B) col_b[x] += pr;
      }
    }
    double sm = 0, sb = 0;
    for (int x = x0; x < x1; ++x) {
      if (NEED_M) sm += col_m[x];
      if (NEED_B) sb += col_b[x];
    }
    if (NEED_M) gm[t] = sm;
    if (NEED_B) gb[t] = sb;
  }
}

template <typename T, bool NEED_V, bool NEED_M, bool NEED_B>
static void backward_loop(const ElsaGeometry& g, const T* dy, const T* v, const T* a,
                          const T* m, const T* bg, T* dv, double* gm, double* gb) {
  const int C = g.C, G = g.G, cg = g.cg(), K = g.k * g.k;
  const int64_t HW = g.plane();
  at::parallel_for(0, int64_t(g.B) * C, 1, [&](int64_t begin, int64_t end) {
    T* cols = new T[2 * g.W];  // the column sums of the ghost gradients
    for (int64_t bc = begin; bc < end; ++bc) {
      const int64_t b = bc / C, c = bc % C;
      backward_plane<T, NEED_V, NEED_M, NEED_B>(
          g, dy + bc * HW, v + bc * HW, a + (b * G + c / cg) * K * HW, m ? m + c * K : nullptr,
          bg ? bg + c * K : nullptr, NEED_V ? dv + bc * HW : nullptr,
          NEED_M ? gm + bc * K : nullptr, NEED_B ? gb + bc * K : nullptr, cols);
    }
    delete[] cols;
  });
}

template <typename T, bool NEED_V, bool NEED_M>
static void backward_loop_b(const ElsaGeometry& g, const T* dy, const T* v, const T* a,
                            const T* m, const T* bg, T* dv, double* gm, double* gb) {
  if (gb) backward_loop<T, NEED_V, NEED_M, true>(g, dy, v, a, m, bg, dv, gm, gb);
  else backward_loop<T, NEED_V, NEED_M, false>(g, dy, v, a, m, bg, dv, gm, gb);
}

// Picks the instantiation of backward_loop for the gradients that are needed.
template <typename T>
void elsa_backward_v(const ElsaGeometry& g, const T* dy, const T* v, const T* a, const T* m,
                     const T* bg, T* dv, double* gm, double* gb) {
  if (dv && gm) backward_loop_b<T, true, true>(g, dy, v, a, m, bg, dv, gm, gb);
  else if (dv) backward_loop_b<T, true, false>(g, dy, v, a, m, bg, dv, gm, gb);
  else if (gm) backward_loop_b<T, false, true>(g, dy, v, a, m, bg, dv, gm, gb);
  else backward_loop_b<T, false, false>(g, dy, v, a, m, bg, dv, gm, gb);
}

// One (b, g, t) plane of grad_attn: da = sum_{c in head g} dy_c * shift_t(v_c) * m_c[t].
template <typename T>
static void grad_attn_plane(const ElsaGeometry& g, const T* dy, const T* v, const T* m,
                            T* __restrict__ da, int t) {
  const int W = g.W, cg = g.cg(), K = g.k * g.k;
  const int64_t HW = g.plane();
  const ElsaTap& tp = g.taps[t];
  for (int64_t i = 0; i < HW; ++i) da[i] = T(0);
  for (int c = 0; c < cg; ++c) {
    const T mt = m ? m[c * K + t] : T(1);
    const T* dyc = dy + c * HW;
    const T* vc = v + c * HW;
    for (int y = tp.y0; y < tp.y1; ++y) {
      const T* __restrict__ dyr = dyc + int64_t(y) * W;
      const T* __restrict__ vr = vc + int64_t(y + tp.oy) * W + tp.ox;
      T* __restrict__ dar = da + int64_t(y) * W;
      for (int x = tp.x0; x < tp.x1; ++x) dar[x] += dyr[x] * vr[x] * mt;
    }
  }
}

template <typename T>
void elsa_grad_attn(const ElsaGeometry& g, const T* dy, const T* v, const T* m, T* da) {
  const int C = g.C, G = g.G, cg = g.cg(), K = g.k * g.k;
  const int64_t HW = g.plane();
  at::parallel_for(0, int64_t(g.B) * G * K, 1, [&](int64_t begin, int64_t end) {
    for (int64_t bgt = begin; bgt < end; ++bgt) {
      const int64_t t = bgt % K, bh = bgt / K, b = bh / G, head = bh % G;
      const int64_t c0 = b * C + head * cg;  // first channel plane of the head
      grad_attn_plane<T>(g, dy + c0 * HW, v + c0 * HW, m ? m + head * cg * K : nullptr,
                         da + bgt * HW, int(t));
    }
  });
}

template void elsa_forward<float>(const ElsaGeometry&, const float*, const float*, const float*,
                                  const float*, float*);
template void elsa_forward<double>(const ElsaGeometry&, const double*, const double*,
                                   const double*, const double*, double*);
template void elsa_backward_v<float>(const ElsaGeometry&, const float*, const float*,
                                     const float*, const float*, const float*, float*, double*,
                                     double*);
template void elsa_backward_v<double>(const ElsaGeometry&, const double*, const double*,
                                      const double*, const double*, const double*, double*,
                                      double*, double*);
template void elsa_grad_attn<float>(const ElsaGeometry&, const float*, const float*,
                                    const float*, float*);
template void elsa_grad_attn<double>(const ElsaGeometry&, const double*, const double*,
                                     const double*, double*);
