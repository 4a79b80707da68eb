/* passes/schedule_cpu.h - the CPU scheduling pass over the kernel IR.
 *
 * It finds every contraction (a matmul, an input gradient, a weight
 * gradient's batch sum, with whatever epilogue lowering fused behind it)
 * and attaches a KGemm: the operands as affine accesses and the tiles for
 * the target's registers and caches.  The CPU backend then emits the
 * contraction as a packed, register-blocked product (codegen/cpu/gemm.c).
 * Other kernels keep their loop nests.  docs/codegen-cpu.md has the
 * schedule and how to override it.
 */
#ifndef NNC_SCHEDULE_CPU_H
#define NNC_SCHEDULE_CPU_H

#include "ir/kernel.h"

typedef struct CpuScheduleOptions {
  int vector;        /* f32 lanes of the widest vector register: 16 (AVX-512), 8 (AVX2), 4 */
  int registers;     /* vector registers: 32 with AVX-512, else 16 */
  const char *spec;  /* --schedule=SPEC (NULL: defaults); see schedule_cpu_spec_help */
} CpuScheduleOptions;

/* Attaches a KGemm to each contraction kernel of p (replacing any from an
 * earlier call).  Returns false after reporting an error in o->spec. */
bool schedule_cpu(KProgram *p, const CpuScheduleOptions *o);

/* Drops every plan schedule_cpu made (KGemm, direct plans): passes that
 * move or rewrite statements call it, as the plans point into them. */
void schedule_cpu_clear(KProgram *p);

/* The --schedule syntax, for --help and error messages. */
extern const char schedule_cpu_spec_help[];

#endif
