/* ir/kernel_read.c - the kernel IR's text form: text -> KProgram (docs/ir.md).
 *
 * Reads what ir/kernel_print.c prints (plus comments, free horizontal
 * space and blank lines), so that kernel passes can run alone on text:
 *
 *     module and declarations    as the graph IR (ir/text.c parses them)
 *     buffer %N KIND NAME : T    the buffers, numbered in order
 *     kernel NAME(ARGS) ...      each kernel and its statements
 *     train: ...  eval: ...      the two plans
 *
 * A line-based loop over the sections, with one function per line kind
 * and recursive descent inside a kernel's statements (their expressions
 * are in ir/kernel_read_expr.c); loops are nested at most MAX_DEPTH deep.
 * Each statement is finished as soon as it is read (index flags and
 * dtypes); a temporary's dtype is that of its first definition (a let or a
 * contraction), in text order.
 *
 * Then the kernel verifier runs over the whole program, and its first
 * problem is reported at the line:col of the statement or expression it is
 * about (the reader records where each one was written).  So the reader
 * checks the syntax, names and numbers itself and leaves scoping, ranks
 * and types to the one set of rules in ir/kernel_verify.c.  Input is
 * untrusted: numbers are bounded before they are used, loop variables and
 * temporaries are numbered below MAX_IDS, nesting is limited, and
 * arbitrary bytes only ever produce a diagnostic.
 */
#include "ir/kernel_read.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static Kernel *cur(KReader *r) { return &r->p->kernels[r->kidx]; }
static bool fail(KReader *r, SrcLoc at, const char *msg) { return txt_fail(T(r), at, "%s", msg); }

void kread_locate(KReader *r, const void *node, SrcLoc at) {
  Located l = {node, at};
  VEC_PUSH(r->locs, r->nlocs, r->caplocs, l);
}

/* vN or tN: the number; -2 when it is MAX_IDS or more, -1 when the word
 * is not one. */
int32_t kread_numbered(const Token *t, char prefix) {
  if (t->kind != T_IDENT || t->len < 2 || t->start[0] != prefix) return -1;
  int32_t n = 0;
  for (size_t i = 1; i < t->len; i++) {
    if (t->start[i] < '0' || t->start[i] > '9') return -1;
    if (n < MAX_IDS) n = n * 10 + (t->start[i] - '0');
  }
  return n < MAX_IDS ? n : -2;
}

/* A loop variable of the current kernel (counted into nvars). */
bool kread_var(KReader *r, int32_t *var) {
  Token *t = &T(r)->tok;
  int32_t v = kread_numbered(t, 'v');
  if (v == -2) return txt_fail(T(r), t->loc, "loop variable %s is out of range (v0 to v%d)", txt_desc(t), MAX_IDS - 1);
  if (v < 0) return txt_fail(T(r), t->loc, "expected a loop variable (vN), found %s", txt_desc(t));
  if (v >= r->nvars) r->nvars = v + 1;
  *var = v;
  return txt_next(T(r));
}

/* A temporary of the current kernel (counted into its ntemps). */
bool kread_temp(KReader *r, int32_t *temp) {
  Token *t = &T(r)->tok;
  int32_t n = kread_numbered(t, 't');
  if (n == -2) return txt_fail(T(r), t->loc, "temporary %s is out of range (t0 to t%d)", txt_desc(t), MAX_IDS - 1);
  if (n < 0) return txt_fail(T(r), t->loc, "expected a temporary (tN), found %s", txt_desc(t));
  if (n >= r->nttype) {
    int32_t old = r->nttype;
    r->ttype = nnc_xrealloc(r->ttype, (size_t)n + 1);
    memset(r->ttype + old, -1, (size_t)(n + 1 - old));
    r->nttype = n + 1;
  }
  *temp = n;
  return txt_next(T(r));
}

SrcLoc kread_where(const KReader *r, const void *n) {
  for (uint32_t i = r->nlocs; i-- > 0;)
    if (r->locs[i].node == n) return r->locs[i].loc;
  return (SrcLoc){r->t.file, 1, 1};
}

/* ---- statements ---------------------------------------------------------------------------
 *
 * STMT   := 'for' vN 'in' '0' '..' EXTENT {FLAG} '{' NEWLINE {STMT} '}'
 *         | 'let' tN '=' EXPR | tN '=' EXPR | %N '[' [EXPR {',' EXPR}] ']' '=' EXPR
 *         | 'contract' ['rows'] [%N '[' ... ']' '=' EXPR ['for' AXES] 'with'] tN '=' COMBINE AXES 'of' UNARY ['*' UNARY]
 * EXTENT := INT | 'B' | 'B' '*' INT
 * FLAG   := 'parallel' | 'reduce' | ('vector' | 'unroll' | 'tile') '=' INT
 * AXES   := vN 'in' '0' '..' EXTENT {',' vN 'in' '0' '..' EXTENT}
 * COMBINE := 'sum' | 'max' | 'min'  */

