/* test/unit/test_gpu_codegen.c - the gpu backend (codegen/gpu) without a GPU.
 *
 * 1. The kernels run on the host.  The backend's host flavor emits the very
 *    kernels it sends to NVPTX, with the thread indices, barriers and warp
 *    shuffles as calls of nnc_sim_* functions defined here: each block's
 *    256 threads are coroutines that meet at barriers and shuffles, blocks
 *    run one after another, with the trainer's launch rule (ceil(range /
 *    256) blocks).  Models train a few steps on
 *    random batches (the last one short) next to the interpreter; losses,
 *    metrics, parameters and states must agree within 1e-4 relative.  Each
 *    model runs with the backend's own choices, with every matmul tiled at
 *    1x1, 2x2, 4x4 and 8x8 outputs per thread, with every matching
 *    reduction on warps, and with neither.
 * 2. The NVPTX module: it verifies; kernels have the PTX kernel calling
 *    convention, addrspace(1) buffers and a trailing i64 B; libdevice links
 *    and leaves no __nv_ or __nvvm_reflect declaration; PTX comes out for
 *    sm_75 and sm_90 (`.target`, `.entry`, ld.global.nc, .shared and
 *    bar.sync in tiled kernels, shfl.sync.bfly in warp ones, ex2.approx
 *    without libdevice), and ptxas accepts it when it is installed.
 * Exits 1 on failure.
 */
#include "codegen/cpu/cpu.h"
#include "codegen/gpu/gpu.h"
#include "codegen/interp/interp.h"
#include "codegen/descriptor.h"
#include "frontend/ast.h"
#include "support/diag.h"
#include "frontend/elab.h"
#include "passes/lower.h"
#include "runtime/rng.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>
#include "test_models.h"

#include "check.h"

#define TOL 1e-4
enum { NT = GPU_BLOCK, MAX_ARGS = 16 };

/* ---- the simulated GPU ------------------------------------------------------------------------------ */

/* A block's 256 threads are coroutines (ucontext) on this thread, run in
 * turn until each finishes or reaches a barrier (the whole block) or a
 * shuffle (its warp); a sync point opens when everyone it waits for is
 * there.  Blocks run one after another, so the kernels' shared arrays
 * (ordinary globals in the host flavor) belong to the running block.  A
 * thread that finishes while others wait at a barrier is the bug a real
 * GPU would hang on (or worse): it is reported, and the launch stops. */
enum { READY, AT_BLOCK, AT_WARP, DONE };
enum { STACK = 256 * 1024 };

static ucontext_t sched_ctx, thr_ctx[NT];
static char *stacks[NT];
static int state[NT];
static int cur;                      /* the running thread */
static int32_t grid_blocks, cur_block;
static void *cur_fn;
static void *cur_args[MAX_ARGS];
static int cur_nargs;
static int64_t cur_batch;
static float lanes[2][NT];           /* shuffle slots, by round parity */
static int parity[NT];
static bool diverged;

static int32_t sim_tid(void) { return cur; }
static int32_t sim_ctaid(void) { return cur_block; }
static int32_t sim_ntid(void) { return NT; }
static int32_t sim_nctaid(void) { return grid_blocks; }

static void yield_as(int st) {
  state[cur] = st;
  swapcontext(&thr_ctx[cur], &sched_ctx);
}

static void sim_barrier(void) { yield_as(AT_BLOCK); }

/* shfl.sync.bfly: publish, meet the warp, read lane ^ mask. */
static float sim_shfl_bfly(float v, int32_t mask) {
  int me = cur, par = parity[me];
  lanes[par][me] = v;
  yield_as(AT_WARP);
  parity[me] ^= 1;
  return lanes[par][(me & ~(GPU_WARP - 1)) | ((me % GPU_WARP) ^ mask)];
}

