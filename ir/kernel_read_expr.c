/* ir/kernel_read_expr.c - the kernel IR reader's expressions (docs/ir.md,
 * "Text form"; ir/kernel_read.c reads the rest).
 *
 * Recursive descent over the precedence levels, bounded twice: the
 * parser's own recursion (parentheses nest calls, not tree levels) and the
 * height of the tree it builds, which the passes, the verifier and the
 * emitters walk recursively.  Then kread_finish settles a statement's
 * expressions: the index marks i64(...) and i32(...) are removed, every
 * node gets the index flag the text's rule implies (ktext_index_default)
 * or the one its mark forces, and dtypes are computed bottom-up from
 * buffers, temporaries and the way numbers are written (`1.0` f32, `1`
 * i32).
 */
#include "ir/kernel_read.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- expressions ------------------------------------------------------------------------
 *
 * EXPR    := SUM [('==' | '!=' | '<' | '<=' | '>' | '>=') SUM]
 * SUM     := PRODUCT {('+' | '-') PRODUCT}
 * PRODUCT := UNARY {('*' | '/') UNARY}
 * UNARY   := '-' UNARY | ATOM
 * ATOM    := NUMBER | vN | tN | 'B' | SCALAR | %N ['?'] '[' [EXPR {',' EXPR}] ']' | '(' EXPR ')'
 *          | 'cast' '<' ('f32' | 'i32') '>' '(' EXPR ')' | ('i64' | 'i32') '(' EXPR ')'
 *          | OP '(' EXPR {',' EXPR} ')'                 (an elementwise op of ir/ops.def)  */

static KExpr *node(KReader *r, KExprKind kind, SrcLoc at) {
  KExpr *e = arena_alloc(&r->p->arena, sizeof *e);
  e->kind = kind;
  e->var = e->temp = e->buf = e->scalar = -1;
  kread_locate(r, e, at);
  return e;
}

static KExpr *op_node(KReader *r, Op op, SrcLoc at, KExpr *a, KExpr *b, KExpr *c) {
  KExpr *e = node(r, KE_OP, at);
  e->op = op;
  e->a = a;
  e->b = b;
  e->c = c;
  return e;
}

/* Every parse function below also sets *h to the height of the tree it
 * built (a leaf is 1), which MAX_DEPTH bounds: the passes, the verifier
 * and the emitters walk expressions recursively. */

static bool height_ok(KReader *r, int h, SrcLoc at) {
  if (h <= MAX_DEPTH) return true;
  return txt_fail(T(r), at, "expression nested more than %d deep", MAX_DEPTH);
}

/* '(' EXPR {',' EXPR} ')' with exactly n expressions, for `what` (at);
 * *h is the highest argument's height + 1. */
static bool parse_args(KReader *r, const char *what, SrcLoc at, int n, KExpr **args, int *h) {
  TextReader *p = T(r);
  TRY(txt_expect_punct(p, '(', "after the op name"));
  *h = 1;
  for (int i = 0;; i++) {
    if (i == n) return txt_fail(p, at, "%s takes %d operand%s", what, n, n == 1 ? "" : "s");
    int ha = 0;
    TRY(kread_expr(r, &args[i], &ha));
    if (ha + 1 > *h) *h = ha + 1;
    if (txt_is_punct(p, ')')) {
      if (i + 1 != n) return txt_fail(p, at, "%s takes %d operand%s, found %d", what, n, n == 1 ? "" : "s", i + 1);
      return height_ok(r, *h, at) && txt_next(p);
    }
    TRY(txt_expect_punct(p, ',', "or ')' between operands"));
  }
}

/* %N ['?'] '[' [EXPR {',' EXPR}] ']' */
static bool parse_load(KReader *r, KExpr **out, int *h) {
  TextReader *p = T(r);
  SrcLoc at = p->tok.loc;
  if (p->tok.value >= r->p->nbufs) return txt_fail(p, at, "unknown buffer %%%u", p->tok.value);
  KExpr *e = node(r, KE_LOAD, at);
  e->buf = (int32_t)p->tok.value;
  e->dtype = r->p->bufs[e->buf].type.dtype;
  TRY(txt_next(p));
  if (txt_is_punct(p, '?')) {
    e->guarded = true;
    TRY(txt_next(p));
  }
  TRY(txt_expect_punct(p, '[', "after the buffer"));
  *h = 1;
  while (!txt_is_punct(p, ']')) {
    if (e->nidx && !txt_expect_punct(p, ',', "or ']' between indices")) return false;
    if (e->nidx == NNC_MAX_RANK + 1) return txt_fail(p, p->tok.loc, "an access has at most %d indices", NNC_MAX_RANK + 1);
    int hi = 0;
    TRY(kread_expr(r, &e->idx[e->nidx], &hi));
    if (hi + 1 > *h) *h = hi + 1;
    e->nidx++;
  }
  *out = e;
  return height_ok(r, *h, at) && txt_next(p);
}
/* $step, $batch, $hyper.NAME, $training, $seed: hyper k is the k-th hyper
 * symbol, training the scalar after the last hyper's and seed the one after
 * that (the declarations come first, so their count is known). */
