/* codegen/target.c - the target table (see target.h). */
#include "codegen/target.h"

#include <string.h>

const TargetInfo nnc_targets[] = {
    {"cpu", "native code for the host CPU through LLVM", true},
    {"gpu", "PTX for NVIDIA GPUs through LLVM's NVPTX backend, run by the CUDA driver", true},
    {"opencl", "OpenCL C NDRange kernels for any OpenCL device", true},
    {"fpga", "OpenCL C single-work-item kernels for FPGA flows (Intel FPGA SDK, Vitis)", true},
    {"asic", "OpenCL C embedded-profile kernels for fixed-function accelerators", true},
    {"interp", "the reference interpreter (slow, simple: the oracle for every backend)", true},
    {NULL, NULL, false},
};

const TargetInfo *target_find(const char *name) {
  for (const TargetInfo *t = nnc_targets; t->name; t++)
    if (!strcmp(t->name, name)) return t;
  return NULL;
}
