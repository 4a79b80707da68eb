/* nnc/backend.h - the nnc backend interface: write a device backend as a
 * codegen plugin, built and shipped separately from nnc.
 *
 * Plain C99, self-contained (only <stddef.h> and <stdint.h>), installed as
 * PREFIX/include/nnc/backend.h.  docs/backends.md is the step-by-step guide;
 * examples/c99-backend/ is a complete plugin built against this header only.
 *
 * How it fits together
 * --------------------
 * nnc parses a model, differentiates it, fuses and lowers it into the kernel
 * IR (docs/ir.md, "Kernel IR"): a program of buffers and kernels (loop nests
 * of loads, arithmetic, reductions and stores) and two plans (the kernels of
 * one training step, and of one evaluation step).  A backend turns that
 * program into something that trains: usually an executable that links the
 * trainer runtime libnnrt.  Every built-in target (cpu, gpu, opencl, fpga,
 * asic, interp) is an NncBackend registered through this same interface.
 *
 * A plugin is a shared library (a CMake MODULE) that exports one function,
 *
 *     const NncPlugin *nnc_backend_plugin(void);
 *
 * returning a static NncPlugin that lists its backends.  nnc loads it with
 * `nnc --plugin=PATH.so`, or finds it in a directory of $NNC_PLUGIN_PATH or
 * PREFIX/lib/nnc/plugins, and refuses one built for another API version.
 * The plugin needs no symbol of the nnc executable: everything it may call
 * comes in an NncHost table of function pointers.
 *
 * Versioning
 * ----------
 * NNC_BACKEND_API_VERSION changes only when something incompatible changes;
 * nnc refuses plugins built for another version.  Within a version, the
 * structs below only ever get fields appended: each starts with its
 * api_version and struct_size, so nnc reads only the fields a plugin's
 * struct has, and a plugin checks host->struct_size before calling a host
 * function appended after the ones it was built with (NNC_HOST_HAS).
 *
 * Handles
 * -------
 * NncProgram, NncKernel, NncStmt and NncExpr are opaque, read-only handles
 * valid during one compile() call.  Indices (buffers, kernels, loop
 * variables, temporaries) are plain ints.
 */
#ifndef NNC_BACKEND_H
#define NNC_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NNC_BACKEND_API_VERSION 1

/* The entry point's name, for dlsym. */
#define NNC_BACKEND_PLUGIN_SYMBOL "nnc_backend_plugin"

#if defined(_WIN32)
#define NNC_PLUGIN_EXPORT __declspec(dllexport)
#else
#define NNC_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

typedef struct NncProgram NncProgram; /* the kernel IR of one model */
typedef struct NncKernel NncKernel;   /* one kernel */
typedef struct NncStmt NncStmt;       /* a statement of a kernel */
typedef struct NncExpr NncExpr;       /* an expression */
typedef struct NncCompile NncCompile; /* one compile() call: options, temp files, output */
typedef struct NncHost NncHost;

/* ---- the kernel IR's vocabulary (docs/ir.md) ------------------------------------ */

typedef enum { NNC_F32 = 0, NNC_I32 = 1 } NncDType;

typedef enum {
  NNC_BUF_INPUT,   /* the model input x: batched, filled by the runtime per batch */
  NNC_BUF_LABEL,   /* the label y: batched, filled by the runtime */
  NNC_BUF_PARAM,   /* a parameter, updated in place by the training step */
  NNC_BUF_STATE,   /* an optimizer state, updated in place */
  NNC_BUF_TEMP,    /* an intermediate; temps with the same slot share memory */
  NNC_BUF_LOSS,    /* the per-sample loss, f32[B] */
  NNC_BUF_METRIC,  /* a per-sample metric, f32[B] */
  NNC_BUF_SCALARS, /* f32 run-time scalars: [0] step, [1] batch size, [2 + k] hyper k, then training, seed */
  NNC_BUF_OUTPUT,  /* the model's prediction, batched f32 (any shape): read after an evaluation step */
} NncBufKind;

