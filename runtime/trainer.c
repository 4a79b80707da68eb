/* runtime/trainer.c - rt_trainer_main, the main loop of a trained program
 * (see model.h and docs/trainer.md).
 *
 * nnc links a constant RtModelDesc and its kernels with libnnrt; main()
 * hands both to rt_trainer_main, which
 *   1. checks the descriptor (ABI version first, then every index in it),
 *   2. parses the command line (trainer_options.c),
 *   3. opens the device and loads the code, before any data is read, so a
 *      missing GPU is reported at once,
 *   4. allocates every buffer for the batch capacity (temps of one slot
 *      share one allocation) and initialises parameters and states with
 *      rt_init_tensor(seed, name), exactly as the interpreter does,
 *   5. loads the data and runs rt_train (train.c, the epoch loop the
 *      interpreter shares) over an RtEngine whose two calls run the train
 *      and eval plans on the device,
 *   6. writes the parameters as safetensors with --save.
 *
 * A plan is a list of launches.  A launch passes its buffers, then the
 * batch size B as an int64, over `range` work items (times B when
 * range_batched).  CPU kernels get [begin, end) slices of that range from
 * the thread pool; CUDA and OpenCL kernels get ceil(range / 256) blocks of
 * 256 threads, so they must guard `i < range` themselves.  Full batches of
 * the train plan are captured once and replayed (a CUDA graph on CUDA);
 * NNRT_GRAPH=0 in the environment launches every kernel one by one.
 */
#include "model.h"

#include "comm.h"
#include "data.h"
#include "device.h"
#include "files.h"
#include "init.h"
#include "rng.h"
#include "safetensors.h"
#include "train.h"
#include "trainer_guard.h"
#include "trainer_options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { GPU_BLOCK = 256 };                 /* threads per block on CUDA and OpenCL */
#define MAX_NUMEL (INT64_C(1) << 40)      /* elements in one buffer, far beyond any device */

typedef struct Trainer {
  const RtModelDesc *m;
  const char *prog;
  RtDevice *dev;
  bool gpu;             /* CUDA or OpenCL: blocks of GPU_BLOCK threads */
  RtKernel **kernels;   /* [nkernels] */
  RtMem **mem;          /* [nbufs]; temps of one slot point at one allocation */
  int64_t bcap;         /* batch capacity: batched buffers hold this many samples */
  int64_t features;     /* elements per sample of the input */
  float *scalars;       /* [nscalars]: step, batch size, hyper-parameters, training flag, random key */
  int nscalars;
  float *host;          /* [bcap] staging for reading losses and metrics back */
  void *no_labels;      /* [bcap] zero labels for --predict's batches (NULL until it runs) */
  int32_t *tokens;      /* [bcap * features] an i32 input's values (text data), NULL for an f32 input */
  int lr_hyper;         /* the hyper-parameter `lr` (the schedule scales it), -1 = none */
  double lr;            /* its value before the schedule */
  int64_t steps;        /* training steps done */
  int graph;            /* the train plan at B = bcap: 0 not captured yet, 1 captured, -1 not used */
  RtGuardState *guard;  /* --check-numerics: checks after every train launch; NULL = off */
  const char *const *last_good; /* the newest good checkpoint (for messages), or NULL */
  /* Data-parallel training (rt_comm_size() > 1): every gradient buffer
   * packed into one host buffer for one all-reduce (Horovod's tensor
   * fusion); the samples of the whole step over all ranks. */
  float *fused;         /* [nfused] */
  int64_t nfused;
  int64_t global_n;
  bool timed;           /* NNRT_COMM_TIMES=1 */
  int64_t reduces;      /* all-reduces done, and the seconds they took (NNRT_COMM_TIMES=1 prints them) */
  double reduce_s;
} Trainer;

/* ---- the descriptor --------------------------------------------------------------------- */

static int64_t buf_numel(const RtBufDesc *b) {
  int64_t n = 1;
  for (int d = 0; d < b->rank; d++) n *= b->dims[d];
  return n;
}

/* A per-sample scalar that the runtime reads or writes: batched, one value. */
static bool per_sample(const RtModelDesc *m, int buf, int dtype) {
  const RtBufDesc *b = &m->bufs[buf];
  return b->batched && buf_numel(b) == 1 && (dtype < 0 || b->dtype == dtype);
}

static bool bad_desc(const char *prog, const char *what, int i) {
  rt_trainer_error(prog, "invalid model description: %s (item %d); the program and libnnrt do not match", what, i);
  return false;
}

static bool check_plan(const RtModelDesc *m, const RtLaunchDesc *plan, int n, const char *prog) {
  if (n < 0 || (n > 0 && !plan)) return bad_desc(prog, "a plan with a bad length", n);
  for (int i = 0; i < n; i++) {
    const RtLaunchDesc *l = &plan[i];
    if (l->kernel < 0 || l->kernel >= m->nkernels) return bad_desc(prog, "a launch of an unknown kernel", i);
    if (l->nargs < 0 || l->nargs + 1 > RT_MAX_ARGS || (l->nargs > 0 && !l->args))
      return bad_desc(prog, "a launch with too many arguments", i);
    for (int a = 0; a < l->nargs; a++)
      if (l->args[a] < 0 || l->args[a] >= m->nbufs) return bad_desc(prog, "a launch of an unknown buffer", i);
    if (l->range < 0) return bad_desc(prog, "a launch with a negative range", i);
  }
  return true;
}

