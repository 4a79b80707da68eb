/* passes/fuse.c - whole-step fusion of the kernel program lowering wrote
 * (passes/lower.c calls lower_fuse_step after emitting one kernel per
 * materialized node).  What fuses and why it is safe is the comment below;
 * docs/ir.md ("Lowering and fusion") has the user's view.
 */
#include "passes/lower.h"

#include "passes/pass.h"
#include "support/diag.h"

#include <stdlib.h>
#include <string.h>

/* ---- whole-step fusion ------------------------------------------------------------------------
 *
 * After the kernels of the step exist (one per materialized node, updates
 * in place), kernels fuse along their launch loops:
 *
 *  - Row fusion: a kernel C whose launch loop has the same extent as an
 *    earlier kernel P's joins P, its statements appended inside P's launch
 *    loop (the outer variable renamed to P's), when every buffer one of
 *    them writes and the other touches is accessed only at the launch
 *    variable's row (first index = the launch variable) in both.  Then each
 *    row of P is complete before C's statements for that row run, and no
 *    other row is touched: the results are those of the two kernels.  This
 *    gives a matmul its epilogue (bias, activation), the loss its whole
 *    per-row chain (max, sum of exps, loss, metric, gradient), and a
 *    parameter's gradient batch sum its optimizer update (the gradient row
 *    is complete, and L1-hot, when the update of that row runs).
 *  - Nesting: C joins a one-iteration kernel P (a bias gradient summed over
 *    the batch) as a whole loop after P's statements, when C reads what P
 *    writes and has few iterations (the bias's update).
 *
 * C moves up to P past the kernels between them, so none of those may
 * write what C touches or read what C writes; P is the nearest kernel C
 * depends on (vertical fusion) or, failing that, the nearest later kernel
 * with the same launch range (horizontal).  Matmul and batch-sum kernels
 * never join an earlier kernel: each starts its own, its contraction
 * statement first, followed by whatever fused after it.  Kernels of the eval plan take only train-only
 * kernels that update no parameter or state and read only what the eval
 * plan computes (the gradient of the loss joins the loss kernel); the eval
 * plan then runs them too, writing temps nobody reads.
 *
 * Inside a fused kernel, adjacent sibling loops over the same range merge
 * when what one writes and the other touches is accessed at the same
 * element by the same iteration; a store of a temporary then feeds later
 * loads of that element directly; and temps that nothing reads any more
 * are not stored (the input gradient of a matmul feeding a relu gradient
 * becomes `C[i,j] = where(mask, t, 0)` of its dot product t).
 */

enum { NEST_MAX = 65536 }; /* iterations of a loop nested into a one-iteration kernel */

/* What a kernel (or a statement tree) reads and writes: one entry per
 * buffer it touches.  A kernel touches few buffers (one that fusion made
 * at most LOWER_MAX_FUSED_ARGS), so these lists are short, and the
 * accesses of the whole step take memory and time in proportion to the
 * program, not kernels x buffers. */
typedef struct Use {
  int32_t buf;
  bool rd, wr;
} Use;

typedef struct Access {
  Use *u;
  uint32_t n, cap;
} Access;

/* Collecting into a list uses slot[buf] (1 + its entry, 0 = none), an
 * array over the program's buffers that is all zeros between collections
 * (access_end). */
typedef struct Collect {
  KVisit v;
  Access *a;
  uint32_t *slot;
} Collect;

static void use_buf(Collect *c, int32_t buf, bool rd, bool wr) {
  if (!c->slot[buf]) {
    Use u = {buf, false, false};
    VEC_PUSH(c->a->u, c->a->n, c->a->cap, u);
    c->slot[buf] = c->a->n;
  }
  c->a->u[c->slot[buf] - 1].rd |= rd;
  c->a->u[c->slot[buf] - 1].wr |= wr;
}
static bool collect_store(KVisit *v, KStmt *s) {
  if (kstmt_is_store(s)) use_buf((Collect *)v, s->buf, false, true);
  return false;
}
static bool collect_load(KVisit *v, KExpr *e) {
  if (e->kind == KE_LOAD) use_buf((Collect *)v, e->buf, true, false);
  return false;
}
static void access_stmt(const KStmt *s, Access *a, uint32_t *slot) {
  Collect c = {{collect_store, collect_load}, a, slot};
  kvisit_stmt(&c.v, (KStmt *)s);
}

static void access_end(const Access *a, uint32_t *slot) {
  for (uint32_t i = 0; i < a->n; i++) slot[a->u[i].buf] = 0;
}

static Use *find_use(const Access *a, int32_t buf) {
  for (uint32_t i = 0; i < a->n; i++)
    if (a->u[i].buf == buf) return &a->u[i];
  return NULL;
}

/* Must two kernels keep their order?  (One writes what the other touches.) */
static bool uses_conflict(const Use *a, const Use *c) { return (a->wr && (c->rd || c->wr)) || (a->rd && c->wr); }

/* Is every access to buf indexed by var along its first axis? */
typedef struct RowLocal {
  KVisit v;
  int32_t buf, var;
} RowLocal;