/* The run-time scalars an NNC_EXPR_SCALAR reads (index into the scalars
 * buffer).  After the last hyper-parameter, at NNC_SCALAR_HYPER0 + the
 * number of hypers, the training flag: 1 in a training step, 0 in an
 * evaluation (batch norm's statistics, dropout); after it the run's random
 * key, an integer in [0, 65536) (dropout's masks). */
enum { NNC_SCALAR_STEP = 0, NNC_SCALAR_BATCH = 1, NNC_SCALAR_HYPER0 = 2 };

typedef enum {
  NNC_STMT_LOOP,   /* for var in [0, extent): body */
  NNC_STMT_LET,    /* declares scalar temporary `temp` = value (in this block and nested ones) */
  NNC_STMT_ASSIGN, /* temp = value (reductions) */
  NNC_STMT_STORE,  /* buffer[indices...] = value */
  /* Appended: a contraction, `buffer[indices] = value` at each point of
   * its free axes, where temporary `temp` is the combine (sum, max, min)
   * over its reduction axes of factor 0 * factor 1 (docs/ir.md).  Only
   * backends with NNC_BACKEND_CONTRACTIONS see it; for the others nnc
   * writes every contraction as the loops it means first. */
  NNC_STMT_CONTRACT,
} NncStmtKind;

enum {
  NNC_LOOP_PARALLEL = 1 << 0, /* iterations are independent */
  NNC_LOOP_REDUCE = 1 << 1,   /* carries a reduction into a temporary: iterations are ordered */
};

/* Schedule hints of a loop: removing them never changes results. */
typedef enum { NNC_SCHED_VECTOR, NNC_SCHED_UNROLL, NNC_SCHED_TILE } NncSched;

typedef enum {
  NNC_EXPR_CONST,  /* a number: nnc_expr_const */
  NNC_EXPR_VAR,    /* a loop variable (an index, 64-bit) */
  NNC_EXPR_TEMP,   /* a scalar temporary */
  NNC_EXPR_LOAD,   /* buffer[indices...]; a guarded load reads 0 out of range */
  NNC_EXPR_SCALAR, /* a run-time scalar (NNC_SCALAR_*), f32 */
  NNC_EXPR_BATCH,  /* the batch size B (an index, 64-bit) */
  NNC_EXPR_OP,     /* an elementwise op over 1 to 3 operands */
} NncExprKind;

/* The ops an NNC_EXPR_OP computes (nnc's ir/ops.def gives each its
 * number, and checks it against this list).  Numbers are stable; new ops
 * are appended.  Semantics (the reference interpreter's; compiled code may
 * reassociate f32 sums): comparisons give f32 1 or 0; `where` is
 * (operand0 != 0 ? operand1 : operand2); max/min propagate NaN; f32 -> i32
 * casts truncate toward zero and saturate (NaN gives 0); i32 arithmetic
 * wraps; i32 division truncates toward zero and x / 0 is 0; sign gives
 * -1, 0 or 1 (NaN for NaN); stop_gradient is the identity.  Index expressions
 * (nnc_expr_is_index) compute in 64-bit integers. */
typedef enum {
  NNC_OP_UNKNOWN = 0, /* an op this header does not know yet: use op_name */
  NNC_OP_NEG, NNC_OP_EXP, NNC_OP_LOG, NNC_OP_SQRT, NNC_OP_TANH, NNC_OP_ABS, NNC_OP_SIGN,
  NNC_OP_CAST, NNC_OP_STOP_GRADIENT,
  NNC_OP_ADD, NNC_OP_SUB, NNC_OP_MUL, NNC_OP_DIV, NNC_OP_POW, NNC_OP_MAX, NNC_OP_MIN,
  NNC_OP_EQ, NNC_OP_NE, NNC_OP_LT, NNC_OP_LE, NNC_OP_GT, NNC_OP_GE,
  NNC_OP_WHERE,
  NNC_OP_SIN, NNC_OP_COS, /* appended */
  NNC_OP_RANDOM, /* random(key, ctr1, ctr0): i32, i32 and an index (or i32) to an f32 in [0, 1): Philox4x32-10
                    with key (key, 0) and counter (ctr0 low 32 bits, ctr0 high 32 bits, ctr1, 0), then the top
                    24 bits of output word 0 times 2^-24 (nnc's ir/op_eval.c has the reference code) */
} NncOp;

