/* ir/read.c - the graph IR's text form: text -> module (docs/ir.md).
 *
 * A hand-written lexer and a recursive-descent parser over the text of a
 * file registered with the diagnostics engine.  The language is line based:
 * every line is one declaration, one node or one output, so the parser is a
 * loop over lines with one function per line kind and never recurses.
 *
 * The reader stops at the first error: it reports it at its exact line:col
 * (`use of undefined value %12`), frees what it built and returns NULL.  It
 * checks as it goes everything it can point at (names, kinds, arity,
 * operands, bounds, the shape rule of every node), then runs the verifier as
 * a last safety net.  Input is untrusted: every number is bounded before it
 * is used, nothing is allocated from a count read from the input, and
 * arbitrary bytes (NULs included) only ever produce a diagnostic.
 */
#include "support/diag.h"
#include "ir/ir.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tokens ---------------------------------------------------------------- */

typedef enum {
  T_EOF,
  T_NEWLINE,
  T_IDENT,  /* [A-Za-z_][A-Za-z0-9_]* */
  T_NUMBER, /* -12, 0.001, 1e-8, inf, -inf, nan */
  T_STRING, /* "..." (str: decoded) */
  T_SYM,    /* @name or @"name" (str: decoded) */
  T_VALUE,  /* %12 (value) */
  T_PUNCT,  /* one of = : , [ ] ( ) (punct) */
} TokKind;

typedef struct Token {
  TokKind kind;
  const char *start; /* the token's text in the source */
  size_t len;
  SrcLoc loc;
  double num;        /* T_NUMBER */
  bool is_int;       /* T_NUMBER written as -?[0-9]+ */
  bool int_ok;       /* ... and it fits in int64 (ival) */
  int64_t ival;
  char *str;         /* T_STRING, T_SYM: decoded, NUL-terminated, in the arena */
  uint32_t value;    /* T_VALUE */
  char punct;        /* T_PUNCT */
} Token;

/* Symbol names are unique per group; the group is what a reference can
 * mean: an `input` node names an input or a label, an `update` output a
 * param or a state. */
static int sym_group(SymKind k) { return k <= SYM_LABEL ? 0 : k <= SYM_STATE ? 1 : 2; }

typedef struct PendingOwner {
  uint32_t state; /* the state symbol */
  const char *name;
  SrcLoc loc;
} PendingOwner;

typedef struct Parser {
  const char *src;
  size_t len, pos;
  uint32_t line, col;     /* of pos */
  uint32_t file;          /* diagnostics file id */
  Token tok;              /* the current token */
  bool failed;            /* an error was reported: unwind */
  Module *m;
  int phase;              /* 0 start, 1 declarations, 2 nodes, 3 outputs */
  bool have_module, have_loss;
  SrcLoc *symdef;         /* where each symbol was declared */
  uint32_t nsymdef, capsymdef;
  uint32_t *hash;         /* open addressing over symbols: index + 1, 0 = empty */
  uint32_t hashcap;
  PendingOwner *owners;
  uint32_t nowners, capowners;
  IrLoc *chain;           /* scratch for loc(...) */
  uint32_t nchain, capchain;
} Parser;

#define TRY(x)                                                                 \
  do {                                                                         \
    if (!(x)) return false;                                                    \
  } while (0)