static bool off_row(int32_t nidx, KExpr *const *idx, int32_t var) {
  return nidx == 0 || idx[0]->kind != KE_VAR || idx[0]->var != var;
}
static bool stmt_off_row(KVisit *v, KStmt *s) {
  RowLocal *r = (RowLocal *)v;
  return kstmt_is_store(s) && s->buf == r->buf && off_row(s->nidx, s->idx, r->var);
}
static bool expr_off_row(KVisit *v, KExpr *e) {
  RowLocal *r = (RowLocal *)v;
  return e->kind == KE_LOAD && e->buf == r->buf && off_row(e->nidx, e->idx, r->var);
}
static bool rowlocal_stmt(const KStmt *s, int32_t buf, int32_t var) {
  RowLocal r = {{stmt_off_row, expr_off_row}, buf, var};
  return !kvisit_stmt(&r.v, (KStmt *)s);
}

/* The launch loop of a kernel that is one parallel loop, else NULL. */
static KStmt *launch_loop(const Kernel *k) {
  return k->nbody == 1 && k->body[0]->kind == KS_LOOP && (k->body[0]->flags & KL_PARALLEL) ? k->body[0] : NULL;
}

/* Kernels headed by a product contraction (a matmul, a batch sum): its
 * launch loop begins with it. */
static bool is_contraction(const Kernel *k) {
  const KStmt *l = k->nbody == 1 && k->body[0]->kind == KS_LOOP ? k->body[0] : NULL;
  return l && l->nbody && kstmt_is_product(l->body[0]);
}

/* A reduction loop at least this long (or over the batch) somewhere in s:
 * the GPU schedule gives such a reduction a warp per output, but only in a
 * kernel of its own. */
enum { LONG_REDUCTION = 64 };
static bool long_reduction(const KStmt *s) {
  if (s->kind == KS_LOOP && (s->flags & KL_REDUCE) && (s->batched || s->extent >= LONG_REDUCTION)) return true;
  for (int i = s->kind == KS_CONTRACT ? s->nfree : 0; s->kind == KS_CONTRACT && i < s->nfree + s->nred; i++)
    if (s->axes[i].batched || s->axes[i].extent >= LONG_REDUCTION) return true;
  for (uint32_t i = 0; i < s->nbody; i++)
    if (long_reduction(s->body[i])) return true;
  return false;
}

/* Kernels that stay alone under separate_contractions. */
static bool stays_alone(const Kernel *k, bool sep) {
  if (is_contraction(k)) return true;
  if (!sep) return false;
  for (uint32_t i = 0; i < k->nbody; i++)
    if (long_reduction(k->body[i])) return true;
  return false;
}

/* Renumbering a moved statement tree.  Expression nodes may be shared
 * within a tree, so numbers move out of the way first (+RENUM), then to
 * their targets: a shared node is renamed once. */
enum { RENUM = 1 << 24 };

typedef struct Renum {
  KVisit v;
  const int32_t *vmap, *tmap;
  bool phase2;
} Renum;

static int32_t renum_id(const Renum *r, int32_t id, const int32_t *map) {
  if (!r->phase2) return id < RENUM ? id + RENUM : id;
  return id >= RENUM ? map[id - RENUM] : id;
}
static bool renum_stmt_ids(KVisit *v, KStmt *s) {
  Renum *r = (Renum *)v;
  int32_t *vars[NNC_MAX_CONTRACT_AXES];
  for (int i = kstmt_binds(s, vars) - 1; i >= 0; i--) *vars[i] = renum_id(r, *vars[i], r->vmap);
  if (s->kind == KS_LET || s->kind == KS_ASSIGN || s->kind == KS_CONTRACT) s->temp = renum_id(r, s->temp, r->tmap);
  return false;
}
static bool renum_expr_ids(KVisit *v, KExpr *e) {
  Renum *r = (Renum *)v;
  if (e->kind == KE_VAR) e->var = renum_id(r, e->var, r->vmap);
  if (e->kind == KE_TEMP) e->temp = renum_id(r, e->temp, r->tmap);
  return false;
}
static void renum_stmt(KStmt *s, const int32_t *vmap, const int32_t *tmap, bool phase2) {
  Renum r = {{renum_stmt_ids, renum_expr_ids}, vmap, tmap, phase2};
  kvisit_stmt(&r.v, s);
}

/* Moves kernel c's statements into kernel k (see above): appended in k's
 * launch loop (row fusion) or as one more loop in it (nest). */
static void fuse_into(KProgram *p, Kernel *k, Kernel *c, bool nest) {
  KStmt *ko = k->body[0], *co = c->body[0];
  int32_t *vmap = nnc_xmalloc(sizeof(int32_t) * (size_t)(c->nvars + 1));
  int32_t *tmap = nnc_xmalloc(sizeof(int32_t) * (size_t)(c->ntemps + 1));
  for (int32_t v = 0; v < c->nvars; v++) vmap[v] = !nest && v == co->var ? ko->var : kernel_new_var(k);
  for (int32_t t = 0; t < c->ntemps; t++) tmap[t] = kernel_new_temp(p, k, c->temp_types[t]);
  renum_stmt(co, vmap, tmap, false);
  renum_stmt(co, vmap, tmap, true);
  if (nest) {
    co->flags &= ~(unsigned)KL_PARALLEL;
    kstmt_append(&ko->body, &ko->nbody, &ko->capbody, co);
  } else {
    for (uint32_t i = 0; i < co->nbody; i++) kstmt_append(&ko->body, &ko->nbody, &ko->capbody, co->body[i]);
    free(co->body);
    co->body = NULL;
    co->nbody = co->capbody = 0;
  }
  free(c->body);
  c->body = NULL;
  c->nbody = c->capbody = 0;
  for (uint32_t i = 0; i < c->nargs; i++) kernel_use_buffer(p, k, c->args[i]);
  k->what = arena_printf(&p->arena, "%s + %s", k->what, c->what);
  free(vmap);
  free(tmap);
}

