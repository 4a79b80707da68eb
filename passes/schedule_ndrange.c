/* passes/schedule_ndrange.c - shaping kernels for NDRange launches (the
 * opencl dialects' and the gpu's first step; schedule_ndrange.h).
 *
 * Lowering makes the outermost loop of every kernel its launch range, and
 * for most kernels that loop is the batch: 32 work-items for a whole
 * [B, 64] layer is far too few for a GPU.  Before rendering for an NDRange
 * target, three rewrites on the kernel IR (each keeps results bit for bit):
 *
 *  1. Free axes out.  Each contraction's free axes become loops around it
 *     (kernel_hoist_free_axes): one reduction per output element.
 *  2. Collapse.  A perfect nest `for a: for b: ... body` whose inner loops
 *     have independent iterations (kloop_independent) becomes one loop over
 *     a * b * ..., each old variable rebuilt from the new one by division and
 *     remainder, so every output element is a work-item.  codegen/descriptor.c then
 *     launches the collapsed range.
 *  3. Tiling.  A contraction `t = sum k of x * y` at the bottom of a
 *     collapsed nest, x free of the output column and y of the output row,
 *     is marked for the local-memory tiled rendering (the OpenCL C
 *     emitter's, the GPU's), when it is large enough to pay and the target
 *     has local memory.
 *
 * Before all three, with NdrangeOptions.igemm, a kernel that is one
 * contraction over several reduction axes (a convolution, its data or
 * filter gradient) is planned as an implicit GEMM (igemm.h) and otherwise
 * left as lowered: rows, columns and k are groups of its own axes, which
 * the tiled rendering decodes, and its launch range becomes 16 x 16
 * work-items per 16 x 16 tile of outputs.
 */
#include "passes/schedule_ndrange.h"

#include "support/stats.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_NEST = NNC_MAX_RANK + 2, TILE_EDGE = 16 };

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
    if ((c->flags & KL_REDUCE) || c->batched || c->extent < 1 || !kloop_independent(k, c)) break;
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

/* The innermost body of a collapsible nest begins with a contraction of
 * two f32 factors over one reduction axis, `t = sum k of x * y`, followed
 * by stores only; x is free of the column variable and y of the row
 * variables (or the other way round). */
static bool match_tile(const Kernel *k, KStmt **loops, int n, NdKernelPlan *kp) {
  (void)k;
  if (n < 2) return false;
  const KStmt *in = loops[n - 1];
  if (in->nbody < 1) return false;
  const KStmt *c = in->body[0];
  if (c->kind != KS_CONTRACT || c->nfree || c->nred != 1 || c->combine != OP_ADD || !c->b ||
      c->a->dtype != DT_F32 || kexpr_reads_temp(c->a, -1) || kexpr_reads_temp(c->b, -1))
    return false;
  for (uint32_t i = 1; i < in->nbody; i++)
    if (in->body[i]->kind != KS_STORE) return false;
  /* Factors read nothing this kernel writes (tiles are loaded by the whole group). */
  for (uint32_t i = 0; i < in->nbody; i++)
    if (kexpr_reads(c->a, in->body[i]->buf) || kexpr_reads(c->b, in->body[i]->buf)) return false;
  int32_t col = in->var;
  bool a_rows = !kexpr_mentions(c->a, col), b_cols = true, b_rows = !kexpr_mentions(c->b, col), a_cols = true;
  for (int i = 0; i < n - 1; i++) {
    b_cols &= !kexpr_mentions(c->b, loops[i]->var);
    a_cols &= !kexpr_mentions(c->a, loops[i]->var);
  }
  if (a_rows && b_cols)
    kp->swap = false;
  else if (b_rows && a_cols)
    kp->swap = true;
  else
    return false;
  kp->contract = c;
  return true;
}

/* Is a tiled product worth it: enough columns to fill a tile and a deep
 * enough reduction to amortise the barriers. */
static bool tile_pays(const KStmt **loops, int n, const KAxis *red, int64_t batch) {
  int64_t cols = loops[n - 1]->extent, rows = 1;
  for (int i = 0; i < n - 1; i++) rows *= loops[i]->extent * (loops[i]->batched ? batch : 1);
  int64_t depth = red->extent * (red->batched ? batch : 1);
  return cols >= TILE_EDGE && rows >= TILE_EDGE && depth >= 2 * TILE_EDGE;
}

/* The deepest tile that fits: two float tiles of TILE_EDGE x depth. */
static int tile_depth(const NdrangeOptions *o) {
  if (o->local_mem <= 0 || o->tile_k <= 0) return 0;
  int64_t fit = o->local_mem / (2 * TILE_EDGE * (int64_t)sizeof(float));
  int depth = 1;
  while (depth * 2 <= o->tile_k && depth * 2 <= fit) depth *= 2;
  return depth <= fit ? depth : 0;
}

void ndrange_schedule(KProgram *p, const NdrangeOptions *o, NdSchedule *s) {
  memset(s, 0, sizeof *s);
  s->n = p->nkernels;
  s->k = nnc_xcalloc(p->nkernels ? p->nkernels : 1, sizeof *s->k);
  for (uint32_t i = 0; i < p->nkernels; i++) s->k[i].ncollapsed = 1;
  s->tile_k = tile_depth(o);
  int64_t batch = o->batch;
  bool any_tiled = false;
  for (uint32_t i = 0; i < p->nkernels; i++) {
    Kernel *k = &p->kernels[i];
    NdKernelPlan *kp = &s->k[i];
    if (o->keep && o->keep[i]) continue;
    if (o->igemm && s->tile_k && igemm_plan(p, k, batch, &kp->ig)) {
      KStmt *l = k->body[0];
      kp->tiled = kp->igemm = any_tiled = true;
      kp->contract = kp->ig.contract;
      l->extent = igemm_launch(&kp->ig, TILE_EDGE, TILE_EDGE, TILE_EDGE * TILE_EDGE);
      l->batched = kp->ig.batched;
      nnc_stat_add("opencl", "implicit_gemms", 1);
      continue;
    }
    /* 1 */
    kernel_hoist_free_axes(p, k);
    /* 2 and 3 */
    KStmt *loops[MAX_NEST];
    int n = nest_chain(k, loops);
    if (n < 1) continue;
    kp->inner = loops[n - 1]->extent;
    if (s->tile_k && match_tile(k, loops, n, kp) && tile_pays((const KStmt **)loops, n, &kp->contract->axes[0], batch)) {
      kp->tiled = any_tiled = true;
      nnc_stat_add("opencl", "tiled_matmuls", 1);
    } else {
      kp->contract = NULL;
    }
    if (n > 1) {
      collapse(p, k, loops, n);
      kp->ncollapsed = n;
      nnc_stat_add("opencl", "loops_collapsed", n - 1);
    }
  }
  if (!any_tiled) s->tile_k = 0;
}

void ndrange_schedule_free(NdSchedule *s) {
  free(s->k);
  memset(s, 0, sizeof *s);
}
