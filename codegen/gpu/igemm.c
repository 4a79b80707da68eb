/* codegen/gpu/igemm.c - convolutions as implicit GEMMs (GK_TILED, gpu.h).
 *
 * A kernel `for v0: contract out[idx] = value for F with t = sum R of a * b`
 * whose reduction has two or more axes (lowering's conv2d, its data
 * gradient and its per-sample filter gradient; matmuls have one and go
 * through the NDRange tiling) is a product
 *
 *   C[group, row, col] = sum_k x(group, row, k) * y(group, k, col)
 *
 * read off the contraction's axes, v0 counted with the free ones:
 *
 *   group  output axes both factors read (the sample of a filter gradient)
 *   rows   output axes only x reads
 *   cols   output axes only y reads (and any neither reads)
 *   k      the reduction axes, in their order
 *
 * x and y are a and b or b and a: the columns are the side holding the
 * output's unit-stride axis, so neighbouring threads store neighbouring
 * elements.  conv2d: rows f, columns (b, oy, ox), k (c, ky, kx); its data
 * gradient: rows c, columns (b, y, x), k (f, ky, kx); its filter gradient:
 * group b, rows f, columns (c, ky, kx), k (oy, ox).  The factors stay the
 * contraction's own expressions (affine, strided, guarded loads: padding
 * reads 0); tiled.c evaluates them at the (row, k) and (k, col) each
 * staging thread decodes, and out-of-range rows, columns and k read 0.
 *
 * Tiles: rm x rn outputs per thread (1, 2, 4 or 8 each), the most that
 * still gives enough tiles to fill the GPU at the batch size the program
 * is built for (as for matmuls), and no edge longer than its side rounded
 * up to 16 (16 filters take rm = 1, not a 128-row tile 1/8 used).
 * Reductions shorter than one 16-deep step (a 3 x 3 convolution of one
 * input channel: 9) or sides under 4 stay one thread per output.
 */
#include "codegen/gpu/gpu.h"

#include <string.h>

enum { MIN_DEPTH = GPU_TK, MIN_EDGE = 4, EDGE = 16 };

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Appends an axis; a batched one only first (the decomposition never
 * divides by B). */
static bool add_axis(GpuTileGroup *g, const KAxis *a) {
  if (a->extent < 1 || (a->batched && g->n > 0)) return false;
  g->ax[g->n++] = (GpuTileAxis){a->var, a->extent, a->batched, 1};
  return true;
}

static int64_t group_size(const GpuTileGroup *g, int64_t batch) {
  int64_t n = 1;
  for (int i = 0; i < g->n; i++) n *= g->ax[i].extent * (g->ax[i].batched ? batch : 1);
  return n;
}

static bool group_batched(const GpuTileGroup *g) { return g->n > 0 && g->ax[0].batched; }

/* Neighbouring threads take neighbouring k when e is contiguous along k's
 * innermost axis and not along its side's (or less so). */
static bool k_major(const KProgram *p, const KExpr *e, const GpuTileGroup *side, const GpuTileGroup *k, int64_t batch) {
  const GpuTileAxis *ki = &k->ax[k->n - 1], *si = &side->ax[side->n - 1];
  if (!gpu_contiguous_in(p, e, ki->var)) return false;
  int64_t klen = ki->extent * (ki->batched ? batch : 1), slen = si->extent * (si->batched ? batch : 1);
  return !gpu_contiguous_in(p, e, si->var) || klen >= slen;
}

/* The largest r of 8, 4, 2, 1 whose edge 16 r fits n rounded up to 16. */
static int edge_cap(int64_t n) {
  int r = 8;
  while (r > 1 && EDGE * r > ceil_div(n, EDGE) * EDGE) r /= 2;
  return r;
}

/* rm x rn: the most outputs per thread that leave enough tiles; squarer
 * tiles on a tie (fewer loads per FMA). */
static void pick_tile(int64_t rows, int64_t cols, int64_t groups, int *rm, int *rn) {
  *rm = *rn = 1;
  for (int a = edge_cap(rows); a >= 1; a /= 2)
    for (int b = edge_cap(cols); b >= 1; b /= 2) {
      int64_t tiles = groups * ceil_div(rows, EDGE * a) * ceil_div(cols, EDGE * b);
      int64_t want = a * b == 64 ? 2 * GPU_TILES_WANTED : GPU_TILES_WANTED;
      int best = *rm * *rn, skew = a > b ? a / b : b / a, best_skew = *rm > *rn ? *rm / *rn : *rn / *rm;
      if (tiles >= want && (a * b > best || (a * b == best && skew < best_skew))) *rm = a, *rn = b;
    }
}

