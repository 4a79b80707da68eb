/* runtime/train.c - the epoch loop (see train.h).
 *
 * Per epoch: the order of the samples (shuffled from (seed, epoch), so any
 * epoch can be replayed), then batches of o->batch samples gathered into
 * two staging buffers and handed to the engine, then the test set in
 * order, then the epoch line and the CSV row.  The train loss of an epoch
 * is the mean per-sample loss over the samples it trained on; samples_per_s
 * is those samples over the time the training steps took (evaluation not
 * counted).  After the last epoch one `done:` line sums the run up.
 *
 * The progress line is drawn on stderr only when it is a terminal, at most
 * ten times a second, and erased before the epoch line is printed, so logs
 * and pipes see only the epoch lines.
 */
#include "train.h"

#include "checkpoint.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Staging buffers for one batch. */
typedef struct Batch {
  float *x;
  void *y;
} Batch;

static bool batch_alloc(Batch *b, int64_t batch, int64_t features) {
  size_t nx = (size_t)(batch * (features ? features : 1));
  b->x = malloc(nx * sizeof(float));
  b->y = malloc((size_t)batch * sizeof(int32_t)); /* int32_t and float labels alike */
  return b->x && b->y;
}

static void batch_free(Batch *b) {
  free(b->x);
  free(b->y);
}

int rt_evaluate(RtEngine *e, const RtDataset *d, int64_t batch, double *loss_mean, double *metric_means) {
  Batch b;
  double loss = 0;
  double *ms = calloc((size_t)e->nmetrics + 1, sizeof(double));
  if (!ms || !batch_alloc(&b, batch, d->features)) {
    fprintf(stderr, "error: out of memory for an evaluation batch of %lld\n", (long long)batch);
    free(ms);
    return 1;
  }
  int rc = 0;
  for (int64_t start = 0; start < d->n && rc == 0; start += batch) {
    int64_t count = d->n - start < batch ? d->n - start : batch;
    rt_batch_gather(d, NULL, start, count, b.x, b.y);
    rc = e->eval_batch(e->self, b.x, b.y, count, &loss, ms);
  }
  double n = d->n > 0 ? (double)d->n : 1;
  *loss_mean = loss / n;
  for (int i = 0; i < e->nmetrics; i++) metric_means[i] = ms[i] / n;
  free(ms);
  batch_free(&b);
  return rc;
}

/* ---- progress on a terminal ------------------------------------------------------ */

/* One line, redrawn in place:
 *   epoch 2/5 [#########...........] 850/1875  loss=0.3412  41230 samples/s  ETA 25s
 * (the ETA is for the epoch in progress). */

typedef struct Progress {
  bool on;
  double start, last;   /* epoch start, last redraw */
} Progress;

static void progress_draw(Progress *p, int64_t epoch, int64_t epochs, int64_t done, int64_t total, double loss_mean,
                          int64_t samples) {
  double t = now_s();
  if (!p->on || t - p->last < 0.1) return;
  p->last = t;
  double el = t - p->start, rate = el > 0 ? (double)samples / el : 0;
  double eta = done > 0 ? el * (double)(total - done) / (double)done : 0;
  char bar[21];
  int filled = total > 0 ? (int)(20 * done / total) : 0;
  for (int i = 0; i < 20; i++) bar[i] = i < filled ? '#' : '.';
  bar[20] = 0;
  fprintf(stderr, "\r\033[Kepoch %lld/%lld [%s] %lld/%lld  loss=%.4g  %.0f samples/s  ETA %.0fs", (long long)epoch,
          (long long)epochs, bar, (long long)done, (long long)total, loss_mean, rate, eta);
  fflush(stderr);
}

static void progress_clear(Progress *p) {
  if (!p->on) return;
  fprintf(stderr, "\r\033[K");
  fflush(stderr);
}

/* ---- the metrics CSV ---------------------------------------------------------------- */