typedef struct Fuse {
  KProgram *p;
  Access *acc;          /* per kernel (compacted with the kernels) */
  bool *ev;             /* per kernel: in the eval plan */
  bool *upd;            /* per kernel: on the update side of the step (kprog_mark_update) */
  bool sep;             /* contraction kernels take nothing */
  /* Per buffer, over the kernels kept so far (compacted indices): the last
   * that writes it and the last that reads it (-1 = none), and the first
   * train-only kernel that writes it (INT64_MAX = none).  They answer
   * "which is the nearest kernel c depends on" without a scan back. */
  int64_t *last_wr, *last_rd, *first_train_wr;
} Fuse;

/* Records that kept kernel k now has the accesses a. */
static void note_uses(Fuse *f, uint32_t k, const Access *a) {
  for (uint32_t i = 0; i < a->n; i++) {
    int32_t b = a->u[i].buf;
    if (a->u[i].wr && f->last_wr[b] < k) f->last_wr[b] = k;
    if (a->u[i].rd && f->last_rd[b] < k) f->last_rd[b] = k;
    if (a->u[i].wr && !f->ev[k] && f->first_train_wr[b] > k) f->first_train_wr[b] = k;
  }
}

/* The nearest kept kernel that kernel accesses a must follow, or -1. */
static int64_t nearest_conflict(const Fuse *f, const Access *a) {
  int64_t d = -1;
  for (uint32_t i = 0; i < a->n; i++) {
    int32_t b = a->u[i].buf;
    if (f->last_wr[b] > d) d = f->last_wr[b];
    if (a->u[i].wr && f->last_rd[b] > d) d = f->last_rd[b];
  }
  return d;
}

/* The work-items an NDRange target launches for a kernel: its launch
 * range times the chain of plain loops (and a lone contraction's free
 * axes) below it, which its schedule folds into the range.  *chain gets
 * that chain's extents and *n their count. */
enum { MAX_CHAIN = 16 };
static int64_t ndrange_items(const KStmt *l, int64_t chain[MAX_CHAIN], int *n) {
  int64_t items = l->extent;
  *n = 0;
  for (const KStmt *s = l; s->nbody == 1 && *n < MAX_CHAIN - NNC_MAX_CONTRACT_AXES;) {
    const KStmt *c = s->body[0];
    if (c->kind == KS_CONTRACT) {
      for (int i = 0; i < c->nfree; i++) items *= (chain[(*n)++] = c->axes[i].extent);
      break;
    }
    if (c->kind != KS_LOOP || c->flags || c->batched) break;
    items *= (chain[(*n)++] = c->extent);
    s = c;
  }
  return items;
}

/* NDRange targets: fusing c into k must keep the parallelism of the
 * larger of the two (wide.nn's h2.w update, 4096 x 4096 work-items, must
 * not shrink to 4096 by joining h1.b's).  Their bodies merge into one
 * chain only when both chains have the same extents; else the fused kernel
 * launches its range alone, and each work-item then loops over what the
 * larger member spread across work-items: allowed up to MAX_SERIAL
 * iterations (a softmax row of 10 per sample, not a 4096-wide row). */
enum { MAX_SERIAL = 64 };
static bool keeps_parallelism(const Kernel *k, const Kernel *c) {
  int64_t a[MAX_CHAIN], b[MAX_CHAIN];
  int na, nb;
  const KStmt *kl = launch_loop(k), *cl = launch_loop(c);
  int64_t ik = ndrange_items(kl, a, &na), ic = ndrange_items(cl, b, &nb);
  bool same = na == nb && !memcmp(a, b, sizeof(int64_t) * (size_t)na);
  int64_t fused = same ? ik : kl->extent, most = ik > ic ? ik : ic;
  return fused >= most || most / fused <= MAX_SERIAL;
}

/* Can kernel c join kernel k (k earlier, nothing between in the way)?
 * Sets *nest for the nesting form. */
