/* codegen/interp/interp.h - the reference interpreter of the graph IR.
 *
 * The interpreter evaluates a module's graph node by node, in the order the
 * nodes are stored (which is topological), on one batch at a time.  It is
 * the oracle every backend is tested against, so it is simple on purpose:
 * one buffer of doubles per node, one switch over the ops, NumPy
 * broadcasting through strides, no fusion and no cleverness.
 *
 * Numbers: every value is stored as double.  In f32 mode each op's result
 * is rounded to float (an op that accumulates, such as a sum or a matrix
 * product, accumulates in double and rounds once), which models f32
 * arithmetic closely; in f64 mode nothing is rounded (gradient checks).
 * i32 values are whole doubles with C's int32 semantics: +, -, * wrap
 * around, / rounds toward zero (dividing by zero is a runtime error), and
 * a cast from f32 truncates toward zero (saturating; NaN gives 0).
 *
 * Batches: a batched value holds n samples one after another, each of the
 * value's per-sample shape; an unbatched value (a parameter, a hyper-
 * parameter, a batch_sum) is one tensor shared by every sample.
 *
 * Training: interp_step evaluates the loss, the metrics and every update
 * output, then writes all the updates into the parameter and state storage
 * at once (so every update reads the old values), and counts the step.
 */
#ifndef NNC_INTERP_H
#define NNC_INTERP_H

#include "ir/ir.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct Interp Interp;

/* An interpreter for module m, which must outlive it.  The model's inputs
 * are its first SYM_INPUT symbol (fed from x) and its first SYM_LABEL symbol
 * (fed from y); a graph reading any other input fails at run time. */
Interp *interp_new(const Module *m, bool f64);
void interp_free(Interp *it);

/* Initial values: every parameter and state from its Init through
 * rt_init_tensor(seed, symbol name) (the same values a compiled trainer
 * starts from), every hyper-parameter from its default, step = 1. */
void interp_init(Interp *it, uint64_t seed);

/* Storage of a parameter or state (its per-sample numel doubles) or of a
 * hyper-parameter (one double); NULL for inputs and labels. */
double *interp_symbol(Interp *it, uint32_t sym);
/* Sets the hyper-parameter called name; false if the module has none. */
bool interp_set_hyper(Interp *it, const char *name, double v);
/* The optimizer step counter: the value OP_STEP reads (1 before the first
 * step). */
int64_t interp_get_step(const Interp *it);
void interp_set_step(Interp *it, int64_t step);

/* Metrics in module output order. */
int interp_metric_count(const Interp *it);
const char *interp_metric_name(const Interp *it, int i);

/* One training step on a batch of n samples: x is f32[n][numel(input)] (an
 * i32 input's values as whole numbers), y
 * is the label batch (int32_t or float by the label's dtype, n * numel
 * values; may be NULL when the model has no label).  Adds the per-sample
 * losses to *loss_sum and each metric's to metric_sums[i] (either may be
 * NULL).  Returns 0, or -1 with interp_error() set (nothing is updated). */
int interp_step(Interp *it, const float *x, const void *y, int64_t n, double *loss_sum, double *metric_sums);
/* The same, evaluating only the loss and the metrics: no update, no step. */
int interp_eval(Interp *it, const float *x, const void *y, int64_t n, double *loss_sum, double *metric_sums);

/* The loss as a training step computes it (training() is 1: batch
 * statistics, dropout), without updating anything: gradient checks. */
int interp_train_loss(Interp *it, const float *x, const void *y, int64_t n, double *loss_sum);

/* Lower level: evaluates the loss and metric outputs, and the update outputs
 * too when `updates` (then as a training step: training() is 1), without
 * writing anything back.  Returns 0 or -1. */
int interp_run(Interp *it, const float *x, const void *y, int64_t n, bool updates);
/* After interp_run: the value of output i (module order); numel of its type,
 * times n when batched.  NULL when that output was not evaluated. */
const double *interp_output(const Interp *it, uint32_t i);

/* The last runtime error, such as "index 12 is out of range [0, 10) in
 * index at model.nn:7:28 (sample 3)"; "" if none. */
const char *interp_error(const Interp *it);

#endif
