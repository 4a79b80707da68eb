/* test/unit/test_rt_trainer.c - rt_trainer_main (runtime/trainer.c and
 * trainer_options.c), the main loop of a trained program, on a model
 * descriptor written by hand: linear regression pred = x.w + b on 3
 * features, per-sample squared error, an abs_err metric and SGD with
 * momentum, as four native kernels (and the same four in OpenCL C when an
 * OpenCL device exists).  The data is a small CSV written to a temporary
 * directory; every run calls rt_trainer_main with an argv array, its
 * stdout and stderr sent to temporary files.
 *
 * Checked: the epoch and done: lines, a falling loss, --save (names,
 * shapes, values, metadata; the header parsed by Python's json when
 * /usr/bin/python3 exists), initial values equal to rt_init_tensor's,
 * the partial last batch (steps and samples seen, through two counter
 * parameters the update kernel writes from the scalars buffer), temps
 * that share a slot, --lr and --hyper, determinism, the captured plan
 * against plain launches, --metrics, --steps, --help, --version,
 * --list-devices, bad options, --device without the device or the code,
 * an ABI mismatch, data errors and a diverging loss.  Prints one line per
 * failed check; exits 1 if any failed.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/device.h"
#include "runtime/init.h"
#include "runtime/model.h"
#include "runtime/safetensors.h"
#include "runtime/train.h"

#include "check.h"

static bool verbose; /* VERBOSE=1: print every run's output */
static char tmpdir[256];

