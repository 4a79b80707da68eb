/* driver/check.c - the backend conformance check (see check.h).
 *
 * Each model is written with its generated data into a temporary directory
 * and run twice by this nnc as child processes, so that a crash in a
 * plugin's code is one FAIL line, not the end of the check:
 *
 *   nnc M.nn --run --epochs 2 --save ref.st --metrics ref.csv              (the oracle)
 *   nnc M.nn --target=NAME [--plugin=P ...] [--backend-opt ...] -o train
 *   ./train --epochs 2 --save out.st --metrics out.csv
 *
 * Parameters must agree within --check-tol relative to each tensor's
 * largest magnitude (as test/Inputs/compare-params.py), and the train and
 * test losses of every epoch within 10 times that.  On a failure the
 * directory is kept, with each step's output in its .log file.
 */
#include "driver/check.h"

#include "codegen/backend.h"
#include "driver/process.h"
#include "support/diag.h"
#include "support/arena.h"
#include "runtime/safetensors.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the models ------------------------------------------------------------------------------ */

typedef struct CheckModel {
  const char *name;
  const char *what;
  int data;        /* 0: idx 4x4, 4 classes; 1: idx 2x3, 3 classes; 2: csv, 4 features + f32 target */
  const char *src; /* %s: the data directory */
} CheckModel;

static const CheckModel models[] = {
    {"mlp", "dense, relu, cross_entropy, adam", 0,
     "model mlp {\n  input x: f32[16]\n  label y: i32\n  h = relu(dense(x, 12))\n  logits = dense(h, 4)\n"
     "  loss = cross_entropy(logits, y)\n  metric accuracy = argmax(logits) == y\n}\n"
     "train mlp {\n  data = idx(\"%s\")\n  scale = 1/255\n  optimizer = adam(lr = 0.01)\n  batch = 16\n"
     "  epochs = 2\n  seed = 1\n}\n"},
    {"custom", "user fn, layer and optimizer; log_softmax, index", 1,
     "fn swish(x) = x * sigmoid(x)\n"
     "layer residual(x: f32[n]) {\n  param w: f32[n, n] = he_normal()\n  param b: f32[n] = zeros()\n"
     "  param gate: f32 = 0.1\n  return x + gate * tanh(x @ w + b)\n}\n"
     "fn smoothed(logits: f32[k], y: i32, eps = 0.1) {\n  logp = log_softmax(logits)\n"
     "  return -(1 - eps) * logp[y] - eps * mean(logp)\n}\n"
     "optimizer rmsprop(lr = 0.01, decay = 0.9, eps = 1e-7) {\n  state s = zeros()\n"
     "  s = decay * s + (1 - decay) * g^2\n  p = p - lr * g / (sqrt(s) + eps)\n}\n"
     "model c {\n  input x: f32[6]\n  label y: i32\n  h = swish(dense(x, 5))\n  r = residual(h)\n"
     "  logits = dense(r, 3)\n  loss = smoothed(logits, y)\n  metric accuracy = argmax(logits) == y\n}\n"
     "train c {\n  data = idx(\"%s\")\n  scale = 1/255\n  optimizer = rmsprop\n  batch = 8\n  epochs = 2\n"
     "  seed = 2\n}\n"},
    {"regression", "csv, f32 label, tanh, mse, sgd with momentum", 2,
     "model r {\n  input x: f32[4]\n  label y: f32\n  h = tanh(dense(x, 6))\n  pred = dense(h, 1)\n"
     "  loss = mse(pred, y)\n  metric err = mean(abs(pred - y))\n}\n"
     "train r {\n  data = csv(\"%s/train.csv\", test = \"%s/test.csv\", label = \"target\")\n"
     "  optimizer = sgd(lr = 0.05, momentum = 0.9)\n  batch = 16\n  epochs = 2\n  seed = 3\n}\n"},
    {"shapes", "transpose, reshape, sum/max over axes, matmul, index, onehot, softmax", 1,
     "model s {\n  input x: f32[2, 3]\n  label y: i32\n  param w: f32[3, 2] = glorot_uniform()\n"
     "  t = transpose(x)\n  r = reshape(x, [3, 2])\n  a = sum(x @ w, axis = 0)\n"
     "  b = max(r * w, axis = -1)\n  c = sum(t, axis = [0, 1]) + sum(a) + sum(b)\n"
     "  loss = c * c / 10 + x[1][y] + sum(onehot(y, 3) * softmax(x[0]))\n  metric m = argmax(x[0]) == y\n}\n"
     "train s {\n  data = idx(\"%s\")\n  scale = 1/255\n  optimizer = sgd(lr = 0.1)\n  batch = 8\n  epochs = 2\n"
     "  seed = 4\n}\n"},
    {"elementwise", "exp, log, sqrt, pow, abs, min, max, where, comparisons, sigmoid", 0,
     "fn w2(v) = (v <= 1) * v * v + (v != v) + (v >= 2) * abs(v)\n"
     "model e {\n  input x: f32[16]\n  label y: i32\n  h = dense(x, 8)\n"
     "  g = where(h > 0, sqrt(abs(h) + 1), exp(min(h, 0)) - log(1 + h^2)) * sigmoid(max(h, -1))\n"
     "  logits = dense(g, 4)\n  loss = cross_entropy(logits, y) + 0.01 * sum(w2(h))\n"
     "  metric accuracy = argmax(logits) == y\n}\n"
     "train e {\n  data = idx(\"%s\")\n  scale = 1/255\n  optimizer = adam(lr = 0.005)\n  batch = 16\n"
     "  epochs = 2\n  seed = 5\n}\n"},
};

