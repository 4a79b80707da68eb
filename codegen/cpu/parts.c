/* codegen/cpu/parts.c - a trainer's kernels compiled in parts, one thread
 * each (see cpu_compile_parts in cpu.h).
 *
 * LLVM's optimiser and code generator take nearly all of a CPU build
 * (vgg.nn: 2.0 s and 1.9 s of 4.1 s on one core), and kernels are
 * independent functions.  So the kernels are dealt into parts, each part
 * is emitted into a module of its own LLVM context, and each module is
 * optimised and compiled to an object on its own thread; the linker joins
 * the objects.  A kernel's code does not depend on its part: nothing in
 * the pipeline looks across kernels, and each part has its own internal
 * copies of the packing arrays its kernels use.
 *
 * The parts are balanced by each kernel's size as emitted (the module is
 * emitted once more, unoptimised, to measure it): instructions plus ten per
 * basic block, a fit of LLVM's time per function on vgg.nn's kernels that
 * follows it within about 30%.  Kernels are dealt largest first, each to
 * the part with the least so far.
 */
#include "codegen/cpu/cpu.h"

#include "codegen/llvm/target.h"
#include "support/arena.h"
#include "support/diag.h"
#include "support/stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { BLOCK_COST = 10 }; /* instructions a basic block costs LLVM, by the fit above */

static int64_t function_cost(LLVMValueRef f) {
  int64_t cost = 0;
  for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b)) {
    cost += BLOCK_COST;
    for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) cost++;
  }
  return cost;
}

/* Each kernel's emitted size: its ABI function and its body. */
static void kernel_costs(const KProgram *p, int64_t *cost) {
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef m = cpu_emit_module(p, ctx, NULL, 0);
  size_t cap = 64;
  char *name = nnc_xmalloc(cap);
  for (uint32_t i = 0; i < p->nkernels; i++) {
    size_t n = strlen(p->kernels[i].name) + 8;
    if (n > cap) name = nnc_xrealloc(name, cap = n);
    LLVMValueRef abi = LLVMGetNamedFunction(m, p->kernels[i].name);
    snprintf(name, cap, "%s.body", p->kernels[i].name);
    LLVMValueRef body = LLVMGetNamedFunction(m, name);
    cost[i] = 1 + (abi ? function_cost(abi) : 0) + (body ? function_cost(body) : 0);
  }
  free(name);
  LLVMDisposeModule(m);
  LLVMContextDispose(ctx);
}

typedef struct Part {
  const KProgram *p;
  const CpuOptions *o;
  uint32_t *kernels; /* the part's kernel numbers, ascending */
  uint32_t n;
  int64_t cost;
  char *obj;         /* out: the object code (malloc'ed) */
  size_t len;
  char *why;         /* out: what failed (malloc'ed), or NULL */
  double seconds;
} Part;

static void *compile_part(void *arg) {
  Part *t = arg;
  double t0 = nnc_now();
  CpuOptions quiet = *t->o; /* the main thread has said which machine */
  quiet.verbose = false;
  LLVMTargetMachineRef tm = cpu_target_machine(&quiet); /* one per thread: a target machine is not shared */
  if (!tm) {
    t->why = nnc_xstrdup("cannot create the LLVM target machine");
    return NULL;
  }
  LLVMContextRef ctx = LLVMContextCreate();
  lk_diagnostics(ctx, t->o->verbose);
  LLVMModuleRef m = cpu_emit_module(t->p, ctx, t->kernels, t->n);
  cpu_prepare_module(m, tm);
  if (cpu_optimize(m, tm, t->o->opt_level, &t->why))
    lk_module_bytes(m, tm, LK_OUT_OBJ, &t->obj, &t->len, &t->why);
  LLVMDisposeModule(m);
  LLVMContextDispose(ctx);
  LLVMDisposeTargetMachine(tm);
  t->seconds = nnc_now() - t0;
  return NULL;
}

typedef struct Sized {
  int64_t cost;
  uint32_t kernel;
} Sized;