static bool parse_scalar(KReader *r, KExpr **out, int *h) {
  TextReader *p = T(r);
  const char *s = p->tok.str;
  int32_t which = -1;
  if (!strcmp(s, "step")) which = KSCALAR_STEP;
  else if (!strcmp(s, "batch")) which = KSCALAR_BATCH;
  else if (!strcmp(s, "training") || !strcmp(s, "seed")) {
    int32_t nhypers = 0;
    for (uint32_t i = 0; i < p->m->nsyms; i++) nhypers += p->m->syms[i].kind == SYM_HYPER;
    which = !strcmp(s, "seed") ? kscalar_seed(nhypers) : kscalar_training(nhypers);
  } else if (!strncmp(s, "hyper.", 6)) {
    for (uint32_t i = 0, k = 0; i < p->m->nsyms && which < 0; i++)
      if (p->m->syms[i].kind == SYM_HYPER && !strcmp(p->m->syms[i].name, s + 6)) which = KSCALAR_HYPER0 + (int32_t)k;
      else k += p->m->syms[i].kind == SYM_HYPER;
    if (which < 0) return txt_fail(p, p->tok.loc, "unknown hyper-parameter @%s", diag_quote(s + 6, strlen(s + 6)));
  } else {
    return txt_fail(p, p->tok.loc, "unknown run-time scalar $%s; expected $step, $batch, $hyper.NAME, $training or $seed",
                    diag_quote(s, strlen(s)));
  }
  KExpr *e = node(r, KE_SCALAR, p->tok.loc);
  e->scalar = which;
  e->dtype = DT_F32;
  *out = e;
  *h = 1;
  return txt_next(p);
}

/* The elementwise op a call names, or -1. */
static int call_op(const Token *t) {
  for (int i = 0; i < OP_COUNT; i++)
    if ((ir_ops[i].flags & OPF_ELEMWISE) && strlen(ir_ops[i].name) == t->len && !memcmp(ir_ops[i].name, t->start, t->len))
      return i;
  return -1;
}

static bool parse_word(KReader *r, KExpr **out, int *h) {
  TextReader *p = T(r);
  Token *t = &p->tok;
  SrcLoc at = t->loc;
  *h = 1;
  if (txt_is_word(p, "B")) {
    *out = node(r, KE_BATCH, at);
    (*out)->dtype = DT_I32;
    return txt_next(p);
  }
  if (txt_is_word(p, "inf") || txt_is_word(p, "nan")) { /* f32; -inf is one number token */
    KExpr *e = *out = node(r, KE_CONST, at);
    e->dtype = DT_F32;
    e->value = txt_is_word(p, "inf") ? INFINITY : NAN;
    return txt_next(p);
  }
  if (kread_numbered(t, 'v') != -1) {
    KExpr *e = *out = node(r, KE_VAR, at);
    e->dtype = DT_I32;
    return kread_var(r, &e->var);
  }
  if (kread_numbered(t, 't') != -1) {
    KExpr *e = *out = node(r, KE_TEMP, at);
    return kread_temp(r, &e->temp);
  }
  if (txt_is_word(p, "cast")) {
    TRY(txt_next(p));
    TRY(txt_expect_punct(p, '<', "after 'cast'"));
    DType dt = txt_is_word(p, "f32") ? DT_F32 : DT_I32;
    if (!txt_is_word(p, "f32") && !txt_is_word(p, "i32"))
      return txt_fail(p, p->tok.loc, "expected f32 or i32 in cast<...>, found %s", txt_desc(&p->tok));
    TRY(txt_next(p));
    TRY(txt_expect_punct(p, '>', "after the cast's dtype"));
    KExpr *a = NULL;
    TRY(parse_args(r, "cast", at, 1, &a, h));
    *out = op_node(r, OP_CAST, at, a, NULL, NULL);
    (*out)->dtype = dt;
    return true;
  }
  if (txt_is_word(p, "i64") || txt_is_word(p, "i32")) {
    Op mark = (Op)(txt_is_word(p, "i64") ? MARK_I64 : MARK_I32);
    TRY(txt_next(p));
    KExpr *a = NULL;
    TRY(parse_args(r, mark == (Op)MARK_I64 ? "i64" : "i32", at, 1, &a, h));
    *out = op_node(r, mark, at, a, NULL, NULL);
    return true;
  }
  int op = call_op(t);
  if (op < 0) return txt_fail(p, at, "unknown name %s in an expression", txt_desc(t));
  TRY(txt_next(p));
  KExpr *args[3] = {NULL, NULL, NULL};
  TRY(parse_args(r, ir_ops[op].name, at, ir_ops[op].arity, args, h));
  *out = op_node(r, (Op)op, at, args[0], args[1], args[2]);
  return true;
}

