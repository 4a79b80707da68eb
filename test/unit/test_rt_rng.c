/* test/unit/test_rt_rng.c - the runtime RNG (runtime/rng.c) and the
 * parameter initializers (runtime/init.c).
 *
 * Known values come from an independent Python model of splitmix64,
 * FNV-1a and xoshiro256** (and the published test vector for state
 * {1,2,3,4}); the rest are statistical properties with loose tolerances and determinism
 * checks.  Prints one line per failed check; exits 1 if any failed.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h" /* only for the enum below: this test links nnrt alone */
#include "runtime/init.h"
#include "runtime/rng.h"

#include "check.h"

/* ORDER InitKind: the runtime's copy of the enum must match the IR's. */
_Static_assert((int)RT_INIT_NONE == (int)INIT_NONE, "ORDER InitKind");
_Static_assert((int)RT_INIT_ZEROS == (int)INIT_ZEROS, "ORDER InitKind");
_Static_assert((int)RT_INIT_ONES == (int)INIT_ONES, "ORDER InitKind");
_Static_assert((int)RT_INIT_FULL == (int)INIT_FULL, "ORDER InitKind");
_Static_assert((int)RT_INIT_UNIFORM == (int)INIT_UNIFORM, "ORDER InitKind");
_Static_assert((int)RT_INIT_NORMAL == (int)INIT_NORMAL, "ORDER InitKind");
_Static_assert((int)RT_INIT_GLOROT_UNIFORM == (int)INIT_GLOROT_UNIFORM, "ORDER InitKind");
_Static_assert((int)RT_INIT_HE_NORMAL == (int)INIT_HE_NORMAL, "ORDER InitKind");

static void test_known_values(void) {
  RtRng r = {{1, 2, 3, 4}}; /* the reference implementation's test vector */
  uint64_t want[4] = {11520, 0, 1509978240, UINT64_C(1215971899390074240)};
  for (int i = 0; i < 4; i++) {
    uint64_t v = rt_rng_next(&r);
    CHECK(v == want[i], "output %d of state {1,2,3,4}: %" PRIu64, i, v);
  }
  rt_rng_seed(&r, 0); /* splitmix64(0) starts with 0xe220a8397b1dcdaf */
  CHECK(r.s[0] == UINT64_C(0xe220a8397b1dcdaf), "s[0] = %" PRIx64, r.s[0]);
  CHECK(r.s[3] == UINT64_C(0xf88bb8a8724c81ec), "s[3] = %" PRIx64, r.s[3]);
  uint64_t want0[3] = {UINT64_C(0x99ec5f36cb75f2b4), UINT64_C(0xbf6e1f784956452a),
                       UINT64_C(0x1a5f849d4933e6e0)};
  for (int i = 0; i < 3; i++) {
    uint64_t v = rt_rng_next(&r);
    CHECK(v == want0[i], "seed 0, output %d: %" PRIx64, i, v);
  }
  /* Derived streams, checked against the same Python model: a change here
   * changes every initial parameter and shuffle order. */
  rt_rng_seed_stream(&r, 1, "h.w");
  uint64_t a = rt_rng_next(&r);
  CHECK(a == UINT64_C(0x5b0c12b57098f71f), "stream (1, h.w): %" PRIx64, a);
  rt_rng_seed_id(&r, 1, 0);
  a = rt_rng_next(&r);
  CHECK(a == UINT64_C(0x04e7f80021e89676), "stream (1, id 0): %" PRIx64, a);
  int64_t order[8];
  rt_shuffle_order(1, 0, 8, order);
  int64_t want_order[8] = {2, 3, 0, 4, 1, 7, 5, 6};
  CHECK(memcmp(order, want_order, sizeof order) == 0, "shuffle (1, 0, 8) starts with %" PRId64 " %" PRId64,
        order[0], order[1]);
}

static void test_uniform_normal(void) {
  RtRng r;
  rt_rng_seed(&r, 42);
  double sum = 0, lo = 1, hi = 0;
  int n = 1000000;
  for (int i = 0; i < n; i++) {
    double u = rt_rng_uniform(&r);
    if (u < lo) lo = u;
    if (u > hi) hi = u;
    sum += u;
  }
  CHECK(lo >= 0 && hi < 1, "uniform range [%g, %g]", lo, hi);
  CHECK(fabs(sum / n - 0.5) < 0.002, "uniform mean %g", sum / n);
  CHECK(lo < 1e-4 && hi > 1 - 1e-4, "uniform covers [0,1): [%g, %g]", lo, hi);

  double s1 = 0, s2 = 0;
  n = 100000;
  int finite = 0;
  for (int i = 0; i < n; i++) {
    double v = rt_rng_normal(&r);
    finite += isfinite(v) != 0;
    s1 += v;
    s2 += v * v;
  }
  CHECK(finite == n, "%d of %d normal samples are not finite", n - finite, n);
  double mean = s1 / n, sd = sqrt(s2 / n - mean * mean);
  CHECK(fabs(mean) < 0.02, "normal mean %g", mean);
  CHECK(fabs(sd - 1) < 0.02, "normal std %g", sd);
}

