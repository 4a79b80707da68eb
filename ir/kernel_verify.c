/* ir/kernel_verify.c - the kernel IR verifier: internal consistency.
 *
 * Lowering and the scheduling passes build kernel IR; every backend trusts
 * it.  A broken invariant here is a compiler bug, not a user error, so the
 * problems go straight to stderr as
 *
 *     nnc: internal error: kernel IR: k3_matmul: load %9 has 2 indices, expected 3 (rank 2, batched)
 *
 * (`buffer %7 t7:`, `program:`, `train plan:` and `eval plan:` in place of
 * the kernel's name for problems outside kernels), and kprog_verify returns
 * false; the driver turns that into exit status 70.  Only the first problem
 * of each kernel is reported: the rest usually follow from it.  Nothing is
 * trusted: every index is range-checked before it is followed.
 *
 * Scopes are checked in one walk of each kernel's statement tree with two
 * small tables: which loop variables are bound by an enclosing loop, and
 * which temporaries have been declared (let) in this or an enclosing block.
 * Leaving a loop body unbinds its variable and forgets the temporaries it
 * declared.  docs/ir.md lists the invariants.
 */
#include "ir/kernel.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct KVerifier {
  const KProgram *p;
  const Kernel *k;      /* the kernel being walked */
  int32_t nhypers;      /* SYM_HYPER symbols: scalars 2 .. 2 + nhypers - 1, then training and seed */
  bool *bound;          /* [k->nvars]: bound by an enclosing loop */
  bool *declared;       /* [k->ntemps]: declared in this or an enclosing block */
  bool *seen;           /* [k->ntemps]: declared anywhere so far (for the message) */
  int32_t *scope;       /* temps declared, innermost block last */
  uint32_t nscope, capscope;
  bool planned;         /* the memory plan ran: every temp has a slot */
  char msg[512];        /* the first problem */
  const KStmt *at_stmt; /* ... the innermost statement and expression it is in */
  const KExpr *at_expr;
} KVerifier;

static bool fail(KVerifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(KVerifier *v, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v->msg, sizeof v->msg, fmt, ap);
  va_end(ap);
  return false;
}

static void internal_report(void *ctx, const KProblem *pr) {
  (void)ctx;
  fprintf(stderr, "nnc: internal error: kernel IR: %s: %s\n", pr->where, pr->msg);
}

static const char *dt_name(DType dt) { return (unsigned)dt <= DT_I32 ? dtype_name(dt) : "<bad dtype>"; }

static bool buf_valid(const KProgram *p, int32_t b) { return b >= 0 && (uint32_t)b < p->nbufs; }

/* ---- expressions --------------------------------------------------------------- */

static bool check_expr(KVerifier *v, const KExpr *e);

/* A buffer access (load or store): an existing buffer in the kernel's
 * arguments, one index expression per axis (the sample first if batched). */
static bool check_access(KVerifier *v, const char *what, int32_t buf, KExpr *const *idx, int nidx) {
  const KProgram *p = v->p;
  if (!buf_valid(p, buf)) return fail(v, "%s of buffer %%%d, which does not exist (%u buffers)", what, buf, p->nbufs);
  bool listed = false;
  for (uint32_t i = 0; i < v->k->nargs; i++) listed |= v->k->args[i] == buf;
  if (!listed) return fail(v, "%s of %%%d, which is not in the kernel's arguments", what, buf);
  const Type *t = &p->bufs[buf].type;
  int want = t->rank + (t->batched ? 1 : 0);
  if (nidx != want)
    return fail(v, "%s of %%%d has %d indices, expected %d (rank %d%s)", what, buf, nidx, want, t->rank,
                t->batched ? ", batched" : "");
  for (int i = 0; i < nidx; i++) {
    if (!idx[i]) return fail(v, "%s of %%%d: index %d is missing", what, buf, i);
    if (!idx[i]->index) return fail(v, "%s of %%%d: index %d is not an index expression", what, buf, i);
    if (!check_expr(v, idx[i])) return false;
  }
  return true;
}

/* Operand dtypes of an elementwise op: comparisons take two equal dtypes
 * and give f32; where takes an f32 condition (a) and two branches of the
 * result's dtype; cast takes anything; every other op takes operands of
 * its result's dtype, f32 for float-only ops. */