/* Every index and shape in m, so nothing later can run off an array. */
static bool check_desc(const RtModelDesc *m, const char *prog) {
  if (!m->name || m->nbufs < 0 || (m->nbufs > 0 && !m->bufs)) return bad_desc(prog, "no name or no buffer table", 0);
  for (int i = 0; i < m->nbufs; i++) {
    const RtBufDesc *b = &m->bufs[i];
    if (!b->name || b->rank < 0 || b->rank > 8 || (b->dtype != 0 && b->dtype != 1) || b->kind < RT_BUF_INPUT ||
        b->kind > RT_BUF_OUTPUT)
      return bad_desc(prog, "a buffer with a bad name, kind, dtype or rank", i);
    int64_t n = 1;
    for (int d = 0; d < b->rank; d++) {
      if (b->dims[d] < 0 || (b->dims[d] > 0 && n > MAX_NUMEL / b->dims[d]))
        return bad_desc(prog, "a buffer with a bad shape", i);
      n *= b->dims[d];
    }
  }
  int roles[4] = {m->input_buf, m->label_buf, m->loss_buf, m->scalars_buf};
  for (int r = 0; r < 4; r++)
    if (roles[r] < -1 || roles[r] >= m->nbufs) return bad_desc(prog, "a role names an unknown buffer", r);
  if (m->input_buf < 0 || !m->bufs[m->input_buf].batched)
    return bad_desc(prog, "the input must be a batched buffer", m->input_buf);
  if (m->loss_buf < 0 || !per_sample(m, m->loss_buf, 0))
    return bad_desc(prog, "the loss must be a per-sample f32 scalar", m->loss_buf);
  if (m->label_buf >= 0 && !m->bufs[m->label_buf].batched)
    return bad_desc(prog, "the label must be a batched buffer", m->label_buf);
  if (m->data_kind != RT_DATA_TEXT && (m->bufs[m->input_buf].dtype != 0 || (m->label_buf >= 0 &&
                                                                        !per_sample(m, m->label_buf, -1))))
    return bad_desc(prog, "the input must be f32 and the label a per-sample scalar", m->input_buf);
  if (m->data_kind == RT_DATA_TEXT &&
      (m->context < 1 || m->bufs[m->input_buf].dtype != 1 || buf_numel(&m->bufs[m->input_buf]) != m->context ||
       (m->label_buf >= 0 && (m->bufs[m->label_buf].dtype != 1 || buf_numel(&m->bufs[m->label_buf]) != m->context))))
    return bad_desc(prog, "text data needs an i32 input and label of the context's size", m->input_buf);
  if (m->output_buf < -1 || m->output_buf >= m->nbufs ||
      (m->output_buf >= 0 && (m->bufs[m->output_buf].kind != RT_BUF_OUTPUT || m->bufs[m->output_buf].dtype != 0 ||
                              !m->bufs[m->output_buf].batched)))
    return bad_desc(prog, "the output must be a batched f32 buffer", m->output_buf);
  if (m->nmetrics < 0 || (m->nmetrics > 0 && (!m->metric_names || !m->metric_bufs)))
    return bad_desc(prog, "no metric table", 0);
  for (int i = 0; i < m->nmetrics; i++)
    if (m->metric_bufs[i] < 0 || m->metric_bufs[i] >= m->nbufs || !per_sample(m, m->metric_bufs[i], 0))
      return bad_desc(prog, "a metric must be a per-sample f32 scalar", i);
  if (m->nhypers < 0 || (m->nhypers > 0 && (!m->hyper_names || !m->hyper_values)))
    return bad_desc(prog, "no hyper-parameter table", 0);
  if (m->nkernels < 0 || (m->nkernels > 0 && !m->kernel_names)) return bad_desc(prog, "no kernel table", 0);
  bool native = m->code_kind == RT_MODEL_CODE_NATIVE;
  if ((!native && m->code_kind != RT_MODEL_CODE_PTX && m->code_kind != RT_MODEL_CODE_OPENCL_C) ||
      (native ? m->nkernels > 0 && !m->native : !m->code))
    return bad_desc(prog, "no code, or a code kind this runtime does not know", m->code_kind);
  return check_plan(m, m->train, m->ntrain, prog) && check_plan(m, m->eval, m->neval, prog);
}

/* ---- device, code, buffers ------------------------------------------------------------ */

/* Opens --device (or the target's default) and loads the code for it. */
/* Reads a whole file (a prebuilt OpenCL program) into a malloc'd block. */
static bool read_whole_file(const char *path, void **data, size_t *size, RtError *err) {
  FILE *f = rt_open_regular(path, NULL, err);
  if (!f) return false;
  size_t cap = 1 << 16, n = 0;
  unsigned char *p = malloc(cap);
  for (size_t got = 1; p && got;) {
    if (n == cap) {
      unsigned char *q = cap < ((size_t)1 << 30) ? realloc(p, cap * 2) : NULL;
      if (!q) {
        free(p);
        p = NULL;
        break;
      }
      p = q, cap *= 2;
    }
    got = fread(p + n, 1, cap - n, f);
    n += got;
  }
  bool bad = ferror(f) || !p;
  fclose(f);
  if (bad || n == 0) {
    free(p);
    rt_error_set(err, "%s: %s", path, n == 0 && !bad ? "empty file" : "cannot read it (or larger than 1 GiB)");
    return false;
  }
  *data = p;
  *size = n;
  return true;
}

/* --save-cl-binary: the program binary the device built, for offline reuse. */
static bool save_program_binary(Trainer *t, RtModule *mod, const char *path) {
  void *data = NULL;
  size_t size = 0;
  RtError err;
  if (rt_module_binary(t->dev, mod, &data, &size, &err) != 0) {
    rt_trainer_error(t->prog, "%s", err.msg);
    return false;
  }
  FILE *f = fopen(path, "wb");
  bool ok = f && fwrite(data, 1, size, f) == size;
  if (f) ok &= fclose(f) == 0;
  free(data);
  if (!ok) rt_trainer_error(t->prog, "cannot write '%s'", path);
  return ok;
}

