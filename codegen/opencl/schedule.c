/* codegen/opencl/schedule.c - shaping kernels for NDRange launches.
 *
 * Lowering makes the outermost loop of every kernel its launch range, and
 * for most kernels that loop is the batch: 32 work-items for a whole
 * [B, 64] layer is far too few for a GPU.  Before rendering for an NDRange
 * dialect, three rewrites on the kernel IR (each keeps results bit for bit):
 *
 *  1. Row accumulations into dot products.  lower.c writes a matmul whose
 *     right operand is contiguous as
 *        for z: dst[i, z] = 0;  for k: for j: dst[i, j] = dst[i, j] + term
 *     which suits a CPU (the j loop vectorises) but serialises a whole row
 *     per work-item.  It becomes
 *        for j: { acc = 0;  for k: acc = acc + term;  dst[i, j] = acc }
 *     (the same additions in the same order per element).
 *  2. Collapse.  A perfect nest `for a: for b: ... body` whose inner loops
 *     have independent iterations (c_loop_independent) becomes one loop over
 *     a * b * ..., each old variable rebuilt from the new one by division and
 *     remainder, so every output element is a work-item.  codegen/plan.c then
 *     launches the collapsed range.
 *  3. Tiling.  A collapsed dot product `acc = 0; for k: acc = acc + x * y;
 *     store` where x does not depend on the output column and y not on the
 *     output row is marked for the local-memory tiled rendering (emit_c.c),
 *     when it is large enough to pay and the dialect has local memory.
 *
 * Single-work-item dialects keep the kernels as lowered: a loop nest that
 * streams through memory is what an FPGA pipeline wants.
 */
#include "codegen/opencl/emit_c.h"

#include "passes/pass.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_NEST = NNC_MAX_RANK + 2, TILE_EDGE = 16 };

/* ---- independence ------------------------------------------------------------------------ */

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

