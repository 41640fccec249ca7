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
// Backward: grad_v in the same shape with the taps mirrored (grad_v_loop); grad_attn and the
// ghost sums together, over blocks of taps (grad_attn_loop).

MMVIT_SIMD_HELPERS

static_assert(kElsaChannels >= 1 && kElsaChannels <= 4,
              "with_channel_block has channel blocks of 1 to 4");

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

// Copies rows r0 .. r1 - 1 of n planes (HW apart, W wide, H rows) between pad zero columns:
// plane i's row r at dst + (r - r0) * rs + i * ps + pad. Rows outside the map become zeros.
template <typename T>
static void pad_rows(const T* src, int64_t HW, int n, int W, int H, int r0, int r1, int pad,
                     T* dst, int64_t rs, int64_t ps) {
  for (int i = 0; i < n; ++i) {  // rows r0 .. r1 - 1 of a plane are adjacent: one stream
    for (int r = r0; r < r1; ++r) {
      T* d = dst + (r - r0) * rs + i * ps;
      if (r < 0 || r >= H) {
        for (int x = 0; x < W + 2 * pad; ++x) d[x] = T(0);
        continue;
      }
      for (int x = 0; x < pad; ++x) d[x] = d[pad + W + x] = T(0);
      std::memcpy(d + pad, src + i * HW + int64_t(r) * W, sizeof(T) * W);
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

// Calls block.template operator()<V, L, NX>(x) over a row of W outputs: pairs of vectors (NX = 2),
// then one vector, then the columns past the last vector as one more vector that ends at the
// row's end (it rewrites a few outputs with the same values), or one by one (V = T, L = 1) in a
// row narrower than a vector.
template <typename T, typename F>
static inline void for_row_vectors(int W, const F& block) {
  using V = typename Simd<T, kVecBytes>::V;
  constexpr int L = Simd<T, kVecBytes>::L;
  int x = 0;
  for (; x + 2 * L <= W; x += 2 * L) block.template operator()<V, L, 2>(x);
  if (x + L <= W) {
    block.template operator()<V, L, 1>(x);
    x += L;
  }
  if (x < W && W >= L) {
    block.template operator()<V, L, 1>(W - L);
  } else {
    for (; x < W; ++x) block.template operator()<T, 1, 1>(x);
  }
}

// fn.template operator()<NB>() for a block of nb (1 to kElsaChannels) channels.
template <typename F>
static inline void with_channel_block(int nb, const F& fn) {
  switch (nb) {
    case 4: fn.template operator()<4>(); break;
    case 3: fn.template operator()<3>(); break;
    case 2: fn.template operator()<2>(); break;
    default: fn.template operator()<1>(); break;
  }
}

// fn.template operator()<HAS_M, HAS_B>() for the ghosts that are given (non-null).
template <typename T, typename F>
static inline void with_ghosts(const T* m, const T* bg, const F& fn) {
  if (m && bg) fn.template operator()<true, true>();
  else if (m) fn.template operator()<true, false>();
  else if (bg) fn.template operator()<false, true>();
  else fn.template operator()<false, false>();
}

// Row y of channels j0 .. j0 + NB - 1.
template <typename T, bool HAS_M, bool HAS_B, int NB>
static inline void forward_row(const ElsaGeometry& g, const ElsaRows<T>& s, int y, int j0,
                               T* out) {
  for_row_vectors<T>(g.W, [&]<typename V, int L, int NX>(int x) {
    forward_block<T, V, L, HAS_M, HAS_B, NB, NX>(g, s, y, x, j0, out);
  });
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
      pad_rows(v + c0 * HW, HW, cg, W, H, r0, r1, pad, s.v, s.rstride, s.Wp);
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
          with_channel_block(cg - j0 < kElsaChannels ? cg - j0 : kElsaChannels, [&]<int NB>() {
            forward_row<T, HAS_M, HAS_B, NB>(g, s, y, j0, o);
          });
        }
      }
    }
    delete[] buf;
  });
}

template <typename T>
void elsa_forward(const ElsaGeometry& g, const T* v, const T* a, const T* m, const T* bg,
                  T* out) {
  with_ghosts(m, bg, [&]<bool HAS_M, bool HAS_B>() {
    forward_loop<T, HAS_M, HAS_B>(g, v, a, m, bg, out);
  });
}

