/* ir/kernel_contract.c - contractions into loop nests (kernel.h).
 *
 * A backend without a schedule for some contraction emits it as the loops
 * it means.  Two orders compute the same values:
 *
 *   dot   (default: one reduction per output, the reduction innermost)
 *         for free... { let t = identity; for red... reduce { t = t op a * b }; buf[idx] = value }
 *   rows  (sched.rows: the reduction outside the last free axis, so that
 *         axis runs contiguously and vectorises; the sums accumulate in buf)
 *         for free[0..n-1) {
 *           for last: buf[idx] = identity
 *           for red... reduce { for last: buf[idx] = buf[idx] op a * b }
 *           for last: buf[idx] = value with t := buf[idx]      (when value is not t)
 *         }
 *
 * An NDRange target hoists the free axes out instead (kernel_hoist_free_axes):
 * `for free... { contract buf[idx] = value with t = ... }`, loops its
 * schedule folds into the launch range, one output per work-item.
 */
#include "ir/kernel.h"

#include <stdlib.h>
#include <string.h>

static KStmt *axis_loop(KProgram *p, const KAxis *x, unsigned flags) {
  return kstmt_loop(p, x->var, x->extent, x->batched, flags);
}

static void push(KStmt *parent, KStmt *s) { kstmt_append(&parent->body, &parent->nbody, &parent->capbody, s); }

static KExpr *term(KProgram *p, const KStmt *s, KExpr *acc) {
  KExpr *t = s->b ? kexpr_op(p, OP_MUL, s->a->dtype, kexpr_clone(p, s->a), kexpr_clone(p, s->b), NULL) : kexpr_clone(p, s->a);
  return kexpr_op(p, s->combine, s->a->dtype, acc, t, NULL);
}

/* Loops over axes [from, to) nested in order under *outer (or starting a
 * new nest when *outer is NULL); returns the innermost. */
static KStmt *nest(KProgram *p, const KStmt *s, int from, int to, unsigned flags, KStmt **outer) {
  KStmt *in = NULL;
  for (int i = from; i < to; i++) {
    KStmt *l = axis_loop(p, &s->axes[i], flags);
    if (in) push(in, l);
    else *outer = l;
    in = l;
  }
  return in;
}

typedef struct TempToLoad {
  KProgram *p;
  int32_t temp;
  const KStmt *s;
} TempToLoad;

static KExpr *temp_to_load(KExpr *e, void *ctx) {
  const TempToLoad *c = ctx;
  if (e->kind != KE_TEMP || e->temp != c->temp) return e;
  KExpr *idx[NNC_MAX_RANK + 1];
  for (int d = 0; d < c->s->nidx; d++) idx[d] = kexpr_clone(c->p, c->s->idx[d]);
  return kexpr_load(c->p, c->s->buf, idx, c->s->nidx);
}

static KStmt *store_at(KProgram *p, const KStmt *s, KExpr *value) {
  KExpr *idx[NNC_MAX_RANK + 1];
  for (int d = 0; d < s->nidx; d++) idx[d] = kexpr_clone(p, s->idx[d]);
  return kstmt_store(p, s->buf, idx, s->nidx, value);
}

static KStmt *expand_dot(KProgram *p, const KStmt *s) {
  KStmt *outer = NULL, *body = nest(p, s, 0, s->nfree, 0, &outer);
  KStmt *block = body ? body : kstmt_loop(p, -1, 1, false, 0); /* no free axes: a holder, unwrapped below */
  DType dt = s->a->dtype;
  push(block, kstmt_let(p, s->temp, kexpr_const(p, dt, kcombine_identity(s->combine))));
  KStmt *red_outer = NULL, *red = nest(p, s, s->nfree, s->nfree + s->nred, KL_REDUCE, &red_outer);
  push(red, kstmt_assign(p, s->temp, term(p, s, kexpr_temp(p, s->temp, dt))));
  push(block, red_outer);
  if (s->buf >= 0) push(block, store_at(p, s, kexpr_clone(p, s->value)));
  return body ? outer : block;
}

