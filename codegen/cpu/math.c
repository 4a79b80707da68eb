/* codegen/cpu/math.c - exp, tanh and small powers as inline f32 arithmetic for the cpu
 * backend (LkTarget.math).
 *
 * Why: this LLVM has no vector math library for x86, so a vectorised
 * llvm.exp becomes one libm call per lane, and llvm.tanh does not
 * vectorise at all; a GPT step spent 42% of its time in scalar tanhf
 * (GELU).  Written out as polynomials, both vectorise like any other
 * arithmetic, and every lane, vector or scalar, computes the same bits.
 *
 * exp(x): x = n ln2 + r (Cody-Waite: ln2 in two parts; n * the high part
 * is exact), e^r by Cephes' expf polynomial, times 2^n as two powers of
 * two built from their exponent bits (so the result passes through the
 * denormals to 0 below, and reaches inf above, without special cases).
 * tanh(x): Cephes' tanhf: an odd polynomial below |x| = 0.625, else
 * 1 - 2 / (e^2|x| + 1) with x's sign.  Both are within 1 ulp of the
 * correctly rounded result for every f32 (checked exhaustively against
 * double-precision libm), and NaN propagates.  x ^ 2, x ^ 3 and x ^ 4 are
 * multiplications (within 2 ulp of pow; powf per lane otherwise).  The arithmetic carries no
 * fast-math flags: reassociating it would undo the range reduction.
 */
#include "codegen/cpu/cpu.h"

/* a * b + c, fused where the CPU has FMA. */
static LLVMValueRef fmuladd(LkEmit *E, LLVMValueRef a, LLVMValueRef b, LLVMValueRef d) {
  LLVMTypeRef t = LLVMTypeOf(a);
  LLVMValueRef args[3] = {a, b, d};
  return lk_intrinsic(E, "llvm.fmuladd", &t, 1, args, 3);
}

/* Horner's rule: coef[0] x^(n-1) + ... + coef[n-1]. */
static LLVMValueRef horner(LkEmit *E, LLVMValueRef x, const double *coef, int n) {
  LLVMValueRef p = lk_f32(E, coef[0]);
  for (int i = 1; i < n; i++) p = fmuladd(E, p, x, lk_f32(E, coef[i]));
  return p;
}

/* 2^k for an i32 k in [-126, 127], from its exponent bits. */
static LLVMValueRef pow2(LkEmit *E, LLVMValueRef k) {
  LLVMBuilderRef B = E->b;
  LLVMValueRef bits = LLVMBuildShl(B, LLVMBuildAdd(B, k, lk_i32(E, 127), ""), lk_i32(E, 23), "");
  return LLVMBuildBitCast(B, bits, E->f32, "");
}

/* x where x is NaN, else y. */
static LLVMValueRef keep_nan(LkEmit *E, LLVMValueRef x, LLVMValueRef y) {
  LLVMValueRef nan = LLVMBuildFCmp(E->b, LLVMRealUNO, x, x, "");
  return LLVMBuildSelect(E->b, nan, x, y, "");
}

static LLVMValueRef emit_exp(LkEmit *E, LLVMValueRef x) {
  LLVMBuilderRef B = E->b;
  /* Beyond [-104, 89] the result is 0 or inf already. */
  LLVMValueRef xc = lk_intrinsic2(E, "llvm.minnum", lk_intrinsic2(E, "llvm.maxnum", x, lk_f32(E, -104.0)), lk_f32(E, 89.0));
  LLVMValueRef n = lk_intrinsic1(E, "llvm.rint", LLVMBuildFMul(B, xc, lk_f32(E, 1.44269504088896341), ""));
  LLVMValueRef r = fmuladd(E, n, lk_f32(E, -0.693359375), xc);
  r = fmuladd(E, n, lk_f32(E, 2.12194440e-4), r);
  static const double poly[] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                                4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
  LLVMValueRef p = horner(E, r, poly, 6);
  LLVMValueRef y = LLVMBuildFAdd(B, fmuladd(E, p, LLVMBuildFMul(B, r, r, ""), r), lk_f32(E, 1.0), "");
  /* n in [-150, 129]: 2^n as 2^h 2^(n-h), each factor a normal number. */
  LLVMValueRef ni = LLVMBuildFPToSI(B, n, E->i32, "");
  LLVMValueRef h = LLVMBuildAShr(B, ni, lk_i32(E, 1), "");
  y = LLVMBuildFMul(B, LLVMBuildFMul(B, y, pow2(E, h), ""), pow2(E, LLVMBuildSub(B, ni, h, "")), "");
  return keep_nan(E, x, y);
}

static LLVMValueRef emit_tanh(LkEmit *E, LLVMValueRef x) {
  LLVMBuilderRef B = E->b;
  LLVMValueRef a = lk_intrinsic1(E, "llvm.fabs", x);
  /* |x| < 0.625: x + x^3 P(x^2). */
  LLVMValueRef z = LLVMBuildFMul(B, x, x, "");
  static const double poly[] = {-5.70498872745E-3, 2.06390887954E-2, -5.37397155531E-2, 1.33314422036E-1,
                                -3.33332819422E-1};
  LLVMValueRef small = fmuladd(E, LLVMBuildFMul(B, horner(E, z, poly, 5), z, ""), x, x);
  /* Else 1 - 2 / (e^2|x| + 1), with x's sign; e^2|x| is inf (the result 1) from |x| = 44.5 on. */
  LLVMValueRef e = emit_exp(E, LLVMBuildFAdd(B, a, a, ""));
  LLVMValueRef big = LLVMBuildFSub(B, lk_f32(E, 1.0),
                                   LLVMBuildFDiv(B, lk_f32(E, 2.0), LLVMBuildFAdd(B, e, lk_f32(E, 1.0), ""), ""), "");
  big = lk_intrinsic2(E, "llvm.copysign", big, x);
  LLVMValueRef y = LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOLT, a, lk_f32(E, 0.625), ""), small, big, "");
  return keep_nan(E, x, y);
}

/* a ^ k for a constant k in {2, 3, 4} (GELU's cube, its gradient's
 * square) as multiplications; NULL for other exponents (llvm.pow). */
static LLVMValueRef emit_small_power(LkEmit *E, LLVMValueRef a, LLVMValueRef b) {
  if (!LLVMIsAConstantFP(b)) return NULL;
  LLVMBool lost;
  double k = LLVMConstRealGetDouble(b, &lost);
  if (k != 2 && k != 3 && k != 4) return NULL;
  LLVMValueRef sq = LLVMBuildFMul(E->b, a, a, "");
  return k == 2 ? sq : LLVMBuildFMul(E->b, sq, k == 3 ? a : sq, "");
}

LLVMValueRef cpu_math(LkEmit *E, Op op, LLVMValueRef a, LLVMValueRef b) {
  switch (op) {
  case OP_EXP: return emit_exp(E, a);
  case OP_TANH: return emit_tanh(E, a);
  case OP_POW: return emit_small_power(E, a, b);
  default: return NULL; /* the LLVM intrinsic */
  }
}