/* A resumed run appends to the file when it has rows already. */
static FILE *csv_open(const RtEngine *e, const char *path, bool append) {
  FILE *f = NULL;
  if (append && (f = fopen(path, "a")) && ftell(f) > 0) return f;
  if (f) fclose(f);
  f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "error: cannot write '%s'\n", path);
    return NULL;
  }
  fprintf(f, "epoch,train_loss,test_loss");
  for (int i = 0; i < e->nmetrics; i++) fprintf(f, ",%s", e->metric_names[i]);
  fprintf(f, ",seconds,samples_per_s\n");
  fflush(f);
  return f;
}

static bool csv_row(FILE *f, const RtEngine *e, int64_t epoch, double train_loss, bool have_test, double test_loss,
                    const double *metrics, double seconds, double rate) {
  fprintf(f, "%lld,%.6g,", (long long)epoch, train_loss);
  if (have_test) fprintf(f, "%.6g", test_loss);
  for (int i = 0; i < e->nmetrics; i++) {
    fputc(',', f);
    if (have_test) fprintf(f, "%.6g", metrics[i]);
  }
  fprintf(f, ",%.3f,%.1f\n", seconds, rate);
  return fflush(f) == 0 && !ferror(f);
}

/* ---- result lines ------------------------------------------------------------------- */

/* The fields an epoch line and the final line share:
 *   train_loss=L [test_loss=T test_NAME=V ...] seconds=S samples_per_s=R */
static void print_results(FILE *out, const RtEngine *e, double train_loss, bool have_test, double test_loss,
                          const double *metrics, double seconds, double rate) {
  fprintf(out, " train_loss=%.6g", train_loss);
  if (have_test) {
    fprintf(out, " test_loss=%.6g", test_loss);
    for (int i = 0; i < e->nmetrics; i++) fprintf(out, " test_%s=%.6g", e->metric_names[i], metrics[i]);
  }
  fprintf(out, " seconds=%.2f samples_per_s=%.1f", seconds, rate);
}

/* ---- the loop ------------------------------------------------------------------------- */

