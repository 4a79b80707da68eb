/* runtime/train.h - the epoch loop shared by the interpreter and every
 * compiled trainer.
 *
 * An engine (the interpreter, or a compiled training step on some device)
 * offers two calls on one batch: a training step and an evaluation.
 * rt_train drives them over the datasets: shuffling, batching (the last
 * partial batch included), the running train loss, evaluation on the test
 * set after every epoch, one result line per epoch, a progress line on a
 * terminal, the metrics CSV, a step limit and the stop on a non-finite loss;
 * with a validation set its figures every epoch and early stopping.
 */
#ifndef NNRT_TRAIN_H
#define NNRT_TRAIN_H

#include "data.h"
#include "model.h" /* RtSchedule */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* One batch in, sums out: *loss_sum += the per-sample losses of the batch,
 * metric_sums[i] += the per-sample values of metric i.  y points to n labels
 * (int32_t or float, by the dataset's label type).  A nonzero return stops
 * the run; the engine has reported its error already.  Training metrics are
 * not reported, so a train_step may leave metric_sums alone (a compiled
 * train plan need not compute the metrics at all). */
typedef int (*RtBatchFn)(void *self, const float *x, const void *y, int64_t n, double *loss_sum,
                         double *metric_sums);

/* One batch of n inputs in, n predictions out: out[n][output_size], the
 * model's `output` as evaluation computes it.  Nonzero stops (reported). */
typedef int (*RtPredictFn)(void *self, const float *x, int64_t n, float *out);

typedef struct RtEngine {
  void *self;
  int nmetrics;
  const char *const *metric_names; /* [nmetrics], as the epoch line and the CSV name them */
  RtBatchFn train_step;            /* one optimizer step on the batch */
  RtBatchFn eval_batch;            /* loss and metrics only */
  RtPredictFn predict_batch;       /* NULL when the model names no prediction */
  int64_t output_size;             /* values per prediction */
  const char *output_name;         /* the prediction's binding, for the CSV header */
  /* The learning-rate schedule: the next training steps use the
   * optimizer's lr times `multiplier`.  NULL = the engine has no lr. */
  void (*scale_lr)(void *self, double multiplier);
  /* Data-parallel training (runtime/comm.h): before each train_step on
   * this rank's share of a step, the samples of the whole step over all
   * ranks.  NULL = the engine runs in one process only. */
  void (*step_share)(void *self, int64_t global_n);
} RtEngine;

/* A position in a run: where a checkpoint resumes. */
typedef struct RtTrainPos {
  int64_t epoch;           /* the epoch in progress, from 1 (a start position of 0: the beginning) */
  int64_t sample;          /* samples of it trained on (its batches so far) */
  int64_t steps;           /* training steps done in all */
  double loss_sum;         /* the summed per-sample loss of those samples (the epoch line's train_loss) */
} RtTrainPos;

typedef enum {
  RT_TRAIN_STEP,           /* after a training step (pos: in its epoch) */
  RT_TRAIN_EPOCH,          /* after an epoch's evaluation and line (pos: the next epoch, sample 0) */
  RT_TRAIN_END,            /* after a successful run (pos: where it stopped) */
  RT_TRAIN_BEST,           /* after an epoch whose val_loss is the best yet, before its RT_TRAIN_EPOCH: keep
                              its weights (pos: the next epoch, sample 0) */
} RtTrainEvent;

/* Early stopping on val_loss: the caller holds it, so a checkpoint can
 * save and restore it with the weights of the best epoch. */
typedef struct RtEarlyStop {
  int64_t patience;        /* stop after this many whole epochs in a row without a lower val_loss */
  int64_t best_epoch;      /* the epoch with the lowest val_loss; 0 = none yet */
  double best_loss;        /* its val_loss */
  int64_t best_step;       /* the training steps done by its end */
  int64_t bad_epochs;      /* whole epochs since it; the run has stopped once this reaches patience */
} RtEarlyStop;

/* Called by rt_train (checkpoints, signals): 0 goes on, anything else
 * stops the run and becomes rt_train's return value (the hook has said
 * why). */
typedef int (*RtTrainHook)(void *self, const RtTrainPos *pos, RtTrainEvent event);

typedef struct RtTrainOptions {
  int64_t batch, epochs;   /* epochs 0: as many as max_steps needs */
  int64_t max_steps;       /* stop after this many training steps in all (resumed ones too); 0 = no limit */
  uint64_t seed;           /* shuffling: epoch e uses rt_shuffle_order(seed, e, ...) */
  bool shuffle;
  const char *metrics_csv; /* write one row per epoch here; NULL = none */
  FILE *out;               /* the epoch lines (NULL = stdout) */
  /* Appended for checkpoints; zero = none. */
  RtTrainPos start;        /* resume here (epoch 0 = from the beginning); the CSV is then trimmed and appended to */
  RtTrainHook hook;        /* after every step and epoch, and at the end; NULL = none */
  void *hook_self;
  const char *const *last_checkpoint; /* *last_checkpoint: the newest good checkpoint, or NULL */
  const char *prog;        /* messages are "PROG: error: ..."; NULL = "error: ..." */
  /* Appended for validation; zero = none. */
  const RtDataset *val;    /* the held-out samples (rt_data_hold_out), evaluated after every epoch as the test
                              set is; NULL or empty = none */
  RtEarlyStop *early;      /* early stopping on val_loss (needs val); NULL = none */
  const char *plot;        /* an SVG of the run's curves, rewritten after every epoch (plot.h); NULL = none */
  const char *model;       /* the model's name, the plot's title; NULL = none */
  /* Appended for schedules: a multiplier of the lr at each step, over
   * the run's length (rt_run_steps); NULL = constant. */
  const RtSchedule *schedule;
} RtTrainOptions;

/* The steps a run takes: epochs of ceil(n / batch) steps, or max_steps
 * when that is set and comes first (epochs 0: max_steps alone). */
int64_t rt_run_steps(int64_t n, int64_t batch, int64_t epochs, int64_t max_steps);

/* The schedule's multiplier of the lr for step `step` (from 1) of a run of
 * `total` steps: constant 1; step(every, factor): factor^floor((step-1) /
 * every); cosine(warmup, min): step / warmup during the warm-up, then
 * from 1 down to min along half a cosine until the last step (nanoGPT's
 * get_lr, with its iteration it = step - 1). */
double rt_schedule_lr(const RtSchedule *s, int64_t step, int64_t total);

/* Trains for o->epochs epochs (epochs count from 1).  test may be NULL or
 * empty (n == 0): no evaluation.  After each epoch prints
 *   epoch=1 train_loss=0.512345 test_loss=0.43 test_accuracy=0.8412 seconds=3.21 samples_per_s=18690.2
 * (test_NAME for every metric; the test fields only with a test set;
 * val_loss=V val_NAME=V ... before them with a validation set;
 * samples_per_s counts the epoch's training samples over the time its
 * training steps took; an epoch cut short by max_steps ends with
 * partial=STEPS/BATCHES), and after a successful run of at least one epoch
 *   done: epochs=5 steps=9375 train_loss=0.29 test_loss=0.35 test_accuracy=0.87 seconds=58.10 samples_per_s=2870.4
 * (the last epoch's losses and metrics; seconds and samples_per_s over the
 * whole run).  The metrics CSV has the header
 *   epoch,train_loss,test_loss,<metric names>,seconds,samples_per_s
 * (val_loss,val_<metric names> after train_loss with a validation set)
 * and one row per epoch.  With o->early, every whole epoch's val_loss is
 * compared with the best: a lower one is the new best (the hook gets
 * RT_TRAIN_BEST to keep its weights), else after patience epochs in a row
 * the run stops with one line on stderr naming the best epoch.  With
 * o->plot the SVG is rewritten after every epoch's line.  Returns 0, or 1
 * after an engine error, a non-finite loss ("PROG: error: loss is nan at
 * step N" on stderr, with "; last good checkpoint: PATH" when there is
 * one), an I/O error on the CSV, the plot or the epoch lines (stdout on a
 * full disk), or the hook's nonzero return.  Resuming at o->start trains the rest of that epoch
 * (regenerating its order from (seed, epoch)) and continues the step
 * count, so the steps, batches and epoch lines are the ones the
 * uninterrupted run has; the CSV then keeps only its rows of the epochs
 * before o->start.epoch (a crash between an epoch's row and the next
 * checkpoint would repeat that row) and is appended to. */
int rt_train(RtEngine *e, const RtDataset *train, const RtDataset *test, const RtTrainOptions *o);

/* Evaluates the whole dataset in batches of `batch`: mean loss, and the
 * mean of every metric into metric_means[nmetrics].  Returns 0 or the
 * engine's nonzero code. */
int rt_evaluate(RtEngine *e, const RtDataset *d, int64_t batch, double *loss_mean, double *metric_means);

/* " test_loss=T test_NAME=V ...": the test fields of an epoch line, as
 * --eval prints them too. */
void rt_print_test(FILE *out, const RtEngine *e, double test_loss, const double *metrics);

/* --generate: continues `prompt` by `tokens` bytes, each drawn from the
 * model's output at the last filled position of its input window of
 * `context` tokens (runtime/generate.c); prints the prompt, the bytes and
 * a newline on out.  Returns 0, or 1 after a message ("PROG: error: ..."). */
typedef struct RtGenerateOptions {
  const char *prompt;
  int64_t tokens;
  double temperature;      /* the logits' divisor; 0 = always the most likely byte */
  uint64_t seed;           /* the draws' seed */
} RtGenerateOptions;
int rt_generate(RtEngine *e, int64_t context, const RtGenerateOptions *g, FILE *out, const char *prog);

/* --predict: predicts every sample of `in` in batches of `batch` and writes
 * `path` (replaced whole, only after the last row): a header naming the
 * output's values (NAME, or NAME_0 ... NAME_{k-1}), then one row per
 * sample in input order, each value printed to round-trip as f32.  Prints
 * "predict: samples=N values=K output=PATH" on stdout.  Returns 0, or 1
 * after a message ("PROG: error: ..."). */
int rt_predict(RtEngine *e, const RtDataset *in, int64_t batch, const char *path, const char *prog);

#endif
