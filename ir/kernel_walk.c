/* ir/kernel_walk.c - the kernel IR's one visitor, its rewriter, and the
 * queries built on them (see kernel.h).
 *
 * Every tree walk over statements and expressions goes through here, so a
 * new statement or expression field is walked everywhere once it is added
 * to kvisit_stmt / kvisit_expr and krewrite_stmt / krewrite_expr.
 */
#include "ir/kernel.h"

#include <stdlib.h>
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
    if (kvisit_expr(v, s->a) || kvisit_expr(v, s->b)) return true; /* a contraction's factors */
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
  s->a = krewrite_expr(s->a, f, ctx);
  s->b = krewrite_expr(s->b, f, ctx);
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

bool kernel_reads_temp(const Kernel *k, int32_t temp) {
  Find f = {{NULL, is_temp}, temp, NULL};
  return kvisit_kernel(&f.v, k);
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
  if (!kstmt_is_store(s) || s->buf != f->what) return false;
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

bool kbuf_is_gradient(const KBuffer *b) { return b->kind == KB_TEMP && b->op == OP_GRADIENT; }

uint32_t kprog_mark_update(const KProgram *p, bool *upd) {
  bool *tainted = nnc_xcalloc(p->nbufs ? p->nbufs : 1, 1); /* written by the update side */
  uint32_t n = 0;
  for (uint32_t k = 0; k < p->nkernels; k++) {
    const Kernel *kk = &p->kernels[k];
    bool u = false;
    for (uint32_t a = 0; a < kk->nargs && !u; a++) {
      const KBuffer *b = &p->bufs[kk->args[a]];
      bool wr = kernel_writes(kk, kk->args[a]);
      u = (kbuf_is_gradient(b) && !wr) || (wr && (b->kind == KB_PARAM || b->kind == KB_STATE)) ||
          (tainted[kk->args[a]] && !wr);
    }
    upd[k] = u;
    if (!u) continue;
    n++;
    for (uint32_t a = 0; a < kk->nargs; a++)
      if (kernel_writes(kk, kk->args[a])) tainted[kk->args[a]] = true;
  }
  free(tainted);
  return n;
}

typedef struct Access {
  KVisit v;
  bool *rd, *wr;
} Access;

static bool access_stmt(KVisit *v, KStmt *s) {
  Access *a = (Access *)v;
  if (kstmt_is_store(s) && a->wr) a->wr[s->buf] = true;
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

bool kstmt_is_product(const KStmt *s) {
  if (s->kind != KS_CONTRACT) return false;
  if (s->b) return true;
  for (int i = s->nfree; i < s->nfree + s->nred; i++)
    if (s->axes[i].batched) return true;
  return false;
}

/* ---- strides ---------------------------------------------------------------------------------- */

/* The coefficient of loop variable v in index expression e; false when e
 * is not affine in v. */
bool kexpr_coefficient(const KExpr *e, int32_t v, int64_t *c) {
  int64_t x, y;
  if (!kexpr_mentions(e, v)) {
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
    if (!kexpr_coefficient(e->a, v, &x) || !kexpr_coefficient(e->b, v, &y)) return false;
    *c = e->op == OP_ADD ? x + y : x - y;
    return true;
  case OP_NEG:
    if (!kexpr_coefficient(e->a, v, &x)) return false;
    *c = -x;
    return true;
  case OP_MUL: {
    const KExpr *k = e->a->kind == KE_CONST ? e->a : e->b && e->b->kind == KE_CONST ? e->b : NULL;
    if (!k || !kexpr_coefficient(k == e->a ? e->b : e->a, v, &x)) return false;
    *c = x * (int64_t)k->value;
    return true;
  }
  default: return false;
  }
}

bool kaccess_stride(const KProgram *p, int32_t buf, KExpr *const *idx, int nidx, int32_t v, int64_t *stride) {
  const KBuffer *kb = &p->bufs[buf];
  int batched = kb->type.batched ? 1 : 0;
  int64_t s = 0, row = 1;
  for (int d = nidx - 1; d >= 0; d--) {
    int64_t c;
    if (!kexpr_coefficient(idx[d], v, &c)) return false;
    s += c * row;
    if (d - batched >= 0) row *= kb->type.dims[d - batched];
  }
  *stride = s;
  return true;
}

int kstmt_binds(KStmt *s, int32_t *vars[NNC_MAX_CONTRACT_AXES]) {
  if (s->kind == KS_LOOP) {
    vars[0] = &s->var;
    return 1;
  }
  if (s->kind != KS_CONTRACT) return 0;
  int n = s->nfree + s->nred;
  for (int i = 0; i < n; i++) vars[i] = &s->axes[i].var;
  return n;
}

/* ---- independent iterations ------------------------------------------------------------------ */

typedef struct Indep {
  KVisit v;
  const KStmt *stores[64];
  int nstores;
  bool *declared;  /* [ntemps] let inside the loop */
  bool ok;
} Indep;

static bool collect(KVisit *v, KStmt *s) {
  Indep *in = (Indep *)v;
  if (kstmt_is_store(s)) {
    if (in->nstores == 64) in->ok = false;
    else in->stores[in->nstores++] = s;
  }
  if (s->kind == KS_LET) in->declared[s->temp] = true;
  return false;
}

/* Loads of stored buffers must use a store's exact index. */
static bool check_load(KVisit *v, KExpr *e) {
  Indep *in = (Indep *)v;
  if (e->kind == KE_LOAD) {
    bool stored = false, same = false;
    for (int i = 0; i < in->nstores; i++) {
      const KStmt *st = in->stores[i];
      if (st->buf != e->buf) continue;
      stored = true;
      bool eq = st->nidx == e->nidx;
      for (int d = 0; eq && d < e->nidx; d++) eq = kexpr_equal(st->idx[d], e->idx[d]);
      same |= eq;
    }
    if (stored && !same) in->ok = false;
  }
  return !in->ok;
}

/* Temporaries assigned inside must be declared inside. */
static bool check_assign(KVisit *v, KStmt *s) {
  Indep *in = (Indep *)v;
  if (s->kind == KS_ASSIGN && !in->declared[s->temp]) in->ok = false;
  return !in->ok;
}

bool kloop_independent(const Kernel *k, const KStmt *loop) {
  Indep in;
  memset(&in, 0, sizeof in);
  in.v.stmt = collect;
  in.ok = true;
  in.declared = nnc_xcalloc((size_t)k->ntemps + 1, sizeof(bool));
  kvisit_body(&in.v, loop->body, loop->nbody);
  for (int i = 0; in.ok && i < in.nstores; i++) {
    const KStmt *st = in.stores[i];
    bool direct = false;
    for (int d = 0; d < st->nidx; d++) direct |= st->idx[d]->kind == KE_VAR && st->idx[d]->var == loop->var;
    if (!direct) in.ok = false;
  }
  in.v.stmt = check_assign;
  in.v.expr = check_load;
  if (in.ok) kvisit_body(&in.v, loop->body, loop->nbody);
  free(in.declared);
  return in.ok;
}
