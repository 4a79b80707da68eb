/* runtime/rng.h - the deterministic random number generator of libnnrt.
 *
 * One generator for parameter initialization and shuffling, giving
 * the same integer stream on every platform: xoshiro256** (Blackman and
 * Vigna), its 256-bit state filled from a 64-bit seed by splitmix64.  Named
 * streams (one per parameter, "h.w") hash the name with FNV-1a 64 and mix it
 * into the seed, so a tensor's values depend only on (seed, name) and not on
 * the order in which tensors are initialized.
 *
 * The integer stream and rt_rng_uniform are exact everywhere.  rt_rng_normal
 * goes through libm's log, sqrt and cos; callers store its results as float,
 * so a last-ulp difference between two libms practically never shows.
 */
#ifndef NNRT_RNG_H
#define NNRT_RNG_H

#include <stdint.h>

typedef struct RtRng {
  uint64_t s[4]; /* xoshiro256** state; never all zero */
} RtRng;

/* Seeds r from one 64-bit value (splitmix64 fills the four words). */
void rt_rng_seed(RtRng *r, uint64_t seed);
/* An independent stream per name: seed mixed with FNV-1a 64 of name
 * (NULL is the empty name). */
void rt_rng_seed_stream(RtRng *r, uint64_t seed, const char *name);
/* An independent stream per 64-bit id (an epoch): used for shuffling. */
void rt_rng_seed_id(RtRng *r, uint64_t seed, uint64_t id);

/* The run's random key, the `seed` op's value (run-time scalar $seed):
 * 16 bits of the mixed seed, exact in f32.  Dropout keys Philox with it
 * and a per-layer number in the high 16 bits (docs/language.md). */
uint32_t rt_rng_key16(uint64_t seed);

uint64_t rt_rng_next(RtRng *r);            /* 64 uniform bits */
double rt_rng_uniform(RtRng *r);           /* [0, 1), the top 53 bits */
double rt_rng_normal(RtRng *r);            /* N(0, 1), Box-Muller, no cached pair */
uint64_t rt_rng_below(RtRng *r, uint64_t n); /* unbiased in [0, n); 0 when n == 0 */

/* order[0..n) = the permutation of 0..n-1 for this epoch: Fisher-Yates on
 * the stream rt_rng_seed_id(seed, epoch), so any epoch's order can be
 * regenerated when resuming.  n <= 0 writes nothing. */
void rt_shuffle_order(uint64_t seed, uint64_t epoch, int64_t n, int64_t *order);

#endif