typedef enum { NNC_DIAG_ERROR, NNC_DIAG_WARNING, NNC_DIAG_NOTE } NncDiagLevel;

/* Which plan: the kernels one training step launches, or one evaluation step. */
typedef enum { NNC_PLAN_TRAIN, NNC_PLAN_EVAL } NncPlan;

/* What a backend's trainer code is (NncBackend.code), and so which of
 * libnnrt's devices runs it: the trainer opens the first device that loads
 * it unless --device says otherwise.  Numbers are stable. */
typedef enum {
  NNC_CODE_UNSET = 0,    /* not declared (backends built before the field): see NncBackend.code */
  NNC_CODE_NATIVE = 1,   /* native functions linked into the trainer: the cpu device (a thread pool) */
  NNC_CODE_PTX = 2,      /* PTX text, compiled by the CUDA driver: CUDA devices */
  NNC_CODE_OPENCL_C = 3, /* OpenCL C source, built when the trainer starts: OpenCL devices */
} NncCodeKind;

/* A source location in the user's .nn file (file NULL = none). */
typedef struct NncLoc {
  const char *file;
  int line, col;
} NncLoc;

/* ---- what a backend provides ------------------------------------------------------- */

enum {
  /* The backend interprets the graph itself (interp): nnc does not lower
   * the model to kernel IR and compile() is not called. */
  NNC_BACKEND_NO_KERNELS = 1 << 0,
  /* Lower every matmul and batch sum into a kernel of its own, with no
   * fused epilogue or optimizer update: for backends that map each output
   * element to a work-item (NDRange) and schedule contractions alone. */
  NNC_BACKEND_SEPARATE_CONTRACTIONS = 1 << 1,
  /* Appended: compile() reads NNC_STMT_CONTRACT statements (the host's
   * contract_* functions) and schedules them itself. */
  NNC_BACKEND_CONTRACTIONS = 1 << 2,
};

typedef struct NncBackend {
  uint32_t api_version;    /* NNC_BACKEND_API_VERSION */
  uint32_t struct_size;    /* sizeof(NncBackend) */
  const char *name;        /* the target name: `nnc --target=NAME` */
  const char *description; /* one line for `nnc --list-targets` */
  /* The --emit kinds compile() writes instead of a trainer, comma-separated
   * ("c", "llvm,asm,obj"); NULL or "" = none. */
  const char *emits;
  unsigned flags;          /* NNC_BACKEND_* */
  /* Compiles the program of `c` (host->program(c)) into host->output(c):
   * a trainer executable, or what host->emit(c) asks for.  Reports its
   * errors through host->diag and returns 0, or nonzero on failure. */
  int (*compile)(const NncHost *host, NncCompile *c);
  void *user;              /* anything; host->backend_user(c) returns it */
  /* Appended: the --backend-opt=KEY=VALUE keys compile() reads through
   * host->option, comma-separated ("cc,cflags,hls").  nnc refuses any
   * other key for this target with a message naming these; NULL or "" =
   * the target takes none. */
  const char *options;
  /* Appended: what the trainer's code is, and so the devices it runs on
   * (`nnc --list-targets` shows them).  Native functions (write_descriptor
   * and link_trainer with code NULL) are NNC_CODE_NATIVE whatever this
   * says; device code is this kind.  NNC_CODE_UNSET, and every backend
   * built before this field, keeps the first rule: the device "gpu" means
   * PTX, any other OpenCL C. */
  NncCodeKind code;
  /* Appended, optional: writes the schedule compile() would choose into
   * the program of `c` (loop schedule hints, tiles: attributes that do not
   * change results) without compiling it, so that `nnc --emit=kernels
   * --target=NAME` prints the kernel IR as this backend runs it.  NULL:
   * --emit=kernels prints it as lowered.  Returns 0, or nonzero after
   * reporting an error. */
  int (*schedule)(const NncHost *host, NncCompile *c);
} NncBackend;

