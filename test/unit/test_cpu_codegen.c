/* test/unit/test_cpu_codegen.c - the CPU backend (codegen/cpu) and the
 * trainer descriptor (codegen/descriptor.c).
 *
 * Kernel programs are built by hand with the kernel IR builder, compiled
 * with the backend and run in-process through LLVM's ORC LLJIT, at -O0 and
 * -O2, on arrays whose results are worked out here with the interpreter's
 * semantics (codegen/interp/interp.c): an elementwise kernel over a batched
 * buffer (also split into [begin, end) slices), reductions through
 * temporaries, a matmul triple loop, guarded loads, argmax/onehot/index
 * patterns that mix i32 data with i64 indices, run-time scalars and B, a
 * body that is not one loop, and every elementwise op in f32 and i32 with
 * NaN, infinities, zero divisors and the int32 edges.  Then the output
 * forms: textual IR (the ABI signature, vector types, loop metadata),
 * assembly and an ELF object.  Last, the descriptor: it must compile with
 * cc against the build tree's include/nnrt, embed awkward strings byte for
 * byte, and link with the kernel object and a stub rt_trainer_main that
 * runs the train plan through the native table.  Exits 1 on failure.
 */
#include "codegen/cpu/cpu.h"
#include "codegen/descriptor.h"
#include "runtime/model.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

/* NaN matches NaN, infinities match exactly, others within tol relative. */
static bool near(double got, double want, double tol) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  return fabs(got - want) <= tol * fmax(1, fabs(want));
}

/* ---- building programs --------------------------------------------------------------- */

static Module *M;
static KProgram *P;

static void program(void) {
  if (P) kprog_free(P);
  P = kprog_new(M);
}

static int32_t buffer(const char *name, KBufKind kind, DType dt, bool batched, int rank, int64_t d0, int64_t d1) {
  int64_t dims[2] = {d0, d1};
  KBuffer b;
  memset(&b, 0, sizeof b);
  b.name = name;
  b.kind = kind;
  b.type = type_make(dt, rank, dims, batched);
  b.slot = -1;
  return kprog_add_buffer(P, b);
}

static KExpr *V(int32_t v) { return kexpr_var(P, v); }
static KExpr *F(double v) { return kexpr_const(P, DT_F32, v); }
static KExpr *I(int64_t v) { return kexpr_index_const(P, v); }
static KExpr *OP(Op op, DType dt, KExpr *a, KExpr *b, KExpr *c) { return kexpr_op(P, op, dt, a, b, c); }
static KExpr *LD(int32_t buf, int n, KExpr *i0, KExpr *i1) {
  KExpr *idx[2] = {i0, i1};
  return kexpr_load(P, buf, idx, n);
}
static KStmt *ST(int32_t buf, int n, KExpr *i0, KExpr *i1, KExpr *v) {
  KExpr *idx[2] = {i0, i1};
  return kstmt_store(P, buf, idx, n, v);
}
static void in_kernel(Kernel *k, KStmt *s) { kstmt_append(&k->body, &k->nbody, &k->capbody, s); }
static void in_loop(KStmt *l, KStmt *s) { kstmt_append(&l->body, &l->nbody, &l->capbody, s); }
static void uses(Kernel *k, const int32_t *bufs, int n) {
  for (int i = 0; i < n; i++) kernel_use_buffer(P, k, bufs[i]);
}

/* ---- compiling and calling ---------------------------------------------------------------- */

static LLVMOrcLLJITRef J;

/* LLVM warnings (a vectorisation hint it could not honour) fail the test. */
static void on_diagnostic(LLVMDiagnosticInfoRef di, void *unused) {
  (void)unused;
  if (LLVMGetDiagInfoSeverity(di) == LLVMDSRemark || LLVMGetDiagInfoSeverity(di) == LLVMDSNote) return;
  char *msg = LLVMGetDiagInfoDescription(di);
  CHECK(false, "LLVM diagnostic: %s", msg);
  LLVMDisposeMessage(msg);
}

static void jit_check(LLVMErrorRef e, const char *what) {
  if (!e) return;
  char *msg = LLVMGetErrorMessage(e);
  printf("FATAL: %s: %s\n", what, msg);
  LLVMDisposeErrorMessage(msg);
  exit(1);
}

/* Compiles P at -O`opt` into a fresh JIT. */
static void jit(int opt) {
  CpuOptions co = {.opt_level = opt, .cpu = NULL};
  LLVMTargetMachineRef tm = cpu_target_machine(&co); /* also initialises the native target */
  if (J) jit_check(LLVMOrcDisposeLLJIT(J), "dispose");
  jit_check(LLVMOrcCreateLLJIT(&J, NULL), "create LLJIT");
  LLVMOrcDefinitionGeneratorRef gen;
  jit_check(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(J), NULL, NULL),
            "process symbols");
  LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(J), gen);
  LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
  LLVMContextSetDiagnosticHandler(LLVMOrcThreadSafeContextGetContext(tsc), on_diagnostic, NULL);
  LLVMModuleRef mod = cpu_emit_module(P, LLVMOrcThreadSafeContextGetContext(tsc), NULL, 0);
  char *msg = NULL;
  if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
    printf("FATAL: invalid module: %s\n", msg);
    exit(1);
  }
  LLVMDisposeMessage(msg);
  cpu_prepare_module(mod, tm);
  LLVMSetDataLayout(mod, LLVMOrcLLJITGetDataLayoutStr(J));
  if (!cpu_optimize(mod, tm, opt, NULL)) exit(1);
  LLVMDisposeTargetMachine(tm);
  if (getenv("NNC_TEST_DUMP")) { /* NNC_TEST_DUMP=DIR: the optimised IR of every program */
    static int seq;
    char path[600];
    snprintf(path, sizeof path, "%.500s/p%02d-O%d.ll", getenv("NNC_TEST_DUMP"), seq++, opt);
    LLVMPrintModuleToFile(mod, path, NULL);
  }
  jit_check(LLVMOrcLLJITAddLLVMIRModule(J, LLVMOrcLLJITGetMainJITDylib(J), LLVMOrcCreateNewThreadSafeModule(mod, tsc)),
            "add module");
  LLVMOrcDisposeThreadSafeContext(tsc);
}