static void test_below(void) {
  RtRng r;
  rt_rng_seed(&r, 7);
  int counts[3] = {0};
  int n = 300000;
  for (int i = 0; i < n; i++) {
    uint64_t v = rt_rng_below(&r, 3);
    counts[v < 3 ? v : 0] += v < 3;
  }
  CHECK(counts[0] + counts[1] + counts[2] == n, "below(3) gave values >= 3");
  for (int k = 0; k < 3; k++)
    CHECK(abs(counts[k] - n / 3) < n / 100, "below(3): value %d drawn %d times of %d", k, counts[k], n);
  CHECK(rt_rng_below(&r, 1) == 0, "below(1)");
  CHECK(rt_rng_below(&r, 0) == 0, "below(0)");
  /* n = 2/3 of 2^64: a plain x % n would put 2/3 of the draws below n/2;
   * an unbiased method puts half of them there. */
  uint64_t big = UINT64_C(0xAAAAAAAAAAAAAAAA), low = 0, max = 0;
  for (int i = 0; i < 4000; i++) {
    uint64_t v = rt_rng_below(&r, big);
    max = v > max ? v : max;
    low += v < big / 2;
  }
  CHECK(max < big, "below(2^64*2/3) gave %" PRIu64, max);
  CHECK(low > 1850 && low < 2150, "below(2^64*2/3): %" PRIu64 " of 4000 below n/2 (2000 expected)", low);
}

static bool is_perm(const int64_t *o, int64_t n) {
  char *seen = calloc((size_t)n + 1, 1);
  bool ok = true;
  for (int64_t i = 0; i < n; i++) {
    if (o[i] < 0 || o[i] >= n || seen[o[i]]) ok = false;
    else seen[o[i]] = 1;
  }
  free(seen);
  return ok;
}

static void test_shuffle(void) {
  enum { N = 1000 };
  static int64_t a[N], b[N], c[N], d[N];
  rt_shuffle_order(5, 3, N, a);
  rt_shuffle_order(5, 3, N, b);
  rt_shuffle_order(5, 4, N, c);
  rt_shuffle_order(6, 3, N, d);
  CHECK(is_perm(a, N), "shuffle is a permutation");
  CHECK(is_perm(c, N), "shuffle (epoch 4) is a permutation");
  CHECK(memcmp(a, b, sizeof a) == 0, "same (seed, epoch) gives the same order");
  CHECK(memcmp(a, c, sizeof a) != 0, "another epoch gives another order");
  CHECK(memcmp(a, d, sizeof a) != 0, "another seed gives another order");
  int fixed = 0;
  for (int i = 0; i < N; i++) fixed += a[i] == i;
  CHECK(fixed < 10, "shuffle left %d of %d in place", fixed, N);
  int64_t one = 99;
  rt_shuffle_order(1, 1, 1, &one);
  CHECK(one == 0, "n = 1 gives [0], got %" PRId64, one);
  rt_shuffle_order(1, 1, 0, NULL); /* writes nothing */
  /* Every position is equally likely to receive element 0. */
  int pos[4] = {0};
  for (uint64_t e = 0; e < 40000; e++) {
    int64_t o[4];
    rt_shuffle_order(9, e, 4, o);
    for (int i = 0; i < 4; i++)
      if (o[i] == 0) pos[i]++;
  }
  for (int i = 0; i < 4; i++) CHECK(abs(pos[i] - 10000) < 400, "element 0 at position %d %d times", i, pos[i]);
}

static void test_streams(void) {
  RtRng a, b, c, d;
  rt_rng_seed_stream(&a, 1, "h.w");
  rt_rng_seed_stream(&b, 1, "h.w");
  rt_rng_seed_stream(&c, 1, "h.b");
  rt_rng_seed_stream(&d, 2, "h.w");
  uint64_t va = rt_rng_next(&a), vb = rt_rng_next(&b), vc = rt_rng_next(&c), vd = rt_rng_next(&d);
  CHECK(va == vb, "same (seed, name) gives the same stream");
  CHECK(va != vc, "another name gives another stream");
  CHECK(va != vd, "another seed gives another stream");
  rt_rng_seed_stream(&a, 1, NULL);
  rt_rng_seed_stream(&b, 1, "");
  CHECK(rt_rng_next(&a) == rt_rng_next(&b), "NULL name is the empty name");
}

static double std_of(const float *v, int64_t n, double *mean_out) {
  double s1 = 0, s2 = 0;
  for (int64_t i = 0; i < n; i++) s1 += v[i], s2 += (double)v[i] * v[i];
  double mean = s1 / (double)n;
  if (mean_out) *mean_out = mean;
  return sqrt(s2 / (double)n - mean * mean);
}

