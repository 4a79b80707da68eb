/* frontend/elab_internal.h - what the elaboration files share.
 *
 * elab.c        files, imports, definitions, the model, the entry point
 * elab_expr.c   expressions, operators, calls and inlining
 * elab_builtin.c the built-in primitives (a table, and ir/ops.def's .nn names)
 * elab_train.c  the train block and the optimizer applied to each parameter
 *
 * Values: elaboration computes with tensors (graph nodes), numbers known at
 * compile time (folded; usable as dimensions), strings and lists.  A
 * V_ERROR value stands for something already reported, so one mistake
 * gives one error.
 */
#ifndef NNC_ELAB_INTERNAL_H
#define NNC_ELAB_INTERNAL_H

#include "frontend/elab.h"
#include "frontend/suggest.h"

enum {
  ELAB_MAX_CALL_DEPTH = 64,       /* nested fn/layer calls */
  ELAB_MAX_INLINED = 200000,      /* total inlined calls: stops exponential blowups */
  ELAB_MAX_NODES = 4000000,       /* graph size */
};

typedef enum { V_ERROR, V_TENSOR, V_NUM, V_STR, V_LIST } ValKind;

typedef struct Value {
  ValKind kind;
  SrcLoc loc;
  ValueId id;               /* V_TENSOR */
  double num;               /* V_NUM */
  bool is_int;              /* V_NUM written as an integer */
  const char *str;          /* V_STR */
  struct Value *items;      /* V_LIST (arena) */
  uint32_t nitems;
} Value;

typedef struct Binding {
  const char *name;
  Value val;
  SrcLoc loc;               /* where it was bound */
  bool mutable_;            /* optimizer p and states: assignments update them */
} Binding;

typedef struct Scope {
  Binding *b;
  uint32_t n, cap;
  StrMap idx;               /* name -> its last binding, over b[0, nidx) */
  uint32_t nidx;
} Scope;

typedef struct Def {
  ItemKind kind;
  const char *name;
  const Item *item;
  bool prelude;             /* from the stdlib: user definitions replace it */
} Def;

typedef struct Frame {
  const Def *def;
  SrcLoc call_loc;
} Frame;

typedef struct Elab {
  Module *m;
  Arena *arena;             /* AST arena: imported programs, values */
  uint32_t root_file;       /* diagnostics id of the file being compiled */
  Def *defs;
  uint32_t ndefs, capdefs;
  StrMap defidx;            /* name -> index into defs */
  Frame stack[ELAB_MAX_CALL_DEPTH];
  int depth;
  const char *path;         /* parameter path prefix ("" at model level) */
  StrMap layer_calls;       /* (path, layer def index) -> calls of that layer under that path so far */
  uint32_t inline_parent;   /* IR loc of the innermost call site, 0 at top */
  bool allow_params;        /* inside a layer (or model) body */
  uint32_t ndropout;        /* dropout calls so far: each keys its masks with its number */
  bool in_optimizer;
  long inlined;
  bool too_big;             /* a size limit was hit and reported */
  const char *stdlib_dir;
  const Expr *loss_call;    /* the loss statement's call, while it is elaborated... */
  Value loss_arg0;          /* ...and its first argument: the prediction without `output` */
  double clip_value;        /* the train block's `clip` (0 = none): the optimizer scales the gradients */
  SrcLoc clip_loc;
} Elab;

/* elab.c */
void elab_error(Elab *e, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const Def *elab_find_def(const Elab *e, const char *name);
uint32_t elab_irloc(Elab *e, SrcLoc loc);
Binding *scope_find(Scope *s, const char *name);
void scope_free(Scope *s);
bool scope_bind(Elab *e, Scope *s, const char *name, Value v, SrcLoc loc);
const char *elab_suggest(const Elab *e, const Scope *s, const char *name);
const char *elab_suggest_def(const Elab *e, ItemKind kind, const char *name);
/* "; did you mean 'HINT'?" to end a message, or "" when hint is NULL. */
const char *elab_did_you_mean(Elab *e, const char *hint);

/* The arguments of a call, evaluated. */
enum { MAX_CALL_ARGS = 16 };
typedef struct CallArgs {
  Value pos[MAX_CALL_ARGS];
  uint32_t npos;
  Value named[MAX_CALL_ARGS];
  const char *names[MAX_CALL_ARGS];
  SrcLoc name_locs[MAX_CALL_ARGS];
  uint32_t nnamed;
} CallArgs;

/* elab_expr.c */
Value elab_expr(Elab *e, Scope *s, const Expr *x);
Value elab_body(Elab *e, Scope *s, const Item *it, bool want_return);
Value value_error(SrcLoc loc);
Value value_tensor(ValueId id, SrcLoc loc);
Value value_num(double v, bool is_int, SrcLoc loc);
/* Makes a tensor of any value (numbers become constants); V_ERROR for others. */
Value elab_to_tensor(Elab *e, Value v, DType want);
bool elab_type_from_expr(Elab *e, Scope *s, const TypeExpr *te, bool batched, Type *out);
Init elab_initializer(Elab *e, Scope *s, const Expr *x, const char *what);
bool elab_check_size(Elab *e, const Type *t, SrcLoc loc);
void elab_param_stmt(Elab *e, Scope *s, const Stmt *st);
/* A new parameter NAME under the current path (PATH.NAME); -1 after
 * reporting one already created there. */
int64_t elab_new_param(Elab *e, const char *name, Type t, Init init, bool no_grad, SrcLoc loc);
/* For the built-ins: */
const char *elab_kind_text(ValKind k);             /* "a tensor", "a number", ... */
const Type *elab_vtype(Elab *e, Value v);          /* a tensor's type */
bool elab_integral(double x);                      /* a number usable as an integer */
/* Builds one node; reports a shape error (or a size limit) at loc. */
Value elab_build(Elab *e, Op op, const ValueId *args, int nargs, const Node *attrs, SrcLoc loc);
Value elab_cast(Elab *e, Value v, DType dt);       /* a tensor converted to dt */
/* op (elementwise or matmul) on two values, numbers and dtypes promoted. */
Value elab_apply_binary(Elab *e, Op op, const char *optext, Value a, Value b, SrcLoc loc);
/* An i32 input used as an index into an axis of extent n. */
void elab_note_index_bound(Elab *e, ValueId idx, int64_t n);

/* elab_builtin.c */
/* The built-in primitive `name` called with ca; *handled false when the
 * call names no built-in. */
Value elab_builtin(Elab *e, const Expr *call, CallArgs *ca, bool *handled);
bool elab_is_builtin(const char *name);
void elab_offer_builtins(Suggest *sg);

/* elab_train.c */
/* The train block; model is the model elaborated for it, NULL when that
 * failed (then only what is independent of the model is checked). */
void elab_train(Elab *e, const Item *train, const Item *model);

#endif