static bool check_op(KVerifier *v, const KExpr *e) {
  if ((unsigned)e->op >= OP_COUNT) return fail(v, "expression with bad op %d", (int)e->op);
  const OpInfo *info = &ir_ops[e->op];
  if (!(info->flags & OPF_ELEMWISE)) return fail(v, "op %s is not elementwise", info->name);
  const KExpr *ops[3] = {e->a, e->b, e->c};
  for (int i = 0; i < 3; i++) {
    if (i < info->arity && !ops[i])
      return fail(v, "%s needs %d operands, operand %d is missing", info->name, info->arity, i);
    if (i >= info->arity && ops[i])
      return fail(v, "%s takes %d operands, found an operand %d", info->name, info->arity, i);
  }
  for (int i = 0; i < info->arity; i++)
    if (!check_expr(v, ops[i])) return false;
  if (e->op == OP_CAST) return true;
  if (info->flags & OPF_CMP) {
    if (e->dtype != DT_F32) return fail(v, "comparison %s gives %s, expected f32", info->name, dt_name(e->dtype));
    if (e->a->dtype != e->b->dtype)
      return fail(v, "%s compares %s with %s", info->name, dt_name(e->a->dtype), dt_name(e->b->dtype));
    return true;
  }
  if ((info->flags & OPF_FLOAT) && e->dtype != DT_F32)
    return fail(v, "%s gives %s, expected f32", info->name, dt_name(e->dtype));
  if (e->op == OP_RANDOM) { /* integer key and counters (the last may be an index), an f32 draw */
    if (e->dtype != DT_F32) return fail(v, "random gives %s, expected f32", dt_name(e->dtype));
    for (int i = 0; i < 3; i++)
      if (ops[i]->dtype != DT_I32) return fail(v, "random operand %d is %s, expected i32", i, dt_name(ops[i]->dtype));
    return true;
  }
  int first = 0;
  if (e->op == OP_WHERE) {
    if (e->a->dtype != DT_F32) return fail(v, "where has an %s condition, expected f32", dt_name(e->a->dtype));
    first = 1;
  }
  for (int i = first; i < info->arity; i++)
    if (ops[i]->dtype != e->dtype)
      return fail(v, "%s gives %s but operand %d is %s", info->name, dt_name(e->dtype), i, dt_name(ops[i]->dtype));
  return true;
}

static bool check_expr1(KVerifier *v, const KExpr *e);

/* The first expression to fail, innermost first, is where the problem is. */
static bool check_expr(KVerifier *v, const KExpr *e) {
  if (check_expr1(v, e)) return true;
  if (!v->at_expr) v->at_expr = e;
  return false;
}

static bool check_expr1(KVerifier *v, const KExpr *e) {
  const Kernel *k = v->k;
  if ((unsigned)e->dtype > DT_I32) return fail(v, "expression with bad dtype %d", (int)e->dtype);
  if (e->index && e->dtype != DT_I32)
    return fail(v, "index expression of dtype %s, expected i32 (i64 arithmetic)", dt_name(e->dtype));
  switch (e->kind) {
  case KE_CONST:
    if (e->dtype == DT_I32 && (e->value != trunc(e->value) || !isfinite(e->value)))
      return fail(v, "i32 constant %g is not an integer", e->value);
    return true;
  case KE_VAR:
    if (e->var < 0 || e->var >= k->nvars)
      return fail(v, "use of v%d, which does not exist (%d vars)", e->var, k->nvars);
    if (!v->bound[e->var]) return fail(v, "use of v%d outside a loop binding it", e->var);
    if (!e->index) return fail(v, "v%d is not marked as an index expression", e->var);
    return true;
  case KE_TEMP:
    if (e->temp < 0 || e->temp >= k->ntemps)
      return fail(v, "use of t%d, which does not exist (%d temps)", e->temp, k->ntemps);
    if (!v->declared[e->temp])
      return fail(v, "use of t%d %s", e->temp, v->seen[e->temp] ? "outside the block of its let" : "before its let");
    if (e->dtype != k->temp_types[e->temp])
      return fail(v, "use of t%d as %s, but it is %s", e->temp, dt_name(e->dtype), dt_name(k->temp_types[e->temp]));
    return true;
  case KE_LOAD:
    if (!check_access(v, "load", e->buf, e->idx, e->nidx)) return false;
    if (e->dtype != v->p->bufs[e->buf].type.dtype)
      return fail(v, "load of %%%d is %s, expected %s (the buffer's dtype)", e->buf, dt_name(e->dtype),
                  dt_name(v->p->bufs[e->buf].type.dtype));
    return true;
  case KE_SCALAR: {
    if (e->scalar < 0 || e->scalar >= kscalar_count(v->nhypers))
      return fail(v, "scalar %d does not exist (step, batch, %d hypers, training and seed)", e->scalar, v->nhypers);
    if (e->dtype != DT_F32) return fail(v, "scalar %d read as %s, expected f32", e->scalar, dt_name(e->dtype));
    int32_t sb = v->p->scalars;
    bool listed = false;
    for (uint32_t i = 0; i < k->nargs; i++) listed |= sb >= 0 && k->args[i] == sb;
    if (!listed) return fail(v, "reads scalar %d, but the scalars buffer is not in its arguments", e->scalar);
    return true;
  }
  case KE_BATCH:
    if (!e->index) return fail(v, "B is not marked as an index expression");
    return true;
  case KE_OP: return check_op(v, e);
  }
  return fail(v, "expression of bad kind %d", (int)e->kind);
}

