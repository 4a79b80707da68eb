/* bench/matmul.c - nnc's matmul kernels against OpenBLAS sgemm.
 *
 *   bench/matmul [--threads=1,2] [--runs=5] [--schedule=SPEC] [--kernels] [--asm=FILE] [SHAPE...]
 *
 * SHAPE is S (M = K = N = S) or MxKxN; default: 256 512 1024 2048.  M is
 * the batch.  For each shape this times the three matrix products of one
 * dense layer y = x @ w (x: [M,K], w: [K,N]) in a training step:
 *
 *   fwd   y[M,N]  = x[M,K] @ w[K,N]         sgemm(NoTrans, NoTrans)
 *   dx    dx[M,K] = g[M,N] @ w[K,N]^T       sgemm(NoTrans, Trans)
 *   dw    dw[K,N] = x[M,K]^T @ g[M,N]       sgemm(Trans, NoTrans)
 *
 * Method.  The kernels are nnc's own, built the way `nnc model.nn -o train`
 * builds them: a small graph-IR module is made with the IR builder (ir/ir.h)
 * holding exactly the nodes autodiff emits for a dense layer (compare
 * `nnc examples/mnist.nn --emit=ir`):
 *
 *   %0 = input @x : f32[B,K]          %1 = input @g : f32[B,N]
 *   %2 = param @w : f32[K,N]
 *   %3 = matmul %0, %2 : f32[B,N]                       fwd
 *   %4 = matmul %2, %1 : f32[B,K]                       dx (w @ g per sample)
 *   %5 = reshape %0 : f32[B,K,1]      %6 = reshape %1 : f32[B,1,N]
 *   %7 = matmul %5, %6 : f32[B,K,N]   %8 = batch_sum %7 : f32[K,N]   dw
 *
 * then lowered (passes/lower.h, the same fusion: the outer product %7
 * inlines into the batch sum), compiled by the CPU backend
 * (codegen/cpu/cpu.h, -O2, this host's CPU) into an object, linked with
 * `cc -shared` and dlopen'ed.  Each kernel is found by the source line its
 * node carries (2 fwd, 3 dx, 4 dw) and launched as the trainer launches it
 * (runtime/device_cpu.c): its outermost loop's range, split over the
 * runtime's persistent thread pool (rt_pool_run, grain 1), each chunk a call
 * of the RtModelKernel ABI `void k(void **args, int64_t begin, int64_t end)`.
 * OpenBLAS gets the same buffers and openblas_set_num_threads(T).
 *
 * Every timing is the median of --runs runs after warm-up runs (nnc's first
 * is also checked against sgemm: maxrel = max |nnc - sgemm| / max |sgemm|);
 * nnc and sgemm runs alternate, so a busy spell of a shared machine slows
 * both (with several threads each timing is preceded by a 150 ms pause and
 * an untimed run, so that neither library's idle threads spin on the
 * other's cores); a run shorter than 20 ms is repeated back to back and
 * averaged.
 * GFLOP/s = 2 * M * K * N / seconds.  Prints one line per shape, product
 * and thread count:
 *
 *   matmul M=256 K=256 N=256 op=fwd threads=1 nnc_gflops=.. blas_gflops=.. ratio=.. maxrel=..
 *
 * ratio = nnc / sgemm (below 1: sgemm is faster).  bench/cpu.sh builds it
 * as BUILD/bench-matmul and runs it; see docs/performance.md.  By hand
 * (from the repository root):
 *
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I. -Ibuild -I/usr/lib/llvm-19/include \
 *      bench/matmul.c build/libnnccore.a build/libnnrt.a -L/usr/lib/llvm-19/lib -lLLVM-19 \
 *      -lopenblas -lz -lm -lpthread -ldl -o matmul
 */
#include "codegen/cpu/cpu.h"
#include "codegen/descriptor.h"
#include "support/diag.h"
#include "ir/ir.h"
#include "ir/kernel.h"
#include "passes/lower.h"
#include "runtime/pool.h"

#include <cblas.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { OP_FWD, OP_DX, OP_DW, NOPS };
enum { MAX_ARGS = 64 }; /* buffers per kernel */
static const char *const op_names[NOPS] = {"fwd", "dx", "dw"};

