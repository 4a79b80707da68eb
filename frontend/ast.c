/* frontend/ast.c - names of AST kinds and the --emit=ast dump.
 *
 * The dump is one node per line, indented two spaces per level, each line
 * ending with the node's line:col.  Items are at level 0, their parameters
 * and statements at level 1, expressions below the node that holds them:
 *
 *     import "path" L:C
 *     fn NAME L:C                   layer NAME / optimizer NAME likewise
 *       formal x: f32[n] L:C        a parameter; its default value below it
 *       <expr>                      fn NAME(...) = <expr>: the body expression
 *     model NAME L:C                train NAME likewise
 *       bind NAME L:C               NAME = <expr>
 *       param NAME: TYPE L:C        then <expr>
 *       state NAME L:C              then <expr>
 *       return L:C                  then <expr>
 *       input NAME: TYPE L:C
 *       label NAME: TYPE L:C
 *       metric NAME L:C             then <expr>
 *
 * Expressions:
 *     num 64 L:C                    an integer literal (is_int)
 *     num 0.001 L:C                 others: shortest %.17g that round-trips,
 *                                   with ".0" added if it looks integral
 *     str "a\"b\n" L:C              escaped: \\ \" \n \t \xNN
 *     name x L:C
 *     unary - L:C                   then the operand
 *     binary + L:C                  at the operator; then lhs and rhs
 *     call NAME L:C                 then the arguments
 *     arg NAME = L:C                a named argument; its value below it
 *     index L:C                     then base and index
 *     list L:C                      then the items
 *
 * A type prints as f32, i32[10] or f32[n, 64].  The placeholder the parser
 * leaves for an expression it rejected prints as `name <error>`.  Printing
 * keeps its own stack (the left spine of `x + x + ... + x` is as long as
 * the input); past level 100 the indentation stops growing and the line
 * starts with the level: `[level 250] ...`.
 */
#include "frontend/ast.h"

#include "ir/ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *binop_text(BinOp op) {
  static const char *const text[] = {"+", "-", "*", "/", "^", "@",
                                     "==", "!=", "<", "<=", ">", ">="}; /* ORDER BinOp */
  return (unsigned)op < sizeof text / sizeof text[0] ? text[op] : "?";
}

const char *item_kind_name(ItemKind k) {
  static const char *const name[] = {"import", "fn", "layer", "optimizer", "model", "train"};
  return (unsigned)k < sizeof name / sizeof name[0] ? name[k] : "?";
}

const char *stmt_kind_name(StmtKind k) {
  static const char *const name[] = {"bind",  "param", "state", "return",
                                     "input", "label", "metric", "output"}; /* ORDER StmtKind */
  return (unsigned)k < sizeof name / sizeof name[0] ? name[k] : "?";
}

/* ---- pieces ------------------------------------------------------------------ */

enum { MAX_INDENT = 100 };

static void indent(FILE *out, uint32_t level) {
  if (level > MAX_INDENT) {
    fprintf(out, "%*s[level %u] ", 2 * MAX_INDENT, "", level);
    return;
  }
  fprintf(out, "%*s", (int)(2 * level), "");
}

static void print_loc(FILE *out, SrcLoc loc) { fprintf(out, " %u:%u\n", loc.line, loc.col); }

/* Shortest %.Ng that reads back as the same double. */
static void print_number(FILE *out, double v, bool is_int) {
  char buf[64];
  if (is_int && fabs(v) < 1e18) {
    fprintf(out, "%.0f", v);
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  fputs(buf, out);
  if (isfinite(v) && !strpbrk(buf, ".e")) fputs(".0", out);
}

static void print_string(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '\\': fputs("\\\\", out); break;
    case '"': fputs("\\\"", out); break;
    case '\n': fputs("\\n", out); break;
    case '\t': fputs("\\t", out); break;
    default:
      if (*p < 0x20 || *p == 0x7f) fprintf(out, "\\x%02x", *p);
      else fputc(*p, out);
    }
  }
  fputc('"', out);
}

