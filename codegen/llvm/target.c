/* codegen/llvm/target.c - the LLVM plumbing every LLVM backend shares (target.h). */
#include "codegen/llvm/target.h"

#include "support/arena.h"
#include "support/diag.h"

#include <llvm-c/Transforms/PassBuilder.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

LLVMCodeGenOptLevel lk_codegen_level(int opt_level) {
  return opt_level <= 0   ? LLVMCodeGenLevelNone
         : opt_level == 1 ? LLVMCodeGenLevelLess
         : opt_level == 2 ? LLVMCodeGenLevelDefault
                          : LLVMCodeGenLevelAggressive;
}

LLVMTargetMachineRef lk_target_machine(const char *triple, const char *cpu, const char *features, int opt_level,
                                       LLVMRelocMode reloc) {
  char *err = NULL;
  LLVMTargetRef target;
  if (LLVMGetTargetFromTriple(triple, &target, &err)) {
    diag_error_plain("no LLVM target for '%s': %s", triple, err);
    LLVMDisposeMessage(err);
    return NULL;
  }
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, features ? features : "",
                                                    lk_codegen_level(opt_level), reloc, LLVMCodeModelDefault);
  if (!tm) diag_error_plain("cannot create an LLVM target machine for '%s' (%s)", triple, cpu);
  return tm;
}

void lk_module_target(LLVMModuleRef m, LLVMTargetMachineRef tm) {
  char *triple = LLVMGetTargetMachineTriple(tm);
  LLVMSetTarget(m, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(m, td);
  LLVMDisposeTargetData(td);
}

/* Reports msg, or hands it to the caller's *why. */
static void fail(char **why, const char *fmt, const char *a, const char *b) {
  size_t n = strlen(fmt) + strlen(a) + strlen(b) + 1;
  char *msg = nnc_xmalloc(n);
  snprintf(msg, n, fmt, a, b);
  if (why) {
    *why = msg;
    return;
  }
  diag_error_plain("%s", msg);
  free(msg);
}

bool lk_run_pipeline(LLVMModuleRef m, LLVMTargetMachineRef tm, const char *pipeline, int opt_level, int vectorize,
                     char **why) {
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  if (vectorize >= 0) {
    LLVMPassBuilderOptionsSetLoopVectorization(po, vectorize);
    LLVMPassBuilderOptionsSetSLPVectorization(po, vectorize);
    LLVMPassBuilderOptionsSetLoopInterleaving(po, vectorize);
  }
  LLVMPassBuilderOptionsSetLoopUnrolling(po, opt_level >= 1);
  LLVMErrorRef e = LLVMRunPasses(m, pipeline, tm, po);
  LLVMDisposePassBuilderOptions(po);
  if (e) {
    char *msg = LLVMGetErrorMessage(e);
    fail(why, "LLVM pipeline '%s' failed: %s", pipeline, msg);
    LLVMDisposeErrorMessage(msg);
    return false;
  }
  return true;
}

static void take(const char *data, size_t n, char **bytes, size_t *len) {
  *bytes = nnc_xmalloc(n + 1);
  memcpy(*bytes, data, n);
  (*bytes)[n] = 0;
  *len = n;
}

bool lk_module_bytes(LLVMModuleRef m, LLVMTargetMachineRef tm, LkOut kind, char **bytes, size_t *len, char **why) {
  *bytes = NULL;
  *len = 0;
  if (kind == LK_OUT_IR) {
    char *s = LLVMPrintModuleToString(m);
    take(s, strlen(s), bytes, len);
    LLVMDisposeMessage(s);
    return true;
  }
  char *err = NULL;
  LLVMMemoryBufferRef buf = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, m, kind == LK_OUT_ASM ? LLVMAssemblyFile : LLVMObjectFile, &err, &buf)) {
    fail(why, "LLVM code generation failed: %s%s", err ? err : "unknown error", "");
    LLVMDisposeMessage(err);
    return false;
  }
  take(LLVMGetBufferStart(buf), LLVMGetBufferSize(buf), bytes, len);
  LLVMDisposeMemoryBuffer(buf);
  return true;
}

static void on_diagnostic(LLVMDiagnosticInfoRef di, void *verbose) {
  LLVMDiagnosticSeverity sev = LLVMGetDiagInfoSeverity(di);
  if (sev != LLVMDSError && !(sev == LLVMDSWarning && verbose)) return;
  char *msg = LLVMGetDiagInfoDescription(di);
  fprintf(stderr, "nnc: llvm %s: %s\n", sev == LLVMDSError ? "error" : "warning", msg);
  LLVMDisposeMessage(msg);
}

void lk_diagnostics(LLVMContextRef ctx, bool verbose) {
  static char yes;
  LLVMContextSetDiagnosticHandler(ctx, on_diagnostic, verbose ? &yes : NULL);
}
