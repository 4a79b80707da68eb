/* codegen/cpu/target.c - the target machine, the optimisation pipeline and
 * the output files of the CPU backend (see cpu.h).
 *
 * The machine is the host's (LLVMGetHostCPUName/Features), or --cpu=NAME
 * with that CPU's default features; code is position independent because
 * the linked trainer is a PIE.  Optimisation is LLVM's own
 * default<O0..O3> pipeline with the loop and SLP vectorisers on from -O2;
 * every function carries "target-cpu"/"target-features", so the IR that
 * --emit=llvm prints compiles to the same code with llc.
 */
#include "codegen/cpu/cpu.h"

#include "codegen/llvm/target.h"

#include "support/diag.h"
#include "support/stats.h"
#include "passes/schedule_cpu.h"

#include <llvm-c/Target.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void init_native(void) {
  static bool done;
  if (done) return;
  done = true;
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  LLVMInitializeNativeAsmParser();
}

LLVMTargetMachineRef cpu_target_machine(const CpuOptions *o) {
  init_native();
  char *triple = LLVMGetDefaultTargetTriple();
  bool host = !o->cpu || !*o->cpu || !strcmp(o->cpu, "native");
  char *cpu = host ? LLVMGetHostCPUName() : NULL;
  char *features = host ? LLVMGetHostCPUFeatures() : NULL;
  /* An unknown --cpu makes LLVM warn "'NAME' is not a recognized processor"
   * and fall back to the generic CPU; the C API has no way to ask first. */
  LLVMTargetMachineRef tm = lk_target_machine(triple, host ? cpu : o->cpu, host ? features : "", o->opt_level,
                                              LLVMRelocPIC);
  if (tm && o->verbose) fprintf(stderr, "nnc: cpu target %s, cpu %s\n", triple, host ? cpu : o->cpu);
  if (cpu) LLVMDisposeMessage(cpu);
  if (features) LLVMDisposeMessage(features);
  LLVMDisposeMessage(triple);
  return tm;
}

void cpu_prepare_module(LLVMModuleRef m, LLVMTargetMachineRef tm) {
  lk_module_target(m, tm);
  char *cpu = LLVMGetTargetMachineCPU(tm);
  char *features = LLVMGetTargetMachineFeatureString(tm);
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f)) {
    if (LLVMIsDeclaration(f)) continue;
    if (*cpu) LLVMAddTargetDependentFunctionAttr(f, "target-cpu", cpu);
    if (*features) LLVMAddTargetDependentFunctionAttr(f, "target-features", features);
    /* As clang does by default: FP exceptions are not observed, so FP
     * operations may be speculated (hoisted out of guards). */
    LLVMAddTargetDependentFunctionAttr(f, "no-trapping-math", "true");
  }
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
}

bool cpu_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, int opt_level, char **why) {
  if (opt_level < 0) opt_level = 0;
  if (opt_level > 3) opt_level = 3;
  char pipeline[32];
  snprintf(pipeline, sizeof pipeline, "default<O%d>", opt_level);
  return lk_run_pipeline(m, tm, pipeline, opt_level, opt_level >= 2, why);
}

bool cpu_write_bytes(const char *path, const char *data, size_t size) {
  bool to_stdout = !path || !strcmp(path, "-");
  FILE *f = to_stdout ? stdout : fopen(path, "wb");
  if (!f) {
    diag_error_plain("cannot write '%s': %s", path, strerror(errno));
    return false;
  }
  bool ok = fwrite(data, 1, size, f) == size;
  ok &= to_stdout ? fflush(f) == 0 : fclose(f) == 0;
  if (!ok) diag_error_plain("error writing '%s'", to_stdout ? "stdout" : path);
  return ok;
}

bool cpu_write(LLVMModuleRef m, LLVMTargetMachineRef tm, CpuOutKind kind, const char *path) {
  char *bytes;
  size_t len;
  LkOut out = kind == CPU_OUT_LLVM ? LK_OUT_IR : kind == CPU_OUT_ASM ? LK_OUT_ASM : LK_OUT_OBJ;
  if (!lk_module_bytes(m, tm, out, &bytes, &len, NULL)) return false;
  bool ok = cpu_write_bytes(path, bytes, len);
  free(bytes);
  return ok;
}

