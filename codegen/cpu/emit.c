/* codegen/cpu/emit.c - kernel IR -> LLVM IR (see cpu.h for the ABI).
 *
 * Each kernel becomes two functions:
 *   NAME       the ABI entry point: loads every buffer's base pointer and B
 *              from args once, then calls NAME.body;
 *   NAME.body  internal and always-inline: (ptr noalias align 64 buf...,
 *              i64 B, i64 begin, i64 end).  The noalias parameters are how
 *              "distinct buffers never overlap" reaches LLVM: when the body
 *              is inlined, the inliner turns them into alias scopes on every
 *              load and store, which is what lets loops vectorise.
 *
 * Statements map one to one.  A loop is a guarded, rotated loop over an i64
 * induction variable: `if (lo < hi) { i = lo; do body while (++i < hi) }`.
 * Scalar temporaries are allocas in the entry block (mem2reg promotes them).
 * A load or store computes its row-major offset in i64 (nsw arithmetic,
 * inbounds GEP); a guarded load reads element 0 when an index is out of
 * range and then selects 0, so it stays branch-free.
 *
 * Values come in three LLVM types: float (f32 data), i32 (i32 data) and i64
 * (index expressions, loop variables, B).  emit_expr returns every value in
 * the natural type of its expression and coerce() converts with the cast
 * semantics of the interpreter, so an i32 label may index a buffer and a
 * loop variable may be stored into an i32 buffer (argmax).
 *
 * Innermost loops whose every access is contiguous or invariant in the loop
 * variable get llvm.loop.vectorize.enable; others are left to LLVM's cost
 * model (forcing a strided loop into gathers makes it slower), and so are
 * loops with tanh (LLVM 19 has no vector form of llvm.tanh).  Schedule
 * hints override that: sched.vector > 1 sets the width, 1 disables
 * vectorisation; sched.unroll sets the unroll count (1 disables unrolling).
 * sched.tile is ignored here: tiling is done on the kernel IR.
 */
#include "codegen/cpu/cpu.h"

#include <llvm-c/DebugInfo.h>

#include <stdlib.h>
#include <string.h>

enum { BUF_ALIGN = 64 }; /* every buffer is a 64-byte aligned allocation (runtime/device_cpu.c) */
#define FAST_FMF (LLVMFastMathAllowReassoc | LLVMFastMathAllowContract)

typedef struct Emit {
  const KProgram *p;
  const Kernel *k;
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef f32, i32, i64, i1, ptr, voidt;
  LLVMValueRef fn;      /* NAME.body */
  LLVMValueRef *base;   /* [nbufs] base pointer of each argument buffer, else NULL */
  LLVMValueRef batch;   /* B (i64) */
  LLVMValueRef *vars;   /* [nvars] loop variables in scope, else NULL */
  LLVMValueRef *temps;  /* [ntemps] allocas */
  unsigned md_loop;     /* the kind id of !llvm.loop */
} Emit;

/* A kernel that breaks the kernel IR's rules is a bug in lowering. */
#define KFAIL(E, fmt, ...) \
  nnc_internal_error(__FILE__, __LINE__, "cpu codegen: kernel %s: " fmt, (E)->k->name, __VA_ARGS__)

/* ---- small helpers ------------------------------------------------------------------------ */

static LLVMTypeRef dtype_type(const Emit *E, DType dt) { return dt == DT_F32 ? E->f32 : E->i32; }

/* The LLVM type emit_expr gives e. */
static LLVMTypeRef natural(const Emit *E, const KExpr *e) { return e->index ? E->i64 : dtype_type(E, e->dtype); }

static LLVMValueRef i64c(const Emit *E, int64_t v) { return LLVMConstInt(E->i64, (unsigned long long)v, 1); }

/* Marks f32 arithmetic reassociable and contractible (see cpu.h). */
static LLVMValueRef fast(LLVMValueRef v) {
  if (LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v)) LLVMSetFastMathFlags(v, FAST_FMF);
  return v;
}

static LLVMAttributeRef attr(const Emit *E, const char *name, uint64_t value) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  NNC_ASSERT(kind != 0);
  return LLVMCreateEnumAttribute(E->ctx, kind, value);
}