typedef void *P;
#define A(i) cur_args[i]
static void call_kernel(void) {
  int64_t B = cur_batch;
  void *f = cur_fn;
  switch (cur_nargs) {
  case 0: ((void (*)(int64_t))f)(B); break;
  case 1: ((void (*)(P, int64_t))f)(A(0), B); break;
  case 2: ((void (*)(P, P, int64_t))f)(A(0), A(1), B); break;
  case 3: ((void (*)(P, P, P, int64_t))f)(A(0), A(1), A(2), B); break;
  case 4: ((void (*)(P, P, P, P, int64_t))f)(A(0), A(1), A(2), A(3), B); break;
  case 5: ((void (*)(P, P, P, P, P, int64_t))f)(A(0), A(1), A(2), A(3), A(4), B); break;
  case 6: ((void (*)(P, P, P, P, P, P, int64_t))f)(A(0), A(1), A(2), A(3), A(4), A(5), B); break;
  case 7: ((void (*)(P, P, P, P, P, P, P, int64_t))f)(A(0), A(1), A(2), A(3), A(4), A(5), A(6), B); break;
  case 8: ((void (*)(P, P, P, P, P, P, P, P, int64_t))f)(A(0), A(1), A(2), A(3), A(4), A(5), A(6), A(7), B); break;
  case 9:
    ((void (*)(P, P, P, P, P, P, P, P, P, int64_t))f)(A(0), A(1), A(2), A(3), A(4), A(5), A(6), A(7), A(8), B);
    break;
  case 10:
    ((void (*)(P, P, P, P, P, P, P, P, P, P, int64_t))f)(A(0), A(1), A(2), A(3), A(4), A(5), A(6), A(7), A(8),
                                                         A(9), B);
    break;
  case 11:
    ((void (*)(P, P, P, P, P, P, P, P, P, P, P, int64_t))f)(A(0), A(1), A(2), A(3), A(4), A(5), A(6), A(7), A(8),
                                                            A(9), A(10), B);
    break;
  case 12:
    ((void (*)(P, P, P, P, P, P, P, P, P, P, P, P, int64_t))f)(A(0), A(1), A(2), A(3), A(4), A(5), A(6), A(7),
                                                               A(8), A(9), A(10), A(11), B);
    break;
  case 13: ((void (*)(P, P, P, P, P, P, P, P, P, P, P, P, P, int64_t))f)(A(0), A(1), A(2), A(3), A(4), A(5), A(6), A(7), A(8), A(9), A(10), A(11), A(12), B); break;
  case 14: ((void (*)(P, P, P, P, P, P, P, P, P, P, P, P, P, P, int64_t))f)(A(0), A(1), A(2), A(3), A(4), A(5), A(6), A(7), A(8), A(9), A(10), A(11), A(12), A(13), B); break;
  case 15: ((void (*)(P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, int64_t))f)(A(0), A(1), A(2), A(3), A(4), A(5), A(6), A(7), A(8), A(9), A(10), A(11), A(12), A(13), A(14), B); break;
  case 16: ((void (*)(P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, int64_t))f)(A(0), A(1), A(2), A(3), A(4), A(5), A(6), A(7), A(8), A(9), A(10), A(11), A(12), A(13), A(14), A(15), B); break;
  default: printf("FATAL: a kernel with %d arguments\n", cur_nargs); exit(1);
  }
}
#undef A

static void thread_main(void) {
  call_kernel();
  state[cur] = DONE; /* uc_link returns to the scheduler */
}

/* Opens the sync points everyone has reached; false when some thread
 * waits for one that finished (divergence) or nothing can move. */
static bool release(void) {
  bool moved = false;
  for (int w = 0; w < NT / GPU_WARP; w++) {
    int at = 0, done = 0;
    for (int l = 0; l < GPU_WARP; l++) {
      at += state[w * GPU_WARP + l] == AT_WARP;
      done += state[w * GPU_WARP + l] == DONE;
    }
    if (at == GPU_WARP) {
      for (int l = 0; l < GPU_WARP; l++) state[w * GPU_WARP + l] = READY;
      moved = true;
    } else if (at && done) {
      return false;
    }
  }
  if (moved) return true;
  int at = 0, done = 0;
  for (int t = 0; t < NT; t++) at += state[t] == AT_BLOCK, done += state[t] == DONE;
  if (done == NT) return true;
  if (at + done < NT) return true; /* warps still meeting: run them */
  if (done) return false;          /* a barrier some threads never reach */
  for (int t = 0; t < NT; t++) state[t] = READY;
  return true;
}

static void run_block(void) {
  for (int t = 0; t < NT; t++) {
    state[t] = READY;
    parity[t] = 0;
    getcontext(&thr_ctx[t]);
    thr_ctx[t].uc_stack.ss_sp = stacks[t];
    thr_ctx[t].uc_stack.ss_size = STACK;
    thr_ctx[t].uc_link = &sched_ctx;
    makecontext(&thr_ctx[t], thread_main, 0);
  }
  for (;;) {
    for (int t = 0; t < NT; t++)
      if (state[t] == READY) {
        cur = t;
        swapcontext(&sched_ctx, &thr_ctx[t]);
      }
    int done = 0;
    for (int t = 0; t < NT; t++) done += state[t] == DONE;
    if (done == NT) return;
    if (!release()) {
      diverged = true;
      return;
    }
  }
}

static void sim_start(void) {
  for (int t = 0; t < NT; t++) stacks[t] = malloc(STACK);
}

static void sim_stop(void) {
  for (int t = 0; t < NT; t++) free(stacks[t]);
}

/* One launch: ceil(range / 256) blocks of 256 threads. */
static bool sim_launch(void *fn, void **args, int nargs, int64_t batch, int64_t range) {
  if (range <= 0) return true;
  cur_fn = fn;
  memcpy(cur_args, args, sizeof(void *) * (size_t)nargs);
  cur_nargs = nargs;
  cur_batch = batch;
  grid_blocks = (int32_t)((range + NT - 1) / NT);
  diverged = false;
  for (cur_block = 0; cur_block < grid_blocks && !diverged; cur_block++) run_block();
  return !diverged;
}