static bool open_device(Trainer *t, const RtTrainerOptions *o) {
  const RtModelDesc *m = t->m;
  const char *spec = o->device ? o->device : rt_trainer_default_device(m);
  RtDeviceKind kind;
  int index;
  RtError err;
  if (rt_device_parse(spec, &kind, &index, &err) != 0) {
    rt_trainer_error(t->prog, "%s", err.msg);
    return false;
  }
  /* The descriptor says what its code is; the device layer, which kinds
   * of device run it. */
  RtCode code;
  memset(&code, 0, sizeof code);
  code.kind = rt_trainer_code(m);
  if (!rt_device_loads(kind, code.kind)) {
    rt_trainer_error(t->prog, "this program was built for target %s and runs on %s, not on %s (rebuild it for a "
                     "target whose code runs on %s; nnc --list-targets names each target's device)",
                     m->target ? m->target : "?", rt_trainer_default_device(m), spec, rt_device_kind_name(kind));
    return false;
  }
  code.native_names = m->kernel_names;
  code.native_fns = m->native;
  code.nnative = m->nkernels;
  code.options = m->code_options;
  code.data = m->code;
  code.size = (size_t)m->code_size;
  void *binary = NULL; /* --cl-binary: the file's contents replace the embedded source */
  if (o->cl_binary && kind == RT_DEVICE_OPENCL) {
    size_t size = 0;
    if (!read_whole_file(o->cl_binary, &binary, &size, &err)) {
      rt_trainer_error(t->prog, "%s", err.msg);
      return false;
    }
    code.kind = RT_CODE_CL_BINARY;
    code.data = binary;
    code.size = size;
  }
  t->gpu = kind != RT_DEVICE_CPU;
  t->dev = rt_device_open(kind, index, o->threads, &err);
  if (!t->dev) {
    rt_trainer_error(t->prog, "%s", err.msg);
    return false;
  }
  RtModule *mod = rt_module_load(t->dev, &code, &err);
  free(binary);
  if (!mod) {
    rt_trainer_error(t->prog, "%s%s%s", o->cl_binary ? o->cl_binary : "", o->cl_binary ? ": " : "", err.msg);
    const char *log = rt_device_log(t->dev);
    if (log[0] && !strstr(err.msg, log)) fprintf(stderr, "%s\n", log);
    return false;
  }
  if (o->save_cl_binary && kind == RT_DEVICE_OPENCL && !save_program_binary(t, mod, o->save_cl_binary)) return false;
  t->kernels = calloc((size_t)m->nkernels + 1, sizeof *t->kernels);
  if (!t->kernels) {
    rt_trainer_error(t->prog, "out of memory");
    return false;
  }
  for (int i = 0; i < m->nkernels; i++)
    if (!(t->kernels[i] = rt_kernel_get(t->dev, mod, m->kernel_names[i], &err))) {
      rt_trainer_error(t->prog, "%s", err.msg);
      return false;
    }
  return true;
}

static size_t buf_bytes(const Trainer *t, const RtBufDesc *b) {
  int64_t n = buf_numel(b);
  if (b->batched) n = n <= MAX_NUMEL / t->bcap ? n * t->bcap : -1;
  if (n < 0) return 0;
  return (size_t)(n > 0 ? n : 1) * 4; /* f32 and i32 alike; never an empty allocation */
}

/* One allocation per buffer, except temps: one per slot, sized for its
 * largest member. */
static bool alloc_buffers(Trainer *t) {
  const RtModelDesc *m = t->m;
  RtError err;
  t->mem = calloc((size_t)m->nbufs + 1, sizeof *t->mem);
  if (!t->mem) {
    rt_trainer_error(t->prog, "out of memory");
    return false;
  }
  for (int i = 0; i < m->nbufs; i++) {
    const RtBufDesc *b = &m->bufs[i];
    bool shared = b->kind == RT_BUF_TEMP && b->slot >= 0;
    if (t->mem[i]) continue; /* a slot allocated with an earlier member */
    size_t bytes = buf_bytes(t, b);
    if (shared)
      for (int j = i + 1; j < m->nbufs; j++)
        if (m->bufs[j].kind == RT_BUF_TEMP && m->bufs[j].slot == b->slot) {
          size_t bj = buf_bytes(t, &m->bufs[j]);
          if (bj == 0) bytes = 0;
          if (bytes && bj > bytes) bytes = bj;
        }
    if (b->kind == RT_BUF_SCALARS && bytes < (size_t)t->nscalars * 4) bytes = (size_t)t->nscalars * 4;
    if (bytes == 0) {
      rt_trainer_error(t->prog, "buffer '%s' is too large for a batch of %lld", b->name, (long long)t->bcap);
      return false;
    }
    RtMem *mem = rt_mem_alloc(t->dev, bytes, &err);
    if (!mem) {
      rt_trainer_error(t->prog, "%s", err.msg);
      return false;
    }
    t->mem[i] = mem;
    if (shared)
      for (int j = i + 1; j < m->nbufs; j++)
        if (m->bufs[j].kind == RT_BUF_TEMP && m->bufs[j].slot == b->slot) t->mem[j] = mem;
  }
  return true;
}

/* Parameters and states from their initializers: the same call, seed and
 * name as the interpreter's interp_init, so both start from the same bits. */
static bool init_tensors(Trainer *t, uint64_t seed) {
  const RtModelDesc *m = t->m;
  RtError err;
  for (int i = 0; i < m->nbufs; i++) {
    const RtBufDesc *b = &m->bufs[i];
    if ((b->kind != RT_BUF_PARAM && b->kind != RT_BUF_STATE) || b->init_kind == RT_INIT_NONE) continue;
    int64_t n = buf_numel(b);
    float *v = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!v) {
      rt_trainer_error(t->prog, "out of memory initialising '%s'", b->name);
      return false;
    }
    rt_init_buffer(b, seed, v);
    int rc = n > 0 ? rt_mem_write(t->dev, t->mem[i], 0, v, (size_t)n * 4, &err) : 0;
    free(v);
    if (rc) {
      rt_trainer_error(t->prog, "%s", err.msg);
      return false;
    }
  }
  return true;
}

/* ---- running the plans ---------------------------------------------------------------- */

static int launch_plan(Trainer *t, const RtLaunchDesc *plan, int nplan, int64_t n, RtError *err) {
  RtArg args[RT_MAX_ARGS];
  for (int i = 0; i < nplan; i++) {
    const RtLaunchDesc *l = &plan[i];
    for (int a = 0; a < l->nargs; a++) args[a] = rt_arg_mem(t->mem[l->args[a]]);
    args[l->nargs] = rt_arg_i64(n);
    int64_t per = l->range_batched ? n : 1;
    int64_t range = l->range <= INT64_MAX / per ? l->range * per : -1;
    int64_t g = t->gpu ? (range + GPU_BLOCK - 1) / GPU_BLOCK : range;
    if (range < 0 || g > (t->gpu ? INT32_MAX : (int64_t)UINT32_MAX))
      return rt_error_set(err, "kernel '%s': a range of %lld x %lld items is too large for one launch",
                          t->m->kernel_names[l->kernel], (long long)l->range, (long long)per);
    uint32_t grid[3] = {0, 1, 1}, block[3] = {0, 1, 1};
    grid[0] = (uint32_t)g;
    if (t->gpu) block[0] = GPU_BLOCK;
    if (t->gpu && t->m->single_work_item) grid[0] = block[0] = 1; /* fpga: one work-item runs the whole nest */
    if (t->m->batch_arg_i32) { /* asic: B and every index in the kernels are 32-bit ints */
      bool fits = n <= INT32_MAX && range <= INT32_MAX;
      for (int a = 0; fits && a < l->nargs; a++) {
        const RtBufDesc *b = &t->m->bufs[l->args[a]];
        fits = buf_numel(b) <= INT32_MAX / (b->batched ? n : 1);
      }
      if (!fits)
        return rt_error_set(err, "kernel '%s': a batch of %lld makes a buffer too large for the 32-bit indices of "
                            "target %s (use a smaller --batch)", t->m->kernel_names[l->kernel], (long long)n,
                            t->m->target ? t->m->target : "?");
      args[l->nargs] = rt_arg_i32((int32_t)n);
    }
    if (rt_launch(t->dev, t->kernels[l->kernel], args, l->nargs + 1, grid, block, err)) return -1;
    if (t->guard && plan == t->m->train &&
        rt_guard_check_launch(t->guard, l, n, t->steps + 1, t->last_good ? *t->last_good : NULL, err))
      return -1;
  }
  return 0;
}

