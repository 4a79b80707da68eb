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
#include "comm.h"
#include "files.h"
#include "memlimit.h"
#include "plot.h"
#include "rng.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static bool batch_alloc(Batch *b, int64_t batch, const RtDataset *d) {
  size_t nx = (size_t)(batch * (d->features ? d->features : 1));
  size_t ny = (size_t)(batch * (d->label_size > 1 ? d->label_size : 1));
  b->x = malloc(nx * sizeof(float));
  b->y = malloc(ny * sizeof(int32_t)); /* int32_t and float labels alike */
  return b->x && b->y;
}

static void batch_free(Batch *b) {
  free(b->x);
  free(b->y);
}

/* The whole of d in batches gathered into b (rt_train passes its own
 * staging, so an evaluation allocates no second one). */
static int evaluate(RtEngine *e, const RtDataset *d, int64_t batch, Batch *b, double *loss_mean,
                    double *metric_means) {
  double loss = 0;
  double *ms = calloc((size_t)e->nmetrics + 1, sizeof(double));
  if (!ms) {
    fprintf(stderr, "error: out of memory\n");
    return 1;
  }
  int rc = 0;
  /* Several ranks (comm.h): each evaluates its contiguous share of d, and
   * the sums are added up over the ranks. */
  int64_t N = rt_comm_size(), r = rt_comm_rank(), lo = d->n * r / N, hi = d->n * (r + 1) / N;
  for (int64_t start = lo; start < hi && rc == 0; start += batch) {
    int64_t count = hi - start < batch ? hi - start : batch;
    rt_batch_gather(d, NULL, start, count, b->x, b->y);
    rc = e->eval_batch(e->self, b->x, b->y, count, &loss, ms);
  }
  if (rc == 0 && N > 1) {
    ms[e->nmetrics] = loss;
    if (rt_comm_sum_f64(ms, (size_t)e->nmetrics + 1) != 0) rc = 1;
    loss = ms[e->nmetrics];
  }
  double n = d->n > 0 ? (double)d->n : 1;
  *loss_mean = loss / n;
  for (int i = 0; i < e->nmetrics; i++) metric_means[i] = ms[i] / n;
  free(ms);
  return rc;
}

