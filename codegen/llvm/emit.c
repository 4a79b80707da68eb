/* codegen/llvm/emit.c - kernel IR statements and expressions -> LLVM IR,
 * for every LLVM backend (see emit.h; the cpu and gpu backends add the
 * function around the body).
 *
 * Statements map one to one.  A loop is a guarded, rotated loop over an i64
 * induction variable: `if (lo < hi) { i = lo; do body while ((i += step) < hi) }`.
 * Scalar temporaries are allocas in the entry block (mem2reg promotes them).
 * A load or store computes its row-major offset in i64 (nsw arithmetic,
 * inbounds GEP on the buffer's base pointer, so it stays in the base
 * pointer's address space); a guarded load reads element 0 when an index is
 * out of range and then selects 0, so it stays branch-free.
 *
 * Values come in three LLVM types: float (f32 data), i32 (i32 data) and i64
 * (index expressions, loop variables, B).  lk_expr returns every value in
 * the natural type of its expression and lk_coerce converts with the cast
 * semantics of the interpreter, so an i32 label may index a buffer and a
 * loop variable may be stored into an i32 buffer (argmax).
 *
 * Semantics (docs/codegen-cpu.md; ir/op_eval.c defines them): f32 + - * /
 * carry `reassoc contract`; the math functions are the LLVM intrinsics
 * ir/ops.def names (max/min are llvm.maximum/minimum: NaN propagates), or
 * the target's (LkTarget.math); comparisons give f32
 * 1/0; f32 -> i32 truncates and saturates (NaN gives 0); i32 arithmetic
 * wraps; i32 division truncates toward zero, x / 0 = 0, INT32_MIN / -1 =
 * INT32_MIN.
 *
 * Loop hints (LkTarget.vector_hints): innermost loops whose every access is
 * contiguous or invariant in the loop variable get
 * llvm.loop.vectorize.enable; others are left to LLVM's cost model, and so
 * are loops with llvm.tanh (LLVM 19 has no vector form of it; the cpu's
 * LkTarget.math writes tanh out as arithmetic instead).  Schedule
 * hints override that: sched.vector > 1 sets the width, 1 disables
 * vectorisation; sched.unroll sets the unroll count (1 disables unrolling,
 * on every target).  sched.tile is for passes on the kernel IR.  The same
 * targets' other loops get llvm.loop.unroll.runtime.disable: unrolling a
 * loop by a count known only at run time gained nothing measurable on
 * these loops (vectorised loops are interleaved already) and took a fifth
 * of vgg.nn's compile time; a contraction's planned code (its own loops)
 * keeps it.
 */
#include "codegen/llvm/emit.h"

#include <llvm-c/DebugInfo.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAST_FMF (LLVMFastMathAllowReassoc | LLVMFastMathAllowContract | LLVMFastMathAllowReciprocal)

/* ---- setting up ---------------------------------------------------------------------------- */

void lk_init(LkEmit *E, const LkTarget *t, const KProgram *p, LLVMContextRef ctx, LLVMModuleRef mod) {
  memset(E, 0, sizeof *E);
  E->target = t;
  E->p = p;
  E->ctx = ctx;
  E->mod = mod;
  E->b = LLVMCreateBuilderInContext(ctx);
  E->f32 = LLVMFloatTypeInContext(ctx);
  E->i32 = LLVMInt32TypeInContext(ctx);
  E->i64 = LLVMInt64TypeInContext(ctx);
  E->i1 = LLVMInt1TypeInContext(ctx);
  E->ptr = LLVMPointerTypeInContext(ctx, 0);
  E->voidt = LLVMVoidTypeInContext(ctx);
  E->md_loop = LLVMGetMDKindIDInContext(ctx, "llvm.loop", 9);
}

void lk_dispose(LkEmit *E) {
  LLVMDisposeBuilder(E->b);
  E->b = NULL;
}

void lk_kernel_begin(LkEmit *E, const Kernel *k) {
  E->k = k;
  E->base = nnc_xcalloc(E->p->nbufs + 1, sizeof(LLVMValueRef));
  E->vars = nnc_xcalloc((size_t)k->nvars + 1, sizeof(LLVMValueRef));
  E->temps = nnc_xcalloc((size_t)k->ntemps + 1, sizeof(LLVMValueRef));
  E->batch = NULL;
  E->fn = NULL;
}

void lk_kernel_end(LkEmit *E) {
  free(E->base);
  free(E->vars);
  free(E->temps);
  E->base = E->vars = E->temps = NULL;
  E->k = NULL;
}

