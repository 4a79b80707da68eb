/* codegen/gpu/schedule.c - mapping kernels onto blocks and threads.
 *
 * First the NDRange schedule (passes/schedule_ndrange.c) reshapes
 * the kernels on the kernel IR, exactly as for an OpenCL GPU: each
 * contraction's free axes become loops, and perfect nests of independent
 * loops fold into the launch loop, so a [B, 64] layer launches 64 B
 * threads, not B.  It also finds the contractions worth tiling and tells
 * which factor follows the output row and which the column.  Then, per
 * kernel, a form (gpu.h):
 *
 *   GK_TILED  an implicit GEMM (igemm.c: a convolution, its data or
 *             filter gradient; rm x rn outputs per thread), planned
 *             before the NDRange schedule runs, which leaves it alone; or
 *             what the NDRange schedule tiles, with rm = rn = 8, 4, 2 or
 *             1: the largest whose tiles still number enough to fill the
 *             GPU at the batch size the program is built for
 *             (a 4096 x 4096 weight gradient takes 128 x 128 tiles; the
 *             784 x 64 weight gradient of mnist.nn 16 x 16).  A matmul too
 *             small for even 64 tiles of 16 x 16 but with a long reduction
 *             (mnist.nn's first layer at batch 32: 8 tiles, 784 deep)
 *             goes on warps instead: 2048 warps keep more of the GPU busy
 *             than 8 blocks stepping 49 times through shared memory.
 *   GK_WARP   a contraction by add, max or min into one f32 temporary whose
 *             reduction is long (>= 64) while its outputs are few (a
 *             [B, 10] logits layer over 4096 inputs, a bias gradient summed
 *             over a batch of 256): one warp per output.
 *   GK_THREAD everything else.
 *
 * Finally each launch loop's extent becomes the threads its form wants
 * (32 per output for GK_WARP, about one block per tile for GK_TILED); the
 * plan keeps the old extent, which is what the emitter iterates over.  The
 * other contractions become loops (kernel_expand_contractions).
 */
#include "codegen/gpu/gpu.h"

#include "codegen/llvm/emit.h"
#include "passes/schedule_ndrange.h"
#include "support/stats.h"

#include <stdlib.h>
#include <string.h>

enum {
  WARP_MIN_DEPTH = 64,     /* shorter reductions stay in one thread */
  WARP_MAX_OUTPUTS = 65536,/* ...as do reductions with this many outputs, */
  WARP_ANY_DEPTH = 1024,   /* ...unless they are this long */
};

