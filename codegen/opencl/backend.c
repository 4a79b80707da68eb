/* codegen/opencl/backend.c - the opencl, fpga and asic targets as
 * NncBackends: one compile function, the dialect picked by the target name
 * (codegen/opencl/dialects.c).  --emit=cl writes the OpenCL C and its launch
 * plan; otherwise the descriptor with the source embedded (written by
 * ocl_write_descriptor: it adds the dialect's launch settings) is linked
 * into a trainer by the host. */
#include "codegen/backend.h"
#include "codegen/opencl/opencl.h"

#include <stdlib.h>
#include <string.h>

static int ocl_backend_compile(const NncHost *h, NncCompile *c) {
  KProgram *kp = (KProgram *)h->program(c);
  const char *target = h->target(c);
  const char *emit = h->emit(c);
  const char *out = h->output(c) ? h->output(c) : "train";
  if (!emit && !strcmp(out, "-")) {
    h->diag(c, NNC_DIAG_ERROR, NULL, "a trainer executable cannot be written to stdout; give -o FILE");
    return 1;
  }
  const char *lm = h->option(c, "local-mem"), *batch = h->option(c, "batch");
  OclOptions oo = {target, lm ? strtoll(lm, NULL, 10) : 0, batch ? strtoll(batch, NULL, 10) : 0};
  OclCode code;
  bool ok = ocl_generate(kp, &oo, &code);
  if (ok && emit) {
    ok = ocl_emit_files(kp, &code, h->output(c));
  } else if (ok) {
    const char *desc = h->temp_file(c, "model.c");
    ok = desc && ocl_write_descriptor(kp, &code, desc) && h->link_executable(c, &desc, 1, out) == 0;
  }
  ocl_code_free(&code);
  return ok ? 0 : 1;
}

/* One backend per dialect (codegen/opencl/dialects.c, the same name).
 * OPTIONS: the --backend-opt keys its dialect reads ("local-mem" sizes the
 * tiles of dialects with local memory). */
#define OCL_BACKEND(var, NAME, DESC, OPTIONS)                                                             \
  static const NncBackend var = {.api_version = NNC_BACKEND_API_VERSION,                                 \
                                 .struct_size = sizeof(NncBackend),                                      \
                                 .name = NAME,                                                           \
                                 .description = DESC,                                                    \
                                 .emits = "cl",                                                          \
                                 .flags = NNC_BACKEND_SEPARATE_CONTRACTIONS | NNC_BACKEND_CONTRACTIONS,  \
                                 .compile = ocl_backend_compile,                                         \
                                 .options = OPTIONS,                                                     \
                                 .code = NNC_CODE_OPENCL_C}

OCL_BACKEND(backend_opencl, "opencl", "OpenCL C NDRange kernels for any OpenCL device", "local-mem,batch");
OCL_BACKEND(backend_fpga, "fpga", "OpenCL C single-work-item kernels for FPGA flows (Intel FPGA SDK, Vitis)", "batch");
OCL_BACKEND(backend_asic, "asic", "OpenCL C embedded-profile kernels for fixed-function accelerators",
            "local-mem,batch");

const NncBackend *const nnc_backends_opencl[] = {&backend_opencl, &backend_fpga, &backend_asic, NULL};