void lk_alloca_temps(LkEmit *E) {
  for (int32_t t = 0; t < E->k->ntemps; t++) {
    char name[32];
    snprintf(name, sizeof name, "t%d", t);
    E->temps[t] = LLVMBuildAlloca(E->b, lk_dtype(E, E->k->temp_types[t]), name);
  }
}

/* ---- small helpers ------------------------------------------------------------------------ */

LLVMTypeRef lk_dtype(const LkEmit *E, DType dt) { return dt == DT_F32 ? E->f32 : E->i32; }

/* The LLVM type lk_expr gives e. */
static LLVMTypeRef natural(const LkEmit *E, const KExpr *e) { return e->index ? E->i64 : lk_dtype(E, e->dtype); }

LLVMValueRef lk_i64(const LkEmit *E, int64_t v) { return LLVMConstInt(E->i64, (unsigned long long)v, 1); }
LLVMValueRef lk_i32(const LkEmit *E, int32_t v) { return LLVMConstInt(E->i32, (unsigned long long)(int64_t)v, 1); }
LLVMValueRef lk_f32(const LkEmit *E, double v) { return LLVMConstReal(E->f32, v); }

LLVMValueRef lk_extent(LkEmit *E, int64_t extent, bool batched) {
  LLVMValueRef n = lk_i64(E, extent);
  return batched ? LLVMBuildNSWMul(E->b, E->batch, n, "") : n;
}

LLVMValueRef lk_fast(LLVMValueRef v) {
  if (LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v)) LLVMSetFastMathFlags(v, FAST_FMF);
  return v;
}

LLVMAttributeRef lk_attr(const LkEmit *E, const char *name, uint64_t value) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  NNC_ASSERT(kind != 0);
  return LLVMCreateEnumAttribute(E->ctx, kind, value);
}

LLVMValueRef lk_intrinsic(LkEmit *E, const char *name, LLVMTypeRef *tys, int ntys, LLVMValueRef *args, int nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  if (!id) nnc_internal_error(__FILE__, __LINE__, "%s codegen: no intrinsic %s", E->target->name, name);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(E->mod, id, tys, (size_t)ntys);
  LLVMTypeRef ft = LLVMIntrinsicGetType(E->ctx, id, tys, (size_t)ntys);
  return LLVMBuildCall2(E->b, ft, f, args, (unsigned)nargs, "");
}

LLVMValueRef lk_intrinsic1(LkEmit *E, const char *name, LLVMValueRef a) {
  LLVMTypeRef t = LLVMTypeOf(a);
  return lk_intrinsic(E, name, &t, 1, &a, 1);
}

LLVMValueRef lk_intrinsic2(LkEmit *E, const char *name, LLVMValueRef a, LLVMValueRef b) {
  LLVMTypeRef t = LLVMTypeOf(a);
  LLVMValueRef args[2] = {a, b};
  return lk_intrinsic(E, name, &t, 1, args, 2);
}

LLVMValueRef lk_call(LkEmit *E, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, LLVMValueRef *args,
                     int nargs) {
  LLVMTypeRef ft = LLVMFunctionType(ret, params, (unsigned)nargs, 0);
  LLVMValueRef f = LLVMGetNamedFunction(E->mod, name);
  if (!f) {
    f = LLVMAddFunction(E->mod, name, ft);
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, lk_attr(E, "nounwind", 0));
  }
  return LLVMBuildCall2(E->b, ft, f, args, (unsigned)nargs, "");
}

LLVMBasicBlockRef lk_block(LkEmit *E, const char *name) { return LLVMAppendBasicBlockInContext(E->ctx, E->fn, name); }

/* Converts v to type `to` with the interpreter's cast semantics: f32 ->
 * integer truncates toward zero and saturates at the i32 range (NaN gives
 * 0); integer -> f32 rounds; i32 -> i64 sign-extends; i64 -> i32 wraps. */
LLVMValueRef lk_coerce(LkEmit *E, LLVMValueRef v, LLVMTypeRef to) {
  LLVMTypeRef from = LLVMTypeOf(v);
  if (from == to) return v;
  if (from == E->f32) {
    LLVMTypeRef tys[2] = {E->i32, E->f32};
    LLVMValueRef r = lk_intrinsic(E, "llvm.fptosi.sat", tys, 2, &v, 1);
    return to == E->i32 ? r : LLVMBuildSExt(E->b, r, to, "");
  }
  if (to == E->f32) return LLVMBuildSIToFP(E->b, v, E->f32, "");
  if (to == E->i64) return LLVMBuildSExt(E->b, v, E->i64, "");
  return LLVMBuildTrunc(E->b, v, to, "");
}

