/* ir/read.c - the graph IR's text form: text -> module (docs/ir.md).
 *
 * A hand-written recursive-descent parser over the text of a file
 * registered with the diagnostics engine, on the lexer and declaration
 * lines it shares with the kernel IR reader (ir/text.c).  The language is
 * line based: every line is one declaration, one node or one output, so
 * the parser is a loop over lines with one function per line kind and
 * never recurses.
 *
 * The reader stops at the first error: it reports it at its exact line:col
 * (`use of undefined value %12`), frees what it built and returns NULL.  It
 * checks as it goes everything it can point at (names, kinds, arity,
 * operands, bounds, the shape rule of every node), then runs the verifier as
 * a last safety net.  Input is untrusted: every number is bounded before it
 * is used, nothing is allocated from a count read from the input, and
 * arbitrary bytes (NULs included) only ever produce a diagnostic.
 */
#include "ir/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- nodes and outputs ------------------------------------------------------------ */

/* '[' [INT {',' INT}] ']' into vals (at most NNC_MAX_RANK entries, each < rank,
 * no duplicates); locs of the entries for messages. */
static bool parse_axis_list(TextReader *p, const char *what, int rank, uint8_t *vals, int *n) {
  TRY(txt_expect_punct(p, '[', what));
  *n = 0;
  unsigned seen = 0;
  while (!txt_is_punct(p, ']')) {
    if (*n > 0) TRY(txt_expect_punct(p, ',', "or ']'"));
    SrcLoc at = p->tok.loc;
    int64_t a = 0;
    TRY(txt_expect_int(p, "axis", 0, NNC_MAX_RANK - 1, &a));
    if (a >= rank) return txt_fail(p, at, "axis %lld is out of range for an operand of rank %d", (long long)a, rank);
    if (seen >> a & 1) return txt_fail(p, at, "duplicate axis %lld", (long long)a);
    seen |= 1u << a;
    vals[(*n)++] = (uint8_t)a;
  }
  return txt_next(p);
}

/* Checks a leaf's written type against what it must be. */
static bool check_leaf_type(TextReader *p, const Node *n, SrcLoc tl) {
  char ta[192], tb[192];
  const char *opname = ir_ops[n->op].name;
  type_str(&n->type, ta, sizeof ta);
  switch (n->op) {
  case OP_CONST: {
    double c = n->attr.value;
    if (n->type.rank != 0 || n->type.batched) return txt_fail(p, tl, "const must be a scalar (f32 or i32), found %s", ta);
    if (n->type.dtype == DT_I32 && !(c == trunc(c) && c >= -2147483648.0 && c <= 2147483647.0))
      return txt_fail(p, tl, "an i32 const must be an integer in the i32 range");
    return true;
  }
  case OP_HYPER:
  case OP_STEP:
  case OP_BATCH_SIZE:
  case OP_TRAINING:
  case OP_SEED:
    if (n->type.dtype != DT_F32 || n->type.rank != 0 || n->type.batched)
      return txt_fail(p, tl, "%s is an f32 scalar, found %s", opname, ta);
    return true;
  case OP_ELEMENT:
    if (n->type.dtype != DT_I32) return txt_fail(p, tl, "element positions are i32, found %s", ta);
    return true;
  default: {
    const Symbol *s = &p->m->syms[n->attr.sym];
    if (!type_equal(&n->type, &s->type))
      return txt_fail(p, tl, "type %s does not match the type of @%s, %s", ta, diag_quote(s->name, strlen(s->name)),
                  type_str(&s->type, tb, sizeof tb));
    return true;
  }
  }
}