/* Should a launch loop forever, fail instead of hanging CI. */
static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "FATAL: the gpu codegen test ran out of time\n";
  ssize_t w = write(1, msg, sizeof msg - 1);
  (void)w;
  _exit(1);
}

/* ---- compiling ------------------------------------------------------------------------------------ */

static void jit_check(LLVMErrorRef e, const char *what) {
  if (!e) return;
  char *msg = LLVMGetErrorMessage(e);
  printf("FATAL: %s: %s\n", what, msg);
  LLVMDisposeErrorMessage(msg);
  exit(1);
}

/* The host flavor of p's kernels (scheduled by s), compiled at -O2 into a
 * fresh JIT that resolves nnc_sim_* to the pool above. */
static LLVMOrcLLJITRef jit_host(const KProgram *p, const GpuSchedule *s) {
  CpuOptions co = {.opt_level = 2, .cpu = NULL};
  LLVMTargetMachineRef tm = cpu_target_machine(&co);
  LLVMOrcLLJITRef J;
  jit_check(LLVMOrcCreateLLJIT(&J, NULL), "create LLJIT");
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(J);
  LLVMOrcDefinitionGeneratorRef gen;
  jit_check(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(J), NULL, NULL),
            "process symbols");
  LLVMOrcJITDylibAddGenerator(jd, gen);
  static const struct {
    const char *name;
    void (*fn)(void);
  } sims[] = {{"nnc_sim_tid", (void (*)(void))sim_tid},         {"nnc_sim_ctaid", (void (*)(void))sim_ctaid},
              {"nnc_sim_ntid", (void (*)(void))sim_ntid},       {"nnc_sim_nctaid", (void (*)(void))sim_nctaid},
              {"nnc_sim_barrier", (void (*)(void))sim_barrier}, {"nnc_sim_shfl_bfly", (void (*)(void))sim_shfl_bfly}};
  LLVMOrcCSymbolMapPair pairs[6];
  for (int i = 0; i < 6; i++) {
    pairs[i].Name = LLVMOrcLLJITMangleAndIntern(J, sims[i].name);
    pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)sims[i].fn;
    pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
    pairs[i].Sym.Flags.TargetFlags = 0;
  }
  jit_check(LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(pairs, 6)), "define nnc_sim_*");
  LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
  LLVMModuleRef mod = gpu_emit_module(p, s, LLVMOrcThreadSafeContextGetContext(tsc), GPU_FLAVOR_HOST, GPU_MATH_LIBDEVICE);
  char *msg = NULL;
  if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
    printf("FATAL: invalid host module: %s\n", msg);
    exit(1);
  }
  LLVMDisposeMessage(msg);
  cpu_prepare_module(mod, tm);
  LLVMSetDataLayout(mod, LLVMOrcLLJITGetDataLayoutStr(J));
  if (!cpu_optimize(mod, tm, 2, NULL)) exit(1);
  LLVMDisposeTargetMachine(tm);
  jit_check(LLVMOrcLLJITAddLLVMIRModule(J, jd, LLVMOrcCreateNewThreadSafeModule(mod, tsc)), "add module");
  LLVMOrcDisposeThreadSafeContext(tsc);
  return J;
}

/* ---- training next to the interpreter ---------------------------------------------------------------- */

typedef struct Run {
  const KProgram *p;
  void **fns;    /* [nkernels] */
  float **mem;   /* [nbufs]; temps of one slot share */
} Run;

static void run_open(Run *r, const KProgram *p, LLVMOrcLLJITRef J, int64_t batch) {
  r->p = p;
  r->fns = calloc(p->nkernels + 1, sizeof *r->fns);
  for (uint32_t i = 0; i < p->nkernels; i++) {
    LLVMOrcExecutorAddress a = 0;
    jit_check(LLVMOrcLLJITLookup(J, &a, p->kernels[i].name), p->kernels[i].name);
    r->fns[i] = (void *)(uintptr_t)a;
  }
  r->mem = calloc(p->nbufs + 1, sizeof *r->mem);
  for (uint32_t i = 0; i < p->nbufs; i++) {
    const KBuffer *b = &p->bufs[i];
    if (r->mem[i]) continue;
    int64_t n = kbuf_elems(b, batch);
    bool shared = b->kind == KB_TEMP && b->slot >= 0;
    for (uint32_t j = i + 1; shared && j < p->nbufs; j++)
      if (p->bufs[j].kind == KB_TEMP && p->bufs[j].slot == b->slot && kbuf_elems(&p->bufs[j], batch) > n)
        n = kbuf_elems(&p->bufs[j], batch);
    size_t bytes = ((size_t)(n > 0 ? n : 1) * 4 + 63) / 64 * 64;
    r->mem[i] = aligned_alloc(64, bytes);
    memset(r->mem[i], 0, bytes);
    for (uint32_t j = i + 1; shared && j < p->nbufs; j++)
      if (p->bufs[j].kind == KB_TEMP && p->bufs[j].slot == b->slot) r->mem[j] = r->mem[i];
  }
}