static const char *tmp_path(const char *name) {
  static char buf[8][512];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

/* ---- the model ------------------------------------------------------------------------- */

enum { F = 3, NTRAIN = 50, NTEST = 20 };

/* Buffers, in descriptor order. */
enum { X, Y, W, BIAS, VW, VB, STEP, SEEN, LOSS, ABSERR, PRED, ERR, GRAD, SCRATCH, SCAL, NBUFS };
enum { NSCRATCH = 40 };

/* k_fill(scratch; B), range NSCRATCH: writes a temp that shares pred's slot
 * and is larger than it (a slot sized for its first member would overflow:
 * AddressSanitizer builds catch that) */
static void k_fill(void **a, int64_t begin, int64_t end) {
  float *t = *(float **)a[0];
  for (int64_t j = begin; j < end; j++) t[j] = (float)j;
}

/* k_forward(x, w, b, pred; B), range 1 x B: pred[i] = x[i].w + b */
static void k_forward(void **a, int64_t begin, int64_t end) {
  const float *x = *(float **)a[0], *w = *(float **)a[1], *b = *(float **)a[2];
  float *pred = *(float **)a[3];
  for (int64_t i = begin; i < end; i++) pred[i] = x[i * F] * w[0] + x[i * F + 1] * w[1] + x[i * F + 2] * w[2] + b[0];
}

/* k_loss(pred, y, err, loss, abs_err; B), range 1 x B */
static void k_loss(void **a, int64_t begin, int64_t end) {
  const float *pred = *(float **)a[0], *y = *(float **)a[1];
  float *err = *(float **)a[2], *loss = *(float **)a[3], *abserr = *(float **)a[4];
  for (int64_t i = begin; i < end; i++) {
    float e = pred[i] - y[i];
    err[i] = e;
    loss[i] = e * e;
    abserr[i] = fabsf(e);
  }
}

/* k_grad(x, err, g; B), range 4: g[j] = mean over the batch of 2 err x_j (x_3 = 1) */
static void k_grad(void **a, int64_t begin, int64_t end) {
  const float *x = *(float **)a[0], *err = *(float **)a[1];
  float *g = *(float **)a[2];
  int64_t B = *(int64_t *)a[3];
  for (int64_t j = begin; j < end; j++) {
    float s = 0;
    for (int64_t i = 0; i < B; i++) s += 2 * err[i] * (j < F ? x[i * F + j] : 1.0f);
    g[j] = s / (float)B;
  }
}

/* k_update(g, w, b, vw, vb, scalars, step, seen; B), range 4: momentum SGD;
 * item 0 also records the step and counts the samples. */
static void k_update(void **a, int64_t begin, int64_t end) {
  const float *g = *(float **)a[0];
  float *w = *(float **)a[1], *b = *(float **)a[2], *vw = *(float **)a[3], *vb = *(float **)a[4];
  const float *s = *(float **)a[5];
  float *step = *(float **)a[6], *seen = *(float **)a[7];
  float lr = s[2], mom = s[3];
  for (int64_t j = begin; j < end; j++) {
    float *p = j < F ? &w[j] : b, *v = j < F ? &vw[j] : vb;
    *v = mom * *v + g[j];
    *p -= lr * *v;
    if (j == 0) {
      step[0] = s[0];
      seen[0] += s[1];
    }
  }
}

static const char *const kernel_names[] = {"k_forward", "k_loss", "k_grad", "k_update", "k_fill"};
static const RtModelKernel native[] = {k_forward, k_loss, k_grad, k_update, k_fill};

/* The same kernels for OpenCL: one work item per index, guarded. */
static const char *const cl_source =
    "__kernel void k_fill(__global float *t, long B) {\n"
    "  long j = get_global_id(0);\n"
    "  if (j < 40) t[j] = (float)j;\n"
    "}\n"
    "__kernel void k_forward(__global const float *x, __global const float *w, __global const float *b,\n"
    "                        __global float *pred, long B) {\n"
    "  long i = get_global_id(0);\n"
    "  if (i >= B) return;\n"
    "  pred[i] = x[i * 3] * w[0] + x[i * 3 + 1] * w[1] + x[i * 3 + 2] * w[2] + b[0];\n"
    "}\n"
    "__kernel void k_loss(__global const float *pred, __global const float *y, __global float *err,\n"
    "                     __global float *loss, __global float *abserr, long B) {\n"
    "  long i = get_global_id(0);\n"
    "  if (i >= B) return;\n"
    "  float e = pred[i] - y[i];\n"
    "  err[i] = e; loss[i] = e * e; abserr[i] = fabs(e);\n"
    "}\n"
    "__kernel void k_grad(__global const float *x, __global const float *err, __global float *g, long B) {\n"
    "  long j = get_global_id(0);\n"
    "  if (j >= 4) return;\n"
    "  float s = 0;\n"
    "  for (long i = 0; i < B; i++) s += 2 * err[i] * (j < 3 ? x[i * 3 + j] : 1.0f);\n"
    "  g[j] = s / (float)B;\n"
    "}\n"
    "__kernel void k_update(__global const float *g, __global float *w, __global float *b, __global float *vw,\n"
    "                       __global float *vb, __global const float *s, __global float *step,\n"
    "                       __global float *seen, long B) {\n"
    "  long j = get_global_id(0);\n"
    "  if (j >= 4) return;\n"
    "  __global float *p = j < 3 ? &w[j] : b;\n"
    "  __global float *v = j < 3 ? &vw[j] : vb;\n"
    "  *v = s[3] * *v + g[j];\n"
    "  *p -= s[2] * *v;\n"
    "  if (j == 0) { step[0] = s[0]; seen[0] += s[1]; }\n"
    "}\n";

static const RtBufDesc bufs[NBUFS] = {
    [X] = {"x", RT_BUF_INPUT, 0, 1, {F}, 1, 0, 0, 0, -1},
    [Y] = {"y", RT_BUF_LABEL, 0, 0, {0}, 1, 0, 0, 0, -1},
    [W] = {"w", RT_BUF_PARAM, 0, 1, {F}, 0, RT_INIT_UNIFORM, -0.5, 0.5, -1},
    [BIAS] = {"b", RT_BUF_PARAM, 0, 0, {0}, 0, RT_INIT_FULL, 0.125, 0, -1},
    [VW] = {"w.v", RT_BUF_STATE, 0, 1, {F}, 0, RT_INIT_ZEROS, 0, 0, -1},
    [VB] = {"b.v", RT_BUF_STATE, 0, 0, {0}, 0, RT_INIT_ZEROS, 0, 0, -1},
    [STEP] = {"stat.step", RT_BUF_PARAM, 0, 0, {0}, 0, RT_INIT_ZEROS, 0, 0, -1},
    [SEEN] = {"stat.seen", RT_BUF_PARAM, 0, 0, {0}, 0, RT_INIT_ZEROS, 0, 0, -1},
    [LOSS] = {"loss", RT_BUF_LOSS, 0, 0, {0}, 1, 0, 0, 0, -1},
    [ABSERR] = {"abs_err", RT_BUF_METRIC, 0, 0, {0}, 1, 0, 0, 0, -1},
    /* pred is dead once err is computed: the gradient reuses its slot, and
     * with a batch of 1 the gradient (4 floats) is the larger member */
    [PRED] = {"t0", RT_BUF_TEMP, 0, 0, {0}, 1, 0, 0, 0, 0},
    [ERR] = {"t1", RT_BUF_TEMP, 0, 0, {0}, 1, 0, 0, 0, 1},
    [GRAD] = {"t2", RT_BUF_TEMP, 0, 1, {F + 1}, 0, 0, 0, 0, 0},
    [SCRATCH] = {"t3", RT_BUF_TEMP, 0, 1, {NSCRATCH}, 0, 0, 0, 0, 0},
    [SCAL] = {"scalars", RT_BUF_SCALARS, 0, 1, {4}, 0, 0, 0, 0, -1},
};

static const int args_fill[] = {SCRATCH};
static const int args_forward[] = {X, W, BIAS, PRED};
static const int args_loss[] = {PRED, Y, ERR, LOSS, ABSERR};
static const int args_grad[] = {X, ERR, GRAD};
static const int args_update[] = {GRAD, W, BIAS, VW, VB, SCAL, STEP, SEEN};
static const RtLaunchDesc train_plan[] = {
    {4, 1, args_fill, NSCRATCH, 0},
    {0, 4, args_forward, 1, 1},
    {1, 5, args_loss, 1, 1},
    {2, 3, args_grad, F + 1, 0},
    {3, 8, args_update, F + 1, 0},
};
static const char *const metric_names[] = {"abs_err"};
static const int metric_bufs[] = {ABSERR};
static const char *const hyper_names[] = {"lr", "momentum"};
static const double hyper_values[] = {0.1, 0.5};
static const char *const step_size_names[] = {"step_size", "momentum"};

static char train_csv[512], test_csv[512];

/* The CPU model: batch 8 (50 samples: 6 full batches and one of 2). */
static RtModelDesc cpu_model(void) {
  RtModelDesc m;
  memset(&m, 0, sizeof m);
  m.abi = RT_MODEL_ABI;
  m.output_buf = -1; /* no prediction */
  m.name = "linreg";
  m.target = "cpu";
  m.nnc_version = "0.0-test";
  m.nbufs = NBUFS;
  m.bufs = bufs;
  m.input_buf = X, m.label_buf = Y, m.loss_buf = LOSS, m.scalars_buf = SCAL;
  m.nmetrics = 1, m.metric_names = metric_names, m.metric_bufs = metric_bufs;
  m.nhypers = 2, m.hyper_names = hyper_names, m.hyper_values = hyper_values;
  m.data_kind = 2; /* RT_DATA_CSV */
  m.data_path = train_csv, m.test_path = test_csv, m.label_column = "y";
  m.scale = 1;
  m.batch = 8, m.epochs = 5, m.seed = 3, m.shuffle = 1;
  m.nkernels = 5, m.kernel_names = kernel_names, m.native = native, m.code_kind = RT_MODEL_CODE_NATIVE;
  m.ntrain = 5, m.train = train_plan;
  m.neval = 2, m.eval = train_plan + 1; /* forward and loss */
  return m;
}

/* ---- running a trainer --------------------------------------------------------------- */

typedef struct Run {
  int rc;
  char out[16384], err[4096];
} Run;

static void slurp(FILE *f, char *buf, size_t len) {
  fflush(f);
  rewind(f);
  size_t n = fread(buf, 1, len - 1, f);
  buf[n] = 0;
  fclose(f);
}

/* rt_trainer_main(argv = {"train", args..., NULL}) with stdout and stderr
 * caught in r->out and r->err. */
static void run(Run *r, const RtModelDesc *m, const char *const *args) {
  char *argv[32];
  int argc = 0;
  argv[argc++] = "train";
  for (int i = 0; args && args[i] && argc < 31; i++) argv[argc++] = (char *)args[i];
  argv[argc] = NULL;
  FILE *fo = tmpfile(), *fe = tmpfile();
  fflush(stdout);
  fflush(stderr);
  int so = dup(1), se = dup(2);
  dup2(fileno(fo), 1);
  dup2(fileno(fe), 2);
  r->rc = rt_trainer_main(argc, argv, m);
  fflush(stdout);
  fflush(stderr);
  dup2(so, 1);
  dup2(se, 2);
  close(so);
  close(se);
  slurp(fo, r->out, sizeof r->out);
  slurp(fe, r->err, sizeof r->err);
  if (verbose) {
    printf("$");
    for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
    printf("\n-> %d\n%s%s", r->rc, r->out, r->err);
  }
}

/* ASan would stop at the allocation test_staging_oom makes fail on purpose. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static int never(void *self, const float *x, const void *y, int64_t n, double *loss, double *metrics) {
  (void)self, (void)x, (void)y, (void)n, (void)loss, (void)metrics;
  return 1;
}

/* rt_train on a dataset it never reads: the staging for a batch of 2^24
 * samples of 2^20 values (64 TiB) cannot be allocated, and the message says
 * so in those terms (it once said "out of memory for 2000 samples"). */
static void test_staging_oom(void) {
  RtDataset d = {.n = 2000, .features = INT64_C(1) << 20, .label_type = RT_LABEL_F32};
  RtEngine e = {NULL, 0, NULL, never, never, NULL, 0, NULL, NULL, NULL};
  RtTrainOptions o = {.batch = INT64_C(1) << 24, .epochs = 1, .prog = "train"};
  FILE *fe = tmpfile();
  fflush(stderr);
  int se = dup(2);
  dup2(fileno(fe), 2);
  int rc = rt_train(&e, &d, NULL, &o);
  fflush(stderr);
  dup2(se, 2);
  close(se);
  char err[1024];
  slurp(fe, err, sizeof err);
  CHECK(rc == 1 && strstr(err, "train: error: out of memory for a batch of 16777216 samples of 1048576 values and the "
                               "order of 2000 samples (64 TiB)"),
        "%s", err);
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* The number after "key=" in the n-th line starting with prefix (n from 0), or NAN. */
static double field(const char *text, const char *prefix, int n, const char *key) {
  for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    if (strncmp(line, prefix, strlen(prefix)) != 0 || n-- > 0) continue;
    const char *eol = strchr(line, '\n');
    char k[64];
    snprintf(k, sizeof k, " %s=", key);
    const char *p = strstr(line, k);
    if (!p || (eol && p > eol)) return NAN;
    return strtod(p + strlen(k), NULL);
  }
  return NAN;
}

/* ---- the data ---------------------------------------------------------------------------- */

static double lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(*s >> 11) / 9007199254740992.0 * 2 - 1;
}