static bool parse_stmt(KReader *r, KStmt **out);

/* 'in' '0' '..' EXTENT after a variable */
static bool parse_range(KReader *r, int64_t *extent, bool *batched) {
  TextReader *p = T(r);
  TRY(txt_expect_word(p, "in", "after the loop variable"));
  if (p->tok.kind != T_NUMBER || !p->tok.is_int || p->tok.ival != 0)
    return txt_fail(p, p->tok.loc, "expected 0 (ranges start at 0), found %s", txt_desc(&p->tok));
  TRY(txt_next(p));
  TRY(txt_expect_punct(p, TP_DOTS, "after 0"));
  *batched = txt_is_word(p, "B");
  if (*batched) {
    TRY(txt_next(p));
    *extent = 1;
    if (!txt_is_punct(p, '*')) return true;
    TRY(txt_next(p));
  }
  return txt_expect_int(p, "extent", 1, NNC_MAX_ELEMS, extent);
}

/* ['?'] '[' [EXPR {',' EXPR}] ']' '=' after a store's buffer */
static bool parse_store_target(KReader *r, KStmt *s) {
  TextReader *p = T(r);
  int h = 0; /* heights: bounded as they are parsed */
  if (p->tok.value >= r->p->nbufs) return txt_fail(p, p->tok.loc, "unknown buffer %%%u", p->tok.value);
  s->buf = (int32_t)p->tok.value;
  TRY(txt_next(p));
  TRY(txt_expect_punct(p, '[', "after the buffer"));
  while (!txt_is_punct(p, ']')) {
    if (s->nidx && !txt_expect_punct(p, ',', "or ']' between indices")) return false;
    if (s->nidx == NNC_MAX_RANK + 1) return txt_fail(p, p->tok.loc, "an access has at most %d indices", NNC_MAX_RANK + 1);
    TRY(kread_expr(r, &s->idx[s->nidx], &h));
    s->nidx++;
  }
  TRY(txt_next(p));
  return txt_expect_punct(p, '=', "after the store's indices");
}

static KStmt *new_stmt(KReader *r, KStmtKind kind, SrcLoc at) {
  KStmt *s = arena_alloc(&r->p->arena, sizeof *s);
  s->kind = kind;
  s->var = s->temp = s->buf = -1;
  kread_locate(r, s, at);
  return s;
}

/* The first definition of temp t gives its dtype; later ones must agree. */
static bool define_temp(KReader *r, int32_t t, DType dt, SrcLoc at) {
  if (r->ttype[t] < 0) r->ttype[t] = (int8_t)dt;
  if (r->ttype[t] != (int8_t)dt)
    return txt_fail(T(r), at, "t%d is %s here, but %s where it was first defined", t, dtype_name(dt),
                    dtype_name((DType)r->ttype[t]));
  return true;
}

static bool parse_axes(KReader *r, KStmt *s, int first, uint8_t *n) {
  TextReader *p = T(r);
  for (*n = 0;; (*n)++) {
    if (first + *n == NNC_MAX_CONTRACT_AXES)
      return txt_fail(p, p->tok.loc, "a contraction has at most %d axes", NNC_MAX_CONTRACT_AXES);
    KAxis *x = &s->axes[first + *n];
    TRY(kread_var(r, &x->var));
    TRY(parse_range(r, &x->extent, &x->batched));
    if (!txt_is_punct(p, ',')) break;
    TRY(txt_next(p));
  }
  (*n)++;
  return true;
}