// Backward, grad_v: the transposed filter as a gather, in the forward's shape. Per work item
// (sample, head, block of kElsaRows input rows) the head's grad_out rows and attention rows of
// the outputs those inputs feed are copied once between zero columns (the zero grad_out
// columns stand for the outputs outside the map), so each vector of inputs of kElsaChannels
// channels sums its k*k mirrored taps in registers.
template <typename T>
struct ElsaGradRows {
  T* dy;  // the head's grad_out rows: channel c's row oy at dy + (oy - r0) * rstride + c * Wp + pad
  T* a;   // the head's attention rows: tap t's row oy at a + t * astride + (oy - r0) * Wp + pad
  int64_t rstride, astride;
  int Wp, r0;
  T *m, *bg;  // transposed ghosts of the head, as in ElsaRows
};

// Inputs x .. x + NX * L of row y of channels j0 .. j0 + NB - 1 (see forward_block). Tap
// (ty, tx) of input x is fed by output x - (tx - p) * dil: padded column x + (k - 1 - tx) * dil.
template <typename T, typename V, int L, bool HAS_M, bool HAS_B, int NB, int NX>
static inline void grad_v_block(const ElsaGeometry& g, const ElsaGradRows<T>& s, int y, int x,
                                int j0, T* __restrict__ dv) {
  const int k = g.k, p = k / 2, dil = g.dil, Wp = s.Wp;
  const int64_t HW = g.plane();
  V acc[NB][NX];
  for (int j = 0; j < NB; ++j)
    for (int n = 0; n < NX; ++n) acc[j][n] = V{};
  const T* dx = s.dy + j0 * Wp + x + (k - 1) * dil;
  const T* ax = s.a + x + (k - 1) * dil;
  const int64_t go = int64_t(j0) * k * k;
  for (int ty = 0; ty < k; ++ty) {
    const int oy = y - (ty - p) * dil;
    if (oy < 0 || oy >= g.H) continue;  // no output: the row adds nothing
    const T* dt = dx + (oy - s.r0) * s.rstride;
    const T* at = ax + ty * k * s.astride + (oy - s.r0) * Wp;
    const T* __restrict__ mt = s.m + go + ty * k * NB;
    const T* __restrict__ bt = s.bg + go + ty * k * NB;
    for (int tx = 0; tx < k; ++tx) {
      V av[NX];
      for (int n = 0; n < NX; ++n) av[n] = vload<V>(at + n * L);
      for (int j = 0; j < NB; ++j) {
        for (int n = 0; n < NX; ++n) {
          V f = av[n];
          if (HAS_M) f *= vsplat<V>(mt[j]);
          if (HAS_B) f += vsplat<V>(bt[j]);
          acc[j][n] += vload<V>(dt + j * Wp + n * L) * f;
        }
      }
      dt -= dil;
      at += s.astride - dil;
      mt += NB;
      bt += NB;
    }
  }
  for (int j = 0; j < NB; ++j)
    for (int n = 0; n < NX; ++n) vstore(dv + (j0 + j) * HW + int64_t(y) * g.W + x + n * L,
                                        acc[j][n]);
}

// Row y of channels j0 .. j0 + NB - 1, split into vectors as in forward_row.
template <typename T, bool HAS_M, bool HAS_B, int NB>
static inline void grad_v_row(const ElsaGeometry& g, const ElsaGradRows<T>& s, int y, int j0,
                              T* dv) {
  for_row_vectors<T>(g.W, [&]<typename V, int L, int NX>(int x) {
    grad_v_block<T, V, L, HAS_M, HAS_B, NB, NX>(g, s, y, x, j0, dv);
  });
}

