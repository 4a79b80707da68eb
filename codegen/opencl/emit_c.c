/* codegen/opencl/emit_c.c - kernel IR -> C-family text (see emit_c.h).
 *
 * One pass over each kernel's statement tree.  A kernel becomes a function
 * whose parameters are its buffers (`b<N>` for buffer %N; const when the
 * kernel only reads it) and B; loop variables print as `v<N>`, scalar
 * temporaries as `t<N>` (declared once at the top, so a `let` is an
 * assignment).  How the outermost loop is run is the dialect's:
 *
 *   NDRange          `const long v0 = get_global_id(0); if (v0 >= 64 * B) return;`
 *                    then the loop's body;
 *   NDRange, tiled   a grid-stride loop over 16 x 16 output tiles, the two
 *                    operands staged through local memory (emit_tiled): a
 *                    matmul, or a convolution as an implicit GEMM;
 *   single item      the loop itself, with the dialect's loop hints
 *                    (`#pragma unroll N` on small innermost loops, vendor
 *                    pipelining macros) and, where a matmul accumulates an
 *                    output row that fits, the row staged in a private
 *                    array (emit_staged).
 *
 * Values have one of three C types: float (f32 data), int (i32 data) and
 * the dialect's index type (index expressions, loop variables, B).  ex()
 * prints an expression converted to the type its user wants, with the
 * interpreter's semantics: f32 -> int truncates and saturates (NaN gives
 * 0), max/min propagate NaN, comparisons give 1.0f/0.0f, where() tests
 * c != 0, i32 arithmetic wraps, i32 division by 0 gives 0 (as the cpu
 * target).  Compound expressions are fully parenthesised.
 */
#include "codegen/opencl/emit_c.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef NNC_VERSION
#define NNC_VERSION "unknown"
#endif

enum { TILE = 16 }; /* output tiles are TILE x TILE: one work-group of 256 */

typedef enum { CT_F32, CT_I32, CT_IDX } CType;

typedef struct Emit {
  const KProgram *p;
  const CDialect *d;
  const NdSchedule *s;
  const Kernel *k;
  char *buf;
  size_t len, cap;
  int indent;
  int nstaged;          /* staged rows so far in this kernel (names s0, s1, ...) */
} Emit;

#define KFAIL(E, fmt, ...) \
  nnc_internal_error(__FILE__, __LINE__, "%s codegen: kernel %s: " fmt, (E)->d->name, (E)->k->name, __VA_ARGS__)

/* ---- text -------------------------------------------------------------------------------- */

static void put(Emit *E, const char *s) {
  size_t n = strlen(s);
  if (E->len + n + 1 > E->cap) {
    while (E->len + n + 1 > E->cap) E->cap = E->cap ? 2 * E->cap : 4096;
    E->buf = nnc_xrealloc(E->buf, E->cap);
  }
  memcpy(E->buf + E->len, s, n + 1);
  E->len += n;
}