bool c_loop_independent(const Kernel *k, const KStmt *loop) {
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

/* ---- 1. row accumulations into dot products ------------------------------------------------ */

static bool is_zero_store(const KStmt *s) {
  return s->kind == KS_STORE && s->value->kind == KE_CONST && s->value->value == 0;
}

bool c_match_rows(const KStmt *c, CRows *r) {
  memset(r, 0, sizeof *r);
  if (c->kind != KS_LOOP || c->nbody != 2) return false;
  KStmt *z = c->body[0], *red = c->body[1];
  if (z->kind != KS_LOOP || z->batched || (z->flags & KL_REDUCE) || z->nbody != 1 || !is_zero_store(z->body[0]))
    return false;
  if (red->kind != KS_LOOP || !(red->flags & KL_REDUCE)) return false;
  KStmt *in = red;
  while (in->nbody == 1 && in->body[0]->kind == KS_LOOP && (in->body[0]->flags & KL_REDUCE)) in = in->body[0];
  if (in->nbody != 1) return false;
  KStmt *row = in->body[0];
  if (row->kind != KS_LOOP || row->batched || (row->flags & KL_REDUCE) || row->extent != z->extent ||
      row->nbody != 1)
    return false;
  KStmt *acc = row->body[0], *s0 = z->body[0];
  if (acc->kind != KS_STORE || acc->buf != s0->buf || acc->nidx != s0->nidx) return false;
  const KExpr *v = acc->value;
  if (v->kind != KE_OP || v->op != OP_ADD || v->a->kind != KE_LOAD || v->a->buf != acc->buf ||
      v->a->nidx != acc->nidx || v->dtype != DT_F32)
    return false;
  bool has_row = false;
  for (int d = 0; d < acc->nidx; d++) {
    const KExpr *a = acc->idx[d], *o = s0->idx[d];
    if (!kexpr_equal(v->a->idx[d], a)) return false;
    if (o->kind == KE_VAR && o->var == z->var) {
      if (a->kind != KE_VAR || a->var != row->var) return false;
      has_row = true;
    } else if (!kexpr_equal(a, o) || kexpr_mentions(a, row->var) || kexpr_mentions(o, z->var)) {
      return false;
    }
  }
  if (!has_row || kexpr_reads(v->b, acc->buf) || kexpr_mentions(v->b, z->var)) return false;
  r->zero = z;
  r->red = red;
  r->inner_red = in;
  r->row = row;
  r->acc = acc;
  r->term = v->b;
  return true;
}

/* Rewrites container (matching r) into `for j: acc = 0; reductions: acc =
 * acc + term; dst[.., j] = acc`.  The row loop becomes the j loop, so term
 * needs no renaming. */
static void rows_to_dot(KProgram *p, Kernel *k, KStmt *c, const CRows *r) {
  int32_t t = kernel_new_temp(p, k, DT_F32);
  KExpr *acc = kexpr_temp(p, t, DT_F32);
  r->inner_red->body[0] = kstmt_assign(p, t, kexpr_op(p, OP_ADD, DT_F32, acc, r->term, NULL));
  KStmt *store = kstmt_store(p, r->acc->buf, r->acc->idx, r->acc->nidx, acc);
  KStmt *row = r->row;
  row->nbody = 0;
  kstmt_append(&row->body, &row->nbody, &row->capbody, kstmt_let(p, t, kexpr_const(p, DT_F32, 0)));
  kstmt_append(&row->body, &row->nbody, &row->capbody, r->red);
  kstmt_append(&row->body, &row->nbody, &row->capbody, store);
  free(r->zero->body); /* its one store lives in the arena */
  r->zero->body = NULL;
  r->zero->nbody = r->zero->capbody = 0;
  c->body[0] = row;
  c->nbody = 1;
}

/* ---- 2. collapse ----------------------------------------------------------------------------- */

/* The perfect nest below the launch loop whose loops may join it. */
static int nest_chain(const Kernel *k, KStmt **loops) {
  if (k->nbody != 1 || k->body[0]->kind != KS_LOOP) return 0;
  int n = 0;
  loops[n++] = k->body[0];
  while (n < MAX_NEST) {
    KStmt *cur = loops[n - 1];
    if (cur->nbody != 1 || cur->body[0]->kind != KS_LOOP) break;
    KStmt *c = cur->body[0];
    if ((c->flags & KL_REDUCE) || c->batched || c->extent < 1 || !c_loop_independent(k, c)) break;
    loops[n++] = c;
  }
  return n;
}

typedef struct Subst {
  const int32_t *vars;
  KExpr *const *repl;
  int n;
} Subst;
static KExpr *subst_var(KExpr *e, void *ctx) {
  const Subst *s = ctx;
  if (e->kind == KE_VAR)
    for (int i = 0; i < s->n; i++)
      if (e->var == s->vars[i]) return s->repl[i];
  return e;
}
static void subst_stmt(KStmt *st, const int32_t *vars, KExpr *const *repl, int n) {
  Subst s = {vars, repl, n};
  krewrite_stmt(st, subst_var, &s);
}

static KExpr *iop(KProgram *p, Op op, KExpr *a, int64_t c) {
  KExpr *e = kexpr_op(p, op, DT_I32, a, kexpr_index_const(p, c), NULL);
  e->index = true;
  return e;
}

/* Folds loops[1..n) into loops[0]: a new variable g over the product of
 * the extents, loop i's variable = (g / stride_i) % extent_i. */
static void collapse(KProgram *p, Kernel *k, KStmt **loops, int n) {
  int32_t g = kernel_new_var(k);
  KExpr *gv = kexpr_var(p, g);
  int32_t vars[MAX_NEST];
  KExpr *repl[MAX_NEST];
  int64_t stride = 1;
  for (int i = n - 1; i >= 0; i--) {
    vars[i] = loops[i]->var;
    KExpr *q = stride == 1 ? gv : iop(p, OP_DIV, gv, stride);
    if (i > 0) { /* q % extent as q - q / extent * extent, like lower.c */
      KExpr *e = kexpr_op(p, OP_SUB, DT_I32, q, iop(p, OP_MUL, iop(p, OP_DIV, q, loops[i]->extent), loops[i]->extent),
                          NULL);
      e->index = true;
      q = e;
    }
    repl[i] = q;
    if (i > 0) stride *= loops[i]->extent;
  }
  KStmt *in = loops[n - 1];
  for (uint32_t i = 0; i < in->nbody; i++) subst_stmt(in->body[i], vars, repl, n);
  KStmt *outer = loops[0];
  KStmt **body = in->body;
  uint32_t nbody = in->nbody, cap = in->capbody;
  in->body = NULL;
  for (int i = 0; i < n - 1; i++) free(loops[i]->body); /* each held only the next loop */
  outer->var = g;
  outer->extent *= stride;
  outer->body = body;
  outer->nbody = nbody;
  outer->capbody = cap;
}

/* ---- 3. tiling ----------------------------------------------------------------------------------- */

/* The innermost body of a collapsible nest: `let t = 0; for k (reduce):
 * t = t + x * y; stores...`, x free of the column variable and y of the row
 * variables (or the other way round). */
static bool match_tile(const Kernel *k, KStmt **loops, int n, CKernelPlan *kp) {
  if (n < 2) return false;
  const KStmt *in = loops[n - 1];
  if (in->nbody < 3) return false;
  const KStmt *let = in->body[0], *red = in->body[1];
  if (let->kind != KS_LET || k->temp_types[let->temp] != DT_F32 || let->value->kind != KE_CONST ||
      let->value->value != 0)
    return false;
  if (red->kind != KS_LOOP || !(red->flags & KL_REDUCE) || red->nbody != 1) return false;
  const KStmt *as = red->body[0];
  if (as->kind != KS_ASSIGN || as->temp != let->temp) return false;
  const KExpr *v = as->value;
  if (v->kind != KE_OP || v->op != OP_ADD || v->a->kind != KE_TEMP || v->a->temp != let->temp) return false;
  const KExpr *t = v->b;
  if (t->kind != KE_OP || t->op != OP_MUL || t->dtype != DT_F32 || kexpr_reads_temp(t, -1)) return false;
  for (uint32_t i = 2; i < in->nbody; i++)
    if (in->body[i]->kind == KS_LOOP) return false;
  /* Operands read nothing this kernel writes (tiles are loaded by the whole group). */
  for (uint32_t i = 2; i < in->nbody; i++)
    if (in->body[i]->kind == KS_STORE && (kexpr_reads(t, in->body[i]->buf))) return false;
  int32_t col = in->var;
  bool a_rows = !kexpr_mentions(t->a, col), b_cols = true, b_rows = !kexpr_mentions(t->b, col), a_cols = true;
  for (int i = 0; i < n - 1; i++) {
    b_cols &= !kexpr_mentions(t->b, loops[i]->var);
    a_cols &= !kexpr_mentions(t->a, loops[i]->var);
  }
  if (a_rows && b_cols)
    kp->swap = false;
  else if (b_rows && a_cols)
    kp->swap = true;
  else
    return false;
  kp->let = let;
  kp->red = red;
  kp->term = t;
  return true;
}

/* Is a tiled product worth it: enough columns to fill a tile and a deep
 * enough reduction to amortise the barriers. */
static bool tile_pays(const KStmt **loops, int n, const KStmt *red, int64_t batch) {
  int64_t cols = loops[n - 1]->extent, rows = 1;
  for (int i = 0; i < n - 1; i++) rows *= loops[i]->extent * (loops[i]->batched ? batch : 1);
  int64_t depth = red->extent * (red->batched ? batch : 1);
  return cols >= TILE_EDGE && rows >= TILE_EDGE && depth >= 2 * TILE_EDGE;
}

/* The deepest tile that fits: two float tiles of TILE_EDGE x depth. */
static int tile_depth(const CDialect *d) {
  if (!d->local_qual || d->tile_k <= 0) return 0;
  int64_t fit = d->local_mem / (2 * TILE_EDGE * (int64_t)sizeof(float));
  int depth = 1;
  while (depth * 2 <= d->tile_k && depth * 2 <= fit) depth *= 2;
  return depth <= fit ? depth : 0;
}

void c_schedule(KProgram *p, const CDialect *d, int64_t batch, CSchedule *s) {
  memset(s, 0, sizeof *s);
  s->n = p->nkernels;
  s->k = nnc_xcalloc(p->nkernels ? p->nkernels : 1, sizeof *s->k);
  for (uint32_t i = 0; i < p->nkernels; i++) s->k[i].ncollapsed = 1;
  if (d->launch != CL_LAUNCH_NDRANGE) return;
  s->tile_k = tile_depth(d);
  bool any_tiled = false;
  for (uint32_t i = 0; i < p->nkernels; i++) {
    Kernel *k = &p->kernels[i];
    CKernelPlan *kp = &s->k[i];
    /* 1: the first row accumulation along the launch loop's perfect nest */
    for (KStmt *c = k->nbody == 1 ? k->body[0] : NULL; c && c->kind == KS_LOOP;
         c = c->nbody == 1 && !(c->body[0]->flags & KL_REDUCE) ? c->body[0] : NULL) {
      CRows r;
      if (c_match_rows(c, &r)) {
        rows_to_dot(p, k, c, &r);
        kp->rows_to_dot = true;
        nnc_stat_add("opencl", "rows_to_dot", 1);
        break;
      }
    }
    /* 2 and 3 */
    KStmt *loops[MAX_NEST];
    int n = nest_chain(k, loops);
    if (n < 1) continue;
    kp->inner = loops[n - 1]->extent;
    if (s->tile_k && match_tile(k, loops, n, kp) && tile_pays((const KStmt **)loops, n, kp->red, batch)) {
      kp->tiled = any_tiled = true;
      nnc_stat_add("opencl", "tiled_matmuls", 1);
    } else {
      kp->let = kp->red = NULL;
      kp->term = NULL;
    }
    if (n > 1) {
      collapse(p, k, loops, n);
      kp->ncollapsed = n;
      nnc_stat_add("opencl", "loops_collapsed", n - 1);
    }
  }
  if (!any_tiled) s->tile_k = 0;
}

void c_schedule_free(CSchedule *s) {
  free(s->k);
  memset(s, 0, sizeof *s);
}
