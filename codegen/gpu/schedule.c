/* codegen/gpu/schedule.c - mapping kernels onto blocks and threads.
 *
 * First the opencl NDRange schedule (codegen/opencl/schedule.c) reshapes
 * the kernels on the kernel IR, exactly as for an OpenCL GPU: a matmul's
 * row accumulation becomes one dot product per output, and perfect nests
 * of independent loops fold into the launch loop, so a [B, 64] layer
 * launches 64 B threads, not B.  It also finds the dot products worth
 * tiling and splits their term into the factor that follows the output
 * row and the one that follows the column.  Then, per kernel, a form
 * (gpu.h):
 *
 *   GK_TILED  what the NDRange schedule tiles.  Outputs per thread rm = rn
 *             = 8, 4, 2 or 1: the largest whose tiles still number enough
 *             to fill the GPU at the batch size the program is built for
 *             (a 4096 x 4096 weight gradient takes 128 x 128 tiles; the
 *             784 x 64 weight gradient of mnist.nn 16 x 16).  A matmul too
 *             small for even 64 tiles of 16 x 16 but with a long reduction
 *             (mnist.nn's first layer at batch 32: 8 tiles, 784 deep)
 *             goes on warps instead: 2048 warps keep more of the GPU busy
 *             than 8 blocks stepping 49 times through shared memory.
 *   GK_WARP   a reduction into one f32 temporary by add, max or min whose
 *             reduction is long (>= 64) while its outputs are few (a
 *             [B, 10] logits layer over 4096 inputs, a bias gradient summed
 *             over a batch of 256): one warp per output.
 *   GK_THREAD everything else.
 *
 * Finally each launch loop's extent becomes the threads its form wants
 * (32 per output for GK_WARP, about one block per tile for GK_TILED); the
 * plan keeps the old extent, which is what the emitter iterates over.
 */
#include "codegen/gpu/gpu.h"

#include "codegen/llvm/emit.h"
#include "codegen/opencl/emit_c.h"
#include "passes/pass.h"

#include <stdlib.h>
#include <string.h>