static void run_close(Run *r) {
  for (uint32_t i = 0; i < r->p->nbufs; i++) {
    bool first = true;
    for (uint32_t j = 0; j < i; j++) first &= r->mem[j] != r->mem[i];
    if (first) free(r->mem[i]);
  }
  free(r->mem);
  free(r->fns);
}

/* The trainer's launch rule: the buffers, then B; range from the kernel IR. */
static void run_plan(Run *r, const uint32_t *plan, uint32_t n, int64_t batch) {
  for (uint32_t i = 0; i < n; i++) {
    const Kernel *k = &r->p->kernels[plan[i]];
    void *args[MAX_ARGS];
    for (uint32_t a = 0; a < k->nargs; a++) args[a] = r->mem[k->args[a]];
    bool batched;
    int64_t range = descriptor_launch_range(k, &batched) * (batched ? batch : 1);
    CHECK(sim_launch(r->fns[plan[i]], args, (int)k->nargs, batch, range),
          "%s: a barrier or shuffle that not every thread of a block (or warp) reaches", k->name);
  }
}

static double sum(const float *v, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += v[i];
  return s;
}

/* max |ref - got| / max |ref| */
static double tensor_rel(const float *got, const double *ref, int64_t n) {
  double diff = 0, scale = 1e-30;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs(ref[i] - got[i]);
    diff = d > diff || isnan(d) ? d : diff;
    scale = fmax(scale, fabs(ref[i]));
  }
  return diff / scale;
}

static double rel(double a, double b) { return fabs(a - b) / fmax(1e-6, fmax(fabs(a), fabs(b))); }

typedef struct Mode {
  const char *name;
  int tile;       /* GpuScheduleOptions.tile: 0 auto, -1 never, else rm = rn */
  int warp;       /* GpuScheduleOptions.warp: 0 auto, 1 wherever possible, -1 never */
} Mode;

/* Trains `steps` steps of `batch` (the last one a sample short) on the
 * simulated GPU and in the interpreter, then evaluates a batch; losses,
 * metrics, parameters and states must agree.  Returns the kernels that ran
 * as implicit GEMMs. */
