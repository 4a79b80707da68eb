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


#endif
