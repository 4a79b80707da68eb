/* runtime/train.h - the epoch loop shared by the interpreter and every
 * compiled trainer.
 *
 * An engine (the interpreter, or a compiled training step on some device)
 * offers two calls on one batch: a training step and an evaluation.
 * rt_train drives them over the datasets: shuffling, batching (the last
 * partial batch included), the running train loss, evaluation on the test
 * set after every epoch, one result line per epoch, a progress line on a
 * terminal, the metrics CSV, a step limit and the stop on a non-finite loss.
 */
#ifndef NNRT_TRAIN_H
#define NNRT_TRAIN_H

#include "data.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* One batch in, sums out: *loss_sum += the per-sample losses of the batch,
 * metric_sums[i] += the per-sample values of metric i.  y points to n labels
 * (int32_t or float, by the dataset's label type).  A nonzero return stops
 * the run; the engine has reported its error already. */
typedef int (*RtBatchFn)(void *self, const float *x, const void *y, int64_t n, double *loss_sum,
                         double *metric_sums);

typedef struct RtEngine {
  void *self;
  int nmetrics;
  const char *const *metric_names; /* [nmetrics], as the epoch line and the CSV name them */
  RtBatchFn train_step;            /* one optimizer step on the batch */
  RtBatchFn eval_batch;            /* loss and metrics only */
} RtEngine;

typedef struct RtTrainOptions {
  int64_t batch, epochs;
  int64_t max_steps;       /* stop after this many training steps; 0 = no limit */
  uint64_t seed;           /* shuffling: epoch e uses rt_shuffle_order(seed, e, ...) */
  bool shuffle;
  const char *metrics_csv; /* write one row per epoch here; NULL = none */
  FILE *out;               /* the epoch lines (NULL = stdout) */
} RtTrainOptions;

/* Trains for o->epochs epochs (epochs count from 1).  test may be NULL or
 * empty (n == 0): no evaluation.  After each epoch prints
 *   epoch=1 train_loss=0.512345 test_loss=0.43 test_accuracy=0.8412 seconds=3.21
 * (test_NAME for every metric; the test fields only with a test set; an
 * epoch cut short by max_steps ends with partial=STEPS/BATCHES).  Returns 0,
 * or 1 after an engine error, a non-finite loss ("error: loss is nan at
 * step N" on stderr) or an I/O error on the CSV. */
int rt_train(RtEngine *e, const RtDataset *train, const RtDataset *test, const RtTrainOptions *o);

/* Evaluates the whole dataset in batches of `batch`: mean loss, and the
 * mean of every metric into metric_means[nmetrics].  Returns 0 or the
 * engine's nonzero code. */
int rt_evaluate(RtEngine *e, const RtDataset *d, int64_t batch, double *loss_mean, double *metric_means);

#endif