static bool parse_atom(KReader *r, KExpr **out, int *h) {
  TextReader *p = T(r);
  Token *t = &p->tok;
  switch (t->kind) {
  case T_NUMBER: {
    if (t->is_int && !t->int_ok) return txt_fail(p, t->loc, "integer %s is out of range", txt_desc(t));
    KExpr *e = *out = node(r, KE_CONST, t->loc);
    e->dtype = t->is_int ? DT_I32 : DT_F32; /* f32 numbers are written with '.', 'e', inf or nan */
    e->value = t->is_int ? (double)t->ival : t->num;
    *h = 1;
    return txt_next(p);
  }
  case T_IDENT: return parse_word(r, out, h);
  case T_VALUE: return parse_load(r, out, h);
  case T_SCALAR: return parse_scalar(r, out, h);
  default: break;
  }
  if (!txt_is_punct(p, '(')) return txt_fail(p, t->loc, "expected an expression, found %s", txt_desc(t));
  TRY(txt_next(p));
  TRY(kread_expr(r, out, h));
  return txt_expect_punct(p, ')', "to close the parenthesis");
}

/* The parser's own recursion is bounded too: `((((x))))` nests calls, not
 * tree levels. */
bool kread_unary(KReader *r, KExpr **out, int *h) {
  TextReader *p = T(r);
  if (++r->depth > MAX_DEPTH) return txt_fail(p, p->tok.loc, "expression nested more than %d deep", MAX_DEPTH);
  bool ok;
  if (txt_is_punct(p, '-')) {
    SrcLoc at = p->tok.loc;
    KExpr *a = NULL;
    ok = txt_next(p) && kread_unary(r, &a, h) && height_ok(r, ++*h, at);
    if (ok) *out = op_node(r, OP_NEG, at, a, NULL, NULL);
  } else {
    ok = parse_atom(r, out, h);
  }
  r->depth--;
  return ok;
}

/* The infix op of the current token among the n candidates ops[], or -1. */
static int infix_op(const TextReader *p, const Op *ops, int n) {
  static const struct { char punct; const char *sym; } spell[] = {
      {'+', "+"}, {'-', "-"}, {'*', "*"}, {'/', "/"}, {TP_EQ, "=="}, {TP_NE, "!="},
      {'<', "<"}, {TP_LE, "<="}, {'>', ">"}, {TP_GE, ">="}};
  if (p->tok.kind != T_PUNCT) return -1;
  for (size_t i = 0; i < sizeof spell / sizeof spell[0]; i++)
    if (spell[i].punct == p->tok.punct)
      for (int k = 0; k < n; k++)
        if (ir_ops[ops[k]].infix && !strcmp(ir_ops[ops[k]].infix, spell[i].sym)) return (int)ops[k];
  return -1;
}

/* a OP b with a and b of heights *h and hb. */
static bool binary(KReader *r, Op op, SrcLoc at, KExpr **out, KExpr *b, int *h, int hb) {
  *h = (*h > hb ? *h : hb) + 1;
  TRY(height_ok(r, *h, at));
  *out = op_node(r, op, at, *out, b, NULL);
  return true;
}