static bool parse_contract(KReader *r, KStmt *s) {
  TextReader *p = T(r);
  int h = 0;
  TRY(txt_next(p)); /* contract */
  if (txt_is_word(p, "rows")) {
    s->sched.rows = true;
    TRY(txt_next(p));
  }
  if (p->tok.kind == T_VALUE) {
    TRY(parse_store_target(r, s));
    TRY(kread_expr(r, &s->value, &h));
    if (txt_is_word(p, "for")) {
      TRY(txt_next(p));
      TRY(parse_axes(r, s, 0, &s->nfree));
    }
    TRY(txt_expect_word(p, "with", "after the contraction's value"));
  }
  SrcLoc tl = p->tok.loc;
  TRY(kread_temp(r, &s->temp));
  TRY(txt_expect_punct(p, '=', "after the contraction's temporary"));
  s->combine = txt_is_word(p, "sum") ? OP_ADD : txt_is_word(p, "max") ? OP_MAX : OP_MIN;
  if (!txt_is_word(p, "sum") && !txt_is_word(p, "max") && !txt_is_word(p, "min"))
    return txt_fail(p, p->tok.loc, "expected sum, max or min, found %s", txt_desc(&p->tok));
  TRY(txt_next(p));
  TRY(parse_axes(r, s, s->nfree, &s->nred));
  TRY(txt_expect_word(p, "of", "after the reduction axes"));
  TRY(kread_unary(r, &s->a, &h));
  if (txt_is_punct(p, '*')) {
    TRY(txt_next(p));
    TRY(kread_unary(r, &s->b, &h));
  }
  /* the factors first: they give the temporary its dtype, which the value may read */
  TRY(kread_finish(r, &s->a, false));
  TRY(kread_finish(r, &s->b, false));
  TRY(define_temp(r, s->temp, s->a->dtype, tl));
  for (int i = 0; i < s->nidx; i++) TRY(kread_finish(r, &s->idx[i], true));
  return kread_finish(r, &s->value, false);
}

static bool parse_loop(KReader *r, KStmt *s) {
  TextReader *p = T(r);
  SrcLoc open = p->tok.loc;
  TRY(txt_next(p)); /* for */
  TRY(kread_var(r, &s->var));
  TRY(parse_range(r, &s->extent, &s->batched));
  for (;;) {
    if (txt_is_word(p, "parallel") || txt_is_word(p, "reduce")) {
      unsigned f = txt_is_word(p, "parallel") ? KL_PARALLEL : KL_REDUCE;
      if (s->flags & f) return txt_fail(p, p->tok.loc, "duplicate loop flag %s", txt_desc(&p->tok));
      s->flags |= f;
      TRY(txt_next(p));
      continue;
    }
    int which = txt_is_word(p, "vector") ? 0 : txt_is_word(p, "unroll") ? 1 : txt_is_word(p, "tile") ? 2 : -1;
    if (which < 0) break;
    const char *name = which == 0 ? "vector" : which == 1 ? "unroll" : "tile";
    TRY(txt_next(p));
    TRY(txt_expect_punct(p, '=', "after the schedule attribute"));
    int64_t v = 0;
    TRY(txt_expect_int(p, name, 1, which == 2 ? NNC_MAX_ELEMS : 65536, &v));
    if (which == 0) s->sched.vector = (int)v;
    else if (which == 1) s->sched.unroll = (int)v;
    else s->sched.tile = v;
  }
  TRY(txt_expect_punct(p, '{', "to open the loop's body"));
  TRY(txt_expect_eol(p, "after '{'"));
  if (++r->depth > MAX_DEPTH) return txt_fail(p, open, "loops nested more than %d deep", MAX_DEPTH);
  for (;;) {
    while (p->tok.kind == T_NEWLINE) TRY(txt_next(p));
    if (txt_is_punct(p, '}')) break;
    KStmt *c = NULL;
    bool ok = parse_stmt(r, &c);
    if (c) kstmt_append(&s->body, &s->nbody, &s->capbody, c); /* a broken one too: freed with the kernel */
    TRY(ok);
  }
  r->depth--;
  TRY(txt_next(p));
  return txt_expect_eol(p, "after '}'");
}

/* Does the current token begin a statement (rather than the next top-level line)? */
static bool at_stmt(KReader *r) {
  TextReader *p = T(r);
  return txt_is_word(p, "for") || txt_is_word(p, "let") || txt_is_word(p, "contract") || p->tok.kind == T_VALUE ||
         kread_numbered(&p->tok, 't') != -1;
}