typedef void (*Kfn)(void **args, int64_t begin, int64_t end);

/* One compiled kernel with its arguments bound, ready to launch. */
typedef struct Launch {
  Kfn fn;
  void *ptrs[MAX_ARGS];      /* buffer base pointers, in Kernel.args order */
  int64_t batch;             /* B, after them */
  void *argv[MAX_ARGS + 1];  /* the ABI's args: &ptrs[i]..., &batch */
  int64_t range;             /* work items: the outermost loop's iterations */
  float *out;                /* the buffer it computes */
} Launch;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *fmt, const char *arg) {
  fprintf(stderr, "matmul: error: ");
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  exit(1);
}

static void *xalloc(size_t bytes) {
  void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!p) die("out of memory%s", "");
  memset(p, 0, bytes);
  return p;
}

/* ---- the layer's graph, lowered and compiled ---------------------------------- */

static Type batched(int64_t d0, int64_t d1, int rank) {
  int64_t dims[2] = {d0, d1};
  return type_make(DT_F32, rank, dims, true);
}

static uint32_t add_sym(Module *m, SymKind kind, const char *name, Type t) {
  Symbol s;
  memset(&s, 0, sizeof s);
  s.kind = kind;
  s.name = name;
  s.type = t;
  return ir_add_symbol(m, s);
}

/* The nodes autodiff emits for y = x @ w (see the comment at the top). */
static Module *layer_module(int64_t M, int64_t K, int64_t N) {
  Module *m = ir_module_new();
  m->name = "matmul";
  m->train.batch = M;
  uint32_t file = ir_file(m, "bench/matmul.c");
  uint32_t loc[1 + NOPS]; /* loc[0]: the leaves; loc[1 + op]: that product's nodes */
  for (int i = 0; i <= NOPS; i++) loc[i] = ir_loc(m, file, (uint32_t)(i + 1), 1, 0);
  int64_t wd[2] = {K, N};
  uint32_t sx = add_sym(m, SYM_INPUT, "x", batched(K, 0, 1));
  uint32_t sg = add_sym(m, SYM_INPUT, "g", batched(N, 0, 1));
  uint32_t sw = add_sym(m, SYM_PARAM, "w", type_make(DT_F32, 2, wd, false));
  ValueId x = ir_leaf(m, OP_INPUT, sx, loc[0]);
  ValueId g = ir_leaf(m, OP_INPUT, sg, loc[0]);
  ValueId w = ir_leaf(m, OP_PARAM, sw, loc[0]);
  ir_op2(m, OP_MATMUL, x, w, loc[1 + OP_FWD]);
  ir_op2(m, OP_MATMUL, w, g, loc[1 + OP_DX]);
  ValueId xc = ir_retype(m, OP_RESHAPE, x, batched(K, 1, 2), loc[1 + OP_DW]);
  ValueId gr = ir_retype(m, OP_RESHAPE, g, batched(1, N, 2), loc[1 + OP_DW]);
  ValueId outer = ir_op2(m, OP_MATMUL, xc, gr, loc[1 + OP_DW]);
  ir_op1(m, OP_BATCH_SUM, outer, loc[1 + OP_DW]);
  if (!ir_verify(m, "bench")) die("the layer's graph does not verify%s", "");
  return m;
}

/* Compiles p into dir/kernels.so and opens it. */
static const char *schedule; /* --schedule=SPEC, as nnc's */

static void *compile_and_load(KProgram *p, const char *dir) {
  char obj[512], so[512], cmd[1200];
  snprintf(obj, sizeof obj, "%s/kernels.o", dir);
  snprintf(so, sizeof so, "%s/kernels.so", dir);
  CpuOptions co = {.opt_level = 2, .schedule = schedule};
  if (!cpu_compile(p, &co, CPU_OUT_OBJ, obj)) die("cpu codegen failed%s", "");
  snprintf(cmd, sizeof cmd, "cc -shared -o '%s' '%s'", so, obj);
  if (system(cmd) != 0) die("'%s' failed", cmd);
  void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (!h) die("%s", dlerror());
  return h;
}