static int agree(const char *name, const char *src, const Mode *mode, int64_t batch, int steps) {
  char what[128];
  snprintf(what, sizeof what, "%s/%s", name, mode->name);
  Module *m = compile(name, src);
  CHECK(m != NULL, "%s does not compile", what);
  if (!m) return 0;
  KProgram *p = lower_program(m, &(LowerOptions){.opt_level = 2, .separate_contractions = true});
  memplan(p, batch);
  GpuScheduleOptions so = {batch, mode->tile, mode->warp};
  GpuSchedule s;
  gpu_schedule(p, &so, &s);
  CHECK(kprog_verify(p), "%s: the scheduled kernels do not verify", what);
  int forms[3] = {0, 0, 0}, igemms = 0;
  for (uint32_t i = 0; i < s.n; i++) forms[s.k[i].kind]++, igemms += s.k[i].igemm;
  LLVMOrcLLJITRef J = jit_host(p, &s);
  Run r;
  run_open(&r, p, J, batch);
  Interp *it = interp_new(m, false);
  interp_init(it, 5);
  for (uint32_t b = 0; b < p->nbufs; b++)
    if (p->bufs[b].kind == KB_PARAM || p->bufs[b].kind == KB_STATE) {
      const double *v = interp_symbol(it, p->bufs[b].sym);
      for (int64_t i = 0; i < type_numel(&p->bufs[b].type); i++) r.mem[b][i] = (float)v[i];
    }
  float *scalars = r.mem[p->scalars];
  int32_t nhypers = 0;
  for (uint32_t sy = 0; sy < m->nsyms; sy++)
    if (m->syms[sy].kind == SYM_HYPER) scalars[KSCALAR_HYPER0 + nhypers++] = (float)m->syms[sy].value;
  scalars[kscalar_seed(nhypers)] = (float)rt_rng_key16(5); /* interp_init's seed: the same dropout masks */

  const KBuffer *xb = &p->bufs[p->input], *yb = p->label >= 0 ? &p->bufs[p->label] : NULL;
  int64_t feat = type_numel(&xb->type);
  int64_t bound = yb && yb->type.dtype == DT_I32 ? m->syms[yb->sym].bound : 0;
  bool f32_label = yb && yb->type.dtype == DT_F32;
  RtRng rng;
  rt_rng_seed(&rng, 11);
  float *x = r.mem[p->input];
  int32_t *yi = calloc((size_t)batch, sizeof *yi);
  float *yf = calloc((size_t)batch, sizeof *yf);
  double worst_loss = 0, worst_param = 0;
  for (int step = 1; step <= steps; step++) {
    int64_t n = step == steps ? batch - 1 : batch;
    for (int64_t i = 0; i < n * feat; i++) x[i] = (float)rt_rng_normal(&rng);
    for (int64_t i = 0; i < n; i++) {
      yi[i] = bound ? (int32_t)rt_rng_below(&rng, (uint64_t)bound) : 0;
      yf[i] = (float)rt_rng_normal(&rng);
    }
    if (yb) memcpy(r.mem[p->label], f32_label ? (void *)yf : (void *)yi, (size_t)n * 4);
    double loss = 0, metrics[8] = {0};
    CHECK(interp_step(it, x, f32_label ? (void *)yf : (void *)yi, n, &loss, metrics) == 0, "%s: interp: %s", what,
          interp_error(it));
    scalars[KSCALAR_STEP] = (float)step;
    scalars[KSCALAR_BATCH] = (float)n;
    scalars[kscalar_training(nhypers)] = 1;
    run_plan(&r, p->train, p->ntrain, n);
    double kloss = sum(r.mem[p->loss], n);
    worst_loss = fmax(worst_loss, rel(loss, kloss));
    CHECK(rel(loss, kloss) < TOL, "%s step %d: loss %.9g, simulated gpu %.9g", what, step, loss, kloss);
    for (uint32_t b = 0; b < p->nbufs; b++) {
      const KBuffer *kb = &p->bufs[b];
      if (kb->kind != KB_PARAM && kb->kind != KB_STATE) continue;
      double d = tensor_rel(r.mem[b], interp_symbol(it, kb->sym), type_numel(&kb->type));
      worst_param = d > worst_param || isnan(d) ? d : worst_param;
      CHECK(d < TOL, "%s step %d: %s differs by %.3g (relative to its largest element)", what, step, kb->name, d);
    }
  }
  /* the eval plan: the same loss and metrics as the interpreter's */
  double loss = 0, metrics[8] = {0};
  CHECK(interp_eval(it, x, f32_label ? (void *)yf : (void *)yi, batch, &loss, metrics) == 0, "%s", interp_error(it));
  if (yb) memcpy(r.mem[p->label], f32_label ? (void *)yf : (void *)yi, (size_t)batch * 4);
  scalars[KSCALAR_BATCH] = (float)batch;
  scalars[kscalar_training(nhypers)] = 0;
  run_plan(&r, p->eval, p->neval, batch);
  double kloss = sum(r.mem[p->loss], batch);
  CHECK(rel(loss, kloss) < TOL, "%s eval: loss %.9g, simulated gpu %.9g", what, loss, kloss);
  for (uint32_t k = 0; k < p->nmetrics; k++) {
    double km = sum(r.mem[p->metrics[k]], batch);
    CHECK(fabs(metrics[k] - km) <= fmax(1.0, TOL * fabs(metrics[k])), "%s eval: metric %u %.9g, simulated gpu %.9g",
          what, k, metrics[k], km);
  }
  printf("%-22s kernels=%-3u thread=%-2d warp=%-2d tiled=%-2d (igemm %d) worst: loss %.2g, param %.2g\n", what,
         p->nkernels, forms[GK_THREAD], forms[GK_WARP], forms[GK_TILED], igemms, worst_loss, worst_param);
  if (mode->tile > 0) CHECK(forms[GK_TILED] > 0, "%s: nothing tiled", what);
  if (mode->warp > 0) CHECK(forms[GK_WARP] > 0, "%s: no warp reduction", what);
  free(yi);
  free(yf);
  run_close(&r);
  interp_free(it);
  jit_check(LLVMOrcDisposeLLJIT(J), "dispose");
  gpu_schedule_free(&s);
  kprog_free(p);
  ir_module_free(m);
  return igemms;
}

/* ---- the NVPTX module and its PTX ----------------------------------------------------------------- */

static int count(const char *s, const char *needle) {
  int n = 0;
  for (const char *q = strstr(s, needle); q; q = strstr(q + 1, needle)) n++;
  return n;
}

static char ptxas[512];
static char tmpdir[256];

/* ptxas -arch=ARCH on the text; true when ptxas is not installed. */
static bool assembles(const char *ptx, const char *arch, const char *what) {
  if (!ptxas[0]) return true;
  char path[400], cmd[1400];
  snprintf(path, sizeof path, "%s/%s-%s.ptx", tmpdir, what, arch);
  FILE *f = fopen(path, "w");
  if (!f) return false;
  fputs(ptx, f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "%s -arch=%s %s -o %s/out.cubin", ptxas, arch, path, tmpdir);
  return system(cmd) == 0;
}

/* The PTX-flavored module of src before optimisation: calling convention,
 * address spaces, B; then libdevice linked and optimised away. */