static RtModelKernel fn(const char *name) {
  LLVMOrcExecutorAddress a = 0;
  jit_check(LLVMOrcLLJITLookup(J, &a, name), name);
  return (RtModelKernel)(uintptr_t)a;
}

/* Calls kernel `name` with buffers bufs[0..n) and batch size B over [begin, end). */
static void call(const char *name, void **bufs, int n, int64_t B, int64_t begin, int64_t end) {
  void *argv[16];
  for (int i = 0; i < n; i++) argv[i] = &bufs[i];
  argv[n] = &B;
  fn(name)(argv, begin, end);
}

/* 64-byte aligned, as the runtime allocates (cpu.h relies on it). */
static void *alloc(size_t bytes) {
  void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
  memset(p, 0, (bytes + 63) / 64 * 64);
  return p;
}

/* ---- kernels ----------------------------------------------------------------------------- */

/* y[b, j] = max(x[b, j] * w[j] + 0.5, 0) over a batch; full and sliced. */
static void test_elementwise(int opt) {
  enum { N = 19, BATCH = 7 };
  program();
  int32_t x = buffer("x", KB_INPUT, DT_F32, true, 1, N, 0), w = buffer("w", KB_PARAM, DT_F32, false, 1, N, 0);
  int32_t y = buffer("y", KB_TEMP, DT_F32, true, 1, N, 0);
  Kernel *k = kprog_add_kernel(P, "relu");
  uses(k, (int32_t[]){x, w, y}, 3);
  int32_t b = kernel_new_var(k), j = kernel_new_var(k);
  KStmt *lb = kstmt_loop(P, b, 1, true, KL_PARALLEL), *lj = kstmt_loop(P, j, N, false, KL_PARALLEL);
  in_kernel(k, lb);
  in_loop(lb, lj);
  KExpr *v = OP(OP_ADD, DT_F32, OP(OP_MUL, DT_F32, LD(x, 2, V(b), V(j)), LD(w, 1, V(j), NULL), NULL), F(0.5), NULL);
  in_loop(lj, ST(y, 2, V(b), V(j), OP(OP_MAX, DT_F32, v, F(0), NULL)));
  jit(opt);

  float *xs = alloc(sizeof(float) * N * BATCH), *ws = alloc(sizeof(float) * N), *ys = alloc(sizeof(float) * N * BATCH);
  for (int i = 0; i < N * BATCH; i++) xs[i] = (float)((i * 37 % 23) - 11) * 0.25f;
  for (int i = 0; i < N; i++) ws[i] = (float)(i % 5) - 1.5f;
  void *bufs[3] = {xs, ws, ys};
  call("k0_relu", bufs, 3, BATCH, 0, BATCH);
  int bad = 0;
  for (int s = 0; s < BATCH; s++)
    for (int i = 0; i < N; i++) bad += ys[s * N + i] != fmaxf(xs[s * N + i] * ws[i] + 0.5f, 0);
  CHECK(!bad, "-O%d: %d wrong elements", opt, bad);
  /* Slices: [2, 5) touches only samples 2..4. */
  memset(ys, 0, sizeof(float) * N * BATCH);
  call("k0_relu", bufs, 3, BATCH, 2, 5);
  bad = 0;
  for (int s = 0; s < BATCH; s++)
    for (int i = 0; i < N; i++) {
      float want = s >= 2 && s < 5 ? fmaxf(xs[s * N + i] * ws[i] + 0.5f, 0) : 0;
      bad += ys[s * N + i] != want;
    }
  CHECK(!bad, "-O%d: slice [2,5): %d wrong elements", opt, bad);
  call("k0_relu", bufs, 3, BATCH, 3, 3); /* empty slice: nothing */
  free(xs), free(ws), free(ys);
}

/* Per sample: sum of squares and the maximum, through temporaries. */
static void test_reduction(int opt) {
  enum { N = 45, BATCH = 5 };
  program();
  int32_t x = buffer("x", KB_INPUT, DT_F32, true, 1, N, 0), s = buffer("s", KB_LOSS, DT_F32, true, 0, 0, 0);
  int32_t mx = buffer("mx", KB_TEMP, DT_F32, true, 0, 0, 0);
  Kernel *k = kprog_add_kernel(P, "reduce");
  uses(k, (int32_t[]){x, s, mx}, 3);
  int32_t b = kernel_new_var(k), j = kernel_new_var(k);
  int32_t acc = kernel_new_temp(P, k, DT_F32), best = kernel_new_temp(P, k, DT_F32);
  KStmt *lb = kstmt_loop(P, b, 1, true, KL_PARALLEL), *lj = kstmt_loop(P, j, N, false, KL_REDUCE);
  in_kernel(k, lb);
  in_loop(lb, kstmt_let(P, acc, F(0)));
  in_loop(lb, kstmt_let(P, best, F(-INFINITY)));
  in_loop(lb, lj);
  KExpr *xv = LD(x, 2, V(b), V(j));
  in_loop(lj, kstmt_assign(P, acc, OP(OP_ADD, DT_F32, kexpr_temp(P, acc, DT_F32), OP(OP_MUL, DT_F32, xv, xv, NULL), NULL)));
  in_loop(lj, kstmt_assign(P, best, OP(OP_MAX, DT_F32, kexpr_temp(P, best, DT_F32), xv, NULL)));
  in_loop(lb, ST(s, 1, V(b), NULL, kexpr_temp(P, acc, DT_F32)));
  in_loop(lb, ST(mx, 1, V(b), NULL, kexpr_temp(P, best, DT_F32)));
  jit(opt);

  float *xs = alloc(sizeof(float) * N * BATCH), *ss = alloc(sizeof(float) * BATCH), *ms = alloc(sizeof(float) * BATCH);
  for (int i = 0; i < N * BATCH; i++) xs[i] = sinf((float)i) * 3;
  xs[3 * N + 17] = NAN; /* sample 3: the max is NaN (it propagates), and so is the sum */
  void *bufs[3] = {xs, ss, ms};
  call("k0_reduce", bufs, 3, BATCH, 0, BATCH);
  for (int smp = 0; smp < BATCH; smp++) {
    double sum = 0, m = -INFINITY;
    for (int i = 0; i < N; i++) {
      double v = xs[smp * N + i];
      sum += v * v;
      m = isnan(m) ? m : isnan(v) ? v : v >= m ? v : m;
    }
    CHECK(near(ss[smp], sum, 1e-5), "-O%d sample %d: sum %g, want %g", opt, smp, ss[smp], sum);
    CHECK(near(ms[smp], m, 0), "-O%d sample %d: max %g, want %g", opt, smp, ms[smp], m);
  }
  free(xs), free(ss), free(ms);
}