/* The train plan at a full batch: captured once, then replayed. */
static int run_train_plan(Trainer *t, int64_t n, RtError *err) {
  const RtModelDesc *m = t->m;
  if (n != t->bcap || t->graph < 0 || t->guard) return launch_plan(t, m->train, m->ntrain, n, err);
  if (t->graph == 0) {
    const char *env = getenv("NNRT_GRAPH");
    if ((env && !strcmp(env, "0")) || rt_capture_begin(t->dev, err) != 0) {
      t->graph = -1;
      return launch_plan(t, m->train, m->ntrain, n, err);
    }
    int rc = launch_plan(t, m->train, m->ntrain, n, err);
    RtError end_err;
    if (rt_capture_end(t->dev, &end_err) != 0 && rc == 0) *err = end_err, rc = -1;
    if (rc) return -1;
    t->graph = 1;
  }
  return rt_replay(t->dev, err);
}

/* One data-parallel step on this rank's n of the step's t->global_n
 * samples: the grad part of the train plan, every gradient into the fused
 * buffer weighted by n / global_n (each rank's gradient is the mean over
 * its own samples), one all-reduce (sum) of it, back into the gradient
 * buffers, and the update part: the gradient of the mean loss over all
 * global_n samples, so the same update as one process's on every rank.  A
 * rank with no samples (the last, short batch) adds zeros. */