static bool can_fuse(Fuse *f, uint32_t k, uint32_t c, bool vertical, bool *nest) {
  KProgram *p = f->p;
  Kernel *kk = &p->kernels[k], *cc = &p->kernels[c];
  KStmt *ko = launch_loop(kk), *co = launch_loop(cc);
  if (!ko || !co || kk->nargs > LOWER_MAX_FUSED_ARGS || (f->sep && stays_alone(kk, true))) return false;
  if (f->sep && !keeps_parallelism(kk, cc)) return false;
  if (lower_union_args(kk, cc) > LOWER_MAX_FUSED_ARGS) return false;
  const Access *ka = &f->acc[k], *ca = &f->acc[c];
  if (!f->ev[k] && f->ev[c]) return false;
  if (f->upd[k] != f->upd[c]) return false; /* the grad and update parts of the step stay apart */
  if (f->ev[k] && !f->ev[c]) {
    for (uint32_t i = 0; i < ca->n; i++) {
      const Use *u = &ca->u[i];
      KBufKind kind = p->bufs[u->buf].kind;
      if (u->wr && (kind == KB_PARAM || kind == KB_STATE)) return false;
      if (u->rd && f->first_train_wr[u->buf] <= k) return false;
    }
  }
  if (ko->extent == co->extent && ko->batched == co->batched) {
    bool ok = true;
    for (uint32_t i = 0; ok && i < ca->n; i++) {
      const Use *ku = find_use(ka, ca->u[i].buf);
      if (!ku || !uses_conflict(ku, &ca->u[i])) continue;
      int32_t b = ca->u[i].buf;
      const KBuffer *kb = &p->bufs[b];
      ok = kb->type.batched == ko->batched && (ko->batched || (kb->type.rank >= 1 && kb->type.dims[0] == ko->extent));
      for (uint32_t j = 0; ok && j < kk->nbody; j++) ok = rowlocal_stmt(kk->body[j], b, ko->var);
      for (uint32_t j = 0; ok && j < cc->nbody; j++) ok = rowlocal_stmt(cc->body[j], b, co->var);
    }
    if (ok) {
      *nest = false;
      return true;
    }
  }
  if (vertical && !ko->batched && ko->extent == 1 && !co->batched && co->extent <= NEST_MAX) {
    *nest = true;
    return true;
  }
  return false;
}

/* ---- merging sibling loops, forwarding stored temps, dropping dead stores ---- */

/* Are e (in a loop over va) and g (in a loop over vb) the same index? */
static bool same_expr_vars(const KExpr *e, const KExpr *g, int32_t va, int32_t vb) {
  if (e == g) return true;
  if (!e || !g || e->kind != g->kind || e->dtype != g->dtype || e->index != g->index) return false;
  switch (e->kind) {
  case KE_CONST: return e->value == g->value;
  case KE_VAR: return e->var == g->var ? e->var != va && e->var != vb : e->var == va && g->var == vb;
  case KE_TEMP: return e->temp == g->temp;
  case KE_SCALAR: return e->scalar == g->scalar;
  case KE_BATCH: return true;
  case KE_LOAD:
    if (e->buf != g->buf || e->guarded != g->guarded || e->nidx != g->nidx) return false;
    for (int d = 0; d < e->nidx; d++)
      if (!same_expr_vars(e->idx[d], g->idx[d], va, vb)) return false;
    return true;
  case KE_OP:
    return e->op == g->op && same_expr_vars(e->a, g->a, va, vb) && same_expr_vars(e->b, g->b, va, vb) &&
           same_expr_vars(e->c, g->c, va, vb);
  }
  return false;
}

/* The index lists of every access to buf in a tree. */
typedef struct IdxList {
  KExpr *const *idx[64];
  int n, nidx[64];
  bool overflow;
} IdxList;

static void idx_add(IdxList *l, KExpr *const *idx, int nidx) {
  if (l->n == 64) {
    l->overflow = true;
    return;
  }
  l->idx[l->n] = idx;
  l->nidx[l->n++] = nidx;
}

typedef struct IdxWalk {
  KVisit v;
  int32_t buf;
  IdxList *l;
} IdxWalk;

static bool idx_of_store(KVisit *v, KStmt *s) {
  IdxWalk *w = (IdxWalk *)v;
  if (kstmt_is_store(s) && s->buf == w->buf) idx_add(w->l, s->idx, s->nidx);
  return false;
}
static bool idx_of_load(KVisit *v, KExpr *e) {
  IdxWalk *w = (IdxWalk *)v;
  if (e->kind == KE_LOAD && e->buf == w->buf) idx_add(w->l, e->idx, e->nidx);
  return false;
}
static void idx_stmt(const KStmt *s, int32_t buf, IdxList *l) {
  IdxWalk w = {{idx_of_store, idx_of_load}, buf, l};
  kvisit_stmt(&w.v, (KStmt *)s);
}

/* Adjacent loops a, b over the same plain range, where every buffer one
 * writes and the other touches is accessed at one element per iteration
 * (the same index everywhere, one axis indexed by the loop variable). */
/* Scratch for merge_siblings: two access lists and their slot array. */
typedef struct Siblings {
  Access a, b;
  uint32_t *slot;
} Siblings;