/* A call of the overloaded intrinsic `name` on types tys. */
static LLVMValueRef intrinsic(const Emit *E, const char *name, LLVMTypeRef *tys, int ntys, LLVMValueRef *args,
                              int nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  if (!id) nnc_internal_error(__FILE__, __LINE__, "cpu codegen: no intrinsic %s", name);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(E->mod, id, tys, (size_t)ntys);
  LLVMTypeRef ft = LLVMIntrinsicGetType(E->ctx, id, tys, (size_t)ntys);
  return LLVMBuildCall2(E->b, ft, f, args, (unsigned)nargs, "");
}

static LLVMValueRef intrinsic1(const Emit *E, const char *name, LLVMValueRef a) {
  LLVMTypeRef t = LLVMTypeOf(a);
  return intrinsic(E, name, &t, 1, &a, 1);
}

static LLVMValueRef intrinsic2(const Emit *E, const char *name, LLVMValueRef a, LLVMValueRef b) {
  LLVMTypeRef t = LLVMTypeOf(a);
  LLVMValueRef args[2] = {a, b};
  return intrinsic(E, name, &t, 1, args, 2);
}

/* Converts v to type `to` with the interpreter's cast semantics: f32 ->
 * integer truncates toward zero and saturates at the i32 range (NaN gives
 * 0); integer -> f32 rounds; i32 -> i64 sign-extends; i64 -> i32 wraps. */
static LLVMValueRef coerce(const Emit *E, LLVMValueRef v, LLVMTypeRef to) {
  LLVMTypeRef from = LLVMTypeOf(v);
  if (from == to) return v;
  if (from == E->f32) {
    LLVMTypeRef tys[2] = {E->i32, E->f32};
    LLVMValueRef r = intrinsic(E, "llvm.fptosi.sat", tys, 2, &v, 1);
    return to == E->i32 ? r : LLVMBuildSExt(E->b, r, to, "");
  }
  if (to == E->f32) return LLVMBuildSIToFP(E->b, v, E->f32, "");
  if (to == E->i64) return LLVMBuildSExt(E->b, v, E->i64, "");
  return LLVMBuildTrunc(E->b, v, to, "");
}

/* The common type of two compared operands: f32 if either is, else the
 * wider integer. */
static LLVMTypeRef join(const Emit *E, LLVMTypeRef a, LLVMTypeRef b) {
  if (a == E->f32 || b == E->f32) return E->f32;
  return a == E->i64 || b == E->i64 ? E->i64 : E->i32;
}

/* c != 0 (NaN counts as nonzero, as in C). */
static LLVMValueRef nonzero(const Emit *E, LLVMValueRef c) {
  LLVMTypeRef t = LLVMTypeOf(c);
  if (t == E->f32) return LLVMBuildFCmp(E->b, LLVMRealUNE, c, LLVMConstReal(t, 0), "");
  return LLVMBuildICmp(E->b, LLVMIntNE, c, LLVMConstInt(t, 0, 0), "");
}

/* ---- expressions ---------------------------------------------------------------------------- */

static LLVMValueRef emit_expr(Emit *E, const KExpr *e);

/* The address of buf[idx...]; with `ok`, the indices are checked: *ok is
 * the i1 "every index in range" and the address is element 0 otherwise. */
static LLVMValueRef element(Emit *E, int32_t buf, KExpr *const *idx, int nidx, LLVMValueRef *ok) {
  if (buf < 0 || (uint32_t)buf >= E->p->nbufs || !E->base[buf])
    KFAIL(E, "buffer %d is not one of its arguments", buf);
  const KBuffer *kb = &E->p->bufs[buf];
  int batched = kb->type.batched ? 1 : 0;
  if (nidx != kb->type.rank + batched)
    KFAIL(E, "buffer %s takes %d indices, found %d", kb->name, kb->type.rank + batched, nidx);
  LLVMValueRef off = NULL, inrange = NULL;
  for (int d = 0; d < nidx; d++) {
    if (!idx[d]) KFAIL(E, "index %d of buffer %s is missing", d, kb->name);
    LLVMValueRef i = coerce(E, emit_expr(E, idx[d]), E->i64);
    LLVMValueRef extent = batched && d == 0 ? E->batch : i64c(E, kb->type.dims[d - batched]);
    if (ok) {
      LLVMValueRef in = LLVMBuildICmp(E->b, LLVMIntULT, i, extent, ""); /* 0 <= i < extent */
      inrange = inrange ? LLVMBuildAnd(E->b, inrange, in, "") : in;
    }
    off = off ? LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, off, extent, ""), i, "") : i;
  }
  if (!off) off = i64c(E, 0);
  if (ok) {
    if (!inrange) inrange = LLVMConstInt(E->i1, 1, 0);
    off = LLVMBuildSelect(E->b, inrange, off, i64c(E, 0), "");
    *ok = inrange;
  }
  return LLVMBuildInBoundsGEP2(E->b, dtype_type(E, kb->type.dtype), E->base[buf], &off, 1, "");
}

