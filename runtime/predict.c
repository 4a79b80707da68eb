/* runtime/predict.c - --predict: a model's output over a file of inputs,
 * written as CSV (see rt_predict in train.h).
 *
 * The engine's predict_batch runs the eval plan on each batch (labels
 * absent: the loss it also computes is never read) and hands back the
 * output buffer.  The file is written to a temporary name and renamed
 * only after the last row, so an error or a kill leaves no partial file.
 */
#include "files.h"
#include "train.h"

#include <errno.h>
#include <stdlib.h>

/* The header: NAME for one value, else NAME_0,...,NAME_{k-1} (row-major). */
static void write_header(FILE *f, const char *name, int64_t k) {
  if (k == 1) {
    fprintf(f, "%s\n", name);
    return;
  }
  for (int64_t j = 0; j < k; j++) fprintf(f, "%s%s_%lld", j ? "," : "", name, (long long)j);
  fputc('\n', f);
}

int rt_predict(RtEngine *e, const RtDataset *in, int64_t batch, const char *path, const char *prog) {
  int64_t k = e->output_size, B = batch > 0 ? batch : 1;
  if (!e->predict_batch || k <= 0) {
    rt_print_error(prog, "this model names no prediction (add `output NAME` to it)");
    return 1;
  }
  if (in->n <= 0) {
    rt_print_error(prog, "%s: no samples to predict", in->source ? in->source : "--predict");
    return 1;
  }
  if (B > in->n) B = in->n;
  float *y = malloc((size_t)(B * k) * sizeof *y);
  RtError err;
  RtReplace out;
  if (!y) {
    rt_print_error(prog, "out of memory");
    return 1;
  }
  if (rt_replace_open(&out, path, &err)) {
    rt_print_error(prog, "%s", err.msg);
    free(y);
    return 1;
  }
  write_header(out.f, e->output_name ? e->output_name : "output", k);
  bool ok = true;
  for (int64_t s = 0; ok && s < in->n; s += B) {
    int64_t n = in->n - s < B ? in->n - s : B;
    if (e->predict_batch(e->self, in->x + s * in->features, n, y)) { /* reported */
      rt_replace_commit(&out, false, NULL);
      free(y);
      return 1;
    }
    for (int64_t i = 0; i < n; i++) {
      const float *row = y + i * k;
      for (int64_t j = 0; j < k; j++) fprintf(out.f, j ? ",%.9g" : "%.9g", (double)row[j]);
      fputc('\n', out.f);
    }
    ok = !ferror(out.f);
  }
  if (!ok) rt_error_set(&err, "%s: write failed: %s", path, rt_strerror(errno, (char[128]){0}, 128));
  if (rt_replace_commit(&out, ok, &err) != 0) {
    rt_print_error(prog, "%s", err.msg);
    free(y);
    return 1;
  }
  free(y);
  printf("predict: samples=%lld values=%lld output=%s\n", (long long)in->n, (long long)k, path);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    rt_print_error(prog, "cannot write the results on stdout");
    return 1;
  }
  return 0;
}