static int run_dp_step(Trainer *t, int64_t n, RtError *err) {
  const RtModelDesc *m = t->m;
  if (n > 0 && launch_plan(t, m->train, m->ntrain_grad, n, err)) return -1;
  float w = t->global_n > 0 ? (float)((double)n / (double)t->global_n) : 0;
  int64_t at = 0;
  for (int i = 0; i < m->ngrad_bufs; i++) {
    int64_t k = buf_numel(&m->bufs[m->grad_bufs[i]]);
    if (n > 0 && rt_mem_read(t->dev, t->mem[m->grad_bufs[i]], 0, t->fused + at, (size_t)k * 4, err)) return -1;
    for (int64_t j = 0; j < k; j++) t->fused[at + j] = n > 0 ? t->fused[at + j] * w : 0;
    at += k;
  }
  struct timespec t0, t1;
  if (t->timed) rt_comm_barrier(); /* NNRT_COMM_TIMES: the transfer alone, not the wait for the slowest rank */
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (rt_comm_sum_f32(t->fused, (size_t)t->nfused) != 0) return rt_error_set(err, "the all-reduce of the gradients failed");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  t->reduces++;
  t->reduce_s += (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  at = 0;
  for (int i = 0; i < m->ngrad_bufs; i++) {
    int64_t k = buf_numel(&m->bufs[m->grad_bufs[i]]);
    if (rt_mem_write(t->dev, t->mem[m->grad_bufs[i]], 0, t->fused + at, (size_t)k * 4, err)) return -1;
    at += k;
  }
  return launch_plan(t, m->train + m->ntrain_grad, m->ntrain - m->ntrain_grad, n, err);
}

/* Sum of the n per-sample values of buffer buf. */
static int read_sum(Trainer *t, int buf, int64_t n, double *sum, RtError *err) {
  if (rt_mem_read(t->dev, t->mem[buf], 0, t->host, (size_t)n * sizeof(float), err)) return -1;
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += t->host[i];
  *sum += s;
  return 0;
}

/* One batch: inputs, labels and scalars in, the plan, the loss (and in
 * evaluation the metrics) out. */
static int run_batch(Trainer *t, bool train, const float *x, const void *y, int64_t n, double *loss,
                     double *metrics) {
  const RtModelDesc *m = t->m;
  RtError err;
  const void *in = x;
  if (t->tokens) { /* an i32 input (text): the loaders give every input as f32 values */
    for (int64_t i = 0; i < n * t->features; i++) t->tokens[i] = (int32_t)x[i];
    in = t->tokens;
  }
  int rc = rt_mem_write(t->dev, t->mem[m->input_buf], 0, in, (size_t)(n * t->features) * 4, &err);
  if (rc == 0 && m->label_buf >= 0)
    rc = rt_mem_write(t->dev, t->mem[m->label_buf], 0, y, (size_t)(n * buf_numel(&m->bufs[m->label_buf])) * 4, &err);
  /* step counts from 1; an evaluation sees the step the next update would be */
  t->scalars[0] = (float)(t->steps + 1);
  t->scalars[1] = (float)n;
  t->scalars[2 + m->nhypers] = train ? 1.0f : 0.0f; /* batch statistics, dropout */
  if (rc == 0 && m->scalars_buf >= 0)
    rc = rt_mem_write(t->dev, t->mem[m->scalars_buf], 0, t->scalars, (size_t)t->nscalars * sizeof(float), &err);
  if (rc == 0)
    rc = train && t->fused ? run_dp_step(t, n, &err)
         : train           ? run_train_plan(t, n, &err)
                           : launch_plan(t, m->eval, m->neval, n, &err);
  if (rc == 0) rc = read_sum(t, m->loss_buf, n, loss, &err);
  for (int i = 0; rc == 0 && !train && metrics && i < m->nmetrics; i++) rc = read_sum(t, m->metric_bufs[i], n, &metrics[i], &err);
  if (rc) {
    rt_trainer_error(t->prog, "%s", err.msg);
    return 1;
  }
  if (train) t->steps++;
  return 0;
}

/* --predict: the eval plan on inputs alone (zero labels: the loss it also
 * computes is never read), then the output buffer. */
static int engine_predict(void *self, const float *x, int64_t n, float *out) {
  Trainer *t = self;
  const RtModelDesc *m = t->m;
  int64_t per = m->label_buf >= 0 ? buf_numel(&m->bufs[m->label_buf]) : 1;
  if (!t->no_labels && !(t->no_labels = calloc((size_t)(t->bcap * per), 4))) {
    rt_trainer_error(t->prog, "out of memory");
    return 1;
  }
  double loss = 0; /* of zero labels: not a figure of anything */
  if (run_batch(t, false, x, t->no_labels, n, &loss, NULL)) return 1;
  RtError err;
  size_t bytes = (size_t)(n * buf_numel(&m->bufs[m->output_buf])) * sizeof(float);
  if (rt_mem_read(t->dev, t->mem[m->output_buf], 0, out, bytes, &err)) {
    rt_trainer_error(t->prog, "%s", err.msg);
    return 1;
  }
  return 0;
}

/* The schedule: lr times the multiplier from the next step on. */
static void engine_scale_lr(void *self, double multiplier) {
  Trainer *t = self;
  if (t->lr_hyper >= 0) t->scalars[2 + t->lr_hyper] = (float)(t->lr * multiplier);
}

static int engine_step(void *self, const float *x, const void *y, int64_t n, double *loss, double *metrics) {
  return run_batch(self, true, x, y, n, loss, metrics);
}

static void engine_step_share(void *self, int64_t global_n) { ((Trainer *)self)->global_n = global_n; }

/* Data-parallel training: the plan's split, the batch's, and the fused
 * gradient buffer.  False after a message. */
static bool dp_prepare(Trainer *t) {
  const RtModelDesc *m = t->m;
  int N = rt_comm_size();
  if (N <= 1) return true;
  if (m->ntrain_grad < 0 || m->ngrad_bufs <= 0) {
    rt_trainer_error(t->prog, "this trainer's step does not split into gradients and update, so it cannot run as %d "
                     "MPI ranks; rebuild it with this nnc", N);
    return false;
  }
  if (t->bcap % N != 0) {
    int64_t lo = t->bcap / N * N, hi = lo + N;
    if (lo > 0)
      rt_trainer_error(t->prog, "the batch of %lld samples does not split evenly over %d ranks; the nearest that "
                       "do are %lld and %lld (--batch)", (long long)t->bcap, N, (long long)lo, (long long)hi);
    else
      rt_trainer_error(t->prog, "the batch of %lld samples does not split evenly over %d ranks; the smallest that "
                       "does is %lld (--batch)", (long long)t->bcap, N, (long long)hi);
    return false;
  }
  for (int i = 0; i < m->ngrad_bufs; i++) t->nfused += buf_numel(&m->bufs[m->grad_bufs[i]]);
  if (!(t->fused = calloc((size_t)t->nfused + 1, sizeof *t->fused))) {
    rt_trainer_error(t->prog, "out of memory");
    return false;
  }
  t->graph = -1; /* the step is two plans around the all-reduce */
  const char *times = getenv("NNRT_COMM_TIMES");
  t->timed = times && !strcmp(times, "1");
  return true;
}

static int engine_eval(void *self, const float *x, const void *y, int64_t n, double *loss, double *metrics) {
  return run_batch(self, false, x, y, n, loss, metrics);
}

/* ---- data and --save ------------------------------------------------------------------ */

static bool load_data(Trainer *t, const RtTrainerOptions *o, int64_t budget, RtDataset *train, RtDataset *test) {
  const RtModelDesc *m = t->m;
  RtError err;
  if (m->data_kind != RT_DATA_IDX && m->data_kind != RT_DATA_CSV && m->data_kind != RT_DATA_TEXT) {
    rt_trainer_error(t->prog, "the train block of model '%s' names no data source", m->name);
    return false;
  }
  if (o->test && m->data_kind == RT_DATA_IDX) {
    rt_trainer_error(t->prog, "--test takes a CSV file; IDX data is tested on the t10k files of its directory");
    return false;
  }
  RtDataSpec spec = {(RtDataKind)m->data_kind, o->data ? o->data : m->data_path, o->test ? o->test : m->test_path,
                     m->label_column, m->scale, m->context};
  RtDataExpect expect = {t->features, m->data_kind == RT_DATA_IDX ? RT_LABEL_I32 : RT_LABEL_F32, 0, budget};
  if (m->label_buf >= 0) {
    expect.label_type = m->bufs[m->label_buf].dtype == 1 ? RT_LABEL_I32 : RT_LABEL_F32;
    expect.label_bound = expect.label_type == RT_LABEL_I32 ? m->label_bound : 0;
  }
  if (!spec.path) {
    rt_trainer_error(t->prog, "no training data: the train block names no path and --data was not given");
    return false;
  }
  if (rt_data_load_splits(&spec, &expect, train, test, &err) != 0) {
    rt_trainer_error(t->prog, "%s", err.msg);
    return false;
  }
  return true;
}

/* s without the characters a JSON string cannot hold unescaped (quotes, backslashes, controls). */
static void json_clean(char *out, size_t len, const char *s) {
  size_t o = 0;
  for (; s && *s && o + 1 < len; s++)
    if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20) out[o++] = *s;
  out[o] = 0;
}

