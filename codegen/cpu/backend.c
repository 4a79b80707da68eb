/* codegen/cpu/backend.c - the cpu target as an NncBackend: the kernels are
 * compiled by LLVM (cpu_compile) into an object that the host links with
 * the descriptor and libnnrt, the same way a plugin's kernels are.
 *
 * A built-in backend may look inside the opaque handles: an NncProgram is
 * nnc's KProgram.  Everything else goes through the host table, like a
 * plugin's calls. */
#include "codegen/backend.h"
#include "codegen/cpu/cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static CpuOptions cpu_options(const NncHost *h, NncCompile *c) {
  CpuOptions co = {.opt_level = h->opt_level(c), .cpu = h->option(c, "cpu"), .verbose = h->verbose(c) != 0,
                   .schedule = h->option(c, "schedule")};
  return co;
}

/* --emit=kernels: the matmul tiles compile() would use (passes/schedule_cpu.c). */
static int cpu_backend_schedule(const NncHost *h, NncCompile *c) {
  CpuOptions co = cpu_options(h, c);
  return cpu_schedule((KProgram *)h->program(c), &co) ? 0 : 1;
}

/* The kernels compile on --jobs threads, by default one per core up to
 * MAX_COMPILE_THREADS (codegen/cpu/parts.c). */
enum { MAX_COMPILE_THREADS = 8 };
static int compile_threads(const NncHost *h, NncCompile *c) {
  const char *jobs = h->option(c, "jobs"); /* 1..64, checked by the driver */
  if (jobs) return atoi(jobs);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > MAX_COMPILE_THREADS ? MAX_COMPILE_THREADS : (int)n;
}

static int cpu_backend_compile(const NncHost *h, NncCompile *c) {
  KProgram *kp = (KProgram *)h->program(c); /* the cpu schedule rewrites it */
  const char *emit = h->emit(c);
  const char *out = h->output(c) ? h->output(c) : "train";
  if (!emit && !strcmp(out, "-")) {
    h->diag(c, NNC_DIAG_ERROR, NULL, "a trainer executable cannot be written to stdout; give -o FILE");
    return 1;
  }
  if (emit && !strcmp(emit, "obj") && (!h->output(c) || !strcmp(out, "-"))) {
    h->diag(c, NNC_DIAG_ERROR, NULL, "--emit=obj writes a binary file: give it with -o FILE");
    return 1;
  }
  bool lib = emit && !strcmp(emit, "lib"); /* the inference library: kernels as for a trainer */
  if (lib && (!h->output(c) || !strcmp(out, "-"))) {
    h->diag(c, NNC_DIAG_ERROR, NULL, "--emit=lib writes a directory (NAME.h, libNAME.a): give it with -o DIR");
    return 1;
  }
  const KProgram *prog = (const KProgram *)h->program(c);
  if (lib && prog->output < 0) {
    h->diag(c, NNC_DIAG_ERROR, NULL, "model '%s' names no prediction: add `output NAME` to the model (--emit=lib needs one)",
            prog->module && prog->module->name ? prog->module->name : "model");
    return 1;
  }
  CpuOptions co = cpu_options(h, c);
  if (emit && !lib) {
    CpuOutKind kind = !strcmp(emit, "llvm") ? CPU_OUT_LLVM : !strcmp(emit, "asm") ? CPU_OUT_ASM : CPU_OUT_OBJ;
    return cpu_compile(kp, &co, kind, h->output(c)) ? 0 : 1;
  }
  char **bytes;
  size_t *len;
  int n = cpu_compile_parts(kp, &co, compile_threads(h, c), &bytes, &len);
  const char **obj = n ? calloc((size_t)n, sizeof(char *)) : NULL;
  bool ok = obj != NULL;
  for (int i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "kernels%d.o", i);
    ok = ok && (obj[i] = h->temp_file(c, name)) && cpu_write_bytes(obj[i], bytes[i], len[i]);
    free(bytes[i]);
  }
  free(bytes);
  free(len);
  int rc = !ok ? 1 : lib ? h->link_library(c, obj, n, out) : h->link_trainer(c, "cpu", NULL, 0, NULL, obj, n, out);
  free(obj);
  return rc;
}

const NncBackend nnc_backend_cpu = {
    .api_version = NNC_BACKEND_API_VERSION,
    .struct_size = sizeof(NncBackend),
    .name = "cpu",
    .description = "native code for the host CPU through LLVM",
    .emits = "llvm,asm,obj,lib",
    .compile = cpu_backend_compile,
    .flags = NNC_BACKEND_CONTRACTIONS, /* packed products (passes/schedule_cpu.c, gemm.c) */
    .options = "cpu,schedule,jobs",
    .code = NNC_CODE_NATIVE,
    .schedule = cpu_backend_schedule,
};
