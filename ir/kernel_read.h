/* ir/kernel_read.h - what the two files of the kernel IR reader share:
 * ir/kernel_read.c (the lines: buffers, kernels and their statements,
 * plans; the program) and ir/kernel_read_expr.c (expressions, their index
 * flags and dtypes).  Private to them.
 */
#ifndef NNC_KERNEL_READ_H
#define NNC_KERNEL_READ_H

#include "ir/kernel.h"
#include "ir/text.h"

enum {
  MAX_IDS = 1 << 16,  /* loop variables and temporaries per kernel */
  MAX_DEPTH = 256,    /* nesting of expressions (the height of their trees) and of loops */
  MAX_KERNEL_ARGS = 63, /* buffers per kernel: a launch takes at most 64 arguments with B */
};

/* Marks of index flags in the tree until kread_finish removes them:
 * KE_OP nodes with these ops around the marked expression (a). */
enum { MARK_I64 = OP_COUNT, MARK_I32 = OP_COUNT + 1 };

typedef struct Located {
  const void *node; /* a KStmt or a KExpr */
  SrcLoc loc;
} Located;

typedef struct Forced {
  const KExpr *e;
  bool index;
} Forced;

typedef struct KReader {
  TextReader t;         /* the lexer and the module */
  KProgram *p;
  int32_t kidx;         /* the kernel being read, -1 before the first */
  int8_t *ttype;        /* per temporary of that kernel: its DType, -1 = not defined yet */
  int32_t nttype;       /* entries of ttype in use (the kernel's ntemps) */
  int32_t nvars;        /* the kernel's nvars */
  Located *locs;        /* where each statement and expression was written */
  uint32_t nlocs, caplocs;
  SrcLoc *bufloc;       /* per buffer: its line */
  uint32_t capbufloc;
  bool *sym_has_buf;    /* per symbol: a buffer holds it */
  SrcLoc *kernloc;      /* per kernel: its line */
  uint32_t capkernloc;
  Forced *forced;       /* the marked nodes of the statement being finished */
  uint32_t nforced, capforced;
  int depth;            /* expression or loop nesting */
  bool have_train, have_eval;
  SrcLoc plan_loc;      /* the first plan line (problems with the plans) */
} KReader;

/* The reader's lexer (and module). */
static inline TextReader *T(KReader *r) { return &r->t; }

/* ---- ir/kernel_read.c ---- */
/* Records where a statement or expression was written (for the verifier's problems). */
void kread_locate(KReader *r, const void *node, SrcLoc at);
/* Where node was written (the file's start when unknown). */
SrcLoc kread_where(const KReader *r, const void *node);
/* vN or tN: the number; -2 when it is MAX_IDS or more, -1 when the word is not one. */
int32_t kread_numbered(const Token *t, char prefix);
/* A loop variable or a temporary of the current kernel, counted into its nvars or ntemps. */
bool kread_var(KReader *r, int32_t *var);
bool kread_temp(KReader *r, int32_t *temp);

/* ---- ir/kernel_read_expr.c ---- */
/* EXPR and UNARY (the grammar there); *h gets the tree's height. */
bool kread_expr(KReader *r, KExpr **out, int *h);
bool kread_unary(KReader *r, KExpr **out, int *h);
/* Removes the index marks under *slot and sets every node's index flag (in
 * index context ctx) and dtype; false after reporting a temporary used
 * before its definition. */
bool kread_finish(KReader *r, KExpr **slot, bool ctx);

#endif
