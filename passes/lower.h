/* passes/lower.h - from the training-step graph to the kernel IR.
 *
 * lower_program: requires a verified module after the graph passes (no grad
 * placeholders left); returns a KProgram whose train plan runs one training
 * step (forward, backward, optimizer update in place) and whose eval plan
 * computes only the loss and metrics.  memplan assigns memory slots to
 * temporaries whose lifetimes do not overlap.
 */
#ifndef NNC_LOWER_H
#define NNC_LOWER_H

#include "ir/kernel.h"

typedef struct LowerOptions {
  int opt_level;              /* 0: no whole-step fusion (one kernel per materialized node) */
  /* Matmul and batch-sum kernels take no epilogue or optimizer update:
   * for NDRange backends, whose schedule turns a row accumulation into
   * one work-item per output only when the kernel is nothing else. */
  bool separate_contractions;
} LowerOptions;

/* With o->opt_level > 0 the program is fused (lower_fuse); the driver
 * lowers at 0 and runs `fuse` from its kernel pipeline instead. */
KProgram *lower_program(Module *m, const LowerOptions *o);
void memplan(KProgram *p, int64_t batch);

/* The memory a trainer of p allocates at this batch size, in bytes
 * (passes/memest.c; requires memplan). */
typedef struct MemEstimate {
  double params, states, activations; /* activations: temps after the memory plan, inputs, loss, metrics */
  double host;                        /* the trainer's staging on the host (RT_HOST_STAGING) */
  int64_t batch;
} MemEstimate;
void memplan_estimate(const KProgram *p, int64_t batch, MemEstimate *e);

/* The most buffers a kernel made by fusing others may take: few enough
 * for a launch (runtime/device.h RT_MAX_ARGS) and for cheap checks. */
enum { LOWER_MAX_FUSED_ARGS = 16 };
/* How many buffers kernels a and b take together (passes/lower_step.c). */
uint32_t lower_union_args(const Kernel *a, const Kernel *b);

/* Whole-step fusion (passes/fuse.c): kernels join along their launch
 * loops, sibling loops merge, stored temps feed later loads, unread temps
 * and storeless kernels go.  With sep, contraction kernels take nothing
 * (NDRange targets).  lower_fuse_step leaves unread temps marked slot -2;
 * lower_fuse is the `fuse` pass: it requires a train plan that runs every
 * kernel once in order (lowering's), fuses, drops those temps, renumbers
 * the kernels and rebuilds both plans; the memory plan and CPU schedules
 * go (memplan runs after it).  It reports an error and returns false when
 * the plan is not lowering's. */
void lower_fuse_step(KProgram *p, bool sep);
bool lower_fuse(KProgram *p, bool sep);

/* Removes temps marked slot -2, renumbering every buffer reference
 * (this and the plans below: passes/lower_step.c). */
void lower_drop_buffers(KProgram *p);
/* Names the kernels k<index>_NAME and writes the plans: train runs every
 * kernel in order but those that only compute the prediction, eval those
 * lower_mark_eval marks. */
void lower_build_plans(KProgram *p);
/* Does kernel k store only into the output (the prediction's copy, which
 * evaluation runs and training does not)? */
bool lower_predict_only(const KProgram *p, const Kernel *k);

/* Marks in run[] (nkernels entries) the kernels that (transitively)
 * produce the loss, the metrics and the prediction: the eval plan. */
void lower_mark_eval(const KProgram *p, bool *run);

#endif