static void test_init(void) {
  enum { IN = 256, OUT = 128, N = IN * OUT };
  static float w[N], w2[N], w3[N];
  int64_t dims[2] = {IN, OUT};

  rt_init_tensor(RT_INIT_GLOROT_UNIFORM, 0, 0, dims, 2, 1, "h.w", w);
  double l = sqrt(6.0 / (IN + OUT)), lo = 1, hi = -1, mean;
  for (int i = 0; i < N; i++) lo = fmin(lo, w[i]), hi = fmax(hi, w[i]);
  CHECK(lo >= -(float)l && hi <= (float)l, "glorot range [%g, %g], limit %g", lo, hi, l);
  CHECK(lo < -0.99 * l && hi > 0.99 * l, "glorot fills its range: [%g, %g], limit %g", lo, hi, l);
  double sd = std_of(w, N, &mean);
  CHECK(fabs(sd - l / sqrt(3)) < 0.02 * l, "glorot std %g, expected %g", sd, l / sqrt(3));
  /* The same Python model gives these first two values. */
  CHECK(w[0] == -0x1.279f6ap-5f && w[1] == -0x1.2f43aap-4f, "glorot (1, h.w) starts %a %a", w[0], w[1]);

  rt_init_tensor(RT_INIT_GLOROT_UNIFORM, 0, 0, dims, 2, 1, "h.w", w2);
  CHECK(memcmp(w, w2, sizeof w) == 0, "same seed and name give the same values");
  rt_init_tensor(RT_INIT_GLOROT_UNIFORM, 0, 0, dims, 2, 1, "o.w", w3);
  CHECK(memcmp(w, w3, sizeof w) != 0, "another name gives other values");
  rt_init_tensor(RT_INIT_GLOROT_UNIFORM, 0, 0, dims, 2, 2, "h.w", w3);
  CHECK(memcmp(w, w3, sizeof w) != 0, "another seed gives other values");

  rt_init_tensor(RT_INIT_HE_NORMAL, 0, 0, dims, 2, 3, "h.w", w);
  sd = std_of(w, N, &mean);
  CHECK(fabs(sd - sqrt(2.0 / IN)) < 0.02 * sqrt(2.0 / IN), "he_normal std %g, expected %g", sd, sqrt(2.0 / IN));
  CHECK(fabs(mean) < 0.02 * sqrt(2.0 / IN) * 3, "he_normal mean %g", mean);

  rt_init_tensor(RT_INIT_NORMAL, 0.5, 0, dims, 2, 3, "n", w);
  sd = std_of(w, N, &mean);
  CHECK(fabs(sd - 0.5) < 0.01, "normal(0.5) std %g", sd);

  rt_init_tensor(RT_INIT_UNIFORM, -2, 3, dims, 2, 3, "u", w);
  lo = 1e9, hi = -1e9;
  for (int i = 0; i < N; i++) lo = fmin(lo, w[i]), hi = fmax(hi, w[i]);
  CHECK(lo >= -2 && hi < 3 && lo < -1.99 && hi > 2.99, "uniform(-2, 3) range [%g, %g]", lo, hi);

  int64_t d1[1] = {5};
  float v[5] = {9, 9, 9, 9, 9};
  rt_init_tensor(RT_INIT_ZEROS, 0, 0, d1, 1, 1, "b", v);
  CHECK(v[0] == 0 && v[4] == 0, "zeros");
  rt_init_tensor(RT_INIT_ONES, 0, 0, d1, 1, 1, "b", v);
  CHECK(v[0] == 1 && v[4] == 1, "ones");
  rt_init_tensor(RT_INIT_FULL, 0.25, 0, d1, 1, 1, "b", v);
  CHECK(v[0] == 0.25f && v[4] == 0.25f, "full");
  rt_init_tensor(RT_INIT_NONE, 0, 0, d1, 1, 1, "b", v);
  CHECK(v[0] == 0.25f, "none leaves values alone");
  float s = 7;
  rt_init_tensor(RT_INIT_ONES, 0, 0, NULL, 0, 1, "s", &s);
  CHECK(s == 1, "rank 0 is one element");

  double fi, fo;
  int64_t conv[4] = {3, 3, 16, 32};
  rt_init_fans(conv, 4, &fi, &fo);
  CHECK(fi == 144 && fo == 288, "fans of [3,3,16,32]: %g, %g", fi, fo);
  rt_init_fans(d1, 1, &fi, &fo);
  CHECK(fi == 5 && fo == 5, "fans of [5]: %g, %g", fi, fo);
  rt_init_fans(NULL, 0, &fi, &fo);
  CHECK(fi == 1 && fo == 1, "fans of a scalar: %g, %g", fi, fo);
  rt_init_fans(dims, 2, &fi, &fo);
  CHECK(fi == IN && fo == OUT, "fans of [%d,%d]: %g, %g", IN, OUT, fi, fo);
}

int main(void) {
  test_known_values();
  test_uniform_normal();
  test_below();
  test_shuffle();
  test_streams();
  test_init();
  return check_done();
}