/* out[b, m] = sum_k x[b, k] * w[k, m] + bias[m]. */
static void test_matmul(int opt) {
  enum { K = 67, NM = 13, BATCH = 9 };
  program();
  int32_t x = buffer("x", KB_INPUT, DT_F32, true, 1, K, 0), w = buffer("w", KB_PARAM, DT_F32, false, 2, K, NM);
  int32_t bias = buffer("bias", KB_PARAM, DT_F32, false, 1, NM, 0), out = buffer("out", KB_TEMP, DT_F32, true, 1, NM, 0);
  Kernel *k = kprog_add_kernel(P, "matmul");
  uses(k, (int32_t[]){x, w, bias, out}, 4);
  int32_t b = kernel_new_var(k), m = kernel_new_var(k), kk = kernel_new_var(k), acc = kernel_new_temp(P, k, DT_F32);
  KStmt *lb = kstmt_loop(P, b, 1, true, KL_PARALLEL), *lm = kstmt_loop(P, m, NM, false, KL_PARALLEL);
  KStmt *lk = kstmt_loop(P, kk, K, false, KL_REDUCE);
  in_kernel(k, lb);
  in_loop(lb, lm);
  in_loop(lm, kstmt_let(P, acc, LD(bias, 1, V(m), NULL)));
  in_loop(lm, lk);
  in_loop(lk, kstmt_assign(P, acc, OP(OP_ADD, DT_F32, kexpr_temp(P, acc, DT_F32),
                                     OP(OP_MUL, DT_F32, LD(x, 2, V(b), V(kk)), LD(w, 2, V(kk), V(m)), NULL), NULL)));
  in_loop(lm, ST(out, 2, V(b), V(m), kexpr_temp(P, acc, DT_F32)));
  jit(opt);

  float *xs = alloc(sizeof(float) * K * BATCH), *ws = alloc(sizeof(float) * K * NM), *bs = alloc(sizeof(float) * NM);
  float *os = alloc(sizeof(float) * NM * BATCH);
  for (int i = 0; i < K * BATCH; i++) xs[i] = cosf((float)i * 0.3f);
  for (int i = 0; i < K * NM; i++) ws[i] = sinf((float)i * 0.7f) * 0.1f;
  for (int i = 0; i < NM; i++) bs[i] = (float)i * 0.01f;
  void *bufs[4] = {xs, ws, bs, os};
  call("k0_matmul", bufs, 4, BATCH, 0, 4); /* two slices, as two threads would */
  call("k0_matmul", bufs, 4, BATCH, 4, BATCH);
  double maxdiff = 0;
  for (int s = 0; s < BATCH; s++)
    for (int j = 0; j < NM; j++) {
      double want = bs[j];
      for (int i = 0; i < K; i++) want += (double)xs[s * K + i] * ws[i * NM + j];
      maxdiff = fmax(maxdiff, fabs(os[s * NM + j] - want) / fmax(1, fabs(want)));
    }
  CHECK(maxdiff < 1e-4, "-O%d: maxdiff = %g", opt, maxdiff);
  free(xs), free(ws), free(bs), free(os);
}

/* y[b, i] = x[b, i-1] + x[b, i] + x[b, i+1] with zero padding (guarded loads),
 * and z[i] = v[i - 2] over an unbatched buffer. */
static void test_guarded(int opt) {
  enum { N = 21, BATCH = 3 };
  program();
  int32_t x = buffer("x", KB_INPUT, DT_F32, true, 1, N, 0), y = buffer("y", KB_TEMP, DT_F32, true, 1, N, 0);
  Kernel *k = kprog_add_kernel(P, "pad");
  uses(k, (int32_t[]){x, y}, 2);
  int32_t b = kernel_new_var(k), i = kernel_new_var(k);
  KStmt *lb = kstmt_loop(P, b, 1, true, KL_PARALLEL), *li = kstmt_loop(P, i, N, false, KL_PARALLEL);
  in_kernel(k, lb);
  in_loop(lb, li);
  KExpr *l = LD(x, 2, V(b), kexpr_iadd(P, V(i), I(-1))), *r = LD(x, 2, V(b), kexpr_iadd(P, V(i), I(1)));
  l->guarded = r->guarded = true;
  in_loop(li, ST(y, 2, V(b), V(i), OP(OP_ADD, DT_F32, OP(OP_ADD, DT_F32, l, LD(x, 2, V(b), V(i)), NULL), r, NULL)));
  jit(opt);
  float *xs = alloc(sizeof(float) * N * BATCH), *ys = alloc(sizeof(float) * N * BATCH);
  for (int j = 0; j < N * BATCH; j++) xs[j] = (float)(j + 1);
  void *bufs[2] = {xs, ys};
  call("k0_pad", bufs, 2, BATCH, 0, BATCH);
  int bad = 0;
  for (int s = 0; s < BATCH; s++)
    for (int j = 0; j < N; j++) {
      float want = xs[s * N + j] + (j > 0 ? xs[s * N + j - 1] : 0) + (j + 1 < N ? xs[s * N + j + 1] : 0);
      bad += ys[s * N + j] != want;
    }
  CHECK(!bad, "-O%d: %d wrong padded sums", opt, bad);
  free(xs), free(ys);
}

/* argmax over the last axis (i32 from the loop variable), onehot of an i32
 * label (compare an i64 index with i32 data), index w[label] (an i32 used
 * as an index), an optimizer-style in-place update with run-time scalars,
 * and a mean over the batch with B cast to f32. */