/* y = 1.5 a - 2 b + 0.5 c + 0.25, exactly. */
static void write_csv(const char *path, int n, uint64_t seed) {
  FILE *f = fopen(path, "w");
  fprintf(f, "a,b,c,y\n");
  for (int i = 0; i < n; i++) {
    double a = lcg(&seed), b = lcg(&seed), c = lcg(&seed);
    fprintf(f, "%.6f,%.6f,%.6f,%.6f\n", a, b, c, 1.5 * a - 2 * b + 0.5 * c + 0.25);
  }
  fclose(f);
}

/* ---- saved parameters --------------------------------------------------------------------- */

typedef struct Params {
  bool ok;
  float w[F], b, step, seen;
} Params;

static Params load_params(const char *path) {
  Params p;
  memset(&p, 0, sizeof p);
  RtSafetensors st;
  RtError err;
  if (rt_safetensors_read(path, &st, &err) != 0) {
    printf("(%s)\n", err.msg);
    return p;
  }
  int rank;
  const int64_t *dims;
  const float *w = rt_safetensors_find(&st, "w", &rank, &dims);
  bool wok = w && rank == 1 && dims[0] == F;
  const float *b = rt_safetensors_find(&st, "b", &rank, &dims);
  bool bok = b && rank == 0;
  const float *step = rt_safetensors_find(&st, "stat.step", &rank, NULL);
  const float *seen = rt_safetensors_find(&st, "stat.seen", &rank, NULL);
  p.ok = wok && bok && step && seen && st.n == 4; /* no states */
  if (p.ok) {
    memcpy(p.w, w, sizeof p.w);
    p.b = *b, p.step = *step, p.seen = *seen;
  }
  rt_safetensors_free(&st);
  return p;
}