static bool parse_stmt(KReader *r, KStmt **out) {
  TextReader *p = T(r);
  int h = 0;
  SrcLoc at = p->tok.loc;
  if (!at_stmt(r))
    return txt_fail(p, at, "expected a statement (for, let, contract, a store or an assignment) or '}', found %s",
                    txt_desc(&p->tok));
  KStmt *s;
  if (txt_is_word(p, "for")) {
    *out = s = new_stmt(r, KS_LOOP, at);
    return parse_loop(r, s);
  }
  if (txt_is_word(p, "contract")) {
    *out = s = new_stmt(r, KS_CONTRACT, at);
    TRY(parse_contract(r, s));
    return txt_expect_eol(p, "after the contraction");
  }
  if (p->tok.kind == T_VALUE) {
    *out = s = new_stmt(r, KS_STORE, at);
    TRY(parse_store_target(r, s));
    TRY(kread_expr(r, &s->value, &h));
    for (int i = 0; i < s->nidx; i++) TRY(kread_finish(r, &s->idx[i], true));
    TRY(kread_finish(r, &s->value, false));
    return txt_expect_eol(p, "after the store");
  }
  bool let = txt_is_word(p, "let");
  *out = s = new_stmt(r, let ? KS_LET : KS_ASSIGN, at);
  if (let) TRY(txt_next(p));
  SrcLoc tl = p->tok.loc;
  TRY(kread_temp(r, &s->temp));
  if (!let && r->ttype[s->temp] < 0) return txt_fail(p, tl, "assignment to t%d before its let", s->temp);
  TRY(txt_expect_punct(p, '=', "after the temporary"));
  TRY(kread_expr(r, &s->value, &h));
  TRY(kread_finish(r, &s->value, false));
  if (let) TRY(define_temp(r, s->temp, s->value->dtype, tl));
  return txt_expect_eol(p, let ? "after the let" : "after the assignment");
}

/* ---- top-level lines ----------------------------------------------------------------------- */

static const char *const kind_words[] = {"input", "label", "param", "state", "temp", "loss", "metric", "scalars", "output"};

/* 'buffer' %N KIND NAME ':' TYPE ['slot' INT | 'no' 'slot'] ['from' OP] [LOC]
 * NAME: @SYM for inputs, labels, params and states, else a bare name or a
 * string; the slot for temps only, `from` and LOC for temps, the loss and
 * metrics. */
static bool parse_buffer(KReader *r) {
  TextReader *p = T(r);
  KProgram *kp = r->p;
  SrcLoc at = p->tok.loc;
  TRY(txt_enter_phase(p, 2, at));
  TRY(txt_next(p));
  if (p->tok.kind != T_VALUE) return txt_fail(p, p->tok.loc, "expected the buffer's number (%%N), found %s", txt_desc(&p->tok));
  if (p->tok.value != kp->nbufs)
    return txt_fail(p, p->tok.loc, "buffer %%%u is defined out of order (expected %%%u)", p->tok.value, kp->nbufs);
  TRY(txt_next(p));
  KBuffer b;
  memset(&b, 0, sizeof b);
  b.slot = -1;
  b.op = -1;
  int kind = -1;
  for (int i = 0; i <= KB_OUTPUT; i++)
    if (txt_is_word(p, kind_words[i])) kind = i;
  if (kind < 0)
    return txt_fail(p, p->tok.loc, "expected a buffer kind (input, label, param, state, temp, loss, metric or scalars), "
                    "found %s", txt_desc(&p->tok));
  b.kind = (KBufKind)kind;
  bool symbolic = kind <= KB_STATE;
  p->names = true; /* the name may be a path: metric.accuracy */
  bool ok = txt_next(p);
  p->names = false;
  TRY(ok);
  SrcLoc nl = p->tok.loc;
  if (symbolic) {
    char *name = NULL;
    TRY(txt_expect_sym(p, "the buffer's symbol (@name)", &name, &nl));
    static const SymKind syms[] = {SYM_INPUT, SYM_LABEL, SYM_PARAM, SYM_STATE};
    int64_t s = txt_find_sym(p, txt_sym_group(syms[kind]), name);
    if (s < 0 || p->m->syms[s].kind != syms[kind])
      return txt_fail(p, nl, "no %s @%s is declared", kind_words[kind], diag_quote(name, strlen(name)));
    if (!r->sym_has_buf) r->sym_has_buf = nnc_xcalloc(p->m->nsyms + 1, 1); /* the declarations came first */
    if (r->sym_has_buf[s]) return txt_fail(p, nl, "@%s has a buffer already", diag_quote(name, strlen(name)));
    r->sym_has_buf[s] = true;
    b.sym = (uint32_t)s;
    b.name = name;
    b.loc = p->m->syms[s].loc;
  } else if (p->tok.kind == T_IDENT || p->tok.kind == T_STRING) {
    b.name = p->tok.kind == T_STRING ? p->tok.str : arena_strndup(&p->m->arena, p->tok.start, p->tok.len);
    if (!*b.name) return txt_fail(p, nl, "a buffer's name cannot be empty");
    TRY(txt_next(p));
  } else {
    return txt_fail(p, nl, "expected the buffer's name, found %s", txt_desc(&p->tok));
  }
  TRY(txt_expect_punct(p, ':', "before the buffer's type"));
  SrcLoc tl = p->tok.loc;
  TRY(txt_parse_type(p, &b.type));
  char ta[192], tb[192];
  if (symbolic && !type_equal(&b.type, &p->m->syms[b.sym].type))
    return txt_fail(p, tl, "type %s does not match the type of @%s, %s", type_str(&b.type, ta, sizeof ta),
                    diag_quote(b.name, strlen(b.name)), type_str(&p->m->syms[b.sym].type, tb, sizeof tb));
  if (b.kind == KB_TEMP) {
    if (txt_is_word(p, "no")) {
      TRY(txt_next(p));
      TRY(txt_expect_word(p, "slot", "after 'no'"));
    } else {
      int64_t slot = 0;
      TRY(txt_expect_word(p, "slot", "or 'no slot' after a temp's type"));
      TRY(txt_expect_int(p, "slot", 0, INT32_MAX - 1, &slot));
      b.slot = (int32_t)slot;
    }
  }
  bool computed = b.kind == KB_TEMP || b.kind == KB_LOSS || b.kind == KB_METRIC || b.kind == KB_OUTPUT;
  if (computed && txt_is_word(p, "from")) {
    TRY(txt_next(p));
    for (int i = 0; i < OP_COUNT && b.op < 0; i++)
      if (txt_is_word(p, ir_ops[i].name)) b.op = i;
    if (b.op < 0) return txt_fail(p, p->tok.loc, "expected the op that computes the buffer, found %s", txt_desc(&p->tok));
    TRY(txt_next(p));
  }
  if (computed) TRY(txt_parse_opt_loc(p, &b.loc));
  TRY(txt_expect_eol(p, "after the buffer"));
  if ((b.kind == KB_LOSS && kp->loss >= 0) || (b.kind == KB_SCALARS && kp->scalars >= 0) ||
      (b.kind == KB_OUTPUT && kp->output >= 0))
    return txt_fail(p, at, "a second %s buffer", kind_words[kind]);
  int32_t id = kprog_add_buffer(kp, b);
  if (b.kind == KB_INPUT && kp->input < 0) kp->input = id;
  if (b.kind == KB_LABEL && kp->label < 0) kp->label = id;
  if (b.kind == KB_LOSS) kp->loss = id;
  if (b.kind == KB_SCALARS) kp->scalars = id;
  if (b.kind == KB_OUTPUT) kp->output = id;
  if (b.kind == KB_METRIC) {
    kp->metrics = nnc_xrealloc(kp->metrics, sizeof *kp->metrics * (kp->nmetrics + 1));
    kp->metrics[kp->nmetrics++] = id;
  }
  if ((uint32_t)id >= r->capbufloc) {
    r->capbufloc = 2 * (uint32_t)id + 16;
    r->bufloc = nnc_xrealloc(r->bufloc, sizeof *r->bufloc * r->capbufloc);
  }
  r->bufloc[id] = at;
  return true;
}

