/* runtime/text.c - text data: any file as a string of byte tokens.
 *
 * A sample is a window of `context` bytes (the input) and the byte after
 * each of them (the label): the model learns to predict the next byte.
 * The training split has one window per start byte (rt_train's shuffled
 * order then draws random windows for every step; an epoch is every
 * window once); evaluation uses non-overlapping windows, so each byte of
 * the test text is predicted once.  Without a test file the last 10% of
 * the file is the test text and the rest the training text.
 *
 * The bytes stay in memory as they are: windows are cut out when a batch
 * is gathered (rt_batch_gather), never materialized.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "files.h"

#define TEXT_CAP ((size_t)2 << 30)

/* Windows of `context` bytes, each followed by one more byte (its last label). */
static int64_t windows(int64_t ntokens, int64_t context, int64_t stride) {
  return ntokens > context ? (ntokens - context - 1) / stride + 1 : 0;
}

static int text_split(const char *path, uint8_t *bytes, int64_t begin, int64_t end, int64_t context,
                      int64_t stride, int64_t bound, const char *what, RtDataset *out, RtError *err) {
  int64_t n = windows(end - begin, context, stride);
  if (n < 1) {
    free(bytes);
    return rt_error_set(err, "%s: %s has %lld bytes, too few for one window of context %lld and the byte after it",
                        path, what, (long long)(end - begin), (long long)context);
  }
  for (int64_t i = begin + 1; bound > 0 && i < end; i++) /* the labels: every byte but the first */
    if (bytes[i] >= bound) {
      int b = bytes[i];
      free(bytes);
      return rt_error_set(err, "%s: byte %d at offset %lld is not a token of the model's %lld (its labels must "
                          "lie in [0, %lld))", path, b, (long long)i, (long long)bound, (long long)bound);
    }
  if (begin > 0) memmove(bytes, bytes + begin, (size_t)(end - begin));
  out->tokens = bytes;
  out->ntokens = end - begin;
  out->stride = stride;
  out->n = n;
  out->features = context;
  out->label_size = context;
  out->label_type = RT_LABEL_I32;
  out->source = strdup(path);
  if (!out->source) {
    rt_data_free(out);
    return rt_error_set(err, "%s: out of memory", path);
  }
  return 0;
}

int rt_text_load(const char *path, const char *test_path, bool test_split, int64_t context,
                 const RtDataExpect *expect, RtDataset *out, RtError *err) {
  memset(out, 0, sizeof *out);
  if (context < 1) return rt_error_set(err, "%s: text data needs a context of at least one byte", path);
  if (expect && expect->features > 0 && expect->features != context)
    return rt_error_set(err, "%s: the model's input has %lld values, but text windows have %lld bytes", path,
                        (long long)expect->features, (long long)context);
  const char *file = test_split && test_path ? test_path : path;
  char *buf;
  size_t len;
  if (rt_read_whole(file, TEXT_CAP, "text data", "the text's bytes", expect ? expect->max_bytes : 0, &buf, &len,
                    err))
    return -1;
  int64_t bound = expect && expect->label_type == RT_LABEL_I32 ? expect->label_bound : 0;
  int64_t n = (int64_t)len, cut = test_path ? n : n - n / 10; /* the training text ends at cut */
  if (test_split && test_path)
    return text_split(file, (uint8_t *)buf, 0, n, context, context, bound, "the test file", out, err);
  if (test_split) return text_split(file, (uint8_t *)buf, cut, n, context, context, bound, "its last 10% (the test text)",
                                    out, err);
  return text_split(file, (uint8_t *)buf, 0, cut, context, 1, bound,
                    test_path ? "the file" : "the text before its last 10% (the training text)", out, err);
}

/* The window of sample s into x (as f32 token values) and y (the next bytes). */
void rt_text_gather(const RtDataset *d, int64_t s, float *x, int32_t *y) {
  const uint8_t *w = d->tokens + s * d->stride;
  for (int64_t j = 0; j < d->features; j++) {
    if (x) x[j] = (float)w[j];
    if (y) y[j] = (int32_t)w[j + 1];
  }
}

int rt_text_hold_out(RtDataset *train, double fraction, const char *what, RtDataset *val, RtError *err) {
  int64_t nval = (int64_t)ceil((double)train->ntokens * fraction);
  int64_t keep = train->ntokens - nval, ctx = train->features;
  if (windows(nval, ctx, ctx) < 1 || windows(keep, ctx, 1) < 1)
    return rt_error_set(err, "%s: a fraction of %g of the %lld bytes of training text leaves %s", what, fraction,
                        (long long)train->ntokens, windows(nval, ctx, ctx) < 1 ? "no validation window" :
                        "no training window");
  *val = *train;
  val->tokens = train->tokens + keep;
  val->ntokens = nval;
  val->stride = ctx;
  val->n = windows(nval, ctx, ctx);
  train->ntokens = keep;
  train->n = windows(keep, ctx, 1);
  return 0;
}