static bool same_params(const Params *a, const Params *b) {
  return a->ok && b->ok && memcmp(a->w, b->w, sizeof a->w) == 0 && a->b == b->b;
}

/* ---- the tests ----------------------------------------------------------------------------- */

static void test_train(const RtModelDesc *m) {
  Run r;
  const char *save = tmp_path("a.safetensors");
  run(&r, m, (const char *[]){"--save", save, "--metrics", tmp_path("m.csv"), NULL});
  CHECK(r.rc == 0, "rc %d: %s", r.rc, r.err);
  CHECK(r.err[0] == 0, "stderr: %s", r.err);
  CHECK(count_lines(r.out) == 6, "5 epoch lines and done:\n%s", r.out);
  CHECK(strncmp(r.out, "epoch=1 train_loss=", 19) == 0, "%s", r.out);
  double first = field(r.out, "epoch=", 0, "train_loss"), last = field(r.out, "epoch=", 4, "train_loss");
  CHECK(last < first / 4, "train loss %g -> %g", first, last);
  CHECK(field(r.out, "epoch=", 4, "test_loss") < field(r.out, "epoch=", 0, "test_loss"), "%s", r.out);
  CHECK(field(r.out, "epoch=", 0, "test_abs_err") >= 0, "%s", r.out);
  CHECK(field(r.out, "epoch=", 0, "seconds") >= 0 && field(r.out, "epoch=", 0, "samples_per_s") > 0, "%s", r.out);
  CHECK(!strstr(r.out, "partial="), "%s", r.out);
  /* the final line: 7 batches an epoch, the last epoch's losses */
  CHECK(field(r.out, "done:", 0, "epochs") == 5 && field(r.out, "done:", 0, "steps") == 35, "%s", r.out);
  CHECK(field(r.out, "done:", 0, "train_loss") == last, "%s", r.out);
  CHECK(field(r.out, "done:", 0, "test_abs_err") == field(r.out, "epoch=", 4, "test_abs_err"), "%s", r.out);
  CHECK(field(r.out, "done:", 0, "samples_per_s") > 0, "%s", r.out);

  /* --save: the parameters only; step and samples counted by the kernels */
  Params p = load_params(save);
  CHECK(p.ok, "the saved file lacks w, b or the counters, or has more");
  CHECK(p.step == 35 && p.seen == 5 * NTRAIN, "step %g, samples %g (partial last batch)", p.step, p.seen);
  RtSafetensors st;
  RtError err;
  if (rt_safetensors_read(save, &st, &err) == 0) {
    const char *model = rt_safetensors_metadata(&st, "model"), *step = rt_safetensors_metadata(&st, "step");
    const char *nnc = rt_safetensors_metadata(&st, "nnc");
    CHECK(model && !strcmp(model, "linreg"), "model %s", model ? model : "(none)");
    CHECK(step && !strcmp(step, "35"), "step %s", step ? step : "(none)");
    CHECK(nnc && !strcmp(nnc, "0.0-test"), "nnc %s", nnc ? nnc : "(none)");
    rt_safetensors_free(&st);
  }
  /* the header as Python's json module reads it */
  if (access("/usr/bin/python3", X_OK) == 0) {
    const char *py = tmp_path("check.py");
    FILE *f = fopen(py, "w");
    fputs("import json, struct, sys\n"
          "data = open(sys.argv[1], 'rb').read()\n"
          "n = struct.unpack('<Q', data[:8])[0]\n"
          "h = json.loads(data[8:8 + n])\n"
          "body = len(data) - 8 - n\n"
          "meta = h.pop('__metadata__')\n"
          "assert meta['model'] == 'linreg' and meta['step'] == '35', meta\n"
          "assert sorted(h) == ['b', 'stat.seen', 'stat.step', 'w'], h\n"
          "assert h['w']['shape'] == [3] and h['b']['shape'] == [] and h['w']['dtype'] == 'F32'\n"
          "ends = sorted(tuple(t['data_offsets']) for t in h.values())\n"
          "assert ends[0][0] == 0 and ends[-1][1] == body, (ends, body)\n"
          "w = struct.unpack('<3f', data[8 + n + h['w']['data_offsets'][0]:][:12])\n"
          "print(' '.join('%.9g' % v for v in w))\n",
          f);
    fclose(f);
    char cmd[1200], line[256] = "";
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s 2>&1", py, save);
    FILE *pp = popen(cmd, "r");
    size_t len = pp ? fread(line, 1, sizeof line - 1, pp) : 0;
    line[len] = 0;
    int status = pp ? pclose(pp) : -1;
    float w[3] = {0};
    CHECK(status == 0 && sscanf(line, "%g %g %g", &w[0], &w[1], &w[2]) == 3, "python: %s", line);
    CHECK(memcmp(w, p.w, sizeof w) == 0, "python read w = %s", line);
  }

  /* --metrics */
  FILE *f = fopen(tmp_path("m.csv"), "r");
  char head[256] = "", row[256] = "";
  CHECK(f && fgets(head, sizeof head, f) && fgets(row, sizeof row, f), "no CSV");
  if (f) fclose(f);
  CHECK(!strcmp(head, "epoch,train_loss,test_loss,abs_err,seconds,samples_per_s\n"), "header %s", head);
  CHECK(!strncmp(row, "1,", 2), "row %s", row);

  /* longer: the weights reach the truth */
  run(&r, m, (const char *[]){"--epochs", "40", "--save", save, NULL});
  p = load_params(save);
  CHECK(r.rc == 0 && p.ok && fabsf(p.w[0] - 1.5f) < 0.02f && fabsf(p.w[1] + 2) < 0.02f &&
            fabsf(p.w[2] - 0.5f) < 0.02f && fabsf(p.b - 0.25f) < 0.02f,
        "w = %g %g %g, b = %g", p.w[0], p.w[1], p.w[2], p.b);
}