int rt_evaluate(RtEngine *e, const RtDataset *d, int64_t batch, double *loss_mean, double *metric_means) {
  Batch b;
  if (!batch_alloc(&b, batch, d)) {
    fprintf(stderr, "error: out of memory for an evaluation batch of %lld samples\n", (long long)batch);
    batch_free(&b);
    return 1;
  }
  int rc = evaluate(e, d, batch, &b, loss_mean, metric_means);
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

/* ---- messages ------------------------------------------------------------------------ */

/* "PROG: error: ..." on stderr (just "error: ..." without a program name). */
static void train_error(const RtTrainOptions *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void train_error(const RtTrainOptions *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s%serror: ", o->prog ? o->prog : "", o->prog ? ": " : "");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* The epoch lines reached stdout (a full disk, a closed pipe lose them):
 * false after a message. */
static bool out_ok(const RtTrainOptions *o, FILE *out) {
  errno = 0;
  if (fflush(out) == 0 && !ferror(out)) return true;
  char buf[128];
  train_error(o, "cannot write the results to %s: %s", out == stdout ? "stdout" : "the output",
              rt_strerror(errno ? errno : EIO, buf, sizeof buf));
  return false;
}

/* ---- the metrics CSV ---------------------------------------------------------------- */

static void csv_header(FILE *f, const RtEngine *e, bool have_val) {
  fprintf(f, "epoch,train_loss");
  if (have_val) {
    fprintf(f, ",val_loss");
    for (int i = 0; i < e->nmetrics; i++) fprintf(f, ",val_%s", e->metric_names[i]);
  }
  fprintf(f, ",test_loss");
  for (int i = 0; i < e->nmetrics; i++) fprintf(f, ",%s", e->metric_names[i]);
  fprintf(f, ",seconds,samples_per_s\n");
}

/* Opens path for writing without blocking on a FIFO that nobody reads
 * (ENXIO instead); append or truncate. */
static FILE *open_out(const char *path, bool append) {
  int fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | (append ? O_APPEND : O_TRUNC), 0666);
  if (fd < 0) return NULL;
  int flags = fcntl(fd, F_GETFL);
  FILE *f = flags != -1 && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0 ? fdopen(fd, append ? "a" : "w") : NULL;
  if (!f) {
    int e = errno;
    close(fd);
    errno = e;
  }
  return f;
}

/* A resumed run: the file keeps its header and the rows of the epochs
 * before the checkpoint's (a run killed after an epoch's row and before
 * its next checkpoint trains that epoch again, and its row comes again).
 * Rewritten atomically (a temporary file renamed over it); a file that is
 * not regular (a pipe) is only appended to.  0, or -1 after a message. */
static int csv_trim(const RtEngine *e, const RtTrainOptions *o, const char *path, int64_t before_epoch) {
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) return 0;
  char *text = NULL, *header = NULL, real[PATH_MAX], tmp[PATH_MAX + 32];
  size_t cap = 0, hcap = 0;
  FILE *h = open_memstream(&header, &hcap);
  if (h) csv_header(h, e, o->val && o->val->n > 0);
  if (!h || fclose(h) != 0) {
    train_error(o, "out of memory");
    return -1;
  }
  RtError err;
  FILE *in = rt_open_regular(path, NULL, &err);
  if (!in) {
    train_error(o, "%s", err.msg);
    free(header);
    return -1;
  }
  const char *target = realpath(path, real) ? real : path; /* a symlink's file is rewritten, not the link */
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", target, (long)getpid());
  FILE *out = NULL;
  int rc = 0;
  ssize_t len;
  for (long line = 1; (len = getline(&text, &cap, in)) > 0; line++) {
    if (line == 1 && strcmp(text, header) != 0) {
      train_error(o, "%s: its first line is not this run's metrics header ('%.*s'); give --metrics another file",
                  path, (int)strcspn(header, "\n"), header);
      rc = -1;
      break;
    }
    if (line == 1 && !(out = open_out(tmp, false))) break;
    char *end;
    long long epoch = strtoll(text, &end, 10);
    bool whole = text[len - 1] == '\n'; /* a row cut by a crash is no row */
    if (line == 1 || (whole && end != text && *end == ',' && epoch < before_epoch)) fputs(text, out);
  }
  char buf[128];
  int saved = errno;
  if (rc == 0 && (ferror(in) || !out)) {
    train_error(o, "cannot rewrite '%s': %s", path, rt_strerror(saved, buf, sizeof buf));
    rc = -1;
  }
  fclose(in);
  free(text);
  free(header);
  if (out) {
    bool ok = fflush(out) == 0 && fsync(fileno(out)) == 0;
    ok = fclose(out) == 0 && ok;
    if (!ok || rc != 0 || rename(tmp, target) != 0) {
      if (rc == 0) train_error(o, "cannot rewrite '%s': %s", path, rt_strerror(errno, buf, sizeof buf));
      unlink(tmp);
      rc = -1;
    }
  }
  return rc;
}

/* Opens the metrics file: new (with its header), or for a resumed run
 * trimmed to the checkpoint's epochs and appended to. */
static FILE *csv_open(const RtEngine *e, const RtTrainOptions *o) {
  const char *path = o->metrics_csv;
  bool resumed = o->start.epoch > 0;
  if (resumed && csv_trim(e, o, path, o->start.epoch) != 0) return NULL;
  struct stat st;
  bool append = resumed && stat(path, &st) == 0 && (!S_ISREG(st.st_mode) || st.st_size > 0);
  FILE *f = open_out(path, append);
  char buf[128];
  if (!f) {
    if (errno == ENXIO)
      train_error(o, "cannot write '%s': it is a fifo that no process reads", path);
    else
      train_error(o, "cannot write '%s': %s", path, rt_strerror(errno, buf, sizeof buf));
    return NULL;
  }
  if (!append) csv_header(f, e, o->val && o->val->n > 0);
  if (fflush(f) != 0) {
    train_error(o, "cannot write '%s': %s", path, rt_strerror(errno, buf, sizeof buf));
    fclose(f);
    return NULL;
  }
  return f;
}

/* One epoch's figures, for its line, its CSV row and the final line. */
typedef struct Figures {
  double train_loss;
  bool have_val, have_test;
  double val_loss, test_loss;
  const double *val_metrics, *test_metrics; /* [nmetrics] */
  double seconds, rate;
} Figures;

/* The loss and then every metric, each after a comma (empty fields when absent). */
static void csv_fields(FILE *f, const RtEngine *e, bool have, double loss, const double *metrics) {
  fputc(',', f);
  if (have) fprintf(f, "%.6g", loss);
  for (int i = 0; i < e->nmetrics; i++) {
    fputc(',', f);
    if (have) fprintf(f, "%.6g", metrics[i]);
  }
}

static bool csv_row(FILE *f, const RtEngine *e, int64_t epoch, const Figures *r) {
  fprintf(f, "%lld,%.6g", (long long)epoch, r->train_loss);
  if (r->have_val) csv_fields(f, e, true, r->val_loss, r->val_metrics);
  csv_fields(f, e, r->have_test, r->test_loss, r->test_metrics);
  fprintf(f, ",%.3f,%.1f\n", r->seconds, r->rate);
  return fflush(f) == 0 && !ferror(f);
}

/* ---- result lines ------------------------------------------------------------------- */

/* " SPLIT_loss=L SPLIT_NAME=V ...". */
static void print_split(FILE *out, const RtEngine *e, const char *split, double loss, const double *metrics) {
  fprintf(out, " %s_loss=%.6g", split, loss);
  for (int i = 0; i < e->nmetrics; i++) fprintf(out, " %s_%s=%.6g", split, e->metric_names[i], metrics[i]);
}

/* The fields an epoch line and the final line share:
 *   train_loss=L [val_loss=V val_NAME=V ...] [test_loss=T test_NAME=V ...] seconds=S samples_per_s=R */
static void print_figures(FILE *out, const RtEngine *e, const Figures *r) {
  fprintf(out, " train_loss=%.6g", r->train_loss);
  if (r->have_val) print_split(out, e, "val", r->val_loss, r->val_metrics);
  if (r->have_test) rt_print_test(out, e, r->test_loss, r->test_metrics);
  fprintf(out, " seconds=%.2f samples_per_s=%.1f", r->seconds, r->rate);
}

void rt_print_test(FILE *out, const RtEngine *e, double test_loss, const double *metrics) {
  print_split(out, e, "test", test_loss, metrics);
}

/* ---- early stopping ------------------------------------------------------------------- */

/* After a whole epoch: its val_loss against the best.  Returns the hook's
 * code (RT_TRAIN_BEST on a new best); *stop when patience has run out. */
static int early_stop_update(const RtTrainOptions *o, RtEarlyStop *es, int64_t epoch, int64_t steps,
                             double val_loss, bool *stop) {
  if (es->best_epoch == 0 || val_loss < es->best_loss) {
    es->best_epoch = epoch, es->best_loss = val_loss, es->best_step = steps, es->bad_epochs = 0;
    RtTrainPos pos = {epoch + 1, 0, steps, 0};
    return o->hook ? o->hook(o->hook_self, &pos, RT_TRAIN_BEST) : 0;
  }
  if (++es->bad_epochs >= es->patience) {
    *stop = true;
    fprintf(stderr, "%s%searly stop after epoch %lld: val_loss has not improved for %lld epochs; the best was epoch "
            "%lld (val_loss=%.6g)\n", o->prog ? o->prog : "", o->prog ? ": " : "", (long long)epoch,
            (long long)es->bad_epochs, (long long)es->best_epoch, es->best_loss);
  }
  return 0;
}

/* ---- the run's length and the lr schedule ---------------------------------------------- */

int64_t rt_run_steps(int64_t n, int64_t batch, int64_t epochs, int64_t max_steps) {
  int64_t per = (n + batch - 1) / (batch > 0 ? batch : 1);
  int64_t all = epochs > 0 && per > 0 && epochs <= INT64_MAX / per ? epochs * per : INT64_MAX;
  if (epochs <= 0) all = max_steps > 0 ? max_steps : 0;
  return max_steps > 0 && max_steps < all ? max_steps : all;
}

double rt_schedule_lr(const RtSchedule *s, int64_t step, int64_t total) {
  if (!s) return 1;
  int64_t it = step > 0 ? step - 1 : 0;
  switch (s->kind) {
  case RT_SCHEDULE_STEP:
    return pow(s->factor, (double)(it / (s->every > 0 ? s->every : 1)));
  case RT_SCHEDULE_COSINE: {
    if (it < s->warmup) return (double)(it + 1) / (double)s->warmup;
    double span = (double)(total - s->warmup), ratio = span > 0 ? (double)(it - s->warmup) / span : 1;
    if (ratio > 1) ratio = 1;
    return s->min + (1 - s->min) * 0.5 * (1 + cos(M_PI * ratio));
  }
  default:
    return 1;
  }
}

/* ---- the loop ------------------------------------------------------------------------- */

int rt_train(RtEngine *e, const RtDataset *train, const RtDataset *test, const RtTrainOptions *o) {
  FILE *out = o->out ? o->out : stdout;
  int64_t n = train->n, B = o->batch > 0 ? o->batch : 1;
  bool have_test = test && test->n > 0, have_val = o->val && o->val->n > 0;
  RtEarlyStop *es = have_val && o->early && o->early->patience > 0 ? o->early : NULL;
  if (n <= 0) {
    train_error(o, "the training set is empty");
    return 1;
  }
  if (have_test && test->features != train->features) { /* the loaders check both against the model */
    train_error(o, "the test set has %lld values per sample, the training set %lld", (long long)test->features,
                (long long)train->features);
    return 1;
  }
  int64_t rank = rt_comm_rank(), nranks = rt_comm_size();
  if (nranks > 1 && !e->step_share) {
    train_error(o, "this engine trains in one process, not as %lld MPI ranks", (long long)nranks);
    return 1;
  }
  int64_t *order = malloc((size_t)n * sizeof *order);
  double *msum = calloc((size_t)e->nmetrics + 1, sizeof(double));
  double *tmetrics = calloc((size_t)e->nmetrics + 1, sizeof(double));
  double *vmetrics = calloc((size_t)e->nmetrics + 1, sizeof(double));
  Batch b = {NULL, NULL};
  if (!order || !msum || !tmetrics || !vmetrics || !batch_alloc(&b, B, train)) {
    char size[32];
    rt_format_bytes(((double)B * (double)(train->features + 1) + (double)n * 2) * 4, size, sizeof size);
    train_error(o, "out of memory for a batch of %lld samples of %lld values and the order of %lld samples (%s)",
                (long long)B, (long long)train->features, (long long)n, size);
    free(order), free(msum), free(tmetrics), free(vmetrics), batch_free(&b);
    return 1;
  }
  FILE *csv = o->metrics_csv ? csv_open(e, o) : NULL;
  int rc = o->metrics_csv && !csv ? 1 : 0;
  RtPlot plot;
  if (!rt_plot_init(&plot, o->plot, o->model, e->nmetrics, e->metric_names, have_val, have_test)) {
    train_error(o, "out of memory");
    rc = 1;
  }
  Progress prog = {isatty(2) != 0, 0, 0};
  int64_t steps = o->start.steps, nbatches = (n + B - 1) / B, stride = rt_plot_stride(nbatches);
  int64_t total = rt_run_steps(n, B, o->epochs, o->max_steps);
  int64_t epochs = o->epochs > 0 ? o->epochs : (total + nbatches - 1) / nbatches; /* steps alone: as many as they need */
  bool stop = es && es->bad_epochs >= es->patience; /* resumed after it stopped early */
  RtTrainPos pos = {o->start.epoch > 0 ? o->start.epoch : 1, 0, steps, 0}; /* the latest position */
  /* For the final line: the last epoch's results, totals over all epochs. */
  int64_t last_epoch = 0, all_seen = 0;
  double all_train_s = 0, run_t0 = now_s();
  Figures last = {0};

  for (int64_t epoch = pos.epoch; epoch <= epochs && rc == 0 && !stop; epoch++) {
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
      /* Several ranks: this rank's share of the step's samples (the same
       * order on every rank); the losses are summed over the ranks. */
      int64_t lo = count * rank / nranks, hi = count * (rank + 1) / nranks;
      rt_batch_gather(train, order, start + lo, hi - lo, b.x, b.y);
      if (o->schedule && e->scale_lr) e->scale_lr(e->self, rt_schedule_lr(o->schedule, steps + 1, total));
      if (nranks > 1) e->step_share(e->self, count);
      double ls = 0;
      if (e->train_step(e->self, b.x, b.y, hi - lo, &ls, msum)) {
        rc = 1;
        break;
      }
      if (nranks > 1) { /* the loss over all ranks; a signal one rank got stops every rank after this step */
        double v[2] = {ls, rt_signal_pending()};
        if (rt_comm_sum_f64(v, 2) != 0) {
          rc = 1;
          break;
        }
        ls = v[0];
        if (v[1] > 0) rt_signal_note(SIGTERM);
      }
      steps++, done++;
      if (!isfinite(ls)) {
        progress_clear(&prog);
        fprintf(stderr, "%s%serror: loss is %s at step %lld", o->prog ? o->prog : "", o->prog ? ": " : "",
                isnan(ls) ? "nan" : ls > 0 ? "inf" : "-inf", (long long)steps);
        if (o->last_checkpoint && *o->last_checkpoint)
          fprintf(stderr, "; last good checkpoint: %s", *o->last_checkpoint);
        fprintf(stderr, "\n");
        rc = 1;
        break;
      }
      loss += ls;
      seen += count;
      pos = (RtTrainPos){epoch, start + count, steps, loss};
      if (o->plot && (done % stride == 0 || done == nbatches) &&
          !rt_plot_train(&plot, (double)(epoch - 1) + (double)done / (double)nbatches, loss / (double)seen)) {
        train_error(o, "out of memory");
        rc = 1;
        break;
      }
      if (o->hook) {
        if (rt_signal_pending()) progress_clear(&prog);
        if ((rc = o->hook(o->hook_self, &pos, RT_TRAIN_STEP)) != 0) break;
      }
      progress_draw(&prog, epoch, epochs, done, nbatches, loss / (double)seen, seen);
      if (o->max_steps > 0 && steps >= o->max_steps) {
        stop = true;
        break;
      }
    }
    if (rc) break;
    double t_train = now_s() - t0;
    Figures r = {.have_val = have_val, .have_test = have_test, .val_metrics = vmetrics, .test_metrics = tmetrics};
    if ((have_val && evaluate(e, o->val, B, &b, &r.val_loss, vmetrics)) ||
        (have_test && evaluate(e, test, B, &b, &r.test_loss, tmetrics))) {
      rc = 1;
      break;
    }
    r.seconds = now_s() - t0, r.train_loss = loss / (double)(seen ? seen : 1);
    r.rate = t_train > 0 ? (double)(seen - begin) / t_train : 0; /* samples trained in this run */
    progress_clear(&prog);
    fprintf(out, "epoch=%lld", (long long)epoch);
    print_figures(out, e, &r);
    if (done < nbatches) fprintf(out, " partial=%lld/%lld", (long long)done, (long long)nbatches);
    fprintf(out, "\n");
    if (!out_ok(o, out)) {
      rc = 1;
      break;
    }
    last_epoch = epoch, last = r;
    all_seen += seen - begin, all_train_s += t_train;
    if (csv && !csv_row(csv, e, epoch, &r)) {
      char buf[128];
      train_error(o, "cannot write '%s': %s", o->metrics_csv, rt_strerror(errno ? errno : EIO, buf, sizeof buf));
      rc = 1;
    }
    if (rc == 0 && o->plot) {
      RtError err;
      snprintf(err.msg, sizeof err.msg, "out of memory");
      if (!rt_plot_epoch(&plot, epoch, r.val_loss, vmetrics, r.test_loss, tmetrics) || rt_plot_write(&plot, &err)) {
        train_error(o, "%s", err.msg);
        rc = 1;
      }
    }
    /* Only whole epochs count for early stopping, so a resumed run counts as the uninterrupted one. */
    bool early = false;
    if (rc == 0 && es && seen == n) rc = early_stop_update(o, es, epoch, steps, r.val_loss, &early);
    stop |= early;
    if (rc == 0 && (!stop || early) && seen == n) {
      pos = (RtTrainPos){epoch + 1, 0, steps, 0};
      if (o->hook) rc = o->hook(o->hook_self, &pos, RT_TRAIN_EPOCH);
    }
  }
  progress_clear(&prog);
  if (csv && fclose(csv) != 0 && rc == 0) {
    char buf[128];
    train_error(o, "cannot write '%s': %s", o->metrics_csv, rt_strerror(errno, buf, sizeof buf));
    rc = 1;
  }
  if (rc == 0 && o->hook) rc = o->hook(o->hook_self, &pos, RT_TRAIN_END);
  if (rc == 0 && last_epoch > 0) {
    fprintf(out, "done: epochs=%lld steps=%lld", (long long)last_epoch, (long long)steps);
    last.seconds = now_s() - run_t0, last.rate = all_train_s > 0 ? (double)all_seen / all_train_s : 0;
    print_figures(out, e, &last);
    fprintf(out, "\n");
    if (!out_ok(o, out)) rc = 1;
  }
  free(order), free(msum), free(tmetrics), free(vmetrics), batch_free(&b);
  rt_plot_free(&plot);
  return rc;
}
