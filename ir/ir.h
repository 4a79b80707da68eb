/* ir/ir.h - the graph IR: a module of symbols and one SSA graph over tensors.
 *
 * A Module holds what the model declares (inputs, labels, parameters,
 * optimizer states and hyper-parameters: the Symbols), the train settings,
 * and one Graph: nodes in topological order (every operand has a smaller id
 * than its user), each with an op from ir/ops.def, a Type and the source
 * location it came from.  Values are node ids, printed %12.
 *
 * Shapes are per sample.  A value computed from the batch carries the
 * implicit leading batch axis (Type.batched); parameters do not.  Every op
 * applies per sample and broadcasts unbatched operands over the batch; only
 * batch_sum removes the axis.
 *
 * The frontend's graph computes, per sample, the loss and the metrics, and
 * for every parameter and optimizer state its updated value ("update"
 * outputs) from placeholder `grad @param` nodes.  Autodiff replaces the
 * placeholders, which turns the graph into the training step; the evaluation
 * graph is the same graph read only for its loss and metric outputs.
 *
 * The text form (ir/print.c, ir/read.c) is specified in docs/ir.md.
 */
#ifndef NNC_IR_H
#define NNC_IR_H

#include "support/diag.h"
#include "support/arena.h"
#include "support/strmap.h"

#include <stdbool.h>
#include <stdint.h>

#define NNC_MAX_RANK 6
#define NNC_MAX_ARGS 3
#define NNC_MAX_DIM 2147483647LL        /* largest extent of one axis */
#define NNC_MAX_ELEMS (1LL << 40)       /* largest element count of one tensor */

typedef enum { DT_F32, DT_I32 } DType;

typedef struct Type {
  DType dtype;
  uint8_t rank;                  /* per-sample rank, batch axis excluded */
  bool batched;                  /* carries the implicit leading batch axis */
  int64_t dims[NNC_MAX_RANK];    /* per-sample extents */
} Type;

enum OpFlags {
  OPF_LEAF = 1 << 0,     /* no operands */
  OPF_SYM = 1 << 1,      /* names a Symbol (attr.sym), printed @name */
  OPF_VALUE = 1 << 2,    /* carries a number (attr.value) */
  OPF_ELEMWISE = 1 << 3, /* elementwise, broadcasting its operands */
  OPF_FLOAT = 1 << 4,    /* defined on f32 only */
  OPF_CMP = 1 << 5,      /* comparison: f32 1 or 0 from two same-dtype operands */
  OPF_NODIFF = 1 << 6,   /* no gradient flows through it (zero gradient) */
  OPF_AXES = 1 << 7,     /* carries attr.axes */
  OPF_PERM = 1 << 8,     /* carries attr.perm */
  OPF_WINDOW = 1 << 9,   /* carries attr.win: a sliding window over the last two axes */
};

typedef enum {
#define OP(id, ...) OP_##id,
#include "ir/ops.def"
#undef OP
  OP_COUNT
} Op;

typedef uint32_t ValueId;
#define NO_VALUE UINT32_MAX

typedef struct Node {
  Op op;
  Type type;
  uint32_t loc;                  /* index into Module.locs; 0 = unknown */
  uint8_t nargs;
  ValueId args[NNC_MAX_ARGS];
  union {
    double value;                /* OPF_VALUE */
    uint32_t sym;                /* OPF_SYM: index into Module.syms */
    uint32_t axes;               /* OPF_AXES: bit k = per-sample axis k */
    uint8_t perm[NNC_MAX_RANK];  /* OPF_PERM: result axis i = operand axis perm[i] */
    struct {                     /* OPF_WINDOW: a size x size window moved by stride over */
      uint16_t size, stride, pad; /* the last two axes, padded by pad zeros on each side */
    } win;
  } attr;
} Node;

/* The one shape rule per op: checks operand types and the attributes of n
 * and writes the result type.  Ops whose result shape is not implied by
 * their operands (cast, reshape, broadcast, onehot, leaves) read it from
 * n->type.  On failure, writes a message such as "matmul shapes do not
 * match: [784] @ [512,10]" to err and returns false. */
typedef bool (*ShapeRule)(const Node *n, const Type *args, Type *out, char *err, size_t errlen);

