/* ir/kernel.h - the kernel IR: loop nests over named buffers.
 *
 * Lowering (passes/lower.c; the step's order: passes/lower_step.c) turns
 * the training-step graph into a KProgram: buffers (inputs, labels,
 * parameters, states, temporaries, per-sample loss and metric values, and
 * one small buffer of run-time scalars) and kernels.
 * Two plans list the kernels a training step and an evaluation step launch,
 * in order.  Every backend consumes this IR; none re-derives the math.
 *
 * A kernel is a tree of statements: loops (with a constant extent or the
 * batch size B), scalar temporaries (let / assign, for reductions), stores,
 * and contractions.  Expressions are small trees: constants, loop variables, loads
 * with one index expression per buffer axis, run-time scalars, and the
 * elementwise ops of the graph IR (their Op codes are reused).  Index
 * expressions are affine in the loop variables (sums of var * constant and
 * constants), so backends can compute strides, vectorise and coalesce,
 * except a gathered row (a load of a token) and a scattered one (the
 * token clamped into the buffer by min and max: an embedding's gradient,
 * stored into in order by `reduce` loops); passes that need strides
 * leave those alone (kexpr_coefficient fails on them).
 * A guarded load (for padding, later conv2d) yields 0 outside the buffer.
 *
 * Contractions (matrix products, their gradients, batch sums, and later
 * convolutions and batched products) are first-class statements rather
 * than loop nests, so every backend's schedule reads them as they are:
 *
 *   contract buf[idx] = value for F (free axes) with t = COMBINE R (reduction axes) of a * b
 *
 * means: for each point of the free axes, t = the COMBINE (sum, max or min)
 * over the reduction axes of a * b (or of a alone), then buf[idx] = value,
 * an expression of t (the epilogue: `t` itself, or `where(m, t, 0)`).  The
 * statement owns the loop variables of its axes and its temporary t; a, b,
 * idx and value may also use the enclosing loops' variables.  a and b are
 * any expressions (usually loads, possibly guarded for padding, at indices
 * affine in the variables); the order of the reduction is unspecified.
 * With no free axes the contraction also works like a `let`: t keeps its
 * value after the statement, to the end of the enclosing block, and the
 * store may be absent (buf -1: `contract t = sum ... of ...`), which is
 * how fusion leaves a row's reduction that only later statements read.
 * Backends that have no schedule for a contraction expand it into loops
 * (kcontract_expand); KStmt.sched.rows picks the loop order.
 *
 * The schedule is kept apart from the math: each loop carries schedule
 * attributes (parallel, vector width, unroll, tile) that a scheduling pass
 * sets and backends honour; removing them never changes results.
 *
 * Kernel ABI (every backend): a kernel's parameters are the buffers it
 * touches (KernelArg list), in order, then the batch size B as int64.  The
 * outermost loop of every kernel is its launch range: CPU threads split it,
 * GPUs map it to blocks and threads, OpenCL to work-items.
 */
#ifndef NNC_KERNEL_H
#define NNC_KERNEL_H

#include "ir/ir.h"

#include <stdio.h>

typedef enum {
  KB_INPUT,   /* the model input x: batched, filled per batch */
  KB_LABEL,   /* the label y: batched, filled per batch */
  KB_PARAM,   /* a parameter, updated in place by the training step */
  KB_STATE,   /* an optimizer state, updated in place */
  KB_TEMP,    /* an intermediate; shares memory with temps it never overlaps (slot) */
  KB_LOSS,    /* the per-sample loss, batched f32 scalar */
  KB_METRIC,  /* a per-sample metric, batched f32 scalar */
  KB_SCALARS, /* f32 run-time scalars: [0] step, [1] batch size, [2+k] hyper k, then training, seed */
  KB_OUTPUT,  /* the prediction (OUT_PREDICT), batched f32: computed by both plans, read after evaluation */
} KBufKind;

/* Run-time scalars: [0] step, [1] batch size, [2 + k] hyper-parameter k
 * (the k-th SYM_HYPER symbol), and after the last hyper the training flag
 * (1 in a training step, 0 in evaluation: kscalar_training), then the run's
 * random key (the `seed` op: kscalar_seed). */