/* ---- statements -------------------------------------------------------------------- */

static bool check_block(KVerifier *v, KStmt *const *body, uint32_t n);

static bool check_value(KVerifier *v, const KStmt *s, const char *what) {
  if (!s->value) return fail(v, "%s without a value", what);
  return check_expr(v, s->value);
}

/* The store a statement makes: an existing, writable buffer, a value of its dtype. */
static bool check_store(KVerifier *v, const KStmt *s, const char *what) {
  if (!check_access(v, what, s->buf, s->idx, s->nidx)) return false;
  const KBuffer *b = &v->p->bufs[s->buf];
  if (b->kind == KB_INPUT || b->kind == KB_LABEL || b->kind == KB_SCALARS)
    return fail(v, "%s into %%%d, an %s buffer the runtime fills", what, s->buf, kbuf_kind_name(b->kind));
  if (!check_value(v, s, what)) return false;
  if (s->value->dtype != b->type.dtype)
    return fail(v, "%s into %%%d: value is %s, expected %s", what, s->buf, dt_name(s->value->dtype),
                dt_name(b->type.dtype));
  return true;
}

/* Binds (or unbinds) the variables of axes [from, to) of a contraction. */
static bool bind_axes(KVerifier *v, const KStmt *s, int from, int to, bool on) {
  for (int i = from; i < to; i++) {
    const KAxis *x = &s->axes[i];
    if (on) {
      if (x->var < 0 || x->var >= v->k->nvars)
        return fail(v, "contraction over v%d, which does not exist (%d vars)", x->var, v->k->nvars);
      if (v->bound[x->var]) return fail(v, "contraction rebinds v%d", x->var);
      if (x->extent < 1) return fail(v, "contraction axis v%d has extent %lld", x->var, (long long)x->extent);
    }
    v->bound[x->var] = on;
  }
  return true;
}

/* The free axes are bound in idx, value, a and b; the reduction axes in a
 * and b only; the temporary only in value. */