/* One row of ir/ops.def.  The spellings are NULL where the op has none
 * (and for every op that is not elementwise). */
typedef struct OpInfo {
  const char *name;        /* the IR text name: "add", "stop_gradient" */
  int arity;
  unsigned flags;          /* OPF_* */
  ShapeRule shape;
  const char *synopsis;
  int nnc_op;              /* include/nnc/backend.h's NncOp number; 0 = none */
  const char *nn;          /* the .nn function computing it elementwise: "exp" */
  const char *infix;       /* the C and kernel IR infix operator: "+", "<=" */
  const char *c_math;      /* the C math function of the f32 form, OpenCL's spelling: "exp" */
  const char *llvm;        /* the LLVM intrinsic of the f32 form: "llvm.exp" */
  const char *libdevice;   /* the gpu target's libdevice function: "__nv_expf" */
  const char *nvvm_approx; /* without libdevice: an NVVM intrinsic approximating it */
} OpInfo;
extern const OpInfo ir_ops[OP_COUNT];

/* ---- scalar semantics (ir/op_eval.c) ----
 * The value of elementwise op `op` at one element, as ir/ops.def defines
 * it, in double: dt is the result's dtype (either, for a comparison).  An
 * i32 result wraps to 32 bits (i32 division truncates, x / 0 = 0); an f32
 * result is exact: callers that compute in f32 round it through float.
 * The constant folders, the interpreter and the tests' reference
 * evaluators all compute through it. */
double op_eval(Op op, DType dt, double a, double b, double c);
/* The same for kernel IR index expressions: 64-bit integers, no wrapping. */
double op_eval_index(Op op, double a, double b, double c);

/* Philox4x32-10 (Salmon et al., SC'11; Random123's constants and round
 * order): the four output words for counter ctr[4] and key key[2].  `random`
 * is the top 24 bits of word 0 for key (a, 0) and counter (c, c >> 32, b, 0),
 * times 2^-24; every backend computes exactly that (docs/ir.md). */
void op_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* A source location, possibly inlined: `parent` is the location of the call
 * that inlined it (0 = none), so diagnostics can point at the user's line. */
typedef struct IrLoc {
  uint32_t file;                 /* index into Module.files */
  uint32_t line, col;
  uint32_t parent;
} IrLoc;

typedef enum { SYM_INPUT, SYM_LABEL, SYM_PARAM, SYM_STATE, SYM_HYPER } SymKind;

/* ORDER INIT: runtime/init.h RtInitKind lists the same kinds in the same order. */
typedef enum {
  INIT_NONE,
  INIT_ZEROS,
  INIT_ONES,
  INIT_FULL,           /* a = value */
  INIT_UNIFORM,        /* uniform in [a, b) */
  INIT_NORMAL,         /* mean 0, standard deviation a */
  INIT_GLOROT_UNIFORM, /* uniform, limit sqrt(6 / (fan_in + fan_out)) */
  INIT_HE_NORMAL,      /* normal, std sqrt(2 / fan_in) */
} InitKind;

typedef struct Init {
  InitKind kind;
  double a, b;
} Init;

typedef struct Symbol {
  SymKind kind;
  const char *name;    /* "x", "h.w", "h.w/m", "lr" */
  Type type;           /* inputs and labels are batched */
  Init init;           /* params and states */
  double value;        /* hypers: the value used unless overridden at run time */
  uint32_t owner;      /* states: the parameter symbol they belong to */
  int64_t bound;       /* i32 inputs used as an index: valid values are [0, bound); 0 = none */
  bool no_grad;        /* params: model state the training step updates itself (batch norm's running
                          statistics), never through a gradient; saved and loaded as any param */
  uint32_t loc;
} Symbol;

/* OUT_PREDICT: the model's prediction (`output NAME`, or the first argument
 * of the loss's call): a batched f32 tensor of any shape, named by its binding;
 * computed by evaluation, never by a training step alone. */
typedef enum { OUT_LOSS, OUT_METRIC, OUT_UPDATE, OUT_PREDICT } OutKind;

typedef struct Output {
  OutKind kind;
  const char *name;    /* metric name; for updates the symbol's name; the prediction's binding */
  uint32_t sym;        /* updates: the param or state symbol */
  ValueId value;       /* loss and metrics are batched f32 scalars (per sample) */
} Output;