/* The widest f32 vector the machine has, and how many such registers:
 * from the host's feature string, or for --cpu=NAME from the name (the C
 * API cannot ask a target machine for its CPU's implied features). */
static void vector_registers(const CpuOptions *o, LLVMTargetMachineRef tm, int *lanes, int *regs) {
  static const char *const avx512[] = {"skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake",
                                       "tigerlake", "rocketlake", "sapphirerapids", "emeraldrapids",
                                       "graniterapids", "znver4", "znver5", "x86-64-v4", NULL};
  static const char *const avx2[] = {"haswell", "broadwell", "skylake", "alderlake", "raptorlake", "meteorlake",
                                     "arrowlake", "lunarlake", "znver1", "znver2", "znver3", "x86-64-v3",
                                     "gracemont", "sierraforest", "grandridge", "bdver4", NULL};
  bool host = !o->cpu || !*o->cpu || !strcmp(o->cpu, "native");
  *lanes = 4;
  *regs = 16;
  if (host) {
    char *f = LLVMGetTargetMachineFeatureString(tm);
    if (strstr(f, "+avx512f")) *lanes = 16, *regs = 32;
    else if (strstr(f, "+avx2") || strstr(f, "+avx,")) *lanes = 8;
    LLVMDisposeMessage(f);
    return;
  }
  for (int i = 0; avx512[i]; i++)
    if (!strncmp(o->cpu, avx512[i], strlen(avx512[i]))) *lanes = 16, *regs = 32;
  for (int i = 0; avx2[i]; i++)
    if (!strcmp(o->cpu, avx2[i])) *lanes = 8;
}

static bool schedule_for(KProgram *p, const CpuOptions *o, LLVMTargetMachineRef tm) {
  CpuScheduleOptions so = {0, 0, o->schedule};
  vector_registers(o, tm, &so.vector, &so.registers);
  return schedule_cpu(p, &so);
}

bool cpu_schedule(KProgram *p, const CpuOptions *o) {
  LLVMTargetMachineRef tm = cpu_target_machine(o);
  if (!tm) return false;
  bool ok = schedule_for(p, o, tm);
  LLVMDisposeTargetMachine(tm);
  return ok;
}

/* The contractions this backend emits itself: a kernel's packed product
 * (gemm.c) and those with a direct plan (direct.c). */
static bool is_planned_product(const KStmt *s, void *kernel) {
  const Kernel *k = kernel;
  return (k->gemm && k->gemm->contract == s) || s->direct.vector > 0;
}

bool cpu_prepare_kernels(KProgram *p, const CpuOptions *o) {
  LLVMTargetMachineRef tm = cpu_target_machine(o);
  if (!tm) return false;
  bool ok = schedule_for(p, o, tm);
  LLVMDisposeTargetMachine(tm);
  if (!ok) return false;
  for (uint32_t i = 0; i < p->nkernels; i++) /* the rest of the contractions as loops */
    kernel_expand_contractions(p, &p->kernels[i], is_planned_product, &p->kernels[i]);
  return true;
}

bool cpu_compile(KProgram *p, const CpuOptions *o, CpuOutKind kind, const char *path) {
  double t0 = nnc_now();
  if (!cpu_prepare_kernels(p, o)) return false;
  LLVMTargetMachineRef tm = cpu_target_machine(o);
  if (!tm) return false;
  LLVMContextRef ctx = LLVMContextCreate();
  lk_diagnostics(ctx, o->verbose);
  LLVMModuleRef m = cpu_emit_module(p, ctx, NULL, 0);
  cpu_prepare_module(m, tm);
  if (o->verbose) fprintf(stderr, "nnc: %-10s %8.3f ms\n", "cpu-emit", (nnc_now() - t0) * 1e3);
  t0 = nnc_now();
  bool ok = cpu_optimize(m, tm, o->opt_level, NULL);
  if (o->verbose) fprintf(stderr, "nnc: %-10s %8.3f ms\n", "cpu-opt", (nnc_now() - t0) * 1e3);
  t0 = nnc_now();
  ok = ok && cpu_write(m, tm, kind, path);
  if (o->verbose) fprintf(stderr, "nnc: %-10s %8.3f ms\n", "cpu-write", (nnc_now() - t0) * 1e3);
  LLVMDisposeModule(m);
  LLVMContextDispose(ctx);
  LLVMDisposeTargetMachine(tm);
  return ok;
}