/* ---- running --------------------------------------------------------------------- */

static void chunk(void *ctx, int64_t begin, int64_t end) {
  Launch *l = ctx;
  l->fn(l->argv, begin, end);
}

static void run_nnc(RtPool *pool, Launch *l) { rt_pool_run(pool, chunk, l, l->range, 1); }

static void run_blas(int op, int64_t M, int64_t K, int64_t N, const float *x, const float *w, const float *g,
                     float *out) {
  switch (op) {
  case OP_FWD:
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, x, K, w, N, 0.0f, out, N);
    break;
  case OP_DX:
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, N, 1.0f, g, N, w, N, 0.0f, out, K);
    break;
  case OP_DW:
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, M, 1.0f, x, K, g, N, 0.0f, out, N);
    break;
  }
}

/* One timed thing: nnc's kernel (blas_op < 0) or sgemm for blas_op. */
typedef struct Job {
  RtPool *pool;
  Launch *l;
  int blas_op;
  int64_t M, K, N;
  const float *x, *w, *g;
  float *ref;
} Job;

static void job_run(const Job *j) {
  if (j->blas_op < 0) run_nnc(j->pool, j->l);
  else run_blas(j->blas_op, j->M, j->K, j->N, j->x, j->w, j->g, j->ref);
}

static double median(double *v, int n);

/* With several threads, OpenBLAS's idle workers spin for about 0.1 s after
 * a call (2^28 cycles) and nnc's for 100 us: a run right after the other
 * library's would share its cores with those spinners.  So before each
 * multi-threaded timing both sleep this long, and an untimed run wakes the
 * timed library's threads. */
enum { QUIESCE_US = 150000 };

/* Times two jobs (nnc's kernel, then sgemm) alternately, so that both see
 * the same machine: a warm-up run of each, then `runs` rounds of one
 * timing of each.  A timing repeats its job back to back for at least
 * 20 ms (small shapes take well under a millisecond) and divides.
 * t holds 2 * runs entries; med[k] gets job k's median seconds. */