/* Does backend b's struct (of its own struct_size) have `field`? */
#define NNC_BACKEND_HAS(b, field) ((b)->struct_size >= offsetof(NncBackend, field) + sizeof((b)->field))

typedef struct NncPlugin {
  uint32_t api_version;    /* NNC_BACKEND_API_VERSION */
  uint32_t struct_size;    /* sizeof(NncPlugin) */
  const char *name;        /* for messages */
  int nbackends;
  const NncBackend *const *backends;
} NncPlugin;

/* The one symbol a plugin exports (define it with NNC_PLUGIN_EXPORT). */
typedef const NncPlugin *(*NncPluginEntry)(void);

/* ---- what nnc provides: the host table ---------------------------------------------- */

struct NncHost {
  uint32_t api_version;    /* NNC_BACKEND_API_VERSION */
  uint32_t struct_size;    /* sizeof(NncHost) in this nnc: see NNC_HOST_HAS */
  const char *nnc_version; /* "0.1.0" */

  /* -- the compile call ------------------------------------------------------------------ */
  const NncProgram *(*program)(NncCompile *c);
  const char *(*target)(NncCompile *c);        /* the --target name this call compiles for */
  void *(*backend_user)(NncCompile *c);        /* NncBackend.user */
  const char *(*output)(NncCompile *c);        /* -o FILE, "-" for stdout, or NULL (backend's default) */
  const char *(*emit)(NncCompile *c);          /* --emit=KIND (one of NncBackend.emits), or NULL: a trainer */
  int (*opt_level)(NncCompile *c);             /* -O0 .. -O3 */
  int (*verbose)(NncCompile *c);               /* -v: print commands, keep temporary files */
  /* A named option: --backend-opt=KEY=VALUE, or nnc's own --cpu, --schedule,
   * --gpu-arch, --local-mem, --batch (keys "cpu", "schedule", "gpu-arch",
   * "local-mem", "batch").
   * NULL when not given. */
  const char *(*option)(NncCompile *c, const char *key);
  /* The path of a file `name` in this call's temporary directory, removed
   * after compile() returns (kept, and said where, with -v); NULL after an error. */
  const char *(*temp_file)(NncCompile *c, const char *name);

  /* -- diagnostics ----------------------------------------------------------------------- */
  /* Reports like nnc's own messages ("file:line:col: error: ..." with the
   * source line); with a kernel, at the line of the user's .nn file that
   * kernel computes (kernel_loc), with a note at the line inside a stdlib
   * or imported function it came from; kernel NULL = no location.
   * Any error makes nnc exit 1. */
  void (*diag)(NncCompile *c, NncDiagLevel level, const NncKernel *k, const char *fmt, ...)
#if defined(__GNUC__)
      __attribute__((format(printf, 4, 5)))
#endif
      ;
  int (*error_count)(void);

  /* -- the program ----------------------------------------------------------------------- */
  const char *(*program_name)(const NncProgram *p);   /* the model's name */
  int (*num_buffers)(const NncProgram *p);
  const char *(*buffer_name)(const NncProgram *p, int buf); /* "x", "h.w", "t12", "loss", ... */
  NncBufKind (*buffer_kind)(const NncProgram *p, int buf);
  NncDType (*buffer_dtype)(const NncProgram *p, int buf);
  int (*buffer_rank)(const NncProgram *p, int buf);          /* per-sample rank */
  int64_t (*buffer_dim)(const NncProgram *p, int buf, int axis);
  int (*buffer_batched)(const NncProgram *p, int buf);       /* holds B samples, the sample first */
  int (*buffer_slot)(const NncProgram *p, int buf);          /* temps: memory slot; -1 otherwise */
  /* Elements of the buffer for a batch of `batch` samples. */
  int64_t (*buffer_elems)(const NncProgram *p, int buf, int64_t batch);
  int (*num_kernels)(const NncProgram *p);
  const NncKernel *(*kernel)(const NncProgram *p, int i);
  int (*plan_length)(const NncProgram *p, NncPlan plan);
  int (*plan_kernel)(const NncProgram *p, NncPlan plan, int i); /* a kernel index */