static LLVMValueRef emit_load(Emit *E, const KExpr *e) {
  LLVMValueRef ok = NULL;
  LLVMValueRef addr = element(E, e->buf, e->idx, e->nidx, e->guarded ? &ok : NULL);
  LLVMTypeRef t = dtype_type(E, E->p->bufs[e->buf].type.dtype);
  LLVMValueRef v = LLVMBuildLoad2(E->b, t, addr, "");
  LLVMSetAlignment(v, 4);
  return ok ? LLVMBuildSelect(E->b, ok, v, LLVMConstNull(t), "") : v;
}

/* A run-time scalar: element `which` of the scalars buffer. */
static LLVMValueRef emit_scalar(Emit *E, int32_t which) {
  int32_t s = E->p->scalars;
  if (s < 0 || !E->base[s] || which < 0) KFAIL(E, "run-time scalar %d without the scalars buffer as an argument", which);
  LLVMValueRef off = i64c(E, which);
  LLVMValueRef addr = LLVMBuildInBoundsGEP2(E->b, E->f32, E->base[s], &off, 1, "");
  LLVMValueRef v = LLVMBuildLoad2(E->b, E->f32, addr, "");
  LLVMSetAlignment(v, 4);
  return v;
}

/* sign, neg, abs, ... on f32 (one or two operands). */
static LLVMValueRef float_op(Emit *E, Op op, LLVMValueRef a, LLVMValueRef b) {
  LLVMBuilderRef B = E->b;
  LLVMValueRef zero = LLVMConstReal(E->f32, 0);
  switch (op) {
  case OP_NEG: return fast(LLVMBuildFNeg(B, a, ""));
  case OP_EXP: return intrinsic1(E, "llvm.exp", a);
  case OP_LOG: return intrinsic1(E, "llvm.log", a);
  case OP_SQRT: return intrinsic1(E, "llvm.sqrt", a);
  case OP_TANH: return intrinsic1(E, "llvm.tanh", a); /* lowered to tanhf */
  case OP_ABS: return intrinsic1(E, "llvm.fabs", a);
  case OP_SIGN: { /* 1, -1, 0 (for +-0), NaN for NaN */
    LLVMValueRef nan = LLVMBuildFCmp(B, LLVMRealUNO, a, a, "");
    LLVMValueRef r = LLVMBuildSelect(B, nan, a, zero, "");
    r = LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOLT, a, zero, ""), LLVMConstReal(E->f32, -1), r, "");
    return LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOGT, a, zero, ""), LLVMConstReal(E->f32, 1), r, "");
  }
  case OP_ADD: return fast(LLVMBuildFAdd(B, a, b, ""));
  case OP_SUB: return fast(LLVMBuildFSub(B, a, b, ""));
  case OP_MUL: return fast(LLVMBuildFMul(B, a, b, ""));
  case OP_DIV: return fast(LLVMBuildFDiv(B, a, b, ""));
  case OP_POW: return intrinsic2(E, "llvm.pow", a, b);
  /* NaN propagates, like the interpreter (NumPy's maximum and minimum). */
  case OP_MAX: return intrinsic2(E, "llvm.maximum", a, b);
  case OP_MIN: return intrinsic2(E, "llvm.minimum", a, b);
  default: break;
  }
  nnc_internal_error(__FILE__, __LINE__, "cpu codegen: no f32 form of %s", ir_ops[op].name);
}