template <typename T, bool HAS_M, bool HAS_B>
static void grad_v_loop(const ElsaGeometry& g, const T* dy, const T* a, const T* m,
                        const T* bg, T* dv) {
  const int H = g.H, W = g.W, G = g.G, cg = g.cg(), K = g.k * g.k;
  const int pad = g.k / 2 * g.dil, Wp = W + 2 * pad;
  const int64_t HW = g.plane();
  const int blocks = (H + kElsaRows - 1) / kElsaRows;
  const int most_rows = kElsaRows + 2 * pad < H ? kElsaRows + 2 * pad : H;
  at::parallel_for(0, int64_t(g.B) * G * blocks, 1, [&](int64_t begin, int64_t end) {
    const int64_t dy_size = int64_t(most_rows) * cg * Wp, a_size = int64_t(most_rows) * K * Wp;
    T* buf = new T[dy_size + a_size + 2 * int64_t(cg) * K];
    ElsaGradRows<T> s{buf, buf + dy_size, int64_t(cg) * Wp, int64_t(most_rows) * Wp, Wp, 0,
                      buf + dy_size + a_size, buf + dy_size + a_size + int64_t(cg) * K};
    int ghost_head = -1;  // the head whose ghosts s holds
    for (int64_t item = begin; item < end; ++item) {
      const int64_t bh = item / blocks;  // b * G + head
      const int head = int(bh % G);
      const int y0 = int(item % blocks) * kElsaRows;
      const int y1 = y0 + kElsaRows < H ? y0 + kElsaRows : H;
      const int r0 = y0 - pad > 0 ? y0 - pad : 0, r1 = y1 + pad < H ? y1 + pad : H;
      const int64_t c0 = bh / G * g.C + int64_t(head) * cg;  // the head's first (b, c) plane
      s.r0 = r0;
      pad_rows(dy + c0 * HW, HW, cg, W, H, r0, r1, pad, s.dy, s.rstride, Wp);
      pad_rows(a + bh * K * HW, HW, K, W, H, r0, r1, pad, s.a, Wp, s.astride);
      if (head != ghost_head) {
        if (HAS_M) block_ghosts(m + int64_t(head) * cg * K, cg, K, s.m);
        if (HAS_B) block_ghosts(bg + int64_t(head) * cg * K, cg, K, s.bg);
        ghost_head = head;
      }
      T* d = dv + c0 * HW;
      for (int y = y0; y < y1; ++y) {
        for (int j0 = 0; j0 < cg; j0 += kElsaChannels) {
          with_channel_block(cg - j0 < kElsaChannels ? cg - j0 : kElsaChannels, [&]<int NB>() {
            grad_v_row<T, HAS_M, HAS_B, NB>(g, s, y, j0, d);
          });
        }
      }
    }
    delete[] buf;
  });
}

template <typename T>
void elsa_grad_v(const ElsaGeometry& g, const T* dy, const T* a, const T* m, const T* bg,
                 T* dv) {
  with_ghosts(m, bg, [&]<bool HAS_M, bool HAS_B>() {
    grad_v_loop<T, HAS_M, HAS_B>(g, dy, a, m, bg, dv);
  });
}

// Backward, grad_attn and the ghost sums: per work item (sample, head, block of kElsaRows
// output rows) the head's value rows are copied once between zero columns and zero rows (the
// inputs outside the map), so a tap of a vector of outputs is one load at a fixed offset. Each
// pair of vectors of outputs sums a block of kElsaTaps taps over the head's channels in
// registers; the products dy * v_t of the pair also go to a vector of ghost sums per (channel,
// tap) in memory (two products per update), reduced to float64 per work item (a horizontal
// reduction per vector would cost more than the products).
constexpr int kElsaTaps = 4;  // k*k = 1 mod 4 for odd k: blocks of 4 taps and one single tap

template <typename T>
struct ElsaAttnRows {
  T* v;  // the head's value rows: channel c's row iy at v + (iy - r0) * rstride + c * Wp + pad
  const int64_t* off;  // tap t of output (y, x) at v + (y - r0) * rstride + x + off[t]
  int64_t rstride;
  int Wp, r0;
  const T* dy;  // the head's grad_out [cg, H, W]
  const T* a;   // the head's attention [k*k, H, W]
  const T* m;   // the head's mul ghosts [cg, k*k] (used for grad_attn only)
  T *sm, *sb;   // the ghost sums of channel c, tap t: Simd L lanes at (c * k*k + t) * L
};

// Outputs x .. x + NX * L of row y, taps t0 .. t0 + TB - 1.
template <typename T, typename V, int L, bool HAS_M, bool NEED_A, bool NEED_M, bool NEED_B,
          int TB, int NX>
