/* runtime/init.c - parameter initializers (zeros ... he_normal); see init.h.
 *
 * Values are computed in double from the tensor's named RNG stream and
 * rounded to float once, element by element in row-major order.
 */
#include "init.h"

#include <math.h>
#include <string.h>

#include "model.h"
#include "rng.h"

void rt_init_fans(const int64_t *dims, int rank, double *fan_in, double *fan_out) {
  if (rank <= 0) {
    *fan_in = *fan_out = 1;
  } else if (rank == 1) {
    *fan_in = *fan_out = (double)dims[0];
  } else {
    double rf = 1;
    for (int i = 0; i < rank - 2; i++) rf *= (double)dims[i];
    *fan_in = rf * (double)dims[rank - 2];
    *fan_out = rf * (double)dims[rank - 1];
  }
}

void rt_init_tensor(RtInitKind kind, double a, double b, const int64_t *dims, int rank,
                    uint64_t seed, const char *name, float *out) {
  int64_t n = 1;
  for (int i = 0; i < rank; i++) {
    if (dims[i] < 0) return;
    n *= dims[i];
  }
  double fan_in, fan_out;
  rt_init_fans(dims, rank, &fan_in, &fan_out);
  RtRng r;
  rt_rng_seed_stream(&r, seed, name);

  switch (kind) {
  case RT_INIT_NONE:
    return;
  case RT_INIT_ZEROS:
  case RT_INIT_ONES:
  case RT_INIT_FULL: {
    float v = kind == RT_INIT_ZEROS ? 0.0f : kind == RT_INIT_ONES ? 1.0f : (float)a;
    for (int64_t i = 0; i < n; i++) out[i] = v;
    return;
  }
  case RT_INIT_UNIFORM:
    for (int64_t i = 0; i < n; i++) out[i] = (float)(a + (b - a) * rt_rng_uniform(&r));
    return;
  case RT_INIT_GLOROT_UNIFORM: {
    double sum = fan_in + fan_out;
    double l = sum > 0 ? sqrt(6.0 / sum) : 0.0;
    for (int64_t i = 0; i < n; i++) out[i] = (float)(-l + 2.0 * l * rt_rng_uniform(&r));
    return;
  }
  case RT_INIT_NORMAL:
  case RT_INIT_HE_NORMAL: {
    double std = kind == RT_INIT_NORMAL ? a : fan_in > 0 ? sqrt(2.0 / fan_in) : 0.0;
    for (int64_t i = 0; i < n; i++) out[i] = (float)(std * rt_rng_normal(&r));
    return;
  }
  }
}

void rt_init_buffer(const RtBufDesc *b, uint64_t seed, float *out) {
  rt_init_tensor((RtInitKind)b->init_kind, b->init_a, b->init_b, b->dims, b->rank, seed, b->name, out);
  if (b->dtype != 1) return;
  int64_t n = 1;
  for (int d = 0; d < b->rank; d++) n *= b->dims[d];
  for (int64_t k = 0; k < n; k++) { /* an i32 state: the initializer's values as integers */
    int32_t iv = (int32_t)out[k];
    memcpy(&out[k], &iv, sizeof iv);
  }
}