/* The same on integers: i32 data (wrapping) or i64 index arithmetic (nsw). */
static LLVMValueRef int_op(Emit *E, Op op, LLVMValueRef a, LLVMValueRef b, bool index) {
  LLVMBuilderRef B = E->b;
  LLVMTypeRef t = LLVMTypeOf(a);
  LLVMValueRef zero = LLVMConstInt(t, 0, 0);
  switch (op) {
  case OP_NEG: return LLVMBuildSub(B, zero, a, "");
  case OP_ABS: return intrinsic2(E, "llvm.abs", a, LLVMConstInt(E->i1, 0, 0)); /* abs(INT_MIN) wraps */
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
  case OP_MAX: return intrinsic2(E, "llvm.smax", a, b);
  case OP_MIN: return intrinsic2(E, "llvm.smin", a, b);
  default: break;
  }
  nnc_internal_error(__FILE__, __LINE__, "cpu codegen: no integer form of %s", ir_ops[op].name);
}

static LLVMValueRef compare(Emit *E, Op op, LLVMValueRef a, LLVMValueRef b) {
  if (LLVMTypeOf(a) == E->f32) {
    LLVMRealPredicate pr = op == OP_EQ ? LLVMRealOEQ : op == OP_NE ? LLVMRealUNE : op == OP_LT ? LLVMRealOLT
                         : op == OP_LE ? LLVMRealOLE : op == OP_GT ? LLVMRealOGT : LLVMRealOGE;
    return LLVMBuildFCmp(E->b, pr, a, b, "");
  }
  LLVMIntPredicate pi = op == OP_EQ ? LLVMIntEQ : op == OP_NE ? LLVMIntNE : op == OP_LT ? LLVMIntSLT
                      : op == OP_LE ? LLVMIntSLE : op == OP_GT ? LLVMIntSGT : LLVMIntSGE;
  return LLVMBuildICmp(E->b, pi, a, b, "");
}

static LLVMValueRef emit_op(Emit *E, const KExpr *e) {
  Op op = e->op;
  if ((unsigned)op >= OP_COUNT || !(ir_ops[op].flags & OPF_ELEMWISE))
    KFAIL(E, "op %d is not elementwise", (int)op);
  int arity = ir_ops[op].arity;
  if (!e->a || (arity > 1 && !e->b) || (arity > 2 && !e->c)) KFAIL(E, "%s lacks an operand", ir_ops[op].name);
  LLVMValueRef a = emit_expr(E, e->a);
  LLVMValueRef b = arity > 1 ? emit_expr(E, e->b) : NULL;
  LLVMValueRef c = arity > 2 ? emit_expr(E, e->c) : NULL;
  LLVMTypeRef want = natural(E, e);
  if (op == OP_CAST || op == OP_STOP_GRAD) return coerce(E, a, want);
  if (ir_ops[op].flags & OPF_CMP) {
    LLVMTypeRef t = join(E, LLVMTypeOf(a), LLVMTypeOf(b));
    LLVMValueRef bit = compare(E, op, coerce(E, a, t), coerce(E, b, t));
    return coerce(E, LLVMBuildUIToFP(E->b, bit, E->f32, ""), want);
  }
  if (op == OP_WHERE) /* where(cond, then, else) */
    return LLVMBuildSelect(E->b, nonzero(E, a), coerce(E, b, want), coerce(E, c, want), "");
  LLVMTypeRef t = ir_ops[op].flags & OPF_FLOAT ? E->f32 : want;
  a = coerce(E, a, t);
  if (b) b = coerce(E, b, t);
  LLVMValueRef r = t == E->f32 ? float_op(E, op, a, b) : int_op(E, op, a, b, t == E->i64);
  return coerce(E, r, want);
}

/* The value of e, in the type natural(e). */
static LLVMValueRef emit_expr(Emit *E, const KExpr *e) {
  const Kernel *k = E->k;
  LLVMValueRef v;
  switch (e->kind) {
  case KE_CONST:
    if (e->index) return i64c(E, (int64_t)e->value);
    if (e->dtype == DT_F32) return LLVMConstReal(E->f32, e->value);
    return LLVMConstInt(E->i32, (unsigned long long)(int64_t)e->value, 1);
  case KE_VAR:
    if (e->var < 0 || e->var >= k->nvars || !E->vars[e->var])
      KFAIL(E, "loop variable %d used outside its loop", e->var);
    v = E->vars[e->var];
    break;
  case KE_TEMP:
    if (e->temp < 0 || e->temp >= k->ntemps) KFAIL(E, "unknown temporary %d", e->temp);
    v = LLVMBuildLoad2(E->b, dtype_type(E, k->temp_types[e->temp]), E->temps[e->temp], "");
    break;
  case KE_LOAD: v = emit_load(E, e); break;
  case KE_SCALAR: v = emit_scalar(E, e->scalar); break;
  case KE_BATCH: v = E->batch; break;
  case KE_OP: return emit_op(E, e);
  default: KFAIL(E, "unknown expression kind %d", (int)e->kind);
  }
  return coerce(E, v, natural(E, e));
}