static bool check_contract(KVerifier *v, const KStmt *s) {
  const Kernel *k = v->k;
  int nf = s->nfree, n = s->nfree + s->nred;
  if (s->nred < 1 || n > NNC_MAX_CONTRACT_AXES)
    return fail(v, "contraction with %d free and %d reduction axes", s->nfree, s->nred);
  if (s->combine != OP_ADD && s->combine != OP_MAX && s->combine != OP_MIN)
    return fail(v, "contraction combines by %s, expected add, max or min",
                (unsigned)s->combine < OP_COUNT ? ir_ops[s->combine].name : "a bad op");
  if (s->temp < 0 || s->temp >= k->ntemps)
    return fail(v, "contraction into t%d, which does not exist (%d temps)", s->temp, k->ntemps);
  if (v->declared[s->temp]) return fail(v, "contraction into t%d while t%d is declared", s->temp, s->temp);
  if (!s->a) return fail(v, "contraction without a term");
  if (s->buf < 0 && (s->nfree || s->nidx || s->value))
    return fail(v, "contraction without a store has free axes, indices or a value");
  if (!bind_axes(v, s, 0, n, true)) return false;
  bool ok = check_expr(v, s->a) && (!s->b || check_expr(v, s->b));
  if (ok && s->a->dtype != k->temp_types[s->temp])
    ok = fail(v, "contraction into t%d: term is %s, expected %s", s->temp, dt_name(s->a->dtype),
              dt_name(k->temp_types[s->temp]));
  if (ok && s->b && s->b->dtype != s->a->dtype)
    ok = fail(v, "contraction multiplies %s by %s", dt_name(s->a->dtype), dt_name(s->b->dtype));
  bind_axes(v, s, nf, n, false);
  v->declared[s->temp] = v->seen[s->temp] = true;
  if (ok && s->buf >= 0) ok = check_store(v, s, "contraction");
  v->declared[s->temp] = false;
  bind_axes(v, s, 0, nf, false);
  if (ok && !nf) { /* no free axes: t is defined from here on, like a let */
    v->declared[s->temp] = true;
    VEC_PUSH(v->scope, v->nscope, v->capscope, s->temp);
  }
  return ok;
}

static bool check_stmt1(KVerifier *v, const KStmt *s);

static bool check_stmt(KVerifier *v, const KStmt *s) {
  if (check_stmt1(v, s)) return true;
  if (!v->at_stmt) v->at_stmt = s;
  return false;
}

static bool check_stmt1(KVerifier *v, const KStmt *s) {
  const Kernel *k = v->k;
  switch (s->kind) {
  case KS_LOOP: {
    if (s->var < 0 || s->var >= k->nvars)
      return fail(v, "loop over v%d, which does not exist (%d vars)", s->var, k->nvars);
    if (v->bound[s->var]) return fail(v, "loop rebinds v%d inside a loop over v%d", s->var, s->var);
    if (s->extent < 1)
      return fail(v, "loop over v%d has extent %lld, expected at least 1", s->var, (long long)s->extent);
    if (s->flags & ~(unsigned)(KL_PARALLEL | KL_REDUCE))
      return fail(v, "loop over v%d has unknown flags 0x%x", s->var, s->flags);
    if ((s->flags & KL_PARALLEL) && (s->flags & KL_REDUCE))
      return fail(v, "loop over v%d is both parallel and reduce", s->var);
    if (s->sched.vector < 0 || s->sched.unroll < 0 || s->sched.tile < 0)
      return fail(v, "loop over v%d has a negative schedule attribute", s->var);
    v->bound[s->var] = true;
    uint32_t mark = v->nscope;
    if (!check_block(v, s->body, s->nbody)) return false;
    while (v->nscope > mark) v->declared[v->scope[--v->nscope]] = false;
    v->bound[s->var] = false;
    return true;
  }
  case KS_LET:
  case KS_ASSIGN: {
    const char *what = s->kind == KS_LET ? "let" : "assignment to";
    if (s->temp < 0 || s->temp >= k->ntemps)
      return fail(v, "%s t%d, which does not exist (%d temps)", what, s->temp, k->ntemps);
    if (!check_value(v, s, what)) return false;
    if (s->value->dtype != k->temp_types[s->temp])
      return fail(v, "%s t%d: value is %s, expected %s", what, s->temp, dt_name(s->value->dtype),
                  dt_name(k->temp_types[s->temp]));
    if (s->kind == KS_ASSIGN) {
      if (!v->declared[s->temp])
        return fail(v, "assignment to t%d %s", s->temp,
                    v->seen[s->temp] ? "outside the block of its let" : "before its let");
      return true;
    }
    if (v->declared[s->temp]) return fail(v, "let t%d while t%d is already declared", s->temp, s->temp);
    v->declared[s->temp] = v->seen[s->temp] = true;
    VEC_PUSH(v->scope, v->nscope, v->capscope, s->temp);
    return true;
  }
  case KS_CONTRACT: return check_contract(v, s);
  case KS_STORE: return check_store(v, s, "store");
  }
  return fail(v, "statement of bad kind %d", (int)s->kind);
}

static bool check_block(KVerifier *v, KStmt *const *body, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    if (!body[i]) return fail(v, "statement %u of a block is missing", i);
    if (!check_stmt(v, body[i])) return false;
  }
  return true;
}

