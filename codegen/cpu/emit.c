/* codegen/cpu/emit.c - the cpu backend's kernel functions (see cpu.h for
 * the ABI).  The statements and expressions inside are the shared LLVM
 * emitter's (codegen/llvm/emit.c); this file adds what is the cpu's own:
 * the function signature, how the outermost loop gets its slice, and the
 * vectoriser hints.
 *
 * Each kernel becomes two functions:
 *   NAME       the ABI entry point: loads every buffer's base pointer and B
 *              from args once, then calls NAME.body;
 *   NAME.body  internal and always-inline: (ptr noalias align 64 buf...,
 *              i64 B, i64 begin, i64 end).  The noalias parameters are how
 *              "distinct buffers never overlap" reaches LLVM: when the body
 *              is inlined, the inliner turns them into alias scopes on every
 *              load and store, which is what lets loops vectorise.
 *
 * The outermost loop runs [begin, end); a body that is not one loop runs
 * once, in the call whose slice holds 0.  Math is LLVM's intrinsics (libm
 * when not vectorised), except exp and tanh, written out as vectorisable
 * polynomials (math.c); innermost contiguous loops get
 * llvm.loop.vectorize.enable (LkTarget.vector_hints).
 */
#include "codegen/cpu/cpu.h"

#include "codegen/llvm/emit.h"

#include <llvm-c/Analysis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BUF_ALIGN = 64 }; /* every buffer is a 64-byte aligned allocation (runtime/device_cpu.c) */

static const LkTarget cpu_target = {"cpu", true, cpu_math, cpu_direct_emit};

/* A scheduled contraction's explicit vectors stay whole registers even
 * where the CPU prefers narrower ones for auto-vectorised loops (LLVM's
 * prefer-256-bit tuning of AVX-512 parts): min-legal-vector-width, as
 * clang sets it for code using 512-bit intrinsics. */
static void legal_vector_width(LkEmit *E, LLVMValueRef fn) {
  if (!E->k->gemm) return;
  char bits[16];
  snprintf(bits, sizeof bits, "%d", E->k->gemm->vector * 32);
  LLVMAttributeRef a = LLVMCreateStringAttribute(E->ctx, "min-legal-vector-width", 22, bits, (unsigned)strlen(bits));
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, a);
}

/* NAME.body(ptr noalias buf..., i64 B, i64 begin, i64 end). */
static LLVMValueRef emit_body_fn(LkEmit *E) {
  const Kernel *k = E->k;
  uint32_t n = k->nargs;
  LLVMTypeRef *params = nnc_xmalloc(sizeof(LLVMTypeRef) * (n + 3));
  for (uint32_t i = 0; i < n; i++) params[i] = E->ptr;
  params[n] = params[n + 1] = params[n + 2] = E->i64;
  char *name = nnc_xmalloc(strlen(k->name) + 8);
  sprintf(name, "%s.body", k->name);
  LLVMValueRef fn = LLVMAddFunction(E->mod, name, LLVMFunctionType(E->voidt, params, n + 3, 0));
  free(name);
  free(params);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, lk_attr(E, "alwaysinline", 0));
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, lk_attr(E, "nounwind", 0));
  legal_vector_width(E, fn);
  for (uint32_t i = 0; i < n; i++) {
    int32_t buf = k->args[i];
    if (buf < 0 || (uint32_t)buf >= E->p->nbufs) LK_FAIL(E, "argument %u is not a buffer", i);
    for (uint32_t j = 0; j < i; j++)
      if (k->args[j] == buf) LK_FAIL(E, "buffer %d is passed twice", buf);
    const KBuffer *kb = &E->p->bufs[buf];
    unsigned at = i + 1;
    LLVMAddAttributeAtIndex(fn, at, lk_attr(E, "noalias", 0));
    LLVMAddAttributeAtIndex(fn, at, lk_attr(E, "nocapture", 0));
    LLVMAddAttributeAtIndex(fn, at, lk_attr(E, "nonnull", 0));
    LLVMAddAttributeAtIndex(fn, at, lk_attr(E, "align", BUF_ALIGN));
    if (!kb->type.batched)
      LLVMAddAttributeAtIndex(fn, at, lk_attr(E, "dereferenceable", (uint64_t)kbuf_elems(kb, 1) * 4));
    LLVMValueRef pv = LLVMGetParam(fn, i);
    LLVMSetValueName2(pv, kb->name, strlen(kb->name));
    E->base[buf] = pv;
  }
  E->batch = LLVMGetParam(fn, n);
  LLVMSetValueName2(E->batch, "B", 1);
  LLVMSetValueName2(LLVMGetParam(fn, n + 1), "begin", 5);
  LLVMSetValueName2(LLVMGetParam(fn, n + 2), "end", 3);
  return fn;
}

