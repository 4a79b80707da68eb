/* passes/igemm.h - a contraction over several reduction axes (a
 * convolution, its data or filter gradient) read as one matrix product,
 * for the targets that tile products through local (shared) memory: the
 * gpu's tiled form (codegen/gpu/tiled.c) and the OpenCL C one
 * (codegen/opencl/emit_c.c).  igemm.c says how the axes are split.
 */
#ifndef NNC_IGEMM_H
#define NNC_IGEMM_H

#include "ir/kernel.h"

/* C[group, row, col] = sum_k x(group, row, k) * y(group, k, col).  The row
 * index, the column index, the depth index k and the group index (a batch
 * of independent products) each decompose row-major over their group's
 * axes (only the first may be batched); an axis's variable is its index
 * times scale, summed over the groups that name it (a collapsed matmul's
 * g = row * cols + col: the row and column groups share g). */
enum { TG_ROW, TG_COL, TG_K, TG_GROUP, TG_NGROUPS };
typedef struct TileAxis {
  int32_t var;
  int64_t extent;            /* times B when batched */
  bool batched;
  int64_t scale;
} TileAxis;
typedef struct TileGroup {
  TileAxis ax[NNC_MAX_CONTRACT_AXES + 1];
  int n;                     /* 0: the group is absent (its index is 0) */
} TileGroup;

typedef struct IgemmPlan {
  const KStmt *contract;     /* the launch loop's only statement, with its free axes */
  int64_t extent;            /* the launch loop's iterations as lowered */
  bool batched;              /* some group grows with B (extent * B then) */
  TileGroup tg[TG_NGROUPS];
  const KExpr *x, *y;        /* the factors: x(group, row, k) free of the columns, y(group, k, col) of the rows */
} IgemmPlan;

enum { IGEMM_MIN_DEPTH = 16, IGEMM_MIN_EDGE = 4 };

/* True, with g filled, when kernel k is `for v: contract out[...] = t with
 * t = sum R of a * b` over two or more f32 reduction axes, factors reading
 * nothing the kernel writes, whose product at batch size `batch` has at
 * least IGEMM_MIN_EDGE rows and columns and IGEMM_MIN_DEPTH of k.  The
 * kernel must then reach its emitter as it is (not reshaped). */
bool igemm_plan(const KProgram *p, const Kernel *k, int64_t batch, IgemmPlan *g);

/* The elements of a group at batch size batch. */
int64_t tile_group_size(const TileGroup *g, int64_t batch);
static inline bool tile_group_batched(const TileGroup *g) { return g->n > 0 && g->ax[0].batched; }

/* The work-items (threads) a launch of `per_tile` per tile of row_edge x
 * col_edge outputs wants: the launch range, times B when g->batched. */
int64_t igemm_launch(const IgemmPlan *g, int64_t row_edge, int64_t col_edge, int64_t per_tile);

#endif
