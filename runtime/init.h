/* runtime/init.h - parameter initializers shared by the interpreter and
 * every compiled trainer.
 *
 * A tensor's initial values depend only on (kind, a, b, shape, seed, name):
 * each tensor draws from its own named stream, rt_rng_seed_stream(seed, name),
 * in row-major element order, so the interpreter and all backends start from
 * bit-identical parameters and a parameter's values do not change when other
 * parameters are added or reordered.
 */
#ifndef NNRT_INIT_H
#define NNRT_INIT_H

#include <stdint.h>

/* ORDER InitKind: same members in the same order as InitKind in ir/ir.h
 * (test/unit/test_rt_rng.c asserts it at compile time). */
typedef enum {
  RT_INIT_NONE,           /* leave out[] untouched */
  RT_INIT_ZEROS,
  RT_INIT_ONES,
  RT_INIT_FULL,           /* a */
  RT_INIT_UNIFORM,        /* uniform in [a, b) */
  RT_INIT_NORMAL,         /* mean 0, standard deviation a */
  RT_INIT_GLOROT_UNIFORM, /* uniform in [-l, l), l = sqrt(6 / (fan_in + fan_out)) */
  RT_INIT_HE_NORMAL,      /* normal, std sqrt(2 / fan_in) */
} RtInitKind;

/* Fan-in and fan-out of a parameter of this shape:
 *   rank 0: 1, 1;  rank 1 [n]: n, n;  rank 2 [in, out]: in, out;
 *   rank >= 3 [..., cin, cout]: rf*cin, rf*cout, rf = product of leading dims. */
void rt_init_fans(const int64_t *dims, int rank, double *fan_in, double *fan_out);

/* Fills out[0 .. product(dims)) for a tensor named `name` (NULL = "").
 * Unknown kinds and negative dims write nothing. */
void rt_init_tensor(RtInitKind kind, double a, double b, const int64_t *dims, int rank,
                    uint64_t seed, const char *name, float *out);

/* A parameter's or state's buffer b of a model (model.h) from its
 * initializer: rt_init_tensor on its kind, shape and name, i32 states as
 * integers (their bits in out[]).  Trainers and inference libraries both
 * call it, so both start a tensor from the same bits. */
struct RtBufDesc;
void rt_init_buffer(const struct RtBufDesc *b, uint64_t seed, float *out);

#endif
