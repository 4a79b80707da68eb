/* ir/text.c - the lexer and the declaration lines the graph IR reader
 * (ir/read.c) and the kernel IR reader (ir/kernel_read.c) share (text.h).
 *
 * Input is untrusted: every number is bounded before it is used, nothing
 * is allocated from a count read from the input, and arbitrary bytes (NULs
 * included) only ever produce a diagnostic.
 */
#include "ir/text.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int txt_sym_group(SymKind k) { return k <= SYM_LABEL ? 0 : k <= SYM_STATE ? 1 : 2; }

void txt_init(TextReader *p, uint32_t file_id, bool kernel, const char *const *phases) {
  const SourceFile *f = diag_file(&nnc_diag, file_id);
  NNC_ASSERT(f != NULL);
  memset(p, 0, sizeof *p);
  p->src = f->text;
  p->len = f->len;
  p->line = p->col = 1;
  p->file = file_id;
  p->kernel = kernel;
  p->phases = phases;
  p->m = ir_module_new();
}

void txt_done(TextReader *p) {
  free(p->symdef);
  free(p->hash);
  free(p->owners);
  free(p->chain);
  p->symdef = NULL;
  p->hash = NULL;
  p->owners = NULL;
  p->chain = NULL;
}

/* Reports the first error only; the parser unwinds after it. */
bool txt_fail(TextReader *p, SrcLoc loc, const char *fmt, ...) {
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
const char *txt_desc(const Token *t) {
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

static int peekc(const TextReader *p, size_t k) { return p->pos + k < p->len ? (unsigned char)p->src[p->pos + k] : -1; }

static void advance(TextReader *p) {
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

SrcLoc txt_here(const TextReader *p) { return (SrcLoc){p->file, p->line, p->col}; }

/* "..." at pos: decodes \" \\ \n \t \r \xHH into the module's arena. */
static bool lex_string(TextReader *p, char **out) {
  SrcLoc open = txt_here(p);
  advance(p);
  size_t start = p->pos, n = 0;
  /* First pass: find the end and check escapes. */
  for (;;) {
    int c = peekc(p, 0);
    if (c < 0 || c == '\n') return txt_fail(p, open, "unterminated string");
    if (c == '"') break;
    if (c == '\\') {
      SrcLoc at = txt_here(p);
      int e = peekc(p, 1);
      if (e == 'x') {
        int h1 = hex_value(peekc(p, 2)), h2 = h1 < 0 ? -1 : hex_value(peekc(p, 3));
        if (h1 < 0 || h2 < 0) return txt_fail(p, at, "expected two hex digits after '\\x'");
        if (h1 == 0 && h2 == 0) return txt_fail(p, at, "a string cannot contain a NUL byte");
        advance(p), advance(p), advance(p), advance(p);
      } else if (e == '"' || e == '\\' || e == 'n' || e == 't' || e == 'r') {
        advance(p), advance(p);
      } else {
        return txt_fail(p, at, "unknown escape '\\%s' in a string",
                    e < 0 ? "" : diag_quote(p->src + p->pos + 1, 1));
      }
    } else if (c < 0x20 || c == 0x7f) {
      return txt_fail(p, txt_here(p), "control character in a string (write it as \\x%02x)", c);
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
static bool lex_number(TextReader *p, Token *t) {
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
    else return txt_fail(p, txt_here(p), "malformed number '%s'", diag_quote(src + s, w - s));
    i = w;
  } else {
    size_t digits = 0, d0 = i;
    while (i < p->len && is_digit((unsigned char)src[i])) i++, digits++;
    bool is_int = true;
    bool dots = p->kernel && i + 1 < p->len && src[i] == '.' && src[i + 1] == '.'; /* kernel IR: 0..B */
    if (!dots && i < p->len && src[i] == '.') {
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
    if (bad || (!dots && i < p->len && (is_name_char((unsigned char)src[i]) || src[i] == '-' || src[i] == '+'))) {
      while (i < p->len && (is_name_char((unsigned char)src[i]) || src[i] == '-' || src[i] == '+')) i++;
      return txt_fail(p, txt_here(p), "malformed number '%s'", diag_quote(src + s, i - s));
    }
    if (i - s > 400) return txt_fail(p, txt_here(p), "number is too long");
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
    if (dots) {
      t->kind = T_NUMBER;
      while (p->pos < i) advance(p);
      return true;
    }
  }
  if (i < p->len && is_name_char((unsigned char)src[i])) {
    size_t w = i;
    while (w < p->len && is_name_char((unsigned char)src[w])) w++;
    return txt_fail(p, txt_here(p), "malformed number '%s'", diag_quote(src + s, w - s));
  }
  t->kind = T_NUMBER;
  while (p->pos < i) advance(p);
  return true;
}

/* Is the '-' at pos the sign of a number?  In the graph IR whenever a
 * number may follow; in kernel IR only when a digit, `.5`, or the word
 * inf or nan does (else it is the operator: `-log(t0)`, `a - 1.5`). */
static bool minus_number(const TextReader *p) {
  int c1 = peekc(p, 1), c2 = peekc(p, 2);
  if (is_digit(c1) || (c1 == '.' && (!p->kernel || is_digit(c2)))) return true;
  if (!is_alpha(c1)) return false;
  if (!p->kernel) return true;
  const char *w = p->src + p->pos + 1;
  return p->pos + 4 <= p->len && (!memcmp(w, "inf", 3) || !memcmp(w, "nan", 3)) && !is_alnum(peekc(p, 4));
}

/* Kernel IR punctuation: one character, or the pairs == != <= >= .. */
static bool lex_kernel_punct(TextReader *p, Token *t) {
  int c = peekc(p, 0), c1 = peekc(p, 1);
  static const struct { char a, b, code; } pairs[] = {
      {'=', '=', TP_EQ}, {'!', '=', TP_NE}, {'<', '=', TP_LE}, {'>', '=', TP_GE}, {'.', '.', TP_DOTS}};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
    if (c == pairs[i].a && c1 == pairs[i].b) {
      advance(p), advance(p);
      t->kind = T_PUNCT;
      t->punct = pairs[i].code;
      return true;
    }
  if (c != 0 && strchr("{}+-*/<>?", c)) {
    advance(p);
    t->kind = T_PUNCT;
    t->punct = (char)c;
    return true;
  }
  return false;
}

/* $step, $batch, $hyper.NAME (NAME bare or quoted), $training, $seed: str gets the text
 * after '$', a quoted name decoded. */
static bool lex_scalar(TextReader *p, Token *t) {
  advance(p);
  size_t s = p->pos;
  while (is_name_char(peekc(p, 0))) advance(p);
  if (p->pos == s) return txt_fail(p, t->loc, "expected a run-time scalar after '$' ($step, $batch, $hyper.NAME, $training, $seed)");
  t->kind = T_SCALAR;
  t->str = arena_strndup(&p->m->arena, p->src + s, p->pos - s);
  if (!strcmp(t->str, "hyper.") && peekc(p, 0) == '"') {
    char *name = NULL;
    TRY(lex_string(p, &name));
    t->str = arena_printf(&p->m->arena, "hyper.%s", name);
  }
  return true;
}

/* Reads the next token into p->tok.  Skips spaces, tabs, CRs and comments
 * (';' to the end of the line). */
bool txt_next(TextReader *p) {
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
  t->loc = txt_here(p);
  int c = peekc(p, 0), c1 = peekc(p, 1);
  if (c < 0) {
    t->kind = T_EOF;
  } else if (c == '\n') {
    t->kind = T_NEWLINE;
    advance(p);
  } else if (is_alpha(c)) {
    t->kind = T_IDENT;
    while (is_alnum(peekc(p, 0)) || (p->names && is_name_char(peekc(p, 0)))) advance(p);
  } else if (is_digit(c) || (c == '-' && minus_number(p)) || (c == '.' && is_digit(c1))) {
    TRY(lex_number(p, t));
  } else if (c == '%') {
    if (!is_digit(c1)) return txt_fail(p, t->loc, "expected a value number after '%%'");
    advance(p);
    uint64_t v = 0;
    while (is_digit(peekc(p, 0))) {
      v = v * 10 + (uint64_t)(peekc(p, 0) - '0');
      if (v >= UINT32_MAX) return txt_fail(p, t->loc, "value number is too large");
      advance(p);
    }
    if (is_name_char(peekc(p, 0)))
      return txt_fail(p, txt_here(p), "unexpected '%s' after a value number", diag_quote(p->src + p->pos, 1));
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
      return txt_fail(p, t->loc, "expected a name after '@'");
    }
    t->kind = T_SYM;
  } else if (c == '"') {
    t->kind = T_STRING;
    TRY(lex_string(p, &t->str));
  } else if (p->kernel && c == '$') {
    TRY(lex_scalar(p, t));
  } else if (p->kernel && lex_kernel_punct(p, t)) {
    /* lexed */
  } else if (c != 0 && strchr("=:,[]()", c)) {
    t->kind = T_PUNCT;
    t->punct = (char)c;
    advance(p);
  } else {
    /* One whole UTF-8 sequence when it is one, for a readable message. */
    size_t k = 1;
    while (k < 4 && (c & 0x80) && (peekc(p, k) & 0xC0) == 0x80) k++;
    return txt_fail(p, t->loc, "unexpected character '%s'", diag_quote(p->src + p->pos, k));
  }
  t->len = (size_t)(p->src + p->pos - t->start);
  return true;
}

/* ---- token helpers ------------------------------------------------------------ */

bool txt_is_punct(const TextReader *p, char c) { return p->tok.kind == T_PUNCT && p->tok.punct == c; }
bool txt_is_word(const TextReader *p, const char *w) {
  return p->tok.kind == T_IDENT && p->tok.len == strlen(w) && !memcmp(p->tok.start, w, p->tok.len);
}

/* expect(p, ':', "before the type") -> "expected ':' before the type, found 'f32'" */
bool txt_expect_punct(TextReader *p, char c, const char *context) {
  if (!txt_is_punct(p, c))
    return txt_fail(p, p->tok.loc, "expected '%c'%s%s, found %s", c, *context ? " " : "", context, txt_desc(&p->tok));
  return txt_next(p);
}

bool txt_expect_word(TextReader *p, const char *w, const char *context) {
  if (!txt_is_word(p, w))
    return txt_fail(p, p->tok.loc, "expected '%s'%s%s, found %s", w, *context ? " " : "", context, txt_desc(&p->tok));
  return txt_next(p);
}

bool txt_expect_sym(TextReader *p, const char *what, char **name, SrcLoc *loc) {
  if (p->tok.kind != T_SYM) return txt_fail(p, p->tok.loc, "expected %s, found %s", what, txt_desc(&p->tok));
  *name = p->tok.str;
  *loc = p->tok.loc;
  return txt_next(p);
}

bool txt_expect_string(TextReader *p, const char *what, char **s) {
  if (p->tok.kind != T_STRING) return txt_fail(p, p->tok.loc, "expected %s, found %s", what, txt_desc(&p->tok));
  *s = p->tok.str;
  return txt_next(p);
}

/* NUMBER, or the words inf and nan. */
bool txt_expect_number(TextReader *p, const char *what, double *v) {
  if (p->tok.kind == T_NUMBER) *v = p->tok.num;
  else if (txt_is_word(p, "inf")) *v = INFINITY;
  else if (txt_is_word(p, "nan")) *v = NAN;
  else return txt_fail(p, p->tok.loc, "expected %s, found %s", what, txt_desc(&p->tok));
  return txt_next(p);
}

/* An integer in [lo, hi]. */
bool txt_expect_int(TextReader *p, const char *what, int64_t lo, int64_t hi, int64_t *v) {
  Token *t = &p->tok;
  if (t->kind != T_NUMBER || !t->is_int) return txt_fail(p, t->loc, "expected %s, found %s", what, txt_desc(t));
  if (!t->int_ok || t->ival < lo || t->ival > hi)
    return txt_fail(p, t->loc, "%s %s is out of range (%lld to %lld)", what, diag_quote(t->start, t->len),
                (long long)lo, (long long)hi);
  *v = t->ival;
  return txt_next(p);
}

bool txt_expect_eol(TextReader *p, const char *context) {
  if (p->tok.kind != T_NEWLINE && p->tok.kind != T_EOF)
    return txt_fail(p, p->tok.loc, "expected end of line %s, found %s", context, txt_desc(&p->tok));
  return true;
}

/* ---- symbols ------------------------------------------------------------------- */

static uint32_t hash_name(int group, const char *s) {
  uint32_t h = 2166136261u ^ (uint32_t)group;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* The symbol of `group` named `name`, or -1. */
int64_t txt_find_sym(const TextReader *p, int group, const char *name) {
  if (!p->hashcap) return -1;
  for (uint32_t i = hash_name(group, name) & (p->hashcap - 1);; i = (i + 1) & (p->hashcap - 1)) {
    uint32_t e = p->hash[i];
    if (!e) return -1;
    const Symbol *s = &p->m->syms[e - 1];
    if (txt_sym_group(s->kind) == group && !strcmp(s->name, name)) return e - 1;
  }
}

static void hash_insert(TextReader *p, uint32_t sym) {
  if (2 * (p->m->nsyms + 1) > p->hashcap) {
    free(p->hash);
    p->hashcap = p->hashcap ? 2 * p->hashcap : 64;
    p->hash = nnc_xcalloc(p->hashcap, sizeof *p->hash);
    for (uint32_t s = 0; s < p->m->nsyms; s++) hash_insert(p, s);
    if (sym < p->m->nsyms) return; /* rehashed, including sym */
  }
  const Symbol *s = &p->m->syms[sym];
  uint32_t i = hash_name(txt_sym_group(s->kind), s->name) & (p->hashcap - 1);
  while (p->hash[i]) i = (i + 1) & (p->hashcap - 1);
  p->hash[i] = sym + 1;
}

static const char *kind_article(SymKind k) { return k == SYM_INPUT ? "an" : "a"; }

/* Resolves a reference to a symbol of `kind` (SYM_INPUT also takes labels;
 * `either_state` makes a param reference also take states). */
bool txt_resolve_sym(TextReader *p, const char *name, SrcLoc loc, SymKind kind, bool either_state,
                        const char *user, uint32_t *out) {
  int64_t s = txt_find_sym(p, txt_sym_group(kind), name);
  if (s >= 0 && (p->m->syms[s].kind == kind || kind == SYM_INPUT || either_state)) {
    *out = (uint32_t)s;
    return true;
  }
  if (s < 0)
    for (int g = 0; g < 3 && s < 0; g++) s = txt_find_sym(p, g, name);
  if (s < 0) return txt_fail(p, loc, "unknown symbol @%s", diag_quote(name, strlen(name)));
  SymKind found = p->m->syms[s].kind;
  return txt_fail(p, loc, "%s needs %s %s%s, but @%s is %s %s", user, kind_article(kind), sym_kind_name(kind),
              either_state ? " or a state" : kind == SYM_INPUT ? " or a label" : "",
              diag_quote(name, strlen(name)), kind_article(found), sym_kind_name(found));
}

/* ---- types, initializers, locations ------------------------------------------------- */

/* TYPE := ('f32' | 'i32') ['[' DIM {',' DIM} ']'],  DIM := 'B' (first only) | INT */
bool txt_parse_type(TextReader *p, Type *out) {
  Token *t = &p->tok;
  DType dt;
  if (txt_is_word(p, "f32")) dt = DT_F32;
  else if (txt_is_word(p, "i32")) dt = DT_I32;
  else if (t->kind == T_IDENT)
    return txt_fail(p, t->loc, "unknown type '%s' (expected f32 or i32)", diag_quote(t->start, t->len));
  else return txt_fail(p, t->loc, "expected a type, found %s", txt_desc(t));
  *out = type_scalar(dt);
  TRY(txt_next(p));
  if (!txt_is_punct(p, '[')) return true;
  TRY(txt_next(p));
  int64_t numel = 1;
  for (int i = 0;; i++) {
    if (txt_is_word(p, "B")) {
      if (i != 0) return txt_fail(p, t->loc, "the batch axis B must come first");
      out->batched = true;
      TRY(txt_next(p));
    } else {
      if (out->rank == NNC_MAX_RANK) return txt_fail(p, t->loc, "a type has at most %d axes", NNC_MAX_RANK);
      SrcLoc at = t->loc;
      int64_t d = 1;
      TRY(txt_expect_int(p, "dimension", 1, NNC_MAX_DIM, &d));
      if (numel > NNC_MAX_ELEMS / d)
        return txt_fail(p, at, "a tensor has at most %lld elements", (long long)NNC_MAX_ELEMS);
      numel *= d;
      out->dims[out->rank++] = d;
    }
    if (txt_is_punct(p, ']')) break;
    TRY(txt_expect_punct(p, ',', "or ']' in the type"));
  }
  return txt_next(p);
}

/* INIT := 'zeros()' | 'ones()' | 'full(' NUM ')' | 'uniform(' NUM ',' NUM ')'
 *       | 'normal(' NUM ')' | 'glorot_uniform()' | 'he_normal()' */
static bool parse_init(TextReader *p, Init *init) {
  static const struct { const char *name; InitKind kind; int nargs; } inits[] = {
      {"zeros", INIT_ZEROS, 0},   {"ones", INIT_ONES, 0},     {"full", INIT_FULL, 1},
      {"uniform", INIT_UNIFORM, 2}, {"normal", INIT_NORMAL, 1}, {"glorot_uniform", INIT_GLOROT_UNIFORM, 0},
      {"he_normal", INIT_HE_NORMAL, 0},
  };
  Token *t = &p->tok;
  if (t->kind != T_IDENT) return txt_fail(p, t->loc, "expected an initializer, found %s", txt_desc(t));
  int k = -1;
  for (int i = 0; i < (int)(sizeof inits / sizeof inits[0]); i++)
    if (txt_is_word(p, inits[i].name)) k = i;
  if (k < 0) return txt_fail(p, t->loc, "unknown initializer '%s'", diag_quote(t->start, t->len));
  SrcLoc at = t->loc;
  memset(init, 0, sizeof *init);
  init->kind = inits[k].kind;
  TRY(txt_next(p));
  TRY(txt_expect_punct(p, '(', "after the initializer name"));
  double args[2] = {0, 0};
  int n = 0;
  while (!txt_is_punct(p, ')')) {
    if (n == inits[k].nargs)
      return txt_fail(p, at, "%s takes %d argument%s", inits[k].name, inits[k].nargs, inits[k].nargs == 1 ? "" : "s");
    if (n > 0) TRY(txt_expect_punct(p, ',', "between arguments"));
    TRY(txt_expect_number(p, "a number", &args[n]));
    n++;
  }
  if (n != inits[k].nargs)
    return txt_fail(p, at, "%s takes %d argument%s, found %d", inits[k].name, inits[k].nargs,
                inits[k].nargs == 1 ? "" : "s", n);
  init->a = args[0];
  init->b = args[1];
  return txt_next(p);
}

/* LOC := 'loc(' STRING ':' INT ':' INT {'at' STRING ':' INT ':' INT} ')'
 * The first entry is the innermost; each 'at' is the call it was inlined
 * into.  The chain is rebuilt from the outermost entry with ir_loc. */
bool txt_parse_loc(TextReader *p, uint32_t *out) {
  TRY(txt_next(p)); /* 'loc' */
  TRY(txt_expect_punct(p, '(', "after 'loc'"));
  p->nchain = 0;
  for (;;) {
    char *file = NULL;
    int64_t line = 0, col = 0;
    TRY(txt_expect_string(p, "a file name in quotes", &file));
    TRY(txt_expect_punct(p, ':', "after the file name"));
    TRY(txt_expect_int(p, "line", 1, UINT32_MAX, &line));
    TRY(txt_expect_punct(p, ':', "after the line"));
    TRY(txt_expect_int(p, "column", 0, UINT32_MAX, &col));
    IrLoc l = {*file ? ir_file(p->m, file) : 0, (uint32_t)line, (uint32_t)col, 0};
    VEC_PUSH(p->chain, p->nchain, p->capchain, l);
    if (txt_is_punct(p, ')')) break;
    TRY(txt_expect_word(p, "at", "or ')' in loc(...)"));
  }
  uint32_t parent = 0;
  for (uint32_t i = p->nchain; i-- > 0;)
    parent = ir_loc(p->m, p->chain[i].file, p->chain[i].line, p->chain[i].col, parent);
  *out = parent;
  return txt_next(p);
}

bool txt_parse_opt_loc(TextReader *p, uint32_t *out) {
  *out = 0;
  if (txt_is_word(p, "loc")) return txt_parse_loc(p, out);
  return true;
}

/* ---- lines ----------------------------------------------------------------------- */

bool txt_enter_phase(TextReader *p, int phase, SrcLoc at) {
  if (p->phase > phase)
    return txt_fail(p, at, "%s must come before the %s", p->phases[phase], p->phases[p->phase]);
  p->phase = phase;
  return true;
}

/* 'module' SYM */
static bool parse_module(TextReader *p) {
  SrcLoc at = p->tok.loc;
  if (p->have_module) return txt_fail(p, at, "duplicate module line");
  if (p->phase > 0) return txt_fail(p, at, "the module line must come first");
  p->have_module = true;
  TRY(txt_next(p));
  char *name = NULL;
  SrcLoc nl = {0, 0, 0};
  TRY(txt_expect_sym(p, "the module name (@name)", &name, &nl));
  p->m->name = name;
  return txt_expect_eol(p, "after the module name");
}

/* ('input' | 'label') SYM ':' TYPE ['bound' INT] [LOC]
 * | ('param' | 'state') SYM ':' TYPE ['bound' INT] ['=' INIT] ['nograd'] ['for' SYM] [LOC]
 * | 'hyper' SYM '=' NUMBER [LOC] */
static bool parse_symbol(TextReader *p, SymKind kind) {
  TRY(txt_enter_phase(p, 1, p->tok.loc));
  TRY(txt_next(p));
  Symbol s;
  memset(&s, 0, sizeof s);
  s.kind = kind;
  char *name = NULL;
  SrcLoc nameloc = {0, 0, 0};
  TRY(txt_expect_sym(p, "a symbol name (@name)", &name, &nameloc));
  int64_t dup = txt_find_sym(p, txt_sym_group(kind), name);
  if (dup >= 0) {
    const Symbol *d = &p->m->syms[dup];
    txt_fail(p, nameloc, "redefinition of @%s", diag_quote(name, strlen(name)));
    diag_note(p->symdef[dup], "%s @%s was declared here", sym_kind_name(d->kind), diag_quote(name, strlen(name)));
    return false;
  }
  s.name = name;
  PendingOwner owner = {0, NULL, {0, 0, 0}};
  if (kind == SYM_HYPER) {
    s.type = type_scalar(DT_F32);
    TRY(txt_expect_punct(p, '=', "before the value of the hyper-parameter"));
    TRY(txt_expect_number(p, "a number", &s.value));
  } else {
    TRY(txt_expect_punct(p, ':', "before the type"));
    SrcLoc tl = p->tok.loc;
    TRY(txt_parse_type(p, &s.type));
    char tb[192];
    if ((kind == SYM_INPUT || kind == SYM_LABEL) && !s.type.batched)
      return txt_fail(p, tl, "%ss are batched: the type must start with B, found %s", sym_kind_name(kind),
                  type_str(&s.type, tb, sizeof tb));
    if ((kind == SYM_PARAM || kind == SYM_STATE) && s.type.batched)
      return txt_fail(p, tl, "%ss are not batched, found %s", sym_kind_name(kind), type_str(&s.type, tb, sizeof tb));
    if (txt_is_word(p, "bound")) {
      TRY(txt_next(p));
      TRY(txt_expect_int(p, "bound", 1, (int64_t)1 << 31, &s.bound));
    }
    if ((kind == SYM_PARAM || kind == SYM_STATE) && txt_is_punct(p, '=')) {
      TRY(txt_next(p));
      TRY(parse_init(p, &s.init));
    }
    if (kind == SYM_PARAM && txt_is_word(p, "nograd")) {
      TRY(txt_next(p));
      s.no_grad = true;
    }
    if (kind == SYM_STATE) {
      TRY(txt_expect_word(p, "for", "and the state's parameter"));
      owner.loc = p->tok.loc;
      char *oname = NULL;
      TRY(txt_expect_sym(p, "the parameter (@name)", &oname, &owner.loc));
      owner.name = oname;
    }
  }
  TRY(txt_parse_opt_loc(p, &s.loc));
  TRY(txt_expect_eol(p, "after the declaration"));
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
 * FIELD := 'data' '=' ('idx(' STRING ')' | 'csv(' STRING [',' 'test' '=' STRING] [',' 'label' '=' STRING] ')'
 *                     | 'text(' STRING ',' 'context' '=' INT [',' 'test' '=' STRING] ')')
 *        | 'scale' '=' NUMBER | ('batch' | 'epochs' | 'steps' | 'seed') '=' INT
 *        | 'schedule' '=' ('step(every' '=' INT ',' 'factor' '=' NUMBER ')'
 *                         | 'cosine(warmup' '=' INT ',' 'min' '=' NUMBER ')')
 *        | 'shuffle' '=' ('true' | 'false') | 'optimizer' '=' (IDENT | STRING)
 *        | 'validation' '=' NUMBER (a fraction in (0, 1)) */
/* step(every = N, factor = F) | cosine(warmup = N, min = F), named in that order. */
static bool parse_schedule(TextReader *p, LrSchedule *sc) {
  bool step = txt_is_word(p, "step");
  if (!step && !txt_is_word(p, "cosine"))
    return txt_fail(p, p->tok.loc, "expected step(...) or cosine(...), found %s", txt_desc(&p->tok));
  const char *names[2] = {step ? "every" : "warmup", step ? "factor" : "min"};
  int64_t n;
  double f;
  TRY(txt_next(p));
  TRY(txt_expect_punct(p, '(', "after the schedule"));
  for (int i = 0; i < 2; i++) {
    if (i) TRY(txt_expect_punct(p, ',', "between the schedule's settings"));
    if (!txt_is_word(p, names[i]))
      return txt_fail(p, p->tok.loc, "expected '%s', found %s", names[i], txt_desc(&p->tok));
    TRY(txt_next(p));
    TRY(txt_expect_punct(p, '=', "after the setting's name"));
    SrcLoc at = p->tok.loc;
    if (i == 0) {
      TRY(txt_expect_int(p, names[0], step ? 1 : 0, INT64_C(1) << 40, &n));
    } else {
      TRY(txt_expect_number(p, "a number", &f));
      if (!(f >= 0 && f <= 1) || (step && f == 0))
        return txt_fail(p, at, "'%s' must be a fraction %s 0 and 1, found %g", names[1], step ? "above" : "from", f);
    }
  }
  TRY(txt_expect_punct(p, ')', "after the schedule"));
  *sc = step ? (LrSchedule){SCHEDULE_STEP, n, f, 0, 0} : (LrSchedule){SCHEDULE_COSINE, 0, 0, n, f};
  return true;
}

static bool parse_train(TextReader *p) {
  static const char *fields[] = {"data",      "scale",      "batch", "epochs",  "seed",
                                 "shuffle",   "optimizer",  "validation", "steps", "schedule"};
  TRY(txt_enter_phase(p, 1, p->tok.loc));
  TrainSpec *t = &p->m->train;
  if (t->present) return txt_fail(p, p->tok.loc, "duplicate train line");
  t->present = true;
  t->shuffle = true;
  TRY(txt_next(p));
  unsigned seen = 0;
  while (p->tok.kind != T_NEWLINE && p->tok.kind != T_EOF) {
    if (seen) TRY(txt_expect_punct(p, ',', "between train fields"));
    Token *k = &p->tok;
    if (k->kind != T_IDENT) return txt_fail(p, k->loc, "expected a train field, found %s", txt_desc(k));
    int f = -1;
    for (int i = 0; i < (int)(sizeof fields / sizeof fields[0]); i++)
      if (txt_is_word(p, fields[i])) f = i;
    if (f < 0) return txt_fail(p, k->loc, "unknown train field '%s'", diag_quote(k->start, k->len));
    if (seen >> f & 1) return txt_fail(p, k->loc, "duplicate train field '%s'", fields[f]);
    seen |= 1u << f;
    TRY(txt_next(p));
    TRY(txt_expect_punct(p, '=', "after the field name"));
    switch (f) {
    case 0: {
      char *path = NULL;
      if (txt_is_word(p, "idx")) t->data = DATA_IDX;
      else if (txt_is_word(p, "csv")) t->data = DATA_CSV;
      else if (txt_is_word(p, "text")) t->data = DATA_TEXT;
      else return txt_fail(p, p->tok.loc, "expected idx(...), csv(...) or text(...), found %s", txt_desc(&p->tok));
      TRY(txt_next(p));
      TRY(txt_expect_punct(p, '(', "after the data source"));
      TRY(txt_expect_string(p, "a path in quotes", &path));
      t->data_path = path;
      if (t->data == DATA_TEXT) {
        TRY(txt_expect_punct(p, ',', "before text's context"));
        if (!txt_is_word(p, "context")) return txt_fail(p, p->tok.loc, "expected 'context', found %s", txt_desc(&p->tok));
        TRY(txt_next(p));
        TRY(txt_expect_punct(p, '=', "after 'context'"));
        TRY(txt_expect_int(p, "context", 1, 1 << 20, &t->context));
        if (txt_is_punct(p, ',')) {
          TRY(txt_next(p));
          if (!txt_is_word(p, "test")) return txt_fail(p, p->tok.loc, "expected 'test', found %s", txt_desc(&p->tok));
          TRY(txt_next(p));
          TRY(txt_expect_punct(p, '=', "after 'test'"));
          TRY(txt_expect_string(p, "a path in quotes", &path));
          t->test_path = path;
        }
      }
      while (t->data == DATA_CSV && txt_is_punct(p, ',')) {
        TRY(txt_next(p));
        char **slot = txt_is_word(p, "test") ? (char **)&t->test_path : txt_is_word(p, "label") ? (char **)&t->label : NULL;
        if (!slot) return txt_fail(p, p->tok.loc, "expected 'test' or 'label', found %s", txt_desc(&p->tok));
        if (*slot) return txt_fail(p, p->tok.loc, "duplicate csv option '%s'", diag_quote(p->tok.start, p->tok.len));
        TRY(txt_next(p));
        TRY(txt_expect_punct(p, '=', "after the option name"));
        TRY(txt_expect_string(p, "a string", slot));
      }
      TRY(txt_expect_punct(p, ')', "after the data source"));
      break;
    }
    case 1: {
      SrcLoc at = p->tok.loc;
      TRY(txt_expect_number(p, "a number", &t->scale));
      if (!(fabs(t->scale) <= FLT_MAX) || (float)t->scale == 0) /* the trainer keeps it in f32; 0 is no scale */
        return txt_fail(p, at, "scale must be a non-zero number within the f32 range, found %g", t->scale);
      break;
    }
    case 2: TRY(txt_expect_int(p, "batch", 1, INT32_MAX, &t->batch)); break;
    case 3: TRY(txt_expect_int(p, "epochs", 1, INT32_MAX, &t->epochs)); break;
    case 4: TRY(txt_expect_int(p, "seed", INT64_MIN, INT64_MAX, &t->seed)); break;
    case 5:
      if (txt_is_word(p, "true")) t->shuffle = true;
      else if (txt_is_word(p, "false")) t->shuffle = false;
      else return txt_fail(p, p->tok.loc, "expected true or false, found %s", txt_desc(&p->tok));
      TRY(txt_next(p));
      break;
    case 6:
      if (p->tok.kind == T_IDENT) t->optimizer = arena_strndup(&p->m->arena, p->tok.start, p->tok.len);
      else if (p->tok.kind == T_STRING) t->optimizer = p->tok.str;
      else return txt_fail(p, p->tok.loc, "expected an optimizer name, found %s", txt_desc(&p->tok));
      TRY(txt_next(p));
      break;
    case 7: {
      SrcLoc at = p->tok.loc;
      TRY(txt_expect_number(p, "a number", &t->validation));
      if (!(t->validation > 0 && t->validation < 1))
        return txt_fail(p, at, "validation must be a fraction between 0 and 1, found %g", t->validation);
      break;
    }
    case 8: TRY(txt_expect_int(p, "steps", 1, INT64_C(1) << 40, &t->steps)); break;
    case 9: TRY(parse_schedule(p, &t->schedule)); break;
    }
  }
  return true;
}

bool txt_parse_decl(TextReader *p, bool *done) {
  static const struct { const char *word; int sym; } lines[] = {
      {"input", SYM_INPUT}, {"label", SYM_LABEL}, {"param", SYM_PARAM}, {"state", SYM_STATE}, {"hyper", SYM_HYPER}};
  *done = true;
  if (txt_is_word(p, "module")) return parse_module(p);
  if (txt_is_word(p, "train")) return parse_train(p);
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
    if (txt_is_word(p, lines[i].word)) return parse_symbol(p, (SymKind)lines[i].sym);
  *done = false;
  return true;
}

bool txt_resolve_owners(TextReader *p) {
  for (uint32_t i = 0; i < p->nowners; i++) {
    PendingOwner *o = &p->owners[i];
    uint32_t s = 0;
    TRY(txt_resolve_sym(p, o->name, o->loc, SYM_PARAM, false, "a state", &s));
    p->m->syms[o->state].owner = s;
  }
  return true;
}
