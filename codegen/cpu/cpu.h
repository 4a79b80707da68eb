/* codegen/cpu/cpu.h - the CPU backend: kernel IR -> LLVM IR -> native code.
 *
 *   emit.c    one LLVM function per kernel (the RtModelKernel ABI below);
 *             the statements inside come from the LLVM kernel emitter the
 *             gpu backend shares (codegen/llvm/emit.h)
 *   target.c  the host target machine, the optimisation pipeline, and
 *             writing textual IR, assembly or an object file
 *   parts.c   a trainer's kernels compiled in parts on threads
 *   math.c    exp, tanh and small powers as inline f32 arithmetic that
 *             vectorises (LkTarget.math)
 *
 * Kernel ABI (runtime/model.h, RtModelKernel):
 *
 *   void NAME(void **args, int64_t begin, int64_t end)
 *
 * args[i] points at the value of the i-th argument: for i < nargs a buffer's
 * base pointer (Kernel.args lists the buffers in parameter order), and
 * args[nargs] points at the int64 batch size B.  The kernel's outermost loop
 * runs [begin, end) instead of [0, extent); the runtime splits the launch
 * range across threads.  A kernel whose body is not one outer loop runs its
 * body once, in the call whose [begin, end) holds 0.
 *
 * What emit.c assumes of the caller (the runtime keeps these promises):
 *   - distinct buffers of one kernel never overlap (the memory plan shares a
 *     slot only between buffers whose lifetimes are disjoint), so each base
 *     pointer is noalias;
 *   - every buffer starts on a 64-byte boundary (each buffer, or each slot of
 *     temps, is its own aligned allocation) and holds at least its elements
 *     for the batch size B (batched) or its dims (unbatched).
 *
 * Semantics follow the interpreter (codegen/interp/interp.c) within 1e-4
 * relative: f32 arithmetic may be reassociated and contracted (so that LLVM
 * vectorises reductions), NaN propagates through max/min, comparisons give
 * f32 1/0, f32 -> i32 casts truncate and saturate (NaN gives 0), i32
 * arithmetic wraps, and i32 division truncates toward zero.  One deliberate
 * difference: the interpreter stops on an i32 division by zero; compiled
 * code defines its result as 0 (and INT32_MIN / -1 as INT32_MIN).
 */
#ifndef NNC_CPU_H
#define NNC_CPU_H

#include "codegen/llvm/emit.h"
#include "ir/kernel.h"

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include <stdbool.h>

typedef struct CpuOptions {
  int opt_level;        /* 0..3: LLVM's default<ON> pipeline and codegen level */
  const char *cpu;      /* --cpu=NAME; NULL or "native" = the host CPU and its features */
  bool verbose;         /* -v: print the target and the stage times */
  const char *schedule; /* --schedule=SPEC: tile overrides (passes/schedule_cpu.h); NULL = defaults */
} CpuOptions;

typedef enum {
  CPU_OUT_LLVM,         /* textual LLVM IR (--emit=llvm) */
  CPU_OUT_ASM,          /* assembly (--emit=asm) */
  CPU_OUT_OBJ,          /* an ELF object (--emit=obj, and the trainer's kernels) */
} CpuOutKind;

/* ---- emit.c ---- */
/* Builds one module in ctx holding a function for each of the n kernels of
 * p numbered in which[] (which NULL: every kernel; unoptimised; the
 * per-kernel bodies are internal always-inline helpers the optimiser folds
 * into the ABI functions).  Reads p only, so threads may each build a
 * module of their own kernels in their own context.  Aborts with an
 * internal error on IR that breaks the kernel IR's rules. */
LLVMModuleRef cpu_emit_module(const KProgram *p, LLVMContextRef ctx, const uint32_t *which, uint32_t n);

/* ---- target.c ---- */
/* The target machine for the host (or o->cpu), PIC.  Reports an error and
 * returns NULL when the CPU name is unknown. */
LLVMTargetMachineRef cpu_target_machine(const CpuOptions *o);
/* Sets the module's triple and data layout from tm and gives every function
 * the machine's "target-cpu" and "target-features". */
void cpu_prepare_module(LLVMModuleRef m, LLVMTargetMachineRef tm);
/* Runs LLVM's default<O0..O3> pipeline (loop and SLP vectorisation on from
 * -O2).  Returns false after reporting an error (why NULL) or leaving it in
 * *why (lk_run_pipeline). */
bool cpu_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, int opt_level, char **why);
/* Writes the module as `kind` to path (NULL or "-" = stdout, text only).
 * Returns false after reporting an error. */
bool cpu_write(LLVMModuleRef m, LLVMTargetMachineRef tm, CpuOutKind kind, const char *path);
/* Writes size bytes to path (NULL or "-" = stdout); false after reporting. */
bool cpu_write_bytes(const char *path, const char *data, size_t size);

/* The CPU scheduling pass for this target: contractions get packed,
 * register-blocked schedules sized for the machine's vector registers
 * (passes/schedule_cpu.c), with o->schedule's overrides.  Returns false
 * after reporting an error. */
bool cpu_schedule(KProgram *p, const CpuOptions *o);

/* cpu_schedule, then the contractions without a packed or direct plan
 * become loops: the kernels as the emitter takes them. */
bool cpu_prepare_kernels(KProgram *p, const CpuOptions *o);

/* The whole backend as one module: prepare the kernels, emit, verify,
 * optimise, write. */
bool cpu_compile(KProgram *p, const CpuOptions *o, CpuOutKind kind, const char *path);

/* ---- parts.c ---- */
/* The whole backend as up to nparts objects compiled on as many threads
 * (kernels dealt by size; fewer parts when there are fewer kernels): the
 * objects' bytes in (*objects)[i], (*lengths)[i] (malloc'ed, as are the
 * arrays).  Returns the number of parts, 0 after reporting an error. */
int cpu_compile_parts(KProgram *p, const CpuOptions *o, int nparts, char ***objects, size_t **lengths);

/* ---- direct.c: contractions with a direct plan (KStmt.direct) ---- */
/* Emits contraction s (planned by passes/schedule_cpu.c) as
 * register-blocked vector loops at the builder's position. */
void cpu_direct_emit(LkEmit *E, const KStmt *s);
/* exp and tanh as inline, vectorisable f32 arithmetic (math.c); NULL for the other ops. */
LLVMValueRef cpu_math(LkEmit *E, Op op, LLVMValueRef a, LLVMValueRef b);

/* ---- gemm.c: scheduled contractions (KGemm) ---- */
/* Declares the thread-local packing arrays the schedules of the n kernels
 * numbered in which[] (NULL: all of p's) need. */
void cpu_gemm_declare(LkEmit *E, const KProgram *p, const uint32_t *which, uint32_t n);
/* Emits kernel k's launch loop over [begin, end) as the packed product
 * and its epilogue; the builder is in the entry block, temps allocated. */
void cpu_gemm_emit(LkEmit *E, const Kernel *k, LLVMValueRef begin, LLVMValueRef end);

#endif