/* The common type of two compared operands: f32 if either is, else the
 * wider integer. */
static LLVMTypeRef join(const LkEmit *E, LLVMTypeRef a, LLVMTypeRef b) {
  if (a == E->f32 || b == E->f32) return E->f32;
  return a == E->i64 || b == E->i64 ? E->i64 : E->i32;
}

/* c != 0 (NaN counts as nonzero, as in C). */
static LLVMValueRef nonzero(const LkEmit *E, LLVMValueRef c) {
  LLVMTypeRef t = LLVMTypeOf(c);
  if (t == E->f32) return LLVMBuildFCmp(E->b, LLVMRealUNE, c, LLVMConstReal(t, 0), "");
  return LLVMBuildICmp(E->b, LLVMIntNE, c, LLVMConstInt(t, 0, 0), "");
}

/* ---- expressions ---------------------------------------------------------------------------- */

/* The address of buf[idx...]; with `ok`, the indices are checked: *ok is
 * the i1 "every index in range" and the address is element 0 otherwise. */
static LLVMValueRef element(LkEmit *E, int32_t buf, KExpr *const *idx, int nidx, LLVMValueRef *ok) {
  if (buf < 0 || (uint32_t)buf >= E->p->nbufs || !E->base[buf])
    LK_FAIL(E, "buffer %d is not one of its arguments", buf);
  const KBuffer *kb = &E->p->bufs[buf];
  int batched = kb->type.batched ? 1 : 0;
  if (nidx != kb->type.rank + batched)
    LK_FAIL(E, "buffer %s takes %d indices, found %d", kb->name, kb->type.rank + batched, nidx);
  LLVMValueRef off = NULL, inrange = NULL;
  for (int d = 0; d < nidx; d++) {
    if (!idx[d]) LK_FAIL(E, "index %d of buffer %s is missing", d, kb->name);
    LLVMValueRef i = lk_coerce(E, lk_expr(E, idx[d]), E->i64);
    LLVMValueRef extent = batched && d == 0 ? E->batch : lk_i64(E, kb->type.dims[d - batched]);
    if (ok) {
      LLVMValueRef in = LLVMBuildICmp(E->b, LLVMIntULT, i, extent, ""); /* 0 <= i < extent */
      inrange = inrange ? LLVMBuildAnd(E->b, inrange, in, "") : in;
    }
    off = off ? LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, off, extent, ""), i, "") : i;
  }
  if (!off) off = lk_i64(E, 0);
  if (ok) {
    if (!inrange) inrange = LLVMConstInt(E->i1, 1, 0);
    off = LLVMBuildSelect(E->b, inrange, off, lk_i64(E, 0), "");
    *ok = inrange;
  }
  return LLVMBuildInBoundsGEP2(E->b, lk_dtype(E, kb->type.dtype), E->base[buf], &off, 1, "");
}

LLVMValueRef lk_offset(LkEmit *E, int32_t buf, KExpr *const *idx, int nidx) {
  const KBuffer *kb = &E->p->bufs[buf];
  int batched = kb->type.batched ? 1 : 0;
  if (nidx != kb->type.rank + batched)
    LK_FAIL(E, "buffer %s takes %d indices, found %d", kb->name, kb->type.rank + batched, nidx);
  LLVMValueRef off = lk_i64(E, 0);
  for (int d = 0; d < nidx; d++) {
    LLVMValueRef extent = batched && d == 0 ? E->batch : lk_i64(E, kb->type.dims[d - batched]);
    LLVMValueRef i = lk_coerce(E, lk_expr(E, idx[d]), E->i64);
    off = d ? LLVMBuildAdd(E->b, LLVMBuildMul(E->b, off, extent, ""), i, "") : i;
  }
  return off;
}

static LLVMValueRef emit_load(LkEmit *E, const KExpr *e) {
  LLVMValueRef ok = NULL;
  LLVMValueRef addr = element(E, e->buf, e->idx, e->nidx, e->guarded ? &ok : NULL);
  LLVMTypeRef t = lk_dtype(E, E->p->bufs[e->buf].type.dtype);
  LLVMValueRef v = LLVMBuildLoad2(E->b, t, addr, "");
  LLVMSetAlignment(v, 4);
  return ok ? LLVMBuildSelect(E->b, ok, v, LLVMConstNull(t), "") : v;
}