/* ---- loop metadata ------------------------------------------------------------------------ */

static bool mentions(const KExpr *e, int32_t v) {
  if (!e) return false;
  if (e->kind == KE_VAR) return e->var == v;
  if (e->kind == KE_LOAD) {
    for (int d = 0; d < e->nidx; d++)
      if (mentions(e->idx[d], v)) return true;
    return false;
  }
  return mentions(e->a, v) || mentions(e->b, v) || mentions(e->c, v);
}

/* The coefficient of loop variable v in index expression e; false when e
 * is not affine in v. */
static bool coefficient(const KExpr *e, int32_t v, int64_t *c) {
  int64_t x, y;
  if (!mentions(e, v)) {
    *c = 0;
    return true;
  }
  if (e->kind == KE_VAR) {
    *c = 1;
    return true;
  }
  if (e->kind != KE_OP) return false;
  switch (e->op) {
  case OP_ADD:
  case OP_SUB:
    if (!coefficient(e->a, v, &x) || !coefficient(e->b, v, &y)) return false;
    *c = e->op == OP_ADD ? x + y : x - y;
    return true;
  case OP_NEG:
    if (!coefficient(e->a, v, &x)) return false;
    *c = -x;
    return true;
  case OP_MUL: {
    const KExpr *k = e->a->kind == KE_CONST ? e->a : e->b && e->b->kind == KE_CONST ? e->b : NULL;
    if (!k || !coefficient(k == e->a ? e->b : e->a, v, &x)) return false;
    *c = x * (int64_t)k->value;
    return true;
  }
  default: return false;
  }
}

/* Whether buf[idx...] moves by 0 or 1 element per step of v. */
static bool unit_stride(const Emit *E, int32_t buf, KExpr *const *idx, int nidx, int32_t v) {
  const KBuffer *kb = &E->p->bufs[buf];
  int batched = kb->type.batched ? 1 : 0;
  int64_t stride = 0, row = 1;
  for (int d = nidx - 1; d >= 0; d--) {
    int64_t c;
    if (!coefficient(idx[d], v, &c)) return false;
    stride += c * row;
    if (d - batched >= 0) row *= kb->type.dims[d - batched];
  }
  return stride == 0 || stride == 1;
}

static bool expr_contiguous(const Emit *E, const KExpr *e, int32_t v) {
  if (!e) return true;
  if (e->kind == KE_OP && e->op == OP_TANH) return false; /* LLVM 19 cannot vectorise llvm.tanh */
  if (e->kind == KE_LOAD) {
    if (e->guarded && mentions(e, v)) return false;
    if (!unit_stride(E, e->buf, e->idx, e->nidx, v)) return false;
    for (int d = 0; d < e->nidx; d++)
      if (!expr_contiguous(E, e->idx[d], v)) return false;
    return true;
  }
  return expr_contiguous(E, e->a, v) && expr_contiguous(E, e->b, v) && expr_contiguous(E, e->c, v);
}

/* An innermost loop whose loads and stores are all contiguous or invariant
 * in its variable: worth forcing the vectoriser on. */
static bool contiguous_innermost(const Emit *E, const KStmt *loop) {
  for (uint32_t i = 0; i < loop->nbody; i++) {
    const KStmt *s = loop->body[i];
    if (s->kind == KS_LOOP) return false;
    if (!expr_contiguous(E, s->value, loop->var)) return false;
    if (s->kind == KS_STORE) {
      if (!unit_stride(E, s->buf, s->idx, s->nidx, loop->var)) return false;
      for (int d = 0; d < s->nidx; d++)
        if (!expr_contiguous(E, s->idx[d], loop->var)) return false;
    }
  }
  return true;
}