enum { KSCALAR_STEP = 0, KSCALAR_BATCH = 1, KSCALAR_HYPER0 = 2 };
static inline int32_t kscalar_training(int32_t nhypers) { return KSCALAR_HYPER0 + nhypers; }
static inline int32_t kscalar_seed(int32_t nhypers) { return KSCALAR_HYPER0 + nhypers + 1; }
static inline int32_t kscalar_count(int32_t nhypers) { return KSCALAR_HYPER0 + nhypers + 2; }

typedef struct KBuffer {
  const char *name;   /* "x", "h.w", "h.w/m", "t12", "loss", "metric.accuracy", "scalars", "output" */
  KBufKind kind;
  Type type;          /* element type and per-sample shape; batched buffers hold B of them */
  uint32_t sym;       /* inputs, labels, params, states: the Module symbol */
  int32_t slot;       /* temps: memory slot from the memory plan (-1 = none yet) */
  uint32_t loc;       /* symbols: the declaration; temps, loss, metrics: the graph node it holds (IrLoc) */
  int32_t op;         /* temps, loss, metrics: the graph op (an Op) of that node (-1 = none), for run-time messages */
} KBuffer;

typedef enum {
  KE_CONST,  /* value */
  KE_VAR,    /* loop variable `var` (i64) */
  KE_TEMP,   /* scalar temporary `temp` */
  KE_LOAD,   /* buf[idx[0], ..., idx[nidx-1]]; batched buffers index the sample first */
  KE_SCALAR, /* run-time scalar number `scalar` (KSCALAR_*), f32 */
  KE_BATCH,  /* the batch size B as i64 (for index arithmetic) */
  KE_OP,     /* op (an OPF_ELEMWISE graph op, or OP_CAST) over a, b, c */
} KExprKind;

typedef struct KExpr KExpr;
struct KExpr {
  KExprKind kind;
  DType dtype;        /* result type; index arithmetic uses DT_I32 with i64 semantics (see ktype_index) */
  bool index;         /* an index expression: i64 arithmetic */
  Op op;              /* KE_OP */
  double value;       /* KE_CONST */
  int32_t var;        /* KE_VAR */
  int32_t temp;       /* KE_TEMP */
  int32_t buf;        /* KE_LOAD */
  int32_t scalar;     /* KE_SCALAR */
  bool guarded;       /* KE_LOAD: out-of-range indices read 0 */
  uint8_t nidx;       /* batched buffers: rank + 1 (sample index first); others: rank */
  KExpr *idx[NNC_MAX_RANK + 1];
  KExpr *a, *b, *c;   /* KE_OP operands */
};

typedef enum {
  KS_LOOP,   /* for var in [0, extent): body */
  KS_LET,    /* temp = value (declares the temporary) */
  KS_ASSIGN, /* temp = value (updates it; reductions) */
  KS_STORE,  /* buf[idx...] = value */
  KS_CONTRACT, /* a contraction (see the top): a store of a reduction over its own axes */
} KStmtKind;

enum KLoopFlags {
  KL_PARALLEL = 1 << 0, /* iterations are independent: split across threads / blocks */
  KL_REDUCE = 1 << 1,   /* carries a reduction into a temporary (or a scatter's rows): iterations are ordered */
};

enum { NNC_MAX_CONTRACT_AXES = 8 };

/* One axis of a contraction: its loop variable and range. */
typedef struct KAxis {
  int32_t var;
  int64_t extent;     /* iterations, times B when batched */
  bool batched;
} KAxis;