/* A run-time scalar: element `which` of the scalars buffer. */
static LLVMValueRef emit_scalar(LkEmit *E, int32_t which) {
  int32_t s = E->p->scalars;
  if (s < 0 || !E->base[s] || which < 0) LK_FAIL(E, "run-time scalar %d without the scalars buffer as an argument", which);
  LLVMValueRef off = lk_i64(E, which);
  LLVMValueRef addr = LLVMBuildInBoundsGEP2(E->b, E->f32, E->base[s], &off, 1, "");
  LLVMValueRef v = LLVMBuildLoad2(E->b, E->f32, addr, "");
  LLVMSetAlignment(v, 4);
  return v;
}

/* An f32 op on a (and b for two operands).  The math functions are ir/ops.def's
 * LLVM intrinsics, unless the target has its own (libdevice on the gpu). */
static LLVMValueRef float_op(LkEmit *E, Op op, LLVMValueRef a, LLVMValueRef b) {
  LLVMBuilderRef B = E->b;
  const char *intrinsic = ir_ops[op].llvm;
  if (intrinsic) {
    LLVMValueRef v = E->target->math ? E->target->math(E, op, a, b) : NULL;
    if (v) return v;
    return b ? lk_intrinsic2(E, intrinsic, a, b) : lk_intrinsic1(E, intrinsic, a);
  }
  LLVMValueRef zero = LLVMConstReal(E->f32, 0);
  switch (op) {
  case OP_NEG: return lk_fast(LLVMBuildFNeg(B, a, ""));
  case OP_SIGN: { /* 1, -1, 0 (for +-0), NaN for NaN */
    LLVMValueRef nan = LLVMBuildFCmp(B, LLVMRealUNO, a, a, "");
    LLVMValueRef r = LLVMBuildSelect(B, nan, a, zero, "");
    r = LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOLT, a, zero, ""), LLVMConstReal(E->f32, -1), r, "");
    return LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOGT, a, zero, ""), LLVMConstReal(E->f32, 1), r, "");
  }
  case OP_ADD: return lk_fast(LLVMBuildFAdd(B, a, b, ""));
  case OP_SUB: return lk_fast(LLVMBuildFSub(B, a, b, ""));
  case OP_MUL: return lk_fast(LLVMBuildFMul(B, a, b, ""));
  case OP_DIV: return lk_fast(LLVMBuildFDiv(B, a, b, ""));
  default: break;
  }
  nnc_internal_error(__FILE__, __LINE__, "%s codegen: no f32 form of %s", E->target->name, ir_ops[op].name);
}

LLVMValueRef lk_combine(LkEmit *E, Op op, LLVMValueRef a, LLVMValueRef b) {
  NNC_ASSERT(op == OP_ADD || op == OP_MAX || op == OP_MIN);
  return float_op(E, op, a, b);
}

/* The same on integers: i32 data (wrapping) or i64 index arithmetic (nsw). */
static LLVMValueRef int_op(LkEmit *E, Op op, LLVMValueRef a, LLVMValueRef b, bool index) {
  LLVMBuilderRef B = E->b;
  LLVMTypeRef t = LLVMTypeOf(a);
  LLVMValueRef zero = LLVMConstInt(t, 0, 0);
  switch (op) {
  case OP_NEG: return LLVMBuildSub(B, zero, a, "");
  case OP_ABS: return lk_intrinsic2(E, "llvm.abs", a, LLVMConstInt(E->i1, 0, 0)); /* abs(INT_MIN) wraps */
  case OP_SIGN: {
    LLVMValueRef pos = LLVMBuildZExt(B, LLVMBuildICmp(B, LLVMIntSGT, a, zero, ""), t, "");
    LLVMValueRef neg = LLVMBuildZExt(B, LLVMBuildICmp(B, LLVMIntSLT, a, zero, ""), t, "");
    return LLVMBuildSub(B, pos, neg, "");
  }
  case OP_ADD: return index ? LLVMBuildNSWAdd(B, a, b, "") : LLVMBuildAdd(B, a, b, "");
  case OP_SUB: return index ? LLVMBuildNSWSub(B, a, b, "") : LLVMBuildSub(B, a, b, "");
  case OP_MUL: return index ? LLVMBuildNSWMul(B, a, b, "") : LLVMBuildMul(B, a, b, "");
  case OP_DIV: {
    /* Toward zero.  Defined everywhere, without a branch: a / 0 = 0 (the
     * interpreter reports an error instead) and a / -1 = -a, wrapping. */
    LLVMValueRef bz = LLVMBuildICmp(B, LLVMIntEQ, b, zero, "");
    LLVMValueRef bm1 = LLVMBuildICmp(B, LLVMIntEQ, b, LLVMConstAllOnes(t), "");
    LLVMValueRef safe = LLVMBuildSelect(B, LLVMBuildOr(B, bz, bm1, ""), LLVMConstInt(t, 1, 0), b, "");
    LLVMValueRef q = LLVMBuildSDiv(B, a, safe, "");
    q = LLVMBuildSelect(B, bm1, LLVMBuildSub(B, zero, a, ""), q, "");
    return LLVMBuildSelect(B, bz, zero, q, "");
  }
  case OP_MAX: return lk_intrinsic2(E, "llvm.smax", a, b);
  case OP_MIN: return lk_intrinsic2(E, "llvm.smin", a, b);
  default: break;
  }
  nnc_internal_error(__FILE__, __LINE__, "%s codegen: no integer form of %s", E->target->name, ir_ops[op].name);
}