static bool siblings_merge(const KStmt *a, const KStmt *b, Siblings *sc) {
  if (a->kind != KS_LOOP || b->kind != KS_LOOP || a->flags || b->flags || a->batched || b->batched ||
      a->extent != b->extent)
    return false;
  sc->a.n = sc->b.n = 0;
  access_stmt(a, &sc->a, sc->slot);
  access_end(&sc->a, sc->slot);
  access_stmt(b, &sc->b, sc->slot); /* its slots stay set for the lookups below */
  bool ok = true;
  for (uint32_t u = 0; ok && u < sc->a.n; u++) {
    int32_t buf = sc->a.u[u].buf;
    if (!sc->slot[buf] || !uses_conflict(&sc->a.u[u], &sc->b.u[sc->slot[buf] - 1])) continue;
    IdxList la, lb;
    memset(&la, 0, sizeof la);
    memset(&lb, 0, sizeof lb);
    for (uint32_t i = 0; i < a->nbody; i++) idx_stmt(a->body[i], buf, &la);
    for (uint32_t i = 0; i < b->nbody; i++) idx_stmt(b->body[i], buf, &lb);
    if (la.overflow || lb.overflow || !la.n || !lb.n) {
      ok = false;
      break;
    }
    bool has_var = false;
    for (int d = 0; d < la.nidx[0]; d++)
      has_var |= la.idx[0][d]->kind == KE_VAR && la.idx[0][d]->var == a->var;
    ok = has_var;
    for (int i = 0; ok && i < la.n + lb.n; i++) {
      KExpr *const *x = i < la.n ? la.idx[i] : lb.idx[i - la.n];
      int nx = i < la.n ? la.nidx[i] : lb.nidx[i - la.n];
      if (nx != la.nidx[0]) ok = false;
      for (int d = 0; ok && d < nx; d++)
        if (!(i < la.n ? same_expr_vars(la.idx[0][d], x[d], a->var, a->var)
                       : same_expr_vars(la.idx[0][d], x[d], a->var, b->var)))
          ok = false;
    }
  }
  access_end(&sc->b, sc->slot);
  return ok;
}

static void merge_siblings(KProgram *p, Kernel *k, KStmt *s, Siblings *sc) {
  for (uint32_t i = 0; i + 1 < s->nbody;) {
    KStmt *a = s->body[i], *b = s->body[i + 1];
    if (!siblings_merge(a, b, sc)) {
      i++;
      continue;
    }
    int32_t *vmap = nnc_xmalloc(sizeof(int32_t) * (size_t)(k->nvars + 1));
    int32_t *tmap = nnc_xmalloc(sizeof(int32_t) * (size_t)(k->ntemps + 1));
    for (int32_t v = 0; v < k->nvars; v++) vmap[v] = v == b->var ? a->var : v;
    for (int32_t t = 0; t < k->ntemps; t++) tmap[t] = t;
    for (uint32_t j = 0; j < b->nbody; j++) {
      renum_stmt(b->body[j], vmap, tmap, false);
      renum_stmt(b->body[j], vmap, tmap, true);
      kstmt_append(&a->body, &a->nbody, &a->capbody, b->body[j]);
    }
    free(vmap);
    free(tmap);
    free(b->body);
    memmove(&s->body[i + 1], &s->body[i + 2], sizeof(KStmt *) * (s->nbody - i - 2));
    s->nbody--;
    nnc_stat_add("lower", "loops_merged", 1);
  }
  for (uint32_t i = 0; i < s->nbody; i++)
    if (s->body[i]->kind == KS_LOOP) merge_siblings(p, k, s->body[i], sc);
}

static bool same_index(KExpr *const *a, KExpr *const *b, int n) {
  for (int d = 0; d < n; d++)
    if (!same_expr_vars(a[d], b[d], -1, -1)) return false;
  return true;
}

/* Replaces loads of st's element by its stored temporary. */
typedef struct Forward {
  KProgram *p;
  const KStmt *st;
} Forward;

static KExpr *forward_load(KExpr *e, void *ctx) {
  const Forward *f = ctx;
  const KStmt *st = f->st;
  if (e->kind != KE_LOAD || e->buf != st->buf || e->nidx != st->nidx || !same_index(e->idx, st->idx, st->nidx))
    return e;
  nnc_stat_add("lower", "loads_forwarded", 1);
  return kexpr_temp(f->p, st->value->temp, st->value->dtype);
}

static void forward_stmt(KProgram *p, KStmt *s, const KStmt *st) {
  Forward f = {p, st};
  krewrite_stmt(s, forward_load, &f);
}

typedef struct Assigns {
  KVisit v;
  int32_t temp;
} Assigns;
static bool assigns_temp(KVisit *v, KStmt *s) {
  return (s->kind == KS_ASSIGN || s->kind == KS_LET || s->kind == KS_CONTRACT) && s->temp == ((Assigns *)v)->temp;
}
static bool stmt_assigns(const KStmt *s, int32_t temp) {
  Assigns a = {{assigns_temp, NULL}, temp};
  return kvisit_stmt(&a.v, (KStmt *)s);
}

/* A store of a temporary that stays defined after it: a plain store of
 * one, or a contraction with no free axes storing its own. */
static bool stores_live_temp(const KStmt *s) {
  if (s->kind == KS_STORE) return s->value->kind == KE_TEMP;
  return s->kind == KS_CONTRACT && s->buf >= 0 && !s->nfree && s->value->kind == KE_TEMP && s->value->temp == s->temp;
}