  /* -- kernels ----------------------------------------------------------------------------
   * ABI of every backend: a kernel's parameters are its argument buffers in
   * order, then B as an int64; its outermost loop is the launch range. */
  const char *(*kernel_name)(const NncKernel *k);    /* unique, a C identifier: "k3_matmul" */
  const char *(*kernel_what)(const NncKernel *k);    /* "matmul + add" */
  int (*kernel_num_args)(const NncKernel *k);
  int (*kernel_arg)(const NncKernel *k, int i);      /* a buffer index */
  int (*kernel_num_vars)(const NncKernel *k);        /* loop variables 0 .. n-1 */
  int (*kernel_num_temps)(const NncKernel *k);       /* temporaries 0 .. n-1 */
  NncDType (*kernel_temp_dtype)(const NncKernel *k, int temp);
  int (*kernel_num_stmts)(const NncKernel *k);
  const NncStmt *(*kernel_stmt)(const NncKernel *k, int i);
  /* The launch range: the outermost loop's extent (*batched: times B), or 1. */
  int64_t (*kernel_range)(const NncKernel *k, int *batched);
  NncLoc (*kernel_loc)(const NncProgram *p, const NncKernel *k);

  /* -- statements ------------------------------------------------------------------------ */
  NncStmtKind (*stmt_kind)(const NncStmt *s);
  int (*loop_var)(const NncStmt *s);
  int64_t (*loop_extent)(const NncStmt *s, int *batched); /* iterations, times B when *batched */
  unsigned (*loop_flags)(const NncStmt *s);               /* NNC_LOOP_* */
  int64_t (*loop_sched)(const NncStmt *s, NncSched which);/* 0 = not set */
  int (*stmt_num_body)(const NncStmt *s);                 /* loops */
  const NncStmt *(*stmt_body)(const NncStmt *s, int i);
  int (*stmt_temp)(const NncStmt *s);                     /* let, assign */
  int (*stmt_buffer)(const NncStmt *s);                   /* store */
  int (*stmt_num_indices)(const NncStmt *s);              /* store: rank, + 1 when batched */
  const NncExpr *(*stmt_index)(const NncStmt *s, int i);
  const NncExpr *(*stmt_value)(const NncStmt *s);         /* let, assign, store */

  /* -- expressions ----------------------------------------------------------------------- */
  NncExprKind (*expr_kind)(const NncExpr *e);
  NncDType (*expr_dtype)(const NncExpr *e);
  int (*expr_is_index)(const NncExpr *e);     /* 64-bit index arithmetic (dtype I32) */
  double (*expr_const)(const NncExpr *e);
  int (*expr_var)(const NncExpr *e);
  int (*expr_temp)(const NncExpr *e);
  int (*expr_buffer)(const NncExpr *e);       /* load */
  int (*expr_guarded)(const NncExpr *e);      /* load: out-of-range indices read 0 */
  int (*expr_num_indices)(const NncExpr *e);  /* load: rank, + 1 when batched (sample first) */
  const NncExpr *(*expr_index)(const NncExpr *e, int i);
  int (*expr_scalar)(const NncExpr *e);       /* NNC_SCALAR_* */
  NncOp (*expr_op)(const NncExpr *e);
  const char *(*expr_op_name)(const NncExpr *e); /* "add", "exp", "where", ... as in docs/ir.md */
  int (*expr_num_operands)(const NncExpr *e);
  const NncExpr *(*expr_operand)(const NncExpr *e, int i);

  /* -- building the trainer --------------------------------------------------------------
   * A trainer is the descriptor (a C file nnc writes: buffers, plans,
   * train-block defaults, a main() calling libnnrt's rt_trainer_main),
   * the backend's code, and libnnrt, linked by the system C compiler. */