/* NODE := VALUE '=' OPNAME [SYM] [NUMBER] [VALUE {',' VALUE}] ['axes' LIST] ['perm' LIST] ':' TYPE [LOC] */
static bool parse_node(TextReader *p) {
  Module *m = p->m;
  TRY(txt_enter_phase(p, 2, p->tok.loc));
  uint32_t id = p->tok.value;
  if (id != m->nnodes) {
    if (id < m->nnodes) return txt_fail(p, p->tok.loc, "value %%%u is already defined", id);
    return txt_fail(p, p->tok.loc, "value %%%u is defined out of order (expected %%%u)", id, m->nnodes);
  }
  TRY(txt_next(p));
  TRY(txt_expect_punct(p, '=', "after the value"));
  Token *t = &p->tok;
  if (t->kind != T_IDENT) return txt_fail(p, t->loc, "expected an op name, found %s", txt_desc(t));
  int op = -1;
  for (int i = 0; i < OP_COUNT && op < 0; i++)
    if (txt_is_word(p, ir_ops[i].name)) op = i;
  if (op < 0) return txt_fail(p, t->loc, "unknown op '%s'", diag_quote(t->start, t->len));
  const OpInfo *info = &ir_ops[op];
  SrcLoc oploc = t->loc;
  Node n;
  memset(&n, 0, sizeof n);
  n.op = (Op)op;
  TRY(txt_next(p));
  if (info->flags & OPF_SYM) {
    static const SymKind kinds[OP_COUNT] = {[OP_INPUT] = SYM_INPUT, [OP_PARAM] = SYM_PARAM, [OP_STATE] = SYM_STATE,
                                            [OP_GRAD] = SYM_PARAM,  [OP_HYPER] = SYM_HYPER};
    char *name = NULL;
    SrcLoc nl = {0, 0, 0};
    TRY(txt_expect_sym(p, "a symbol (@name)", &name, &nl));
    TRY(txt_resolve_sym(p, name, nl, kinds[op], false, info->name, &n.attr.sym));
  }
  if (info->flags & OPF_VALUE) TRY(txt_expect_number(p, "a number", &n.attr.value));
  /* operands */
  int nargs = 0;
  while (p->tok.kind == T_VALUE || (nargs > 0 && txt_is_punct(p, ','))) {
    if (nargs > 0) TRY(txt_expect_punct(p, ',', "between operands"));
    if (p->tok.kind != T_VALUE) return txt_fail(p, p->tok.loc, "expected an operand (%%N), found %s", txt_desc(&p->tok));
    if (nargs == info->arity)
      return txt_fail(p, p->tok.loc, "%s takes %d operand%s", info->name, info->arity, info->arity == 1 ? "" : "s");
    if (p->tok.value >= m->nnodes) return txt_fail(p, p->tok.loc, "use of undefined value %%%u", p->tok.value);
    n.args[nargs++] = p->tok.value;
    TRY(txt_next(p));
  }
  if (nargs != info->arity)
    return txt_fail(p, oploc, "%s takes %d operand%s, found %d", info->name, info->arity, info->arity == 1 ? "" : "s",
                nargs);
  n.nargs = (uint8_t)nargs;
  int rank0 = nargs ? m->nodes[n.args[0]].type.rank : 0;
  if (info->flags & OPF_AXES) {
    uint8_t axes[NNC_MAX_RANK];
    int na = 0;
    SrcLoc at = p->tok.loc;
    TRY(txt_expect_word(p, "axes", "after the operand"));
    TRY(parse_axis_list(p, "after 'axes'", rank0, axes, &na));
    if (na == 0) return txt_fail(p, at, "%s needs at least one axis", info->name);
    for (int i = 0; i < na; i++) n.attr.axes |= 1u << axes[i];
  }
  if (info->flags & OPF_WINDOW) {
    int64_t k, st, pad;
    TRY(txt_expect_word(p, "window", "after the operands"));
    TRY(txt_expect_int(p, "a window size", 1, 65535, &k));
    TRY(txt_expect_word(p, "stride", "after the window size"));
    TRY(txt_expect_int(p, "a stride", 1, 65535, &st));
    TRY(txt_expect_word(p, "pad", "after the stride"));
    TRY(txt_expect_int(p, "a padding", 0, 65535, &pad));
    n.attr.win.size = (uint16_t)k, n.attr.win.stride = (uint16_t)st, n.attr.win.pad = (uint16_t)pad;
  }
  if (info->flags & OPF_PERM) {
    int np = 0;
    SrcLoc at = p->tok.loc;
    TRY(txt_expect_word(p, "perm", "after the operand"));
    TRY(parse_axis_list(p, "after 'perm'", rank0, n.attr.perm, &np));
    if (np != rank0) return txt_fail(p, at, "perm has %d entries, but the operand has rank %d", np, rank0);
  }
  TRY(txt_expect_punct(p, ':', "before the type"));
  SrcLoc tl = p->tok.loc;
  TRY(txt_parse_type(p, &n.type));
  TRY(txt_parse_opt_loc(p, &n.loc));
  TRY(txt_expect_eol(p, "after the node"));
  /* Types: leaves against their symbol, ops through their shape rule. */
  if (info->flags & OPF_LEAF) {
    TRY(check_leaf_type(p, &n, tl));
  } else {
    Type at[NNC_MAX_ARGS], res;
    char err[512], ta[192], tb[192];
    for (int i = 0; i < nargs; i++) at[i] = m->nodes[n.args[i]].type;
    if (!info->shape(&n, at, &res, err, sizeof err)) return txt_fail(p, oploc, "%s", err);
    if (!type_equal(&res, &n.type))
      return txt_fail(p, tl, "type %s does not match the type %s computes, %s", type_str(&n.type, ta, sizeof ta),
                  info->name, type_str(&res, tb, sizeof tb));
  }
  ir_append(m, &n);
  return true;
}