/* Kernel names are kN_NAME (lowering's form): C identifiers that no
 * runtime or C library symbol takes. */
static bool kernel_name_ok(const Token *t) {
  size_t i = 1;
  if (t->kind != T_IDENT || t->start[0] != 'k') return false;
  while (i < t->len && t->start[i] >= '0' && t->start[i] <= '9') i++;
  return i > 1 && i < t->len && t->start[i] == '_';
}

/* The rest of a kernel line after ')': [';' WHAT] [LOC], WHAT free text up
 * to the location (three spaces before `loc(`) or the end of the line.  The
 * first such `loc(` starts the location, so a description never holds one
 * and prints back the same way whether or not a location follows it (fuse
 * joins descriptions: "A + B" of two such texts holds none either). */
static bool parse_description(KReader *r, Kernel *k) {
  TextReader *p = T(r);
  size_t i = p->pos;
  while (i < p->len && (p->src[i] == ' ' || p->src[i] == '\t')) i++;
  if (i >= p->len || p->src[i] != ';') return txt_next(p) && txt_parse_opt_loc(p, &k->loc);
  size_t s = i + 1, e = s;
  while (e < p->len && p->src[e] != '\n') e++;
  size_t end = e, locat = e;
  bool blank = true; /* only spaces so far */
  for (size_t j = s; j + 4 <= e; j++) {
    if (!memcmp(p->src + j, "loc(", 4) && (blank || (j >= s + 3 && !memcmp(p->src + j - 3, "   ", 3)))) {
      end = j, locat = j; /* the first `loc(` that starts the rest or follows three spaces */
      break;
    }
    blank &= p->src[j] == ' ' || p->src[j] == '\t';
  }
  while (s < end && p->src[s] == ' ') s++;
  while (end > s && (p->src[end - 1] == ' ' || p->src[end - 1] == '\t' || p->src[end - 1] == '\r')) end--;
  for (size_t j = s; j < end; j++)
    if ((unsigned char)p->src[j] < 0x20 && p->src[j] != '\t')
      return txt_fail(p, (SrcLoc){p->file, p->line, p->col}, "control character in a kernel's description");
  if (end > s) k->what = arena_strndup(&r->p->arena, p->src + s, end - s);
  while (p->pos < locat) { /* on to the location (or the end of the line) */
    p->col++;
    p->pos++;
  }
  TRY(txt_next(p));
  return txt_parse_opt_loc(p, &k->loc);
}

