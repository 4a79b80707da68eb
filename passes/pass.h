/* passes/pass.h - the pass registry, the pipeline and statistics.
 *
 * A pass is a plain function over the module.  Its comment says what it
 * requires and what it guarantees; it returns false after reporting a user
 * error (a broken invariant is an internal error instead).  The default
 * pipeline is one short table in passes/pipeline.c; the driver runs it with
 * the verifier after every pass, and gives --print-after=PASS,
 * --print-after-all, --stop-after=PASS and --passes=LIST (run exactly these,
 * the way `opt -passes=` does).
 */
#ifndef NNC_PASS_H
#define NNC_PASS_H

#include "ir/ir.h"
#include "ir/kernel.h"
#include "passes/schedule_cpu.h"
#include "passes/schedule_ndrange.h"
#include "support/stats.h"

#include <stdio.h>

typedef bool (*PassFn)(Module *m);

typedef struct Pass {
  const char *name;
  const char *summary;
  PassFn run;
  int min_opt;          /* runs in the default pipeline at -O<min_opt> and above */
} Pass;

/* The passes (one file each). */
bool pass_autodiff(Module *m);   /* passes/autodiff.c */
bool pass_fold(Module *m);       /* passes/fold.c */
bool pass_algebra(Module *m);    /* passes/algebra.c */
bool pass_stable_lse(Module *m); /* passes/stable_lse.c */
bool pass_cse(Module *m);        /* passes/cse.c */
bool pass_dce(Module *m);        /* passes/dce.c */

/* Every graph pass, in default pipeline order; NULL-terminated. */
extern const Pass nnc_graph_passes[];
const Pass *pass_find(const char *name);

/* ---- kernel passes (passes/kernel_pipeline.c) ----
 * The same over the kernel IR.  Lowering writes one kernel per
 * materialized value; the default pipeline then fuses and plans memory.
 * The schedules and the contraction rewrites are steps each target's
 * backend takes itself; they are in the table so that --kernel-passes
 * runs them alone, on kernel IR text (`nnc x.kir --kernel-passes=fuse`).
 * The driver runs the verifier after each.  A kernel pass returns false
 * after reporting a user error. */
typedef struct KPassOptions {
  bool separate_contractions;  /* fuse: the target's NNC_BACKEND_SEPARATE_CONTRACTIONS */
  int64_t batch;               /* memplan's statistics: the train block's batch size */
  CpuScheduleOptions cpu;      /* schedule-cpu's run(): vector lanes, registers, --schedule */
  NdrangeOptions ndrange;      /* schedule-ndrange: the batch, local memory and tile depth it assumes */
} KPassOptions;

typedef bool (*KPassFn)(KProgram *p, const KPassOptions *o);

typedef struct KPass {
  const char *name;
  const char *summary;
  KPassFn run;
  int min_opt;          /* in the default pipeline at -O<min_opt> and above; -1: only when named */
  /* The target whose backend's schedule hook this pass is (its options
   * come from the machine: --cpu), which nnc runs instead of run();
   * run() with KPassOptions.cpu set runs it alone (tests, fuzzing). */
  const char *backend;
} KPass;

/* Every kernel pass, the default pipeline's first; NULL-terminated. */
extern const KPass nnc_kernel_passes[];
const KPass *kpass_find(const char *name);


#endif