static LLVMValueRef compare(LkEmit *E, Op op, LLVMValueRef a, LLVMValueRef b) {
  if (LLVMTypeOf(a) == E->f32) {
    LLVMRealPredicate pr = op == OP_EQ ? LLVMRealOEQ : op == OP_NE ? LLVMRealUNE : op == OP_LT ? LLVMRealOLT
                         : op == OP_LE ? LLVMRealOLE : op == OP_GT ? LLVMRealOGT : LLVMRealOGE;
    return LLVMBuildFCmp(E->b, pr, a, b, "");
  }
  LLVMIntPredicate pi = op == OP_EQ ? LLVMIntEQ : op == OP_NE ? LLVMIntNE : op == OP_LT ? LLVMIntSLT
                      : op == OP_LE ? LLVMIntSLE : op == OP_GT ? LLVMIntSGT : LLVMIntSGE;
  return LLVMBuildICmp(E->b, pi, a, b, "");
}

/* random(key, ctr1, ctr0): Philox4x32-10 as ir/op_eval.c computes it, in
 * straight-line integer code the loop vectoriser widens (the 32 x 32 -> 64
 * products are one vpmuludq per lane on x86). */
static LLVMValueRef philox_u01(LkEmit *E, LLVMValueRef key, LLVMValueRef ctr1, LLVMValueRef ctr0) {
  LLVMBuilderRef B = E->b;
  LLVMValueRef c64 = lk_coerce(E, ctr0, E->i64);
  LLVMValueRef x[4] = {LLVMBuildTrunc(B, c64, E->i32, ""),
                       LLVMBuildTrunc(B, LLVMBuildLShr(B, c64, LLVMConstInt(E->i64, 32, 0), ""), E->i32, ""),
                       lk_coerce(E, ctr1, E->i32), LLVMConstInt(E->i32, 0, 0)};
  uint32_t k1 = 0;
  LLVMValueRef k0 = lk_coerce(E, key, E->i32);
  LLVMValueRef m0 = LLVMConstInt(E->i64, 0xD2511F53u, 0), m1 = LLVMConstInt(E->i64, 0xCD9E8D57u, 0);
  LLVMValueRef sh = LLVMConstInt(E->i64, 32, 0);
  for (int round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = LLVMBuildAdd(B, k0, LLVMConstInt(E->i32, 0x9E3779B9u, 0), "");
      k1 += 0xBB67AE85u;
    }
    LLVMValueRef p0 = LLVMBuildMul(B, LLVMBuildZExt(B, x[0], E->i64, ""), m0, "");
    LLVMValueRef p1 = LLVMBuildMul(B, LLVMBuildZExt(B, x[2], E->i64, ""), m1, "");
    LLVMValueRef hi0 = LLVMBuildTrunc(B, LLVMBuildLShr(B, p0, sh, ""), E->i32, "");
    LLVMValueRef hi1 = LLVMBuildTrunc(B, LLVMBuildLShr(B, p1, sh, ""), E->i32, "");
    LLVMValueRef y0 = LLVMBuildXor(B, LLVMBuildXor(B, hi1, x[1], ""), k0, "");
    LLVMValueRef y2 = LLVMBuildXor(B, LLVMBuildXor(B, hi0, x[3], ""), LLVMConstInt(E->i32, k1, 0), "");
    x[1] = LLVMBuildTrunc(B, p1, E->i32, "");
    x[3] = LLVMBuildTrunc(B, p0, E->i32, "");
    x[0] = y0, x[2] = y2;
  }
  LLVMValueRef top = LLVMBuildLShr(B, x[0], LLVMConstInt(E->i32, 8, 0), "");
  return LLVMBuildFMul(B, LLVMBuildUIToFP(B, top, E->f32, ""), LLVMConstReal(E->f32, 0x1p-24), "");
}