/* ['vars' INT] ['temps' {('f32' | 'i32')}] NEWLINE: counts the body does
 * not imply.  *vars is -1 and *ntypes 0 when absent. */
static bool parse_counts(KReader *r, int64_t *vars, DType **types, int32_t *ntypes) {
  TextReader *p = T(r);
  if (txt_is_word(p, "vars")) {
    TRY(txt_next(p));
    TRY(txt_expect_int(p, "count of loop variables", 0, MAX_IDS, vars));
  }
  if (txt_is_word(p, "temps")) {
    TRY(txt_next(p));
    int32_t cap = 0;
    while (txt_is_word(p, "f32") || txt_is_word(p, "i32")) {
      if (*ntypes == MAX_IDS) return txt_fail(p, p->tok.loc, "a kernel has at most %d temporaries", MAX_IDS);
      if (*ntypes == cap) {
        cap = cap ? 2 * cap : 16;
        *types = nnc_xrealloc(*types, sizeof **types * (size_t)cap);
      }
      (*types)[(*ntypes)++] = txt_is_word(p, "f32") ? DT_F32 : DT_I32;
      TRY(txt_next(p));
    }
  }
  return txt_expect_eol(p, "after the kernel's counts");
}

/* The declared counts against the body's: as many or more, the same dtypes. */
static bool apply_counts(KReader *r, Kernel *k, SrcLoc at, int64_t vars, const DType *types, int32_t ntypes) {
  if (vars >= 0 && vars < r->nvars)
    return txt_fail(T(r), at, "the kernel uses v%d, but has vars %lld", r->nvars - 1, (long long)vars);
  if (vars >= 0) k->nvars = (int32_t)vars;
  if (!ntypes) return true;
  if (ntypes < r->nttype)
    return txt_fail(T(r), at, "the kernel uses t%d, but lists %d temps", r->nttype - 1, ntypes);
  for (int32_t t = 0; t < r->nttype; t++)
    if (r->ttype[t] >= 0 && (DType)r->ttype[t] != types[t])
      return txt_fail(T(r), at, "t%d is listed as %s, but defined as %s", t, dtype_name(types[t]),
                      dtype_name((DType)r->ttype[t]));
  k->ntemps = ntypes;
  k->temp_types = arena_alloc(&r->p->arena, sizeof(DType) * (size_t)ntypes);
  memcpy(k->temp_types, types, sizeof(DType) * (size_t)ntypes);
  return true;
}