/* ---- kernels, buffers, plans ---------------------------------------------------------- */

static bool check_kernel(KVerifier *v, const Kernel *k) {
  const KProgram *p = v->p;
  if (k->nvars < 0 || k->ntemps < 0) return fail(v, "negative var or temp count");
  if (k->ntemps > 0 && !k->temp_types) return fail(v, "%d temps without their types", k->ntemps);
  for (int32_t t = 0; t < k->ntemps; t++)
    if ((unsigned)k->temp_types[t] > DT_I32) return fail(v, "t%d has bad dtype %d", t, (int)k->temp_types[t]);
  for (uint32_t i = 0; i < k->nargs; i++) {
    if (!buf_valid(p, k->args[i])) return fail(v, "argument %u is buffer %%%d, which does not exist", i, k->args[i]);
    for (uint32_t j = 0; j < i; j++)
      if (k->args[j] == k->args[i]) return fail(v, "buffer %%%d is listed twice in the arguments", k->args[i]);
  }
  if (p->module && k->loc >= p->module->nlocs) return fail(v, "location %u is out of range", k->loc);
  if (k->nbody == 0) return fail(v, "empty kernel, expected an outermost loop");
  for (uint32_t i = 0; i < k->nbody; i++)
    if (k->body[i] && k->body[i]->kind != KS_LOOP)
      return fail(v, "outermost statement %u is not a loop (the launch range)", i);
  v->bound = nnc_xcalloc((size_t)k->nvars + 1, sizeof *v->bound);
  v->declared = nnc_xcalloc((size_t)k->ntemps + 1, sizeof *v->declared);
  v->seen = nnc_xcalloc((size_t)k->ntemps + 1, sizeof *v->seen);
  v->nscope = 0;
  bool ok = check_block(v, k->body, k->nbody);
  free(v->bound);
  free(v->declared);
  free(v->seen);
  v->bound = v->declared = v->seen = NULL;
  return ok;
}

/* Kinds, types, symbols and slots of one buffer. */
static bool check_buffer(KVerifier *v, const KBuffer *b) {
  const KProgram *p = v->p;
  const Type *t = &b->type;
  if ((unsigned)b->kind > KB_OUTPUT) return fail(v, "bad kind %d", (int)b->kind);
  if (!b->name || !*b->name) return fail(v, "no name");
  if ((unsigned)t->dtype > DT_I32) return fail(v, "bad dtype %d", (int)t->dtype);
  if (t->rank > NNC_MAX_RANK) return fail(v, "rank %d is larger than %d", t->rank, NNC_MAX_RANK);
  for (int i = 0; i < t->rank; i++)
    if (t->dims[i] < 1 || t->dims[i] > NNC_MAX_DIM)
      return fail(v, "extent %lld of axis %d is out of range", (long long)t->dims[i], i);
  const char *kind = kbuf_kind_name(b->kind);
  switch (b->kind) {
  case KB_INPUT:
  case KB_LABEL:
  case KB_PARAM:
  case KB_STATE: {
    bool batched = b->kind == KB_INPUT || b->kind == KB_LABEL;
    if (t->batched != batched) return fail(v, "%s buffer is %sbatched", kind, batched ? "not " : "");
    if (!p->module || b->sym >= p->module->nsyms) return fail(v, "symbol %u is out of range", b->sym);
    break;
  }
  case KB_TEMP:
    if (!v->planned && b->slot == -1) break; /* before the memory plan */
    if (b->slot < 0) return fail(v, "temp without a memory slot");
    if (b->slot >= p->nslots) return fail(v, "slot %d is out of range (%d slots)", b->slot, p->nslots);
    if (p->module && b->loc >= p->module->nlocs) return fail(v, "location %u is out of range", b->loc);
    break;
  case KB_LOSS:
  case KB_METRIC:
    if (t->dtype != DT_F32 || t->rank != 0 || !t->batched) return fail(v, "%s buffer is not f32[B]", kind);
    break;
  case KB_OUTPUT:
    if (t->dtype != DT_F32 || !t->batched) return fail(v, "output buffer is not a batched f32 tensor");
    break;
  case KB_SCALARS:
    if (t->dtype != DT_F32 || t->rank != 1 || t->batched || t->dims[0] < kscalar_count(v->nhypers))
      return fail(v, "scalars buffer is not f32[N] with N >= %d (step, batch, %d hypers, training and seed)",
                  kscalar_count(v->nhypers), v->nhypers);
    break;
  }
  return true;
}

