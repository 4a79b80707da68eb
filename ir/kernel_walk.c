/* ir/kernel_walk.c - the kernel IR's one visitor, its rewriter, and the
 * queries built on them (see kernel.h).
 *
 * Every tree walk over statements and expressions goes through here, so a
 * new statement or expression field is walked everywhere once it is added
 * to kvisit_stmt / kvisit_expr and krewrite_stmt / krewrite_expr.
 */
#include "ir/kernel.h"

#include <string.h>

/* ---- the visitor -------------------------------------------------------------------------- */

bool kvisit_expr(KVisit *v, KExpr *e) {
  if (!e) return false;
  if (v->expr && v->expr(v, e)) return true;
  for (int d = 0; d < e->nidx; d++)
    if (kvisit_expr(v, e->idx[d])) return true;
  return kvisit_expr(v, e->a) || kvisit_expr(v, e->b) || kvisit_expr(v, e->c);
}

bool kvisit_stmt(KVisit *v, KStmt *s) {
  if (v->stmt && v->stmt(v, s)) return true;
  if (v->expr) {
    for (int d = 0; d < s->nidx; d++)
      if (kvisit_expr(v, s->idx[d])) return true;
    if (kvisit_expr(v, s->value)) return true;
  }
  return kvisit_body(v, s->body, s->nbody);
}

bool kvisit_body(KVisit *v, KStmt *const *body, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (kvisit_stmt(v, body[i])) return true;
  return false;
}

bool kvisit_kernel(KVisit *v, const Kernel *k) { return kvisit_body(v, k->body, k->nbody); }

/* ---- the rewriter --------------------------------------------------------------------------- */

KExpr *krewrite_expr(KExpr *e, KRewrite f, void *ctx) {
  if (!e) return NULL;
  KExpr *r = f(e, ctx);
  if (r != e) return r;
  for (int d = 0; d < e->nidx; d++) e->idx[d] = krewrite_expr(e->idx[d], f, ctx);
  e->a = krewrite_expr(e->a, f, ctx);
  e->b = krewrite_expr(e->b, f, ctx);
  e->c = krewrite_expr(e->c, f, ctx);
  return e;
}

void krewrite_stmt(KStmt *s, KRewrite f, void *ctx) {
  for (int d = 0; d < s->nidx; d++) s->idx[d] = krewrite_expr(s->idx[d], f, ctx);
  s->value = krewrite_expr(s->value, f, ctx);
  for (uint32_t i = 0; i < s->nbody; i++) krewrite_stmt(s->body[i], f, ctx);
}

/* ---- queries -------------------------------------------------------------------------------- */

typedef struct Find {
  KVisit v;
  int32_t what;
  const KStmt *found;
} Find;

static bool is_var(KVisit *v, KExpr *e) { return e->kind == KE_VAR && e->var == ((Find *)v)->what; }
bool kexpr_mentions(const KExpr *e, int32_t var) {
  Find f = {{NULL, is_var}, var, NULL};
  return kvisit_expr(&f.v, (KExpr *)e);
}

static bool is_load(KVisit *v, KExpr *e) { return e->kind == KE_LOAD && e->buf == ((Find *)v)->what; }
bool kexpr_reads(const KExpr *e, int32_t buf) {
  Find f = {{NULL, is_load}, buf, NULL};
  return kvisit_expr(&f.v, (KExpr *)e);
}

static bool is_temp(KVisit *v, KExpr *e) {
  int32_t t = ((Find *)v)->what;
  return e->kind == KE_TEMP && (t < 0 || e->temp == t);
}
bool kexpr_reads_temp(const KExpr *e, int32_t temp) {
  Find f = {{NULL, is_temp}, temp, NULL};
  return kvisit_expr(&f.v, (KExpr *)e);
}

bool kexpr_equal(const KExpr *a, const KExpr *b) {
  if (a == b) return true;
  if (!a || !b || a->kind != b->kind || a->dtype != b->dtype || a->index != b->index) return false;
  switch (a->kind) {
  case KE_CONST: return a->value == b->value;
  case KE_VAR: return a->var == b->var;
  case KE_TEMP: return a->temp == b->temp;
  case KE_SCALAR: return a->scalar == b->scalar;
  case KE_BATCH: return true;
  case KE_LOAD:
    if (a->buf != b->buf || a->guarded != b->guarded || a->nidx != b->nidx) return false;
    for (int d = 0; d < a->nidx; d++)
      if (!kexpr_equal(a->idx[d], b->idx[d])) return false;
    return true;
  case KE_OP:
    return a->op == b->op && kexpr_equal(a->a, b->a) && kexpr_equal(a->b, b->b) && kexpr_equal(a->c, b->c);
  }
  return false;
}

static bool is_store(KVisit *v, KStmt *s) {
  Find *f = (Find *)v;
  if (s->kind != KS_STORE || s->buf != f->what) return false;
  f->found = s;
  return true;
}
const KStmt *kstmt_find_store(const KStmt *s, int32_t buf) {
  Find f = {{is_store, NULL}, buf, NULL};
  kvisit_stmt(&f.v, (KStmt *)s);
  return f.found;
}

bool kernel_writes(const Kernel *k, int32_t buf) {
  Find f = {{is_store, NULL}, buf, NULL};
  return kvisit_kernel(&f.v, k);
}

typedef struct Access {
  KVisit v;
  bool *rd, *wr;
} Access;

static bool access_stmt(KVisit *v, KStmt *s) {
  Access *a = (Access *)v;
  if (s->kind == KS_STORE && a->wr) a->wr[s->buf] = true;
  return false;
}
static bool access_expr(KVisit *v, KExpr *e) {
  Access *a = (Access *)v;
  if (e->kind == KE_LOAD && a->rd) a->rd[e->buf] = true;
  return false;
}
void kstmt_access(const KStmt *s, bool *rd, bool *wr) {
  Access a = {{access_stmt, access_expr}, rd, wr};
  kvisit_stmt(&a.v, (KStmt *)s);
}