/* 'kernel' NAME '(' [%N {',' %N}] ')' [';' WHAT] [LOC] NEWLINE [COUNTS] {STMT} */
static bool parse_kernel(KReader *r) {
  TextReader *p = T(r);
  KProgram *kp = r->p;
  SrcLoc at = p->tok.loc;
  TRY(txt_enter_phase(p, 3, at));
  TRY(txt_next(p));
  if (!kernel_name_ok(&p->tok))
    return txt_fail(p, p->tok.loc, "expected a kernel name kN_NAME (k3_matmul), found %s", txt_desc(&p->tok));
  Kernel *k = kprog_add_kernel(kp, "");
  k->name = arena_strndup(&kp->arena, p->tok.start, p->tok.len);
  r->kidx = (int32_t)kp->nkernels - 1;
  r->nvars = r->nttype = 0;
  if (kp->nkernels > r->capkernloc) {
    r->capkernloc = 2 * kp->nkernels + 16;
    r->kernloc = nnc_xrealloc(r->kernloc, sizeof *r->kernloc * r->capkernloc);
  }
  r->kernloc[r->kidx] = at;
  TRY(txt_next(p));
  TRY(txt_expect_punct(p, '(', "after the kernel's name"));
  while (!txt_is_punct(p, ')')) {
    if (k->nargs && !txt_expect_punct(p, ',', "or ')' between the kernel's buffers")) return false;
    if (p->tok.kind != T_VALUE) return txt_fail(p, p->tok.loc, "expected a buffer (%%N), found %s", txt_desc(&p->tok));
    if (p->tok.value >= kp->nbufs) return txt_fail(p, p->tok.loc, "unknown buffer %%%u", p->tok.value);
    if (k->nargs == MAX_KERNEL_ARGS) return txt_fail(p, p->tok.loc, "a kernel takes at most %d buffers", MAX_KERNEL_ARGS);
    int32_t *args = arena_alloc(&kp->arena, sizeof(int32_t) * (k->nargs + 1));
    if (k->nargs) memcpy(args, k->args, sizeof(int32_t) * k->nargs);
    args[k->nargs++] = (int32_t)p->tok.value; /* duplicates are the verifier's to report */
    k->args = args;
    TRY(txt_next(p));
  }
  TRY(parse_description(r, k));
  TRY(txt_expect_eol(p, "after the kernel's line"));
  int64_t vars = -1;
  DType *types = NULL;
  int32_t ntypes = 0;
  bool ok = true;
  while (ok && p->tok.kind == T_NEWLINE) ok = txt_next(p);
  if (ok && (txt_is_word(p, "vars") || txt_is_word(p, "temps"))) ok = parse_counts(r, &vars, &types, &ntypes);
  while (ok) {
    while (ok && p->tok.kind == T_NEWLINE) ok = txt_next(p);
    if (!ok || !at_stmt(r)) break;
    KStmt *s = NULL;
    ok = parse_stmt(r, &s);
    k = cur(r);
    if (s) kstmt_append(&k->body, &k->nbody, &k->capbody, s);
  }
  if (!ok) {
    free(types);
    return false;
  }
  k = cur(r);
  k->nvars = r->nvars;
  k->ntemps = r->nttype;
  k->temp_types = arena_alloc(&kp->arena, sizeof(DType) * (size_t)(r->nttype + 1));
  for (int32_t t = 0; t < r->nttype; t++) k->temp_types[t] = r->ttype[t] < 0 ? DT_F32 : (DType)r->ttype[t];
  ok = apply_counts(r, k, at, vars, types, ntypes);
  free(types);
  return ok;
}

static int name_cmp(const void *a, const void *b) {
  const Kernel *const *x = a, *const *y = b;
  int c = strcmp((*x)->name, (*y)->name);
  return c ? c : (*x < *y ? -1 : *x > *y);
}

/* The kernel named name[0, len) by binary search in sorted (by name), or -1. */
static int32_t find_kernel(const KProgram *kp, const Kernel **sorted, const char *name, size_t len) {
  size_t lo = 0, hi = kp->nkernels;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strncmp(sorted[mid]->name, name, len);
    if (c == 0 && sorted[mid]->name[len]) c = 1; /* longer: after name */
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  if (lo == kp->nkernels || strncmp(sorted[lo]->name, name, len) || sorted[lo]->name[len]) return -1;
  return (int32_t)(sorted[lo] - kp->kernels);
}

/* ('train' | 'eval') ':' {NAME} */
static bool parse_plan(KReader *r, const Kernel **sorted) {
  TextReader *p = T(r);
  KProgram *kp = r->p;
  SrcLoc at = p->tok.loc;
  bool train = txt_is_word(p, "train");
  TRY(txt_enter_phase(p, 4, at));
  if (train ? r->have_train : r->have_eval) return txt_fail(p, at, "duplicate %s plan", train ? "train" : "eval");
  if (!r->have_train && !r->have_eval) r->plan_loc = at;
  *(train ? &r->have_train : &r->have_eval) = true;
  TRY(txt_next(p));
  TRY(txt_expect_punct(p, ':', "after the plan's name"));
  while (p->tok.kind == T_IDENT) {
    int32_t k = find_kernel(kp, sorted, p->tok.start, p->tok.len);
    if (k < 0) return txt_fail(p, p->tok.loc, "unknown kernel %s", txt_desc(&p->tok));
    if (train) VEC_PUSH(kp->train, kp->ntrain, kp->captrain, (uint32_t)k);
    else VEC_PUSH(kp->eval, kp->neval, kp->capeval, (uint32_t)k);
    TRY(txt_next(p));
  }
  return txt_expect_eol(p, "after the plan's kernels");
}

/* Is the current `train` word a plan line (`train:`) rather than the train settings? */
static bool train_plan(const TextReader *p) {
  size_t i = p->pos;
  while (i < p->len && (p->src[i] == ' ' || p->src[i] == '\t')) i++;
  return i < p->len && p->src[i] == ':';
}

