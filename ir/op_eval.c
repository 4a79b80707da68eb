/* ir/op_eval.c - the scalar semantics of the elementwise ops: the `value`
 * column of ir/ops.def, evaluated at one element (ir.h: op_eval).
 *
 * This is the one definition of what each op computes.  Elaboration folds
 * numbers with it, the fold pass folds constants with it, the interpreter
 * runs every elementwise node through it, and the tests' reference
 * evaluators compare compiled code with it; the emitters must agree with
 * it (include/nnc/backend.h states the same semantics for plugins).
 *
 * Values are doubles: f32 operands and results are exact in double, and
 * i32 ones are integers.  Integer results (i32 data or 64-bit index
 * arithmetic: `integer`) use exact integer products and truncating
 * division; i32 results then wrap modulo 2^32, like the code nnc emits.
 */
#include "ir/ir.h"

#include <math.h>
#include <stdint.h>

/* max and min that propagate NaN (NumPy's maximum and minimum). */
static double nmax(double a, double b) { return isnan(a) ? a : isnan(b) ? b : a >= b ? a : b; }
static double nmin(double a, double b) { return isnan(a) ? a : isnan(b) ? b : a <= b ? a : b; }

/* -1, 0 or 1; NaN stays NaN. */
static double sgn(double a) { return isnan(a) ? a : (double)((a > 0) - (a < 0)); }

/* f32 -> i32: toward zero, saturating at the int32 range; NaN gives 0. */
static double to_i32(double a) {
  if (isnan(a)) return 0;
  if (a >= 2147483647.0) return 2147483647.0;
  if (a <= -2147483648.0) return -2147483648.0;
  return trunc(a);
}

/* The exact product of two integers, wrapping modulo 2^64 (never reached
 * by i32 operands, whose product fits). */
static double imul(double a, double b) { return (double)(int64_t)((uint64_t)(int64_t)a * (uint64_t)(int64_t)b); }

/* Integer division toward zero; x / 0 = 0, and x / -1 = -x (so that
 * INT_MIN / -1 wraps instead of trapping). */
static double idiv(double a, double b) {
  int64_t x = (int64_t)a, y = (int64_t)b;
  if (y == 0) return 0;
  if (y == -1) return -(double)x;
  return (double)(x / y);
}

/* An integer wrapped to int32, the way two's-complement hardware does it. */
static double wrap32(double v) {
  uint32_t u = (uint32_t)(uint64_t)(int64_t)v;
  return u >= 0x80000000u ? (double)u - 4294967296.0 : (double)u;
}

void op_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t x0 = ctr[0], x1 = ctr[1], x2 = ctr[2], x3 = ctr[3], k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; round++) {
    if (round > 0) k0 += 0x9E3779B9u, k1 += 0xBB67AE85u; /* the Weyl key schedule */
    uint64_t p0 = (uint64_t)0xD2511F53u * x0, p1 = (uint64_t)0xCD9E8D57u * x2;
    uint32_t y0 = (uint32_t)(p1 >> 32) ^ x1 ^ k0, y2 = (uint32_t)(p0 >> 32) ^ x3 ^ k1;
    x1 = (uint32_t)p1, x3 = (uint32_t)p0, x0 = y0, x2 = y2;
  }
  out[0] = x0, out[1] = x1, out[2] = x2, out[3] = x3;
}

/* random(a, b, c): integers (i32, or a 64-bit index for c) to a uniform
 * f32 in [0, 1): 24 bits, so the value is exact in f32. */
static double random_u01(double a, double b, double c) {
  uint64_t c64 = (uint64_t)(int64_t)c;
  uint32_t ctr[4] = {(uint32_t)c64, (uint32_t)(c64 >> 32), (uint32_t)(uint64_t)(int64_t)b, 0};
  uint32_t key[2] = {(uint32_t)(uint64_t)(int64_t)a, 0}, out[4];
  op_philox4x32(ctr, key, out);
  return (double)(out[0] >> 8) * 0x1p-24;
}

static double eval(Op op, bool integer, double a, double b, double c) {
  (void)b, (void)c;
  switch (op) {
#define EW(nnc_op, nn, value, infix, c_math, llvm, libdevice, nvvm) return (value);
#define NO_EW break;
#define OP(id, name, arity, flags, shape, synopsis, ew) \
  case OP_##id:                                          \
    ew
#include "ir/ops.def"
#undef OP
#undef NO_EW
#undef EW
  case OP_COUNT: break;
  }
  nnc_internal_error(__FILE__, __LINE__, "op_eval: %s is not elementwise",
                     (unsigned)op < OP_COUNT ? ir_ops[op].name : "an unknown op");
}

double op_eval(Op op, DType dt, double a, double b, double c) {
  bool i32 = dt == DT_I32 && !((unsigned)op < OP_COUNT && (ir_ops[op].flags & OPF_CMP));
  double r = eval(op, i32, a, b, c);
  return i32 ? wrap32(r) : r;
}

double op_eval_index(Op op, double a, double b, double c) { return eval(op, true, a, b, c); }
