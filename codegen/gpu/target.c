/* codegen/gpu/target.c - the NVPTX target machine, libdevice, the
 * optimisation pipeline and the PTX text of the gpu backend (see gpu.h).
 *
 * The machine is nvptx64-nvidia-cuda with --gpu-arch as its CPU (sm_90 by
 * default); LLVM picks the PTX version the architecture needs (sm_75: 6.3,
 * sm_80: 7.0, sm_90: 7.8, sm_90a: 8.0).  NVPTX has no libcalls for exp,
 * log, tanh, pow and the like, so the kernels call the libdevice functions
 * ir/ops.def names (__nv_expf, ...): its
 * bitcode is linked into the module, everything that is not a kernel is
 * made internal, and the pipeline `function(nvvm-reflect),globaldce,
 * default<ON>` resolves libdevice's __nvvm_reflect queries (no flush to
 * zero), drops what is not called and inlines the rest.  Without
 * libdevice ($NNC_LIBDEVICE, or the CUDA toolkit's nvvm/libdevice), the
 * kernels use approximate instructions instead and -v says so.
 */
#include "codegen/gpu/gpu.h"

#include "codegen/llvm/target.h"
#include "support/diag.h"
#include "support/stats.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/Linker.h>
#include <llvm-c/Target.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const archs[] = {"sm_75", "sm_80", "sm_86", "sm_87", "sm_89", "sm_90", "sm_90a", NULL};
const char gpu_arch_list[] = "sm_75, sm_80, sm_86, sm_87, sm_89, sm_90 or sm_90a";

bool gpu_arch_valid(const char *arch) {
  for (int i = 0; arch && archs[i]; i++)
    if (!strcmp(arch, archs[i])) return true;
  return false;
}

const char *gpu_libdevice_path(const GpuOptions *o) {
  static char buf[4096];
  const char *env = getenv("NNC_LIBDEVICE");
  const char *cuda = getenv("CUDA_HOME");
  if (o->libdevice) return access(o->libdevice, R_OK) == 0 ? o->libdevice : NULL;
  if (env && *env) return access(env, R_OK) == 0 ? env : NULL;
  if (cuda && *cuda) {
    snprintf(buf, sizeof buf, "%s/nvvm/libdevice/libdevice.10.bc", cuda);
    if (access(buf, R_OK) == 0) return buf;
  }
  return access("/usr/local/cuda/nvvm/libdevice/libdevice.10.bc", R_OK) == 0
             ? "/usr/local/cuda/nvvm/libdevice/libdevice.10.bc"
             : NULL;
}

static void init_nvptx(void) {
  static bool done;
  if (done) return;
  done = true;
  LLVMInitializeNVPTXTargetInfo();
  LLVMInitializeNVPTXTarget();
  LLVMInitializeNVPTXTargetMC();
  LLVMInitializeNVPTXAsmPrinter();
}

LLVMTargetMachineRef gpu_target_machine(const GpuOptions *o) {
  init_nvptx();
  const char *triple = "nvptx64-nvidia-cuda", *arch = o->arch ? o->arch : "sm_90";
  if (!gpu_arch_valid(arch)) {
    diag_error_plain("unknown GPU architecture '%s'; expected %s", arch, gpu_arch_list);
    return NULL;
  }
  LLVMTargetMachineRef tm = lk_target_machine(triple, arch, "", o->opt_level, LLVMRelocDefault);
  if (tm && o->verbose) fprintf(stderr, "nnc: gpu target %s, %s\n", triple, arch);
  return tm;
}

/* Everything but the kernels becomes internal, so global DCE drops the
 * libdevice functions nothing calls. */
static void internalize(LLVMModuleRef m) {
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f))
    if (!LLVMIsDeclaration(f) && LLVMGetFunctionCallConv(f) != LLVMPTXKernelCallConv)
      LLVMSetLinkage(f, LLVMInternalLinkage);
  for (LLVMValueRef g = LLVMGetFirstGlobal(m); g; g = LLVMGetNextGlobal(g))
    if (!LLVMIsDeclaration(g)) LLVMSetLinkage(g, LLVMInternalLinkage);
}