static void check_module(const char *name, const char *src) {
  Module *m = compile(name, src);
  CHECK(m != NULL, "%s does not compile", name);
  if (!m) return;
  KProgram *p = lower_program(m, &(LowerOptions){.opt_level = 2, .separate_contractions = true});
  memplan(p, 32);
  GpuScheduleOptions so = {32, 0, 0};
  GpuSchedule s;
  gpu_schedule(p, &so, &s);
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef mod = gpu_emit_module(p, &s, ctx, GPU_FLAVOR_PTX, GPU_MATH_LIBDEVICE);
  char *msg = NULL;
  CHECK(!LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg), "%s: invalid module: %s", name, msg);
  LLVMDisposeMessage(msg);
  int kernels = 0;
  for (uint32_t i = 0; i < p->nkernels; i++) {
    const Kernel *k = &p->kernels[i];
    LLVMValueRef fn = LLVMGetNamedFunction(mod, k->name);
    CHECK(fn != NULL, "%s: no function %s", name, k->name);
    if (!fn) continue;
    kernels++;
    CHECK(LLVMGetFunctionCallConv(fn) == LLVMPTXKernelCallConv, "%s: %s is not a PTX kernel", name, k->name);
    CHECK(LLVMCountParams(fn) == k->nargs + 1, "%s: %s has %u parameters for %u buffers and B", name, k->name,
          LLVMCountParams(fn), k->nargs);
    for (uint32_t a = 0; a < k->nargs; a++) {
      LLVMTypeRef t = LLVMTypeOf(LLVMGetParam(fn, a));
      CHECK(LLVMGetTypeKind(t) == LLVMPointerTypeKind && LLVMGetPointerAddressSpace(t) == 1,
            "%s: %s parameter %u is not a global pointer", name, k->name, a);
    }
    LLVMTypeRef bt = LLVMTypeOf(LLVMGetParam(fn, k->nargs));
    CHECK(LLVMGetTypeKind(bt) == LLVMIntegerTypeKind && LLVMGetIntTypeWidth(bt) == 64, "%s: %s: B is not i64", name,
          k->name);
  }
  CHECK(kernels == (int)p->nkernels, "%s: %d kernels for %u", name, kernels, p->nkernels);
  /* libdevice, where the toolkit has it */
  GpuOptions go = {2, "sm_90", false, NULL, 0};
  const char *lib = gpu_libdevice_path(&go);
  LLVMTargetMachineRef tm = gpu_target_machine(&go);
  CHECK(tm != NULL, "no NVPTX target machine");
  if (lib && tm) {
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(mod, td);
    LLVMDisposeTargetData(td);
    bool calls = LLVMGetNamedFunction(mod, "__nv_expf") != NULL;
    CHECK(gpu_link_libdevice(mod, lib), "%s: linking %s", name, lib);
    LLVMValueRef f = LLVMGetNamedFunction(mod, "__nv_expf");
    CHECK(!calls || (f && !LLVMIsDeclaration(f) && LLVMGetLinkage(f) == LLVMInternalLinkage),
          "%s: __nv_expf is not linked in and internal", name);
    CHECK(gpu_optimize(mod, tm, 2), "%s: optimising", name);
    bool left = false;
    for (LLVMValueRef g = LLVMGetFirstFunction(mod); g; g = LLVMGetNextFunction(g)) {
      size_t n;
      const char *gn = LLVMGetValueName2(g, &n);
      left |= LLVMIsDeclaration(g) && (!strncmp(gn, "__nv_", 5) || !strcmp(gn, "__nvvm_reflect"));
    }
    CHECK(!left, "%s: a libdevice function or __nvvm_reflect is still declared", name);
  } else if (!lib) {
    check_note("libdevice not found, its checks skipped");
  }
  if (tm) LLVMDisposeTargetMachine(tm);
  LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
  gpu_schedule_free(&s);
  kprog_free(p);
  ir_module_free(m);
}

/* PTX for sm_75 and sm_90: its header, one .entry per kernel, global loads
 * and stores, the forms' instructions; ptxas accepts it. */