static LLVMValueRef emit_op(LkEmit *E, const KExpr *e) {
  Op op = e->op;
  if ((unsigned)op >= OP_COUNT || !(ir_ops[op].flags & OPF_ELEMWISE))
    LK_FAIL(E, "op %d is not elementwise", (int)op);
  int arity = ir_ops[op].arity;
  if (!e->a || (arity > 1 && !e->b) || (arity > 2 && !e->c)) LK_FAIL(E, "%s lacks an operand", ir_ops[op].name);
  LLVMValueRef a = lk_expr(E, e->a);
  LLVMValueRef b = arity > 1 ? lk_expr(E, e->b) : NULL;
  LLVMValueRef c = arity > 2 ? lk_expr(E, e->c) : NULL;
  LLVMTypeRef want = natural(E, e);
  if (op == OP_CAST || op == OP_STOP_GRAD) return lk_coerce(E, a, want);
  if (op == OP_RANDOM) return lk_coerce(E, philox_u01(E, a, b, c), want);
  if (ir_ops[op].flags & OPF_CMP) {
    LLVMTypeRef t = join(E, LLVMTypeOf(a), LLVMTypeOf(b));
    LLVMValueRef bit = compare(E, op, lk_coerce(E, a, t), lk_coerce(E, b, t));
    return lk_coerce(E, LLVMBuildUIToFP(E->b, bit, E->f32, ""), want);
  }
  if (op == OP_WHERE) /* where(cond, then, else) */
    return LLVMBuildSelect(E->b, nonzero(E, a), lk_coerce(E, b, want), lk_coerce(E, c, want), "");
  LLVMTypeRef t = ir_ops[op].flags & OPF_FLOAT ? E->f32 : want;
  a = lk_coerce(E, a, t);
  if (b) b = lk_coerce(E, b, t);
  LLVMValueRef r = t == E->f32 ? float_op(E, op, a, b) : int_op(E, op, a, b, t == E->i64);
  return lk_coerce(E, r, want);
}

LLVMValueRef lk_expr(LkEmit *E, const KExpr *e) {
  const Kernel *k = E->k;
  LLVMValueRef v;
  switch (e->kind) {
  case KE_CONST:
    if (e->index) return lk_i64(E, (int64_t)e->value);
    if (e->dtype == DT_F32) return LLVMConstReal(E->f32, e->value);
    return LLVMConstInt(E->i32, (unsigned long long)(int64_t)e->value, 1);
  case KE_VAR:
    if (e->var < 0 || e->var >= k->nvars || !E->vars[e->var])
      LK_FAIL(E, "loop variable %d used outside its loop", e->var);
    v = E->vars[e->var];
    break;
  case KE_TEMP:
    if (e->temp < 0 || e->temp >= k->ntemps) LK_FAIL(E, "unknown temporary %d", e->temp);
    v = LLVMBuildLoad2(E->b, lk_dtype(E, k->temp_types[e->temp]), E->temps[e->temp], "");
    break;
  case KE_LOAD: v = emit_load(E, e); break;
  case KE_SCALAR: v = emit_scalar(E, e->scalar); break;
  case KE_BATCH: v = E->batch; break;
  case KE_OP: return emit_op(E, e);
  default: LK_FAIL(E, "unknown expression kind %d", (int)e->kind);
  }
  return lk_coerce(E, v, natural(E, e));
}

/* ---- questions about kernels ------------------------------------------------------------------ */

/* ---- loop metadata ------------------------------------------------------------------------ */

/* Whether buf[idx...] moves by 0 or 1 element per step of v. */
static bool unit_stride(const LkEmit *E, int32_t buf, KExpr *const *idx, int nidx, int32_t v) {
  int64_t s;
  return kaccess_stride(E->p, buf, idx, nidx, v, &s) && (s == 0 || s == 1);
}

