/* codegen/llvm/target.h - the LLVM plumbing every LLVM backend shares.
 *
 * Target machines, a module's triple and data layout, the new pass
 * manager's pipelines, emitting a module as text or bytes, and LLVM's
 * diagnostics: the steps cpu (codegen/cpu/target.c) and gpu
 * (codegen/gpu/target.c) both take, written once.  Errors are reported
 * through the diagnostics engine (support/diag.h).
 */
#ifndef NNC_LLVM_TARGET_H
#define NNC_LLVM_TARGET_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <stdbool.h>
#include <stddef.h>

/* The code generator's level for nnc's -O0 .. -O3. */
LLVMCodeGenOptLevel lk_codegen_level(int opt_level);

/* A target machine for triple/cpu/features (features "" = the cpu's); NULL
 * after reporting "no LLVM target for ..." or "cannot create ...".  The
 * target must have been initialised (LLVMInitialize...). */
LLVMTargetMachineRef lk_target_machine(const char *triple, const char *cpu, const char *features, int opt_level,
                                       LLVMRelocMode reloc);

/* Sets m's triple and data layout from tm. */
void lk_module_target(LLVMModuleRef m, LLVMTargetMachineRef tm);

/* Where these functions fail they report through the diagnostics engine
 * when why is NULL; otherwise they leave the message, malloc'ed, in *why
 * (for threads, which must not report: the engine is not thread-safe). */

/* Runs a new-pass-manager pipeline ("default<O2>", "function(nvvm-reflect),...")
 * over m, unrolling loops from -O1, with loop and SLP vectorisation when
 * vectorize is 1, without when 0, as LLVM chooses when -1; false after
 * "LLVM pipeline '...' failed: ...". */
bool lk_run_pipeline(LLVMModuleRef m, LLVMTargetMachineRef tm, const char *pipeline, int opt_level, int vectorize,
                     char **why);

/* m's LLVM IR text, or tm's assembly or object code, malloc'ed in
 * *bytes (NUL-terminated, *len bytes without it); false after "LLVM code
 * generation failed: ...". */
typedef enum { LK_OUT_IR, LK_OUT_ASM, LK_OUT_OBJ } LkOut;
bool lk_module_bytes(LLVMModuleRef m, LLVMTargetMachineRef tm, LkOut kind, char **bytes, size_t *len, char **why);

/* Prints LLVM's errors (and with verbose its warnings) as "nnc: llvm ...". */
void lk_diagnostics(LLVMContextRef ctx, bool verbose);

#endif