static void test_mixed(int opt) {
  enum { N = 10, BATCH = 6 };
  program();
  int32_t x = buffer("x", KB_INPUT, DT_F32, true, 1, N, 0), y = buffer("y", KB_LABEL, DT_I32, true, 0, 0, 0);
  int32_t am = buffer("am", KB_TEMP, DT_I32, true, 0, 0, 0), oh = buffer("oh", KB_TEMP, DT_F32, true, 1, N, 0);
  int32_t w = buffer("w", KB_PARAM, DT_F32, false, 1, N, 0), wy = buffer("wy", KB_TEMP, DT_F32, true, 0, 0, 0);
  int32_t sc = buffer("scalars", KB_SCALARS, DT_F32, false, 1, 3, 0), mean = buffer("mean", KB_TEMP, DT_F32, false, 0, 0, 0);
  P->scalars = sc;

  Kernel *k = kprog_add_kernel(P, "argmax");
  uses(k, (int32_t[]){x, am}, 2);
  int32_t b = kernel_new_var(k), j = kernel_new_var(k);
  int32_t best = kernel_new_temp(P, k, DT_F32), bi = kernel_new_temp(P, k, DT_I32);
  KStmt *lb = kstmt_loop(P, b, 1, true, KL_PARALLEL), *lj = kstmt_loop(P, j, N, false, KL_REDUCE);
  in_kernel(k, lb);
  in_loop(lb, kstmt_let(P, best, F(-INFINITY)));
  in_loop(lb, kstmt_let(P, bi, kexpr_const(P, DT_I32, 0)));
  in_loop(lb, lj);
  KExpr *gt = OP(OP_GT, DT_F32, LD(x, 2, V(b), V(j)), kexpr_temp(P, best, DT_F32), NULL);
  in_loop(lj, kstmt_assign(P, bi, OP(OP_WHERE, DT_I32, gt, V(j), kexpr_temp(P, bi, DT_I32))));
  in_loop(lj, kstmt_assign(P, best, OP(OP_MAX, DT_F32, LD(x, 2, V(b), V(j)), kexpr_temp(P, best, DT_F32), NULL)));
  in_loop(lb, ST(am, 1, V(b), NULL, kexpr_temp(P, bi, DT_I32)));

  k = kprog_add_kernel(P, "onehot_index");
  uses(k, (int32_t[]){y, oh, w, wy}, 4);
  b = kernel_new_var(k), j = kernel_new_var(k);
  lb = kstmt_loop(P, b, 1, true, KL_PARALLEL), lj = kstmt_loop(P, j, N, false, KL_PARALLEL);
  in_kernel(k, lb);
  in_loop(lb, lj);
  in_loop(lj, ST(oh, 2, V(b), V(j), OP(OP_EQ, DT_F32, V(j), LD(y, 1, V(b), NULL), NULL)));
  in_loop(lb, ST(wy, 1, V(b), NULL, LD(w, 1, LD(y, 1, V(b), NULL), NULL)));

  k = kprog_add_kernel(P, "update"); /* w[j] -= scalars[2] * scalars[0] (hyper 0 times the step) */
  uses(k, (int32_t[]){w, sc, wy, mean}, 4);
  j = kernel_new_var(k);
  lj = kstmt_loop(P, j, N, false, KL_PARALLEL);
  in_kernel(k, lj);
  in_loop(lj, ST(w, 1, V(j), NULL,
                 OP(OP_SUB, DT_F32, LD(w, 1, V(j), NULL),
                    OP(OP_MUL, DT_F32, kexpr_scalar(P, KSCALAR_HYPER0), kexpr_scalar(P, KSCALAR_STEP), NULL), NULL)));

  k = kprog_add_kernel(P, "mean"); /* not one loop: let, loop, store -> runs once */
  uses(k, (int32_t[]){wy, mean}, 2);
  b = kernel_new_var(k);
  int32_t acc = kernel_new_temp(P, k, DT_F32);
  in_kernel(k, kstmt_let(P, acc, F(0)));
  lb = kstmt_loop(P, b, 1, true, KL_REDUCE);
  in_kernel(k, lb);
  in_loop(lb, kstmt_assign(P, acc, OP(OP_ADD, DT_F32, kexpr_temp(P, acc, DT_F32), LD(wy, 1, V(b), NULL), NULL)));
  in_kernel(k, ST(mean, 0, NULL, NULL,
                  OP(OP_DIV, DT_F32, kexpr_temp(P, acc, DT_F32), OP(OP_CAST, DT_F32, kexpr_batch(P), NULL, NULL), NULL)));
  jit(opt);

  float *xs = alloc(sizeof(float) * N * BATCH), *ohs = alloc(sizeof(float) * N * BATCH), *ws = alloc(sizeof(float) * N);
  int32_t *ys = alloc(sizeof(int32_t) * BATCH), *ams = alloc(sizeof(int32_t) * BATCH);
  float *wys = alloc(sizeof(float) * BATCH), *scs = alloc(sizeof(float) * 3), *means = alloc(sizeof(float));
  for (int i = 0; i < N * BATCH; i++) xs[i] = (float)((i * 7919) % 31);
  for (int s = 0; s < BATCH; s++) ys[s] = (s * 3) % N;
  for (int i = 0; i < N; i++) ws[i] = (float)i * 2;
  scs[0] = 3, scs[1] = BATCH, scs[2] = 0.5f;
  void *b1[2] = {xs, ams}, *b2[4] = {ys, ohs, ws, wys}, *b3[4] = {ws, scs, wys, means}, *b4[2] = {wys, means};
  call("k0_argmax", b1, 2, BATCH, 0, BATCH);
  call("k1_onehot_index", b2, 4, BATCH, 0, BATCH);
  for (int s = 0; s < BATCH; s++) {
    int want = 0;
    for (int i = 1; i < N; i++)
      if (xs[s * N + i] > xs[s * N + want]) want = i;
    CHECK(ams[s] == want, "-O%d argmax sample %d: %d, want %d", opt, s, ams[s], want);
    for (int i = 0; i < N; i++) CHECK(ohs[s * N + i] == (i == ys[s]), "-O%d onehot %d,%d", opt, s, i);
    CHECK(wys[s] == ws[ys[s]], "-O%d index sample %d: %g", opt, s, wys[s]);
  }
  call("k3_mean", b4, 2, BATCH, 1, 2); /* a slice without 0: the body does not run */
  CHECK(means[0] == 0, "-O%d mean ran outside the slice holding 0", opt);
  call("k3_mean", b4, 2, BATCH, 0, 1);
  double want = 0;
  for (int s = 0; s < BATCH; s++) want += wys[s];
  CHECK(near(means[0], want / BATCH, 1e-6), "-O%d mean %g, want %g", opt, means[0], want / BATCH);
  call("k2_update", b3, 4, BATCH, 0, N);
  for (int i = 0; i < N; i++) CHECK(ws[i] == (float)i * 2 - 1.5f, "-O%d update w[%d] = %g", opt, i, ws[i]);
  free(xs), free(ohs), free(ws), free(ys), free(ams), free(wys), free(scs), free(means);
}

