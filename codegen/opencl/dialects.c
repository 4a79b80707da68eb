/* codegen/opencl/dialects.c - the dialect tables of the C-family emitter.
 *
 * Every difference between the targets that render through emit_c.c is a
 * field here; the emitter has no `if (fpga)`.  To add a dialect, add a
 * table and list it in c_dialects.  A portable C99 dialect for an HLS
 * plugin would read, for example:
 *
 *   .name = "c99", .preamble = "#include <math.h>\n",
 *   .kernel_qual = "", .kernel_attr = "", .helper_qual = "static inline",
 *   .global_qual = "", .local_qual = NULL, .restrict_kw = "restrict",
 *   .index_type = "long long", .batch_type = "long long", .uint_type = "unsigned",
 *   .math_suffix = "f",
 *   .has_double = true, .has_long = true, .launch = CL_LAUNCH_SINGLE,
 *   .unroll_fmt = "#pragma HLS unroll factor=%d", .unroll_max = 16,
 *   .pipeline = "_Pragma(\"HLS pipeline\")", .stage_max = 4096,
 *
 * (unsigned is 32 bits on every HLS target; the helpers assume it).
 */
#include "codegen/opencl/emit_c.h"

#include <string.h>

/* Vendor spellings live behind macros the build options may switch on, so
 * the same source builds unchanged on PoCL, which rejects some of them
 * (`xcl_pipeline_loop` before `#pragma unroll` is a hard error there). */
static const char fpga_preamble[] =
    "/* Vendor loop hints.  Build with -DNNC_INTEL_FPGA (Intel FPGA SDK for OpenCL, aoc)\n"
    " * or -DNNC_XILINX_FPGA (AMD Vitis, v++); without either they expand to nothing.\n"
    " *   NNC_PIPELINE  before innermost loops that are not unrolled: pipeline them\n"
    " *   NNC_IVDEP     before loops whose iterations touch disjoint memory */\n"
    "#if defined(NNC_INTEL_FPGA)\n"
    "#define NNC_PIPELINE\n"
    "#define NNC_IVDEP _Pragma(\"ivdep\")\n"
    "#elif defined(NNC_XILINX_FPGA)\n"
    "#define NNC_PIPELINE __attribute__((xcl_pipeline_loop(1)))\n"
    "#define NNC_IVDEP\n"
    "#else\n"
    "#define NNC_PIPELINE\n"
    "#define NNC_IVDEP\n"
    "#endif\n";

static const CDialect dialect_opencl = {
    .name = "opencl",
    .description = "OpenCL C 1.2, NDRange: one work-item per output element",
    .preamble = "",
    .kernel_qual = "__kernel",
    .kernel_attr = "",
    .helper_qual = "static inline",
    .global_qual = "__global ",
    .local_qual = "__local ",
    .restrict_kw = "restrict",
    .index_type = "long",
    .batch_type = "long",
    .uint_type = "uint",
    .math_suffix = "",
    .has_double = true,
    .has_long = true,
    .launch = CL_LAUNCH_NDRANGE,
    .global_id = "get_global_id(0)",
    .local_id = "get_local_id(0)",
    .group_id = "get_group_id(0)",
    .num_groups = "get_num_groups(0)",
    .barrier = "barrier(CLK_LOCAL_MEM_FENCE)",
    .group_size = 256,
    .unroll_fmt = "#pragma unroll %d",
    .unroll_max = 0,
    .pipeline = NULL,
    .ivdep = NULL,
    .local_mem = 32768, /* the OpenCL 1.2 full profile's minimum */
    .tile_k = 16,
    .stage_max = 0,
    .build_options = "-cl-std=CL1.2 -cl-mad-enable",
    .single_work_item = false,
    .batch_i32 = false,
};

static const CDialect dialect_fpga = {
    .name = "fpga",
    .description = "OpenCL C 1.2 single-work-item kernels for FPGA flows (Intel FPGA SDK, AMD Vitis)",
    .preamble = fpga_preamble,
    .kernel_qual = "__kernel",
    .kernel_attr = "__attribute__((reqd_work_group_size(1, 1, 1)))",
    .helper_qual = "static inline",
    .global_qual = "__global ",
    .local_qual = "__local ",
    .restrict_kw = "restrict",
    .index_type = "long",
    .batch_type = "long",
    .uint_type = "uint",
    .math_suffix = "",
    .has_double = true,
    .has_long = true,
    .launch = CL_LAUNCH_SINGLE,
    .group_size = 1,
    .unroll_fmt = "#pragma unroll %d",
    .unroll_max = 16,
    .pipeline = "NNC_PIPELINE",
    .ivdep = "NNC_IVDEP",
    .local_mem = 0,
    .tile_k = 0,
    .stage_max = 4096, /* 16 KiB of on-chip RAM per staged row */
    .build_options = "-cl-std=CL1.2 -cl-mad-enable",
    .single_work_item = true,
    .batch_i32 = false,
};

/* The embedded profile: no double, no 64-bit integers (B and every index
 * are int: opencl.c refuses buffers of 2^31 elements or more), local
 * memory as small as --local-mem says (opencl.c overrides local_mem). */
static const CDialect dialect_asic = {
    .name = "asic",
    .description = "OpenCL C 1.2 embedded profile: float and 32-bit int only, bounded local memory",
    .preamble = "",
    .kernel_qual = "__kernel",
    .kernel_attr = "",
    .helper_qual = "static inline",
    .global_qual = "__global ",
    .local_qual = "__local ",
    .restrict_kw = "restrict",
    .index_type = "int",
    .batch_type = "int",
    .uint_type = "uint",
    .math_suffix = "",
    .has_double = false,
    .has_long = false,
    .launch = CL_LAUNCH_NDRANGE,
    .global_id = "get_global_id(0)",
    .local_id = "get_local_id(0)",
    .group_id = "get_group_id(0)",
    .num_groups = "get_num_groups(0)",
    .barrier = "barrier(CLK_LOCAL_MEM_FENCE)",
    .group_size = 256,
    .unroll_fmt = "#pragma unroll %d",
    .unroll_max = 0,
    .pipeline = NULL,
    .ivdep = NULL,
    .local_mem = 32768, /* --local-mem */
    .tile_k = 16,
    .stage_max = 0,
    .build_options = "-cl-std=CL1.2 -cl-mad-enable",
    .single_work_item = false,
    .batch_i32 = true,
};

const CDialect *const c_dialects[] = {&dialect_opencl, &dialect_fpga, &dialect_asic, NULL};

const CDialect *c_dialect_find(const char *name) {
  for (int i = 0; c_dialects[i]; i++)
    if (!strcmp(c_dialects[i]->name, name)) return c_dialects[i];
  return NULL;
}