/* --save: every parameter (not the optimizer states), keyed by its path. */
static bool save_params(Trainer *t, const char *path) {
  const RtModelDesc *m = t->m;
  RtTensorRef *refs = calloc((size_t)m->nbufs + 1, sizeof *refs);
  bool ok = refs != NULL, report = true; /* false: reported already */
  int k = 0;
  RtError err;
  snprintf(err.msg, sizeof err.msg, "out of memory");
  for (int i = 0; ok && i < m->nbufs; i++) {
    const RtBufDesc *b = &m->bufs[i];
    if (b->kind != RT_BUF_PARAM) continue;
    int64_t n = buf_numel(b);
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    refs[k].name = b->name;
    refs[k].data = v;
    refs[k].rank = b->rank;
    memcpy(refs[k].dims, b->dims, sizeof refs[k].dims);
    k++;
    ok = v && (n == 0 || rt_mem_read(t->dev, t->mem[i], 0, v, (size_t)n * sizeof(float), &err) == 0);
    if (ok && rt_tensor_finite(&refs[k - 1], "parameter", t->steps, &err) != 0) { /* the last update's work */
      rt_trainer_error(t->prog, "%s; %s was not written", err.msg, path);
      ok = report = false;
    }
  }
  char model[128], version[64], meta[384];
  json_clean(model, sizeof model, m->name);
  json_clean(version, sizeof version, m->nnc_version);
  snprintf(meta, sizeof meta, "\"format\": \"nnc\", \"model\": \"%s\", \"step\": \"%lld\", \"nnc\": \"%s\"", model,
           (long long)t->steps, version);
  if (ok) ok = rt_safetensors_write(path, refs, k, meta, &err) == 0;
  if (!ok && report) rt_trainer_error(t->prog, "%s", err.msg);
  for (int i = 0; i < k; i++) free((void *)refs[i].data);
  free(refs);
  return ok;
}

/* --eval: the test figures of the loaded weights, in the format of the
 * epoch lines (rt_train evaluates in batches of the same size). */
static int evaluate_only(Trainer *t, RtEngine *e, const RtDataset *test, const char *weights) {
  if (test->n == 0) {
    rt_trainer_error(t->prog, "--eval: there is no test data to evaluate %s on (give --test FILE)", weights);
    return 1;
  }
  double loss = 0, *metrics = calloc((size_t)t->m->nmetrics + 1, sizeof *metrics);
  if (!metrics) {
    rt_trainer_error(t->prog, "out of memory");
    return 1;
  }
  int rc = rt_evaluate(e, test, t->bcap, &loss, metrics);
  if (rc == 0 && rt_comm_rank() == 0) {
    printf("eval: samples=%lld", (long long)test->n);
    rt_print_test(stdout, e, loss, metrics);
    printf("\n");
    if (fflush(stdout) != 0 || ferror(stdout)) {
      rt_trainer_error(t->prog, "cannot write the results on stdout");
      rc = 1;
    }
  }
  free(metrics);
  return rc;
}

/* The checkpoint directory (created and locked) and every output path,
 * checked before anything is loaded or trained. */
static bool prepare_outputs(const RtTrainerOptions *o, const RtModelDesc *m, const char *prog, int *lock) {
  RtError err;
  bool csv = m->data_kind == RT_DATA_CSV;
  RtRunPaths paths = {o->save, o->metrics, o->checkpoint, o->resume, csv ? (o->data ? o->data : m->data_path) : NULL,
                      csv ? (o->test ? o->test : m->test_path) : NULL, o->save_cl_binary, "--save-cl-binary",
                      o->output, o->load, o->predict, o->plot};
  if (o->checkpoint && rt_checkpoint_prepare(o->checkpoint, o->resume, o->overwrite_checkpoint, lock, &err) != 0) {
    rt_trainer_error(prog, "%s", err.msg);
    return false;
  }
  if (rt_check_run_paths(&paths, &err) != 0) {
    rt_trainer_error(prog, "%s", err.msg);
    return false;
  }
  return true;
}

/* ---- main ---------------------------------------------------------------------------------- */

/* The program's name for messages: the last part of argv[0]. */
static const char *prog_name(int argc, char **argv) {
  if (argc < 1 || !argv[0] || !argv[0][0]) return "train";
  const char *slash = strrchr(argv[0], '/');
  return slash && slash[1] ? slash + 1 : argv[0];
}

static void trainer_free(Trainer *t) {
  rt_device_close(t->dev); /* frees the buffers, modules and kernels */
  free(t->kernels);
  free(t->mem);
  free(t->scalars);
  free(t->host);
  free(t->no_labels);
  free(t->tokens);
  free(t->fused);
}

/* --check-ranks: after every epoch, a hash of every parameter's bytes,
 * the same on every rank or the run stops (all ranks, at the same epoch). */
typedef struct RankCheck {
  Trainer *t;
  RtCheckpointer *saver;
} RankCheck;

static int check_ranks_hook(void *self, const RtTrainPos *pos, RtTrainEvent event) {
  RankCheck *rc = self;
  Trainer *t = rc->t;
  const RtModelDesc *m = t->m;
  if (event == RT_TRAIN_EPOCH) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the parameters' bytes, in buffer order */
    for (int i = 0; i < m->nbufs; i++) {
      if (m->bufs[i].kind != RT_BUF_PARAM) continue;
      size_t bytes = (size_t)buf_numel(&m->bufs[i]) * 4;
      unsigned char *p = malloc(bytes ? bytes : 1);
      RtError err;
      if (!p || rt_mem_read(t->dev, t->mem[i], 0, p, bytes, &err)) {
        free(p);
        rt_trainer_error(t->prog, "--check-ranks: cannot read parameter '%s'", m->bufs[i].name);
        return 1;
      }
      for (size_t k = 0; k < bytes; k++) h = (h ^ p[k]) * 1099511628211ull;
      free(p);
    }
    double v[2] = {(double)(h >> 11), -(double)(h >> 11)}; /* 53 bits: exact in a double */
    if (rt_comm_max_f64(v, 2) != 0) return 1;
    if (v[0] != -v[1]) {
      rt_trainer_error(t->prog, "--check-ranks: the ranks' parameters differ after epoch %lld",
                       (long long)(pos->epoch - 1));
      return 1;
    }
  }
  return rt_checkpoint_hook(rc->saver, pos, event);
}