/* OUTPUT := 'output' ('loss' VALUE | 'metric' SYM VALUE | 'update' SYM VALUE | 'predict' SYM VALUE) */
static bool parse_output(TextReader *p) {
  Module *m = p->m;
  TRY(txt_enter_phase(p, 3, p->tok.loc));
  TRY(txt_next(p));
  SrcLoc kl = p->tok.loc;
  OutKind kind;
  if (txt_is_word(p, "loss")) kind = OUT_LOSS;
  else if (txt_is_word(p, "metric")) kind = OUT_METRIC;
  else if (txt_is_word(p, "update")) kind = OUT_UPDATE;
  else if (txt_is_word(p, "predict")) kind = OUT_PREDICT;
  else return txt_fail(p, kl, "expected loss, metric, update or predict, found %s", txt_desc(&p->tok));
  TRY(txt_next(p));
  char *name = NULL;
  SrcLoc nl = kl;
  uint32_t sym = 0;
  if (kind == OUT_LOSS && p->have_loss) return txt_fail(p, kl, "duplicate loss output");
  if (kind == OUT_METRIC) TRY(txt_expect_sym(p, "the metric name (@name)", &name, &nl));
  if (kind == OUT_PREDICT) {
    TRY(txt_expect_sym(p, "the prediction's name (@name)", &name, &nl));
    for (uint32_t i = 0; i < m->noutputs; i++)
      if (m->outputs[i].kind == OUT_PREDICT) return txt_fail(p, kl, "duplicate predict output");
  }
  if (kind == OUT_UPDATE) {
    TRY(txt_expect_sym(p, "the updated parameter or state (@name)", &name, &nl));
    TRY(txt_resolve_sym(p, name, nl, SYM_PARAM, true, "update", &sym));
  }
  if (kind == OUT_METRIC)
    for (uint32_t i = 0; i < m->noutputs; i++)
      if (m->outputs[i].kind == OUT_METRIC && !strcmp(m->outputs[i].name, name))
        return txt_fail(p, nl, "duplicate metric @%s", diag_quote(name, strlen(name)));
  if (kind == OUT_UPDATE)
    for (uint32_t i = 0; i < m->noutputs; i++)
      if (m->outputs[i].kind == OUT_UPDATE && m->outputs[i].sym == sym)
        return txt_fail(p, nl, "duplicate update of @%s", diag_quote(name, strlen(name)));
  SrcLoc vl = p->tok.loc;
  if (p->tok.kind != T_VALUE) return txt_fail(p, vl, "expected a value (%%N), found %s", txt_desc(&p->tok));
  uint32_t v = p->tok.value;
  if (v >= m->nnodes) return txt_fail(p, vl, "use of undefined value %%%u", v);
  TRY(txt_next(p));
  TRY(txt_expect_eol(p, "after the output"));
  const Type *vt = &m->nodes[v].type;
  char ta[192], tb[192];
  if (kind == OUT_PREDICT && (vt->dtype != DT_F32 || !vt->batched))
    return txt_fail(p, vl, "a prediction is a batched f32 tensor, but %%%u is %s", v, type_str(vt, ta, sizeof ta));
  if ((kind == OUT_LOSS || kind == OUT_METRIC) && (vt->dtype != DT_F32 || vt->rank != 0 || !vt->batched))
    return txt_fail(p, vl, "a %s is a per-sample f32 scalar (f32[B]), but %%%u is %s", kind == OUT_LOSS ? "loss" : "metric",
                v, type_str(vt, ta, sizeof ta));
  if (kind == OUT_UPDATE && !type_equal(vt, &m->syms[sym].type))
    return txt_fail(p, vl, "the update of @%s must have its type %s, but %%%u is %s", diag_quote(name, strlen(name)),
                type_str(&m->syms[sym].type, tb, sizeof tb), v, type_str(vt, ta, sizeof ta));
  if (kind == OUT_LOSS) p->have_loss = true;
  ir_add_output(m, kind, kind == OUT_UPDATE ? m->syms[sym].name : name, sym, v);
  return true;
}

/* FILE := {LINE? NEWLINE};  LINE := MODULE | SYMBOL | TRAIN | NODE | OUTPUT */
static bool parse_file(TextReader *p) {
  TRY(txt_next(p));
  for (;;) {
    while (p->tok.kind == T_NEWLINE) TRY(txt_next(p));
    if (p->tok.kind == T_EOF) break;
    Token *t = &p->tok;
    bool done = false;
    TRY(txt_parse_decl(p, &done));
    if (done) continue;
    if (txt_is_word(p, "output")) TRY(parse_output(p));
    else if (t->kind == T_VALUE) TRY(parse_node(p));
    else return txt_fail(p, t->loc, "expected a declaration, a node (%%N = ...) or an output, found %s", txt_desc(t));
  }
  return txt_resolve_owners(p);
}

Module *ir_read(uint32_t file_id) {
  static const char *const phases[] = {"", "declarations", "nodes", "outputs"};
  const SourceFile *f = diag_file(&nnc_diag, file_id);
  NNC_ASSERT(f != NULL);
  TextReader p;
  txt_init(&p, file_id, false, phases);
  bool ok = parse_file(&p);
  txt_done(&p);
  if (ok && !p.failed) {
    char *what = nnc_xmalloc(strlen(f->path) + 16);
    sprintf(what, "reading %s", f->path);
    ok = ir_verify(p.m, what);
    free(what);
  }
  if (!ok || p.failed) {
    ir_module_free(p.m);
    return NULL;
  }
  return p.m;
}