/* ORDER DATA: runtime/data.h RtDataKind has the same values. */
typedef enum { DATA_NONE, DATA_IDX, DATA_CSV, DATA_TEXT } DataKind;

/* ORDER SCHEDULE: runtime/train.h RtScheduleKind has the same values. */
typedef enum { SCHEDULE_CONSTANT, SCHEDULE_STEP, SCHEDULE_COSINE } ScheduleKind;

/* `schedule = ...`: a multiplier of the optimizer's lr at each step. */
typedef struct LrSchedule {
  ScheduleKind kind;       /* SCHEDULE_CONSTANT: always 1 (no schedule) */
  int64_t every;           /* step(): steps between two decays */
  double factor;           /* step(): the multiplier's factor at each decay */
  int64_t warmup;          /* cosine(): steps of linear warm-up */
  double min;              /* cosine(): the multiplier at the end of the run */
} LrSchedule;

/* The `train` block: defaults for the built trainer, each overridable. */
typedef struct TrainSpec {
  bool present;
  DataKind data;
  const char *data_path;   /* idx: directory; csv, text: training file */
  const char *test_path;   /* csv, text: test file (NULL = none; text: the last 10% of data_path) */
  const char *label;       /* csv: label column name or 0-based index (NULL = last) */
  double scale;            /* input multiplier */
  int64_t batch, epochs, seed;  /* epochs 0: as many as `steps` needs */
  bool shuffle;
  const char *optimizer;   /* name of the optimizer definition */
  double validation;       /* fraction of the training data held out for validation (0 = none) */
  int64_t context;         /* text: bytes per window (the input's and the label's length) */
  int64_t steps;           /* run length in optimizer steps (0 = by epochs alone) */
  LrSchedule schedule;
} TrainSpec;

typedef struct Module {
  Arena arena;             /* names, strings */
  const char *name;        /* the model's name */
  const char **files;      /* file names for IrLoc.file; files[0] = "" */
  uint32_t nfiles, capfiles;
  IrLoc *locs;             /* locs[0] = unknown */
  uint32_t nlocs, caplocs;
  Symbol *syms;
  uint32_t nsyms, capsyms;
  StrMap symidx;           /* (name, kind) -> first symbol: ir_find_symbol */
  Node *nodes;
  uint32_t nnodes, capnodes;
  Output *outputs;
  uint32_t noutputs, capoutputs;
  TrainSpec train;
} Module;

/* ---- types (ir/type.c) ---- */
Type type_scalar(DType dt);
Type type_make(DType dt, int rank, const int64_t *dims, bool batched);
int64_t type_numel(const Type *t);          /* per-sample element count */
bool type_equal(const Type *a, const Type *b);
bool type_same_shape(const Type *a, const Type *b); /* dims and rank only */
const char *dtype_name(DType dt);
/* "f32[B,784]" into buf (returns buf). */
char *type_str(const Type *t, char *buf, size_t len);
/* "[784]" (per-sample dims only) into buf. */
char *shape_str(const Type *t, char *buf, size_t len);
/* The extent of a window's positions along an axis of n: (n + 2 pad - size) / stride + 1,
 * or 0 (and nothing fits) when the padded axis is shorter than the window. */
int64_t window_positions(int64_t n, int size, int stride, int pad);
/* NumPy broadcasting of two per-sample shapes; false if incompatible. */
bool shape_broadcast(const Type *a, const Type *b, Type *out);

/* ---- module and builder (ir/module.c) ---- */
Module *ir_module_new(void);
void ir_module_free(Module *m);
uint32_t ir_file(Module *m, const char *path);           /* interned */
uint32_t ir_loc(Module *m, uint32_t file, uint32_t line, uint32_t col, uint32_t parent);
uint32_t ir_add_symbol(Module *m, Symbol s);             /* name copied into the arena */
int64_t ir_find_symbol(const Module *m, SymKind kind, const char *name); /* -1 if none */
const char *sym_kind_name(SymKind k);
const char *init_kind_name(InitKind k);

/* Appends a node as given (type included) without checking: the reader and
 * passes that already know the type use this. */