typedef struct KStmt KStmt;
struct KStmt {
  KStmtKind kind;
  /* KS_LOOP */
  int32_t var;
  int64_t extent;     /* iterations, times B when batched */
  bool batched;
  unsigned flags;     /* KL_* */
  struct {            /* schedule attributes: hints, never semantics */
    int vector;       /* vector width for this loop (0 = backend's choice) */
    int unroll;       /* unroll factor (0 = none) */
    int64_t tile;     /* tile size (0 = none) */
    bool rows;        /* KS_CONTRACT expanded into loops: accumulate rows of buf (reduction outside the
                         last free axis) instead of one reduction per output (reduction innermost) */
  } sched;
  struct {            /* KS_CONTRACT: the CPU's direct plan (codegen/cpu/direct.c), a hint like sched */
    int vector;       /* lanes per vector; 0 = no plan */
    int nv, mr, nc;   /* vectors of lanes per block, rows per block, columns per block */
    int8_t lanes;     /* index into axes[]: a free axis (outputs in lanes) or a reduction axis (partial sums) */
    int8_t rows;      /* index into axes[] of a free axis whose block of mr shares a factor's loads, or -1 */
    int8_t cols;      /* index into axes[] of a free axis whose block of nc shares the other factor's, or -1 */
  } direct;
  KStmt **body;
  uint32_t nbody, capbody;
  /* KS_LET / KS_ASSIGN */
  int32_t temp;
  /* KS_STORE */
  int32_t buf;
  uint8_t nidx;
  KExpr *idx[NNC_MAX_RANK + 1];
  /* KS_LET / KS_ASSIGN / KS_STORE / KS_CONTRACT */
  KExpr *value;
  /* KS_CONTRACT (with buf, idx, temp and value above) */
  KAxis axes[NNC_MAX_CONTRACT_AXES]; /* the free axes, then the reduction axes */
  uint8_t nfree, nred;
  Op combine;         /* OP_ADD (a sum), OP_MAX or OP_MIN */
  KExpr *a, *b;       /* the term a * b; b NULL: the term is a */
};

/* The CPU scheduler's plan (passes/schedule_cpu.c) for a kernel whose
 * launch loop begins with a contraction of two factors:
 *
 *   C(i, j) = sum over k of A(i, k) * B(k, j)   for i in the launch range
 *
 * (i the launch loop's variable, j the contraction's free axis, k its
 * reduction axis), then the contraction's value and the rest of the launch
 * loop's body (the epilogue) for each i.  A batched product (attention's
 * [h, t, d] @ [h, d, t], a per-sample [t, n] @ [n, m]) has batch axes l
 * around that: the launch loop and the contraction's free axes before the
 * last two, whose last two are then i and j; it is one such product per
 * batch index, and the epilogue follows the products of each launch
 * iteration.  Like the loop attributes it is a hint: the statements stay
 * the semantics, a backend that ignores it is right, and the CPU backend
 * emits the contraction as a packed, register-blocked matrix product
 * (docs/codegen-cpu.md).  Each operand is an affine access: element
 * offset + i, j, k (and l) strides. */
enum { KGEMM_MAX_BATCH = NNC_MAX_CONTRACT_AXES - 1 };

typedef struct KGemmOperand {
  int32_t buf;
  int64_t offset;     /* elements, at i = j = k = l = 0 */
  int64_t si, sj, sk; /* elements per step of i, j, k */
  int64_t sl[KGEMM_MAX_BATCH]; /* elements per step of each batch axis */
} KGemmOperand;

typedef struct KGemm {
  const KStmt *contract;        /* the contraction, the launch loop's first statement */
  int32_t var_i, var_j, var_k;  /* the loop variables */
  int64_t m, n, k;              /* extents (times B when m_batched / k_batched) */
  bool m_batched, k_batched;
  int nbatch;                   /* batch axes (0: i is the launch loop's variable) */
  int32_t var_l[KGEMM_MAX_BATCH]; /* their variables, outermost first: var_l[0] is the launch loop's */
  int64_t l[KGEMM_MAX_BATCH];   /* their extents (l[0] times B when l_batched) */
  bool l_batched;
  KGemmOperand a, b, c;
  /* the schedule: micro-tile mr x nr (nr a multiple of `vector`), cache
   * blocks kc (depth), mc (rows of packed A), nc (columns of packed B);
   * loop order jc, pc, ic, ir, jr with A and B packed */
  int vector, mr, nr, kc, mc, nc;
  bool pack_a;                  /* false: the micro-kernel broadcasts A from where it lies (k-contiguous
                                   rows, one column block: packing would cost more than it saves) */
  bool pack_b;                  /* false: the micro-kernel reads B in place (unit column stride, small n) */
  bool swap;                    /* compute C^T = B^T A^T: micro-tile rows along j, vector lanes along i
                                   (a narrow C, n below two vectors); both operands packed */
  bool pack_b_whole;            /* B packed once per launch slice, all its (jc, pc) blocks, instead of once
                                   per chunk of rows: the rows run in chunks (an epilogue, merged rows) over
                                   the same B (a weight), and all of it is small */
} KGemm;