/* ---- every elementwise op --------------------------------------------------------------------- */

#define NV 37 /* not a multiple of any vector width: vector body and scalar tail */

static const float fa[] = {-2.5f, -1, -0.0f, 0, 0.5f, 1, 3.7f, 100, NAN, INFINITY, -INFINITY, 1e-3f, 7, -7, 2, 0.25f,
                           3e9f, -3e9f, -2.7f, 2.7f};
static const float fb[] = {1, 2, 0, -3, NAN, 0.5f, -1.5f, 3, 1, 2, 1, 4, 2, -2, 0, -1, 1, 1, NAN, 0};
static const int32_t ia[] = {7, -7, 0, INT32_MAX, INT32_MIN, 5, -1, 100, 3, -3, 1, 2, 1 << 20, -(1 << 20), 42, 9, INT32_MIN};
static const int32_t ib[] = {2, 2, 5, 1, -1, 0, -1, -7, 3, 0, -1, INT32_MIN, 1 << 12, 1 << 12, -42, 4, 1};

/* ir/ops.def's scalar semantics (compiled code's: i32 division by zero = 0). */
static double ref(Op op, bool i32, double a, double b, double c) { return op_eval(op, i32 ? DT_I32 : DT_F32, a, b, c); }

/* One kernel per op and dtype: out[i] = op(a[i], b[i], c[i]); f32 ops read
 * fa/fb/fc, i32 ops ia/ib (where: the condition from fa). */
static void test_all_ops(int opt) {
  program();
  int32_t a = buffer("a", KB_PARAM, DT_F32, false, 1, NV, 0), b = buffer("b", KB_PARAM, DT_F32, false, 1, NV, 0);
  int32_t c = buffer("c", KB_PARAM, DT_F32, false, 1, NV, 0);
  int32_t ai = buffer("ai", KB_PARAM, DT_I32, false, 1, NV, 0), bi = buffer("bi", KB_PARAM, DT_I32, false, 1, NV, 0);
  int32_t outf = buffer("outf", KB_TEMP, DT_F32, false, 1, NV, 0), outi = buffer("outi", KB_TEMP, DT_I32, false, 1, NV, 0);
  typedef struct Case {
    Op op;
    bool i32;      /* operands i32 */
    char name[40];
  } Case;
  Case cases[2 * OP_COUNT + 4];
  int n = 0;
  for (int op = 0; op < OP_COUNT; op++) {
    unsigned fl = ir_ops[op].flags;
    if (!(fl & OPF_ELEMWISE) || op == OP_CAST) continue;
    if (op == OP_RANDOM) { /* integer operands only: random(ai, bi, the element's index) */
      cases[n].op = (Op)op, cases[n].i32 = true, n++;
      continue;
    }
    cases[n].op = (Op)op, cases[n].i32 = false, n++;
    if (!(fl & OPF_FLOAT)) cases[n].op = (Op)op, cases[n].i32 = true, n++;
  }
  int first_cast = n;
  cases[n].op = OP_CAST, cases[n].i32 = false, n++; /* f32 -> i32 */
  cases[n].op = OP_CAST, cases[n].i32 = true, n++;  /* i32 -> f32 */
  for (int q = 0; q < n; q++) {
    Case *cs = &cases[q];
    snprintf(cs->name, sizeof cs->name, "%s_%s", ir_ops[cs->op].name, cs->i32 ? "i32" : "f32");
    Kernel *k = kprog_add_kernel(P, cs->name);
    snprintf(cs->name, sizeof cs->name, "%s", k->name);
    DType dt = cs->i32 ? DT_I32 : DT_F32;
    bool cast = cs->op == OP_CAST;
    bool f32_out = (ir_ops[cs->op].flags & OPF_CMP) || (cast && cs->i32) || (!cast && !cs->i32) || cs->op == OP_RANDOM;
    int32_t x = cs->i32 ? ai : a, y = cs->i32 ? bi : b, out = f32_out ? outf : outi;
    int32_t v = kernel_new_var(k);
    KStmt *l = kstmt_loop(P, v, NV, false, KL_PARALLEL);
    in_kernel(k, l);
    KExpr *e;
    if (cs->op == OP_WHERE) {
      uses(k, (int32_t[]){a, x, y, out}, 4);
      e = OP(OP_WHERE, dt, LD(a, 1, V(v), NULL), LD(x, 1, V(v), NULL), LD(y, 1, V(v), NULL));
    } else if (cs->op == OP_RANDOM) {
      uses(k, (int32_t[]){x, y, out}, 3);
      e = OP(OP_RANDOM, DT_F32, LD(x, 1, V(v), NULL), LD(y, 1, V(v), NULL), V(v));
    } else {
      uses(k, (int32_t[]){x, y, out}, 3);
      DType rdt = f32_out ? DT_F32 : DT_I32;
      e = OP(cs->op, rdt, LD(x, 1, V(v), NULL), ir_ops[cs->op].arity > 1 ? LD(y, 1, V(v), NULL) : NULL, NULL);
    }
    in_loop(l, ST(out, 1, V(v), NULL, e));
    (void)c;
  }
  jit(opt);

  float *A = alloc(4 * NV), *Bf = alloc(4 * NV), *Cf = alloc(4 * NV), *OF = alloc(4 * NV);
  int32_t *AI = alloc(4 * NV), *BI = alloc(4 * NV), *OI = alloc(4 * NV);
  for (int i = 0; i < NV; i++) {
    A[i] = fa[i % (sizeof fa / sizeof *fa)];
    Bf[i] = fb[(i * 3) % (sizeof fb / sizeof *fb)];
    Cf[i] = (float)i;
    AI[i] = ia[i % (sizeof ia / sizeof *ia)];
    BI[i] = ib[(i * 5) % (sizeof ib / sizeof *ib)];
  }
  for (int q = 0; q < n; q++) {
    const Case *cs = &cases[q];
    Kernel *k = NULL;
    for (uint32_t i = 0; i < P->nkernels; i++)
      if (!strcmp(P->kernels[i].name, cs->name)) k = &P->kernels[i];
    void *bufs[4];
    for (uint32_t i = 0; i < k->nargs; i++) {
      int32_t id = k->args[i];
      bufs[i] = id == a ? (void *)A : id == b ? (void *)Bf : id == ai ? (void *)AI : id == bi ? (void *)BI
              : id == outf ? (void *)OF : (void *)OI;
    }
    memset(OF, 0x55, 4 * NV), memset(OI, 0x55, 4 * NV);
    call(cs->name, bufs, (int)k->nargs, 1, 0, NV);
    int bad = 0;
    for (int i = 0; i < NV && bad < 3; i++) {
      double want, got;
      if (q >= first_cast) {
        if (cs->i32) {
          want = (float)op_eval(OP_CAST, DT_F32, AI[i], 0, 0), got = OF[i];
        } else {
          want = op_eval(OP_CAST, DT_I32, A[i], 0, 0), got = OI[i];
        }
      } else if (cs->op == OP_WHERE) {
        want = cs->i32 ? ref(OP_WHERE, true, A[i], AI[i], BI[i]) : ref(OP_WHERE, false, A[i], A[i], Bf[i]);
        got = cs->i32 ? OI[i] : OF[i];
      } else if (cs->op == OP_RANDOM) {
        want = ref(OP_RANDOM, false, AI[i], BI[i], i), got = OF[i];
      } else {
        double x = cs->i32 ? (double)AI[i] : (double)A[i], y = cs->i32 ? (double)BI[i] : (double)Bf[i];
        want = ref(cs->op, cs->i32, x, y, 0);
        if (!cs->i32) want = (float)want; /* the interpreter rounds f32 results */
        got = (ir_ops[cs->op].flags & OPF_CMP) || !cs->i32 ? OF[i] : OI[i];
      }
      if (!near(got, want, 1e-5)) {
        bad++;
        CHECK(false, "-O%d %s element %d: got %.9g, want %.9g", opt, cs->name, i, got, want);
      }
    }
    checks++;
  }
  (void)Cf;
  free(A), free(Bf), free(Cf), free(OF), free(AI), free(BI), free(OI);
}

