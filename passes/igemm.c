/* passes/igemm.c - convolutions as implicit GEMMs (igemm.h).
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
 * output's unit-stride axis, so neighbouring work-items store neighbouring
 * elements.  conv2d: rows f, columns (b, oy, ox), k (c, ky, kx); its data
 * gradient: rows c, columns (b, y, x), k (f, ky, kx); its filter gradient:
 * group b, rows f, columns (c, ky, kx), k (oy, ox).  The factors stay the
 * contraction's own expressions (affine, strided, guarded loads: padding
 * reads 0); the tiled emitters evaluate them at the (row, k) and (k, col)
 * each staging work-item decodes, and out-of-range rows, columns and k
 * read 0.  Reductions shorter than one 16-deep step (a 3 x 3 convolution
 * of one input channel: 9) or sides under 4 stay one work-item per output.
 */
#include "passes/igemm.h"

#include <string.h>

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Appends an axis; a batched one only first (the decomposition never
 * divides by B). */
static bool add_axis(TileGroup *g, const KAxis *a) {
  if (a->extent < 1 || (a->batched && g->n > 0)) return false;
  g->ax[g->n++] = (TileAxis){a->var, a->extent, a->batched, 1};
  return true;
}

int64_t tile_group_size(const TileGroup *g, int64_t batch) {
  int64_t n = 1;
  for (int i = 0; i < g->n; i++) n *= g->ax[i].extent * (g->ax[i].batched ? batch : 1);
  return n;
}

bool igemm_plan(const KProgram *p, const Kernel *k, int64_t batch, IgemmPlan *g) {
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
  TileGroup side[2], grp, kg;
  memset(side, 0, sizeof side);
  memset(&grp, 0, sizeof grp);
  memset(&kg, 0, sizeof kg);
  int unit = -1; /* the side of the output's unit-stride axis */
  for (int i = 0; i < nout; i++) {
    bool in_a = kexpr_mentions(c->a, out[i].var), in_b = kexpr_mentions(c->b, out[i].var);
    TileGroup *to = in_a && in_b ? &grp : in_a ? &side[0] : &side[1];
    nbatched += out[i].batched;
    if (!add_axis(to, &out[i])) return false;
    int64_t st;
    if (!(in_a && in_b) && kaccess_stride(p, c->buf, c->idx, c->nidx, out[i].var, &st) && st == 1) unit = in_a ? 0 : 1;
  }
  for (int i = 0; i < c->nred; i++)
    if (!add_axis(&kg, &c->axes[c->nfree + i])) return false;
  if (nbatched > 1 || !side[0].n || !side[1].n) return false;

  int cs = unit >= 0 ? unit : 1; /* the columns' side */
  const TileGroup *rows = &side[1 - cs], *cols = &side[cs];
  if (tile_group_size(&kg, batch) < IGEMM_MIN_DEPTH || tile_group_size(rows, batch) < IGEMM_MIN_EDGE ||
      tile_group_size(cols, batch) < IGEMM_MIN_EDGE)
    return false;

  memset(g, 0, sizeof *g);
  g->contract = c;
  g->extent = l->extent;
  g->batched = tile_group_batched(rows) || tile_group_batched(cols) || tile_group_batched(&grp);
  g->tg[TG_ROW] = *rows;
  g->tg[TG_COL] = *cols;
  g->tg[TG_K] = kg;
  g->tg[TG_GROUP] = grp;
  g->x = cs == 1 ? c->a : c->b;
  g->y = cs == 1 ? c->b : c->a;
  return true;
}

int64_t igemm_launch(const IgemmPlan *g, int64_t row_edge, int64_t col_edge, int64_t per_tile) {
  /* per_tile work-items per tile; the tiles along a batched side grow with B */
  static const int sides[3] = {TG_ROW, TG_COL, TG_GROUP};
  int64_t n = per_tile, num = 1, den = 1;
  for (int i = 0; i < 3; i++) {
    const TileGroup *t = &g->tg[sides[i]];
    int64_t edge = sides[i] == TG_ROW ? row_edge : sides[i] == TG_COL ? col_edge : 1;
    int64_t size = tile_group_size(t, 1);
    if (tile_group_batched(t))
      num = size, den = edge;
    else
      n *= ceil_div(size, edge);
  }
  n = ceil_div(n * num, den);
  return n > 0 ? n : 1;
}