static inline void grad_attn_block(const ElsaGeometry& g, const ElsaAttnRows<T>& s, int y,
                                   int x, int t0, T* __restrict__ da) {
  constexpr int LS = Simd<T, kVecBytes>::L;
  const int cg = g.cg(), K = g.k * g.k, Wp = s.Wp;
  const int64_t HW = g.plane(), o = int64_t(y) * g.W + x;
  V acc[TB][NX];
  for (int i = 0; i < TB; ++i)
    for (int n = 0; n < NX; ++n) acc[i][n] = V{};
  const T* vo = s.v + (y - s.r0) * s.rstride + x;
  const int64_t* off = s.off + t0;
  const T* ao = s.a + t0 * HW + o;
  for (int c = 0; c < cg; ++c) {
    V d[NX];
    for (int n = 0; n < NX; ++n) d[n] = vload<V>(s.dy + c * HW + o + n * L);
    const T* vc = vo + c * Wp;
    const T* mc = HAS_M ? s.m + c * K + t0 : nullptr;
    T* smc = NEED_M ? s.sm + (int64_t(c) * K + t0) * LS : nullptr;
    T* sbc = NEED_B ? s.sb + (int64_t(c) * K + t0) * LS : nullptr;
    for (int i = 0; i < TB; ++i) {
      V pr[NX];
      for (int n = 0; n < NX; ++n) pr[n] = vload<V>(vc + off[i] + n * L) * d[n];
      if (NEED_A) {
        for (int n = 0; n < NX; ++n) {
          if (HAS_M) acc[i][n] += pr[n] * vsplat<V>(mc[i]);
          else acc[i][n] += pr[n];
        }
      }
      if (NEED_B) {
        V sb = vload<V>(sbc + i * LS);
        for (int n = 0; n < NX; ++n) sb += pr[n];
        vstore(sbc + i * LS, sb);
      }
      if (NEED_M) {
        V sm = vload<V>(smc + i * LS);
        for (int n = 0; n < NX; ++n) sm += pr[n] * vload<V>(ao + i * HW + n * L);
        vstore(smc + i * LS, sm);
      }
    }
  }
  if (NEED_A)
    for (int i = 0; i < TB; ++i)
      for (int n = 0; n < NX; ++n) vstore(da + (t0 + i) * HW + o + n * L, acc[i][n]);
}

// Row y, taps t0 .. t0 + TB - 1: pairs of vectors, then one vector, then the columns past the
// last vector one by one (an overlapping vector would add its products to the ghost sums twice).
template <typename T, bool HAS_M, bool NEED_A, bool NEED_M, bool NEED_B, int TB>
static inline void grad_attn_taps(const ElsaGeometry& g, const ElsaAttnRows<T>& s, int y,
                                  int t0, T* da) {
  using V = typename Simd<T, kVecBytes>::V;
  constexpr int L = Simd<T, kVecBytes>::L;
  int x = 0;
  for (; x + 2 * L <= g.W; x += 2 * L)
    grad_attn_block<T, V, L, HAS_M, NEED_A, NEED_M, NEED_B, TB, 2>(g, s, y, x, t0, da);
  if (x + L <= g.W) {
    grad_attn_block<T, V, L, HAS_M, NEED_A, NEED_M, NEED_B, TB, 1>(g, s, y, x, t0, da);
    x += L;
  }
  for (; x < g.W; ++x)
    grad_attn_block<T, T, 1, HAS_M, NEED_A, NEED_M, NEED_B, TB, 1>(g, s, y, x, t0, da);
}

