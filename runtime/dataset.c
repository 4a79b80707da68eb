/* runtime/dataset.c - rt_data_load (dispatch to the IDX, CSV or text
 * loader), rt_data_free and rt_batch_gather.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "memlimit.h"

/* The scale (0 = 1) as inputs are f32: inf or (nearly) 0 there is no scale. */
static int check_scale(const char *path, double scale, double *out, RtError *err) {
  *out = scale == 0 ? 1.0 : scale;
  if (!isfinite((float)*out) || fabs(*out) < FLT_MIN)
    return rt_error_set(err, "%s: scale %g is out of range for f32 (from %.6g to %.6g in magnitude)", path, *out,
                        FLT_MIN, FLT_MAX);
  return 0;
}

int rt_data_load(const RtDataSpec *spec, bool test_split, const RtDataExpect *expect,
                 RtDataset *out, RtError *err) {
  memset(out, 0, sizeof *out);
  if (err) err->msg[0] = 0;
  if (!spec || !spec->path)
    return rt_error_set(err, "<data>: no data source given");
  double scale;
  if (check_scale(spec->path, spec->scale, &scale, err)) return -1;
  switch (spec->kind) {
  case RT_DATA_IDX:
    return rt_idx_load(spec->path, test_split, scale, expect, out, err);
  case RT_DATA_CSV:
    if (test_split) {
      if (!spec->test_path) return 1; /* no test set: out->n == 0 */
      return rt_csv_load(spec->test_path, spec->label, scale, expect, out, err);
    }
    return rt_csv_load(spec->path, spec->label, scale, expect, out, err);
  case RT_DATA_TEXT:
    return rt_text_load(spec->path, spec->test_path, test_split, spec->context, expect, out, err);
  }
  return rt_error_set(err, "%s: unknown data source kind %d", spec->path, (int)spec->kind);
}

int rt_data_load_inputs(RtDataKind kind, const char *path, double scale, const RtDataExpect *expect, RtDataset *out,
                        RtError *err) {
  memset(out, 0, sizeof *out);
  RtDataExpect e = expect ? *expect : (RtDataExpect){0};
  e.label_type = RT_LABEL_NONE;
  e.label_bound = 0;
  if (check_scale(path, scale, &scale, err)) return -1;
  if (kind == RT_DATA_IDX) return rt_idx_load_images(path, scale, &e, out, err);
  if (kind == RT_DATA_CSV) return rt_csv_load(path, NULL, scale, &e, out, err);
  return rt_error_set(err, "%s: unknown data source kind %d", path, (int)kind);
}

int rt_data_load_splits(const RtDataSpec *spec, const RtDataExpect *expect, RtDataset *train, RtDataset *test,
                        RtError *err) {
  memset(test, 0, sizeof *test);
  if (rt_data_load(spec, false, expect, train, err) != 0) return -1;
  RtDataExpect rest = *expect;
  if (rest.max_bytes > 0) {
    double left = (double)rest.max_bytes -
                  (train->tokens ? (double)train->ntokens : RT_DATA_BYTES(train->n, train->features));
    rest.max_bytes = left >= 1 ? (int64_t)left : 1;
  }
  if (rt_data_load(spec, true, &rest, test, err) < 0) {
    rt_data_free(train);
    return -1;
  }
  return 0;
}

int rt_data_hold_out(RtDataset *train, double fraction, const char *what, RtDataset *val, RtError *err) {
  memset(val, 0, sizeof *val);
  if (!(fraction > 0 && fraction < 1))
    return rt_error_set(err, "%s needs a fraction between 0 and 1, found %g", what, fraction);
  if (train->tokens) return rt_text_hold_out(train, fraction, what, val, err);
  int64_t n = train->n, nval = (int64_t)ceil(fraction * (double)n);
  if (nval < 1 || nval >= n)
    return rt_error_set(err, "%s: a fraction of %g of the %lld training samples leaves %s", what, fraction,
                        (long long)n, nval < 1 ? "no validation sample" : "no training sample");
  int64_t keep = n - nval;
  *val = *train;
  val->n = nval;
  val->x = train->x + (size_t)keep * (size_t)train->features;
  if (train->yi) val->yi = train->yi + keep;
  if (train->yf) val->yf = train->yf + keep;
  train->n = keep;
  return 0;
}

void rt_data_free(RtDataset *d) {
  if (!d) return;
  free(d->x);
  free(d->yi);
  free(d->yf);
  free(d->source);
  free(d->tokens);
  memset(d, 0, sizeof *d);
}

void rt_batch_gather(const RtDataset *d, const int64_t *order, int64_t start, int64_t count,
                     float *x_out, void *y_out) {
  size_t f = (size_t)d->features;
  for (int64_t i = 0; i < count; i++) {
    int64_t s = order ? order[start + i] : start + i;
    if (d->tokens) {
      rt_text_gather(d, s, x_out ? x_out + (size_t)i * f : NULL, y_out ? (int32_t *)y_out + (size_t)i * f : NULL);
      continue;
    }
    if (x_out) memcpy(x_out + (size_t)i * f, d->x + (size_t)s * f, f * sizeof(float));
    if (!y_out || d->label_type == RT_LABEL_NONE) continue;
    if (d->label_type == RT_LABEL_I32)
      ((int32_t *)y_out)[i] = d->yi[s];
    else
      ((float *)y_out)[i] = d->yf[s];
  }
}
