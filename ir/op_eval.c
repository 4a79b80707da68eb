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