bool gpu_plan_igemm(const KProgram *p, const Kernel *k, const GpuScheduleOptions *o, GpuKernelPlan *g) {
  const KStmt *l = k->nbody == 1 && k->body[0]->kind == KS_LOOP ? k->body[0] : NULL;
  if (!l || l->nbody != 1 || !(l->flags & KL_PARALLEL) || l->extent < 1) return false;
  const KStmt *c = l->body[0];
  if (c->kind != KS_CONTRACT || c->nred < 2 || c->combine != OP_ADD || !c->b || c->buf < 0 ||
      k->temp_types[c->temp] != DT_F32 || c->a->dtype != DT_F32 || c->b->dtype != DT_F32 ||
      kexpr_reads_temp(c->a, -1) || kexpr_reads_temp(c->b, -1) || kexpr_reads(c->a, c->buf) ||
      kexpr_reads(c->b, c->buf))
    return false;

  /* the output axes: the launch loop's, then the free ones */
  KAxis out[NNC_MAX_CONTRACT_AXES + 1];
  int nout = 0, nbatched = 0;
  out[nout++] = (KAxis){l->var, l->extent, l->batched};
  for (int i = 0; i < c->nfree; i++) out[nout++] = c->axes[i];
  GpuTileGroup side[2], grp, kg;
  memset(side, 0, sizeof side);
  memset(&grp, 0, sizeof grp);
  memset(&kg, 0, sizeof kg);
  int unit = -1; /* the side of the output's unit-stride axis */
  for (int i = 0; i < nout; i++) {
    bool in_a = kexpr_mentions(c->a, out[i].var), in_b = kexpr_mentions(c->b, out[i].var);
    GpuTileGroup *to = in_a && in_b ? &grp : in_a ? &side[0] : &side[1];
    nbatched += out[i].batched;
    if (!add_axis(to, &out[i])) return false;
    int64_t st;
    if (!(in_a && in_b) && kaccess_stride(p, c->buf, c->idx, c->nidx, out[i].var, &st) && st == 1) unit = in_a ? 0 : 1;
  }
  for (int i = 0; i < c->nred; i++)
    if (!add_axis(&kg, &c->axes[c->nfree + i])) return false;
  if (nbatched > 1 || !side[0].n || !side[1].n) return false;

  int cs = unit >= 0 ? unit : 1; /* the columns' side */
  const GpuTileGroup *rows = &side[1 - cs], *cols = &side[cs];
  int64_t batch = o->batch;
  int64_t nr = group_size(rows, batch), nc = group_size(cols, batch), depth = group_size(&kg, batch);
  if (depth < MIN_DEPTH || nr < MIN_EDGE || nc < MIN_EDGE) return false;

  memset(g, 0, sizeof *g);
  g->kind = GK_TILED;
  g->igemm = true;
  g->contract = c;
  g->extent = l->extent;
  g->batched = group_batched(rows) || group_batched(cols) || group_batched(&grp);
  g->tg[GT_ROW] = *rows;
  g->tg[GT_COL] = *cols;
  g->tg[GT_K] = kg;
  g->tg[GT_GROUP] = grp;
  g->x = cs == 1 ? c->a : c->b;
  g->y = cs == 1 ? c->b : c->a;
  g->x_kmajor = k_major(p, g->x, rows, &kg, batch);
  g->y_kmajor = k_major(p, g->y, cols, &kg, batch);
  if (o->tile > 0)
    g->rm = g->rn = o->tile;
  else
    pick_tile(nr, nc, group_size(&grp, batch), &g->rm, &g->rn);
  return true;
}

int64_t gpu_igemm_launch(const GpuKernelPlan *g) {
  /* GPU_BLOCK threads per tile; the tiles along a batched side grow with B */
  static const int sides[3] = {GT_ROW, GT_COL, GT_GROUP};
  int64_t n = GPU_BLOCK, num = 1, den = 1;
  for (int i = 0; i < 3; i++) {
    const GpuTileGroup *t = &g->tg[sides[i]];
    int64_t edge = sides[i] == GT_ROW ? EDGE * g->rm : sides[i] == GT_COL ? EDGE * g->rn : 1;
    int64_t size = group_size(t, 1);
    if (group_batched(t))
      num = size, den = edge;
    else
      n *= ceil_div(size, edge);
  }
  n = ceil_div(n * num, den);
  return n > 0 ? n : 1;
}