/* ---- files ------------------------------------------------------------------------------------- */

typedef struct Dir {
  char path[PATH_MAX];
  char *files[128];
  int nfiles;
} Dir;

static const char *dir_file(Dir *d, const char *name) {
  char buf[PATH_MAX * 3];
  snprintf(buf, sizeof buf, "%s/%s", d->path, name);
  if (d->nfiles < 128) d->files[d->nfiles++] = nnc_xstrdup(buf);
  return d->files[d->nfiles - 1];
}

static void dir_remove(Dir *d) {
  for (int i = d->nfiles - 1; i >= 0; i--) {
    if (unlink(d->files[i]) != 0) rmdir(d->files[i]);
    free(d->files[i]);
  }
  rmdir(d->path);
  d->nfiles = 0;
}

static bool write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  bool ok = f && fwrite(data, 1, n, f) == n;
  if (f) ok &= fclose(f) == 0;
  if (!ok) diag_error_plain("cannot write '%s': %s", path, strerror(errno));
  return ok;
}

static void be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8),
  p[3] = (unsigned char)v;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 11);
}

/* IDX files for n samples of rows x cols pixels; the label is a function of
 * the pixels (the brightest of `classes` regions), so the models learn. */
static bool write_idx(Dir *d, const char *sub, int rows, int cols, int classes) {
  char path[PATH_MAX * 2];
  snprintf(path, sizeof path, "%s/%s", d->path, sub);
  if (mkdir(path, 0700) != 0) {
    diag_error_plain("cannot create '%s': %s", path, strerror(errno));
    return false;
  }
  static const char *const names[2][2] = {{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
                                          {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}};
  for (int set = 0; set < 2; set++) {
    int n = set ? 32 : 96, px = rows * cols;
    unsigned char *img = nnc_xmalloc((size_t)(16 + n * px)), *lab = nnc_xmalloc((size_t)(8 + n));
    be32(img, 0x803), be32(img + 4, (uint32_t)n), be32(img + 8, (uint32_t)rows), be32(img + 12, (uint32_t)cols);
    be32(lab, 0x801), be32(lab + 4, (uint32_t)n);
    for (int i = 0; i < n; i++) {
      int best = 0, bestv = -1;
      for (int c = 0; c < classes; c++) {
        int sum = 0;
        for (int j = c; j < px; j += classes) {
          int v = (int)(rnd() % 256);
          img[16 + i * px + j] = (unsigned char)v;
          sum += v;
        }
        if (sum > bestv) bestv = sum, best = c;
      }
      lab[8 + i] = (unsigned char)best;
    }
    char sp[PATH_MAX * 2];
    snprintf(sp, sizeof sp, "%s/%s", sub, names[set][0]);
    bool ok = write_bytes(dir_file(d, sp), img, (size_t)(16 + n * px));
    snprintf(sp, sizeof sp, "%s/%s", sub, names[set][1]);
    ok = ok && write_bytes(dir_file(d, sp), lab, (size_t)(8 + n));
    free(img);
    free(lab);
    if (!ok) return false;
  }
  dir_file(d, sub); /* removed after its files */
  return true;
}

static bool write_csv(Dir *d, const char *sub) {
  char path[PATH_MAX * 2];
  snprintf(path, sizeof path, "%s/%s", d->path, sub);
  if (mkdir(path, 0700) != 0) {
    diag_error_plain("cannot create '%s': %s", path, strerror(errno));
    return false;
  }
  for (int set = 0; set < 2; set++) {
    char sp[PATH_MAX * 2];
    snprintf(sp, sizeof sp, "%s/%s", sub, set ? "test.csv" : "train.csv");
    const char *file = dir_file(d, sp);
    FILE *f = fopen(file, "w");
    if (!f) {
      diag_error_plain("cannot write '%s': %s", file, strerror(errno));
      return false;
    }
    fprintf(f, "a,b,c,d,target\n");
    for (int i = 0; i < (set ? 32 : 96); i++) {
      double x[4];
      for (int j = 0; j < 4; j++) x[j] = (double)(rnd() % 2001) / 1000.0 - 1.0;
      fprintf(f, "%.3f,%.3f,%.3f,%.3f,%.6f\n", x[0], x[1], x[2], x[3], 0.5 * x[0] - x[1] * x[2] + 0.25 * x[3]);
    }
    if (fclose(f) != 0) return false;
  }
  dir_file(d, sub);
  return true;
}

/* ---- running ------------------------------------------------------------------------------------ */

/* The largest relative difference of the parameters, or -1 with why set. */
static double compare_params(const char *ref, const char *out, char *why, size_t n, int *ntensors) {
  RtSafetensors a, b;
  RtError err;
  if (rt_safetensors_read(ref, &a, &err) != 0) {
    snprintf(why, n, "reference: %.400s", err.msg);
    return -1;
  }
  if (rt_safetensors_read(out, &b, &err) != 0) {
    snprintf(why, n, "%s", err.msg);
    rt_safetensors_free(&a);
    return -1;
  }
  double worst = 0;
  *ntensors = a.n;
  if (a.n != b.n) snprintf(why, n, "%d tensors, the reference has %d", b.n, a.n), worst = -1;
  for (int i = 0; i < a.n && worst >= 0; i++) {
    const RtStTensor *t = &a.tensors[i];
    int rank;
    const int64_t *dims;
    const float *y = rt_safetensors_find(&b, t->name, &rank, &dims);
    int64_t numel = 1;
    for (int k = 0; k < t->rank; k++) numel *= t->dims[k];
    if (!y || rank != t->rank || (rank && memcmp(dims, t->dims, sizeof(int64_t) * (size_t)rank))) {
      snprintf(why, n, "tensor '%s' is missing or has another shape", t->name);
      worst = -1;
      break;
    }
    double scale = 1e-30;
    for (int64_t k = 0; k < numel; k++) scale = fmax(scale, fabs(t->data[k]));
    for (int64_t k = 0; k < numel; k++) {
      double r = fabs((double)t->data[k] - (double)y[k]) / scale;
      if (!(r <= worst)) {
        worst = isnan(r) ? INFINITY : r;
        snprintf(why, n, "%s[%lld]: %.9g, reference %.9g", t->name, (long long)k, (double)y[k], (double)t->data[k]);
      }
    }
  }
  rt_safetensors_free(&a);
  rt_safetensors_free(&b);
  return worst;
}

/* Reads the train_loss and test_loss columns (2 and 3) of a metrics CSV:
 * returns the rows read. */
static int read_losses(const char *path, double losses[][2], int max) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char line[4096];
  int n = 0;
  if (!fgets(line, sizeof line, f)) n = 0; /* the header */
  while (n < max && fgets(line, sizeof line, f)) {
    char *p = line, *end;
    strtod(p, &end); /* epoch */
    if (*end != ',') break;
    losses[n][0] = strtod(end + 1, &end);
    if (*end != ',') break;
    losses[n][1] = strtod(end + 1, &end);
    n++;
  }
  fclose(f);
  return n;
}