static void forward_temps(KProgram *p, KStmt **body, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    KStmt *s = body[i];
    if (s->kind == KS_LOOP) forward_temps(p, s->body, s->nbody);
    if (!stores_live_temp(s)) continue;
    for (uint32_t j = i + 1; j < n; j++) {
      if (kstmt_find_store(body[j], s->buf) || stmt_assigns(body[j], s->value->temp)) break;
      forward_stmt(p, body[j], s);
    }
  }
}

typedef struct CountLoads {
  KVisit v;
  uint32_t *n;
} CountLoads;
static bool count_load(KVisit *v, KExpr *e) {
  if (e->kind == KE_LOAD) ((CountLoads *)v)->n[e->buf]++;
  return false;
}
static void count_loads(const KStmt *s, uint32_t *n) {
  CountLoads c = {{NULL, count_load}, n};
  kvisit_stmt(&c.v, (KStmt *)s);
}

static bool is_a_store(KVisit *v, KStmt *s) {
  (void)v;
  return kstmt_is_store(s);
}
static bool stmt_stores(const KStmt *s) {
  KVisit v = {is_a_store, NULL};
  return kvisit_stmt(&v, (KStmt *)s);
}

static void free_tree(KStmt *s) {
  for (uint32_t i = 0; i < s->nbody; i++) free_tree(s->body[i]);
  free(s->body);
}

/* Drops stores into dead temps, and loops left empty (not the launch
 * loop).  A contraction with no free axes keeps its reduction, without
 * the store (later statements may read its temporary); if nothing does,
 * drop_unread_reductions removes it. */
static void drop_dead_stores(KStmt *s, const bool *dead) {
  uint32_t o = 0;
  for (uint32_t i = 0; i < s->nbody; i++) {
    KStmt *c = s->body[i];
    if (c->kind == KS_LOOP) drop_dead_stores(c, dead);
    if (kstmt_is_store(c) && dead[c->buf] && c->kind == KS_CONTRACT && !c->nfree) {
      c->buf = -1;
      c->nidx = 0;
      c->value = NULL;
    } else if ((kstmt_is_store(c) && dead[c->buf]) || (c->kind == KS_LOOP && c->nbody == 0)) {
      free_tree(c);
      continue;
    }
    s->body[o++] = c;
  }
  s->nbody = o;
}

/* Removes reductions without a store whose temporary nothing reads. */
static void drop_unread_reductions(const Kernel *k, KStmt *s) {
  uint32_t o = 0;
  for (uint32_t i = 0; i < s->nbody; i++) {
    KStmt *c = s->body[i];
    if (c->kind == KS_LOOP) drop_unread_reductions(k, c);
    if (c->kind == KS_CONTRACT && c->buf < 0 && !kernel_reads_temp(k, c->temp)) {
      nnc_stat_add("lower", "reductions_dropped", 1);
      continue;
    }
    s->body[o++] = c;
  }
  s->nbody = o;
}

/* ---- folding an epilogue loop into a contraction ---------------------------------------------
 *
 *   contract C[I] = V for F... with t = ...          contract D[J'] = W' for F... with t = ...
 *   for F'...: D[J] = W(C[I'])                  ->
 * when the loops F' run over the same ranges as the free axes F, C is a
 * temp read nowhere else, and W reads it only at I (with F' for F): W' and
 * J' are W and J with F for F' and V for those loads.  C is then dead.  A
 * matmul's input gradient followed by relu's gradient becomes one
 * contraction storing where(mask, t, 0). */

typedef struct Fold {
  KProgram *p;
  const KStmt *c;          /* the contraction */
  int32_t from[NNC_MAX_CONTRACT_AXES], to[NNC_MAX_CONTRACT_AXES];
  int n;
  bool at_i;               /* every load of C was at I */
} Fold;

static KExpr *fold_vars(KExpr *e, void *ctx) {
  const Fold *f = ctx;
  if (e->kind != KE_VAR) return e;
  for (int i = 0; i < f->n; i++)
    if (e->var == f->from[i]) return kexpr_var(f->p, f->to[i]);
  return e;
}

static KExpr *fold_load(KExpr *e, void *ctx) {
  Fold *f = ctx;
  if (e->kind != KE_LOAD || e->buf != f->c->buf) return e;
  bool same = e->nidx == f->c->nidx;
  for (int d = 0; same && d < e->nidx; d++) same = kexpr_equal(e->idx[d], f->c->idx[d]);
  f->at_i &= same;
  return kexpr_clone(f->p, f->c->value);
}

/* The loop chain of l matching c's free axes, ending in one store; or NULL. */
static KStmt *fold_target(const KStmt *c, KStmt *l, Fold *f) {
  f->n = 0;
  for (int i = 0; i < c->nfree; i++) {
    if (l->kind != KS_LOOP || l->flags || l->batched || l->extent != c->axes[i].extent || c->axes[i].batched)
      return NULL;
    f->from[f->n] = l->var;
    f->to[f->n++] = c->axes[i].var;
    if (i + 1 < c->nfree) {
      if (l->nbody != 1) return NULL;
      l = l->body[0];
    }
  }
  if (c->nfree == 0 || l->nbody != 1 || l->body[0]->kind != KS_STORE) return NULL;
  return l->body[0];
}