static void time_pair(const Job *jobs, int runs, bool quiesce, double *t, double *med) {
  int reps[2];
  for (int k = 0; k < 2; k++) {
    double t0 = now();
    job_run(&jobs[k]);
    double warm = now() - t0;
    reps[k] = warm >= 0.02 ? 1 : (int)ceil(0.02 / (warm > 1e-6 ? warm : 1e-6));
    if (reps[k] > 10000) reps[k] = 10000;
  }
  for (int r = 0; r < runs; r++)
    for (int k = 0; k < 2; k++) {
      if (quiesce) { /* let the other library's idle threads stop spinning, then wake ours */
        usleep(QUIESCE_US);
        job_run(&jobs[k]);
      }
      double t0 = now();
      for (int i = 0; i < reps[k]; i++) job_run(&jobs[k]);
      t[k * runs + r] = (now() - t0) / reps[k];
    }
  for (int k = 0; k < 2; k++) med[k] = median(t + k * runs, runs);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void fill(float *p, int64_t n, unsigned *seed) {
  for (int64_t i = 0; i < n; i++) {
    *seed = *seed * 1664525u + 1013904223u;
    p[i] = (float)((*seed >> 8) * (1.0 / 16777216.0) * 2.0 - 1.0);
  }
}

/* --kernels / --asm=FILE: what the kernels look like (for the analysis in
 * docs/performance.md). */
static bool print_kernels; /* print each shape's kernel IR to stderr */
static const char *asm_path; /* write the last shape's assembly there */

static void bench_shape(int64_t M, int64_t K, int64_t N, const int *threads, int nthreads, int runs,
                        const char *dir) {
  Module *m = layer_module(M, K, N);
  LowerOptions lo = {.opt_level = 0}; /* the products alone: no fusion, no dropped outputs */
  KProgram *p = lower_program(m, &lo);
  if (!p) die("lowering failed%s", "");
  memplan(p, M);
  if (!kprog_verify(p)) die("the kernel IR does not verify%s", "");
  CpuOptions co = {.opt_level = 2, .schedule = schedule};
  if (print_kernels && !cpu_schedule(p, &co)) die("bad --schedule%s", "");
  if (print_kernels) kprog_print(p, stderr);
  if (asm_path && !cpu_compile(p, &co, CPU_OUT_ASM, asm_path)) die("cannot write '%s'", asm_path);
  void *h = compile_and_load(p, dir);

  /* Buffers: x, g, w filled; the outputs start zeroed (the kernels zero
   * their accumulators themselves). */
  void **mem = calloc(p->nbufs, sizeof *mem);
  unsigned seed = 12345;
  for (uint32_t b = 0; b < p->nbufs; b++) {
    int64_t n = kbuf_elems(&p->bufs[b], M);
    mem[b] = xalloc((size_t)(n > 0 ? n : 1) * 4);
    if (p->bufs[b].kind == KB_INPUT || p->bufs[b].kind == KB_PARAM) fill(mem[b], n, &seed);
  }
  const float *x = NULL, *g = NULL, *w = NULL;
  for (uint32_t b = 0; b < p->nbufs; b++) {
    const char *nm = p->bufs[b].name;
    if (!strcmp(nm, "x")) x = mem[b];
    if (!strcmp(nm, "g")) g = mem[b];
    if (!strcmp(nm, "w")) w = mem[b];
  }
  if (!x || !g || !w) die("lowering renamed the layer's buffers%s", "");

  Launch launch[NOPS];
  memset(launch, 0, sizeof launch);
  for (uint32_t k = 0; k < p->nkernels; k++) {
    const Kernel *kk = &p->kernels[k];
    uint32_t line = m->locs[kk->loc].line; /* 2 + op */
    if (line < 2 || line > 1 + NOPS) continue;
    Launch *l = &launch[line - 2];
    if (l->fn) die("two kernels compute the %s product", op_names[line - 2]);
    if (kk->nargs > MAX_ARGS) die("kernel %s has too many arguments", kk->name);
    *(void **)&l->fn = dlsym(h, kk->name);
    if (!l->fn) die("kernel %s is missing from the object", kk->name);
    for (uint32_t a = 0; a < kk->nargs; a++) {
      l->ptrs[a] = mem[kk->args[a]];
      l->argv[a] = &l->ptrs[a];
      if (p->bufs[kk->args[a]].kind == KB_TEMP) l->out = mem[kk->args[a]];
    }
    l->batch = M;
    l->argv[kk->nargs] = &l->batch;
    bool bat;
    l->range = descriptor_launch_range(kk, &bat) * (bat ? M : 1);
  }
  for (int op = 0; op < NOPS; op++)
    if (!launch[op].fn || !launch[op].out)
      die("no kernel computes the %s product (a contraction over 1 is an outer product, inlined)", op_names[op]);

  int64_t out_elems[NOPS] = {M * N, M * K, K * N};
  double flops = 2.0 * (double)M * (double)K * (double)N;
  float *ref = xalloc((size_t)(M * K > K * N ? (M * K > M * N ? M * K : M * N) : (K * N > M * N ? K * N : M * N)) * 4);
  double *t = malloc(2 * (size_t)runs * sizeof *t);
  for (int ti = 0; ti < nthreads; ti++) {
    RtPool *pool = rt_pool_create(threads[ti]);
    openblas_set_num_threads(threads[ti]);
    for (int op = 0; op < NOPS; op++) {
      Launch *l = &launch[op];
      /* Warm-up, checked against sgemm. */
      run_nnc(pool, l);
      run_blas(op, M, K, N, x, w, g, ref);
      double maxref = 0, maxdiff = 0;
      for (int64_t i = 0; i < out_elems[op]; i++) {
        double r = fabs((double)ref[i]), d = fabs((double)l->out[i] - (double)ref[i]);
        if (r > maxref) maxref = r;
        if (d > maxdiff || isnan(d)) maxdiff = isnan(d) ? INFINITY : d;
      }
      double maxrel = maxref > 0 ? maxdiff / maxref : maxdiff;
      Job jobs[2] = {{pool, l, -1, M, K, N, x, w, g, ref}, {pool, l, op, M, K, N, x, w, g, ref}};
      double med[2];
      time_pair(jobs, runs, threads[ti] > 1, t, med);
      double nnc_s = med[0], blas_s = med[1];
      printf("matmul M=%lld K=%lld N=%lld op=%s threads=%d nnc_gflops=%.2f blas_gflops=%.2f ratio=%.3f maxrel=%.1e\n",
             (long long)M, (long long)K, (long long)N, op_names[op], threads[ti], flops / nnc_s * 1e-9,
             flops / blas_s * 1e-9, blas_s / nnc_s, maxrel);
      fflush(stdout);
      if (!(maxrel < 1e-4)) die("nnc's %s kernel disagrees with sgemm", op_names[op]);
    }
    rt_pool_destroy(pool);
  }
  free(t);
  free(ref);
  for (uint32_t b = 0; b < p->nbufs; b++) free(mem[b]);
  free(mem);
  dlclose(h);
  kprog_free(p);
  ir_module_free(m);
}

/* ---- command line ----------------------------------------------------------------- */

/* "1,2" -> {1, 2}: thread counts from 1 to 256. */
static int parse_list(const char *arg, int *out, int max) {
  const char *s = arg;
  int n = 0;
  while (n < max) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < 1 || v > 256 || (*end && *end != ',')) die("bad thread list '%s'", arg);
    out[n++] = (int)v;
    if (!*end) break;
    s = end + 1;
  }
  return n;
}