/* Does any load in e move by exactly one element per step of v? */
typedef struct Contig {
  KVisit v;
  const KProgram *p;
  int32_t var;
} Contig;
static bool unit_stride_load(KVisit *v, KExpr *e) {
  const Contig *c = (const Contig *)v;
  int64_t s;
  return e->kind == KE_LOAD && kaccess_stride(c->p, e->buf, e->idx, e->nidx, c->var, &s) && s == 1;
}
bool gpu_contiguous_in(const KProgram *p, const KExpr *e, int32_t var) {
  Contig c = {{NULL, unit_stride_load}, p, var};
  return kvisit_expr(&c.v, (KExpr *)e);
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* rm = rn for a rows x cols output: the largest that leaves enough tiles. */
static int pick_tile(int64_t rows, int64_t cols) {
  static const int choices[] = {8, 4, 2};
  for (int i = 0; i < 3; i++) {
    int64_t edge = 16 * choices[i];
    int64_t want = choices[i] == 8 ? 2 * GPU_TILES_WANTED : GPU_TILES_WANTED;
    if (ceil_div(rows, edge) * ceil_div(cols, edge) >= want) return choices[i];
  }
  return 1;
}

static void plan_tiled(const KProgram *p, const NdKernelPlan *cp, const GpuScheduleOptions *o, int32_t gv,
                       GpuKernelPlan *g) {
  g->kind = GK_TILED;
  g->contract = cp->contract;
  g->x = cp->swap ? cp->contract->b : cp->contract->a;
  g->y = cp->swap ? cp->contract->a : cp->contract->b;
  const KAxis *r = &cp->contract->axes[0];
  g->x_kmajor = gpu_contiguous_in(p, g->x, r->var);
  g->y_kmajor = gpu_contiguous_in(p, g->y, r->var);
  /* the launch loop's g = row * cols + col, k the reduction's variable */
  int64_t cols = cp->inner, rows = g->extent * (g->batched ? o->batch : 1) / cols;
  g->tg[TG_ROW] = (TileGroup){{{gv, g->extent / cols, g->batched, cols}}, 1};
  g->tg[TG_COL] = (TileGroup){{{gv, cols, false, 1}}, 1};
  g->tg[TG_K] = (TileGroup){{{r->var, r->extent, r->batched, 1}}, 1};
  g->rm = g->rn = o->tile > 0 ? o->tile : pick_tile(rows, cols);
}

/* The launch loop's body begins with an f32 contraction by add, max or
 * min with no free axes and one reduction axis. */
static bool match_warp(const Kernel *k, const KStmt *l, GpuKernelPlan *g) {
  if (!l || l->nbody < 1) return false;
  const KStmt *c = l->body[0];
  if (c->kind != KS_CONTRACT || c->nfree || c->nred != 1 || k->temp_types[c->temp] != DT_F32) return false;
  g->contract = c;
  return true;
}

/* The warp form's reduction loop, `for r: t = t op term`, built once here. */
static KStmt *warp_loop(KProgram *p, const KStmt *c) {
  KStmt *r = kstmt_loop(p, c->axes[0].var, c->axes[0].extent, c->axes[0].batched, KL_REDUCE);
  KExpr *t = kexpr_temp(p, c->temp, DT_F32);
  KExpr *term = c->b ? kexpr_op(p, OP_MUL, DT_F32, c->a, c->b, NULL) : c->a;
  kstmt_append(&r->body, &r->nbody, &r->capbody, kstmt_assign(p, c->temp, kexpr_op(p, c->combine, DT_F32, t, term, NULL)));
  return r;
}

/* Fewer than half the wanted tiles even at 16 x 16. */
static bool too_few_tiles(const GpuKernelPlan *g, const NdKernelPlan *cp, int64_t batch) {
  int64_t rows = g->extent * (g->batched ? batch : 1) / cp->inner;
  return ceil_div(rows, 16) * ceil_div(cp->inner, 16) < GPU_TILES_WANTED / 2;
}

static bool warp_pays(const GpuKernelPlan *g, int64_t batch) {
  int64_t outputs = g->extent * (g->batched ? batch : 1);
  const KAxis *r = &g->contract->axes[0];
  int64_t depth = r->extent * (r->batched ? batch : 1);
  return depth >= WARP_MIN_DEPTH && (outputs <= WARP_MAX_OUTPUTS || depth >= WARP_ANY_DEPTH) &&
         g->extent <= INT64_MAX / GPU_WARP;
}

static bool is_planned(const KStmt *s, void *plan) { return s == ((const GpuKernelPlan *)plan)->contract; }

void gpu_schedule(KProgram *p, const GpuScheduleOptions *o, GpuSchedule *s) {
  GpuScheduleOptions opts = *o;
  if (opts.batch <= 0) opts.batch = 32;
  if (opts.tile > 8) opts.tile = 8;
  while (opts.tile > 1 && (opts.tile & (opts.tile - 1))) opts.tile--; /* 1, 2, 4 or 8 */
  memset(s, 0, sizeof *s);
  s->n = p->nkernels;
  s->k = nnc_xcalloc(p->nkernels ? p->nkernels : 1, sizeof *s->k);
  /* Implicit GEMMs first: they read the contractions as lowering left
   * them, free axes and all, so the NDRange shaping leaves them alone. */
  bool *igemm = nnc_xcalloc(p->nkernels ? p->nkernels : 1, sizeof *igemm);
  for (uint32_t i = 0; i < p->nkernels && opts.tile >= 0; i++)
    igemm[i] = gpu_plan_igemm(p, &p->kernels[i], &opts, &s->k[i]);
  /* The NDRange shaping, with tiles 16 deep that fit 48 KiB of shared memory. */
  NdrangeOptions no = {.batch = opts.batch, .local_mem = 48 * 1024, .tile_k = GPU_TK, .keep = igemm};
  NdSchedule cs;
  ndrange_schedule(p, &no, &cs);

  for (uint32_t i = 0; i < p->nkernels; i++) {
    Kernel *k = &p->kernels[i];
    GpuKernelPlan *g = &s->k[i];
    KStmt *l = k->nbody == 1 && k->body[0]->kind == KS_LOOP ? k->body[0] : NULL;
    if (igemm[i]) {
      l->extent = gpu_igemm_launch(g);
      l->batched = g->batched;
      nnc_stat_add("gpu", "implicit_gemms", 1);
      continue;
    }
    g->kind = GK_THREAD;
    g->extent = l ? l->extent : 1;
    g->batched = l && l->batched;
    bool tiled = l && opts.tile >= 0 && i < cs.n && cs.k[i].tiled;
    if (tiled && !opts.tile && opts.warp >= 0 && too_few_tiles(g, &cs.k[i], opts.batch) && match_warp(k, l, g) &&
        warp_pays(g, opts.batch))
      tiled = false; /* the warp form below */
    if (tiled) {
      plan_tiled(p, &cs.k[i], &opts, l->var, g);
      l->extent = g->extent / (g->rm * g->rn) > 0 ? g->extent / (g->rm * g->rn) : 1;
      nnc_stat_add("gpu", "tiled_matmuls", 1);
    } else if (opts.warp >= 0 && match_warp(k, l, g) && (opts.warp > 0 || warp_pays(g, opts.batch))) {
      g->kind = GK_WARP;
      g->red = warp_loop(p, g->contract);
      l->extent = g->extent * GPU_WARP;
      nnc_stat_add("gpu", "warp_reductions", 1);
    } else {
      g->contract = NULL;
    }
    kernel_expand_contractions(p, k, is_planned, g); /* the others as loops */
  }
  free(igemm);
  ndrange_schedule_free(&cs);
}

void gpu_schedule_free(GpuSchedule *s) {
  for (uint32_t i = 0; i < s->n; i++) /* the warp forms' loops are the plan's own (warp_loop) */
    if (s->k[i].kind == GK_WARP && s->k[i].red) free(s->k[i].red->body);
  free(s->k);
  memset(s, 0, sizeof *s);
}