static void test_overrides(const RtModelDesc *m) {
  Run r;
  /* --lr 1e-30 (0 is refused) freezes the parameters at their initial values,
   * which are rt_init_tensor's for (kind, a, b, shape, seed, name), as in the interpreter */
  run(&r, m, (const char *[]){"--lr", "1e-30", "--epochs", "2", "--no-shuffle", "--seed", "11", "--save",
                              tmp_path("lr0.safetensors"), NULL});
  Params p = load_params(tmp_path("lr0.safetensors"));
  float w0[F], b0;
  rt_init_tensor(RT_INIT_UNIFORM, -0.5, 0.5, bufs[W].dims, 1, 11, "w", w0);
  rt_init_tensor(RT_INIT_FULL, 0.125, 0, bufs[BIAS].dims, 0, 11, "b", &b0);
  CHECK(r.rc == 0 && p.ok && memcmp(p.w, w0, sizeof w0) == 0 && p.b == b0, "w = %g %g %g vs %g %g %g", p.w[0],
        p.w[1], p.w[2], w0[0], w0[1], w0[2]);
  CHECK(field(r.out, "epoch=", 0, "train_loss") == field(r.out, "epoch=", 1, "train_loss"), "%s", r.out);

  /* --lr and --hyper lr= change the result, the same way */
  const char *a = tmp_path("lr-a.safetensors"), *b = tmp_path("lr-b.safetensors"), *c = tmp_path("lr-c.safetensors");
  run(&r, m, (const char *[]){"--epochs", "1", "--save", a, NULL});
  run(&r, m, (const char *[]){"--epochs", "1", "--lr=0.02", "--save", b, NULL});
  run(&r, m, (const char *[]){"--epochs", "1", "--hyper", "lr=0.02", "--save", c, NULL});
  Params pa = load_params(a), pb = load_params(b), pc = load_params(c);
  CHECK(pa.ok && pb.ok && !same_params(&pa, &pb), "--lr changed nothing");
  CHECK(same_params(&pb, &pc), "--lr 0.02 and --hyper lr=0.02 differ");
  run(&r, m, (const char *[]){"--epochs", "1", "--hyper", "momentum=0", "--save", c, NULL});
  pc = load_params(c);
  CHECK(r.rc == 0 && !same_params(&pa, &pc), "--hyper momentum=0 changed nothing");

  /* determinism: the same seed, the same bits; another seed, other ones */
  run(&r, m, (const char *[]){"--epochs", "1", "--save", b, NULL});
  pb = load_params(b);
  CHECK(same_params(&pa, &pb), "two runs with seed 3 differ");
  run(&r, m, (const char *[]){"--epochs", "1", "--seed", "4", "--save", b, NULL});
  pb = load_params(b);
  CHECK(pb.ok && !same_params(&pa, &pb), "seeds 3 and 4 agree");

  /* the captured train plan replays exactly what plain launches do */
  setenv("NNRT_GRAPH", "0", 1);
  run(&r, m, (const char *[]){"--epochs", "1", "--save", b, NULL});
  unsetenv("NNRT_GRAPH");
  pb = load_params(b);
  CHECK(same_params(&pa, &pb), "NNRT_GRAPH=0 gives other parameters");

  /* a batch of 1: the shared temp slot holds the 4-float gradient */
  run(&r, m, (const char *[]){"--batch", "1", "--epochs", "1", "--save", b, NULL});
  pb = load_params(b);
  CHECK(r.rc == 0 && pb.step == NTRAIN && pb.seen == NTRAIN, "rc %d step %g seen %g", r.rc, pb.step, pb.seen);
  /* a batch larger than the data: one partial batch an epoch */
  run(&r, m, (const char *[]){"--batch", "64", "--epochs", "2", "--threads", "2", "--save", b, NULL});
  pb = load_params(b);
  CHECK(r.rc == 0 && pb.step == 2 && pb.seen == 2 * NTRAIN, "rc %d step %g seen %g", r.rc, pb.step, pb.seen);

  /* --steps: the epoch in progress is marked partial */
  run(&r, m, (const char *[]){"--steps", "10", NULL});
  CHECK(r.rc == 0 && count_lines(r.out) == 3 && strstr(r.out, " partial=3/7\n"), "%s", r.out);
  CHECK(field(r.out, "done:", 0, "epochs") == 2 && field(r.out, "done:", 0, "steps") == 10, "%s", r.out);

  /* --data and --test replace the train block's files */
  run(&r, m, (const char *[]){"--epochs", "1", "--data", test_csv, "--test", train_csv, "--batch", "5", NULL});
  CHECK(r.rc == 0 && strstr(r.out, "done: epochs=1 steps=4 "), "%s%s", r.out, r.err);

  /* a loss that diverges stops at its step */
  run(&r, m, (const char *[]){"--lr", "100", NULL});
  CHECK(r.rc == 1 && strstr(r.err, "error: loss is ") && strstr(r.err, " at step "), "%s", r.err);
}