/* A batched product whose one batch axis is the launch loop, along which
 * A and C move by whole matrices (sl = m rows) and B stays: a dense layer
 * over [t, n] rows of each sample.  Its launch iterations' rows form one
 * matrix of m x iterations rows, so the CPU runs several iterations as one
 * product and packs B once for them (codegen/cpu/gemm.c). */
static inline bool kgemm_rows_merge(const KGemm *g) {
  return g->nbatch == 1 && g->b.sl[0] == 0 && g->a.sl[0] == g->m * g->a.si && g->c.sl[0] == g->m * g->c.si &&
         !g->m_batched && !g->k_batched;
}

/* The contraction's stored value is just its sum (C[i, j] = t), no f(t). */
static inline bool kgemm_plain_store(const KGemm *g) {
  return g->contract->value->kind == KE_TEMP && g->contract->value->temp == g->contract->temp;
}

/* Floats of Bp that KGemm.pack_b_whole takes: every (jc, pc) block. */
static inline int64_t kgemm_whole_b_floats(const KGemm *g) { return g->k * ((g->n + g->nc - 1) / g->nc * g->nc); }

typedef struct Kernel {
  const char *name;   /* "k3_matmul", unique in the program, a C identifier */
  KStmt **body;       /* usually one outermost loop */
  uint32_t nbody, capbody;
  int32_t nvars;      /* loop variables 0..nvars-1 */
  int32_t ntemps;     /* scalar temporaries 0..ntemps-1 */
  DType *temp_types;  /* ntemps entries */
  int32_t *args;      /* buffers this kernel touches, in parameter order */
  uint32_t nargs;
  uint32_t loc;       /* the graph node it mainly computes (IrLoc), for diagnostics */
  const char *what;   /* one line for --emit=kernels: "matmul + add + max" */
  KGemm *gemm;        /* set by the CPU scheduler for a contraction, else NULL */
} Kernel;

typedef struct KProgram {
  Module *module;     /* symbols, hypers, train settings, locations (not owned) */
  Arena arena;        /* kernels, statements, expressions, names */
  KBuffer *bufs;
  uint32_t nbufs, capbufs;
  Kernel *kernels;
  uint32_t nkernels, capkernels;
  uint32_t *train;    /* kernels launched by one training step, in order */
  uint32_t ntrain, captrain;
  uint32_t *eval;     /* kernels launched by one evaluation step */
  uint32_t neval, capeval;
  int32_t input, label, loss, scalars, output; /* buffer indices (-1 = none) */
  int32_t *metrics;   /* buffer per metric output, in Module output order */
  uint32_t nmetrics;
  int32_t nslots;     /* memory slots for temps */
} KProgram;

/* ---- building (ir/kernel.c) ---- */
KProgram *kprog_new(Module *m);
void kprog_free(KProgram *p);
int32_t kprog_add_buffer(KProgram *p, KBuffer b);
/* Adds a kernel named k<N>_<name>.  The pointer is valid until the next
 * kprog_add_kernel (the array grows). */
Kernel *kprog_add_kernel(KProgram *p, const char *name);
int32_t kernel_new_var(Kernel *k);
int32_t kernel_new_temp(KProgram *p, Kernel *k, DType dt);
void kernel_use_buffer(KProgram *p, Kernel *k, int32_t buf); /* adds to args once */
KStmt *kstmt_loop(KProgram *p, int32_t var, int64_t extent, bool batched, unsigned flags);
KStmt *kstmt_let(KProgram *p, int32_t temp, KExpr *value);
KStmt *kstmt_assign(KProgram *p, int32_t temp, KExpr *value);
KStmt *kstmt_store(KProgram *p, int32_t buf, KExpr *const *idx, int nidx, KExpr *value);
/* A contraction storing value (usually kexpr_temp(temp)) at buf[idx] for
 * each point of axes[0 .. nfree), with temp = combine over axes[nfree ..
 * nfree + nred) of a * b (b may be NULL).  Axis variables and temp are the
 * caller's (kernel_new_var, kernel_new_temp). */
KStmt *kstmt_contract(KProgram *p, int32_t buf, KExpr *const *idx, int nidx, const KAxis *axes, int nfree, int nred,
                      Op combine, int32_t temp, KExpr *a, KExpr *b, KExpr *value);