/* ---- output forms ------------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  size_t got = fread(s, 1, (size_t)n, f);
  s[got] = 0;
  fclose(f);
  if (len) *len = got;
  return s;
}

static char tmpdir[256];

/* The elementwise program of test_elementwise, written as kind at -O2. */
static char *compile_to(CpuOutKind kind, int opt, const char *file, size_t *len) {
  char path[400];
  snprintf(path, sizeof path, "%s/%s", tmpdir, file);
  CpuOptions co = {.opt_level = opt, .cpu = NULL};
  CHECK(cpu_compile(P, &co, kind, path), "cpu_compile %s", file);
  return slurp(path, len);
}

static void test_outputs(void) {
  test_elementwise(2); /* leaves P = the relu program */
  char *ir = compile_to(CPU_OUT_LLVM, 2, "k.ll", NULL);
  CHECK(ir && strstr(ir, "define void @k0_relu(ptr nocapture readonly %args, i64 %begin, i64 %end)"),
        "no ABI signature in:\n%s", ir ? ir : "");
  CHECK(ir && (strstr(ir, "<8 x float>") || strstr(ir, "<16 x float>")), "not vectorised:\n%s", ir ? ir : "");
  CHECK(ir && strstr(ir, "\"target-cpu\""), "no target-cpu attribute");
  CHECK(ir && !strstr(ir, "@k0_relu.body("), "the body function was not inlined");
  free(ir);
  ir = compile_to(CPU_OUT_LLVM, 0, "k0.ll", NULL);
  CHECK(ir && strstr(ir, "llvm.loop.vectorize.enable"), "no loop metadata at -O0");
  CHECK(ir && strstr(ir, "noalias"), "no noalias at -O0");
  free(ir);
  char *as = compile_to(CPU_OUT_ASM, 2, "k.s", NULL);
  CHECK(as && (strstr(as, "vmulps") || strstr(as, "vfmadd")), "no vector multiply in the assembly");
  CHECK(as && strstr(as, "k0_relu:"), "no kernel label in the assembly");
  free(as);
  size_t n = 0;
  char *obj = compile_to(CPU_OUT_OBJ, 2, "k.o", &n);
  CHECK(obj && n > 64 && !memcmp(obj, "\177ELF", 4), "not an ELF object");
  free(obj);
  CpuOptions co = {.opt_level = 2, .cpu = "x86-64-v3"};
  char path[400];
  snprintf(path, sizeof path, "%s/v3.s", tmpdir);
  CHECK(cpu_compile(P, &co, CPU_OUT_ASM, path), "--cpu=x86-64-v3");
  as = slurp(path, NULL);
  CHECK(as && strstr(as, "ymm") && !strstr(as, "zmm"), "x86-64-v3 should use ymm registers only");
  free(as);
}

/* Schedule hints: vector width 4 and unroll 1 on one loop, vectorisation
 * off (width 1) on another. */