/* Reports the first error only; the parser unwinds after it. */
static bool fail(Parser *p, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(Parser *p, SrcLoc loc, const char *fmt, ...) {
  if (p->failed) return false;
  p->failed = true;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  diag_error(loc, "%s", msg);
  return false;
}

/* How the current token reads in "found ..." messages. */
static const char *tok_desc(const Token *t) {
  static char buf[4][300];
  static int next;
  char *b = buf[next++ & 3];
  switch (t->kind) {
  case T_EOF: return "end of file";
  case T_NEWLINE: return "end of line";
  default: snprintf(b, sizeof buf[0], "'%s'", diag_quote(t->start, t->len)); return b;
  }
}

/* ---- lexer ----------------------------------------------------------------- */

static int peekc(const Parser *p, size_t k) { return p->pos + k < p->len ? (unsigned char)p->src[p->pos + k] : -1; }

static void advance(Parser *p) {
  if (p->pos >= p->len) return;
  if (p->src[p->pos] == '\n') p->line++, p->col = 1;
  else p->col++;
  p->pos++;
}

static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_alnum(int c) { return is_alpha(c) || is_digit(c); }
static bool is_name_char(int c) { return is_alnum(c) || c == '.' || c == '/'; }
static int hex_value(int c) {
  return is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

static SrcLoc here(const Parser *p) { return (SrcLoc){p->file, p->line, p->col}; }

/* "..." at pos: decodes \" \\ \n \t \r \xHH into the module's arena. */
static bool lex_string(Parser *p, char **out) {
  SrcLoc open = here(p);
  advance(p);
  size_t start = p->pos, n = 0;
  /* First pass: find the end and check escapes. */
  for (;;) {
    int c = peekc(p, 0);
    if (c < 0 || c == '\n') return fail(p, open, "unterminated string");
    if (c == '"') break;
    if (c == '\\') {
      SrcLoc at = here(p);
      int e = peekc(p, 1);
      if (e == 'x') {
        int h1 = hex_value(peekc(p, 2)), h2 = h1 < 0 ? -1 : hex_value(peekc(p, 3));
        if (h1 < 0 || h2 < 0) return fail(p, at, "expected two hex digits after '\\x'");
        if (h1 == 0 && h2 == 0) return fail(p, at, "a string cannot contain a NUL byte");
        advance(p), advance(p), advance(p), advance(p);
      } else if (e == '"' || e == '\\' || e == 'n' || e == 't' || e == 'r') {
        advance(p), advance(p);
      } else {
        return fail(p, at, "unknown escape '\\%s' in a string",
                    e < 0 ? "" : diag_quote(p->src + p->pos + 1, 1));
      }
    } else if (c < 0x20 || c == 0x7f) {
      return fail(p, here(p), "control character in a string (write it as \\x%02x)", c);
    } else {
      advance(p);
    }
    n++;
  }
  size_t end = p->pos;
  advance(p); /* closing quote */
  char *s = arena_alloc(&p->m->arena, n + 1), *o = s;
  for (size_t i = start; i < end;) {
    char c = p->src[i];
    if (c != '\\') {
      *o++ = c, i++;
      continue;
    }
    char e = p->src[i + 1];
    if (e == 'x') {
      *o++ = (char)(hex_value((unsigned char)p->src[i + 2]) * 16 + hex_value((unsigned char)p->src[i + 3]));
      i += 4;
    } else {
      *o++ = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
      i += 2;
    }
  }
  *o = 0;
  *out = s;
  return true;
}

/* -?([0-9]+(.[0-9]*)?|.[0-9]+)([eE][-+]?[0-9]+)? | -?inf | -?nan */
static bool lex_number(Parser *p, Token *t) {
  size_t s = p->pos;
  const char *src = p->src;
  size_t i = s;
  bool neg = false;
  if (i < p->len && src[i] == '-') neg = true, i++;
  t->is_int = false;
  if (i < p->len && is_alpha((unsigned char)src[i])) {
    size_t w = i;
    while (w < p->len && is_alnum((unsigned char)src[w])) w++;
    if (w - i == 3 && !memcmp(src + i, "inf", 3)) t->num = neg ? -INFINITY : INFINITY;
    else if (w - i == 3 && !memcmp(src + i, "nan", 3)) t->num = NAN;
    else return fail(p, here(p), "malformed number '%s'", diag_quote(src + s, w - s));
    i = w;
  } else {
    size_t digits = 0, d0 = i;
    while (i < p->len && is_digit((unsigned char)src[i])) i++, digits++;
    bool is_int = true;
    if (i < p->len && src[i] == '.') {
      is_int = false;
      i++;
      while (i < p->len && is_digit((unsigned char)src[i])) i++, digits++;
    }
    bool bad = digits == 0;
    if (!bad && i < p->len && (src[i] == 'e' || src[i] == 'E')) {
      is_int = false;
      i++;
      if (i < p->len && (src[i] == '-' || src[i] == '+')) i++;
      size_t e0 = i;
      while (i < p->len && is_digit((unsigned char)src[i])) i++;
      if (i == e0) bad = true;
    }
    if (bad || (i < p->len && (is_name_char((unsigned char)src[i]) || src[i] == '-' || src[i] == '+'))) {
      while (i < p->len && (is_name_char((unsigned char)src[i]) || src[i] == '-' || src[i] == '+')) i++;
      return fail(p, here(p), "malformed number '%s'", diag_quote(src + s, i - s));
    }
    if (i - s > 400) return fail(p, here(p), "number is too long");
    char buf[408];
    memcpy(buf, src + s, i - s);
    buf[i - s] = 0;
    t->num = strtod(buf, NULL);
    t->is_int = is_int;
    if (is_int) {
      /* Exact integer value, with overflow detection. */
      uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
      t->int_ok = true;
      for (size_t k = d0; k < i; k++) {
        unsigned d = (unsigned)(src[k] - '0');
        if (v > (limit - d) / 10) {
          t->int_ok = false;
          break;
        }
        v = v * 10 + d;
      }
      t->ival = !t->int_ok ? 0 : neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    }
  }
  if (i < p->len && is_name_char((unsigned char)src[i])) {
    size_t w = i;
    while (w < p->len && is_name_char((unsigned char)src[w])) w++;
    return fail(p, here(p), "malformed number '%s'", diag_quote(src + s, w - s));
  }
  t->kind = T_NUMBER;
  while (p->pos < i) advance(p);
  return true;
}

/* Reads the next token into p->tok.  Skips spaces, tabs, CRs and comments
 * (';' to the end of the line). */
static bool next(Parser *p) {
  Token *t = &p->tok;
  for (;;) {
    int c = peekc(p, 0);
    if (c == ' ' || c == '\t' || c == '\r') advance(p);
    else if (c == ';')
      while (p->pos < p->len && p->src[p->pos] != '\n') advance(p);
    else break;
  }
  memset(t, 0, sizeof *t);
  t->start = p->src + p->pos;
  t->loc = here(p);
  int c = peekc(p, 0), c1 = peekc(p, 1);
  if (c < 0) {
    t->kind = T_EOF;
  } else if (c == '\n') {
    t->kind = T_NEWLINE;
    advance(p);
  } else if (is_alpha(c)) {
    t->kind = T_IDENT;
    while (is_alnum(peekc(p, 0))) advance(p);
  } else if (is_digit(c) || (c == '-' && (is_digit(c1) || c1 == '.' || is_alpha(c1))) || (c == '.' && is_digit(c1))) {
    TRY(lex_number(p, t));
  } else if (c == '%') {
    if (!is_digit(c1)) return fail(p, t->loc, "expected a value number after '%%'");
    advance(p);
    uint64_t v = 0;
    while (is_digit(peekc(p, 0))) {
      v = v * 10 + (uint64_t)(peekc(p, 0) - '0');
      if (v >= UINT32_MAX) return fail(p, t->loc, "value number is too large");
      advance(p);
    }
    if (is_name_char(peekc(p, 0)))
      return fail(p, here(p), "unexpected '%s' after a value number", diag_quote(p->src + p->pos, 1));
    t->kind = T_VALUE;
    t->value = (uint32_t)v;
  } else if (c == '@') {
    advance(p);
    if (peekc(p, 0) == '"') {
      TRY(lex_string(p, &t->str));
    } else if (is_alpha(peekc(p, 0))) {
      size_t s = p->pos;
      while (is_name_char(peekc(p, 0))) advance(p);
      t->str = arena_strndup(&p->m->arena, p->src + s, p->pos - s);
    } else {
      return fail(p, t->loc, "expected a name after '@'");
    }
    t->kind = T_SYM;
  } else if (c == '"') {
    t->kind = T_STRING;
    TRY(lex_string(p, &t->str));
  } else if (c != 0 && strchr("=:,[]()", c)) {
    t->kind = T_PUNCT;
    t->punct = (char)c;
    advance(p);
  } else {
    /* One whole UTF-8 sequence when it is one, for a readable message. */
    size_t k = 1;
    while (k < 4 && (c & 0x80) && (peekc(p, k) & 0xC0) == 0x80) k++;
    return fail(p, t->loc, "unexpected character '%s'", diag_quote(p->src + p->pos, k));
  }
  t->len = (size_t)(p->src + p->pos - t->start);
  return true;
}

/* ---- token helpers ------------------------------------------------------------ */

static bool is_punct(const Parser *p, char c) { return p->tok.kind == T_PUNCT && p->tok.punct == c; }
static bool is_word(const Parser *p, const char *w) {
  return p->tok.kind == T_IDENT && p->tok.len == strlen(w) && !memcmp(p->tok.start, w, p->tok.len);
}

/* expect(p, ':', "before the type") -> "expected ':' before the type, found 'f32'" */
static bool expect_punct(Parser *p, char c, const char *context) {
  if (!is_punct(p, c))
    return fail(p, p->tok.loc, "expected '%c'%s%s, found %s", c, *context ? " " : "", context, tok_desc(&p->tok));
  return next(p);
}

static bool expect_word(Parser *p, const char *w, const char *context) {
  if (!is_word(p, w))
    return fail(p, p->tok.loc, "expected '%s'%s%s, found %s", w, *context ? " " : "", context, tok_desc(&p->tok));
  return next(p);
}

static bool expect_sym(Parser *p, const char *what, char **name, SrcLoc *loc) {
  if (p->tok.kind != T_SYM) return fail(p, p->tok.loc, "expected %s, found %s", what, tok_desc(&p->tok));
  *name = p->tok.str;
  *loc = p->tok.loc;
  return next(p);
}

static bool expect_string(Parser *p, const char *what, char **s) {
  if (p->tok.kind != T_STRING) return fail(p, p->tok.loc, "expected %s, found %s", what, tok_desc(&p->tok));
  *s = p->tok.str;
  return next(p);
}

/* NUMBER, or the words inf and nan. */
static bool expect_number(Parser *p, const char *what, double *v) {
  if (p->tok.kind == T_NUMBER) *v = p->tok.num;
  else if (is_word(p, "inf")) *v = INFINITY;
  else if (is_word(p, "nan")) *v = NAN;
  else return fail(p, p->tok.loc, "expected %s, found %s", what, tok_desc(&p->tok));
  return next(p);
}

/* An integer in [lo, hi]. */
static bool expect_int(Parser *p, const char *what, int64_t lo, int64_t hi, int64_t *v) {
  Token *t = &p->tok;
  if (t->kind != T_NUMBER || !t->is_int) return fail(p, t->loc, "expected %s, found %s", what, tok_desc(t));
  if (!t->int_ok || t->ival < lo || t->ival > hi)
    return fail(p, t->loc, "%s %s is out of range (%lld to %lld)", what, diag_quote(t->start, t->len),
                (long long)lo, (long long)hi);
  *v = t->ival;
  return next(p);
}

static bool expect_eol(Parser *p, const char *context) {
  if (p->tok.kind != T_NEWLINE && p->tok.kind != T_EOF)
    return fail(p, p->tok.loc, "expected end of line %s, found %s", context, tok_desc(&p->tok));
  return true;
}

/* ---- symbols ------------------------------------------------------------------- */

static uint32_t hash_name(int group, const char *s) {
  uint32_t h = 2166136261u ^ (uint32_t)group;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* The symbol of `group` named `name`, or -1. */
static int64_t find_sym(const Parser *p, int group, const char *name) {
  if (!p->hashcap) return -1;
  for (uint32_t i = hash_name(group, name) & (p->hashcap - 1);; i = (i + 1) & (p->hashcap - 1)) {
    uint32_t e = p->hash[i];
    if (!e) return -1;
    const Symbol *s = &p->m->syms[e - 1];
    if (sym_group(s->kind) == group && !strcmp(s->name, name)) return e - 1;
  }
}

static void hash_insert(Parser *p, uint32_t sym) {
  if (2 * (p->m->nsyms + 1) > p->hashcap) {
    free(p->hash);
    p->hashcap = p->hashcap ? 2 * p->hashcap : 64;
    p->hash = nnc_xcalloc(p->hashcap, sizeof *p->hash);
    for (uint32_t s = 0; s < p->m->nsyms; s++) hash_insert(p, s);
    if (sym < p->m->nsyms) return; /* rehashed, including sym */
  }
  const Symbol *s = &p->m->syms[sym];
  uint32_t i = hash_name(sym_group(s->kind), s->name) & (p->hashcap - 1);
  while (p->hash[i]) i = (i + 1) & (p->hashcap - 1);
  p->hash[i] = sym + 1;
}

static const char *kind_article(SymKind k) { return k == SYM_INPUT ? "an" : "a"; }

/* Resolves a reference to a symbol of `kind` (SYM_INPUT also takes labels;
 * `either_state` makes a param reference also take states). */
static bool resolve_sym(Parser *p, const char *name, SrcLoc loc, SymKind kind, bool either_state,
                        const char *user, uint32_t *out) {
  int64_t s = find_sym(p, sym_group(kind), name);
  if (s >= 0 && (p->m->syms[s].kind == kind || kind == SYM_INPUT || either_state)) {
    *out = (uint32_t)s;
    return true;
  }
  if (s < 0)
    for (int g = 0; g < 3 && s < 0; g++) s = find_sym(p, g, name);
  if (s < 0) return fail(p, loc, "unknown symbol @%s", diag_quote(name, strlen(name)));
  SymKind found = p->m->syms[s].kind;
  return fail(p, loc, "%s needs %s %s%s, but @%s is %s %s", user, kind_article(kind), sym_kind_name(kind),
              either_state ? " or a state" : kind == SYM_INPUT ? " or a label" : "",
              diag_quote(name, strlen(name)), kind_article(found), sym_kind_name(found));
}

/* ---- types, initializers, locations ------------------------------------------------- */

/* TYPE := ('f32' | 'i32') ['[' DIM {',' DIM} ']'],  DIM := 'B' (first only) | INT */
static bool parse_type(Parser *p, Type *out) {
  Token *t = &p->tok;
  DType dt;
  if (is_word(p, "f32")) dt = DT_F32;
  else if (is_word(p, "i32")) dt = DT_I32;
  else if (t->kind == T_IDENT)
    return fail(p, t->loc, "unknown type '%s' (expected f32 or i32)", diag_quote(t->start, t->len));
  else return fail(p, t->loc, "expected a type, found %s", tok_desc(t));
  *out = type_scalar(dt);
  TRY(next(p));
  if (!is_punct(p, '[')) return true;
  TRY(next(p));
  int64_t numel = 1;
  for (int i = 0;; i++) {
    if (is_word(p, "B")) {
      if (i != 0) return fail(p, t->loc, "the batch axis B must come first");
      out->batched = true;
      TRY(next(p));
    } else {
      if (out->rank == NNC_MAX_RANK) return fail(p, t->loc, "a type has at most %d axes", NNC_MAX_RANK);
      SrcLoc at = t->loc;
      int64_t d = 1;
      TRY(expect_int(p, "dimension", 1, NNC_MAX_DIM, &d));
      if (numel > NNC_MAX_ELEMS / d)
        return fail(p, at, "a tensor has at most %lld elements", (long long)NNC_MAX_ELEMS);
      numel *= d;
      out->dims[out->rank++] = d;
    }
    if (is_punct(p, ']')) break;
    TRY(expect_punct(p, ',', "or ']' in the type"));
  }
  return next(p);
}

/* INIT := 'zeros()' | 'ones()' | 'full(' NUM ')' | 'uniform(' NUM ',' NUM ')'
 *       | 'normal(' NUM ')' | 'glorot_uniform()' | 'he_normal()' */
static bool parse_init(Parser *p, Init *init) {
  static const struct { const char *name; InitKind kind; int nargs; } inits[] = {
      {"zeros", INIT_ZEROS, 0},   {"ones", INIT_ONES, 0},     {"full", INIT_FULL, 1},
      {"uniform", INIT_UNIFORM, 2}, {"normal", INIT_NORMAL, 1}, {"glorot_uniform", INIT_GLOROT_UNIFORM, 0},
      {"he_normal", INIT_HE_NORMAL, 0},
  };
  Token *t = &p->tok;
  if (t->kind != T_IDENT) return fail(p, t->loc, "expected an initializer, found %s", tok_desc(t));
  int k = -1;
  for (int i = 0; i < (int)(sizeof inits / sizeof inits[0]); i++)
    if (is_word(p, inits[i].name)) k = i;
  if (k < 0) return fail(p, t->loc, "unknown initializer '%s'", diag_quote(t->start, t->len));
  SrcLoc at = t->loc;
  memset(init, 0, sizeof *init);
  init->kind = inits[k].kind;
  TRY(next(p));
  TRY(expect_punct(p, '(', "after the initializer name"));
  double args[2] = {0, 0};
  int n = 0;
  while (!is_punct(p, ')')) {
    if (n == inits[k].nargs)
      return fail(p, at, "%s takes %d argument%s", inits[k].name, inits[k].nargs, inits[k].nargs == 1 ? "" : "s");
    if (n > 0) TRY(expect_punct(p, ',', "between arguments"));
    TRY(expect_number(p, "a number", &args[n]));
    n++;
  }
  if (n != inits[k].nargs)
    return fail(p, at, "%s takes %d argument%s, found %d", inits[k].name, inits[k].nargs,
                inits[k].nargs == 1 ? "" : "s", n);
  init->a = args[0];
  init->b = args[1];
  return next(p);
}

/* LOC := 'loc(' STRING ':' INT ':' INT {'at' STRING ':' INT ':' INT} ')'
 * The first entry is the innermost; each 'at' is the call it was inlined
 * into.  The chain is rebuilt from the outermost entry with ir_loc. */
static bool parse_loc(Parser *p, uint32_t *out) {
  TRY(next(p)); /* 'loc' */
  TRY(expect_punct(p, '(', "after 'loc'"));
  p->nchain = 0;
  for (;;) {
    char *file = NULL;
    int64_t line = 0, col = 0;
    TRY(expect_string(p, "a file name in quotes", &file));
    TRY(expect_punct(p, ':', "after the file name"));
    TRY(expect_int(p, "line", 1, UINT32_MAX, &line));
    TRY(expect_punct(p, ':', "after the line"));
    TRY(expect_int(p, "column", 0, UINT32_MAX, &col));
    IrLoc l = {*file ? ir_file(p->m, file) : 0, (uint32_t)line, (uint32_t)col, 0};
    VEC_PUSH(p->chain, p->nchain, p->capchain, l);
    if (is_punct(p, ')')) break;
    TRY(expect_word(p, "at", "or ')' in loc(...)"));
  }
  uint32_t parent = 0;
  for (uint32_t i = p->nchain; i-- > 0;)
    parent = ir_loc(p->m, p->chain[i].file, p->chain[i].line, p->chain[i].col, parent);
  *out = parent;
  return next(p);
}

static bool parse_opt_loc(Parser *p, uint32_t *out) {
  *out = 0;
  if (is_word(p, "loc")) return parse_loc(p, out);
  return true;
}

/* ---- lines ----------------------------------------------------------------------- */

static const char *phase_name(int phase) {
  return phase == 1 ? "declarations" : phase == 2 ? "nodes" : phase == 3 ? "outputs" : "";
}

/* Lines come in sections: declarations, then nodes, then outputs. */
static bool enter_phase(Parser *p, int phase, SrcLoc at) {
  if (p->phase > phase)
    return fail(p, at, "%s must come before the %s", phase_name(phase), phase_name(p->phase));
  p->phase = phase;
  return true;
}

/* 'module' SYM */
static bool parse_module(Parser *p) {
  SrcLoc at = p->tok.loc;
  if (p->have_module) return fail(p, at, "duplicate module line");
  if (p->phase > 0) return fail(p, at, "the module line must come first");
  p->have_module = true;
  TRY(next(p));
  char *name = NULL;
  SrcLoc nl = {0, 0, 0};
  TRY(expect_sym(p, "the module name (@name)", &name, &nl));
  p->m->name = name;
  return expect_eol(p, "after the module name");
}

/* ('input' | 'label') SYM ':' TYPE ['bound' INT] [LOC]
 * | ('param' | 'state') SYM ':' TYPE ['bound' INT] ['=' INIT] ['for' SYM] [LOC]
 * | 'hyper' SYM '=' NUMBER [LOC] */
static bool parse_symbol(Parser *p, SymKind kind) {
  TRY(enter_phase(p, 1, p->tok.loc));
  TRY(next(p));
  Symbol s;
  memset(&s, 0, sizeof s);
  s.kind = kind;
  char *name = NULL;
  SrcLoc nameloc = {0, 0, 0};
  TRY(expect_sym(p, "a symbol name (@name)", &name, &nameloc));
  int64_t dup = find_sym(p, sym_group(kind), name);
  if (dup >= 0) {
    const Symbol *d = &p->m->syms[dup];
    fail(p, nameloc, "redefinition of @%s", diag_quote(name, strlen(name)));
    diag_note(p->symdef[dup], "%s @%s was declared here", sym_kind_name(d->kind), diag_quote(name, strlen(name)));
    return false;
  }
  s.name = name;
  PendingOwner owner = {0, NULL, {0, 0, 0}};
  if (kind == SYM_HYPER) {
    s.type = type_scalar(DT_F32);
    TRY(expect_punct(p, '=', "before the value of the hyper-parameter"));
    TRY(expect_number(p, "a number", &s.value));
  } else {
    TRY(expect_punct(p, ':', "before the type"));
    SrcLoc tl = p->tok.loc;
    TRY(parse_type(p, &s.type));
    char tb[192];
    if ((kind == SYM_INPUT || kind == SYM_LABEL) && !s.type.batched)
      return fail(p, tl, "%ss are batched: the type must start with B, found %s", sym_kind_name(kind),
                  type_str(&s.type, tb, sizeof tb));
    if ((kind == SYM_PARAM || kind == SYM_STATE) && s.type.batched)
      return fail(p, tl, "%ss are not batched, found %s", sym_kind_name(kind), type_str(&s.type, tb, sizeof tb));
    if (is_word(p, "bound")) {
      TRY(next(p));
      TRY(expect_int(p, "bound", 1, (int64_t)1 << 31, &s.bound));
    }
    if ((kind == SYM_PARAM || kind == SYM_STATE) && is_punct(p, '=')) {
      TRY(next(p));
      TRY(parse_init(p, &s.init));
    }
    if (kind == SYM_PARAM && is_word(p, "nograd")) {
      TRY(next(p));
      s.no_grad = true;
    }
    if (kind == SYM_STATE) {
      TRY(expect_word(p, "for", "and the state's parameter"));
      owner.loc = p->tok.loc;
      char *oname = NULL;
      TRY(expect_sym(p, "the parameter (@name)", &oname, &owner.loc));
      owner.name = oname;
    }
  }
  TRY(parse_opt_loc(p, &s.loc));
  TRY(expect_eol(p, "after the declaration"));
  uint32_t id = ir_add_symbol(p->m, s);
  VEC_PUSH(p->symdef, p->nsymdef, p->capsymdef, nameloc);
  hash_insert(p, id);
  if (kind == SYM_STATE) {
    owner.state = id;
    VEC_PUSH(p->owners, p->nowners, p->capowners, owner);
  }
  return true;
}

/* 'train' [FIELD {',' FIELD}]
 * FIELD := 'data' '=' ('idx(' STRING ')' | 'csv(' STRING [',' 'test' '=' STRING] [',' 'label' '=' STRING] ')')
 *        | 'scale' '=' NUMBER | ('batch' | 'epochs' | 'seed') '=' INT
 *        | 'shuffle' '=' ('true' | 'false') | 'optimizer' '=' (IDENT | STRING) */
static bool parse_train(Parser *p) {
  static const char *fields[] = {"data", "scale", "batch", "epochs", "seed", "shuffle", "optimizer"};
  TRY(enter_phase(p, 1, p->tok.loc));
  TrainSpec *t = &p->m->train;
  if (t->present) return fail(p, p->tok.loc, "duplicate train line");
  t->present = true;
  t->shuffle = true;
  TRY(next(p));
  unsigned seen = 0;
  while (p->tok.kind != T_NEWLINE && p->tok.kind != T_EOF) {
    if (seen) TRY(expect_punct(p, ',', "between train fields"));
    Token *k = &p->tok;
    if (k->kind != T_IDENT) return fail(p, k->loc, "expected a train field, found %s", tok_desc(k));
    int f = -1;
    for (int i = 0; i < 7; i++)
      if (is_word(p, fields[i])) f = i;
    if (f < 0) return fail(p, k->loc, "unknown train field '%s'", diag_quote(k->start, k->len));
    if (seen >> f & 1) return fail(p, k->loc, "duplicate train field '%s'", fields[f]);
    seen |= 1u << f;
    TRY(next(p));
    TRY(expect_punct(p, '=', "after the field name"));
    switch (f) {
    case 0: {
      char *path = NULL;
      if (is_word(p, "idx")) t->data = DATA_IDX;
      else if (is_word(p, "csv")) t->data = DATA_CSV;
      else return fail(p, p->tok.loc, "expected idx(...) or csv(...), found %s", tok_desc(&p->tok));
      TRY(next(p));
      TRY(expect_punct(p, '(', "after the data source"));
      TRY(expect_string(p, "a path in quotes", &path));
      t->data_path = path;
      while (t->data == DATA_CSV && is_punct(p, ',')) {
        TRY(next(p));
        char **slot = is_word(p, "test") ? (char **)&t->test_path : is_word(p, "label") ? (char **)&t->label : NULL;
        if (!slot) return fail(p, p->tok.loc, "expected 'test' or 'label', found %s", tok_desc(&p->tok));
        if (*slot) return fail(p, p->tok.loc, "duplicate csv option '%s'", diag_quote(p->tok.start, p->tok.len));
        TRY(next(p));
        TRY(expect_punct(p, '=', "after the option name"));
        TRY(expect_string(p, "a string", slot));
      }
      TRY(expect_punct(p, ')', "after the data source"));
      break;
    }
    case 1: {
      SrcLoc at = p->tok.loc;
      TRY(expect_number(p, "a number", &t->scale));
      if (!(fabs(t->scale) <= FLT_MAX) || (float)t->scale == 0) /* the trainer keeps it in f32; 0 is no scale */
        return fail(p, at, "scale must be a non-zero number within the f32 range, found %g", t->scale);
      break;
    }
    case 2: TRY(expect_int(p, "batch", 1, INT32_MAX, &t->batch)); break;
    case 3: TRY(expect_int(p, "epochs", 1, INT32_MAX, &t->epochs)); break;
    case 4: TRY(expect_int(p, "seed", INT64_MIN, INT64_MAX, &t->seed)); break;
    case 5:
      if (is_word(p, "true")) t->shuffle = true;
      else if (is_word(p, "false")) t->shuffle = false;
      else return fail(p, p->tok.loc, "expected true or false, found %s", tok_desc(&p->tok));
      TRY(next(p));
      break;
    case 6:
      if (p->tok.kind == T_IDENT) t->optimizer = arena_strndup(&p->m->arena, p->tok.start, p->tok.len);
      else if (p->tok.kind == T_STRING) t->optimizer = p->tok.str;
      else return fail(p, p->tok.loc, "expected an optimizer name, found %s", tok_desc(&p->tok));
      TRY(next(p));
      break;
    }
  }
  return true;
}

/* '[' [INT {',' INT}] ']' into vals (at most NNC_MAX_RANK entries, each < rank,
 * no duplicates); locs of the entries for messages. */
static bool parse_axis_list(Parser *p, const char *what, int rank, uint8_t *vals, int *n) {
  TRY(expect_punct(p, '[', what));
  *n = 0;
  unsigned seen = 0;
  while (!is_punct(p, ']')) {
    if (*n > 0) TRY(expect_punct(p, ',', "or ']'"));
    SrcLoc at = p->tok.loc;
    int64_t a = 0;
    TRY(expect_int(p, "axis", 0, NNC_MAX_RANK - 1, &a));
    if (a >= rank) return fail(p, at, "axis %lld is out of range for an operand of rank %d", (long long)a, rank);
    if (seen >> a & 1) return fail(p, at, "duplicate axis %lld", (long long)a);
    seen |= 1u << a;
    vals[(*n)++] = (uint8_t)a;
  }
  return next(p);
}

/* Checks a leaf's written type against what it must be. */
static bool check_leaf_type(Parser *p, const Node *n, SrcLoc tl) {
  char ta[192], tb[192];
  const char *opname = ir_ops[n->op].name;
  type_str(&n->type, ta, sizeof ta);
  switch (n->op) {
  case OP_CONST: {
    double c = n->attr.value;
    if (n->type.rank != 0 || n->type.batched) return fail(p, tl, "const must be a scalar (f32 or i32), found %s", ta);
    if (n->type.dtype == DT_I32 && !(c == trunc(c) && c >= -2147483648.0 && c <= 2147483647.0))
      return fail(p, tl, "an i32 const must be an integer in the i32 range");
    return true;
  }
  case OP_HYPER:
  case OP_STEP:
  case OP_BATCH_SIZE:
  case OP_TRAINING:
    if (n->type.dtype != DT_F32 || n->type.rank != 0 || n->type.batched)
      return fail(p, tl, "%s is an f32 scalar, found %s", opname, ta);
    return true;
  default: {
    const Symbol *s = &p->m->syms[n->attr.sym];
    if (!type_equal(&n->type, &s->type))
      return fail(p, tl, "type %s does not match the type of @%s, %s", ta, diag_quote(s->name, strlen(s->name)),
                  type_str(&s->type, tb, sizeof tb));
    return true;
  }
  }
}

/* NODE := VALUE '=' OPNAME [SYM] [NUMBER] [VALUE {',' VALUE}] ['axes' LIST] ['perm' LIST] ':' TYPE [LOC] */
static bool parse_node(Parser *p) {
  Module *m = p->m;
  TRY(enter_phase(p, 2, p->tok.loc));
  uint32_t id = p->tok.value;
  if (id != m->nnodes) {
    if (id < m->nnodes) return fail(p, p->tok.loc, "value %%%u is already defined", id);
    return fail(p, p->tok.loc, "value %%%u is defined out of order (expected %%%u)", id, m->nnodes);
  }
  TRY(next(p));
  TRY(expect_punct(p, '=', "after the value"));
  Token *t = &p->tok;
  if (t->kind != T_IDENT) return fail(p, t->loc, "expected an op name, found %s", tok_desc(t));
  int op = -1;
  for (int i = 0; i < OP_COUNT && op < 0; i++)
    if (is_word(p, ir_ops[i].name)) op = i;
  if (op < 0) return fail(p, t->loc, "unknown op '%s'", diag_quote(t->start, t->len));
  const OpInfo *info = &ir_ops[op];
  SrcLoc oploc = t->loc;
  Node n;
  memset(&n, 0, sizeof n);
  n.op = (Op)op;
  TRY(next(p));
  if (info->flags & OPF_SYM) {
    static const SymKind kinds[OP_COUNT] = {[OP_INPUT] = SYM_INPUT, [OP_PARAM] = SYM_PARAM, [OP_STATE] = SYM_STATE,
                                            [OP_GRAD] = SYM_PARAM,  [OP_HYPER] = SYM_HYPER};
    char *name = NULL;
    SrcLoc nl = {0, 0, 0};
    TRY(expect_sym(p, "a symbol (@name)", &name, &nl));
    TRY(resolve_sym(p, name, nl, kinds[op], false, info->name, &n.attr.sym));
  }
  if (info->flags & OPF_VALUE) TRY(expect_number(p, "a number", &n.attr.value));
  /* operands */
  int nargs = 0;
  while (p->tok.kind == T_VALUE || (nargs > 0 && is_punct(p, ','))) {
    if (nargs > 0) TRY(expect_punct(p, ',', "between operands"));
    if (p->tok.kind != T_VALUE) return fail(p, p->tok.loc, "expected an operand (%%N), found %s", tok_desc(&p->tok));
    if (nargs == info->arity)
      return fail(p, p->tok.loc, "%s takes %d operand%s", info->name, info->arity, info->arity == 1 ? "" : "s");
    if (p->tok.value >= m->nnodes) return fail(p, p->tok.loc, "use of undefined value %%%u", p->tok.value);
    n.args[nargs++] = p->tok.value;
    TRY(next(p));
  }
  if (nargs != info->arity)
    return fail(p, oploc, "%s takes %d operand%s, found %d", info->name, info->arity, info->arity == 1 ? "" : "s",
                nargs);
  n.nargs = (uint8_t)nargs;
  int rank0 = nargs ? m->nodes[n.args[0]].type.rank : 0;
  if (info->flags & OPF_AXES) {
    uint8_t axes[NNC_MAX_RANK];
    int na = 0;
    SrcLoc at = p->tok.loc;
    TRY(expect_word(p, "axes", "after the operand"));
    TRY(parse_axis_list(p, "after 'axes'", rank0, axes, &na));
    if (na == 0) return fail(p, at, "%s needs at least one axis", info->name);
    for (int i = 0; i < na; i++) n.attr.axes |= 1u << axes[i];
  }
  if (info->flags & OPF_WINDOW) {
    int64_t k, st, pad;
    TRY(expect_word(p, "window", "after the operands"));
    TRY(expect_int(p, "a window size", 1, 65535, &k));
    TRY(expect_word(p, "stride", "after the window size"));
    TRY(expect_int(p, "a stride", 1, 65535, &st));
    TRY(expect_word(p, "pad", "after the stride"));
    TRY(expect_int(p, "a padding", 0, 65535, &pad));
    n.attr.win.size = (uint16_t)k, n.attr.win.stride = (uint16_t)st, n.attr.win.pad = (uint16_t)pad;
  }
  if (info->flags & OPF_PERM) {
    int np = 0;
    SrcLoc at = p->tok.loc;
    TRY(expect_word(p, "perm", "after the operand"));
    TRY(parse_axis_list(p, "after 'perm'", rank0, n.attr.perm, &np));
    if (np != rank0) return fail(p, at, "perm has %d entries, but the operand has rank %d", np, rank0);
  }
  TRY(expect_punct(p, ':', "before the type"));
  SrcLoc tl = p->tok.loc;
  TRY(parse_type(p, &n.type));
  TRY(parse_opt_loc(p, &n.loc));
  TRY(expect_eol(p, "after the node"));
  /* Types: leaves against their symbol, ops through their shape rule. */
  if (info->flags & OPF_LEAF) {
    TRY(check_leaf_type(p, &n, tl));
  } else {
    Type at[NNC_MAX_ARGS], res;
    char err[512], ta[192], tb[192];
    for (int i = 0; i < nargs; i++) at[i] = m->nodes[n.args[i]].type;
    if (!info->shape(&n, at, &res, err, sizeof err)) return fail(p, oploc, "%s", err);
    if (!type_equal(&res, &n.type))
      return fail(p, tl, "type %s does not match the type %s computes, %s", type_str(&n.type, ta, sizeof ta),
                  info->name, type_str(&res, tb, sizeof tb));
  }
  ir_append(m, &n);
  return true;
}

/* OUTPUT := 'output' ('loss' VALUE | 'metric' SYM VALUE | 'update' SYM VALUE) */
static bool parse_output(Parser *p) {
  Module *m = p->m;
  TRY(enter_phase(p, 3, p->tok.loc));
  TRY(next(p));
  SrcLoc kl = p->tok.loc;
  OutKind kind;
  if (is_word(p, "loss")) kind = OUT_LOSS;
  else if (is_word(p, "metric")) kind = OUT_METRIC;
  else if (is_word(p, "update")) kind = OUT_UPDATE;
  else return fail(p, kl, "expected loss, metric or update, found %s", tok_desc(&p->tok));
  TRY(next(p));
  char *name = NULL;
  SrcLoc nl = kl;
  uint32_t sym = 0;
  if (kind == OUT_LOSS && p->have_loss) return fail(p, kl, "duplicate loss output");
  if (kind == OUT_METRIC) TRY(expect_sym(p, "the metric name (@name)", &name, &nl));
  if (kind == OUT_UPDATE) {
    TRY(expect_sym(p, "the updated parameter or state (@name)", &name, &nl));
    TRY(resolve_sym(p, name, nl, SYM_PARAM, true, "update", &sym));
  }
  if (kind == OUT_METRIC)
    for (uint32_t i = 0; i < m->noutputs; i++)
      if (m->outputs[i].kind == OUT_METRIC && !strcmp(m->outputs[i].name, name))
        return fail(p, nl, "duplicate metric @%s", diag_quote(name, strlen(name)));
  if (kind == OUT_UPDATE)
    for (uint32_t i = 0; i < m->noutputs; i++)
      if (m->outputs[i].kind == OUT_UPDATE && m->outputs[i].sym == sym)
        return fail(p, nl, "duplicate update of @%s", diag_quote(name, strlen(name)));
  SrcLoc vl = p->tok.loc;
  if (p->tok.kind != T_VALUE) return fail(p, vl, "expected a value (%%N), found %s", tok_desc(&p->tok));
  uint32_t v = p->tok.value;
  if (v >= m->nnodes) return fail(p, vl, "use of undefined value %%%u", v);
  TRY(next(p));
  TRY(expect_eol(p, "after the output"));
  const Type *vt = &m->nodes[v].type;
  char ta[192], tb[192];
  if (kind != OUT_UPDATE && (vt->dtype != DT_F32 || vt->rank != 0 || !vt->batched))
    return fail(p, vl, "a %s is a per-sample f32 scalar (f32[B]), but %%%u is %s", kind == OUT_LOSS ? "loss" : "metric",
                v, type_str(vt, ta, sizeof ta));
  if (kind == OUT_UPDATE && !type_equal(vt, &m->syms[sym].type))
    return fail(p, vl, "the update of @%s must have its type %s, but %%%u is %s", diag_quote(name, strlen(name)),
                type_str(&m->syms[sym].type, tb, sizeof tb), v, type_str(vt, ta, sizeof ta));
  if (kind == OUT_LOSS) p->have_loss = true;
  ir_add_output(m, kind, kind == OUT_UPDATE ? m->syms[sym].name : name, sym, v);
  return true;
}

/* FILE := {LINE? NEWLINE};  LINE := MODULE | SYMBOL | TRAIN | NODE | OUTPUT */
static bool parse_file(Parser *p) {
  TRY(next(p));
  for (;;) {
    while (p->tok.kind == T_NEWLINE) TRY(next(p));
    if (p->tok.kind == T_EOF) break;
    Token *t = &p->tok;
    if (is_word(p, "module")) TRY(parse_module(p));
    else if (is_word(p, "input")) TRY(parse_symbol(p, SYM_INPUT));
    else if (is_word(p, "label")) TRY(parse_symbol(p, SYM_LABEL));
    else if (is_word(p, "param")) TRY(parse_symbol(p, SYM_PARAM));
    else if (is_word(p, "state")) TRY(parse_symbol(p, SYM_STATE));
    else if (is_word(p, "hyper")) TRY(parse_symbol(p, SYM_HYPER));
    else if (is_word(p, "train")) TRY(parse_train(p));
    else if (is_word(p, "output")) TRY(parse_output(p));
    else if (t->kind == T_VALUE) TRY(parse_node(p));
    else return fail(p, t->loc, "expected a declaration, a node (%%N = ...) or an output, found %s", tok_desc(t));
  }
  /* States name their parameter, which may be declared after them. */
  for (uint32_t i = 0; i < p->nowners; i++) {
    PendingOwner *o = &p->owners[i];
    uint32_t s = 0;
    TRY(resolve_sym(p, o->name, o->loc, SYM_PARAM, false, "a state", &s));
    p->m->syms[o->state].owner = s;
  }
  return true;
}

Module *ir_read(uint32_t file_id) {
  const SourceFile *f = diag_file(&nnc_diag, file_id);
  NNC_ASSERT(f != NULL);
  Parser p;
  memset(&p, 0, sizeof p);
  p.src = f->text;
  p.len = f->len;
  p.line = p.col = 1;
  p.file = file_id;
  p.m = ir_module_new();
  bool ok = parse_file(&p);
  free(p.symdef);
  free(p.hash);
  free(p.owners);
  free(p.chain);
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
