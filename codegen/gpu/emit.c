/* codegen/gpu/emit.c - the gpu backend's kernels (see gpu.h for the ABI
 * and the forms).  Loads, stores, expressions and loops are the shared
 * LLVM emitter's (codegen/llvm/emit.c); this file adds the gpu's own
 * parts: the kernel signature (ptx_kernel, addrspace(1) buffers), the
 * thread index from the special registers, the GK_THREAD and GK_WARP
 * forms, barriers, shuffles and shared memory for tiled.c, and math
 * through libdevice.
 *
 * The host flavor (GPU_FLAVOR_HOST) emits the same kernels for the host:
 * address space 0, and every special register, barrier and shuffle a call
 * of an nnc_sim_* function, so a test can run them on threads and compare
 * with the interpreter without a GPU (test/unit/test_gpu_codegen.c).
 */
#include "codegen/gpu/gpu.h"

#include "codegen/llvm/emit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct GpuEmit {
  LkEmit lk;            /* the shared emitter; lk.user points back here */
  GpuFlavor flavor;
  GpuMath math;
  const GpuSchedule *s;
  unsigned global_as;   /* address space of buffers: 1 (PTX) or 0 (host) */
  unsigned shared_as;   /* of shared memory: 3 or 0 */
};

LkEmit *gpu_lk(GpuEmit *G) { return &G->lk; }

/* ---- the flavor's special operations ---------------------------------------------------------- */

LLVMValueRef gpu_sreg(GpuEmit *G, GpuSreg r) {
  LkEmit *E = &G->lk;
  static const char *const ptx[] = {"llvm.nvvm.read.ptx.sreg.tid.x", "llvm.nvvm.read.ptx.sreg.ctaid.x",
                                    "llvm.nvvm.read.ptx.sreg.ntid.x", "llvm.nvvm.read.ptx.sreg.nctaid.x"};
  static const char *const host[] = {"nnc_sim_tid", "nnc_sim_ctaid", "nnc_sim_ntid", "nnc_sim_nctaid"};
  if (G->flavor == GPU_FLAVOR_HOST) return lk_call(E, host[r], E->i32, NULL, NULL, 0);
  return lk_intrinsic(E, ptx[r], NULL, 0, NULL, 0);
}

void gpu_barrier(GpuEmit *G) {
  LkEmit *E = &G->lk;
  if (G->flavor == GPU_FLAVOR_HOST)
    lk_call(E, "nnc_sim_barrier", E->voidt, NULL, NULL, 0);
  else
    lk_intrinsic(E, "llvm.nvvm.barrier0", NULL, 0, NULL, 0);
}

/* v from the lane whose id is this lane's xor `mask`, the whole warp taking part. */
static LLVMValueRef shfl_bfly(GpuEmit *G, LLVMValueRef v, int mask) {
  LkEmit *E = &G->lk;
  if (G->flavor == GPU_FLAVOR_HOST) {
    LLVMTypeRef params[2] = {E->f32, E->i32};
    LLVMValueRef args[2] = {v, lk_i32(E, mask)};
    return lk_call(E, "nnc_sim_shfl_bfly", E->f32, params, args, 2);
  }
  LLVMValueRef args[4] = {lk_i32(E, -1), v, lk_i32(E, mask), lk_i32(E, GPU_WARP - 1)};
  return lk_intrinsic(E, "llvm.nvvm.shfl.sync.bfly.f32", NULL, 0, args, 4);
}

LLVMValueRef gpu_shared_array(GpuEmit *G, const char *name, int64_t nfloats) {
  LkEmit *E = &G->lk;
  LLVMTypeRef t = LLVMArrayType2(E->f32, (uint64_t)nfloats);
  LLVMValueRef gv = LLVMAddGlobalInAddressSpace(E->mod, t, name, G->shared_as);
  LLVMSetAlignment(gv, 16);
  if (G->flavor == GPU_FLAVOR_HOST) {
    /* External, so that the optimiser assumes nnc_sim_barrier() may touch it
     * (an internal array nothing else can see could be cached across it). */
    LLVMSetInitializer(gv, LLVMConstNull(t));
  } else {
    LLVMSetLinkage(gv, LLVMInternalLinkage);
    LLVMSetInitializer(gv, LLVMGetUndef(t)); /* shared memory has no initial value */
  }
  return gv;
}

void gpu_kernel_annotate(GpuEmit *G, LLVMValueRef fn, const char *key, int value) {
  LkEmit *E = &G->lk;
  if (G->flavor != GPU_FLAVOR_PTX) return;
  LLVMMetadataRef ops[3] = {LLVMValueAsMetadata(fn), LLVMMDStringInContext2(E->ctx, key, strlen(key)),
                            LLVMValueAsMetadata(lk_i32(E, value))};
  LLVMAddNamedMetadataOperand(E->mod, "nvvm.annotations",
                              LLVMMetadataAsValue(E->ctx, LLVMMDNodeInContext2(E->ctx, ops, 3)));
}