/* Exit status 1 and exactly one line on stderr containing want. */
static void expect_error(const RtModelDesc *m, const char *const *args, const char *want) {
  Run r;
  run(&r, m, args);
  CHECK(r.rc == 1 && strstr(r.err, want) && count_lines(r.err) == 1 && r.out[0] == 0,
        "%s ...: rc %d, stderr '%s', wanted '%s'", args[0] ? args[0] : "(no options)", r.rc, r.err, want);
}

static void test_command_line(const RtModelDesc *m) {
  Run r;
  run(&r, m, (const char *[]){"--help", NULL});
  CHECK(r.rc == 0 && strstr(r.out, "usage: train [options]") && strstr(r.out, "--epochs N") &&
            strstr(r.out, "(default 5)") && strstr(r.out, "(default 8)") && strstr(r.out, train_csv) &&
            strstr(r.out, "  lr        0.1\n") && strstr(r.out, "  momentum  0.5\n") && strstr(r.out, "(default cpu)"),
        "%s", r.out);
  run(&r, m, (const char *[]){"--version", NULL});
  CHECK(r.rc == 0 && strstr(r.out, "linreg") && strstr(r.out, "0.0-test"), "%s", r.out);
  run(&r, m, (const char *[]){"--list-devices", NULL});
  CHECK(r.rc == 0 && !strncmp(r.out, "cpu ", 4) && strstr(r.out, "\ncuda"), "%s", r.out);

  expect_error(m, (const char *[]){"--epoch", "3", NULL}, "train: error: unknown option '--epoch'; did you mean '--epochs'?");
  expect_error(m, (const char *[]){"--lsit-devices", NULL}, "did you mean '--list-devices'?");
  expect_error(m, (const char *[]){"--metrics-file=x", NULL}, "did you mean '--metrics'?");
  expect_error(m, (const char *[]){"--frobnicate", NULL}, "unknown option '--frobnicate' (see --help)");
  expect_error(m, (const char *[]){"data.csv", NULL}, "unexpected argument 'data.csv'");
  expect_error(m, (const char *[]){"--batch", "0", NULL}, "option '--batch' needs a whole number from 1 to 16777216");
  expect_error(m, (const char *[]){"--epochs=-1", NULL}, "option '--epochs' needs a whole number from 1 to");
  expect_error(m, (const char *[]){"--epochs", "0", NULL}, "option '--epochs' needs a whole number from 1 to");
  expect_error(m, (const char *[]){"--seed", "-1", NULL}, "option '--seed' needs a whole number from 0 to 9007199254740992");
  expect_error(m, (const char *[]){"--lr", "fast", NULL}, "option '--lr' needs a number, found 'fast'");
  /* a learning rate that climbs the loss, or is inf or 0 as the f32 the kernels get */
  expect_error(m, (const char *[]){"--lr", "-0.01", NULL}, "train: error: option '--lr' needs a positive learning rate, found '-0.01'");
  expect_error(m, (const char *[]){"--lr=0", NULL}, "option '--lr' needs a positive learning rate, found '0'");
  expect_error(m, (const char *[]){"--lr", "1e-50", NULL}, "option '--lr' needs a positive learning rate, found '1e-50'");
  expect_error(m, (const char *[]){"--hyper", "lr=-1", NULL}, "option '--hyper' needs a positive learning rate, found '-1'");
  expect_error(m, (const char *[]){"--lr", "1e39", NULL}, "option '--lr' needs a number within the f32 range, found '1e39'");
  expect_error(m, (const char *[]){"--hyper", "momentum=-1e39", NULL}, "option '--hyper' needs a number within the f32 range");
  expect_error(m, (const char *[]){"--lr", "nan", NULL}, "option '--lr' needs a number, found 'nan'");
  expect_error(m, (const char *[]){"--save", "", NULL}, "option '--save' needs a value, found an empty one");
  expect_error(m, (const char *[]){"--lr", NULL}, "option '--lr' needs a value");
  expect_error(m, (const char *[]){"--no-shuffle=1", NULL}, "option '--no-shuffle' does not take a value");
  expect_error(m, (const char *[]){"--hyper", "lr", NULL}, "option '--hyper' needs NAME=VALUE, found 'lr'");
  expect_error(m, (const char *[]){"--hyper", "beta=1", NULL},
               "--hyper: the optimizer has no hyper-parameter 'beta' (it has lr, momentum)");
  expect_error(m, (const char *[]){"--threads", "-2", NULL}, "option '--threads' needs a whole number");
  expect_error(m, (const char *[]){"--device", "gpu", NULL}, "unknown device 'gpu'");
  expect_error(m, (const char *[]){"--data", tmp_path("missing.csv"), NULL}, "train: error: ");
  expect_error(m, (const char *[]){"--save", tmp_path("no/such/dir/x.safetensors"), "--epochs", "1", NULL},
               "x.safetensors: cannot write in ");

  /* --lr on an optimizer without lr */
  RtModelDesc s = *m;
  s.hyper_names = step_size_names;
  expect_error(&s, (const char *[]){"--lr", "0.1", NULL},
               "train: error: --lr: the optimizer has no hyper-parameter 'lr' (it has step_size, momentum)");

  /* code for one kind of device only */
  expect_error(m, (const char *[]){"--device", "cuda", NULL},
               "this program was built for target cpu and runs on cpu, not on cuda");
  expect_error(m, (const char *[]){"--device=opencl:0", NULL},
               "not on opencl:0 (rebuild it for a target whose code runs on opencl; nnc --list-targets names each "
               "target's device)");

  /* a GPU trainer here: without a CUDA GPU, the device layer's one line */
  RtDeviceInfo info[16];
  int ndev = rt_device_list(info, 16), ncuda = 0;
  for (int i = 0; i < ndev && i < 16; i++) ncuda += info[i].kind == RT_DEVICE_CUDA;
  RtModelDesc g = *m;
  g.target = "gpu", g.native = NULL, g.code = "// not PTX\n", g.code_size = 0, g.code_kind = RT_MODEL_CODE_PTX;
  if (ncuda == 0) {
    expect_error(&g, (const char *[]){NULL}, "CUDA");
    expect_error(&g, (const char *[]){"--device", "cuda:0", "--data", tmp_path("missing.csv"), NULL}, "CUDA");
  }
  expect_error(&g, (const char *[]){"--device", "cpu", NULL}, "built for target gpu and runs on cuda:0, not on cpu");
  /* The device comes from what the code is, whatever the target's name. */
  g.target = "nvptx-next";
  expect_error(&g, (const char *[]){"--device", "cpu", NULL}, "built for target nvptx-next and runs on cuda:0, not on cpu");
  RtModelDesc n = *m;
  n.target = "gpu"; /* a name the runtime once read as "PTX" */
  expect_error(&n, (const char *[]){"--device", "cuda", NULL}, "built for target gpu and runs on cpu, not on cuda");
  n.target = "hls-c";
  Run rn;
  run(&rn, &n, (const char *[]){"--epochs", "1", NULL});
  CHECK(rn.rc == 0 && count_lines(rn.out) == 2, "a native program of target hls-c: rc %d\n%s%s", rn.rc, rn.out, rn.err);
  run(&rn, &n, (const char *[]){"--help", NULL});
  CHECK(rn.rc == 0 && strstr(rn.out, "(default cpu)") && !strstr(rn.out, "--cl-binary"), "%s", rn.out);
  RtModelDesc c = g;
  c.target = "cl-dialect", c.code_kind = RT_MODEL_CODE_OPENCL_C;
  expect_error(&c, (const char *[]){"--device", "cuda", NULL}, "built for target cl-dialect and runs on opencl:0, not on cuda");
  run(&rn, &c, (const char *[]){"--help", NULL});
  CHECK(rn.rc == 0 && strstr(rn.out, "(default opencl:0)") && strstr(rn.out, "--cl-binary"), "%s", rn.out);
  expect_error(&g, (const char *[]){"--cl-binary", "x.bin", NULL},
               "--cl-binary needs a program built for an OpenCL target (this one runs on cuda:0)");

  /* a descriptor from another ABI version, or a broken one */
  RtModelDesc v = *m;
  v.abi = RT_MODEL_ABI + 1;
  char newer[64];
  snprintf(newer, sizeof newer, "this program was built for model ABI %d", RT_MODEL_ABI + 1);
  expect_error(&v, (const char *[]){"--help", NULL}, newer);
  v.abi = 1; /* before code_kind */
  expect_error(&v, (const char *[]){"--help", NULL}, "this program was built for model ABI 1");
  RtModelDesc bad = *m;
  bad.loss_buf = NBUFS;
  expect_error(&bad, (const char *[]){NULL}, "invalid model description");
  bad = *m;
  bad.loss_buf = W; /* not per sample */
  expect_error(&bad, (const char *[]){NULL}, "invalid model description");
  bad = *m;
  bad.code_kind = 0; /* a descriptor must say what its code is */
  expect_error(&bad, (const char *[]){NULL}, "invalid model description: no code, or a code kind");
  bad = *m;
  bad.code_kind = RT_MODEL_CODE_PTX; /* and have it */
  expect_error(&bad, (const char *[]){NULL}, "invalid model description: no code, or a code kind");
  bad = *m;
  bad.data_kind = 0;
  expect_error(&bad, (const char *[]){NULL}, "names no data source");
}