static LLVMMetadataRef md_prop(const Emit *E, const char *name, LLVMValueRef value) {
  LLVMMetadataRef ops[2] = {LLVMMDStringInContext2(E->ctx, name, strlen(name)), NULL};
  if (value) ops[1] = LLVMValueAsMetadata(value);
  return LLVMMDNodeInContext2(E->ctx, ops, value ? 2 : 1);
}

/* Attaches !llvm.loop (a distinct, self-referencing node) to the latch. */
static void loop_metadata(const Emit *E, LLVMValueRef latch_br, const KStmt *s) {
  LLVMMetadataRef ops[6];
  size_t n = 1;
  LLVMValueRef yes = LLVMConstInt(E->i1, 1, 0), no = LLVMConstInt(E->i1, 0, 0);
  if (s->sched.vector == 1) {
    ops[n++] = md_prop(E, "llvm.loop.vectorize.enable", no);
  } else if (s->sched.vector > 1) {
    ops[n++] = md_prop(E, "llvm.loop.vectorize.enable", yes);
    ops[n++] = md_prop(E, "llvm.loop.vectorize.width", LLVMConstInt(E->i32, (unsigned)s->sched.vector, 0));
  } else if (contiguous_innermost(E, s)) {
    ops[n++] = md_prop(E, "llvm.loop.vectorize.enable", yes);
  }
  if (s->sched.unroll == 1)
    ops[n++] = md_prop(E, "llvm.loop.unroll.disable", NULL);
  else if (s->sched.unroll > 1)
    ops[n++] = md_prop(E, "llvm.loop.unroll.count", LLVMConstInt(E->i32, (unsigned)s->sched.unroll, 0));
  if (n == 1) return;
  LLVMMetadataRef self = LLVMTemporaryMDNode(E->ctx, NULL, 0);
  ops[0] = self;
  LLVMMetadataRef id = LLVMMDNodeInContext2(E->ctx, ops, n);
  LLVMMetadataReplaceAllUsesWith(self, id); /* the node now refers to itself: distinct */
  LLVMSetMetadata(latch_br, E->md_loop, LLVMMetadataAsValue(E->ctx, id));
}

/* ---- statements --------------------------------------------------------------------------- */

static void emit_stmts(Emit *E, KStmt *const *body, uint32_t n);

/* for var in [lo, hi): body.  lo/hi NULL: [0, extent (* B when batched)). */
static void emit_loop(Emit *E, const KStmt *s, LLVMValueRef lo, LLVMValueRef hi) {
  if (s->var < 0 || s->var >= E->k->nvars) KFAIL(E, "unknown loop variable %d", s->var);
  if (E->vars[s->var]) KFAIL(E, "loop variable %d is already in scope", s->var);
  if (!lo) {
    lo = i64c(E, 0);
    hi = i64c(E, s->extent);
    if (s->batched) hi = LLVMBuildNSWMul(E->b, E->batch, hi, "");
  }
  char name[32];
  snprintf(name, sizeof name, "v%d", s->var);
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(E->b);
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "loop");
  LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "after");
  LLVMBuildCondBr(E->b, LLVMBuildICmp(E->b, LLVMIntSLT, lo, hi, ""), body, exit);

  LLVMPositionBuilderAtEnd(E->b, body);
  LLVMValueRef i = LLVMBuildPhi(E->b, E->i64, name);
  LLVMAddIncoming(i, &lo, &pre, 1);
  E->vars[s->var] = i;
  emit_stmts(E, s->body, s->nbody);
  LLVMValueRef next = LLVMBuildNSWAdd(E->b, i, i64c(E, 1), "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(E->b);
  LLVMValueRef br = LLVMBuildCondBr(E->b, LLVMBuildICmp(E->b, LLVMIntSLT, next, hi, ""), body, exit);
  LLVMAddIncoming(i, &next, &latch, 1);
  loop_metadata(E, br, s);
  E->vars[s->var] = NULL;
  LLVMMoveBasicBlockAfter(exit, latch);
  LLVMPositionBuilderAtEnd(E->b, exit);
}

