/* codegen/gpu/gpu.h - the gpu backend: kernel IR -> LLVM IR for
 * nvptx64-nvidia-cuda -> PTX, run by the CUDA driver (runtime/device_cuda.c).
 *
 *   schedule.c  how each kernel maps onto blocks and threads; reshapes the
 *               kernel IR (with the opencl NDRange schedule) and sets the
 *               launch ranges the descriptor (codegen/descriptor.c) records
 *   emit.c      the module: kernel signatures, thread indices, the
 *               one-thread and one-warp forms, math through libdevice; the
 *               statements inside are the shared LLVM emitter's
 *               (codegen/llvm/emit.c), as on the cpu
 *   tiled.c     the shared-memory tiled form of matmuls and implicit GEMMs
 *   igemm.c     convolutions as implicit GEMMs: the shared plan
 *               (passes/igemm.c: which of a contraction's axes become the
 *               rows, columns and depth) with the tile per thread
 *   target.c    the NVPTX target machine, linking libdevice, the pipeline,
 *               PTX text
 *
 * Kernel ABI (runtime/trainer.c launches it):
 *
 *   .entry NAME(.param .u64 b0, ..., .param .u64 B)
 *   = ptx_kernel void NAME(ptr addrspace(1) noalias b0, ..., i64 B)
 *
 * the kernel's buffers in Kernel.args order, then the batch size B.  The
 * runtime launches ceil(range / 256) blocks of 256 threads, range = the
 * launch loop's extent in the kernel IR (times B when batched), and every
 * kernel guards itself against the threads past its work.  Read-only
 * buffers are `readonly`, so loads from them become ld.global.nc.
 *
 * Kernel forms (GpuKernelKind):
 *   GK_THREAD  one thread per iteration of the outermost loop: i =
 *              blockIdx.x * blockDim.x + threadIdx.x, `if (i < range)`;
 *              inner loops run as on the cpu
 *   GK_WARP    a contraction `t = op r of term` (op add, max or min) and
 *              stores, with a long r and few outputs: one warp
 *              per output; lane l takes r = l, l + 32, ..., the 32 partial
 *              results meet through shfl.sync.bfly, lane 0 stores.  The
 *              launch range is 32 x the outputs
 *   GK_TILED   a dot-product matmul C[rows, cols] = sum_k X(row, k) Y(k, col)
 *              (forward, input gradient and weight gradient of dense
 *              layers), or an implicit GEMM: a contraction over several
 *              reduction axes (a convolution, its data and filter
 *              gradients) viewed as one, rows, columns and k each a group
 *              of its axes (TileGroup); a block computes a 16 rm x 16 rn tile of C, each
 *              thread rm x rn outputs held in registers; per step of 16
 *              along k the block stages a 16rm x 16 slice of X and a 16 x
 *              16rn slice of Y in shared memory (addrspace(3)), between
 *              barriers.  Blocks stride over the tiles, so any grid works;
 *              the launch range is rows x cols / (rm rn)
 *
 * Results agree with the interpreter within 1e-4 relative, as on the cpu:
 * a tiled or one-thread dot product adds its terms in the reduction's
 * order; a warp reduction adds 32 partial sums (reassociation).  Math:
 * the libdevice functions ir/ops.def names (__nv_expf, ...; linked in,
 * internalised); without libdevice, approximations: ir/ops.def's NVVM
 * intrinsics, or formulas over ex2/lg2 for exp, log, tanh and pow (a -v
 * note says so).  sqrt is sqrt.rn, division div.rn, no flush to zero.
 */
#ifndef NNC_GPU_H
#define NNC_GPU_H

#include "ir/kernel.h"
#include "passes/igemm.h"

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include <stdbool.h>
#include <stddef.h>

enum { GPU_BLOCK = 256, GPU_WARP = 32, GPU_TK = 16 }; /* threads per block (runtime/trainer.c), per warp; tile depth */
enum { GPU_TILES_WANTED = 128 }; /* tiles that keep an H100's 132 SMs (or any smaller GPU) busy */

