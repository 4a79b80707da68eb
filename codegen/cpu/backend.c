/* codegen/cpu/backend.c - the cpu target as an NncBackend: the kernels are
 * compiled by LLVM (cpu_compile) into an object that the host links with
 * the descriptor and libnnrt, the same way a plugin's kernels are.
 *
 * A built-in backend may look inside the opaque handles: an NncProgram is
 * nnc's KProgram.  Everything else goes through the host table, like a
 * plugin's calls. */
#include "codegen/backend.h"
#include "codegen/cpu/cpu.h"

#include <string.h>

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
  CpuOptions co = cpu_options(h, c);
  if (emit) {
    CpuOutKind kind = !strcmp(emit, "llvm") ? CPU_OUT_LLVM : !strcmp(emit, "asm") ? CPU_OUT_ASM : CPU_OUT_OBJ;
    return cpu_compile(kp, &co, kind, h->output(c)) ? 0 : 1;
  }
  const char *obj = h->temp_file(c, "kernels.o");
  if (!obj || !cpu_compile(kp, &co, CPU_OUT_OBJ, obj)) return 1;
  return h->link_trainer(c, "cpu", NULL, 0, NULL, &obj, 1, out);
}

const NncBackend nnc_backend_cpu = {
    .api_version = NNC_BACKEND_API_VERSION,
    .struct_size = sizeof(NncBackend),
    .name = "cpu",
    .description = "native code for the host CPU through LLVM",
    .emits = "llvm,asm,obj",
    .compile = cpu_backend_compile,
    .flags = NNC_BACKEND_CONTRACTIONS, /* packed products (passes/schedule_cpu.c, gemm.c) */
    .options = "cpu,schedule",
    .code = NNC_CODE_NATIVE,
    .schedule = cpu_backend_schedule,
};