static void emit_stmt(Emit *E, const KStmt *s) {
  switch (s->kind) {
  case KS_LOOP: emit_loop(E, s, NULL, NULL); return;
  case KS_LET:
  case KS_ASSIGN: {
    if (s->temp < 0 || s->temp >= E->k->ntemps || !s->value) KFAIL(E, "bad assignment to temporary %d", s->temp);
    LLVMValueRef v = coerce(E, emit_expr(E, s->value), dtype_type(E, E->k->temp_types[s->temp]));
    LLVMBuildStore(E->b, v, E->temps[s->temp]);
    return;
  }
  case KS_STORE: {
    if (!s->value) KFAIL(E, "store to buffer %d without a value", s->buf);
    LLVMValueRef addr = element(E, s->buf, s->idx, s->nidx, NULL);
    LLVMValueRef v = coerce(E, emit_expr(E, s->value), dtype_type(E, E->p->bufs[s->buf].type.dtype));
    LLVMSetAlignment(LLVMBuildStore(E->b, v, addr), 4);
    return;
  }
  }
  KFAIL(E, "unknown statement kind %d", (int)s->kind);
}

static void emit_stmts(Emit *E, KStmt *const *body, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) emit_stmt(E, body[i]);
}

/* ---- functions ------------------------------------------------------------------------------ */

/* NAME.body(ptr noalias buf..., i64 B, i64 begin, i64 end). */
static LLVMValueRef emit_body_fn(Emit *E) {
  const Kernel *k = E->k;
  uint32_t n = k->nargs;
  LLVMTypeRef *params = nnc_xmalloc(sizeof(LLVMTypeRef) * (n + 3));
  for (uint32_t i = 0; i < n; i++) params[i] = E->ptr;
  params[n] = params[n + 1] = params[n + 2] = E->i64;
  char *name = nnc_xmalloc(strlen(k->name) + 8);
  sprintf(name, "%s.body", k->name);
  LLVMValueRef fn = LLVMAddFunction(E->mod, name, LLVMFunctionType(E->voidt, params, n + 3, 0));
  free(name);
  free(params);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, attr(E, "alwaysinline", 0));
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, attr(E, "nounwind", 0));
  for (uint32_t i = 0; i < n; i++) {
    int32_t buf = k->args[i];
    if (buf < 0 || (uint32_t)buf >= E->p->nbufs) KFAIL(E, "argument %u is not a buffer", i);
    for (uint32_t j = 0; j < i; j++)
      if (k->args[j] == buf) KFAIL(E, "buffer %d is passed twice", buf);
    const KBuffer *kb = &E->p->bufs[buf];
    unsigned at = i + 1;
    LLVMAddAttributeAtIndex(fn, at, attr(E, "noalias", 0));
    LLVMAddAttributeAtIndex(fn, at, attr(E, "nocapture", 0));
    LLVMAddAttributeAtIndex(fn, at, attr(E, "nonnull", 0));
    LLVMAddAttributeAtIndex(fn, at, attr(E, "align", BUF_ALIGN));
    if (!kb->type.batched) LLVMAddAttributeAtIndex(fn, at, attr(E, "dereferenceable", (uint64_t)kbuf_elems(kb, 1) * 4));
    LLVMValueRef pv = LLVMGetParam(fn, i);
    LLVMSetValueName2(pv, kb->name, strlen(kb->name));
    E->base[buf] = pv;
  }
  E->batch = LLVMGetParam(fn, n);
  LLVMSetValueName2(E->batch, "B", 1);
  LLVMSetValueName2(LLVMGetParam(fn, n + 1), "begin", 5);
  LLVMSetValueName2(LLVMGetParam(fn, n + 2), "end", 3);
  return fn;
}