static KStmt *expand_rows(KProgram *p, const KStmt *s) {
  int last = s->nfree - 1;
  KStmt *outer = NULL, *body = nest(p, s, 0, last, 0, &outer);
  KStmt *block = body ? body : kstmt_loop(p, -1, 1, false, 0);
  DType dt = s->a->dtype;
  KStmt *zero = axis_loop(p, &s->axes[last], 0);
  push(zero, store_at(p, s, kexpr_const(p, dt, kcombine_identity(s->combine))));
  push(block, zero);
  KStmt *red_outer = NULL, *red = nest(p, s, s->nfree, s->nfree + s->nred, KL_REDUCE, &red_outer);
  KStmt *row = axis_loop(p, &s->axes[last], 0);
  KExpr *idx[NNC_MAX_RANK + 1];
  for (int d = 0; d < s->nidx; d++) idx[d] = kexpr_clone(p, s->idx[d]);
  push(row, store_at(p, s, term(p, s, kexpr_load(p, s->buf, idx, s->nidx))));
  push(red, row);
  push(block, red_outer);
  if (!(s->value->kind == KE_TEMP && s->value->temp == s->temp)) {
    TempToLoad c = {p, s->temp, s};
    KStmt *ep = axis_loop(p, &s->axes[last], 0);
    push(ep, store_at(p, s, krewrite_expr(kexpr_clone(p, s->value), temp_to_load, &c)));
    push(block, ep);
  }
  return body ? outer : block;
}

/* Expands the contractions in body[0..*n) (recursively), splicing holder
 * blocks (var -1) into the body. */
static void expand_body(KProgram *p, KStmt ***body, uint32_t *n, uint32_t *cap, bool (*keep)(const KStmt *, void *),
                        void *ctx) {
  KStmt **out = NULL;
  uint32_t nout = 0, capout = 0;
  for (uint32_t i = 0; i < *n; i++) {
    KStmt *s = (*body)[i];
    if (s->kind == KS_LOOP) expand_body(p, &s->body, &s->nbody, &s->capbody, keep, ctx);
    if (s->kind != KS_CONTRACT || (keep && keep(s, ctx))) {
      kstmt_append(&out, &nout, &capout, s);
      continue;
    }
    bool rows = s->sched.rows && s->nfree > 0;
    KStmt *e = rows ? expand_rows(p, s) : expand_dot(p, s);
    if (e->kind == KS_LOOP && e->var == -1) { /* a holder: its statements go inline */
      for (uint32_t j = 0; j < e->nbody; j++) kstmt_append(&out, &nout, &capout, e->body[j]);
      free(e->body);
    } else {
      kstmt_append(&out, &nout, &capout, e);
    }
  }
  free(*body);
  *body = out;
  *n = nout;
  *cap = capout;
}

void kernel_expand_contractions(KProgram *p, Kernel *k, bool (*keep)(const KStmt *s, void *ctx), void *ctx) {
  expand_body(p, &k->body, &k->nbody, &k->capbody, keep, ctx);
}

/* Loops over the free axes around each contraction, which keeps none. */
static void hoist_body(KProgram *p, KStmt **body, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    KStmt *s = body[i];
    if (s->kind == KS_LOOP) hoist_body(p, s->body, s->nbody);
    if (s->kind != KS_CONTRACT || !s->nfree) continue;
    KStmt *outer = NULL, *in = nest(p, s, 0, s->nfree, 0, &outer);
    int nf = s->nfree, nr = s->nred;
    memmove(s->axes, s->axes + nf, sizeof(KAxis) * (size_t)nr);
    s->nfree = 0;
    push(in, s);
    body[i] = outer;
  }
}

void kernel_hoist_free_axes(KProgram *p, Kernel *k) { hoist_body(p, k->body, k->nbody); }