/* The kernels sorted by name, for plan lines; a duplicate name is an error. */
static bool sort_kernels(KReader *r, const Kernel ***sorted) {
  KProgram *kp = r->p;
  *sorted = nnc_xmalloc(sizeof **sorted * (kp->nkernels + 1));
  for (uint32_t i = 0; i < kp->nkernels; i++) (*sorted)[i] = &kp->kernels[i];
  qsort(*sorted, kp->nkernels, sizeof **sorted, name_cmp);
  for (uint32_t i = 1; i < kp->nkernels; i++)
    if (!strcmp((*sorted)[i]->name, (*sorted)[i - 1]->name)) {
      const Kernel *second = (*sorted)[i];
      return txt_fail(T(r), r->kernloc[second - kp->kernels], "duplicate kernel name %s", second->name);
    }
  return true;
}

/* FILE := {DECLARATION} {BUFFER} {KERNEL} [TRAIN-PLAN] [EVAL-PLAN] */
static bool parse_file(KReader *r) {
  TextReader *p = T(r);
  const Kernel **sorted = NULL;
  bool ok = txt_next(p);
  while (ok) {
    while (ok && p->tok.kind == T_NEWLINE) ok = txt_next(p);
    if (!ok || p->tok.kind == T_EOF) break;
    bool plan = (txt_is_word(p, "train") && train_plan(p)) || txt_is_word(p, "eval");
    if (plan && !sorted) ok = sort_kernels(r, &sorted);
    if (!ok) break;
    if (plan) {
      ok = parse_plan(r, sorted);
      continue;
    }
    bool done = false;
    ok = txt_parse_decl(p, &done);
    if (ok && !done) {
      if (txt_is_word(p, "buffer")) ok = parse_buffer(r);
      else if (txt_is_word(p, "kernel")) ok = parse_kernel(r);
      else if (at_stmt(r))
        ok = fail(r, p->tok.loc, "a statement outside a kernel");
      else
        ok = txt_fail(p, p->tok.loc, "expected a declaration, a buffer, a kernel or a plan, found %s",
                      txt_desc(&p->tok));
    }
  }
  free(sorted);
  return ok && txt_resolve_owners(p);
}

/* The memory plan, when the temps have slots: every slot below the count of temps. */
static bool check_slots(KReader *r) {
  KProgram *kp = r->p;
  int32_t ntemps = 0, planned = 0, top = -1;
  for (uint32_t i = 0; i < kp->nbufs; i++) {
    const KBuffer *b = &kp->bufs[i];
    if (b->kind != KB_TEMP) continue;
    ntemps++;
    planned += b->slot >= 0;
    if (b->slot > top) top = b->slot;
  }
  for (uint32_t i = 0; i < kp->nbufs; i++) {
    const KBuffer *b = &kp->bufs[i];
    if (b->kind != KB_TEMP) continue;
    if (planned && b->slot < 0)
      return fail(r, r->bufloc[i], "temp without a slot in a program with a memory plan (give every temp one, or none)");
    if (b->slot >= ntemps)
      return txt_fail(T(r), r->bufloc[i], "slot %d is out of range: %d temps share slots 0 to %d", b->slot, ntemps,
                      ntemps - 1);
  }
  kp->nslots = top + 1;
  return true;
}

static void report(void *ctx, const KProblem *pr) {
  KReader *r = ctx;
  SrcLoc at = {r->t.file, 1, 1};
  if (pr->expr) at = kread_where(r, pr->expr);
  else if (pr->stmt) at = kread_where(r, pr->stmt);
  else if (pr->kernel >= 0) at = r->kernloc[pr->kernel];
  else if (pr->buf >= 0) at = r->bufloc[pr->buf];
  else if (r->have_train || r->have_eval) at = r->plan_loc;
  txt_fail(&r->t, at, "%s", pr->msg);
}

KProgram *kprog_read(uint32_t diag_file_id, Module **module) {
  static const char *const phases[] = {"", "declarations", "buffers", "kernels", "plans"};
  KReader r;
  memset(&r, 0, sizeof r);
  txt_init(&r.t, diag_file_id, true, phases);
  r.p = kprog_new(r.t.m);
  r.kidx = -1;
  bool ok = parse_file(&r) && check_slots(&r);
  if (ok && !r.t.failed) ok = kprog_check(r.p, report, &r);
  txt_done(&r.t);
  free(r.ttype);
  free(r.locs);
  free(r.bufloc);
  free(r.kernloc);
  free(r.forced);
  free(r.sym_has_buf);
  if (!ok || r.t.failed) {
    kprog_free(r.p);
    ir_module_free(r.t.m);
    *module = NULL;
    return NULL;
  }
  *module = r.t.m;
  return r.p;
}