template <typename T, bool HAS_M, bool NEED_A, bool NEED_M, bool NEED_B>
static void grad_attn_loop(const ElsaGeometry& g, const T* dy, const T* v, const T* a,
                           const T* m, T* da, double* gm, double* gb) {
  constexpr int LS = Simd<T, kVecBytes>::L;
  const int H = g.H, W = g.W, C = g.C, G = g.G, cg = g.cg(), k = g.k, K = k * k;
  const int pad = k / 2 * g.dil, Wp = W + 2 * pad;
  const int64_t HW = g.plane();
  const int blocks = (H + kElsaRows - 1) / kElsaRows;
  const int64_t v_size = int64_t(kElsaRows + 2 * pad) * cg * Wp, sums = int64_t(cg) * K * LS;
  at::parallel_for(0, int64_t(g.B) * G * blocks, 1, [&](int64_t begin, int64_t end) {
    T* buf = new T[v_size + 2 * sums];
    int64_t* off = new int64_t[K];
    for (int ty = 0; ty < k; ++ty)
      for (int tx = 0; tx < k; ++tx)
        off[ty * k + tx] = int64_t((ty - k / 2) * g.dil) * cg * Wp + tx * g.dil;
    ElsaAttnRows<T> s{buf, off, int64_t(cg) * Wp, Wp, 0, nullptr, nullptr, nullptr,
                      buf + v_size, buf + v_size + sums};
    for (int64_t item = begin; item < end; ++item) {
      const int64_t bh = item / blocks, b = bh / G;  // bh = b * G + head
      const int head = int(bh % G), blk = int(item % blocks);
      const int y0 = blk * kElsaRows, y1 = y0 + kElsaRows < H ? y0 + kElsaRows : H;
      const int64_t c0 = b * C + int64_t(head) * cg;  // the head's first (b, c) plane
      s.r0 = y0 - pad;
      pad_rows(v + c0 * HW, HW, cg, W, H, y0 - pad, y1 + pad, pad, s.v, s.rstride, Wp);
      s.dy = dy + c0 * HW;
      s.a = a + bh * K * HW;
      s.m = HAS_M ? m + int64_t(head) * cg * K : nullptr;
      for (int64_t i = 0; i < 2 * sums; ++i) s.sm[i] = T(0);
      T* dah = NEED_A ? da + bh * K * HW : nullptr;
      for (int y = y0; y < y1; ++y) {
        int t0 = 0;
        for (; t0 + kElsaTaps <= K; t0 += kElsaTaps)
          grad_attn_taps<T, HAS_M, NEED_A, NEED_M, NEED_B, kElsaTaps>(g, s, y, t0, dah);
        for (; t0 < K; ++t0)
          grad_attn_taps<T, HAS_M, NEED_A, NEED_M, NEED_B, 1>(g, s, y, t0, dah);
      }
      const int64_t first = (b * blocks + blk) * C + int64_t(head) * cg;  // gm row of channel 0
      for (int64_t ct = 0; ct < int64_t(cg) * K; ++ct) {
        double sm = 0, sb = 0;
        for (int l = 0; l < LS; ++l) {
          sm += s.sm[ct * LS + l];
          sb += s.sb[ct * LS + l];
        }
        if (NEED_M) gm[first * K + ct] = sm;
        if (NEED_B) gb[first * K + ct] = sb;
      }
    }
    delete[] off;
    delete[] buf;
  });
}

template <typename T, bool HAS_M, bool NEED_A, bool NEED_M>
static void grad_attn_b(const ElsaGeometry& g, const T* dy, const T* v, const T* a, const T* m,
                        T* da, double* gm, double* gb) {
  if (gb) grad_attn_loop<T, HAS_M, NEED_A, NEED_M, true>(g, dy, v, a, m, da, gm, gb);
  else grad_attn_loop<T, HAS_M, NEED_A, NEED_M, false>(g, dy, v, a, m, da, gm, gb);
}

template <typename T, bool HAS_M, bool NEED_A>
static void grad_attn_m(const ElsaGeometry& g, const T* dy, const T* v, const T* a, const T* m,
                        T* da, double* gm, double* gb) {
  if (gm) grad_attn_b<T, HAS_M, NEED_A, true>(g, dy, v, a, m, da, gm, gb);
  else grad_attn_b<T, HAS_M, NEED_A, false>(g, dy, v, a, m, da, gm, gb);
}

// Picks the instantiation of grad_attn_loop for the gradients that are needed.
template <typename T>
void elsa_grad_attn(const ElsaGeometry& g, const T* dy, const T* v, const T* a, const T* m,
                    T* da, double* gm, double* gb) {
  if (!da) grad_attn_m<T, false, false>(g, dy, v, a, m, da, gm, gb);
  else if (m) grad_attn_m<T, true, true>(g, dy, v, a, m, da, gm, gb);
  else grad_attn_m<T, false, true>(g, dy, v, a, m, da, gm, gb);
}

template void elsa_forward<float>(const ElsaGeometry&, const float*, const float*, const float*,
                                  const float*, float*);
template void elsa_forward<double>(const ElsaGeometry&, const double*, const double*,
                                   const double*, const double*, double*);
template void elsa_grad_v<float>(const ElsaGeometry&, const float*, const float*, const float*,
                                 const float*, float*);
template void elsa_grad_v<double>(const ElsaGeometry&, const double*, const double*,
                                  const double*, const double*, double*);
template void elsa_grad_attn<float>(const ElsaGeometry&, const float*, const float*,
                                    const float*, const float*, float*, double*, double*);
template void elsa_grad_attn<double>(const ElsaGeometry&, const double*, const double*,
                                     const double*, const double*, double*, double*, double*);
