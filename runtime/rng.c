/* runtime/rng.c - xoshiro256** seeded by splitmix64; see rng.h.
 *
 * Reference: https://prng.di.unimi.it/ (xoshiro256starstar.c, splitmix64.c).
 * Everything here is integer arithmetic on uint64_t, so streams are the same
 * on every platform and compiler; only rt_rng_normal calls libm.
 */
#include "rng.h"

#include <math.h>

/* splitmix64: advances *x and returns the next output. */
static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

/* The splitmix64 finalizer alone: a bijective 64-bit mix. */
static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static uint64_t fnv1a64(const char *s) {
  uint64_t h = UINT64_C(0xCBF29CE484222325);
  for (; s && *s; s++) {
    h ^= (unsigned char)*s;
    h *= UINT64_C(0x100000001B3);
  }
  return h;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void rt_rng_seed(RtRng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
  /* splitmix64 is a bijection of its counter, so four consecutive outputs
   * are never all zero; keep the guard anyway, it costs nothing. */
  if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0) r->s[0] = 1;
}

void rt_rng_seed_stream(RtRng *r, uint64_t seed, const char *name) {
  rt_rng_seed(r, seed ^ mix64(fnv1a64(name) + UINT64_C(0x6A09E667F3BCC909)));
}

void rt_rng_seed_id(RtRng *r, uint64_t seed, uint64_t id) {
  /* A different constant than for names, so id k and some name never
   * collide by construction. */
  rt_rng_seed(r, seed ^ mix64(id + UINT64_C(0xBB67AE8584CAA73B)));
}

uint32_t rt_rng_key16(uint64_t seed) { return (uint32_t)(mix64(seed + UINT64_C(0x3C6EF372FE94F82B)) >> 48); }

uint64_t rt_rng_next(RtRng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double rt_rng_uniform(RtRng *r) {
  return (double)(rt_rng_next(r) >> 11) * 0x1.0p-53;
}

double rt_rng_normal(RtRng *r) {
  /* u1 in (0, 1] so log(u1) is finite; two draws per sample, no cache. */
  double u1 = 1.0 - rt_rng_uniform(r);
  double u2 = rt_rng_uniform(r);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

uint64_t rt_rng_below(RtRng *r, uint64_t n) {
  if (n == 0) return 0;
  /* Rejection: accept x >= 2^64 mod n, so the accepted range is a whole
   * number of copies of [0, n).  Expected draws < 2. */
  uint64_t threshold = (0 - n) % n;
  for (;;) {
    uint64_t x = rt_rng_next(r);
    if (x >= threshold) return x % n;
  }
}

void rt_shuffle_order(uint64_t seed, uint64_t epoch, int64_t n, int64_t *order) {
  if (n <= 0) return;
  for (int64_t i = 0; i < n; i++) order[i] = i;
  RtRng r;
  rt_rng_seed_id(&r, seed, epoch);
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)rt_rng_below(&r, (uint64_t)i + 1);
    int64_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}