/* The program's named buffers (-1 or a buffer of the right kind). */
static bool check_role(KVerifier *v, const char *role, int32_t b, KBufKind kind, bool optional) {
  if (b == -1 && optional) return true;
  if (!buf_valid(v->p, b)) return fail(v, "%s buffer %%%d does not exist", role, b);
  if (v->p->bufs[b].kind != kind)
    return fail(v, "%s buffer %%%d is a %s buffer", role, b, kbuf_kind_name(v->p->bufs[b].kind));
  return true;
}

static bool check_program(KVerifier *v) {
  const KProgram *p = v->p;
  if (!p->module) return fail(v, "no module");
  if (p->nslots < 0) return fail(v, "negative slot count %d", p->nslots);
  if (!check_role(v, "input", p->input, KB_INPUT, true) || !check_role(v, "label", p->label, KB_LABEL, true) ||
      !check_role(v, "loss", p->loss, KB_LOSS, true) || !check_role(v, "scalars", p->scalars, KB_SCALARS, true) ||
      !check_role(v, "output", p->output, KB_OUTPUT, true))
    return false;
  for (uint32_t i = 0; i < p->nmetrics; i++)
    if (!check_role(v, "metric", p->metrics[i], KB_METRIC, false)) return false;
  return true;
}

static bool check_plan(KVerifier *v, const char *name, const uint32_t *plan, uint32_t n, KReport report, void *ctx) {
  const KProgram *p = v->p;
  bool ok = true;
  for (uint32_t i = 0; i < n; i++) {
    if (plan[i] < p->nkernels) continue;
    char msg[128];
    snprintf(msg, sizeof msg, "entry %u is kernel %u, which does not exist (%u kernels)", i, plan[i], p->nkernels);
    KProblem pr = {name, msg, -1, -1, NULL, NULL};
    report(ctx, &pr);
    ok = false;
  }
  return ok;
}

bool kprog_planned(const KProgram *p) {
  if (p->nslots > 0) return true;
  for (uint32_t i = 0; i < p->nbufs; i++)
    if (p->bufs[i].kind == KB_TEMP && p->bufs[i].slot >= 0) return true;
  return false;
}

bool kprog_check(const KProgram *p, KReport report, void *ctx) {
  KVerifier v;
  memset(&v, 0, sizeof v);
  v.p = p;
  v.planned = kprog_planned(p);
  for (uint32_t i = 0; p->module && i < p->module->nsyms; i++) v.nhypers += p->module->syms[i].kind == SYM_HYPER;
  bool ok = true;
  char where[320];
  if (!check_program(&v)) {
    KProblem pr = {"program", v.msg, -1, -1, NULL, NULL};
    report(ctx, &pr);
    ok = false;
  }
  for (uint32_t i = 0; i < p->nbufs; i++) {
    if (check_buffer(&v, &p->bufs[i])) continue;
    snprintf(where, sizeof where, "buffer %%%u %s", i, p->bufs[i].name ? p->bufs[i].name : "<null>");
    KProblem pr = {where, v.msg, -1, (int32_t)i, NULL, NULL};
    report(ctx, &pr);
    ok = false;
  }
  for (uint32_t i = 0; i < p->nkernels; i++) {
    const Kernel *k = &p->kernels[i];
    v.k = k;
    v.at_stmt = NULL;
    v.at_expr = NULL;
    if (check_kernel(&v, k)) continue;
    if (k->name) snprintf(where, sizeof where, "%s", k->name);
    else snprintf(where, sizeof where, "kernel %u", i);
    KProblem pr = {where, v.msg, (int32_t)i, -1, v.at_stmt, v.at_expr};
    report(ctx, &pr);
    ok = false;
  }
  ok &= check_plan(&v, "train plan", p->train, p->ntrain, report, ctx);
  ok &= check_plan(&v, "eval plan", p->eval, p->neval, report, ctx);
  free(v.scope);
  return ok;
}

bool kprog_verify(const KProgram *p) { return kprog_check(p, internal_report, NULL); }