static void test_schedule(void) {
  enum { N = 256 };
  program();
  int32_t x = buffer("x", KB_PARAM, DT_F32, false, 1, N, 0), y = buffer("y", KB_TEMP, DT_F32, false, 1, N, 0);
  for (int q = 0; q < 2; q++) {
    Kernel *k = kprog_add_kernel(P, q ? "scalar" : "vec4");
    uses(k, (int32_t[]){x, y}, 2);
    int32_t o = kernel_new_var(k), i = kernel_new_var(k);
    KStmt *lo = kstmt_loop(P, o, 1, false, 0), *li = kstmt_loop(P, i, N, false, KL_PARALLEL);
    li->sched.vector = q ? 1 : 4;
    li->sched.unroll = 1;
    in_kernel(k, lo);
    in_loop(lo, li);
    in_loop(li, ST(y, 1, V(i), NULL, OP(OP_MUL, DT_F32, LD(x, 1, V(i), NULL), F(3), NULL)));
  }
  char *ir = compile_to(CPU_OUT_LLVM, 0, "sched0.ll", NULL);
  CHECK(ir && strstr(ir, "!{!\"llvm.loop.vectorize.width\", i32 4}"), "no vector width hint");
  CHECK(ir && strstr(ir, "!{!\"llvm.loop.vectorize.enable\", i1 false}"), "no vectorize-off hint");
  CHECK(ir && strstr(ir, "!{!\"llvm.loop.unroll.disable\"}"), "no unroll hint");
  free(ir);
  ir = compile_to(CPU_OUT_LLVM, 2, "sched2.ll", NULL);
  char *scalar = ir ? strstr(ir, "define void @k1_scalar") : NULL;
  CHECK(scalar && !strstr(scalar, "x float>"), "k1_scalar was vectorised");
  if (scalar) *scalar = 0;
  CHECK(ir && strstr(ir, "<4 x float>") && !strstr(ir, "<8 x float>") && !strstr(ir, "<16 x float>"),
        "k0_vec4 should use <4 x float> only");
  free(ir);
  jit(2);
  float *xs = alloc(4 * N), *ys = alloc(4 * N);
  for (int i = 0; i < N; i++) xs[i] = (float)i;
  void *bufs[2] = {xs, ys};
  call("k0_vec4", bufs, 2, 1, 0, 1);
  int bad = 0;
  for (int i = 0; i < N; i++) bad += ys[i] != 3.0f * (float)i;
  memset(ys, 0, 4 * N);
  call("k1_scalar", bufs, 2, 1, 0, 1);
  for (int i = 0; i < N; i++) bad += ys[i] != 3.0f * (float)i;
  CHECK(!bad, "%d wrong elements", bad);
  free(xs), free(ys);
}

/* ---- the descriptor ------------------------------------------------------------------------ */

static char build_dir[600];

static int sh(const char *cmd) {
  int rc = system(cmd);
  if (rc) printf("command failed (%d): %s\n", rc, cmd);
  return rc;
}