  /* Writes the descriptor of the program to `path`.  code NULL: the kernels
   * are native functions linked into the executable, one per kernel, named
   * as kernel_name and of the type
   *     void NAME(void **args, int64_t begin, int64_t end);
   * (args[i] is the address of argument i's value: `*(float **)args[i]` is
   * a buffer's base pointer, `*(int64_t *)args[nargs]` is B; the outermost
   * loop runs [begin, end) of its range; a body that is not one loop runs
   * once, in the call whose range holds 0; every buffer is 64-byte aligned
   * and distinct buffers of one kernel never overlap), and
   * libnnrt runs them on its cpu device (threads).  Otherwise code[0 ..
   * code_size) is device code embedded in the descriptor, built with
   * code_options: of the kind NncBackend.code declares (PTX for CUDA
   * devices, OpenCL C for any OpenCL device; without it, `device` "gpu"
   * means PTX and any other OpenCL C).  `device` is the target name the
   * trainer reports (NULL: the backend's name). */
  int (*write_descriptor)(NncCompile *c, const char *path, const char *device, const char *code,
                          uint64_t code_size, const char *code_options);
  /* Where the runtime is: the directory holding nnrt/model.h (the
   * descriptor's headers) and the path of libnnrt.a.  NULL after an error. */
  const char *(*runtime_include_dir)(NncCompile *c);
  const char *(*runtime_library)(NncCompile *c);
  /* Runs a command (argv NULL-terminated, no shell; printed first with -v).
   * Returns its exit status, or -1 when it could not be started. */
  int (*run_command)(NncCompile *c, const char *const *argv);
  /* Links `inputs` (C sources and objects) with libnnrt into the executable
   * `output` with the system C compiler ($NNC_CC or cc):
   *     cc -O2 -o output inputs... -I<runtime include> libnnrt.a -lz -lm -lpthread -ldl
   * Returns 0, or nonzero after reporting "linking failed". */
  int (*link_executable)(NncCompile *c, const char *const *inputs, int ninputs, const char *output);
  /* Both steps: writes the descriptor (as write_descriptor) into the
   * temporary directory and links it with `objects` into `output`. */
  int (*link_trainer)(NncCompile *c, const char *device, const char *code, uint64_t code_size,
                      const char *code_options, const char *const *objects, int nobjects, const char *output);

  /* -- appended: contractions (NNC_BACKEND_CONTRACTIONS) ----------------------------------
   * A contraction's store uses stmt_buffer, stmt_num_indices, stmt_index
   * and stmt_value (an expression of stmt_temp); its axes are its own loop
   * variables: the free ones first, then the reduction ones. */
  int (*contract_num_axes)(const NncStmt *s, int *nfree);
  int (*contract_axis)(const NncStmt *s, int i, int64_t *extent, int *batched); /* the axis' variable */
  NncOp (*contract_combine)(const NncStmt *s);                   /* NNC_OP_ADD, NNC_OP_MAX or NNC_OP_MIN */
  const NncExpr *(*contract_factor)(const NncStmt *s, int i);    /* 0 and 1; factor 1 may be NULL (term = factor 0) */

  /* -- appended: the inference library (--emit=lib, native code only) -------------------
   * Writes DIR/NAME.h and DIR/libNAME.a (NAME: the model's): the descriptor
   * without main(), the NAME_* functions of docs/library.md, `objects` and
   * libnnrt in one archive.  Returns 0, or nonzero after reporting why. */
  int (*link_library)(NncCompile *c, const char *const *objects, int nobjects, const char *dir);
};

/* Whether host h has `field` (a plugin built against a newer header than
 * the nnc it runs in checks the functions it uses that were appended later). */
#define NNC_HOST_HAS(h, field) \
  ((h)->struct_size >= offsetof(NncHost, field) + sizeof((h)->field) && (h)->field != NULL)

#ifdef __cplusplus
}
#endif

#endif /* NNC_BACKEND_H */
