/* codegen/opencl/emit_c.h - one emitter from kernel IR to C-family text.
 *
 * OpenCL C for GPUs and CPUs (`opencl`), for FPGA flows (`fpga`) and for
 * small embedded accelerators (`asic`) is the same translation with
 * different spellings and limits, so one emitter (emit_c.c) renders every
 * kernel and a dialect table (dialects.c) says how: qualifiers, how the
 * launch range is mapped, the pragma and attribute spellings, how the
 * math functions of ir/ops.def are spelled, which types are allowed, how much on-chip memory a tile
 * or a staged row may use.  A portable C99 dialect for an out-of-tree HLS
 * plugin is one more table entry (see the sketch in dialects.c).
 *
 *   passes/schedule_ndrange.c  reshapes kernels for NDRange launches
 *                (contractions' free axes and perfect nests collapsed into
 *                the launch range) and picks the contractions worth tiling;
 *                it rewrites the kernel IR, so the launch plan
 *                (codegen/descriptor.c) sees the ranges the kernels were written for
 *   emit_c.c     the renderer: the prelude, then one function per kernel
 *   dialects.c   the tables
 *
 * Kernel ABI (every dialect): the kernel's buffers in Kernel.args order
 * (`b<N>` for buffer %N, read-only ones const), then the batch size B in
 * the dialect's batch type.  NDRange kernels take one work-item per
 * iteration of the (collapsed) outermost loop, launched as ceil(range /
 * group_size) groups of group_size, and guard `if (gid >= range) return;`;
 * single-work-item kernels run the whole loop nest in one work-item.
 */
#ifndef NNC_EMIT_C_H
#define NNC_EMIT_C_H

#include "ir/kernel.h"
#include "passes/schedule_ndrange.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  CL_LAUNCH_NDRANGE, /* one work-item per iteration of the outermost loop */
  CL_LAUNCH_SINGLE,  /* one work-item runs the whole nest (FPGA, HLS C) */
} CLaunch;

typedef struct CDialect {
  const char *name;          /* "opencl", "fpga", "asic" */
  const char *description;   /* one line for the generated file's header */
  /* ---- the language ---- */
  const char *preamble;      /* text after the header comment: macros, pragmas, includes */
  const char *kernel_qual;   /* "__kernel" ("" = a plain function) */
  const char *kernel_attr;   /* on every kernel: "__attribute__((reqd_work_group_size(1, 1, 1)))", or "" */
  const char *helper_qual;   /* helper functions: "static inline" */
  const char *global_qual;   /* buffer parameters: "__global " (note the space), or "" */
  const char *local_qual;    /* tiles: "__local " (NULL = no local memory) */
  const char *restrict_kw;   /* "restrict", or "" */
  const char *index_type;    /* loop variables and index arithmetic: "long" or "int" */
  const char *batch_type;    /* the type of the trailing B parameter */
  const char *uint_type;     /* 32-bit unsigned, for wrapping i32 arithmetic: "uint" */
  const char *math_suffix;   /* after ir/ops.def's C math names: "" (OpenCL's exp), "f" (C99's expf) */
  bool has_double;           /* double may appear in kernels */
  bool has_long;             /* 64-bit integers may appear in kernels */
  /* ---- the launch ---- */
  CLaunch launch;
  const char *global_id;     /* NDRange: "get_global_id(0)" */
  const char *local_id;      /* tiles: "get_local_id(0)" */
  const char *group_id;      /* tiles: "get_group_id(0)" */
  const char *num_groups;    /* tiles: "get_num_groups(0)" */
  const char *barrier;       /* tiles: "barrier(CLK_LOCAL_MEM_FENCE)" */
  int group_size;            /* NDRange: work-items per group the runtime launches (runtime/trainer.c) */
  /* ---- loops ---- */
  const char *unroll_fmt;    /* printf format with one %d: "#pragma unroll %d" (NULL = none) */
  int unroll_max;            /* innermost loops of at most this static extent are unrolled fully (0 = none) */
  const char *pipeline;      /* before pipelined innermost loops that are not unrolled: "NNC_PIPELINE" (NULL = none) */
  const char *ivdep;         /* before loops without loop-carried memory dependences: "NNC_IVDEP" (NULL = none) */
  /* ---- on-chip memory ---- */
  int64_t local_mem;         /* bytes of local memory one kernel may use for tiles (0 = never tile) */
  int tile_k;                /* reduction depth of a tile, at most (rounded down to fit local_mem) */
  int64_t stage_max;         /* single work-item: reduction rows of at most this many floats are staged
                                in a private array (0 = always stream) */
  /* ---- the runtime ---- */
  const char *build_options; /* OpenCL build options (RtModelDesc.code_options) */
  bool single_work_item;     /* RtModelDesc.single_work_item */
  bool batch_i32;            /* RtModelDesc.batch_arg_i32: B is passed as int32 */
} CDialect;

/* ---- dialects.c ---- */
/* NULL-terminated list of the built-in dialects. */
extern const CDialect *const c_dialects[];
/* The dialect called name, or NULL. */
const CDialect *c_dialect_find(const char *name);

/* ---- emit_c.c ---- */
/* Renders every kernel of p (scheduled by s for the same dialect) as one
 * source text, NUL-terminated, malloc'ed; *len is its length. */
char *c_emit_program(const KProgram *p, const CDialect *d, const NdSchedule *s, size_t *len);

#endif