int rt_train(RtEngine *e, const RtDataset *train, const RtDataset *test, const RtTrainOptions *o) {
  FILE *out = o->out ? o->out : stdout;
  int64_t n = train->n, B = o->batch > 0 ? o->batch : 1;
  bool have_test = test && test->n > 0;
  if (n <= 0) {
    fprintf(stderr, "error: the training set is empty\n");
    return 1;
  }
  int64_t *order = malloc((size_t)n * sizeof *order);
  double *msum = calloc((size_t)e->nmetrics + 1, sizeof(double));
  double *tmetrics = calloc((size_t)e->nmetrics + 1, sizeof(double));
  Batch b = {NULL, NULL};
  if (!order || !msum || !tmetrics || !batch_alloc(&b, B, train->features)) {
    fprintf(stderr, "error: out of memory for %lld samples\n", (long long)n);
    free(order), free(msum), free(tmetrics), batch_free(&b);
    return 1;
  }
  FILE *csv = o->metrics_csv ? csv_open(e, o->metrics_csv, o->start.epoch > 0) : NULL;
  int rc = o->metrics_csv && !csv ? 1 : 0;
  Progress prog = {isatty(2) != 0, 0, 0};
  int64_t steps = o->start.steps, nbatches = (n + B - 1) / B;
  bool stop = false;
  RtTrainPos pos = {o->start.epoch > 0 ? o->start.epoch : 1, 0, steps, 0}; /* the latest position */
  /* For the final line: the last epoch's results, totals over all epochs. */
  int64_t last_epoch = 0, all_seen = 0;
  double last_train_loss = 0, last_test_loss = 0, all_train_s = 0, run_t0 = now_s();

  for (int64_t epoch = pos.epoch; epoch <= o->epochs && rc == 0 && !stop; epoch++) {
    if (o->shuffle)
      rt_shuffle_order(o->seed, (uint64_t)epoch, n, order);
    else
      for (int64_t i = 0; i < n; i++) order[i] = i;
    double t0 = now_s(), loss = 0;
    int64_t seen = 0, done = 0, begin = 0;
    if (epoch == o->start.epoch) { /* resuming inside this epoch */
      begin = o->start.sample < 0 ? 0 : o->start.sample > n ? n : o->start.sample;
      loss = o->start.loss_sum, seen = begin, done = (begin + B - 1) / B;
    }
    prog.start = t0;
    prog.last = 0;
    for (int64_t start = begin; start < n; start += B) {
      if (o->max_steps > 0 && steps >= o->max_steps) { /* a resumed run may be there already */
        stop = true;
        break;
      }
      int64_t count = n - start < B ? n - start : B;
      rt_batch_gather(train, order, start, count, b.x, b.y);
      double ls = 0;
      if (e->train_step(e->self, b.x, b.y, count, &ls, msum)) {
        rc = 1;
        break;
      }
      steps++, done++;
      if (!isfinite(ls)) {
        progress_clear(&prog);
        fprintf(stderr, "error: loss is %s at step %lld", isnan(ls) ? "nan" : ls > 0 ? "inf" : "-inf",
                (long long)steps);
        if (o->last_checkpoint && *o->last_checkpoint)
          fprintf(stderr, "; last good checkpoint: %s", *o->last_checkpoint);
        fprintf(stderr, "\n");
        rc = 1;
        break;
      }
      loss += ls;
      seen += count;
      pos = (RtTrainPos){epoch, start + count, steps, loss};
      if (o->hook) {
        if (rt_signal_pending()) progress_clear(&prog);
        if ((rc = o->hook(o->hook_self, &pos, RT_TRAIN_STEP)) != 0) break;
      }
      progress_draw(&prog, epoch, o->epochs, done, nbatches, loss / (double)seen, seen);
      if (o->max_steps > 0 && steps >= o->max_steps) {
        stop = true;
        break;
      }
    }
    if (rc) break;
    double t_train = now_s() - t0, test_loss = 0;
    if (have_test && rt_evaluate(e, test, B, &test_loss, tmetrics)) {
      rc = 1;
      break;
    }
    double seconds = now_s() - t0, train_loss = loss / (double)(seen ? seen : 1);
    double rate = t_train > 0 ? (double)(seen - begin) / t_train : 0; /* samples trained in this run */
    progress_clear(&prog);
    fprintf(out, "epoch=%lld", (long long)epoch);
    print_results(out, e, train_loss, have_test, test_loss, tmetrics, seconds, rate);
    if (done < nbatches) fprintf(out, " partial=%lld/%lld", (long long)done, (long long)nbatches);
    fprintf(out, "\n");
    fflush(out);
    last_epoch = epoch, last_train_loss = train_loss, last_test_loss = test_loss;
    all_seen += seen - begin, all_train_s += t_train;
    if (csv && !csv_row(csv, e, epoch, train_loss, have_test, test_loss, tmetrics, seconds, rate)) {
      fprintf(stderr, "error: cannot write '%s'\n", o->metrics_csv);
      rc = 1;
    }
    if (rc == 0 && !stop && seen == n) {
      pos = (RtTrainPos){epoch + 1, 0, steps, 0};
      if (o->hook) rc = o->hook(o->hook_self, &pos, RT_TRAIN_EPOCH);
    }
  }
  progress_clear(&prog);
  if (csv && fclose(csv) != 0 && rc == 0) {
    fprintf(stderr, "error: cannot write '%s'\n", o->metrics_csv);
    rc = 1;
  }
  if (rc == 0 && o->hook) rc = o->hook(o->hook_self, &pos, RT_TRAIN_END);
  if (rc == 0 && last_epoch > 0) {
    fprintf(out, "done: epochs=%lld steps=%lld", (long long)last_epoch, (long long)steps);
    print_results(out, e, last_train_loss, have_test, last_test_loss, tmetrics, now_s() - run_t0,
                  all_train_s > 0 ? (double)all_seen / all_train_s : 0);
    fprintf(out, "\n");
    fflush(out);
  }
  free(order), free(msum), free(tmetrics), batch_free(&b);
  return rc;
}