ValueId ir_append(Module *m, const Node *n);
/* Builds a node, inferring its type through the op's shape rule.  On a
 * shape error returns NO_VALUE and writes the message into err. */
ValueId ir_build(Module *m, Op op, const ValueId *args, int nargs, const Node *attrs,
                 uint32_t loc, char *err, size_t errlen);
/* Conveniences for passes; they abort with an internal error on a shape
 * error (a pass building an ill-typed node is a bug). */
ValueId ir_const(Module *m, DType dt, double value, uint32_t loc);
ValueId ir_op1(Module *m, Op op, ValueId a, uint32_t loc);
ValueId ir_op2(Module *m, Op op, ValueId a, ValueId b, uint32_t loc);
ValueId ir_op3(Module *m, Op op, ValueId a, ValueId b, ValueId c, uint32_t loc);
ValueId ir_reduce(Module *m, Op op, ValueId a, uint32_t axes, uint32_t loc);
ValueId ir_transpose(Module *m, ValueId a, const uint8_t *perm, uint32_t loc);
ValueId ir_retype(Module *m, Op op, ValueId a, Type t, uint32_t loc); /* cast/reshape/broadcast/onehot */
/* An op whose result type is given (scatter_add), checked by its shape rule. */
ValueId ir_build_typed(Module *m, Op op, const ValueId *args, int nargs, Type t, uint32_t loc);
/* A window op (OPF_WINDOW); t the result type for the ops whose type is
 * given (conv2d_data_grad, conv2d_filter_grad, fold), else NULL. */
ValueId ir_window(Module *m, Op op, const ValueId *args, int nargs, int size, int stride, int pad, const Type *t,
                  uint32_t loc);
ValueId ir_leaf(Module *m, Op op, uint32_t sym, uint32_t loc);        /* input/param/state/grad/hyper */
ValueId ir_element(Module *m, Type shape, uint32_t loc);              /* element positions, i32 of that shape */
void ir_add_output(Module *m, OutKind kind, const char *name, uint32_t sym, ValueId v);

/* What the train block's data source feeds (ir/module.c): idx and csv data
 * give one f32 input of any shape (the images; the feature columns: its
 * element count is checked when the data is loaded) and at most one label
 * with one element, i32 (a class) or f32 (a target).  Reports each input or
 * label the source cannot feed at its declaration (a missing input at
 * `at`) and returns false; true without a train block or data source.
 * *input and *label receive the symbols fed (-1: none). */
bool ir_check_feeds(const Module *m, SrcLoc at, int64_t *input, int64_t *label);

/* ---- verifier (ir/verify.c) ---- */
/* Checks every invariant (topological order, arity, symbols, types through
 * the shape rules, outputs).  Reports problems through the diagnostics
 * engine prefixed with `what` (e.g. "after autodiff") and returns false. */
bool ir_verify(const Module *m, const char *what);

/* ---- text form (ir/print.c, ir/read.c) ---- */
#include <stdio.h>
void ir_print(const Module *m, FILE *out);
void ir_print_node(const Module *m, ValueId v, FILE *out);
/* The module line and the declarations (symbols, the train line), each
 * section after a blank line but the first; false when nothing printed.
 * The kernel IR text begins with them too (ir/kernel_print.c). */
bool ir_print_decls(const Module *m, FILE *out);
/* A quoted string as the text form writes it ("a\"b", \n, \xHH). */
void ir_print_string(const char *s, FILE *out);
/* ` loc("file":line:col at ...)` for location loc; nothing for loc 0. */
void ir_print_loc(const Module *m, uint32_t loc, FILE *out);
/* Prints the shortest decimal that reads back as the same double. */
void ir_print_number(double v, FILE *out);
/* Parses the text form of a file registered with the diagnostics engine;
 * reports errors (file:line:col) and returns NULL on failure. */
Module *ir_read(uint32_t diag_file_id);

/* ---- Graphviz (ir/dot.c) ---- */
void ir_print_dot(const Module *m, FILE *out);

/* The diagnostics engine's location for IR location `loc` (ir/module.c):
 * the registered file with the same path; file 0 when there is none. */
SrcLoc ir_diag_loc(const Module *m, uint32_t loc);

#endif