static void print_type(FILE *out, const TypeExpr *t) {
  fputs(t->dtype == DT_I32 ? "i32" : "f32", out);
  if (!t->has_shape) return;
  fputc('[', out);
  if (t->ellipsis) fputs(t->rank ? "..., " : "...", out);
  for (uint32_t i = 0; i < t->rank; i++) {
    if (i) fputs(", ", out);
    if (t->dims[i].name) fputs(t->dims[i].name, out);
    else fprintf(out, "%lld", (long long)t->dims[i].value);
  }
  fputc(']', out);
}

/* ---- expressions, with an explicit stack ---------------------------------------- */

typedef struct Work {
  const Expr *e;   /* an expression to print, or */
  const Arg *arg;  /* a named argument (its line, then its value) */
  uint32_t level;
} Work;

typedef struct WorkStack {
  Work *w;
  uint32_t n, cap;
} WorkStack;

static void push_expr(WorkStack *s, const Expr *e, uint32_t level) {
  Work w = {e, NULL, level};
  VEC_PUSH(s->w, s->n, s->cap, w);
}

static void print_expr(FILE *out, const Expr *root, uint32_t level) {
  WorkStack s = {NULL, 0, 0};
  push_expr(&s, root, level);
  while (s.n) {
    Work w = s.w[--s.n];
    indent(out, w.level);
    if (w.arg) {
      fprintf(out, "arg %s =", w.arg->name);
      print_loc(out, w.arg->name_loc);
      push_expr(&s, w.arg->value, w.level + 1);
      continue;
    }
    const Expr *e = w.e;
    uint32_t next = w.level + 1;
    switch (e->kind) {
    case E_NUM:
      fputs("num ", out);
      print_number(out, e->u.num.value, e->u.num.is_int);
      break;
    case E_STR:
      fputs("str ", out);
      print_string(out, e->u.str);
      break;
    case E_NAME: fprintf(out, "name %s", e->u.str); break;
    case E_UNARY:
      fputs("unary -", out);
      push_expr(&s, e->u.unary.operand, next);
      break;
    case E_BINARY:
      fprintf(out, "binary %s", binop_text(e->u.binary.op));
      push_expr(&s, e->u.binary.rhs, next); /* popped after lhs */
      push_expr(&s, e->u.binary.lhs, next);
      break;
    case E_CALL:
      fprintf(out, "call %s", e->u.call.callee);
      for (uint32_t i = e->u.call.nargs; i-- > 0;) {
        const Arg *a = &e->u.call.args[i];
        Work aw = {a->value, a->name ? a : NULL, next};
        VEC_PUSH(s.w, s.n, s.cap, aw);
      }
      break;
    case E_INDEX:
      fputs("index", out);
      push_expr(&s, e->u.index.index, next);
      push_expr(&s, e->u.index.base, next);
      break;
    case E_LIST:
      fputs("list", out);
      for (uint32_t i = e->u.list.nitems; i-- > 0;) push_expr(&s, e->u.list.items[i], next);
      break;
    }
    print_loc(out, e->loc);
  }
  free(s.w);
}

/* ---- items and statements --------------------------------------------------------- */

static void print_stmt(FILE *out, const Stmt *st) {
  indent(out, 1);
  fputs(stmt_kind_name(st->kind), out);
  if (st->name) fprintf(out, " %s", st->name);
  if (st->type) {
    fputs(": ", out);
    print_type(out, st->type);
  }
  print_loc(out, st->loc);
  if (st->value) print_expr(out, st->value, 2);
}

void ast_print(const Program *p, FILE *out) {
  for (uint32_t i = 0; i < p->nitems; i++) {
    const Item *it = &p->items[i];
    fputs(item_kind_name(it->kind), out);
    fputc(' ', out);
    if (it->kind == I_IMPORT) print_string(out, it->name);
    else fputs(it->name, out);
    print_loc(out, it->loc);
    for (uint32_t j = 0; j < it->nparams; j++) {
      const Param *pa = &it->params[j];
      indent(out, 1);
      fprintf(out, "formal %s", pa->name);
      if (pa->type) {
        fputs(": ", out);
        print_type(out, pa->type);
      }
      print_loc(out, pa->loc);
      if (pa->init) print_expr(out, pa->init, 2);
    }
    for (uint32_t j = 0; j < it->nbody; j++) print_stmt(out, &it->body[j]);
    if (it->expr_body) print_expr(out, it->expr_body, 1);
  }
}