static void check_ptx(const char *name, const char *src, int64_t batch, bool want_tiled, bool want_warp) {
  static const char *const arches[] = {"sm_75", "sm_90"};
  for (int a = 0; a < 2; a++) {
    Module *m = compile(name, src);
    CHECK(m != NULL, "%s does not compile", name);
    if (!m) return;
    KProgram *p = lower_program(m, &(LowerOptions){.opt_level = 2, .separate_contractions = true});
    memplan(p, batch);
    GpuOptions go = {2, arches[a], false, NULL, batch};
    char *ptx = NULL;
    size_t len = 0;
    bool ok = gpu_compile(p, &go, GPU_OUT_PTX, &ptx, &len);
    CHECK(ok && ptx && len == strlen(ptx), "%s %s: no PTX", name, arches[a]);
    if (ok) {
      char target[32];
      snprintf(target, sizeof target, ".target %s", arches[a]);
      CHECK(strstr(ptx, target), "%s: no '%s'", name, target);
      CHECK(count(ptx, ".visible .entry ") == (int)p->nkernels, "%s %s: %d entries for %u kernels", name, arches[a],
            count(ptx, ".visible .entry "), p->nkernels);
      CHECK(strstr(ptx, "ld.global.nc.f32") && strstr(ptx, "st.global.f32"), "%s: no global loads or stores", name);
      CHECK(!strstr(ptx, ".extern .func"), "%s %s: an unresolved function (libdevice?)", name, arches[a]);
      if (want_tiled)
        CHECK(strstr(ptx, ".shared") && strstr(ptx, "bar.sync") && strstr(ptx, "ld.shared.f32") &&
                  strstr(ptx, ".reqntid 256"),
              "%s %s: no shared-memory tiles", name, arches[a]);
      if (want_warp) CHECK(strstr(ptx, "shfl.sync.bfly.b32"), "%s %s: no warp shuffles", name, arches[a]);
      CHECK(assembles(ptx, arches[a], name), "%s: ptxas -arch=%s rejects the PTX", name, arches[a]);
    }
    free(ptx);
    kprog_free(p);
    ir_module_free(m);
  }
}

/* Without libdevice: the approximations, still valid PTX. */
static void check_no_libdevice(const char *src) {
  Module *m = compile("nolib", src);
  if (!m) return;
  KProgram *p = lower_program(m, &(LowerOptions){.opt_level = 2, .separate_contractions = true});
  memplan(p, 32);
  GpuOptions go = {2, "sm_90", false, "/nonexistent/libdevice.10.bc", 0};
  char *ptx = NULL;
  size_t len = 0;
  CHECK(gpu_libdevice_path(&go) == NULL, "a missing libdevice was found");
  CHECK(gpu_compile(p, &go, GPU_OUT_PTX, &ptx, &len), "no PTX without libdevice");
  CHECK(ptx && strstr(ptx, "ex2.approx") && strstr(ptx, "lg2.approx"), "no ex2/lg2 approximations");
  CHECK(ptx && assembles(ptx, "sm_90", "nolib"), "ptxas rejects the PTX without libdevice");
  free(ptx);
  kprog_free(p);
  ir_module_free(m);
}

static void check_archs(void) {
  static const char *const good[] = {"sm_75", "sm_80", "sm_86", "sm_87", "sm_89", "sm_90", "sm_90a"};
  for (int i = 0; i < 7; i++) CHECK(gpu_arch_valid(good[i]), "%s refused", good[i]);
  static const char *const bad[] = {"sm_70", "sm_100", "sm90", "", "compute_90"};
  for (int i = 0; i < 5; i++) CHECK(!gpu_arch_valid(bad[i]), "'%s' accepted", bad[i]);
}

/* ---- models ------------------------------------------------------------------------------------------ */

/* Odd sizes: rows (the batch 37), columns 40, depth 70; tiles of every size
 * have ragged edges.  The weight gradient is 70 x 40 over the batch. */
static const char *mlp =
    "model m {\n input x: f32[70]\n label y: i32\n h = relu(dense(x, 40))\n logits = dense(h, 10)\n"
    " loss = cross_entropy(logits, y)\n metric accuracy = argmax(logits) == y\n}\n"
    "train m { data = idx(\"d\")\n optimizer = adam(lr = 0.01)\n batch = 37 }\n";

/* Long reductions with few outputs, the warp form by the schedule's own
 * choice: 3 logits over 200 inputs, max and sum of exp over 200-wide rows
 * (logsumexp), a bias gradient over the batch. */
static const char *wide_rows =
    "model w {\n input x: f32[300]\n label y: i32\n h = dense(x, 200)\n"
    " logits = dense(tanh(h), 3) + logsumexp(h) * 0.01\n"
    " loss = cross_entropy(logits, y)\n metric accuracy = argmax(logits) == y\n}\n"
    "train w { data = idx(\"d\")\n optimizer = sgd(lr = 0.05, momentum = 0.9)\n batch = 19 }\n";

/* Convolutions (padded, strided), max pooling, batch norm (batch
 * statistics in training, running ones in evaluation) and dropout: every
 * op a CNN adds, next to the interpreter. */
static const char *cnn =
    "layer cbn(x: f32[c, height, width], filters) {\n"
    " param w: f32[filters, c, 3, 3] = uniform(-0.5, 0.5)\n"
    " return relu(batch_norm(conv(x, w, padding = 1)))\n}\n"
    "model c {\n input x: f32[2, 8, 8]\n label y: i32\n a = cbn(x, 4)\n p = max_pool(a, 2)\n"
    " s = relu(conv2d(p, 3, kernel = 3, stride = 2, padding = 1))\n"
    " h = dropout(dense(flatten(s), 12), 0.3)\n logits = dense(h, 5)\n"
    " loss = cross_entropy(logits, y)\n metric accuracy = argmax(logits) == y\n}\n"
    "train c { data = idx(\"d\")\n optimizer = sgd(lr = 0.05)\n batch = 6 }\n";