/* A descriptor with awkward strings; checks it compiles and carries them. */
static void test_plan(void) {
  /* Module: params and states with initialisers, hypers, a metric, a train block. */
  int64_t dw[1] = {19};
  Symbol s;
  memset(&s, 0, sizeof s);
  s.kind = SYM_LABEL, s.name = "y", s.type = type_make(DT_I32, 0, NULL, true), s.bound = 10;
  uint32_t ysym = ir_add_symbol(M, s);
  memset(&s, 0, sizeof s);
  s.kind = SYM_PARAM, s.name = "h.w", s.type = type_make(DT_F32, 1, dw, false);
  s.init.kind = INIT_UNIFORM, s.init.a = -0.25, s.init.b = 0.5;
  uint32_t wsym = ir_add_symbol(M, s);
  memset(&s, 0, sizeof s);
  s.kind = SYM_HYPER, s.name = "lr", s.type = type_scalar(DT_F32), s.value = 0.001;
  ir_add_symbol(M, s);
  s.name = "beta\"1", s.value = 0.9;
  ir_add_symbol(M, s);
  ir_add_output(M, OUT_METRIC, "accuracy", 0, 0);
  M->name = "m\\odel";
  M->train.present = true;
  M->train.data = DATA_CSV;
  M->train.data_path = "/tmp/we\"ird\\path?\?=/x.csv";
  M->train.label = "class";
  M->train.scale = 1.0 / 255;
  M->train.batch = 32, M->train.epochs = 3, M->train.seed = 7, M->train.shuffle = true;

  test_elementwise(2); /* P: x, w, y and k0_relu */
  P->input = 0;
  P->bufs[1].kind = KB_PARAM, P->bufs[1].sym = wsym;
  int32_t lab = buffer("y", KB_LABEL, DT_I32, true, 0, 0, 0);
  P->bufs[lab].sym = ysym;
  P->label = lab;
  int32_t met = buffer("metric.accuracy", KB_METRIC, DT_F32, true, 0, 0, 0);
  P->metrics = nnc_xmalloc(sizeof(int32_t));
  P->metrics[0] = met;
  P->nmetrics = 1;
  P->bufs[2].slot = 0;
  uint32_t zero = 0;
  VEC_PUSH(P->train, P->ntrain, P->captrain, zero);
  VEC_PUSH(P->train, P->ntrain, P->captrain, zero);
  VEC_PUSH(P->eval, P->neval, P->capeval, zero);

  char desc[400], obj[400], stub[400], exe[400], cmd[8192];
  snprintf(desc, sizeof desc, "%s/model.c", tmpdir);
  snprintf(obj, sizeof obj, "%s/kernels.o", tmpdir);
  snprintf(stub, sizeof stub, "%s/stub.c", tmpdir);
  snprintf(exe, sizeof exe, "%s/train", tmpdir);
  FILE *f = fopen(desc, "w");
  DescriptorCode native = {.kind = NNC_CODE_NATIVE};
  CHECK(f && descriptor_write(P, "cpu", &native, f), "descriptor_write");
  fclose(f);
  snprintf(cmd, sizeof cmd, "cc -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I%s/include %s", build_dir, desc);
  CHECK(sh(cmd) == 0, "the cpu descriptor does not compile");

  /* Link it with the kernels and a stub runtime that runs the train plan. */
  CpuOptions co = {.opt_level = 2, .cpu = NULL};
  CHECK(cpu_compile(P, &co, CPU_OUT_OBJ, obj), "kernels.o");
  f = fopen(stub, "w");
  fputs("#include <nnrt/model.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
        "int rt_trainer_main(int argc, char **argv, const RtModelDesc *m) {\n"
        "  (void)argc, (void)argv;\n"
        "  const int64_t B = 7;\n"
        "  void *mem[16];\n"
        "  for (int i = 0; i < m->nbufs; i++) {\n"
        "    int64_t n = m->bufs[i].batched ? B : 1;\n"
        "    for (int d = 0; d < m->bufs[i].rank; d++) n *= m->bufs[i].dims[d];\n"
        "    mem[i] = aligned_alloc(64, (size_t)(n * 4 + 63) / 64 * 64);\n"
        "    for (int64_t k = 0; k < n; k++) ((float *)mem[i])[k] = (float)(k % 7) - 2;\n"
        "  }\n"
        "  for (int l = 0; l < m->ntrain; l++) {\n"
        "    const RtLaunchDesc *ld = &m->train[l];\n"
        "    void *vals[16], *argv2[17];\n"
        "    int64_t b = B;\n"
        "    for (int a = 0; a < ld->nargs; a++) vals[a] = mem[ld->args[a]], argv2[a] = &vals[a];\n"
        "    argv2[ld->nargs] = &b;\n"
        "    int64_t r = ld->range * (ld->range_batched ? B : 1);\n"
        "    m->native[ld->kernel](argv2, 0, r / 2);\n"
        "    m->native[ld->kernel](argv2, r / 2, r);\n"
        "  }\n"
        "  const float *y = mem[2];\n"
        "  double sum = 0;\n"
        "  for (int64_t k = 0; k < B * m->bufs[2].dims[0]; k++) sum += y[k];\n"
        "  printf(\"%s %s %s %d %s %s %s %g %lld %d %d %g\\n\", m->name, m->target, m->kernel_names[0],\n"
        "         m->nhypers, m->hyper_names[1], m->data_path, m->metric_names[0], m->hyper_values[0],\n"
        "         (long long)m->label_bound, m->bufs[1].init_kind, m->ntrain, sum);\n"
        "  return 0;\n"
        "}\n",
        f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "cc -O2 -o %s %s %s %s -I%s/include %s/libnnrt.a -lz -lm -lpthread -ldl", exe, desc, obj,
           stub, build_dir, build_dir);
  CHECK(sh(cmd) == 0, "linking the descriptor, the kernels and the stub failed");
  char outp[400];
  snprintf(outp, sizeof outp, "%s/out.txt", tmpdir);
  snprintf(cmd, sizeof cmd, "%s > %s", exe, outp);
  CHECK(sh(cmd) == 0, "the linked program failed");
  char *got = slurp(outp, NULL);
  /* y = relu(x * w + 0.5), launched twice (the same inputs give the same
   * y), with x[b, j] = ((19 b + j) % 7) - 2 and w[j] = (j % 7) - 2. */
  double want = 0;
  for (int smp = 0; smp < 7; smp++)
    for (int j = 0; j < 19; j++) {
      float x = (float)((smp * 19 + j) % 7) - 2, w = (float)(j % 7) - 2;
      want += fmaxf(x * w + 0.5f, 0);
    }
  char expect[600];
  snprintf(expect, sizeof expect, "m\\odel cpu k0_relu 2 beta\"1 /tmp/we\"ird\\path?\?=/x.csv accuracy 0.001 10 %d 2 %g\n",
           4 /* RT_INIT_UNIFORM */, want);
  CHECK(got && !strcmp(got, expect), "the linked program printed\n  %s instead of\n  %s", got ? got : "(nothing)", expect);
  free(got);

  /* Device code: a string with every byte value survives byte for byte. */
  char code[300];
  for (int i = 0; i < 256; i++) code[i] = (char)i;
  memcpy(code + 256, "?\?=?\?/\n\"\\", 9);
  f = fopen(desc, "w");
  DescriptorCode ptx = {NNC_CODE_PTX, code, 265, "-cl-std=CL1.2 \"q\"", false, false, false};
  CHECK(f && descriptor_write(P, "gpu", &ptx, f), "descriptor_write gpu");
  fclose(f);
  f = fopen(stub, "w");
  fputs("#include <nnrt/model.h>\n#include <stdio.h>\n#include <string.h>\n"
        "int rt_trainer_main(int argc, char **argv, const RtModelDesc *m) {\n"
        "  (void)argc, (void)argv;\n"
        "  unsigned ok = m->code_size == 265 && !m->native && m->code_kind == RT_MODEL_CODE_PTX;\n"
        "  for (int i = 0; i < 256; i++) ok &= (unsigned char)m->code[i] == i;\n"
        "  ok &= !memcmp(m->code + 256, \"?\\?=?\\?/\\n\\\"\\\\\", 9);\n"
        "  ok &= !strcmp(m->code_options, \"-cl-std=CL1.2 \\\"q\\\"\");\n"
        "  printf(\"%s\\n\", ok ? \"code ok\" : \"code bad\");\n"
        "  return 0;\n"
        "}\n",
        f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "cc -std=c11 -Wall -Wextra -Werror -O2 -o %s %s %s -I%s/include > %s 2>&1 && %s > %s", exe,
           desc, stub, build_dir, outp, exe, outp);
  CHECK(sh(cmd) == 0, "the gpu descriptor does not build or run");
  got = slurp(outp, NULL);
  CHECK(got && !strcmp(got, "code ok\n"), "gpu code: %s", got ? got : "(nothing)");
  free(got);
}

int main(void) {
  /* The build tree: this test is build/test/test_cpu_codegen. */
  char exe[512];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = 0;
  char *slash = strrchr(exe, '/');
  if (slash) *slash = 0;
  snprintf(build_dir, sizeof build_dir, "%.500s/..", exe);
  const char *t = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/nnc-cpu-test-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(tmpdir)) {
    printf("FATAL: mkdtemp\n");
    return 1;
  }

  M = ir_module_new();
  M->name = "unit";
  for (int opt = 0; opt <= 2; opt += 2) {
    test_elementwise(opt);
    test_reduction(opt);
    test_matmul(opt);
    test_guarded(opt);
    test_mixed(opt);
    test_all_ops(opt);
  }
  test_reduction(3);
  test_all_ops(3);
  test_outputs();
  test_schedule();
  test_plan();

  if (J) jit_check(LLVMOrcDisposeLLJIT(J), "dispose");
  kprog_free(P);
  ir_module_free(M);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (!failures) sh(cmd);
  if (failures) printf("files kept in %s\n", tmpdir);
  return check_done();
}
