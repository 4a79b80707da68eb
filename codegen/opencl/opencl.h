/* codegen/opencl/opencl.h - the opencl, fpga and asic targets.
 *
 * All three render the kernel IR as OpenCL C through one emitter and a
 * dialect table (emit_c.h); they differ in how kernels are launched
 * (NDRange, or one work-item for FPGA flows), in the types they may use
 * (asic: no double, no 64-bit integers) and in their on-chip memory.
 *
 *   ocl_generate         schedule (NDRange dialects rewrite the kernels and
 *                        so their launch ranges) and render the source
 *   ocl_emit_files       --emit=cl: FILE.cl, and FILE.plan.json beside it,
 *                        the launch plan for offline flows (aoc, v++)
 *   ocl_write_descriptor the trainer's descriptor C (codegen/descriptor.c) with
 *                        this target's RtModelDesc fields, for the link step
 *
 * See docs/backends-opencl.md.
 */
#ifndef NNC_OPENCL_H
#define NNC_OPENCL_H

#include "codegen/opencl/emit_c.h"

#include <stdio.h>

typedef struct OclOptions {
  const char *target;     /* "opencl", "fpga" or "asic": the dialect */
  int64_t local_mem;      /* asic: --local-mem in bytes (0 = the dialect's default) */
  int64_t batch;          /* the batch size the checks and tiling assume (0 = the train block's) */
} OclOptions;

typedef struct OclCode {
  CDialect dialect;       /* the dialect as used (--local-mem applied) */
  NdSchedule sched;
  char *text;             /* the OpenCL C source, NUL-terminated */
  size_t len;
  int64_t batch;          /* the batch size assumed */
} OclCode;

/* The dialect's schedule: for NDRange dialects ndrange_schedule (which
 * rewrites the kernels) with the dialect's local memory and tile depth;
 * single-work-item dialects keep the kernels as lowered. */
void ocl_schedule(KProgram *p, const CDialect *d, int64_t batch, NdSchedule *s);

/* Requires a KProgram from lower_program (+ memplan); may rewrite its
 * kernels (see ocl_schedule).  Returns false after reporting an error (an
 * unknown target, an asic buffer past 32-bit indexing).  Free with
 * ocl_code_free. */
bool ocl_generate(KProgram *p, const OclOptions *o, OclCode *c);
void ocl_code_free(OclCode *c);

/* --emit=cl: the source to path (NULL or "-" = stdout); for a file, also
 * the launch plan to ocl_plan_path(path).  False after reporting an error. */
bool ocl_emit_files(const KProgram *p, const OclCode *c, const char *path);
/* "dir/mnist.cl" -> "dir/mnist.plan.json"; other names get ".plan.json"
 * appended.  Malloc'ed. */
char *ocl_plan_path(const char *cl_path);
/* The launch plan as JSON; code_file names the source it goes with. */
bool ocl_write_plan(const KProgram *p, const OclCode *c, const char *code_file, FILE *out);

/* The trainer descriptor (descriptor_write: the OpenCL C, its build
 * options and the dialect's single_work_item / batch_arg_i32) into path.
 * False after reporting an error. */
bool ocl_write_descriptor(const KProgram *p, const OclCode *c, const char *path);

#endif