enum {
  TILES_WANTED = 128,      /* tiles that keep an H100's 132 SMs (or any smaller GPU) busy */
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
static bool contiguous_in(const KProgram *p, const KExpr *e, int32_t var) {
  Contig c = {{NULL, unit_stride_load}, p, var};
  return kvisit_expr(&c.v, (KExpr *)e);
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* rm = rn for a rows x cols output: the largest that leaves enough tiles. */
static int pick_tile(int64_t rows, int64_t cols) {
  static const int choices[] = {8, 4, 2};
  for (int i = 0; i < 3; i++) {
    int64_t edge = 16 * choices[i];
    int64_t want = choices[i] == 8 ? 2 * TILES_WANTED : TILES_WANTED;
    if (ceil_div(rows, edge) * ceil_div(cols, edge) >= want) return choices[i];
  }
  return 1;
}

static void plan_tiled(const KProgram *p, const CKernelPlan *cp, const GpuScheduleOptions *o, GpuKernelPlan *g) {
  g->kind = GK_TILED;
  g->let = cp->let;
  g->red = cp->red;
  g->cols = cp->inner;
  g->x = cp->swap ? cp->term->b : cp->term->a;
  g->y = cp->swap ? cp->term->a : cp->term->b;
  g->x_kmajor = contiguous_in(p, g->x, g->red->var);
  g->y_kmajor = contiguous_in(p, g->y, g->red->var);
  int64_t rows = g->extent * (g->batched ? o->batch : 1) / g->cols;
  g->rm = g->rn = o->tile > 0 ? o->tile : pick_tile(rows, g->cols);
}

/* `acc = acc op term` or `acc = term op acc` with term free of acc: op. */
static bool reduction_op(const KStmt *as, int32_t t, Op *op) {
  const KExpr *v = as->value;
  if (as->kind != KS_ASSIGN || as->temp != t || !v || v->kind != KE_OP || v->dtype != DT_F32 || v->index) return false;
  if (v->op != OP_ADD && v->op != OP_MAX && v->op != OP_MIN) return false;
  const KExpr *term;
  if (v->a->kind == KE_TEMP && v->a->temp == t)
    term = v->b;
  else if (v->b && v->b->kind == KE_TEMP && v->b->temp == t)
    term = v->a;
  else
    return false;
  if (kexpr_reads_temp(term, t)) return false; /* the term must not read acc */
  *op = v->op;
  return true;
}

/* The launch loop's body starts `let acc = init; for r (reduce) ... acc =
 * acc op term` with nothing else in the reduction. */
static bool match_warp(const Kernel *k, const KStmt *l, GpuKernelPlan *g) {
  if (!l || l->nbody < 2) return false;
  const KStmt *let = l->body[0], *red = l->body[1];
  if (let->kind != KS_LET || k->temp_types[let->temp] != DT_F32) return false;
  if (red->kind != KS_LOOP || !(red->flags & KL_REDUCE)) return false;
  const KStmt *in = red;
  while (in->nbody == 1 && in->body[0]->kind == KS_LOOP) in = in->body[0];
  if (in->nbody != 1 || !reduction_op(in->body[0], let->temp, &g->op)) return false;
  g->let = let;
  g->red = red;
  return true;
}

/* Fewer than half the wanted tiles even at 16 x 16. */
static bool too_few_tiles(const GpuKernelPlan *g, const CKernelPlan *cp, int64_t batch) {
  int64_t rows = g->extent * (g->batched ? batch : 1) / cp->inner;
  return ceil_div(rows, 16) * ceil_div(cp->inner, 16) < TILES_WANTED / 2;
}

static bool warp_pays(const GpuKernelPlan *g, int64_t batch) {
  int64_t outputs = g->extent * (g->batched ? batch : 1);
  int64_t depth = g->red->extent * (g->red->batched ? batch : 1);
  return depth >= WARP_MIN_DEPTH && (outputs <= WARP_MAX_OUTPUTS || depth >= WARP_ANY_DEPTH) &&
         g->extent <= INT64_MAX / GPU_WARP;
}

void gpu_schedule(KProgram *p, const GpuScheduleOptions *o, GpuSchedule *s) {
  GpuScheduleOptions opts = *o;
  if (opts.batch <= 0) opts.batch = 32;
  if (opts.tile > 8) opts.tile = 8;
  while (opts.tile > 1 && (opts.tile & (opts.tile - 1))) opts.tile--; /* 1, 2, 4 or 8 */
  /* The NDRange shaping, with the opencl dialect's rules and tiles that
   * fit 48 KiB of shared memory. */
  CDialect d = *c_dialect_find("opencl");
  d.local_mem = 48 * 1024;
  CSchedule cs;
  c_schedule(p, &d, opts.batch, &cs);

  memset(s, 0, sizeof *s);
  s->n = p->nkernels;
  s->k = nnc_xcalloc(p->nkernels ? p->nkernels : 1, sizeof *s->k);
  for (uint32_t i = 0; i < p->nkernels; i++) {
    Kernel *k = &p->kernels[i];
    GpuKernelPlan *g = &s->k[i];
    KStmt *l = k->nbody == 1 && k->body[0]->kind == KS_LOOP ? k->body[0] : NULL;
    g->kind = GK_THREAD;
    g->extent = l ? l->extent : 1;
    g->batched = l && l->batched;
    bool tiled = l && opts.tile >= 0 && i < cs.n && cs.k[i].tiled;
    if (tiled && !opts.tile && opts.warp >= 0 && too_few_tiles(g, &cs.k[i], opts.batch) && match_warp(k, l, g) &&
        warp_pays(g, opts.batch))
      tiled = false; /* the warp form below */
    if (tiled) {
      plan_tiled(p, &cs.k[i], &opts, g);
      l->extent = g->extent / (g->rm * g->rn) > 0 ? g->extent / (g->rm * g->rn) : 1;
      nnc_stat_add("gpu", "tiled_matmuls", 1);
    } else if (opts.warp >= 0 && match_warp(k, l, g) && (opts.warp > 0 || warp_pays(g, opts.batch))) {
      g->kind = GK_WARP;
      l->extent = g->extent * GPU_WARP;
      nnc_stat_add("gpu", "warp_reductions", 1);
    } else {
      g->let = g->red = NULL;
    }
  }
  c_schedule_free(&cs);
}

void gpu_schedule_free(GpuSchedule *s) {
  free(s->k);
  memset(s, 0, sizeof *s);
}