static void emit_kernel(Emit *E, const Kernel *k) {
  E->k = k;
  E->base = nnc_xcalloc(E->p->nbufs + 1, sizeof(LLVMValueRef));
  E->vars = nnc_xcalloc((size_t)k->nvars + 1, sizeof(LLVMValueRef));
  E->temps = nnc_xcalloc((size_t)k->ntemps + 1, sizeof(LLVMValueRef));
  E->fn = emit_body_fn(E);
  LLVMValueRef begin = LLVMGetParam(E->fn, k->nargs + 1), end = LLVMGetParam(E->fn, k->nargs + 2);

  LLVMPositionBuilderAtEnd(E->b, LLVMAppendBasicBlockInContext(E->ctx, E->fn, "entry"));
  for (int32_t t = 0; t < k->ntemps; t++) {
    char name[32];
    snprintf(name, sizeof name, "t%d", t);
    E->temps[t] = LLVMBuildAlloca(E->b, dtype_type(E, k->temp_types[t]), name);
  }
  if (k->nbody == 1 && k->body[0]->kind == KS_LOOP) {
    emit_loop(E, k->body[0], begin, end); /* the launch range: this call's slice */
  } else {
    /* Not one outer loop: the body runs once, in the call whose slice holds 0. */
    LLVMBasicBlockRef once = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "once");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "done");
    LLVMValueRef zero = i64c(E, 0);
    LLVMValueRef has0 = LLVMBuildAnd(E->b, LLVMBuildICmp(E->b, LLVMIntSLE, begin, zero, ""),
                                     LLVMBuildICmp(E->b, LLVMIntSGT, end, zero, ""), "");
    LLVMBuildCondBr(E->b, has0, once, done);
    LLVMPositionBuilderAtEnd(E->b, once);
    emit_stmts(E, k->body, k->nbody);
    LLVMBuildBr(E->b, done);
    LLVMMoveBasicBlockAfter(done, LLVMGetInsertBlock(E->b));
    LLVMPositionBuilderAtEnd(E->b, done);
  }
  LLVMBuildRetVoid(E->b);

  /* The ABI entry: void NAME(void **args, int64_t begin, int64_t end). */
  LLVMTypeRef params[3] = {E->ptr, E->i64, E->i64};
  LLVMValueRef abi = LLVMAddFunction(E->mod, k->name, LLVMFunctionType(E->voidt, params, 3, 0));
  LLVMAddAttributeAtIndex(abi, LLVMAttributeFunctionIndex, attr(E, "nounwind", 0));
  LLVMAddAttributeAtIndex(abi, 1, attr(E, "nocapture", 0));
  LLVMAddAttributeAtIndex(abi, 1, attr(E, "readonly", 0));
  LLVMValueRef args = LLVMGetParam(abi, 0);
  LLVMSetValueName2(args, "args", 4);
  LLVMSetValueName2(LLVMGetParam(abi, 1), "begin", 5);
  LLVMSetValueName2(LLVMGetParam(abi, 2), "end", 3);
  LLVMPositionBuilderAtEnd(E->b, LLVMAppendBasicBlockInContext(E->ctx, abi, "entry"));
  uint32_t n = k->nargs;
  LLVMValueRef *vals = nnc_xmalloc(sizeof(LLVMValueRef) * (n + 3));
  for (uint32_t i = 0; i <= n; i++) {
    LLVMValueRef slot = i64c(E, i);
    LLVMValueRef at = LLVMBuildInBoundsGEP2(E->b, E->ptr, args, &slot, 1, "");
    LLVMValueRef p = LLVMBuildLoad2(E->b, E->ptr, at, "");            /* &value of argument i */
    vals[i] = LLVMBuildLoad2(E->b, i < n ? E->ptr : E->i64, p, ""); /* the buffer, or B */
  }
  vals[n + 1] = LLVMGetParam(abi, 1);
  vals[n + 2] = LLVMGetParam(abi, 2);
  LLVMBuildCall2(E->b, LLVMGlobalGetValueType(E->fn), E->fn, vals, n + 3, "");
  LLVMBuildRetVoid(E->b);
  free(vals);
  free(E->base);
  free(E->vars);
  free(E->temps);
}

LLVMModuleRef cpu_emit_module(const KProgram *p, LLVMContextRef ctx) {
  const char *name = p->module && p->module->name ? p->module->name : "nnc";
  Emit E;
  memset(&E, 0, sizeof E);
  E.p = p;
  E.ctx = ctx;
  E.mod = LLVMModuleCreateWithNameInContext(name, ctx);
  E.b = LLVMCreateBuilderInContext(ctx);
  E.f32 = LLVMFloatTypeInContext(ctx);
  E.i32 = LLVMInt32TypeInContext(ctx);
  E.i64 = LLVMInt64TypeInContext(ctx);
  E.i1 = LLVMInt1TypeInContext(ctx);
  E.ptr = LLVMPointerTypeInContext(ctx, 0);
  E.voidt = LLVMVoidTypeInContext(ctx);
  E.md_loop = LLVMGetMDKindIDInContext(ctx, "llvm.loop", 9);
  for (uint32_t i = 0; i < p->nkernels; i++) emit_kernel(&E, &p->kernels[i]);
  LLVMDisposeBuilder(E.b);
  return E.mod;
}