/* The ABI entry: void NAME(void **args, int64_t begin, int64_t end). */
static void emit_abi_fn(LkEmit *E, LLVMValueRef body) {
  const Kernel *k = E->k;
  LLVMTypeRef params[3] = {E->ptr, E->i64, E->i64};
  LLVMValueRef abi = LLVMAddFunction(E->mod, k->name, LLVMFunctionType(E->voidt, params, 3, 0));
  LLVMAddAttributeAtIndex(abi, LLVMAttributeFunctionIndex, lk_attr(E, "nounwind", 0));
  legal_vector_width(E, abi);
  LLVMAddAttributeAtIndex(abi, 1, lk_attr(E, "nocapture", 0));
  LLVMAddAttributeAtIndex(abi, 1, lk_attr(E, "readonly", 0));
  LLVMValueRef args = LLVMGetParam(abi, 0);
  LLVMSetValueName2(args, "args", 4);
  LLVMSetValueName2(LLVMGetParam(abi, 1), "begin", 5);
  LLVMSetValueName2(LLVMGetParam(abi, 2), "end", 3);
  LLVMPositionBuilderAtEnd(E->b, LLVMAppendBasicBlockInContext(E->ctx, abi, "entry"));
  uint32_t n = k->nargs;
  LLVMValueRef *vals = nnc_xmalloc(sizeof(LLVMValueRef) * (n + 3));
  for (uint32_t i = 0; i <= n; i++) {
    LLVMValueRef slot = lk_i64(E, i);
    LLVMValueRef at = LLVMBuildInBoundsGEP2(E->b, E->ptr, args, &slot, 1, "");
    LLVMValueRef p = LLVMBuildLoad2(E->b, E->ptr, at, "");            /* &value of argument i */
    vals[i] = LLVMBuildLoad2(E->b, i < n ? E->ptr : E->i64, p, ""); /* the buffer, or B */
  }
  vals[n + 1] = LLVMGetParam(abi, 1);
  vals[n + 2] = LLVMGetParam(abi, 2);
  LLVMBuildCall2(E->b, LLVMGlobalGetValueType(body), body, vals, n + 3, "");
  LLVMBuildRetVoid(E->b);
  free(vals);
}

static void emit_kernel(LkEmit *E, const Kernel *k) {
  lk_kernel_begin(E, k);
  E->fn = emit_body_fn(E);
  LLVMValueRef begin = LLVMGetParam(E->fn, k->nargs + 1), end = LLVMGetParam(E->fn, k->nargs + 2);
  LLVMPositionBuilderAtEnd(E->b, lk_block(E, "entry"));
  lk_alloca_temps(E);
  if (k->gemm) {
    cpu_gemm_emit(E, k, begin, end); /* a scheduled contraction (gemm.c) */
  } else if (k->nbody == 1 && k->body[0]->kind == KS_LOOP) {
    lk_loop(E, k->body[0], begin, end, NULL); /* the launch range: this call's slice */
  } else {
    /* Not one outer loop: the body runs once, in the call whose slice holds 0. */
    LLVMBasicBlockRef once = lk_block(E, "once");
    LLVMBasicBlockRef done = lk_block(E, "done");
    LLVMValueRef zero = lk_i64(E, 0);
    LLVMValueRef has0 = LLVMBuildAnd(E->b, LLVMBuildICmp(E->b, LLVMIntSLE, begin, zero, ""),
                                     LLVMBuildICmp(E->b, LLVMIntSGT, end, zero, ""), "");
    LLVMBuildCondBr(E->b, has0, once, done);
    LLVMPositionBuilderAtEnd(E->b, once);
    lk_stmts(E, k->body, k->nbody);
    LLVMBuildBr(E->b, done);
    LLVMMoveBasicBlockAfter(done, LLVMGetInsertBlock(E->b));
    LLVMPositionBuilderAtEnd(E->b, done);
  }
  LLVMBuildRetVoid(E->b);
  emit_abi_fn(E, E->fn);
  lk_kernel_end(E);
}

LLVMModuleRef cpu_emit_module(const KProgram *p, LLVMContextRef ctx, const uint32_t *which, uint32_t n) {
  const char *name = p->module && p->module->name ? p->module->name : "nnc";
  LLVMModuleRef mod = LLVMModuleCreateWithNameInContext(name, ctx);
  if (!which) n = p->nkernels;
  LkEmit E;
  lk_init(&E, &cpu_target, p, ctx, mod);
  cpu_gemm_declare(&E, p, which, n);
  for (uint32_t i = 0; i < n; i++) emit_kernel(&E, &p->kernels[which ? which[i] : i]);
  lk_dispose(&E);
  char *msg = NULL;
  if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg))
    nnc_internal_error(__FILE__, __LINE__, "cpu codegen produced invalid LLVM IR: %s", msg);
  LLVMDisposeMessage(msg);
  return mod;
}