typedef struct CountOne {
  KVisit v;
  int32_t buf;
  uint32_t n;
} CountOne;
static bool count_one(KVisit *v, KExpr *e) {
  CountOne *c = (CountOne *)v;
  c->n += e->kind == KE_LOAD && e->buf == c->buf;
  return false;
}
static uint32_t count_loads_of(const KStmt *s, int32_t buf) {
  CountOne c = {{NULL, count_one}, buf, 0};
  kvisit_stmt(&c.v, (KStmt *)s);
  return c.n;
}

static void fold_epilogues(KProgram *p, Kernel *k, KStmt *s, const uint32_t *loads) {
  for (uint32_t i = 0; i + 1 < s->nbody; i++) {
    KStmt *c = s->body[i], *l = s->body[i + 1];
    if (c->kind != KS_CONTRACT || c->buf < 0 || p->bufs[c->buf].kind != KB_TEMP) continue;
    Fold f = {p, c, {0}, {0}, 0, true};
    KStmt *st = fold_target(c, l, &f);
    if (!st || st->buf == c->buf || kexpr_reads(st->value, st->buf)) continue;
    if (count_loads_of(st, c->buf) != loads[c->buf]) continue; /* C is read elsewhere too */
    /* Rename the loops' variables to the axes', then replace C's loads. */
    KExpr *idx[NNC_MAX_RANK + 1];
    for (int d = 0; d < st->nidx; d++) idx[d] = krewrite_expr(kexpr_clone(p, st->idx[d]), fold_vars, &f);
    KExpr *w = krewrite_expr(kexpr_clone(p, st->value), fold_vars, &f);
    w = krewrite_expr(w, fold_load, &f);
    if (!f.at_i) continue;
    int32_t gone = c->buf; /* its one store and all its loads were here */
    uint32_t o = 0;
    for (uint32_t a = 0; a < k->nargs; a++)
      if (k->args[a] != gone) k->args[o++] = k->args[a];
    k->nargs = o;
    c->buf = st->buf;
    c->nidx = st->nidx;
    for (int d = 0; d < st->nidx; d++) c->idx[d] = idx[d];
    c->value = w;
    free_tree(l);
    memmove(&s->body[i + 1], &s->body[i + 2], sizeof(KStmt *) * (s->nbody - i - 2));
    s->nbody--;
    nnc_stat_add("lower", "epilogues_folded", 1);
  }
}

static void tidy_kernels(KProgram *p) {
  Siblings sc = {{NULL, 0, 0}, {NULL, 0, 0}, nnc_xcalloc(p->nbufs ? p->nbufs : 1, sizeof(uint32_t))};
  for (uint32_t k = 0; k < p->nkernels; k++) {
    Kernel *kk = &p->kernels[k];
    for (uint32_t i = 0; i < kk->nbody; i++)
      if (kk->body[i]->kind == KS_LOOP) merge_siblings(p, kk, kk->body[i], &sc);
    forward_temps(p, kk->body, kk->nbody);
  }
  free(sc.a.u);
  free(sc.b.u);
  free(sc.slot);
  uint32_t *loads = nnc_xcalloc(p->nbufs ? p->nbufs : 1, sizeof *loads);
  for (uint32_t k = 0; k < p->nkernels; k++)
    for (uint32_t i = 0; i < p->kernels[k].nbody; i++) count_loads(p->kernels[k].body[i], loads);
  for (uint32_t k = 0; k < p->nkernels; k++)
    for (uint32_t i = 0; i < p->kernels[k].nbody; i++)
      if (p->kernels[k].body[i]->kind == KS_LOOP) fold_epilogues(p, &p->kernels[k], p->kernels[k].body[i], loads);
  memset(loads, 0, sizeof *loads * (p->nbufs ? p->nbufs : 1));
  for (uint32_t k = 0; k < p->nkernels; k++)
    for (uint32_t i = 0; i < p->kernels[k].nbody; i++) count_loads(p->kernels[k].body[i], loads);
  bool *dead = nnc_xcalloc(p->nbufs ? p->nbufs : 1, 1);
  bool any = false;
  for (uint32_t b = 0; b < p->nbufs; b++) {
    dead[b] = p->bufs[b].kind == KB_TEMP && p->bufs[b].slot != -2 && !loads[b];
    any |= dead[b];
  }
  for (uint32_t k = 0; any && k < p->nkernels; k++) {
    Kernel *kk = &p->kernels[k];
    bool stores_dead = false; /* the buffers it touches are its args */
    for (uint32_t i = 0; i < kk->nargs && !stores_dead; i++)
      stores_dead = dead[kk->args[i]] && kernel_writes(kk, kk->args[i]);
    if (!stores_dead) continue;
    for (uint32_t i = 0; i < kk->nbody; i++) drop_dead_stores(kk->body[i], dead);
    for (uint32_t i = 0; i < kk->nbody; i++) drop_unread_reductions(kk, kk->body[i]);
    uint32_t o = 0;
    for (uint32_t i = 0; i < kk->nargs; i++)
      if (!dead[kk->args[i]]) kk->args[o++] = kk->args[i];
    kk->nargs = o;
  }
  for (uint32_t b = 0; b < p->nbufs; b++)
    if (dead[b]) {
      p->bufs[b].slot = -2; /* drop_unused_buffers removes it */
      nnc_stat_add("lower", "temps_eliminated", 1);
    }
  free(loads);
  free(dead);
  /* A kernel left with no store (all it computed was unread) launches for nothing. */
  uint32_t o = 0;
  for (uint32_t k = 0; k < p->nkernels; k++) {
    Kernel *kk = &p->kernels[k];
    bool stores = false;
    for (uint32_t i = 0; i < kk->nbody && !stores; i++) stores = stmt_stores(kk->body[i]);
    if (!stores) {
      kernel_free_body(kk);
      nnc_stat_add("lower", "kernels_dropped", 1);
      continue;
    }
    p->kernels[o++] = *kk;
  }
  p->nkernels = o;
}