typedef struct Contig {
  KVisit v;
  const LkEmit *E;
  int32_t var;
} Contig;
static bool breaks_contiguity(KVisit *v, KExpr *e) {
  const Contig *c = (const Contig *)v;
  /* LLVM 19 cannot vectorise llvm.tanh; a target with its own math writes tanh out. */
  if (e->kind == KE_OP && e->op == OP_TANH && !c->E->target->math) return true;
  return e->kind == KE_LOAD &&
         ((e->guarded && kexpr_mentions(e, c->var)) || !unit_stride(c->E, e->buf, e->idx, e->nidx, c->var));
}
static bool expr_contiguous(const LkEmit *E, const KExpr *e, int32_t v) {
  Contig c = {{NULL, breaks_contiguity}, E, v};
  return !kvisit_expr(&c.v, (KExpr *)e);
}

/* An innermost loop whose loads and stores are all contiguous or invariant
 * in its variable: worth forcing the vectoriser on. */
static bool contiguous_innermost(const LkEmit *E, const KStmt *loop) {
  for (uint32_t i = 0; i < loop->nbody; i++) {
    const KStmt *s = loop->body[i];
    if (s->kind == KS_LOOP || s->kind == KS_CONTRACT) return false;
    if (!expr_contiguous(E, s->value, loop->var)) return false;
    if (s->kind == KS_STORE) {
      if (!unit_stride(E, s->buf, s->idx, s->nidx, loop->var)) return false;
      for (int d = 0; d < s->nidx; d++)
        if (!expr_contiguous(E, s->idx[d], loop->var)) return false;
    }
  }
  return true;
}

static LLVMMetadataRef md_prop(const LkEmit *E, const char *name, LLVMValueRef value) {
  LLVMMetadataRef ops[2] = {LLVMMDStringInContext2(E->ctx, name, strlen(name)), NULL};
  if (value) ops[1] = LLVMValueAsMetadata(value);
  return LLVMMDNodeInContext2(E->ctx, ops, value ? 2 : 1);
}

/* Attaches !llvm.loop (a distinct, self-referencing node) of ops[1..n) to
 * the latch; ops[0] is for the node itself. */
static void attach_loop_md(const LkEmit *E, LLVMValueRef latch_br, LLVMMetadataRef *ops, size_t n) {
  if (n == 1) return;
  LLVMMetadataRef self = LLVMTemporaryMDNode(E->ctx, NULL, 0);
  ops[0] = self;
  LLVMMetadataRef id = LLVMMDNodeInContext2(E->ctx, ops, n);
  LLVMMetadataReplaceAllUsesWith(self, id); /* the node now refers to itself: distinct */
  LLVMSetMetadata(latch_br, E->md_loop, LLVMMetadataAsValue(E->ctx, id));
}

/* The loop hints of a kernel IR loop (see "Loop hints" above) on its latch. */
static void loop_metadata(const LkEmit *E, LLVMValueRef latch_br, const KStmt *s) {
  LLVMMetadataRef ops[6];
  size_t n = 1;
  LLVMValueRef yes = LLVMConstInt(E->i1, 1, 0), no = LLVMConstInt(E->i1, 0, 0);
  if (E->target->vector_hints) {
    if (s->sched.vector == 1) {
      ops[n++] = md_prop(E, "llvm.loop.vectorize.enable", no);
    } else if (s->sched.vector > 1) {
      ops[n++] = md_prop(E, "llvm.loop.vectorize.enable", yes);
      ops[n++] = md_prop(E, "llvm.loop.vectorize.width", LLVMConstInt(E->i32, (unsigned)s->sched.vector, 0));
    } else if (contiguous_innermost(E, s)) {
      ops[n++] = md_prop(E, "llvm.loop.vectorize.enable", yes);
    }
  }
  if (s->sched.unroll == 1)
    ops[n++] = md_prop(E, "llvm.loop.unroll.disable", NULL);
  else if (!s->sched.unroll && E->target->vector_hints) /* see "Loop hints" above */
    ops[n++] = md_prop(E, "llvm.loop.unroll.runtime.disable", NULL);
  else if (s->sched.unroll > 1)
    ops[n++] = md_prop(E, "llvm.loop.unroll.count", LLVMConstInt(E->i32, (unsigned)s->sched.unroll, 0));
  attach_loop_md(E, latch_br, ops, n);
}

/* ---- statements --------------------------------------------------------------------------- */

