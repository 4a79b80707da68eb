/* codegen/gpu/igemm.c - convolutions as implicit GEMMs on the gpu (GK_TILED, gpu.h).
 *
 * The product C[group, row, col] = sum_k x(group, row, k) * y(group, k,
 * col) is read off the contraction by the shared plan (passes/igemm.c:
 * conv2d's rows f, columns (b, oy, ox), k (c, ky, kx), and so on); here the
 * gpu's own choices: which factor is staged k-major, and the tile.
 *
 * Tiles: rm x rn outputs per thread (1, 2, 4 or 8 each), the most that
 * still gives enough tiles to fill the GPU at the batch size the program
 * is built for (as for matmuls), and no edge longer than its side rounded
 * up to 16 (16 filters take rm = 1, not a 128-row tile 1/8 used).
 */
#include "codegen/gpu/gpu.h"

#include <string.h>

enum { EDGE = 16 };

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Neighbouring threads take neighbouring k when e is contiguous along k's
 * innermost axis and not along its side's (or less so). */
static bool k_major(const KProgram *p, const KExpr *e, const TileGroup *side, const TileGroup *k, int64_t batch) {
  const TileAxis *ki = &k->ax[k->n - 1], *si = &side->ax[side->n - 1];
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
  IgemmPlan ig;
  if (!igemm_plan(p, k, o->batch, &ig)) return false;
  int64_t batch = o->batch;
  memset(g, 0, sizeof *g);
  g->kind = GK_TILED;
  g->igemm = true;
  g->contract = ig.contract;
  g->extent = ig.extent;
  g->batched = ig.batched;
  memcpy(g->tg, ig.tg, sizeof g->tg);
  g->x = ig.x;
  g->y = ig.y;
  const TileGroup *rows = &g->tg[TG_ROW], *cols = &g->tg[TG_COL], *kg = &g->tg[TG_K];
  g->x_kmajor = k_major(p, g->x, rows, kg, batch);
  g->y_kmajor = k_major(p, g->y, cols, kg, batch);
  if (o->tile > 0)
    g->rm = g->rn = o->tile;
  else
    pick_tile(tile_group_size(rows, batch), tile_group_size(cols, batch), tile_group_size(&g->tg[TG_GROUP], batch),
              &g->rm, &g->rn);
  return true;
}

int64_t gpu_igemm_launch(const GpuKernelPlan *g) {
  /* GPU_BLOCK threads per tile */
  IgemmPlan ig = {.batched = g->batched};
  memcpy(ig.tg, g->tg, sizeof ig.tg);
  return igemm_launch(&ig, EDGE * g->rm, EDGE * g->rn, GPU_BLOCK);
}
