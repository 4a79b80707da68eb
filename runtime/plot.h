/* runtime/plot.h - --plot FILE.svg: the curves of a training run as one
 * small SVG, written by hand (no dependency), readable in a browser.
 *
 * Two panels share the epoch axis: the losses (the running mean train loss
 * sampled through each epoch, val_loss and test_loss per epoch) and, when
 * the model has metrics and a validation or test set, the metrics (val_ and
 * test_ per epoch).  Each has axes with ticks and numbers and a legend.
 * rt_train adds points as it goes and rewrites the file after every epoch:
 * FILE.tmp, then renamed over FILE, so a reader always sees a whole file.
 */
#ifndef NNRT_PLOT_H
#define NNRT_PLOT_H

#include "data.h" /* RtError */

#include <stdbool.h>
#include <stdint.h>

/* A curve: points (x in epochs, y). */
typedef struct RtCurve {
  double *x, *y;
  int64_t n, cap;
} RtCurve;

typedef struct RtPlot {
  const char *path;
  const char *title;                /* the model's name; NULL = none */
  int nmetrics;
  const char *const *metric_names;  /* [nmetrics] */
  bool have_val, have_test;
  RtCurve train;                    /* the running mean train loss within each epoch */
  RtCurve val_loss, test_loss;      /* one point per epoch */
  RtCurve *val_metric, *test_metric; /* [nmetrics], one point per epoch */
} RtPlot;

/* false when out of memory. */
bool rt_plot_init(RtPlot *p, const char *path, const char *title, int nmetrics, const char *const *metric_names,
                  bool have_val, bool have_test);
void rt_plot_free(RtPlot *p);

/* How many training steps apart the train loss is sampled in an epoch of
 * nbatches steps: every step for short epochs, about 20 points for long
 * ones (the last step of an epoch is always a point). */
int64_t rt_plot_stride(int64_t nbatches);

/* A point of the train loss curve; false when out of memory. */
bool rt_plot_train(RtPlot *p, double epoch, double loss);

/* An epoch's evaluation figures (val_* when have_val, test_* when
 * have_test); false when out of memory. */
bool rt_plot_epoch(RtPlot *p, int64_t epoch, double val_loss, const double *val_metrics, double test_loss,
                   const double *test_metrics);

/* Writes the SVG: PATH.tmp, then renamed over PATH.  0, or -1 with err set. */
int rt_plot_write(const RtPlot *p, RtError *err);

#endif