/* The identity of a contraction's combine: 0, -inf or +inf. */
double kcombine_identity(Op combine);
/* Rewrites every contraction of k into the loops it means (ir/kernel_contract.c:
 * dot order, or rows order with sched.rows), except those keep(s, ctx) keeps
 * (keep NULL: all). */
void kernel_expand_contractions(KProgram *p, Kernel *k, bool (*keep)(const KStmt *s, void *ctx), void *ctx);
/* Moves every contraction's free axes of k out into loops around it (an
 * NDRange target's first step: those loops then fold into the launch range). */
void kernel_hoist_free_axes(KProgram *p, Kernel *k);
void kstmt_append(KStmt ***body, uint32_t *n, uint32_t *cap, KStmt *s);
/* Frees a kernel's statement bodies (a kernel dropped from the program). */
void kernel_free_body(Kernel *k);
KExpr *kexpr_const(KProgram *p, DType dt, double v);
KExpr *kexpr_index_const(KProgram *p, int64_t v);
KExpr *kexpr_var(KProgram *p, int32_t var);
KExpr *kexpr_temp(KProgram *p, int32_t temp, DType dt);
KExpr *kexpr_load(KProgram *p, int32_t buf, KExpr *const *idx, int nidx);
KExpr *kexpr_scalar(KProgram *p, int32_t which);
KExpr *kexpr_batch(KProgram *p);
KExpr *kexpr_op(KProgram *p, Op op, DType dt, KExpr *a, KExpr *b, KExpr *c);
/* A deep copy of e (no shared nodes). */
KExpr *kexpr_clone(KProgram *p, const KExpr *e);
/* Index arithmetic (i64): a + b and a * constant, folded when constant. */
KExpr *kexpr_iadd(KProgram *p, KExpr *a, KExpr *b);
KExpr *kexpr_imul(KProgram *p, KExpr *a, int64_t k);

/* ---- walking (ir/kernel_walk.c) ----
 * One visitor for every walk over kernel IR trees.  Embed a KVisit as the
 * first member of a context struct and fill in the callbacks wanted; a
 * callback returning true stops the walk (the walk then returns true).
 * Statements are visited before their expressions and bodies; expression
 * nodes pre-order, each once per reference (lowering and fusion may share
 * a node between two parents).  Walks never visit NULL. */
typedef struct KVisit KVisit;
struct KVisit {
  bool (*stmt)(KVisit *v, KStmt *s); /* NULL = statements are not reported */
  bool (*expr)(KVisit *v, KExpr *e); /* NULL = expressions are not walked */
};
bool kvisit_expr(KVisit *v, KExpr *e);
bool kvisit_stmt(KVisit *v, KStmt *s); /* s, its indices and value, then its body */
bool kvisit_body(KVisit *v, KStmt *const *body, uint32_t n);
bool kvisit_kernel(KVisit *v, const Kernel *k);

/* Rewriting: every expression slot under a statement (indices, values,
 * operands) is replaced by f(slot).  f returning a different node replaces
 * it and the walk does not descend into the replacement; returning the
 * node itself keeps it and the walk goes on into its operands. */
typedef KExpr *(*KRewrite)(KExpr *e, void *ctx);
KExpr *krewrite_expr(KExpr *e, KRewrite f, void *ctx);
void krewrite_stmt(KStmt *s, KRewrite f, void *ctx);

/* Does s store into s->buf (a store or a contraction)? */
static inline bool kstmt_is_store(const KStmt *s) { return s->kind == KS_STORE || (s->kind == KS_CONTRACT && s->buf >= 0); }
/* The loop variables s binds (a loop's one, a contraction's axes'), as
 * pointers into s so that renumbering passes can rewrite them; returns the count. */
int kstmt_binds(KStmt *s, int32_t *vars[NNC_MAX_CONTRACT_AXES]);
/* A contraction heavy enough to head a kernel of its own: a product of two
 * factors, or a sum over the batch (a bias gradient). */
bool kstmt_is_product(const KStmt *s);

