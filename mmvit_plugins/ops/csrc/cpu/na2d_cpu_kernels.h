// The loops of na2d_cpu.h, written once and compiled once per instruction set: a translation
// unit includes ATen/Parallel.h and na2d_cpu.h, then (for AVX2) switches the target, then
// includes this file inside `namespace mmvit { namespace cpu_<isa> {`. No include guard: each
// ISA unit includes it exactly once.
//
// Register blocking: a query's dot products with up to kDotBlock taps of one window row
// accumulate at once, reusing each loaded query chunk for all of them; the sums keep up to 4
// vectors of the output in registers over all k*k taps, so the output is written once instead
// of k*k times. Vectors are kVecBytes wide (simd.h); the d % lanes tail is scalar.

MMVIT_SIMD_HELPERS

// o[n] = <q, p + n * step> for n < N (+ the scalar tail of d). The N accumulators are reduced
// L at a time by transpose_sums (a tree of shuffled adds), not one horizontal sum each.
// VC > 0: d is VC whole vectors, known here, so the loop over d unrolls (d = 32 in most models).
template <typename T, int N, int VC>
MMVIT_INLINE void dot_block(const T* __restrict__ q, const T* __restrict__ p, int64_t step, int d,
                            T* __restrict__ o) {
  using V = typename Simd<T, kVecBytes>::V;
  constexpr int L = Simd<T, kVecBytes>::L;
  constexpr int NP = (N + L - 1) / L * L;  // padded with zero accumulators to whole groups
  const int vd = VC > 0 ? VC * L : d / L * L;
  V acc[NP];
  for (int n = 0; n < NP; ++n) acc[n] = V{};
  for (int c = 0; c < vd; c += L) {
    const V qv = vload<V>(q + c);
    for (int n = 0; n < N; ++n) acc[n] += qv * vload<V>(p + n * step + c);
  }
  for (int g = 0; g < NP; g += L) {
    const V sums = transpose_sums<T>(acc + g);
    for (int l = 0; l < L && g + l < N; ++l) {
      T s = sums[l];
      if (VC == 0)
        for (int c = vd; c < d; ++c) s += q[c] * p[(g + l) * step + c];
      o[g + l] = s;
    }
  }
}

// o[0 .. count) = <q, p + n * step>, in blocks of up to kDotBlock (kDotBlock and kVecBytes are
// set by the including unit: as many accumulators as fit in the registers beside the query).
template <typename T, int VC>
MMVIT_INLINE void dot_row(const T* q, const T* p, int64_t step, int count, int d, T* o) {
  while (count > 0) {
    const int n = count < kDotBlock ? count : kDotBlock;
    switch (n) {
      case 8: dot_block<T, 8, VC>(q, p, step, d, o); break;
      case 7: dot_block<T, 7, VC>(q, p, step, d, o); break;
      case 6: dot_block<T, 6, VC>(q, p, step, d, o); break;
      case 5: dot_block<T, 5, VC>(q, p, step, d, o); break;
      case 4: dot_block<T, 4, VC>(q, p, step, d, o); break;
      case 3: dot_block<T, 3, VC>(q, p, step, d, o); break;
      case 2: dot_block<T, 2, VC>(q, p, step, d, o); break;
      default: dot_block<T, 1, VC>(q, p, step, d, o); break;
    }
    p += n * step;
    o += n;
    count -= n;
  }
}

// fn.template operator()<VC>(): VC = d / L for d of 1, 2 or 4 whole vectors, else 0 (any d).
template <typename T, typename F>
static inline void with_vector_count(int d, const F& fn) {
  constexpr int L = Simd<T, kVecBytes>::L;
  if (d == 4 * L) fn.template operator()<4>();
  else if (d == 2 * L) fn.template operator()<2>();
  else if (d == L) fn.template operator()<1>();
  else fn.template operator()<0>();
}

// s[t] = <q, window tap t of p> (+ rpb[h] at the tap's relative offset), t < k * k: one query's
// logits, wy / wx its window.
template <typename T, int VC>
MMVIT_INLINE void window_logits(const NaGeometry& g, const T* q, const T* p, const T* rpb, int h,
                                const AxisWindow& wy, const AxisWindow& wx, int64_t tap_x,
                                int64_t tap_y, int d, T* s) {
  const int k = g.k, R = 2 * k - 1;
  for (int my = 0; my < k; ++my) dot_row<T, VC>(q, p + my * tap_y, tap_x, k, d, s + my * k);
  if (rpb) {
    const T* r = rpb + (int64_t(h) * R + wy.rpb_off) * R + wx.rpb_off;
    for (int my = 0; my < k; ++my)
      for (int mx = 0; mx < k; ++mx) s[my * k + mx] += r[my * R + mx];
  }
}

