/* codegen/llvm/emit.h - kernel IR -> LLVM IR, shared by the cpu and gpu
 * backends.
 *
 * Both backends translate the same statements and expressions the same
 * way (codegen/llvm/emit.c): loops, scalar temporaries, loads and stores
 * with row-major i64 offsets, guarded loads, every elementwise op with the
 * interpreter's semantics.  What differs is outside the kernel body or in
 * a few hooks, and each backend writes that part itself:
 *
 *   the function and its ABI   cpu: void NAME(void **args, i64 begin, i64 end)
 *                              gpu: ptx_kernel void NAME(ptr addrspace(1)..., i64 B)
 *   the outermost loop         cpu: [begin, end) of a slice; gpu: one thread
 *                              per iteration, or a warp, or a tile (gpu.h)
 *   address spaces             whatever the base pointers carry: every
 *                              address is a GEP on a buffer's base pointer
 *   math                       LkTarget.math: the f32 ops with an LLVM
 *                              intrinsic in ir/ops.def (libdevice on the
 *                              gpu); NULL = the LLVM intrinsics
 *   loop hints                 LkTarget.vector_hints (cpu only)
 *
 * A backend fills LkEmit.base[] with its buffer pointers and LkEmit.batch
 * with B, allocates the temporaries (lk_alloca_temps) and then calls
 * lk_stmts / lk_loop / lk_expr to emit the body.
 */
#ifndef NNC_LLVM_EMIT_H
#define NNC_LLVM_EMIT_H

#include "ir/kernel.h"

#include <llvm-c/Core.h>

#include <stdbool.h>
#include <stdint.h>

typedef struct LkEmit LkEmit;

typedef struct LkTarget {
  const char *name;        /* "cpu", "gpu": in internal errors */
  bool vector_hints;       /* llvm.loop.vectorize.* on innermost contiguous loops, no runtime unrolling */
  /* An f32 op with an LLVM intrinsic in ir/ops.def (b for two operands):
   * the target's value, or NULL for the intrinsic. */
  LLVMValueRef (*math)(LkEmit *E, Op op, LLVMValueRef a, LLVMValueRef b);
  /* A contraction the target's schedule planned (KStmt.direct), or NULL:
   * every contraction must then be expanded into loops first. */
  void (*contract)(LkEmit *E, const KStmt *s);
} LkTarget;

struct LkEmit {
  const LkTarget *target;
  void *user;              /* the backend's own state */
  const KProgram *p;
  const Kernel *k;         /* the kernel being emitted */
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef f32, i32, i64, i1, ptr, voidt; /* ptr: address space 0 */
  LLVMValueRef fn;         /* the function being emitted */
  LLVMValueRef *base;      /* [nbufs] base pointer of each argument buffer (any address space), else NULL */
  LLVMValueRef batch;      /* B (i64) */
  LLVMValueRef *vars;      /* [nvars] loop variables in scope (i64), else NULL */
  LLVMValueRef *temps;     /* [ntemps] allocas */
  unsigned md_loop;        /* the kind id of !llvm.loop */
};

/* A kernel that breaks the kernel IR's rules is a bug in lowering. */
#define LK_FAIL(E, fmt, ...)                                                                                 \
  nnc_internal_error(__FILE__, __LINE__, "%s codegen: kernel %s: " fmt, (E)->target->name,                  \
                     (E)->k ? (E)->k->name : "?", __VA_ARGS__)

/* ---- setting up ---- */
void lk_init(LkEmit *E, const LkTarget *t, const KProgram *p, LLVMContextRef ctx, LLVMModuleRef mod);
void lk_dispose(LkEmit *E);
/* Starts kernel k: empty base/vars/temps arrays.  lk_kernel_end frees them. */
void lk_kernel_begin(LkEmit *E, const Kernel *k);
void lk_kernel_end(LkEmit *E);
/* One alloca per scalar temporary, at the builder's position (the entry block). */
void lk_alloca_temps(LkEmit *E);

/* ---- values ---- */
LLVMTypeRef lk_dtype(const LkEmit *E, DType dt);  /* float or i32 */
LLVMValueRef lk_i64(const LkEmit *E, int64_t v);
LLVMValueRef lk_i32(const LkEmit *E, int32_t v);
LLVMValueRef lk_f32(const LkEmit *E, double v);
/* `extent` iterations, times B when batched (i64). */
LLVMValueRef lk_extent(LkEmit *E, int64_t extent, bool batched);
/* v converted to `to` with the interpreter's cast rules (f32 -> int
 * truncates and saturates, NaN -> 0; i32 -> i64 sign-extends). */
LLVMValueRef lk_coerce(LkEmit *E, LLVMValueRef v, LLVMTypeRef to);
/* The value of e in its natural type: i64 for index expressions, else
 * float or i32 by its dtype. */
LLVMValueRef lk_expr(LkEmit *E, const KExpr *e);
/* f32 a op b for the reduction ops add, max, min (NaN propagates). */
LLVMValueRef lk_combine(LkEmit *E, Op op, LLVMValueRef a, LLVMValueRef b);
/* Marks f32 arithmetic reassociable and contractible. */
LLVMValueRef lk_fast(LLVMValueRef v);

/* ---- statements ---- */
void lk_stmt(LkEmit *E, const KStmt *s);
void lk_stmts(LkEmit *E, KStmt *const *body, uint32_t n);
/* for var in [lo, hi) by step: body.  lo/hi NULL: [0, extent (* B)); step
 * NULL: 1.  The variable is in scope only inside. */
void lk_loop(LkEmit *E, const KStmt *s, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef step);

/* The flat element offset (i64) of buf[idx...], unchecked: with a
 * guarded load's out-of-range indices it lies outside the buffer. */
LLVMValueRef lk_offset(LkEmit *E, int32_t buf, KExpr *const *idx, int nidx);

/* Counted loops for hand-built code (the CPU's products):
 *   LkLoop l; LLVMValueRef i = lk_for_begin(E, &l, lo, hi, step, "i"); ...body...; lk_for_end(E, &l);
 * runs i over [lo, hi) by step (nothing when lo >= hi); the builder is left
 * in the body, then after the loop. */
typedef struct LkLoop {
  LLVMBasicBlockRef body, exit;
  LLVMValueRef iv, hi, step;
} LkLoop;
LLVMValueRef lk_for_begin(LkEmit *E, LkLoop *l, LLVMValueRef lo, LLVMValueRef hi, int64_t step, const char *name);
void lk_for_end(LkEmit *E, LkLoop *l);

/* ---- LLVM helpers ---- */
LLVMAttributeRef lk_attr(const LkEmit *E, const char *name, uint64_t value);
/* A call of intrinsic `name`, overloaded on tys[0..ntys). */
LLVMValueRef lk_intrinsic(LkEmit *E, const char *name, LLVMTypeRef *tys, int ntys, LLVMValueRef *args, int nargs);
/* The same, overloaded on the type of a: name(a), name(a, b). */
LLVMValueRef lk_intrinsic1(LkEmit *E, const char *name, LLVMValueRef a);
LLVMValueRef lk_intrinsic2(LkEmit *E, const char *name, LLVMValueRef a, LLVMValueRef b);
/* A call of the function `name` (declared on first use, nounwind). */
LLVMValueRef lk_call(LkEmit *E, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, LLVMValueRef *args,
                     int nargs);
/* A new basic block at the end of the current function. */
LLVMBasicBlockRef lk_block(LkEmit *E, const char *name);


#endif
