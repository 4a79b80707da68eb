/* frontend/ast.h - the syntax tree of a .nn file.
 *
 * The parser (parser.y) builds it in an arena; elaboration (elab*.c) turns
 * it into the graph IR.  Every node keeps its source location.  Names and
 * strings are NUL-terminated copies in the arena.
 */
#ifndef NNC_AST_H
#define NNC_AST_H

#include "support/diag.h"
#include "support/arena.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
  E_NUM,    /* 3, 0.001, 1e-8 */
  E_STR,    /* "path" */
  E_NAME,   /* x */
  E_UNARY,  /* -a            (op = '-') */
  E_BINARY, /* a + b          (op = BinOp) */
  E_CALL,   /* f(a, b, k = v) */
  E_INDEX,  /* v[i] */
  E_LIST,   /* [a, b, c] */
} ExprKind;

typedef enum {
  B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MATMUL,
  B_EQ, B_NE, B_LT, B_LE, B_GT, B_GE,
} BinOp;

typedef struct Expr Expr;

typedef struct Arg {
  const char *name;  /* NULL for a positional argument */
  SrcLoc name_loc;
  Expr *value;
} Arg;

struct Expr {
  ExprKind kind;
  SrcLoc loc;        /* first character; for binary ops the operator */
  uint32_t depth;    /* nesting depth that elaboration recurses through */
  union {
    struct { double value; bool is_int; } num;  /* is_int: written without '.' or exponent */
    const char *str;                            /* E_STR contents (escapes resolved), E_NAME */
    struct { Expr *operand; } unary;
    struct { BinOp op; Expr *lhs, *rhs; } binary;
    struct { const char *callee; SrcLoc callee_loc; Arg *args; uint32_t nargs; } call;
    struct { Expr *base, *index; } index;
    struct { Expr **items; uint32_t nitems; } list;
  } u;
};

/* A dimension in a type: a number, or a name bound at a call (signatures)
 * or evaluated (declarations). */
typedef struct DimExpr {
  SrcLoc loc;
  const char *name;  /* NULL for a number */
  int64_t value;
} DimExpr;

typedef struct TypeExpr {
  SrcLoc loc;
  int dtype;         /* DT_F32 or DT_I32 (ir.h DType) */
  bool has_shape;    /* f32[...] rather than f32 (a scalar) */
  bool ellipsis;     /* f32[..., n]: any leading axes before dims (fn and layer parameters) */
  SrcLoc ellipsis_loc;
  uint32_t rank;     /* the dimensions written, the ellipsis not counted */
  DimExpr *dims;
} TypeExpr;

/* A parameter of fn, layer or optimizer: `x: f32[n]`, `units`, `lr = 0.001`. */
typedef struct Param {
  const char *name;
  SrcLoc loc;
  TypeExpr *type;    /* NULL: any value */
  Expr *init;        /* default value, NULL if none */
} Param;

typedef enum {
  S_BIND,    /* name = expr      (model/fn/layer/optimizer bodies, train fields) */
  S_PARAM,   /* param name: type = init     (layer) */
  S_STATE,   /* state name = init           (optimizer) */
  S_RETURN,  /* return expr                 (fn/layer) */
  S_INPUT,   /* input name: type            (model) */
  S_LABEL,   /* label name: type            (model) */
  S_METRIC,  /* metric name = expr          (model) */
  S_OUTPUT,  /* output name                 (model): the prediction */
} StmtKind;

typedef struct Stmt {
  StmtKind kind;
  SrcLoc loc;        /* the keyword or the bound name */
  const char *name;  /* NULL for return */
  SrcLoc name_loc;
  TypeExpr *type;    /* param, input, label */
  Expr *value;       /* bind, param, state, return, metric */
} Stmt;

typedef enum { I_IMPORT, I_FN, I_LAYER, I_OPTIMIZER, I_MODEL, I_TRAIN } ItemKind;

typedef struct Item {
  ItemKind kind;
  SrcLoc loc;        /* the keyword */
  const char *name;  /* import: the path string */
  SrcLoc name_loc;
  Param *params;     /* fn, layer, optimizer */
  uint32_t nparams;
  Stmt *body;        /* block statements */
  uint32_t nbody;
  Expr *expr_body;   /* fn f(x) = expr */
} Item;

typedef struct Program {
  uint32_t file;     /* diagnostics file id */
  Item *items;
  uint32_t nitems;
} Program;

/* Parses a registered source file into an arena.  Syntax errors are
 * reported through the diagnostics engine; the returned program holds every
 * item that parsed (possibly none).  Never returns NULL. */
Program *parse_file(Arena *arena, uint32_t file_id);

/* --emit=ast: an indented, stable dump of the tree. */
void ast_print(const Program *p, FILE *out);

const char *binop_text(BinOp op);      /* "+", "==", "@" ... */
const char *item_kind_name(ItemKind k);
const char *stmt_kind_name(StmtKind k);

#endif