// fn(i, first, wy, wx) for every pixel of the image rows [begin, end) (row = b * H + y): i the
// query's pixel, first the pixel of its window's first tap, wy / wx its window on each axis.
template <typename F>
MMVIT_INLINE void for_each_query(const NaGeometry& g, int64_t begin, int64_t end, const F& fn) {
  for (int64_t row = begin; row < end; ++row) {
    const int bi = int(row / g.H), y = int(row % g.H);
    const AxisWindow wy = g.ty.win[y];
    for (int x = 0; x < g.W; ++x) {
      const AxisWindow wx = g.tx.win[x];
      fn(g.pixel(bi, y, x), g.pixel(bi, wy.start, wx.start), wy, wx);
    }
  }
}

template <typename T>
void na_dot(const NaGeometry& g, const T* a, const T* b, const T* rpb, T* out, int d) {
  const int K = g.k * g.k, heads = g.heads;
  const int64_t tap_x = int64_t(g.dil) * heads * d;      // between taps of a window row
  const int64_t tap_y = int64_t(g.W) * g.dil * heads * d;  // between window rows
  at::parallel_for(0, int64_t(g.B) * g.H, 1, [&](int64_t begin, int64_t end) {
    with_vector_count<T>(d, [&]<int VC>() {
      for_each_query(g, begin, end, [&](int64_t i, int64_t first, const AxisWindow& wy,
                                        const AxisWindow& wx) {
        for (int h = 0; h < heads; ++h)
          window_logits<T, VC>(g, a + (i * heads + h) * d, b + (first * heads + h) * d, rpb, h,
                               wy, wx, tap_x, tap_y, d, out + (i * heads + h) * K);
      });
    });
  });
}

// o[c0 .. c0 + NB * L) = sum over the k x k taps of w[t] * (tap t's row + c0).
template <typename T, int NB>
MMVIT_INLINE void sum_block(const T* __restrict__ w, const T* __restrict__ p0, int64_t tap_x,
                            int64_t tap_y, int k, int c0, T* __restrict__ o) {
  using V = typename Simd<T, kVecBytes>::V;
  constexpr int L = Simd<T, kVecBytes>::L;
  V acc[NB];
  for (int n = 0; n < NB; ++n) acc[n] = V{};
  for (int my = 0; my < k; ++my) {
    const T* pr = p0 + my * tap_y + c0;
    for (int mx = 0; mx < k; ++mx) {
      const V wv = vsplat<V>(w[my * k + mx]);
      const T* p = pr + mx * tap_x;
      for (int n = 0; n < NB; ++n) acc[n] += wv * vload<V>(p + n * L);
    }
  }
  for (int n = 0; n < NB; ++n) vstore(o + c0 + n * L, acc[n]);
}

// Calls block.template operator()<NB>(c0) over the whole vectors of a row of d values, in blocks
// of NB <= 4 vectors starting at value c0; returns where the scalar tail starts.
template <typename T, typename F>
MMVIT_INLINE int for_vector_blocks(int d, const F& block) {
  constexpr int L = Simd<T, kVecBytes>::L;
  int c0 = 0;
  for (int left = d / L; left > 0;) {
    const int nb = left < 4 ? left : 4;
    switch (nb) {
      case 4: block.template operator()<4>(c0); break;
      case 3: block.template operator()<3>(c0); break;
      case 2: block.template operator()<2>(c0); break;
      default: block.template operator()<1>(c0); break;
    }
    c0 += nb * L;
    left -= nb;
  }
  return c0;
}

// o[0 .. d) = sum_t w[t] * (p0 + my * tap_y + mx * tap_x)[0 .. d), in register blocks.
template <typename T>
MMVIT_INLINE void weighted_sum(const T* w, const T* p0, int64_t tap_x, int64_t tap_y, int k,
                               int d, T* o) {
  const int c0 = for_vector_blocks<T>(d, [&]<int NB>(int c) {
    sum_block<T, NB>(w, p0, tap_x, tap_y, k, c, o);
  });
  for (int c = c0; c < d; ++c) {
    T s = 0;
    for (int my = 0; my < k; ++my)
      for (int mx = 0; mx < k; ++mx) s += w[my * k + mx] * p0[my * tap_y + mx * tap_x + c];
    o[c] = s;
  }
}

