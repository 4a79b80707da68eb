/* passes/schedule_ndrange.h - shaping kernels for NDRange launches.
 *
 * The first step of every target that launches a work-item per output
 * element (the opencl and asic dialects, the gpu): contractions' free axes
 * hoisted into loops, perfect nests of independent loops collapsed into
 * the launch loop, and the contractions worth tiling through local (shared)
 * memory picked: matmuls, and with NdrangeOptions.igemm convolutions as
 * implicit GEMMs (igemm.h).  schedule_ndrange.c says how.
 */
#ifndef NNC_SCHEDULE_NDRANGE_H
#define NNC_SCHEDULE_NDRANGE_H

#include "ir/kernel.h"
#include "passes/igemm.h"

typedef struct NdrangeOptions {
  int64_t batch;             /* the batch size tiling decisions assume (the train block's) */
  int64_t local_mem;         /* bytes of local memory two tiles may take; 0 = never tile */
  int tile_k;                /* reduction depth of a tile, at most (rounded down to fit local_mem) */
  const bool *keep;          /* NULL, or [nkernels]: kernels the target shapes itself, left as they are */
  bool igemm;                /* tile convolutions as implicit GEMMs (igemm.h) too, launched 16 x 16 work-items
                                per tile */
} NdrangeOptions;

/* How one kernel is launched and rendered. */
typedef struct NdKernelPlan {
  int ncollapsed;            /* loops folded into the launch loop (1 = none) */
  int64_t inner;             /* extent of the innermost folded loop (the column count of a tile) */
  bool tiled;                /* rendered as a local-memory tiled dot product */
  const KStmt *contract;     /* tiled: the launch loop's first statement, `contract ... with t = sum k of a * b`
                                (no free axes left) */
  bool swap;                 /* tiled: b varies with the rows, a with the columns */
  bool igemm;                /* tiled as an implicit GEMM: the kernel as lowered, its launch range the
                                tiles' work-items; ig says how (contract is ig.contract) */
  IgemmPlan ig;
} NdKernelPlan;

typedef struct NdSchedule {
  NdKernelPlan *k;           /* [nkernels], owned */
  uint32_t n;
  int tile_k;                /* depth of the tiles (0 = none tiled) */
} NdSchedule;

/* Requires: a KProgram fresh from lower_program (memplan before or after:
 * buffers and kernel order do not change).  Rewrites the kernels in place
 * (which changes launch ranges) and fills s (free with
 * ndrange_schedule_free). */
void ndrange_schedule(KProgram *p, const NdrangeOptions *o, NdSchedule *s);
void ndrange_schedule_free(NdSchedule *s);

#endif