static void putf(Emit *E, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(Emit *E, const char *fmt, ...) {
  char small[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < (int)sizeof small) {
    put(E, small);
    return;
  }
  char *big = nnc_xmalloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  put(E, big);
  free(big);
}

static void tab(Emit *E) {
  for (int i = 0; i < E->indent; i++) put(E, "  ");
}

/* ---- literals and types ---------------------------------------------------------------------- */

static const char *ctype(const Emit *E, CType t) { return t == CT_F32 ? "float" : t == CT_I32 ? "int" : E->d->index_type; }

static CType natural(const KExpr *e) { return e->index ? CT_IDX : e->dtype == DT_F32 ? CT_F32 : CT_I32; }
static CType dtype_ct(DType dt) { return dt == DT_F32 ? CT_F32 : CT_I32; }

static void float_lit(Emit *E, double v) {
  float f = (float)v;
  if (isnan(f)) {
    put(E, "NAN");
    return;
  }
  if (isinf(f)) {
    put(E, f > 0 ? "INFINITY" : "(-INFINITY)");
    return;
  }
  char t[48];
  snprintf(t, sizeof t, "%.9g", (double)f);
  if (!strpbrk(t, ".eE")) strcat(t, ".0");
  putf(E, f < 0 || (f == 0 && signbit(f)) ? "(%sf)" : "%sf", t);
}

static void int_lit(Emit *E, int64_t v, bool index) {
  if (index && (v > INT32_MAX || v < INT32_MIN)) {
    if (!E->d->has_long) KFAIL(E, "index constant %lld does not fit in 32 bits", (long long)v);
    putf(E, v < 0 ? "(%lldL)" : "%lldL", (long long)v);
  } else if (v == INT32_MIN) {
    put(E, "(-2147483647 - 1)");
  } else {
    putf(E, v < 0 ? "(%lld)" : "%lld", (long long)v);
  }
}

/* An extent: "64", "B" or "64 * B". */
static void extent(Emit *E, int64_t ext, bool batched) {
  if (!batched) int_lit(E, ext, true);
  else if (ext == 1) put(E, "B");
  else {
    int_lit(E, ext, true);
    put(E, " * B");
  }
}

/* ---- expressions ------------------------------------------------------------------------------- */

static void ex(Emit *E, const KExpr *e, CType want);

/* q - q / k * k, the remainder lowering spells out: printed q % k. */
static bool is_remainder(const KExpr *e) {
  const KExpr *m = e->b, *q = e->a;
  return e->op == OP_SUB && m->kind == KE_OP && m->op == OP_MUL && m->a->kind == KE_OP && m->a->op == OP_DIV &&
         m->b->kind == KE_CONST && m->a->b->kind == KE_CONST && m->a->b->value == m->b->value && m->b->value > 0 &&
         kexpr_equal(m->a->a, q);
}

/* x / k with a constant k > 0 (k == 1: x itself): x, else NULL. */
static const KExpr *div_base(const KExpr *x, int64_t k) {
  if (k == 1) return x;
  if (x->kind == KE_OP && x->op == OP_DIV && x->b->kind == KE_CONST && x->b->value == (double)k) return x->a;
  return NULL;
}

/* Is buf[idx...] the mixed-radix decomposition of one index g (what
 * collapsing a nest over the buffer's own shape produces)?  Then its
 * offset is g itself. */
static const KExpr *flat_index(const KBuffer *kb, KExpr *const *idx, int nidx) {
  int batched = kb->type.batched ? 1 : 0;
  const KExpr *base = NULL;
  int64_t stride = 1;
  for (int d = nidx - 1; d >= 0; d--) {
    const KExpr *x = idx[d];
    if (!x) return NULL;
    if (d > 0) { /* (g / stride) % dim */
      int64_t dim = kb->type.dims[d - batched];
      if (x->kind != KE_OP || !is_remainder(x) || x->b->b->value != (double)dim) return NULL;
      x = x->a;
    }
    const KExpr *b = div_base(x, stride);
    if (!b || (base && !kexpr_equal(b, base))) return NULL;
    base = b;
    if (d > 0) stride *= kb->type.dims[d - batched];
  }
  return base;
}

/* The row-major offset of buf[idx...]. */
static void offset(Emit *E, int32_t buf, KExpr *const *idx, int nidx) {
  const KBuffer *kb = &E->p->bufs[buf];
  int batched = kb->type.batched ? 1 : 0;
  if (nidx != kb->type.rank + batched) KFAIL(E, "buffer %s takes %d indices, found %d", kb->name, kb->type.rank + batched, nidx);
  if (nidx == 0) {
    put(E, "0");
    return;
  }
  const KExpr *flat = nidx > 1 ? flat_index(kb, idx, nidx) : NULL;
  if (flat) {
    ex(E, flat, CT_IDX);
    return;
  }
  for (int d = 0; d < nidx - 2; d++) put(E, "(");
  for (int d = 0; d < nidx; d++) {
    if (!idx[d]) KFAIL(E, "index %d of buffer %s is missing", d, kb->name);
    if (d > 0) putf(E, " * %lld + ", (long long)kb->type.dims[d - batched]);
    ex(E, idx[d], CT_IDX);
    if (d > 0 && d < nidx - 1) put(E, ")");
  }
}

static bool is_arg(const Kernel *k, int32_t buf) {
  for (uint32_t i = 0; i < k->nargs; i++)
    if (k->args[i] == buf) return true;
  return false;
}

static void load(Emit *E, const KExpr *e) {
  if (e->buf < 0 || (uint32_t)e->buf >= E->p->nbufs || !is_arg(E->k, e->buf))
    KFAIL(E, "buffer %d is not one of its arguments", e->buf);
  const KBuffer *kb = &E->p->bufs[e->buf];
  if (e->guarded) { /* out-of-range indices read 0 */
    put(E, "((");
    int batched = kb->type.batched ? 1 : 0;
    for (int d = 0; d < e->nidx; d++) {
      if (d) put(E, " && ");
      put(E, "0 <= ");
      ex(E, e->idx[d], CT_IDX);
      put(E, " && ");
      ex(E, e->idx[d], CT_IDX);
      put(E, " < ");
      extent(E, batched && d == 0 ? 1 : kb->type.dims[d - batched], batched && d == 0);
    }
    if (!e->nidx) put(E, "1");
    putf(E, ") ? b%d[", e->buf);
    offset(E, e->buf, e->idx, e->nidx);
    put(E, kb->type.dtype == DT_F32 ? "] : 0.0f)" : "] : 0)");
    return;
  }
  putf(E, "b%d[", e->buf);
  offset(E, e->buf, e->idx, e->nidx);
  put(E, "]");
}

/* The infix operator of op (ir/ops.def), which must have one. */
static const char *binop(const Emit *E, Op op) {
  if (!ir_ops[op].infix) KFAIL(E, "%s has no infix form", ir_ops[op].name);
  return ir_ops[op].infix;
}

/* f(a) or f(a, b) with operands of type t. */
static void call(Emit *E, const char *f, const KExpr *a, const KExpr *b, CType t) {
  putf(E, "%s(", f);
  ex(E, a, t);
  if (b) {
    put(E, ", ");
    ex(E, b, t);
  }
  put(E, ")");
}

/* (a op b) with operands of type t. */
static void infix(Emit *E, const char *op, const KExpr *a, const KExpr *b, CType t) {
  put(E, "(");
  ex(E, a, t);
  putf(E, " %s ", op);
  ex(E, b, t);
  put(E, ")");
}

/* f32 data: ir/ops.def's C math function with the dialect's suffix, an
 * operator, or a helper of the prelude. */
static void float_op(Emit *E, const KExpr *e) {
  const OpInfo *o = &ir_ops[e->op];
  if (o->c_math) {
    char name[64];
    snprintf(name, sizeof name, "%s%s", o->c_math, E->d->math_suffix);
    call(E, name, e->a, o->arity > 1 ? e->b : NULL, CT_F32);
    return;
  }
  if (o->infix) {
    infix(E, o->infix, e->a, e->b, CT_F32);
    return;
  }
  switch (e->op) {
  case OP_NEG: put(E, "(-"); ex(E, e->a, CT_F32); put(E, ")"); return;
  case OP_SIGN: call(E, "nnc_fsign", e->a, NULL, CT_F32); return;
  case OP_MAX: call(E, "nnc_fmax", e->a, e->b, CT_F32); return;
  case OP_MIN: call(E, "nnc_fmin", e->a, e->b, CT_F32); return;
  default: KFAIL(E, "no f32 form of %s", o->name);
  }
}

/* i32 data: wrapping arithmetic through the 32-bit unsigned type. */
static void int_op(Emit *E, const KExpr *e) {
  const char *u = E->d->uint_type;
  switch (e->op) {
  case OP_NEG: putf(E, "((int)((%s)0 - (%s)", u, u); ex(E, e->a, CT_I32); put(E, "))"); return;
  case OP_ADD: case OP_SUB: case OP_MUL:
    putf(E, "((int)((%s)", u);
    ex(E, e->a, CT_I32);
    putf(E, " %s (%s)", binop(E, e->op), u);
    ex(E, e->b, CT_I32);
    put(E, "))");
    return;
  case OP_DIV: call(E, "nnc_idiv", e->a, e->b, CT_I32); return;
  case OP_ABS: call(E, "nnc_iabs", e->a, NULL, CT_I32); return;
  case OP_MAX: call(E, "nnc_imax", e->a, e->b, CT_I32); return;
  case OP_MIN: call(E, "nnc_imin", e->a, e->b, CT_I32); return;
  case OP_SIGN: put(E, "(("); ex(E, e->a, CT_I32); put(E, " > 0) - ("); ex(E, e->a, CT_I32); put(E, " < 0))"); return;
  default: KFAIL(E, "no i32 form of %s", ir_ops[e->op].name);
  }
}

/* Index arithmetic (non-negative in practice; divisors are positive constants). */
static void index_op(Emit *E, const KExpr *e) {
  if (is_remainder(e)) {
    infix(E, "%", e->a, e->b->b, CT_IDX);
    return;
  }
  switch (e->op) {
  case OP_NEG: put(E, "(-"); ex(E, e->a, CT_IDX); put(E, ")"); return;
  case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: infix(E, binop(E, e->op), e->a, e->b, CT_IDX); return;
  case OP_ABS: put(E, "("); ex(E, e->a, CT_IDX); put(E, " < 0 ? -"); ex(E, e->a, CT_IDX); put(E, " : "); ex(E, e->a, CT_IDX); put(E, ")"); return;
  case OP_SIGN: putf(E, "((%s)(", E->d->index_type); ex(E, e->a, CT_IDX); put(E, " > 0) - ("); ex(E, e->a, CT_IDX); put(E, " < 0))"); return;
  case OP_MAX: case OP_MIN:
    put(E, "(");
    ex(E, e->a, CT_IDX);
    put(E, e->op == OP_MAX ? " > " : " < ");
    ex(E, e->b, CT_IDX);
    put(E, " ? ");
    ex(E, e->a, CT_IDX);
    put(E, " : ");
    ex(E, e->b, CT_IDX);
    put(E, ")");
    return;
  default: KFAIL(E, "no index form of %s", ir_ops[e->op].name);
  }
}

/* e in its natural type. */
static void ex_natural(Emit *E, const KExpr *e) {
  CType nat = natural(e);
  switch (e->kind) {
  case KE_CONST:
    if (nat == CT_F32) float_lit(E, e->value);
    else int_lit(E, (int64_t)e->value, nat == CT_IDX);
    return;
  case KE_VAR:
    if (e->var < 0 || e->var >= E->k->nvars) KFAIL(E, "unknown loop variable %d", e->var);
    putf(E, "v%d", e->var);
    return;
  case KE_TEMP:
    if (e->temp < 0 || e->temp >= E->k->ntemps) KFAIL(E, "unknown temporary %d", e->temp);
    putf(E, "t%d", e->temp);
    return;
  case KE_SCALAR:
    if (E->p->scalars < 0 || !is_arg(E->k, E->p->scalars) || e->scalar < 0)
      KFAIL(E, "run-time scalar %d without the scalars buffer as an argument", e->scalar);
    putf(E, "b%d[%d]", E->p->scalars, e->scalar);
    return;
  case KE_BATCH: put(E, "B"); return;
  case KE_LOAD: load(E, e); return;
  case KE_OP: break;
  }
  Op op = e->op;
  if ((unsigned)op >= OP_COUNT || !(ir_ops[op].flags & OPF_ELEMWISE)) KFAIL(E, "op %d is not elementwise", (int)op);
  int arity = ir_ops[op].arity;
  if (!e->a || (arity > 1 && !e->b) || (arity > 2 && !e->c)) KFAIL(E, "%s lacks an operand", ir_ops[op].name);
  if (op == OP_CAST || op == OP_STOP_GRAD) {
    ex(E, e->a, nat);
    return;
  }
  if (ir_ops[op].flags & OPF_CMP) { /* the operands in their common type; the result 1 or 0 */
    CType a = natural(e->a), b = natural(e->b);
    CType t = a == CT_F32 || b == CT_F32 ? CT_F32 : a == CT_IDX || b == CT_IDX ? CT_IDX : CT_I32;
    putf(E, "((%s)", ctype(E, nat));
    infix(E, binop(E, op), e->a, e->b, t);
    put(E, ")");
    return;
  }
  if (op == OP_RANDOM) {
    put(E, "nnc_random(");
    ex(E, e->a, CT_I32);
    put(E, ", ");
    ex(E, e->b, CT_I32);
    put(E, ", ");
    ex(E, e->c, CT_IDX);
    put(E, ")");
    return;
  }
  if (op == OP_WHERE) { /* a nonzero (NaN counts as nonzero, as in C) */
    put(E, "(");
    ex(E, e->a, natural(e->a));
    put(E, natural(e->a) == CT_F32 ? " != 0.0f ? " : " != 0 ? ");
    ex(E, e->b, nat);
    put(E, " : ");
    ex(E, e->c, nat);
    put(E, ")");
    return;
  }
  CType t = ir_ops[op].flags & OPF_FLOAT ? CT_F32 : nat;
  if (t != nat) { /* a float op wanted as an integer: convert its f32 result */
    KExpr tmp = *e;
    tmp.index = false;
    tmp.dtype = DT_F32;
    ex(E, &tmp, nat);
    return;
  }
  if (t == CT_F32) float_op(E, e);
  else if (t == CT_I32) int_op(E, e);
  else index_op(E, e);
}

/* e converted to `want` with the interpreter's cast rules. */
static void ex(Emit *E, const KExpr *e, CType want) {
  if (!e) KFAIL(E, "%s", "missing expression");
  CType nat = natural(e);
  if (nat == want || (nat != CT_F32 && want != CT_F32 && !strcmp(ctype(E, nat), ctype(E, want)))) {
    ex_natural(E, e);
    return;
  }
  if (nat == CT_F32) { /* to an integer: toward zero, saturating, NaN -> 0 */
    if (want == CT_IDX && strcmp(E->d->index_type, "int")) putf(E, "((%s)nnc_f2i(", E->d->index_type);
    else put(E, "(nnc_f2i(");
    ex_natural(E, e);
    put(E, "))");
    return;
  }
  putf(E, "((%s)", ctype(E, want));
  ex_natural(E, e);
  put(E, ")");
}

/* ---- statements ---------------------------------------------------------------------------------- */

static void stmt(Emit *E, const KStmt *s);

static bool has_loop(const KStmt *s) {
  for (uint32_t i = 0; i < s->nbody; i++)
    if (s->body[i]->kind == KS_LOOP || s->body[i]->kind == KS_CONTRACT) return true; /* a contraction is loops */
  return false;
}

/* The dialect's hint lines before a loop: unroll small innermost loops,
 * pipeline the other innermost ones, ivdep where iterations are independent. */
static void loop_hints(Emit *E, const KStmt *s) {
  const CDialect *d = E->d;
  bool innermost = !has_loop(s);
  int unroll = s->sched.unroll > 0 ? s->sched.unroll : 0;
  if (!unroll && innermost && !s->batched && s->extent > 1 && s->extent <= d->unroll_max) unroll = (int)s->extent;
  if (d->ivdep && ((s->flags & KL_PARALLEL) || (!(s->flags & KL_REDUCE) && kloop_independent(E->k, s)))) {
    tab(E);
    putf(E, "%s\n", d->ivdep);
  }
  if (unroll > 1 && d->unroll_fmt) {
    tab(E);
    putf(E, d->unroll_fmt, unroll);
    put(E, "\n");
  } else if (innermost && d->pipeline) {
    tab(E);
    putf(E, "%s\n", d->pipeline);
  }
}

static void loop_open(Emit *E, const KStmt *s, int32_t var) {
  loop_hints(E, s);
  tab(E);
  putf(E, "for (%s v%d = 0; v%d < ", E->d->index_type, var, var);
  extent(E, s->extent, s->batched);
  putf(E, "; v%d++) {\n", var);
  E->indent++;
}

static void loop_close(Emit *E) {
  E->indent--;
  tab(E);
  put(E, "}\n");
}

static void store(Emit *E, const KStmt *s) {
  if (s->buf < 0 || (uint32_t)s->buf >= E->p->nbufs || !is_arg(E->k, s->buf))
    KFAIL(E, "store into buffer %d, not one of its arguments", s->buf);
  tab(E);
  putf(E, "b%d[", s->buf);
  offset(E, s->buf, s->idx, s->nidx);
  put(E, "] = ");
  ex(E, s->value, dtype_ct(E->p->bufs[s->buf].type.dtype));
  put(E, ";\n");
}

/* A loop over a contraction's axis, with the hints of a loop that is
 * innermost or holds another loop. */
static void axis_open(Emit *E, const KAxis *x, bool reduce, bool innermost) {
  static KStmt inner_loop = {.kind = KS_LOOP};
  static KStmt *const inner[1] = {&inner_loop};
  KStmt l;
  memset(&l, 0, sizeof l);
  l.kind = KS_LOOP;
  l.var = x->var;
  l.extent = x->extent;
  l.batched = x->batched;
  l.flags = reduce ? KL_REDUCE : 0;
  l.body = innermost ? NULL : (KStmt **)inner;
  l.nbody = innermost ? 0 : 1;
  loop_open(E, &l, x->var);
}

/* t combine= a * b, as C: t = t + term, or nnc_fmax / nnc_fmin. */
static void combine(Emit *E, const KStmt *c, const char *acc) {
  tab(E);
  bool f = c->a->dtype == DT_F32;
  const char *fn = c->combine == OP_ADD ? NULL : c->combine == OP_MAX ? (f ? "nnc_fmax" : "nnc_imax")
                                                                      : (f ? "nnc_fmin" : "nnc_imin");
  CType t = dtype_ct(c->a->dtype);
  putf(E, "%s = %s(%s%s", acc, fn ? fn : "", acc, fn ? ", " : " + ");
  if (c->b) {
    put(E, "(");
    ex(E, c->a, t);
    put(E, ") * (");
    ex(E, c->b, t);
    put(E, ")");
  } else {
    ex(E, c->a, t);
  }
  put(E, fn ? ");\n" : ");\n");
}

static void identity(Emit *E, const KStmt *c) {
  double v = kcombine_identity(c->combine);
  if (c->a->dtype == DT_I32) put(E, v > 0 ? "2147483647" : v < 0 ? "(-2147483647 - 1)" : "0");
  else put(E, v > 0 ? "INFINITY" : v < 0 ? "-INFINITY" : "0.0f");
}

/* A contraction's reduction into its temporary, then its store. */
static void contract_point(Emit *E, const KStmt *c) {
  char acc[24];
  snprintf(acc, sizeof acc, "t%d", c->temp);
  tab(E), putf(E, "%s = ", acc), identity(E, c), put(E, ";\n");
  int n = c->nfree + c->nred;
  for (int i = c->nfree; i < n; i++) axis_open(E, &c->axes[i], true, i == n - 1);
  combine(E, c, acc);
  for (int i = 0; i < c->nred; i++) loop_close(E);
  if (c->buf >= 0) store(E, c);
}

/* A contraction as loops: one reduction per output (dot order), or, on a
 * single work-item dialect with a short enough last free axis, that row of
 * sums kept in a private array (accumulated by the reduction loops, then
 * written out once) so the pipeline streams the factors. */
static void emit_contract(Emit *E, const KStmt *c) {
  int nf = c->nfree;
  const KAxis *last = nf ? &c->axes[nf - 1] : NULL;
  bool staged = E->d->stage_max > 0 && last && !last->batched && last->extent <= E->d->stage_max &&
                kstmt_is_product(c);
  for (int i = 0; i < nf - (staged ? 1 : 0); i++) axis_open(E, &c->axes[i], false, false);
  if (!staged) {
    contract_point(E, c);
  } else {
    int sn = E->nstaged++;
    char acc[48];
    snprintf(acc, sizeof acc, "s%d[v%d]", sn, last->var);
    tab(E), putf(E, "%s s%d[%lld]; /* the row of b%d being accumulated */\n",
                 c->a->dtype == DT_F32 ? "float" : "int", sn, (long long)last->extent, c->buf);
    axis_open(E, last, false, true);
    tab(E), putf(E, "%s = ", acc), identity(E, c), put(E, ";\n");
    loop_close(E);
    for (int i = nf; i < nf + c->nred; i++) axis_open(E, &c->axes[i], true, false);
    axis_open(E, last, false, true);
    combine(E, c, acc);
    loop_close(E);
    for (int i = 0; i < c->nred; i++) loop_close(E);
    axis_open(E, last, false, true);
    tab(E), putf(E, "t%d = %s;\n", c->temp, acc);
    store(E, c);
    loop_close(E);
  }
  for (int i = 0; i < nf - (staged ? 1 : 0); i++) loop_close(E);
}

static void stmt(Emit *E, const KStmt *s) {
  switch (s->kind) {
  case KS_LOOP: {
    if (s->var < 0 || s->var >= E->k->nvars) KFAIL(E, "loop over unknown variable %d", s->var);
    loop_open(E, s, s->var);
    for (uint32_t i = 0; i < s->nbody; i++) stmt(E, s->body[i]);
    loop_close(E);
    return;
  }
  case KS_LET:
  case KS_ASSIGN:
    if (s->temp < 0 || s->temp >= E->k->ntemps) KFAIL(E, "unknown temporary %d", s->temp);
    tab(E);
    putf(E, "t%d = ", s->temp);
    ex(E, s->value, dtype_ct(E->k->temp_types[s->temp]));
    put(E, ";\n");
    return;
  case KS_STORE: store(E, s); return;
  case KS_CONTRACT: emit_contract(E, s); return;
  }
  KFAIL(E, "unknown statement kind %d", (int)s->kind);
}

/* ---- kernels ---------------------------------------------------------------------------------- */

static void signature(Emit *E, const char *attr) {
  const Kernel *k = E->k;
  const CDialect *d = E->d;
  putf(E, "/* %s: %s\n", k->name, k->what ? k->what : "");
  for (uint32_t i = 0; i < k->nargs; i++) {
    const KBuffer *b = &E->p->bufs[k->args[i]];
    char ty[96];
    type_str(&b->type, ty, sizeof ty);
    putf(E, " *   b%d = %s %s%s\n", k->args[i], b->name, ty, kernel_writes(k, k->args[i]) ? " (written)" : "");
  }
  put(E, " */\n");
  if (d->kernel_qual[0]) putf(E, "%s ", d->kernel_qual);
  if (attr && attr[0]) putf(E, "%s\n", attr);
  putf(E, "void %s(", k->name);
  for (uint32_t i = 0; i < k->nargs; i++) {
    int32_t b = k->args[i];
    const char *ty = E->p->bufs[b].type.dtype == DT_F32 ? "float" : "int";
    putf(E, "%s%s%s%s *%s%sb%d", i ? ", " : "", d->global_qual, kernel_writes(k, b) ? "" : "const ", ty,
         d->restrict_kw, d->restrict_kw[0] ? " " : "", b);
  }
  putf(E, "%s%s B) {\n", k->nargs ? ", " : "", d->batch_type);
  E->indent = 1;
}

static void declare_temps(Emit *E) {
  for (int32_t t = 0; t < E->k->ntemps; t++) {
    tab(E);
    putf(E, "%s t%d;\n", E->k->temp_types[t] == DT_F32 ? "float" : "int", t);
  }
}

static const KStmt *launch_loop(const Kernel *k) {
  return k->nbody == 1 && k->body[0]->kind == KS_LOOP ? k->body[0] : NULL;
}

/* One work-item per iteration of the outermost loop. */
static void emit_ndrange(Emit *E) {
  const Kernel *k = E->k;
  const KStmt *l = launch_loop(k);
  signature(E, E->d->kernel_attr);
  const char *it = E->d->index_type;
  if (l) {
    tab(E);
    putf(E, "const %s v%d = (%s)%s;\n", it, l->var, it, E->d->global_id);
    tab(E);
    putf(E, "if (v%d >= ", l->var);
    extent(E, l->extent, l->batched);
    put(E, ") return;\n");
  } else {
    tab(E);
    putf(E, "if (%s != 0) return; /* not a loop: runs once */\n", E->d->global_id);
  }
  declare_temps(E);
  const KStmt *const *body = l ? (const KStmt *const *)l->body : (const KStmt *const *)k->body;
  uint32_t n = l ? l->nbody : k->nbody;
  for (uint32_t i = 0; i < n; i++) stmt(E, body[i]);
  put(E, "}\n");
}

/* The whole nest in one work-item. */
static void emit_single(Emit *E) {
  signature(E, E->d->kernel_attr);
  declare_temps(E);
  for (uint32_t i = 0; i < E->k->nbody; i++) stmt(E, E->k->body[i]);
  put(E, "}\n");
}

/* The size of a tile group, as C: a constant, or one times B. */
static void group_extent(Emit *E, const TileGroup *t) {
  int64_t n = 1;
  for (int i = 0; i < t->n; i++) n *= t->ax[i].extent;
  extent(E, n, tile_group_batched(t));
}

/* Declares the loop variables of an implicit GEMM's groups from their
 * indices idx[] (NULL: that group is not bound), row-major over each
 * group's axes; only those e mentions, or all when e is NULL. */
static void bind_groups(Emit *E, const IgemmPlan *ig, const char *const idx[TG_NGROUPS], const KExpr *e) {
  const char *it = E->d->index_type;
  for (int gi = 0; gi < TG_NGROUPS; gi++) {
    const TileGroup *t = &ig->tg[gi];
    int64_t stride = 1;
    for (int i = t->n - 1; i >= 0 && idx[gi]; i--) {
      const TileAxis *a = &t->ax[i];
      if (a->scale != 1) KFAIL(E, "%s", "an implicit GEMM's axis with a scale");
      if (!e || kexpr_mentions(e, a->var)) {
        tab(E), putf(E, "const %s v%d = %s", it, a->var, idx[gi]);
        if (stride != 1) putf(E, " / %lld", (long long)stride);
        if (i > 0) putf(E, " %% %lld", (long long)a->extent);
        put(E, ";\n");
      }
      stride *= a->extent;
    }
  }
}

/* One operand's block of a step along k into local memory: x's TILE rows x
 * tk (is_x) or y's tk x TILE columns, 0 out of range.  A matmul's x is
 * evaluated with g = row * cols (it does not depend on the column), y with
 * g = col (it does not depend on the row); an implicit GEMM's factors at
 * their groups' variables decoded from the row (column), k and group. */
static void stage_block(Emit *E, const NdKernelPlan *kp, bool is_x) {
  const CDialect *d = E->d;
  const KStmt *c = kp->contract;
  const char *it = d->index_type;
  int tk = E->s->tile_k, gs = d->group_size, g = launch_loop(E->k)->var;
  const KExpr *f = is_x == !kp->swap ? c->a : c->b;
  if (kp->igemm) f = is_x ? kp->ig.x : kp->ig.y;
  char kv[32];
  if (kp->igemm)
    snprintf(kv, sizeof kv, "nnc_k");
  else
    snprintf(kv, sizeof kv, "v%d", c->axes[0].var);
  tab(E), putf(E, "for (int nnc_e = nnc_lid; nnc_e < %d; nnc_e += %d) {\n", TILE * tk, gs);
  E->indent++;
  if (is_x)
    tab(E), putf(E, "const %s nnc_i = nnc_row0 + nnc_e / %d, %s = nnc_k0 + nnc_e %% %d;\n", it, tk, kv, tk);
  else
    tab(E), putf(E, "const %s nnc_j = nnc_col0 + nnc_e %% %d, %s = nnc_k0 + nnc_e / %d;\n", it, TILE, kv, TILE);
  tab(E), put(E, "float nnc_v = 0.0f;\n");
  tab(E), putf(E, "if (%s < nnc_%s && %s < nnc_depth) {\n", is_x ? "nnc_i" : "nnc_j", is_x ? "rows" : "cols", kv);
  E->indent++;
  if (kp->igemm) {
    const char *idx[TG_NGROUPS] = {is_x ? "nnc_i" : NULL, is_x ? NULL : "nnc_j", "nnc_k", "nnc_grp"};
    bind_groups(E, &kp->ig, idx, f);
  } else if (is_x) {
    tab(E), putf(E, "const %s v%d = nnc_i * nnc_cols;\n", it, g);
  } else {
    tab(E), putf(E, "const %s v%d = nnc_j;\n", it, g);
  }
  tab(E), put(E, "nnc_v = ");
  ex(E, f, CT_F32);
  put(E, ";\n");
  E->indent--;
  tab(E), put(E, "}\n");
  tab(E), putf(E, "nnc_t%s[nnc_e] = nnc_v;\n", is_x ? "x" : "y");
  E->indent--;
  tab(E), put(E, "}\n");
}

/* A product through local memory: a collapsed dot product (schedule.c,
 * match_tile: the launch loop g over rows x cols outputs, body `contract
 * ... with t = sum k of x * y; stores`) or an implicit GEMM (igemm.h: the
 * contraction with its free axes, rows, columns, k and a group each some of
 * its variables).  Work-groups step through TILE x TILE output tiles (of
 * one group); per step of tk along k, the group loads a TILE x tk block of
 * x (rows) and a tk x TILE block of y (columns) into local memory, then
 * each work-item adds tk products in the reduction's order. */
static void emit_tiled(Emit *E, const NdKernelPlan *kp) {
  const Kernel *k = E->k;
  const CDialect *d = E->d;
  const KStmt *l = launch_loop(k);
  const KStmt *c = kp->contract;
  const IgemmPlan *ig = kp->igemm ? &kp->ig : NULL;
  if (!l || l->nbody < 1 || l->body[0] != c) KFAIL(E, "%s", "the tiled dot product lost its shape");
  int tk = E->s->tile_k, gs = d->group_size;
  if (gs != TILE * TILE) KFAIL(E, "tiles need work-groups of %d, the dialect launches %d", TILE * TILE, gs);
  char attr[160];
  snprintf(attr, sizeof attr, "__attribute__((reqd_work_group_size(%d, 1, 1)))", gs);
  signature(E, attr);
  const char *it = d->index_type;
  bool grouped = ig && ig->tg[TG_GROUP].n;
  int g = l->var;
  tab(E), putf(E, "%sfloat nnc_tx[%d]; /* x: %d output rows x %d steps of the reduction */\n", d->local_qual, TILE * tk, TILE, tk);
  tab(E), putf(E, "%sfloat nnc_ty[%d]; /* y: %d steps x %d output columns */\n", d->local_qual, tk * TILE, tk, TILE);
  if (ig) {
    tab(E), putf(E, "const %s nnc_cols = ", it);
    group_extent(E, &ig->tg[TG_COL]);
    put(E, ", nnc_rows = ");
    group_extent(E, &ig->tg[TG_ROW]);
    put(E, ", nnc_depth = ");
    group_extent(E, &ig->tg[TG_K]);
  } else {
    tab(E), putf(E, "const %s nnc_cols = %lld, nnc_rows = (", it, (long long)kp->inner);
    extent(E, l->extent, l->batched);
    putf(E, ") / %lld, nnc_depth = ", (long long)kp->inner);
    extent(E, c->axes[0].extent, c->axes[0].batched);
  }
  put(E, ";\n");
  tab(E), putf(E, "const %s nnc_tcols = (nnc_cols + %d) / %d, nnc_tiles = (nnc_rows + %d) / %d * nnc_tcols", it,
               TILE - 1, TILE, TILE - 1, TILE);
  if (grouped) { /* the tiles of one group, then of all */
    put(E, ", nnc_gtiles = nnc_tiles * ");
    group_extent(E, &ig->tg[TG_GROUP]);
  }
  put(E, ";\n");
  tab(E), putf(E, "const int nnc_lid = (int)%s, nnc_r = nnc_lid / %d, nnc_c = nnc_lid %% %d;\n", d->local_id, TILE, TILE);
  declare_temps(E);
  tab(E), putf(E, "for (%s nnc_tile = (%s)%s; nnc_tile < nnc_%s; nnc_tile += (%s)%s) {\n", it, it, d->group_id,
               grouped ? "gtiles" : "tiles", it, d->num_groups);
  E->indent++;
  if (grouped)
    tab(E), putf(E, "const %s nnc_grp = nnc_tile / nnc_tiles, nnc_in = nnc_tile %% nnc_tiles;\n", it);
  const char *in = grouped ? "nnc_in" : "nnc_tile";
  tab(E), putf(E, "const %s nnc_row0 = %s / nnc_tcols * %d, nnc_col0 = %s %% nnc_tcols * %d;\n", it, in, TILE, in, TILE);
  tab(E), putf(E, "t%d = 0.0f;\n", c->temp);
  tab(E), putf(E, "for (%s nnc_k0 = 0; nnc_k0 < nnc_depth; nnc_k0 += %d) {\n", it, tk);
  E->indent++;
  stage_block(E, kp, true);
  stage_block(E, kp, false);
  tab(E), putf(E, "%s;\n", d->barrier);
  tab(E), putf(E, "for (int nnc_kk = 0; nnc_kk < %d; nnc_kk++)\n", tk);
  const char *xs = "nnc_tx[nnc_r * %d + nnc_kk]", *ys = "nnc_ty[nnc_kk * %d + nnc_c]";
  tab(E), putf(E, "  t%d = t%d + ", c->temp, c->temp);
  putf(E, kp->swap ? ys : xs, kp->swap ? TILE : tk);
  put(E, " * ");
  putf(E, kp->swap ? xs : ys, kp->swap ? tk : TILE);
  put(E, ";\n");
  tab(E), putf(E, "%s;\n", d->barrier);
  E->indent--;
  tab(E), put(E, "}\n");
  tab(E), put(E, "if (nnc_row0 + nnc_r < nnc_rows && nnc_col0 + nnc_c < nnc_cols) {\n");
  E->indent++;
  if (ig) {
    tab(E), putf(E, "const %s nnc_i = nnc_row0 + nnc_r, nnc_j = nnc_col0 + nnc_c;\n", it);
    bind_groups(E, ig, (const char *const[TG_NGROUPS]){"nnc_i", "nnc_j", NULL, "nnc_grp"}, NULL);
  } else {
    tab(E), putf(E, "const %s v%d = (nnc_row0 + nnc_r) * nnc_cols + nnc_col0 + nnc_c;\n", it, g);
  }
  if (c->buf >= 0) store(E, c);
  for (uint32_t i = 1; i < l->nbody; i++) stmt(E, l->body[i]);
  E->indent--;
  tab(E), put(E, "}\n");
  E->indent--;
  tab(E), put(E, "}\n");
  put(E, "}\n");
}

/* ---- the program -------------------------------------------------------------------------------- */

static void prelude(Emit *E) {
  const CDialect *d = E->d;
  const KProgram *p = E->p;
  const char *model = p->module && p->module->name ? p->module->name : "model";
  putf(E, "/* Kernels of model '%s' for target %s, written by nnc %s.\n", model, d->name, NNC_VERSION);
  putf(E, " * %s.\n", d->description);
  putf(E, " * Each kernel takes its buffers, then the batch size B (%s); ", d->batch_type);
  if (d->launch == CL_LAUNCH_NDRANGE)
    putf(E, "launch ceil(range / %d) work-groups of %d,\n * range from the plan (range_batched: times B). */\n",
         d->group_size, d->group_size);
  else
    put(E, "launch one work-item\n * (a single work-item kernel: global and local size 1). */\n");
  if (d->preamble[0]) putf(E, "\n%s", d->preamble);
  const char *h = d->helper_qual, *u = d->uint_type;
  put(E, "\n/* f32 -> i32: toward zero, saturating, NaN -> 0 (the interpreter's cast) */\n");
  putf(E, "%s int nnc_f2i(float x) {\n  return x != x ? 0 : x >= 2147483647.0f ? 2147483647 : "
          "x <= -2147483648.0f ? (-2147483647 - 1) : (int)x;\n}\n", h);
  put(E, "/* max and min propagate NaN; sign keeps NaN */\n");
  putf(E, "%s float nnc_fmax(float a, float b) { return a != a ? a : b != b ? b : a >= b ? a : b; }\n", h);
  putf(E, "%s float nnc_fmin(float a, float b) { return a != a ? a : b != b ? b : a <= b ? a : b; }\n", h);
  putf(E, "%s float nnc_fsign(float a) { return a > 0.0f ? 1.0f : a < 0.0f ? -1.0f : a != a ? a : 0.0f; }\n", h);
  put(E, "/* i32 arithmetic wraps; a / 0 is 0 and INT_MIN / -1 is INT_MIN (as on the cpu target) */\n");
  putf(E, "%s int nnc_idiv(int a, int b) { return b == 0 ? 0 : b == -1 ? (int)((%s)0 - (%s)a) : a / b; }\n", h, u, u);
  putf(E, "%s int nnc_iabs(int a) { return a < 0 ? (int)((%s)0 - (%s)a) : a; }\n", h, u, u);
  putf(E, "%s int nnc_imax(int a, int b) { return a > b ? a : b; }\n", h);
  putf(E, "%s int nnc_imin(int a, int b) { return a < b ? a : b; }\n", h);
  /* 32-bit arithmetic only, so that the embedded profile (no 64-bit integers) runs it too */
  put(E, "/* random: Philox4x32-10, key (key, 0), counter (ctr0 low, ctr0 high, ctr1, 0) -> [0, 1) (ir/op_eval.c) */\n");
  putf(E, "%s %s nnc_mulhi(%s a, %s b) {\n"
          "  %s al = a & 0xffffu, ah = a >> 16, bl = b & 0xffffu, bh = b >> 16;\n"
          "  %s m1 = ah * bl + ((al * bl) >> 16), m2 = al * bh + (m1 & 0xffffu);\n"
          "  return ah * bh + (m1 >> 16) + (m2 >> 16);\n}\n", h, u, u, u, u, u);
  putf(E, "%s float nnc_random(int key, int ctr1, %s ctr0) {\n", h, d->index_type);
  putf(E, "  %s x0 = (%s)ctr0, x1 = (%s)(ctr0 >> %d), x2 = (%s)ctr1, x3 = 0, k0 = (%s)key, k1 = 0;\n", u, u, u,
       d->has_long ? 32 : 31, u, u);
  putf(E, "  for (int r = 0; r < 10; r++) {\n"
          "    if (r > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }\n"
          "    %s lo0 = 0xD2511F53u * x0, hi0 = nnc_mulhi(0xD2511F53u, x0);\n"
          "    %s lo1 = 0xCD9E8D57u * x2, hi1 = nnc_mulhi(0xCD9E8D57u, x2);\n"
          "    x0 = hi1 ^ x1 ^ k0; x2 = hi0 ^ x3 ^ k1; x1 = lo1; x3 = lo0;\n"
          "  }\n"
          "  return (float)(x0 >> 8) * 5.9604644775390625e-8f;\n}\n", u, u);
}

char *c_emit_program(const KProgram *p, const CDialect *d, const NdSchedule *s, size_t *len) {
  Emit E;
  memset(&E, 0, sizeof E);
  E.p = p;
  E.d = d;
  E.s = s;
  put(&E, "");
  prelude(&E);
  for (uint32_t i = 0; i < p->nkernels; i++) {
    E.k = &p->kernels[i];
    E.nstaged = 0;
    put(&E, "\n");
    const NdKernelPlan *kp = s && i < s->n ? &s->k[i] : NULL;
    if (d->launch == CL_LAUNCH_SINGLE)
      emit_single(&E);
    else if (kp && kp->tiled)
      emit_tiled(&E, kp);
    else
      emit_ndrange(&E);
  }
  if (len) *len = E.len;
  return E.buf;
}