template <typename T>
void na_sum(const NaGeometry& g, const T* w, const T* b, T* out, int d) {
  const int k = g.k, K = k * k, heads = g.heads;
  const int64_t tap_x = int64_t(g.dil) * heads * d;
  const int64_t tap_y = int64_t(g.W) * g.dil * heads * d;
  at::parallel_for(0, int64_t(g.B) * g.H, 1, [&](int64_t begin, int64_t end) {
    for_each_query(g, begin, end, [&](int64_t i, int64_t first, const AxisWindow&,
                                      const AxisWindow&) {
      for (int h = 0; h < heads; ++h)
        weighted_sum<T>(w + (i * heads + h) * K, b + (first * heads + h) * d, tap_x, tap_y, k, d,
                        out + (i * heads + h) * d);
    });
  });
}

// o[c0 .. c0 + NB * L) = sum over the n pairs (query offset qo[e], tap t[e]) of
// w[qo[e] * K + t[e]] * a[qo[e] * d + c0 ..], the query offsets in (pixel * heads) units.
template <typename T, int NB>
MMVIT_INLINE void gather_block(const T* __restrict__ w, const T* __restrict__ a,
                               const int64_t* __restrict__ qo, const int* __restrict__ tp, int n,
                               int K, int d, int c0, T* __restrict__ o) {
  using V = typename Simd<T, kVecBytes>::V;
  constexpr int L = Simd<T, kVecBytes>::L;
  V acc[NB];
  for (int m = 0; m < NB; ++m) acc[m] = V{};
  for (int e = 0; e < n; ++e) {
    const V wv = vsplat<V>(w[qo[e] * K + tp[e]]);
    const T* p = a + qo[e] * d + c0;
    for (int m = 0; m < NB; ++m) acc[m] += wv * vload<V>(p + m * L);
  }
  for (int m = 0; m < NB; ++m) vstore(o + c0 + m * L, acc[m]);
}

template <typename T>
void na_inverse_sum(const NaGeometry& g, const T* w, const T* a, T* out, int d) {
  const int k = g.k, K = k * k, heads = g.heads;
  at::parallel_for(0, int64_t(g.B) * g.H, 1, [&](int64_t begin, int64_t end) {
    // The (query, tap) pairs of one key, query offsets in (pixel * heads) units: at most
    // (2k - 1)^2 of them (k^2 away from the borders).
    // (new[], not std::vector: no std template is instantiated in an ISA build)
    const int most = (2 * k - 1) * (2 * k - 1);
    int64_t* qo = new int64_t[most];
    int* tp = new int[most];
    for (int64_t row = begin; row < end; ++row) {
      const int bi = int(row / g.H), ky = int(row % g.H);
      for (int kx = 0; kx < g.W; ++kx) {
        int n = 0;
        for (int ey = g.ty.inv_begin[ky]; ey < g.ty.inv_begin[ky + 1]; ++ey) {
          const int qy = g.ty.inv[ey].first, my = g.ty.inv[ey].second;
          for (int ex = g.tx.inv_begin[kx]; ex < g.tx.inv_begin[kx + 1]; ++ex) {
            qo[n] = g.pixel(bi, qy, g.tx.inv[ex].first) * heads;
            tp[n++] = my * k + g.tx.inv[ex].second;
          }
        }
        const int64_t j = g.pixel(bi, ky, kx);
        for (int h = 0; h < heads; ++h) {
          const T* wh = w + int64_t(h) * K;  // + qo[e] * K: query qo[e] / heads, head h
          const T* ah = a + int64_t(h) * d;
          T* o = out + (j * heads + h) * d;
          const int c0 = for_vector_blocks<T>(d, [&]<int NB>(int c) {
            gather_block<T, NB>(wh, ah, qo, tp, n, K, d, c, o);
          });
          for (int c = c0; c < d; ++c) {
            T s = 0;
            for (int e = 0; e < n; ++e) s += wh[qo[e] * K + tp[e]] * ah[qo[e] * d + c];
            o[c] = s;
          }
        }
      }
    }
    delete[] qo;
    delete[] tp;
  });
}

// s[0 .. n) = exp(s[t] - m), every s[t] <= m (softmax's shift), n a multiple of L: float in
// vectors (Cephes' expf: a degree-7 polynomial on r = x - n ln2, |r| <= ln2 / 2, times 2^n;
// about 1 ulp; e^x under FLT_MIN, -inf included, gives 0); double with the C library's exp,
// lane by lane, so that the float64 tests compare against correctly rounded values.
static inline void exp_shifted(float* s, int n, float m) {
  using V = typename Simd<float, kVecBytes>::V;
  using I = typename SimdIndex<float, kVecBytes>::I;
  constexpr int L = Simd<float, kVecBytes>::L;
  const V lo = vsplat<V>(-87.33654f), round = vsplat<V>(12582912.f);  // 1.5 * 2^23
  for (int t = 0; t < n; t += L) {
    V x = vload<V>(s + t) - vsplat<V>(m);
    const I under = x < lo;
    x = under ? lo : x;
    const V e = (x * vsplat<V>(1.44269504088896341f) + round) - round;  // round(x / ln2)
    const V r = (x - e * vsplat<V>(0.693359375f)) - e * vsplat<V>(-2.12194440e-4f);
    V p = vsplat<V>(1.9875691500e-4f);
    p = p * r + vsplat<V>(1.3981999507e-3f);
    p = p * r + vsplat<V>(8.3334519073e-3f);
    p = p * r + vsplat<V>(4.1665795894e-2f);
    p = p * r + vsplat<V>(1.6666665459e-1f);
    p = p * r + vsplat<V>(5.0000001201e-1f);
    p = p * (r * r) + r + vsplat<V>(1.f);
    const I bits = (__builtin_convertvector(e, I) + 127) << 23;  // 2^e, e >= -126
    V two_e;
    std::memcpy(&two_e, &bits, sizeof(V));
    vstore(s + t, under ? V{} : p * two_e);
  }
}