static void parse_shape(const char *arg, int64_t *mkn) {
  const char *s = arg;
  char *end;
  for (int i = 0; i < 3; i++) {
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 1 || v > 65536) die("bad shape '%s' (expected S or MxKxN)", arg);
    mkn[i] = v;
    if (i == 0 && *end == 0) {
      mkn[1] = mkn[2] = v;
      return;
    }
    if (i < 2 && *end != 'x') die("bad shape '%s' (expected S or MxKxN)", arg);
    s = end + 1;
  }
  if (*end) die("bad shape '%s' (expected S or MxKxN)", arg);
}

int main(int argc, char **argv) {
  int threads[16] = {1, 2}, nthreads = 2, runs = 5;
  const char *shapes[64];
  int nshapes = 0;
  for (int i = 1; i < argc; i++) {
    if (!strncmp(argv[i], "--threads=", 10)) {
      nthreads = parse_list(argv[i] + 10, threads, 16);
    } else if (!strncmp(argv[i], "--runs=", 7)) {
      runs = atoi(argv[i] + 7);
      if (runs < 1 || runs > 1000) die("bad run count '%s'", argv[i] + 7);
    } else if (!strncmp(argv[i], "--schedule=", 11)) {
      schedule = argv[i] + 11;
    } else if (!strcmp(argv[i], "--kernels")) {
      print_kernels = true;
    } else if (!strncmp(argv[i], "--asm=", 6)) {
      asm_path = argv[i] + 6;
    } else if (!strcmp(argv[i], "--help")) {
      printf("usage: matmul [--threads=1,2] [--runs=5] [--schedule=SPEC] [--kernels] [--asm=FILE] [S | MxKxN ...]\n");
      return 0;
    } else if (argv[i][0] == '-') {
      die("unknown option '%s'", argv[i]);
    } else if (nshapes < 64) {
      shapes[nshapes++] = argv[i];
    }
  }
  static const char *const defaults[] = {"256", "512", "1024", "2048"};
  if (!nshapes)
    for (; nshapes < 4; nshapes++) shapes[nshapes] = defaults[nshapes];
  diag_init(&nnc_diag);

  char dir[] = "/tmp/nnc-matmul-XXXXXX";
  if (!mkdtemp(dir)) die("cannot create a temporary directory%s", "");
  for (int s = 0; s < nshapes; s++) {
    int64_t mkn[3];
    parse_shape(shapes[s], mkn);
    bench_shape(mkn[0], mkn[1], mkn[2], threads, nthreads, runs, dir);
  }
  char path[600];
  snprintf(path, sizeof path, "%s/kernels.o", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/kernels.so", dir);
  unlink(path);
  rmdir(dir);
  return 0;
}