/* The same model as OpenCL C on the first OpenCL device (PoCL in CI): the
 * launch grid is blocks of 256 work items that guard their range. */
static void test_opencl(const RtModelDesc *m) {
  RtDeviceInfo info[16];
  int ndev = rt_device_list(info, 16), ncl = 0;
  for (int i = 0; i < ndev && i < 16; i++) ncl += info[i].kind == RT_DEVICE_OPENCL;
  if (ncl == 0) {
    check_note("no OpenCL device, OpenCL run skipped");
    return;
  }
  RtModelDesc o = *m;
  o.target = "cl-dialect", o.native = NULL, o.code = cl_source, o.code_size = 0, o.code_options = "";
  o.code_kind = RT_MODEL_CODE_OPENCL_C; /* runs on OpenCL whatever the target's name */
  Run r, rc;
  run(&r, &o, (const char *[]){"--epochs", "2", "--save", tmp_path("cl.safetensors"), NULL});
  run(&rc, m, (const char *[]){"--epochs", "2", "--save", tmp_path("cpu.safetensors"), NULL});
  CHECK(r.rc == 0 && count_lines(r.out) == 3, "%s%s", r.out, r.err);
  Params pc = load_params(tmp_path("cl.safetensors")), pn = load_params(tmp_path("cpu.safetensors"));
  CHECK(pc.ok && pc.step == 14 && pc.seen == 2 * NTRAIN, "step %g seen %g", pc.step, pc.seen);
  float maxdiff = 0;
  for (int i = 0; i < F; i++) maxdiff = fmaxf(maxdiff, fabsf(pc.w[i] - pn.w[i]));
  CHECK(pc.ok && pn.ok && maxdiff < 1e-4f, "opencl and cpu: maxdiff = %g", maxdiff);
  double lc = field(r.out, "done:", 0, "test_loss"), ln = field(rc.out, "done:", 0, "test_loss");
  CHECK(fabs(lc - ln) <= 1e-4 * fabs(ln) + 1e-6, "test loss %g (opencl) vs %g (cpu)", lc, ln);
}