static int trainer_main(int argc, char **argv, const RtModelDesc *m) {
  const char *prog = prog_name(argc, argv);
  if (!m || m->abi != RT_MODEL_ABI) {
    rt_trainer_error(prog, "this program was built for model ABI %d, but its runtime (libnnrt) implements ABI %d; "
                     "rebuild it with the nnc that matches its libnnrt",
                     m ? m->abi : -1, RT_MODEL_ABI);
    return 1;
  }
  if (!check_desc(m, prog)) return 1;
  RtTrainerOptions o;
  int rc = rt_trainer_parse(argc, argv, m, prog, &o);
  if (rc >= 0) return rc;
  if (o.list_devices) {
    rt_device_print_list(stdout);
    return 0;
  }
  /* Under mpirun (or srun): one rank of several.  Rank 0 alone writes
   * the epoch lines, --save, --metrics, --plot and checkpoints; the other
   * ranks' messages name their rank. */
  if (rt_comm_init(prog) != 0) return 1;
  int nranks = rt_comm_size(), rank = rt_comm_rank();
  static char rank_prog[256];
  if (nranks > 1 && (o.predict || o.generate)) {
    rt_trainer_error(prog, "%s runs in one process, not as %d MPI ranks", o.predict ? "--predict" : "--generate",
                     nranks);
    return 1;
  }
  if (rank > 0) {
    snprintf(rank_prog, sizeof rank_prog, "%s (rank %d)", prog, rank);
    prog = rank_prog;
    o.save = o.metrics = o.plot = o.checkpoint = NULL;
  }
  FILE *lines = stdout; /* the epoch lines: /dev/null on ranks but 0 */

  int lock = -1; /* the checkpoint directory's */
  if (!prepare_outputs(&o, m, prog, &lock)) {
    rt_checkpoint_unlock(lock);
    return 1;
  }
  Trainer t;
  memset(&t, 0, sizeof t);
  t.m = m;
  t.prog = prog;
  /* --resume: the checkpoint's settings, under the command line's. */
  RtGuardState guard;
  RtCheckpoint ck;
  RtError err;
  memset(&ck, 0, sizeof ck);
  double *base = calloc((size_t)m->nhypers + 1, sizeof *base);
  bool resumed = o.resume != NULL;
  if (!rt_guard_init(&guard, m, prog) || !base) {
    free(base);
    rt_guard_free(&guard);
    rt_checkpoint_unlock(lock);
    return 1;
  }
  for (int i = 0; i < m->nhypers; i++) base[i] = m->hyper_values[i];
  bool loaded = !resumed || rt_checkpoint_load(o.resume, &ck, &err) == 0;
  if (!loaded) rt_trainer_error(prog, "%s", err.msg);
  if (!loaded || (resumed && !rt_guard_resume_settings(&guard, &ck, &o, base)) ||
      (o.load && !rt_guard_load_weights(&guard, o.load, &ck))) {
    rt_checkpoint_free(&ck);
    rt_guard_free(&guard);
    free(base);
    rt_checkpoint_unlock(lock);
    return 1;
  }
  t.bcap = o.batch > 0 ? o.batch : resumed ? ck.batch : m->batch > 0 ? m->batch : 1;
  t.features = buf_numel(&m->bufs[m->input_buf]);
  t.nscalars = 4 + m->nhypers; /* step, batch, hypers, training, random key */
  if (m->scalars_buf >= 0 && buf_numel(&m->bufs[m->scalars_buf]) > t.nscalars)
    t.nscalars = (int)buf_numel(&m->bufs[m->scalars_buf]);
  double *hypers = calloc((size_t)m->nhypers + 1, sizeof *hypers);
  t.scalars = calloc((size_t)t.nscalars, sizeof *t.scalars);
  t.host = calloc((size_t)t.bcap, sizeof *t.host);
  uint64_t seed = resumed ? ck.seed : o.seed >= 0 ? (uint64_t)o.seed : (uint64_t)m->seed;
  /* Validation and early stopping: the command line's, else the checkpoint's, else the train block's. */
  double validation = o.validation >= 0 ? o.validation : resumed ? ck.validation : m->validation;
  RtEarlyStop early = {0};
  if (resumed) early = ck.early;
  if (o.early_stop) early.patience = o.early_stop;
  RtCheckpointer saver = {prog, o.checkpoint, o.checkpoint_every, {0}, guard.tensors, guard.n, rt_guard_gather,
                          &guard, resumed ? ck.pos.steps : -1, NULL, "", early.patience ? &early : NULL,
                          rt_guard_scatter, NULL, 0};
  char resumed_from[sizeof ck.path];
  snprintf(resumed_from, sizeof resumed_from, "%s", ck.path);
  if (resumed) saver.last_good = resumed_from;
  if (o.checkpoint) rt_checkpoint_path(o.checkpoint, saver.path, sizeof saver.path);
  RtDataset train, test, val;
  memset(&train, 0, sizeof train);
  memset(&test, 0, sizeof test);
  memset(&val, 0, sizeof val);
  rc = 1;
  if (early.patience && validation <= 0) {
    rt_trainer_error(prog, "--early-stop needs a validation split (--validation F, or 'validation' in the train "
                     "block)");
    goto done;
  }
  if (!hypers || !t.scalars || !t.host) {
    rt_trainer_error(prog, "out of memory");
    goto done;
  }
  if (!rt_trainer_hypers(&o, m, base, hypers)) goto done;
  for (int i = 0; i < m->nhypers; i++) t.scalars[2 + i] = (float)hypers[i];
  t.lr_hyper = -1;
  for (int i = 0; i < m->nhypers; i++)
    if (!strcmp(m->hyper_names[i], "lr")) t.lr_hyper = i, t.lr = hypers[i];
  if (m->bufs[m->input_buf].dtype == 1 && !(t.tokens = calloc((size_t)(t.bcap * t.features), sizeof *t.tokens))) {
    rt_trainer_error(prog, "out of memory");
    goto done;
  }
  t.scalars[3 + m->nhypers] = (float)rt_rng_key16(seed); /* dropout's Philox key, as the interpreter's */
  int64_t data_budget; /* what the memory limit leaves for the data */
  if (!rt_guard_memory(m, t.bcap, t.nscalars, &o, prog, &data_budget) || !open_device(&t, &o) || !alloc_buffers(&t) ||
      !init_tensors(&t, seed) || !dp_prepare(&t))
    goto done;
  guard.dev = t.dev, guard.mem = t.mem;
  if ((resumed || o.load) && !rt_guard_restore(&guard, &ck, o.load != NULL)) goto done;
  if (resumed && !rt_checkpoint_resume_best(&saver, &ck, &err)) {
    rt_trainer_error(prog, "%s", err.msg);
    goto done;
  }
  rt_checkpoint_free(&ck); /* its tensors are on the device now (its fields stay) */
  if (o.predict) { /* the inputs to predict, not the training data */
    if (m->data_kind != RT_DATA_IDX && m->data_kind != RT_DATA_CSV) {
      rt_trainer_error(prog, m->data_kind == RT_DATA_TEXT ? "--predict reads IDX or CSV inputs; model '%s' is trained "
                       "on text (--generate writes text with it)" : "--predict reads inputs in the format of the "
                       "train block's data, but model '%s' names no data source", m->name);
      goto done;
    }
    RtDataExpect expect = {t.features, RT_LABEL_NONE, 0, data_budget};
    if (rt_data_load_inputs((RtDataKind)m->data_kind, o.predict, m->scale, &expect, &test, &err) != 0) {
      rt_trainer_error(prog, "%s", err.msg);
      goto done;
    }
    if (test.source && rt_same_file(test.source, o.output)) { /* a directory's images file, found just now */
      rt_trainer_error(prog, "the inputs of --predict %s and --output %s are the same file; it would be overwritten",
                       test.source, o.output);
      goto done;
    }
    RtEngine engine = {&t, m->nmetrics, m->metric_names, engine_step, engine_eval, engine_predict,
                       buf_numel(&m->bufs[m->output_buf]), m->output_name, NULL, NULL};
    rc = rt_predict(&engine, &test, t.bcap, o.output, prog);
    goto done;
  }
  if (o.generate) {
    RtEngine engine = {&t, m->nmetrics, m->metric_names, engine_step, engine_eval, engine_predict,
                       buf_numel(&m->bufs[m->output_buf]), m->output_name, NULL, NULL};
    RtGenerateOptions g = {o.generate, o.tokens >= 0 ? o.tokens : 256, o.temperature >= 0 ? o.temperature : 1,
                           seed};
    rc = rt_generate(&engine, t.features, &g, stdout, prog);
    goto done;
  }
  if (!load_data(&t, &o, data_budget, &train, &test)) goto done;
  if (!o.eval && validation > 0 &&
      rt_data_hold_out(&train, validation, o.validation >= 0 ? "option '--validation'" : resumed ?
                       "the checkpoint's 'validation'" : "the train block's 'validation'", &val, &err) != 0) {
    rt_trainer_error(prog, "%s", err.msg);
    goto done;
  }
  if (resumed && train.n != ck.train_samples) {
    rt_trainer_error(prog, "%s: the checkpoint was trained on %lld samples, but the training data has %lld (the "
                     "data order depends on it)", ck.path, (long long)ck.train_samples, (long long)train.n);
    goto done;
  }
  if (o.check_numerics) t.guard = &guard;
  t.last_good = &saver.last_good;

  RtEngine engine = {&t, m->nmetrics, m->metric_names, engine_step, engine_eval, NULL, 0, NULL, engine_scale_lr,
                     engine_step_share};
  if (o.eval) {
    rc = evaluate_only(&t, &engine, &test, o.load);
    goto done;
  }
  if (rank > 0 && !(lines = fopen("/dev/null", "w"))) {
    lines = stdout;
    rt_trainer_error(prog, "cannot open /dev/null");
    goto done;
  }
  RtTrainOptions to = {.batch = t.bcap,
                       .epochs = o.epochs >= 0 ? o.epochs : resumed ? ck.epochs : m->epochs,
                       .max_steps = o.steps > 0 ? o.steps : resumed ? ck.max_steps : m->steps,
                       .seed = seed,
                       .shuffle = resumed ? ck.shuffle : m->shuffle && !o.no_shuffle,
                       .metrics_csv = o.metrics,
                       .out = lines,
                       .prog = prog,
                       .val = &val,
                       .early = saver.early,
                       .plot = o.plot,
                       .model = m->name,
                       .schedule = m->schedule.kind != RT_SCHEDULE_CONSTANT ? &m->schedule : NULL};
  if (resumed) {
    t.steps = ck.pos.steps;
    to.start = ck.pos;
  }
  RtCkptMeta meta = {m->name, m->nnc_version, {0}, train.n, t.bcap, to.epochs, to.max_steps, seed, to.shuffle,
                     m->nhypers, m->hyper_names, hypers, validation, saver.early};
  saver.meta = meta;
  to.hook = rt_checkpoint_hook;
  to.hook_self = &saver;
  RankCheck rank_check = {&t, &saver};
  if (o.check_ranks && nranks > 1) to.hook = check_ranks_hook, to.hook_self = &rank_check;
  to.last_checkpoint = &saver.last_good;
  rt_signals_install();
  rc = rt_train(&engine, &train, &test, &to);
  rt_signals_restore();
  if (rc == 0 && o.save && !rt_checkpoint_restore_best(&saver, &err)) { /* early stopping: the best epoch's */
    rt_trainer_error(prog, "%s", err.msg);
    rc = 1;
  }
  if (saver.best && early.best_epoch > 0) t.steps = early.best_step; /* what the weights are, for --save */
  if (t.reduces && t.timed)
    fprintf(stderr, "%s: all-reduce: ranks=%d calls=%lld bytes=%lld seconds=%.4f per_call_ms=%.3f\n", prog, nranks,
            (long long)t.reduces, (long long)t.nfused * 4, t.reduce_s, t.reduce_s * 1e3 / (double)t.reduces);
  if (rc == 0 && o.save && !save_params(&t, o.save)) rc = 1;

done:
  rt_checkpoint_free(&ck);
  rt_checkpointer_free(&saver);
  rt_guard_free(&guard);
  free(base);
  rt_data_free(&train);
  rt_data_free(&test);
  trainer_free(&t);
  free(hypers);
  rt_checkpoint_unlock(lock);
  if (lines != stdout) fclose(lines);
  return rc;
}

int rt_trainer_main(int argc, char **argv, const RtModelDesc *m) {
  rt_std_fds_open(); /* a file opened while fd 1 is closed would get the epoch lines */
  int rc = trainer_main(argc, argv, m);
  /* One rank's failure ends the job: no other rank waits in a collective.
   * A signal stops every rank after the same step (runtime/train.c), and
   * rank 0 has saved its checkpoint: they leave together. */
  if (rc > 128 && rc < 128 + 65 && rt_signal_pending()) {
    rt_comm_barrier();
    rt_comm_finalize();
    return rc;
  }
  if (rc != 0) rt_comm_abort(rc);
  rt_comm_finalize();
  return rc;
}