/* ---- math ---------------------------------------------------------------------------------------- */

static LLVMValueRef nv_call(LkEmit *E, const char *name, LLVMValueRef a, LLVMValueRef b) {
  LLVMTypeRef params[2] = {E->f32, E->f32};
  LLVMValueRef args[2] = {a, b};
  return lk_call(E, name, E->f32, params, args, b ? 2 : 1);
}

static LLVMValueRef approx(LkEmit *E, const char *name, LLVMValueRef a) {
  return lk_intrinsic(E, name, NULL, 0, &a, 1);
}

/* 2^x and log2(x) by the ex2 / lg2 approximations (2 ulp in range). */
static LLVMValueRef ex2(LkEmit *E, LLVMValueRef x) { return approx(E, "llvm.nvvm.ex2.approx.f", x); }
static LLVMValueRef lg2(LkEmit *E, LLVMValueRef x) { return approx(E, "llvm.nvvm.lg2.approx.f", x); }

/* pow without libdevice: 2^(b log2 |a|), with pow's rules for b = 0 (1)
 * and a negative a (an integral b keeps or flips the sign, others NaN). */
static LLVMValueRef approx_pow(LkEmit *E, LLVMValueRef a, LLVMValueRef b) {
  LLVMBuilderRef B = E->b;
  LLVMValueRef zero = lk_f32(E, 0);
  LLVMValueRef mag = ex2(E, lk_fast(LLVMBuildFMul(B, b, lg2(E, lk_intrinsic(E, "llvm.fabs", (LLVMTypeRef[]){E->f32}, 1, &a, 1)), "")));
  LLVMValueRef bint = LLVMBuildFCmp(B, LLVMRealOEQ, lk_intrinsic(E, "llvm.trunc", (LLVMTypeRef[]){E->f32}, 1, &b, 1), b, "");
  LLVMValueRef half = LLVMBuildFMul(B, b, lk_f32(E, 0.5), "");
  LLVMValueRef even = LLVMBuildFCmp(B, LLVMRealOEQ, lk_intrinsic(E, "llvm.trunc", (LLVMTypeRef[]){E->f32}, 1, &half, 1), half, "");
  LLVMValueRef neg = LLVMBuildSelect(B, bint, LLVMBuildSelect(B, even, mag, LLVMBuildFNeg(B, mag, ""), ""),
                                     lk_f32(E, NAN), "");
  LLVMValueRef r = LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOLT, a, zero, ""), neg, mag, "");
  return LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOEQ, b, zero, ""), lk_f32(E, 1), r, "");
}

/* The f32 math functions (the ops with an LLVM intrinsic in ir/ops.def):
 * libdevice's function where ir/ops.def names one; without libdevice, its
 * NVVM approximation, or for exp, log, tanh and pow a formula over ex2/lg2;
 * otherwise (sqrt: sqrt.rn.f32, fabs, maximum, minimum) the intrinsic,
 * which NVPTX selects itself.  The host flavor uses the intrinsics. */
static LLVMValueRef gpu_math(LkEmit *E, Op op, LLVMValueRef a, LLVMValueRef b) {
  GpuEmit *G = E->user;
  const OpInfo *o = &ir_ops[op];
  if (G->flavor == GPU_FLAVOR_HOST) return NULL;
  if (G->math == GPU_MATH_LIBDEVICE) return o->libdevice ? nv_call(E, o->libdevice, a, b) : NULL;
  if (o->nvvm_approx) return approx(E, o->nvvm_approx, a);
  const double log2e = 1.4426950408889634, ln2 = 0.6931471805599453;
  LLVMBuilderRef B = E->b;
  switch (op) {
  case OP_EXP: return ex2(E, lk_fast(LLVMBuildFMul(B, a, lk_f32(E, log2e), "")));
  case OP_LOG: return lk_fast(LLVMBuildFMul(B, lg2(E, a), lk_f32(E, ln2), ""));
  case OP_TANH: { /* 1 - 2 / (e^2a + 1): +-1 at the extremes, NaN for NaN */
    LLVMValueRef e2 = ex2(E, lk_fast(LLVMBuildFMul(B, a, lk_f32(E, 2 * log2e), "")));
    LLVMValueRef q = LLVMBuildFDiv(B, lk_f32(E, 2), LLVMBuildFAdd(B, e2, lk_f32(E, 1), ""), "");
    return LLVMBuildFSub(B, lk_f32(E, 1), q, "");
  }
  case OP_POW: return approx_pow(E, a, b);
  default: return NULL;
  }
}

static const LkTarget gpu_target = {"gpu", false, gpu_math, NULL};