/* Queries built on the visitor. */
bool kexpr_mentions(const KExpr *e, int32_t var);     /* loop variable var, at any depth */
bool kexpr_reads(const KExpr *e, int32_t buf);        /* a load of buf, at any depth */
bool kexpr_reads_temp(const KExpr *e, int32_t temp);  /* temp < 0: any temporary */
bool kernel_reads_temp(const Kernel *k, int32_t temp); /* in any expression of k */
bool kexpr_equal(const KExpr *a, const KExpr *b);     /* structurally */
/* The first statement storing into buf in s (s itself or nested), or NULL. */
const KStmt *kstmt_find_store(const KStmt *s, int32_t buf);
/* Does kernel k store into buffer buf? */
bool kernel_writes(const Kernel *k, int32_t buf);
/* A parameter's gradient as the optimizer reads it: a temp computed by a
 * `gradient` node.  Data-parallel training all-reduces these buffers
 * between the grad and the update part of the train plan. */
bool kbuf_is_gradient(const KBuffer *b);
/* Marks in upd[nkernels] the update side of the step: kernels that read a
 * gradient buffer, write a parameter or state, or read what such a kernel
 * writes (in kernel order).  Lowering puts them after every other kernel,
 * fusion keeps the two sides apart, and the trainer's descriptor splits the
 * train plan there (RtModelDesc.grad, .update).  Returns how many. */
uint32_t kprog_mark_update(const KProgram *p, bool *upd);
/* Do the iterations of `loop` (a loop of kernel k) touch disjoint memory?
 * Conservative: every store indexes by the loop variable directly on some
 * axis, every load of a stored buffer uses a store's exact index, and every
 * temporary assigned inside is declared inside. */
bool kloop_independent(const Kernel *k, const KStmt *loop);
/* The coefficient of loop variable var in index expression e (0 when e
 * does not use it); false when e is not affine in var. */
bool kexpr_coefficient(const KExpr *e, int32_t var, int64_t *c);
/* The number of elements a load or store of buf[idx...] moves per step of
 * loop variable var (0 when invariant); false when not affine in var. */
bool kaccess_stride(const KProgram *p, int32_t buf, KExpr *const *idx, int nidx, int32_t var, int64_t *stride);
/* Marks in rd and wr (nbufs entries each, or NULL) the buffers s reads and writes. */
void kstmt_access(const KStmt *s, bool *rd, bool *wr);

/* Element count of a buffer for a batch of B samples. */
int64_t kbuf_elems(const KBuffer *b, int64_t batch);

/* ---- checking, printing, reading (ir/kernel_verify.c, ir/kernel_print.c, ir/kernel_read.c) ---- */
/* Checks variable scoping, temps declared before use, buffer indices and
 * ranks, arg lists; reports internal errors.  Returns false if broken.
 * Temps may all be without a slot (-1): the memory plan has not run. */
bool kprog_verify(const KProgram *p);
/* A problem kprog_check found: where (`k3_matmul`, `buffer %7 t7`,
 * `program`, `train plan`, `eval plan`), what, and the kernel or buffer
 * (-1 = neither) with the innermost statement and expression involved
 * (NULL = none), so a reader can point at its text. */
typedef struct KProblem {
  const char *where, *msg;
  int32_t kernel, buf;
  const KStmt *stmt;
  const KExpr *expr;
} KProblem;
typedef void (*KReport)(void *ctx, const KProblem *pr);
/* kprog_verify with each problem (the first of each kernel) to report. */
bool kprog_check(const KProgram *p, KReport report, void *ctx);
/* Has the memory plan run (some temp has a slot)? */
bool kprog_planned(const KProgram *p);
/* --emit=kernels: the module's declarations, buffers with their memory
 * slots, then each kernel as nested loops with its schedule attributes,
 * then the two plans: the text form of docs/ir.md, which kprog_read
 * reads back. */
void kprog_print(const KProgram *p, FILE *out);
const char *kbuf_kind_name(KBufKind k);
/* Parses the kernel IR text of a file registered with the diagnostics
 * engine (ir/kernel_read.c): the program and, in *module, the module it
 * points at (the caller frees it, after the program).  Reports the first
 * error (file:line:col) and returns NULL on failure. */
KProgram *kprog_read(uint32_t diag_file_id, Module **module);
/* The text form's rule for index flags, which the printer and the reader
 * share (ir/kernel_print.c has it in words): whether e is intrinsically an
 * index expression (a loop variable, B, arithmetic over one), the flag
 * implied for e in index context ctx or not, and the context of its
 * operands. */
bool ktext_index_intrinsic(const KExpr *e);
bool ktext_index_default(const KExpr *e, bool ctx);
bool ktext_index_operands(const KExpr *e);

#endif