void lk_loop(LkEmit *E, const KStmt *s, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef step) {
  if (s->var < 0 || s->var >= E->k->nvars) LK_FAIL(E, "unknown loop variable %d", s->var);
  if (E->vars[s->var]) LK_FAIL(E, "loop variable %d is already in scope", s->var);
  if (!lo) lo = lk_i64(E, 0);
  if (!hi) hi = lk_extent(E, s->extent, s->batched);
  if (!step) step = lk_i64(E, 1);
  char name[32];
  snprintf(name, sizeof name, "v%d", s->var);
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(E->b);
  LLVMBasicBlockRef body = lk_block(E, "loop");
  LLVMBasicBlockRef exit = lk_block(E, "after");
  LLVMBuildCondBr(E->b, LLVMBuildICmp(E->b, LLVMIntSLT, lo, hi, ""), body, exit);

  LLVMPositionBuilderAtEnd(E->b, body);
  LLVMValueRef i = LLVMBuildPhi(E->b, E->i64, name);
  LLVMAddIncoming(i, &lo, &pre, 1);
  E->vars[s->var] = i;
  lk_stmts(E, s->body, s->nbody);
  LLVMValueRef next = LLVMBuildNSWAdd(E->b, i, step, "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(E->b);
  LLVMValueRef br = LLVMBuildCondBr(E->b, LLVMBuildICmp(E->b, LLVMIntSLT, next, hi, ""), body, exit);
  LLVMAddIncoming(i, &next, &latch, 1);
  loop_metadata(E, br, s);
  E->vars[s->var] = NULL;
  LLVMMoveBasicBlockAfter(exit, latch);
  LLVMPositionBuilderAtEnd(E->b, exit);
}

void lk_stmt(LkEmit *E, const KStmt *s) {
  switch (s->kind) {
  case KS_LOOP: lk_loop(E, s, NULL, NULL, NULL); return;
  case KS_LET:
  case KS_ASSIGN: {
    if (s->temp < 0 || s->temp >= E->k->ntemps || !s->value) LK_FAIL(E, "bad assignment to temporary %d", s->temp);
    LLVMValueRef v = lk_coerce(E, lk_expr(E, s->value), lk_dtype(E, E->k->temp_types[s->temp]));
    LLVMBuildStore(E->b, v, E->temps[s->temp]);
    return;
  }
  case KS_STORE: {
    if (!s->value) LK_FAIL(E, "store to buffer %d without a value", s->buf);
    LLVMValueRef addr = element(E, s->buf, s->idx, s->nidx, NULL);
    LLVMValueRef v = lk_coerce(E, lk_expr(E, s->value), lk_dtype(E, E->p->bufs[s->buf].type.dtype));
    LLVMSetAlignment(LLVMBuildStore(E->b, v, addr), 4);
    return;
  }
  case KS_CONTRACT: /* a target's schedule emits it, or expands it first (kernel_expand_contractions) */
    if (E->target->contract && s->direct.vector > 0) {
      E->target->contract(E, s);
      return;
    }
    LK_FAIL(E, "contraction into buffer %d was neither scheduled nor expanded", s->buf);
  }
  LK_FAIL(E, "unknown statement kind %d", (int)s->kind);
}

LLVMValueRef lk_for_begin(LkEmit *E, LkLoop *l, LLVMValueRef lo, LLVMValueRef hi, int64_t step, const char *name) {
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(E->b);
  l->body = lk_block(E, name);
  l->exit = lk_block(E, "after");
  l->hi = hi;
  l->step = lk_i64(E, step);
  LLVMBuildCondBr(E->b, LLVMBuildICmp(E->b, LLVMIntSLT, lo, hi, ""), l->body, l->exit);
  LLVMPositionBuilderAtEnd(E->b, l->body);
  l->iv = LLVMBuildPhi(E->b, E->i64, name);
  LLVMAddIncoming(l->iv, &lo, &pre, 1);
  return l->iv;
}

void lk_for_end(LkEmit *E, LkLoop *l) {
  LLVMValueRef next = LLVMBuildNSWAdd(E->b, l->iv, l->step, "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(E->b);
  LLVMValueRef br = LLVMBuildCondBr(E->b, LLVMBuildICmp(E->b, LLVMIntSLT, next, l->hi, ""), l->body, l->exit);
  if (E->target->vector_hints) {
    LLVMMetadataRef ops[2] = {NULL, md_prop(E, "llvm.loop.unroll.runtime.disable", NULL)};
    attach_loop_md(E, br, ops, 2);
  }
  LLVMAddIncoming(l->iv, &next, &latch, 1);
  LLVMMoveBasicBlockAfter(l->exit, latch);
  LLVMPositionBuilderAtEnd(E->b, l->exit);
}

void lk_stmts(LkEmit *E, KStmt *const *body, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) lk_stmt(E, body[i]);
}