bool gpu_link_libdevice(LLVMModuleRef m, const char *path) {
  LLVMContextRef ctx = LLVMGetModuleContext(m);
  LLVMMemoryBufferRef buf = NULL;
  char *err = NULL;
  if (LLVMCreateMemoryBufferWithContentsOfFile(path, &buf, &err)) {
    diag_error_plain("cannot read libdevice '%s': %s", path, err ? err : "unknown error");
    LLVMDisposeMessage(err);
    return false;
  }
  LLVMModuleRef lib = NULL;
  bool bad = LLVMParseBitcodeInContext2(ctx, buf, &lib);
  LLVMDisposeMemoryBuffer(buf);
  if (bad) {
    diag_error_plain("'%s' is not LLVM bitcode that LLVM 19 reads", path);
    return false;
  }
  /* libdevice says nvptx64-nvidia-gpulibs and an older data layout: use ours */
  LLVMSetTarget(lib, LLVMGetTarget(m));
  LLVMSetDataLayout(lib, LLVMGetDataLayoutStr(m));
  if (LLVMLinkModules2(m, lib)) { /* consumes lib */
    diag_error_plain("cannot link libdevice '%s' into the kernels", path);
    return false;
  }
  internalize(m);
  return true;
}

bool gpu_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, int opt_level) {
  if (opt_level < 0) opt_level = 0;
  if (opt_level > 3) opt_level = 3;
  char pipeline[96];
  snprintf(pipeline, sizeof pipeline, "function(nvvm-reflect),globaldce,default<O%d>", opt_level);
  return lk_run_pipeline(m, tm, pipeline, opt_level, -1, NULL);
}

bool gpu_compile(KProgram *p, const GpuOptions *o, GpuOutKind kind, char **text, size_t *len) {
  *text = NULL;
  *len = 0;
  LLVMTargetMachineRef tm = gpu_target_machine(o);
  if (!tm) return false;
  double t0 = nnc_now();
  int64_t batch = o->batch > 0 ? o->batch : p->module && p->module->train.batch > 0 ? p->module->train.batch : 32;
  GpuScheduleOptions so = {batch, 0, 0};
  GpuSchedule s;
  gpu_schedule(p, &so, &s);
  if (!kprog_verify(p)) nnc_internal_error(__FILE__, __LINE__, "the kernel IR is invalid after the gpu schedule");
  const char *libdevice = gpu_libdevice_path(o);
  if (!libdevice && o->verbose)
    fprintf(stderr, "nnc: note: libdevice not found (set NNC_LIBDEVICE or CUDA_HOME); the math functions use "
                    "approximate instructions\n");
  LLVMContextRef ctx = LLVMContextCreate();
  lk_diagnostics(ctx, o->verbose);
  LLVMModuleRef m = gpu_emit_module(p, &s, ctx, GPU_FLAVOR_PTX, libdevice ? GPU_MATH_LIBDEVICE : GPU_MATH_APPROX);
  gpu_schedule_free(&s);
  char *msg = NULL;
  if (LLVMVerifyModule(m, LLVMReturnStatusAction, &msg))
    nnc_internal_error(__FILE__, __LINE__, "gpu codegen produced invalid LLVM IR: %s", msg);
  LLVMDisposeMessage(msg);
  lk_module_target(m, tm);
  if (o->verbose) fprintf(stderr, "nnc: %-10s %8.3f ms\n", "gpu-emit", (nnc_now() - t0) * 1e3);
  t0 = nnc_now();
  bool ok = !libdevice || gpu_link_libdevice(m, libdevice);
  if (!libdevice) internalize(m);
  if (ok && o->verbose && libdevice) fprintf(stderr, "nnc: %-10s %8.3f ms (%s)\n", "libdevice", (nnc_now() - t0) * 1e3, libdevice);
  t0 = nnc_now();
  ok = ok && gpu_optimize(m, tm, o->opt_level);
  if (o->verbose) fprintf(stderr, "nnc: %-10s %8.3f ms\n", "gpu-opt", (nnc_now() - t0) * 1e3);
  t0 = nnc_now();
  ok = ok && lk_module_bytes(m, tm, kind == GPU_OUT_LLVM ? LK_OUT_IR : LK_OUT_ASM, text, len, NULL);
  if (o->verbose) fprintf(stderr, "nnc: %-10s %8.3f ms\n", "gpu-ptx", (nnc_now() - t0) * 1e3);
  LLVMDisposeModule(m);
  LLVMContextDispose(ctx);
  LLVMDisposeTargetMachine(tm);
  return ok;
}
