/* codegen/gpu/backend.c - the gpu target as an NncBackend: PTX through
 * LLVM's NVPTX backend (gpu_compile), written by --emit=ptx|llvm or
 * embedded in the descriptor of a trainer that opens the CUDA driver. */
#include "codegen/backend.h"
#include "codegen/gpu/gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int gpu_backend_compile(const NncHost *h, NncCompile *c) {
  KProgram *kp = (KProgram *)h->program(c);
  const char *emit = h->emit(c);
  const char *out = h->output(c) ? h->output(c) : "train";
  if (!emit && !strcmp(out, "-")) {
    h->diag(c, NNC_DIAG_ERROR, NULL, "a trainer executable cannot be written to stdout; give -o FILE");
    return 1;
  }
  const char *batch = h->option(c, "batch");
  GpuOptions go = {h->opt_level(c), h->option(c, "gpu-arch"), h->verbose(c) != 0, NULL,
                   batch ? strtoll(batch, NULL, 10) : 0};
  char *code = NULL;
  size_t len = 0;
  bool ok = gpu_compile(kp, &go, emit && !strcmp(emit, "llvm") ? GPU_OUT_LLVM : GPU_OUT_PTX, &code, &len);
  if (ok && emit) {
    const char *path = h->output(c);
    bool std = !path || !strcmp(path, "-");
    FILE *f = std ? stdout : fopen(path, "w");
    ok = f && fwrite(code, 1, len, f) == len;
    if (f) ok &= std ? fflush(f) == 0 : fclose(f) == 0;
    if (!ok) h->diag(c, NNC_DIAG_ERROR, NULL, "error writing '%s'", std ? "stdout" : path);
  } else if (ok) {
    ok = h->link_trainer(c, "gpu", code, len, NULL, NULL, 0, out) == 0;
  }
  free(code);
  return ok ? 0 : 1;
}

const NncBackend nnc_backend_gpu = {
    .api_version = NNC_BACKEND_API_VERSION,
    .struct_size = sizeof(NncBackend),
    .name = "gpu",
    .description = "PTX for NVIDIA GPUs through LLVM's NVPTX backend, run by the CUDA driver",
    .emits = "ptx,llvm",
    .flags = NNC_BACKEND_SEPARATE_CONTRACTIONS | NNC_BACKEND_CONTRACTIONS, /* scheduled alone (codegen/gpu/schedule.c) */
    .compile = gpu_backend_compile,
    .options = "gpu-arch,batch",
    .code = NNC_CODE_PTX,
};