/* Left-associative levels: PRODUCT over UNARY, SUM over PRODUCT. */
static bool parse_level(KReader *r, int level, KExpr **out, int *h) {
  static const Op mul[] = {OP_MUL, OP_DIV}, add[] = {OP_ADD, OP_SUB};
  TextReader *p = T(r);
  if (level == 0) return kread_unary(r, out, h);
  TRY(parse_level(r, level - 1, out, h));
  for (int op; (op = infix_op(p, level == 1 ? mul : add, 2)) >= 0;) {
    SrcLoc at = p->tok.loc;
    KExpr *b = NULL;
    int hb = 0;
    TRY(txt_next(p));
    TRY(parse_level(r, level - 1, &b, &hb));
    TRY(binary(r, (Op)op, at, out, b, h, hb));
  }
  return true;
}

bool kread_expr(KReader *r, KExpr **out, int *h) {
  static const Op cmp[] = {OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE};
  TextReader *p = T(r);
  if (++r->depth > MAX_DEPTH) return txt_fail(p, p->tok.loc, "expression nested more than %d deep", MAX_DEPTH);
  bool ok = parse_level(r, 2, out, h);
  int op = ok ? infix_op(p, cmp, 6) : -1;
  if (op >= 0) {
    SrcLoc at = p->tok.loc;
    KExpr *b = NULL;
    int hb = 0;
    ok = txt_next(p) && parse_level(r, 2, &b, &hb) && binary(r, (Op)op, at, out, b, h, hb);
    if (ok && infix_op(p, cmp, 6) >= 0)
      ok = txt_fail(p, p->tok.loc, "comparisons do not chain; parenthesize one of them");
  }
  r->depth--;
  return ok;
}

/* ---- finishing an expression: index flags and dtypes ---------------------------------------- */


/* Removes the markers under *slot, noting the flags they force. */
static void strip(KReader *r, KExpr **slot) {
  KExpr *e = *slot;
  if (!e) return;
  bool marked = false, index = false;
  while (e->kind == KE_OP && (int)e->op >= OP_COUNT) { /* the outermost marker wins */
    if (!marked) index = (int)e->op == MARK_I64;
    marked = true;
    *slot = e = e->a;
  }
  if (marked) {
    Forced f = {e, index};
    VEC_PUSH(r->forced, r->nforced, r->capforced, f);
  }
  for (int i = 0; e->kind == KE_LOAD && i < e->nidx; i++) strip(r, &e->idx[i]);
  if (e->kind == KE_OP) strip(r, &e->a), strip(r, &e->b), strip(r, &e->c);
}

static int forced_cmp(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const Forced *)a)->e, y = (uintptr_t)((const Forced *)b)->e;
  return x < y ? -1 : x > y;
}

/* Sets e's index flag (in index context ctx) and dtype, and those below it. */
static bool settle(KReader *r, KExpr *e, bool ctx) {
  Forced key = {e, false}, *f = r->nforced ? bsearch(&key, r->forced, r->nforced, sizeof key, forced_cmp) : NULL;
  e->index = f ? f->index : ktext_index_default(e, ctx);
  switch (e->kind) {
  case KE_TEMP:
    if (r->ttype[e->temp] < 0) return txt_fail(T(r), kread_where(r, e), "use of t%d before its let", e->temp);
    e->dtype = (DType)r->ttype[e->temp];
    return true;
  case KE_LOAD:
    for (int i = 0; i < e->nidx; i++) TRY(settle(r, e->idx[i], true));
    return true;
  case KE_OP: {
    bool octx = ktext_index_operands(e);
    KExpr *ops[3] = {e->a, e->b, e->c};
    for (int i = 0; i < 3; i++)
      if (ops[i]) TRY(settle(r, ops[i], octx));
    if ((ir_ops[e->op].flags & OPF_CMP) || e->op == OP_RANDOM) e->dtype = DT_F32; /* random: integers in, f32 out */
    else if (e->op == OP_WHERE) e->dtype = e->b->dtype;
    else if (e->op != OP_CAST) e->dtype = e->a->dtype;
    return true;
  }
  default: return true; /* constants, variables, B and scalars got theirs when parsed */
  }
}

bool kread_finish(KReader *r, KExpr **slot, bool ctx) {
  if (!*slot) return true;
  r->nforced = 0;
  strip(r, slot);
  if (r->nforced > 1) qsort(r->forced, r->nforced, sizeof *r->forced, forced_cmp);
  return settle(r, *slot, ctx);
}