typedef struct GpuOptions {
  int opt_level;            /* 0..3: default<ON> and the codegen level */
  const char *arch;         /* --gpu-arch: "sm_75" .. "sm_90a"; NULL = "sm_90" */
  bool verbose;             /* -v: the target, the stage times, the libdevice note */
  const char *libdevice;    /* NULL: $NNC_LIBDEVICE, else the CUDA toolkit's libdevice.10.bc */
  int64_t batch;            /* the batch size schedule decisions assume (0 = the train block's, else 32) */
} GpuOptions;

typedef enum {
  GPU_OUT_LLVM,             /* the optimised LLVM IR (--target=gpu --emit=llvm) */
  GPU_OUT_PTX,              /* PTX (--emit=ptx, and the trainer's code) */
} GpuOutKind;

/* ---- schedule.c ---- */
typedef enum { GK_THREAD, GK_WARP, GK_TILED } GpuKernelKind;

/* GK_TILED: the tile groups (TileGroup, passes/igemm.h) say which loop
 * variables a tile's row, column, depth and group indices stand for. */
typedef struct GpuKernelPlan {
  GpuKernelKind kind;
  int64_t extent;           /* the launch loop's iterations before the launch range was set */
  bool batched;             /*   (times B when set) */
  /* GK_WARP and GK_TILED: the launch loop's first statement; for GK_WARP
   * and a tiled matmul a contraction with no free axes and one reduction
   * axis, for an implicit GEMM (a convolution) the launch loop's only
   * statement, with its free axes */
  const KStmt *contract;
  const KStmt *red;         /* GK_WARP: its reduction as a loop `for r: t = t op term` */
  /* GK_TILED: C[group, row, col] = sum_k x(group, row, k) * y(group, k, col) */
  bool igemm;               /* an implicit GEMM (igemm.c): the groups come from the contraction's axes */
  int rm, rn;               /* outputs per thread; the tile is 16 rm x 16 rn */
  TileGroup tg[TG_NGROUPS];
  const KExpr *x, *y;       /* the factors of the term: x(row, k) free of the column, y(k, col) of the row */
  bool x_kmajor, y_kmajor;  /* x (y) is contiguous along k: neighbouring threads load neighbouring k */
} GpuKernelPlan;

typedef struct GpuSchedule {
  GpuKernelPlan *k;         /* [n], one per kernel, owned */
  uint32_t n;
} GpuSchedule;

typedef struct GpuScheduleOptions {
  int64_t batch;            /* the batch size decisions assume */
  int tile;                 /* 0: choose rm, rn per product; else force rm = rn = tile (1, 2, 4, 8; tests);
                               -1: nothing tiled */
  int warp;                 /* 0: GK_WARP where it pays; 1: wherever the shape allows; -1: never (tests) */
} GpuScheduleOptions;

/* Requires a KProgram fresh from lowering (memplan before or after).
 * Rewrites its kernels (the opencl NDRange schedule: row accumulations into
 * dot products, independent nests collapsed into the launch loop), picks a
 * form per kernel, and sets each launch loop's extent to the threads the
 * form wants; the kernels then mean what the plan says, so they must be
 * emitted with it.  Fills s (free with gpu_schedule_free). */
void gpu_schedule(KProgram *p, const GpuScheduleOptions *o, GpuSchedule *s);
void gpu_schedule_free(GpuSchedule *s);

/* ---- emit.c ---- */
typedef enum {
  GPU_FLAVOR_PTX,           /* NVPTX: address spaces 1 and 3, nvvm intrinsics, ptx_kernel */
  GPU_FLAVOR_HOST,          /* the same kernels for the host, for tests: thread ids, barriers and shuffles
                               are calls to i32 nnc_sim_tid(), nnc_sim_ctaid(), nnc_sim_ntid(),
                               nnc_sim_nctaid(), void nnc_sim_barrier(), float nnc_sim_shfl_bfly(float, i32);
                               shared memory is an ordinary global; math is LLVM's intrinsics */
} GpuFlavor;