/* ---- kernels ----------------------------------------------------------------------------------- */

/* blockIdx.x * blockDim.x + threadIdx.x, as i64. */
static LLVMValueRef global_id(GpuEmit *G) {
  LkEmit *E = &G->lk;
  LLVMValueRef tid = LLVMBuildZExt(E->b, gpu_sreg(G, GPU_TID), E->i64, "tid");
  LLVMValueRef ctaid = LLVMBuildZExt(E->b, gpu_sreg(G, GPU_CTAID), E->i64, "ctaid");
  LLVMValueRef ntid = LLVMBuildZExt(E->b, gpu_sreg(G, GPU_NTID), E->i64, "ntid");
  return LLVMBuildNUWAdd(E->b, LLVMBuildNUWMul(E->b, ctaid, ntid, ""), tid, "gid");
}

/* NAME(ptr addrspace(1) noalias b..., i64 B): base pointers and B. */
static LLVMValueRef kernel_function(GpuEmit *G) {
  LkEmit *E = &G->lk;
  const Kernel *k = E->k;
  uint32_t n = k->nargs;
  LLVMTypeRef gptr = LLVMPointerTypeInContext(E->ctx, G->global_as);
  LLVMTypeRef *params = nnc_xmalloc(sizeof(LLVMTypeRef) * (n + 1));
  for (uint32_t i = 0; i < n; i++) params[i] = gptr;
  params[n] = E->i64;
  LLVMValueRef fn = LLVMAddFunction(E->mod, k->name, LLVMFunctionType(E->voidt, params, n + 1, 0));
  free(params);
  if (G->flavor == GPU_FLAVOR_PTX) LLVMSetFunctionCallConv(fn, LLVMPTXKernelCallConv);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, lk_attr(E, "nounwind", 0));
  for (uint32_t i = 0; i < n; i++) {
    int32_t buf = k->args[i];
    if (buf < 0 || (uint32_t)buf >= E->p->nbufs) LK_FAIL(E, "argument %u is not a buffer", i);
    for (uint32_t j = 0; j < i; j++)
      if (k->args[j] == buf) LK_FAIL(E, "buffer %d is passed twice", buf);
    unsigned at = i + 1;
    LLVMAddAttributeAtIndex(fn, at, lk_attr(E, "noalias", 0));
    LLVMAddAttributeAtIndex(fn, at, lk_attr(E, "nocapture", 0));
    LLVMAddAttributeAtIndex(fn, at, lk_attr(E, "align", 16)); /* cuMemAlloc aligns to 256 */
    if (!kernel_writes(k, buf)) LLVMAddAttributeAtIndex(fn, at, lk_attr(E, "readonly", 0)); /* ld.global.nc */
    char name[32];
    snprintf(name, sizeof name, "b%d", buf);
    LLVMValueRef pv = LLVMGetParam(fn, i);
    LLVMSetValueName2(pv, name, strlen(name));
    E->base[buf] = pv;
  }
  E->batch = LLVMGetParam(fn, n);
  LLVMSetValueName2(E->batch, "B", 1);
  return fn;
}

/* if (cond) { ...the caller's code... } : returns the join block; the
 * builder is left in the then block. */
static LLVMBasicBlockRef open_if(LkEmit *E, LLVMValueRef cond, const char *name) {
  LLVMBasicBlockRef then = lk_block(E, name), join = lk_block(E, "endif");
  LLVMBuildCondBr(E->b, cond, then, join);
  LLVMPositionBuilderAtEnd(E->b, then);
  return join;
}

static void close_if(LkEmit *E, LLVMBasicBlockRef join) {
  LLVMBuildBr(E->b, join);
  LLVMMoveBasicBlockAfter(join, LLVMGetInsertBlock(E->b));
  LLVMPositionBuilderAtEnd(E->b, join);
}

/* GK_THREAD: one thread per iteration of the launch loop. */
static void emit_thread(GpuEmit *G, const GpuKernelPlan *kp) {
  LkEmit *E = &G->lk;
  const Kernel *k = E->k;
  LLVMValueRef gid = global_id(G);
  const KStmt *l = k->nbody == 1 && k->body[0]->kind == KS_LOOP ? k->body[0] : NULL;
  if (!l) { /* not a loop: thread 0 runs the body once */
    LLVMBasicBlockRef join = open_if(E, LLVMBuildICmp(E->b, LLVMIntEQ, gid, lk_i64(E, 0), ""), "once");
    lk_stmts(E, k->body, k->nbody);
    close_if(E, join);
    return;
  }
  LLVMValueRef hi = lk_extent(E, kp->extent, kp->batched);
  LLVMBasicBlockRef join = open_if(E, LLVMBuildICmp(E->b, LLVMIntSLT, gid, hi, ""), "body");
  E->vars[l->var] = gid;
  lk_stmts(E, l->body, l->nbody);
  E->vars[l->var] = NULL;
  close_if(E, join);
}