/* Convolutions as implicit GEMMs, sizes no tile divides (batch 7, 11 x 9
 * images, 3, 5 and 6 channels): a padded stride-1 conv (rows 5 filters,
 * columns 7 x 99 positions, k 27), a padded stride-2 conv (its data
 * gradient reads the output gradient through guarded, divisibility-masked
 * loads), and both filter gradients (a group per sample).  The first
 * layer's data gradient is never needed. */
static const char *convs =
    "model c {\n input x: f32[3, 11, 9]\n label y: i32\n"
    " a = relu(conv2d(x, 5, kernel = 3, padding = 1))\n"
    " b = relu(conv2d(a, 6, kernel = 3, stride = 2, padding = 1))\n"
    " logits = dense(flatten(b), 4)\n"
    " loss = cross_entropy(logits, y)\n metric accuracy = argmax(logits) == y\n}\n"
    "train c { data = idx(\"d\")\n optimizer = sgd(lr = 0.05)\n batch = 7 }\n";

/* `custom` (test_models.h) is custom.nn in small: swish, a residual layer
 * with tanh, label smoothing, RMSprop (sqrt, pow).  (The example itself,
 * with 784 random inputs, makes RMSprop amplify rounding noise beyond 1e-4
 * on any target.) */
int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGALRM, on_alarm);
  alarm(1200); /* a hung simulation fails with a message; ASan on a loaded machine takes minutes */
  const char *t = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/nnc-gpu-test-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(tmpdir)) {
    printf("FATAL: mkdtemp\n");
    return 1;
  }
  if (access("/usr/local/cuda/bin/ptxas", X_OK) == 0)
    snprintf(ptxas, sizeof ptxas, "/usr/local/cuda/bin/ptxas");
  else if (system("command -v ptxas > /dev/null 2>&1") == 0)
    snprintf(ptxas, sizeof ptxas, "ptxas");
  else
    printf("test_gpu_codegen: ptxas not found, PTX is not assembled\n");

  char *mnist = read_text("../examples/mnist.nn"), *example_custom = read_text("../examples/custom.nn");
  char *primitives = read_text(PRIMITIVES_NN);
  CHECK(mnist && example_custom && primitives, "cannot read ../examples or " PRIMITIVES_NN " (run from test/)");
  if (!mnist || !example_custom || !primitives) return 1;

  sim_start();
  static const Mode modes[] = {
      {"auto", 0, 0},      {"tile1", 1, 0},  {"tile2", 2, 0},   {"tile4", 4, 0},
      {"tile8", 8, -1},    {"warps", -1, 1}, {"plain", -1, -1},
  };
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) agree("mlp", mlp, &modes[i], 37, 3);
  agree("mnist", mnist, &modes[0], 33, 2);
  agree("custom", custom, &modes[0], 12, 3);
  agree("custom", custom, &modes[5], 12, 3);
  agree("wide_rows", wide_rows, &modes[0], 19, 3);
  agree("regression", regression, &modes[0], 6, 3);
  agree("regression", regression, &modes[5], 6, 3);
  agree("primitives", primitives, &modes[0], 7, 3);
  /* cnn: the first conv, its filter gradient (k 18 and 64) and the second's
   * filter gradient are implicit GEMMs; the 3-filter stride-2 conv and its
   * data gradient are too narrow (3 rows) */
  CHECK(agree("cnn", cnn, &modes[0], 6, 3) == 3, "cnn: not every wide enough convolution is an implicit GEMM");
  CHECK(agree("cnn", cnn, &modes[5], 6, 3) == 0, "cnn/warps: an implicit GEMM without tiles");
  for (size_t i = 0; i < 5; i++) /* auto, then every tile size */
    CHECK(agree("convs", convs, &modes[i], 7, 3) == 5, "convs/%s: the five convolutions are not all implicit GEMMs",
          modes[i].name);
  sim_stop();

  check_archs();
  check_module("mlp", mlp);
  check_module("custom", example_custom);
  check_ptx("mnist", mnist, 32, true, true);
  check_ptx("custom", example_custom, 32, true, false);
  check_ptx("wide_rows", wide_rows, 19, false, true);
  check_no_libdevice(example_custom);
  check_no_libdevice(primitives);
  check_ptx("primitives", primitives, 16, false, false);
  check_ptx("cnn", cnn, 16, false, false);
  check_ptx("convs", convs, 7, true, false);

  free(mnist);
  free(example_custom);
  free(primitives);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (!failures && system(cmd) != 0) printf("cannot remove %s\n", tmpdir);
  if (failures) printf("files kept in %s\n", tmpdir);
  return check_done();
}