/* The last lines of a log, indented, to stderr. */
static void print_tail(const char *log) {
  FILE *f = fopen(log, "r");
  if (!f) return;
  char lines[8][512];
  int n = 0;
  while (fgets(lines[n % 8], sizeof lines[0], f)) n++;
  fclose(f);
  for (int i = n > 8 ? n - 8 : 0; i < n; i++) printf("      | %s", lines[i % 8]);
}

int check_backend(const Options *o, const char *argv0) {
  const NncBackend *b = backend_find(o->check_backend, true);
  if (!b) return 1; /* options_parse reported it */
  if (b->flags & NNC_BACKEND_NO_KERNELS) {
    diag_error_plain("the '%s' target compiles no kernels; --check-backend checks a backend that does", b->name);
    return 1;
  }
  char self[PATH_MAX];
  ssize_t sn = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sn > 0) self[sn] = 0;
  else snprintf(self, sizeof self, "%s", argv0);

  Dir d;
  memset(&d, 0, sizeof d);
  const char *tmp = getenv("TMPDIR");
  snprintf(d.path, sizeof d.path, "%s/nnc-check-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(d.path)) {
    diag_error_plain("cannot create a temporary directory: %s", strerror(errno));
    return 1;
  }
  if (!write_idx(&d, "idx4x4", 4, 4, 4) || !write_idx(&d, "idx2x3", 2, 3, 3) || !write_csv(&d, "csv")) {
    dir_remove(&d);
    return 1;
  }
  static const char *const data_dirs[] = {"idx4x4", "idx2x3", "csv"};

  int nmodels = (int)(sizeof models / sizeof *models), passed = 0;
  printf("Checking target '%s' against the reference interpreter (2 epochs, tolerance %g):\n", b->name,
         o->check_tol);
  fflush(stdout);
  for (int i = 0; i < nmodels; i++) {
    const CheckModel *cm = &models[i];
    char name[256], datadir[PATH_MAX * 2];
    snprintf(datadir, sizeof datadir, "%s/%s", d.path, data_dirs[cm->data]);
    snprintf(name, sizeof name, "%s.nn", cm->name);
    const char *nn = dir_file(&d, name);
    FILE *f = fopen(nn, "w");
    if (!f) {
      diag_error_plain("cannot write '%s': %s", nn, strerror(errno));
      break;
    }
    fprintf(f, cm->src, datadir, datadir);
    fclose(f);
    snprintf(name, sizeof name, "%s.log", cm->name);
    const char *log = dir_file(&d, name);
    snprintf(name, sizeof name, "%s-ref.st", cm->name);
    const char *ref = dir_file(&d, name);
    snprintf(name, sizeof name, "%s-ref.csv", cm->name);
    const char *refcsv = dir_file(&d, name);
    snprintf(name, sizeof name, "%s-train", cm->name);
    const char *exe = dir_file(&d, name);
    snprintf(name, sizeof name, "%s-out.st", cm->name);
    const char *out = dir_file(&d, name);
    snprintf(name, sizeof name, "%s-out.csv", cm->name);
    const char *outcsv = dir_file(&d, name);

    char why[1024] = "";
    const char *stage = NULL;
    const char *ref_argv[] = {self, nn, "--run", "--epochs", "2", "--save", ref, "--metrics", refcsv, NULL};
    if (process_run(ref_argv, log) != 0) stage = "the reference interpreter failed";
    const char *cargv[16 + 2 * MAX_PLUGINS + 2 * MAX_BACKEND_OPTS];
    char target[128];
    snprintf(target, sizeof target, "--target=%s", b->name);
    int n = 0;
    cargv[n++] = self;
    cargv[n++] = nn;
    cargv[n++] = target;
    for (int k = 0; k < o->nplugins; k++) cargv[n++] = "--plugin", cargv[n++] = o->plugins[k];
    for (int k = 0; k < o->nbackend_opts; k++) cargv[n++] = "--backend-opt", cargv[n++] = o->backend_opts[k];
    if (o->verbose) cargv[n++] = "-v";
    cargv[n++] = "-o";
    cargv[n++] = exe;
    cargv[n] = NULL;
    if (!stage) {
      int rc = process_run(cargv, log);
      if (rc > 128) stage = "nnc crashed compiling it", snprintf(why, sizeof why, "signal %d", rc - 128);
      else if (rc != 0) stage = "compiling failed", snprintf(why, sizeof why, "status %d", rc);
    }
    const char *targv[] = {exe, "--epochs", "2", "--save", out, "--metrics", outcsv, NULL};
    if (!stage) {
      int rc = process_run(targv, log);
      if (rc > 128) stage = "the trainer crashed", snprintf(why, sizeof why, "signal %d", rc - 128);
      else if (rc != 0) stage = "the trainer failed", snprintf(why, sizeof why, "status %d", rc);
    }
    double worst = 0;
    int ntensors = 0;
    if (!stage) {
      worst = compare_params(ref, out, why, sizeof why, &ntensors);
      if (worst < 0) stage = "bad parameters";
      else if (!(worst <= o->check_tol)) stage = "parameters differ";
    }
    if (!stage) {
      double a[8][2], bl[8][2];
      int na = read_losses(refcsv, a, 8), nb = read_losses(outcsv, bl, 8);
      if (na != 2 || nb != na) {
        stage = "metrics";
        snprintf(why, sizeof why, "%d epoch rows in the trainer's --metrics CSV, %d in the reference's", nb, na);
      }
      for (int r = 0; r < na && !stage; r++)
        for (int c = 0; c < 2 && !stage; c++)
          if (!(fabs(a[r][c] - bl[r][c]) <= 10 * o->check_tol * fmax(1.0, fabs(a[r][c])))) {
            stage = "losses differ";
            snprintf(why, sizeof why, "epoch %d %s loss %.7g, reference %.7g", r + 1, c ? "test" : "train",
                     bl[r][c], a[r][c]);
          }
    }
    if (!stage) {
      passed++;
      printf("  %-12s PASS  %d tensors, worst %.2g   (%s)\n", cm->name, ntensors, worst, cm->what);
    } else {
      printf("  %-12s FAIL  %s%s%s   (%s)\n", cm->name, stage, *why ? ": " : "", why, cm->what);
      fflush(stdout);
      print_tail(log);
    }
    fflush(stdout);
  }
  printf("%d of %d models passed\n", passed, nmodels);
  if (passed == nmodels && !o->verbose) {
    dir_remove(&d);
  } else {
    fprintf(stderr, "nnc: the models, their data and each step's log (*.log) are kept in %s\n", d.path);
    for (int i = 0; i < d.nfiles; i++) free(d.files[i]);
  }
  return passed == nmodels ? 0 : 1;
}