/* GK_WARP: warp w of the grid computes output w.  Every lane starts from
 * op's identity and takes every 32nd step of the reduction; a butterfly
 * of shuffles gives every lane the total; init joins it; lane 0 runs the
 * statements after the reduction. */
static void emit_warp(GpuEmit *G, const GpuKernelPlan *kp) {
  LkEmit *E = &G->lk;
  const KStmt *l = E->k->body[0], *c = kp->contract;
  if (l->nbody < 1 || l->body[0] != c) LK_FAIL(E, "%s", "the warp reduction lost its shape");
  LLVMValueRef gid = global_id(G);
  LLVMValueRef out = LLVMBuildLShr(E->b, gid, lk_i64(E, 5), "out");
  LLVMValueRef lane = LLVMBuildAnd(E->b, gid, lk_i64(E, GPU_WARP - 1), "lane");
  LLVMValueRef hi = lk_extent(E, kp->extent, kp->batched);
  /* out is the same on every lane of a warp (blocks are whole warps), so
   * a warp enters or skips as one and the shuffles see all 32 lanes */
  LLVMBasicBlockRef join = open_if(E, LLVMBuildICmp(E->b, LLVMIntSLT, out, hi, ""), "warp");
  E->vars[l->var] = out;
  int32_t t = c->temp;
  LLVMBuildStore(E->b, lk_f32(E, kcombine_identity(c->combine)), E->temps[t]);
  lk_loop(E, kp->red, lane, NULL, lk_i64(E, GPU_WARP));
  LLVMValueRef v = LLVMBuildLoad2(E->b, E->f32, E->temps[t], "");
  for (int m = GPU_WARP / 2; m >= 1; m /= 2) v = lk_combine(E, c->combine, v, shfl_bfly(G, v, m));
  LLVMBuildStore(E->b, v, E->temps[t]);
  LLVMBasicBlockRef join0 = open_if(E, LLVMBuildICmp(E->b, LLVMIntEQ, lane, lk_i64(E, 0), ""), "lane0");
  KStmt store = *c; /* the contraction's store of its value */
  store.kind = KS_STORE;
  if (c->buf >= 0) lk_stmt(E, &store);
  lk_stmts(E, l->body + 1, l->nbody - 1);
  close_if(E, join0);
  E->vars[l->var] = NULL;
  close_if(E, join);
}

static void emit_kernel(GpuEmit *G, const Kernel *k, const GpuKernelPlan *kp) {
  LkEmit *E = &G->lk;
  lk_kernel_begin(E, k);
  E->fn = kernel_function(G);
  LLVMPositionBuilderAtEnd(E->b, lk_block(E, "entry"));
  lk_alloca_temps(E);
  /* .maxntid 256 (the runtime's block); tiles need exactly 256: .reqntid */
  gpu_kernel_annotate(G, E->fn, kp->kind == GK_TILED ? "reqntidx" : "maxntidx", GPU_BLOCK);
  switch (kp->kind) {
  case GK_THREAD: emit_thread(G, kp); break;
  case GK_WARP: emit_warp(G, kp); break;
  case GK_TILED: gpu_emit_tiled(G, kp); break;
  }
  LLVMBuildRetVoid(E->b);
  lk_kernel_end(E);
}

LLVMModuleRef gpu_emit_module(const KProgram *p, const GpuSchedule *s, LLVMContextRef ctx, GpuFlavor flavor,
                              GpuMath math) {
  const char *name = p->module && p->module->name ? p->module->name : "nnc";
  LLVMModuleRef mod = LLVMModuleCreateWithNameInContext(name, ctx);
  GpuEmit G;
  memset(&G, 0, sizeof G);
  lk_init(&G.lk, &gpu_target, p, ctx, mod);
  G.lk.user = &G;
  G.flavor = flavor;
  G.math = math;
  G.s = s;
  G.global_as = flavor == GPU_FLAVOR_PTX ? 1 : 0;
  G.shared_as = flavor == GPU_FLAVOR_PTX ? 3 : 0;
  GpuKernelPlan thread = {.kind = GK_THREAD};
  for (uint32_t i = 0; i < p->nkernels; i++) {
    const Kernel *k = &p->kernels[i];
    const GpuKernelPlan *kp = s && i < s->n ? &s->k[i] : NULL;
    if (!kp) { /* unscheduled: one thread per iteration of the launch loop as written */
      bool one = k->nbody == 1 && k->body[0]->kind == KS_LOOP;
      thread.extent = one ? k->body[0]->extent : 1;
      thread.batched = one && k->body[0]->batched;
      kp = &thread;
    }
    emit_kernel(&G, k, kp);
  }
  lk_dispose(&G.lk);
  return mod;
}