/* How far back a kernel looks for a sibling to join horizontally (one it
 * does not depend on): bounded so that fusion stays linear in the number
 * of kernels; a vertical partner is found at any distance. */
enum { HORIZONTAL_WINDOW = 64 };

void lower_fuse_step(KProgram *p, bool sep) {
  uint32_t n = p->nkernels;
  if (!n) return;
  size_t nb = p->nbufs ? p->nbufs : 1;
  Fuse f = {p, nnc_xcalloc(n, sizeof(Access)), nnc_xcalloc(n, 1), nnc_xcalloc(n, 1), sep, nnc_xmalloc(nb * sizeof(int64_t)),
            nnc_xmalloc(nb * sizeof(int64_t)), nnc_xmalloc(nb * sizeof(int64_t))};
  uint32_t *slot = nnc_xcalloc(nb, sizeof *slot);
  for (uint32_t k = 0; k < n; k++) {
    for (uint32_t i = 0; i < p->kernels[k].nbody; i++) access_stmt(p->kernels[k].body[i], &f.acc[k], slot);
    access_end(&f.acc[k], slot);
  }
  free(slot);
  for (size_t b = 0; b < nb; b++) f.last_wr[b] = f.last_rd[b] = -1, f.first_train_wr[b] = INT64_MAX;
  lower_mark_eval(p, f.ev);
  kprog_mark_update(p, f.upd);
  uint32_t out = 0;
  for (uint32_t c = 0; c < n; c++) {
    Kernel *cc = &p->kernels[c];
    int64_t target = -1;
    bool nest = false;
    if (launch_loop(cc) && !stays_alone(cc, f.sep)) {
      int64_t d = nearest_conflict(&f, &f.acc[c]);
      if (d >= 0 && can_fuse(&f, (uint32_t)d, c, true, &nest))
        target = d;
      else
        for (int64_t j = (int64_t)out - 1; j > d && (int64_t)out - j <= HORIZONTAL_WINDOW && target < 0; j--)
          if (can_fuse(&f, (uint32_t)j, c, false, &nest)) target = j;
    }
    if (target >= 0) {
      fuse_into(p, &p->kernels[target], cc, nest);
      Access *ta = &f.acc[target];
      for (uint32_t i = 0; i < f.acc[c].n; i++) {
        const Use *u = &f.acc[c].u[i];
        Use *have = find_use(ta, u->buf);
        if (have) {
          have->rd |= u->rd;
          have->wr |= u->wr;
        } else {
          VEC_PUSH(ta->u, ta->n, ta->cap, *u);
        }
      }
      note_uses(&f, (uint32_t)target, &f.acc[c]);
      nnc_stat_add("lower", nest ? "kernels_nested" : "kernels_fused", 1);
      continue;
    }
    if (out != c) {
      p->kernels[out] = *cc;
      Access t = f.acc[out];
      f.acc[out] = f.acc[c];
      f.acc[c] = t;
      f.ev[out] = f.ev[c];
      f.upd[out] = f.upd[c];
    }
    note_uses(&f, out, &f.acc[out]);
    out++;
  }
  p->nkernels = out;
  for (uint32_t k = 0; k < n; k++) free(f.acc[k].u);
  free(f.acc);
  free(f.ev);
  free(f.upd);
  free(f.last_wr);
  free(f.last_rd);
  free(f.first_train_wr);
  tidy_kernels(p);
}

bool lower_fuse(KProgram *p, bool sep) {
  uint32_t t = 0; /* the train plan lowering writes: every kernel in order but the prediction's copy */
  bool ok = true;
  for (uint32_t k = 0; k < p->nkernels; k++) {
    if (lower_predict_only(p, &p->kernels[k])) continue;
    ok &= t < p->ntrain && p->train[t] == k;
    t++;
  }
  if (!ok || t != p->ntrain) {
    diag_error_plain("fuse needs the train plan lowering writes (every kernel once, in order), not another");
    return false;
  }
  schedule_cpu_clear(p); /* fusion moves the statements the CPU's plans name */
  for (uint32_t b = 0; b < p->nbufs; b++)
    if (p->bufs[b].kind == KB_TEMP) p->bufs[b].slot = -1; /* lifetimes change: memplan again */
  p->nslots = 0;
  lower_fuse_step(p, sep);
  lower_drop_buffers(p);
  lower_build_plans(p);
  nnc_stat_add("fuse", "kernels", p->nkernels); /* lowering counted them before */
  nnc_stat_add("fuse", "eval_kernels", p->neval);
  return true;
}