static int by_cost_desc(const void *a, const void *b) {
  const Sized *x = a, *y = b;
  if (x->cost != y->cost) return x->cost < y->cost ? 1 : -1;
  return x->kernel < y->kernel ? -1 : 1;
}

static int by_number(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Deals the kernels largest first, each to the least loaded part. */
static void deal(const KProgram *p, Part *part, int nparts) {
  int64_t *cost = nnc_xmalloc(sizeof(int64_t) * (p->nkernels + 1));
  Sized *order = nnc_xmalloc(sizeof(Sized) * (p->nkernels + 1));
  kernel_costs(p, cost);
  for (uint32_t i = 0; i < p->nkernels; i++) order[i] = (Sized){cost[i], i};
  qsort(order, p->nkernels, sizeof *order, by_cost_desc);
  for (int j = 0; j < nparts; j++) part[j].kernels = nnc_xmalloc(sizeof(uint32_t) * (p->nkernels + 1));
  for (uint32_t i = 0; i < p->nkernels; i++) {
    int least = 0;
    for (int j = 1; j < nparts; j++)
      if (part[j].cost < part[least].cost) least = j;
    part[least].kernels[part[least].n++] = order[i].kernel;
    part[least].cost += order[i].cost;
  }
  for (int j = 0; j < nparts; j++) qsort(part[j].kernels, part[j].n, sizeof(uint32_t), by_number);
  free(order);
  free(cost);
}

int cpu_compile_parts(KProgram *p, const CpuOptions *o, int nparts, char ***objects, size_t **lengths) {
  *objects = NULL;
  *lengths = NULL;
  if (!cpu_prepare_kernels(p, o)) return 0;
  if (nparts < 1) nparts = 1;
  if ((uint32_t)nparts > p->nkernels) nparts = p->nkernels ? (int)p->nkernels : 1;
  double t0 = nnc_now();
  Part *part = nnc_xcalloc((size_t)nparts, sizeof(Part));
  deal(p, part, nparts);
  for (int j = 0; j < nparts; j++) part[j].p = p, part[j].o = o;
  if (o->verbose) fprintf(stderr, "nnc: %-10s %8.3f ms\n", "cpu-deal", (nnc_now() - t0) * 1e3);
  t0 = nnc_now();
  pthread_t *thread = nnc_xcalloc((size_t)nparts, sizeof(pthread_t));
  bool *started = nnc_xcalloc((size_t)nparts, sizeof(bool));
  for (int j = 1; j < nparts; j++) started[j] = pthread_create(&thread[j], NULL, compile_part, &part[j]) == 0;
  compile_part(&part[0]);
  for (int j = 1; j < nparts; j++) {
    if (started[j]) pthread_join(thread[j], NULL);
    else compile_part(&part[j]); /* no thread to be had: compile it here */
  }
  bool ok = true;
  *objects = nnc_xcalloc((size_t)nparts, sizeof(char *));
  *lengths = nnc_xcalloc((size_t)nparts, sizeof(size_t));
  for (int j = 0; j < nparts; j++) {
    if (o->verbose)
      fprintf(stderr, "nnc: cpu part %d: %u kernels, size %lld, %.3f ms\n", j, part[j].n, (long long)part[j].cost,
              part[j].seconds * 1e3);
    if (part[j].why && ok) diag_error_plain("%s", part[j].why);
    ok &= !part[j].why;
    (*objects)[j] = part[j].obj;
    (*lengths)[j] = part[j].len;
    free(part[j].why);
    free(part[j].kernels);
  }
  if (o->verbose) fprintf(stderr, "nnc: %-10s %8.3f ms (%d threads)\n", "cpu-compile", (nnc_now() - t0) * 1e3, nparts);
  free(started);
  free(thread);
  free(part);
  if (ok) return nparts;
  for (int j = 0; j < nparts; j++) free((*objects)[j]);
  free(*objects);
  free(*lengths);
  *objects = NULL;
  *lengths = NULL;
  return 0;
}