static inline void exp_shifted(double* s, int n, double m) {
  for (int t = 0; t < n; ++t) s[t] = __builtin_exp(s[t] - m);
}

static inline float log_of(float x) { return __builtin_logf(x); }
static inline double log_of(double x) { return __builtin_log(x); }

// Logits s[0 .. K) -> softmax weights in place; returns their log-sum-exp. s holds n = K
// rounded up to whole vectors; the lanes past K are set to -inf first, so they take no part
// and end as zero weights.
template <typename T>
static inline T softmax_in_place(T* s, int K, int n) {
  using V = typename Simd<T, kVecBytes>::V;
  constexpr int L = Simd<T, kVecBytes>::L;
  for (int t = K; t < n; ++t) s[t] = -__builtin_inf();
  V mv = vload<V>(s);
  for (int t = L; t < n; t += L) {
    const V x = vload<V>(s + t);
    mv = x > mv ? x : mv;
  }
  T m = mv[0];
  for (int l = 1; l < L; ++l) m = mv[l] > m ? mv[l] : m;
  exp_shifted(s, n, m);
  V sv = V{};
  for (int t = 0; t < n; t += L) sv += vload<V>(s + t);
  T sum = 0;
  for (int l = 0; l < L; ++l) sum += sv[l];
  const V inv = vsplat<V>(T(1) / sum);
  for (int t = 0; t < n; t += L) vstore(s + t, vload<V>(s + t) * inv);
  return m + log_of(sum);
}

template <typename T>
void na_attend(const NaGeometry& g, const T* q, const T* k, const T* v, const T* rpb, T scale,
               T* out, T* lse, int d) {
  constexpr int L = Simd<T, kVecBytes>::L;
  const int kk = g.k, K = kk * kk, KP = (K + L - 1) / L * L, heads = g.heads;
  const int64_t tap_x = int64_t(g.dil) * heads * d;
  const int64_t tap_y = int64_t(g.W) * g.dil * heads * d;
  at::parallel_for(0, int64_t(g.B) * g.H, 1, [&](int64_t begin, int64_t end) {
    T* s = new T[KP + d];  // one query's logits, then its weights; its scaled query
    T* qs = s + KP;
    with_vector_count<T>(d, [&]<int VC>() {
      for_each_query(g, begin, end, [&](int64_t i, int64_t first, const AxisWindow& wy,
                                        const AxisWindow& wx) {
        for (int h = 0; h < heads; ++h) {
          const int64_t ih = i * heads + h, fh = first * heads + h;
          for (int c = 0; c < d; ++c) qs[c] = q[ih * d + c] * scale;  // as q * scale before qk
          window_logits<T, VC>(g, qs, k + fh * d, rpb, h, wy, wx, tap_x, tap_y, d, s);
          const T l = softmax_in_place(s, K, KP);
          if (lse) lse[ih] = l;
          weighted_sum<T>(s, v + fh * d, tap_x, tap_y, kk, d, out + ih * d);
        }
      });
    });
    delete[] s;
  });
}

template void na_dot<float>(const NaGeometry&, const float*, const float*, const float*, float*,
                            int);
template void na_dot<double>(const NaGeometry&, const double*, const double*, const double*,
                             double*, int);
template void na_sum<float>(const NaGeometry&, const float*, const float*, float*, int);
template void na_sum<double>(const NaGeometry&, const double*, const double*, double*, int);
template void na_inverse_sum<float>(const NaGeometry&, const float*, const float*, float*, int);
template void na_inverse_sum<double>(const NaGeometry&, const double*, const double*, double*,
                                     int);
template void na_attend<float>(const NaGeometry&, const float*, const float*, const float*,
                               const float*, float, float*, float*, int);
template void na_attend<double>(const NaGeometry&, const double*, const double*, const double*,
                                const double*, double, double*, double*, int);