static void set_paths(void) {
  snprintf(train_csv, sizeof train_csv, "%s/train.csv", tmpdir);
  snprintf(test_csv, sizeof test_csv, "%s/test.csv", tmpdir);
}

/* `test_rt_trainer --opencl DIR`: the OpenCL checks on the data in DIR, in
 * a process of their own that leaves with _exit, because LeakSanitizer's
 * exit-time scan crashes on the dynamic TLS that PoCL leaves behind
 * (sanitizer builds), and PoCL's threads make fork() without exec unsafe. */
static int opencl_child(const char *dir) {
  snprintf(tmpdir, sizeof tmpdir, "%s", dir);
  set_paths();
  RtModelDesc m = cpu_model();
  test_opencl(&m);
  fflush(stdout);
  _exit(failures ? 1 : 0);
}

int main(int argc, char **argv) {
  const char *self = argv[0];
  verbose = getenv("VERBOSE") && !strcmp(getenv("VERBOSE"), "1");
  if (argc == 3 && !strcmp(argv[1], "--opencl")) return opencl_child(argv[2]);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/test_rt_trainer.XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  set_paths();
  write_csv(train_csv, NTRAIN, 1);
  write_csv(test_csv, NTEST, 2);
  RtModelDesc m = cpu_model();
  test_train(&m);
  test_overrides(&m);
  test_command_line(&m);
  test_staging_oom();
  /* OpenCL in a child run of this program (see opencl_child) */
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "'%s' --opencl '%s'", self, tmpdir);
  fflush(stdout);
  int status = system(cmd);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the OpenCL child failed (status %d)", status);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) printf("test_rt_trainer: could not remove %s\n", tmpdir);
  return check_done();
}