typedef enum {
  GPU_MATH_LIBDEVICE,       /* calls of __nv_expf, ...: link libdevice before optimising */
  GPU_MATH_APPROX,          /* approximate instructions (ex2.approx, sin.approx, ...) */
} GpuMath;

/* Builds one module in ctx with a kernel per kernel of p, as scheduled by
 * s (unoptimised).  Aborts with an internal error on broken kernel IR. */
LLVMModuleRef gpu_emit_module(const KProgram *p, const GpuSchedule *s, LLVMContextRef ctx, GpuFlavor flavor,
                              GpuMath math);

/* ---- target.c ---- */
/* Is `arch` one nnc generates PTX for (sm_75, sm_80, sm_86, sm_87, sm_89, sm_90, sm_90a)? */
bool gpu_arch_valid(const char *arch);
extern const char gpu_arch_list[]; /* "sm_75, sm_80, ..." for messages */
/* The libdevice file o asks for, $NNC_LIBDEVICE, or the toolkit's; NULL when none exists. */
const char *gpu_libdevice_path(const GpuOptions *o);
/* The nvptx64-nvidia-cuda machine for o->arch; NULL after reporting an error. */
LLVMTargetMachineRef gpu_target_machine(const GpuOptions *o);
/* Links the libdevice bitcode at path into m and makes every function and
 * global that is not a kernel internal.  False after reporting an error. */
bool gpu_link_libdevice(LLVMModuleRef m, const char *path);
/* nvvm-reflect, global DCE, then default<ON>.  False after reporting an error. */
bool gpu_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, int opt_level);
/* The whole backend: schedule p (rewriting it), emit, verify, link
 * libdevice, optimise, and return the PTX or LLVM IR text (malloc'ed,
 * NUL-terminated, *len bytes).  False after reporting an error. */
bool gpu_compile(KProgram *p, const GpuOptions *o, GpuOutKind kind, char **text, size_t *len);

/* ---- between the files of codegen/gpu ---- */
typedef struct GpuEmit GpuEmit;
/* The special registers and operations of the flavor (emit.c). */
typedef enum { GPU_TID, GPU_CTAID, GPU_NTID, GPU_NCTAID } GpuSreg;
LLVMValueRef gpu_sreg(GpuEmit *G, GpuSreg r);        /* i32 */
void gpu_barrier(GpuEmit *G);                          /* __syncthreads() */
LLVMValueRef gpu_shared_array(GpuEmit *G, const char *name, int64_t nfloats); /* float[n], align 16 */
void gpu_kernel_annotate(GpuEmit *G, LLVMValueRef fn, const char *key, int value); /* !nvvm.annotations */
struct LkEmit *gpu_lk(GpuEmit *G);
/* The implicit-GEMM plan of kernel k (igemm.c): true, with g filled, when
 * its launch loop holds only a sum of products over two or more reduction
 * axes (a convolution, its data or filter gradient) worth tiling at the
 * batch size o assumes; then the kernel must not be reshaped before it is
 * emitted. */
bool gpu_plan_igemm(const KProgram *p, const Kernel *k, const GpuScheduleOptions *o, GpuKernelPlan *g);
/* The threads an implicit GEMM's launch wants (igemm.c): about 256 per tile. */
int64_t gpu_igemm_launch(const GpuKernelPlan *g);
/* Does some load in e move by exactly one element per step of var (schedule.c)? */
bool gpu_contiguous_in(const KProgram *p, const KExpr *e, int32_t var);
/* Emits kernel k's tiled body (tiled.c); the function, base pointers, B
 * and temporaries are set up. */
void gpu_emit_tiled(GpuEmit *G, const GpuKernelPlan *kp);

#endif
