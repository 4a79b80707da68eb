/* ir/text.h - what the two IR readers share (ir/text.c): the lexer, the
 * token helpers and the module's declaration lines.
 *
 * The graph IR (ir/read.c) and the kernel IR (ir/kernel_read.c) are line
 * based texts over the same tokens; the kernel IR adds the punctuation of
 * its expressions and loops (`kernel` mode).  Both begin with the same
 * declarations (module, symbols, train line), parsed here.  Every function
 * reports the first error at its line:col through the diagnostics engine
 * and returns false; after that, the reader unwinds.  Private to ir/.
 */
#ifndef NNC_IR_TEXT_H
#define NNC_IR_TEXT_H

#include "ir/ir.h"
#include "support/diag.h"

typedef enum {
  T_EOF,
  T_NEWLINE,
  T_IDENT,  /* [A-Za-z_][A-Za-z0-9_]* (also . and / after the first when TextReader.names) */
  T_NUMBER, /* -12, 0.001, 1e-8, inf, -inf, nan */
  T_STRING, /* "..." (str: decoded) */
  T_SYM,    /* @name or @"name" (str: decoded) */
  T_VALUE,  /* %12 (value) */
  T_PUNCT,  /* one of = : , [ ] ( ), in kernel mode also { } + - * / < > ? and the pairs below (punct) */
  T_SCALAR, /* kernel mode: $step, $batch, $hyper.NAME or $hyper."NAME" (str: decoded, without '$') */
} TokKind;

/* Two-character punctuation of kernel mode, in Token.punct. */
enum { TP_EQ = 'E', TP_NE = 'N', TP_LE = 'L', TP_GE = 'G', TP_DOTS = 'D' }; /* == != <= >= .. */

typedef struct Token {
  TokKind kind;
  const char *start; /* the token's text in the source */
  size_t len;
  SrcLoc loc;
  double num;        /* T_NUMBER */
  bool is_int;       /* T_NUMBER written as -?[0-9]+ */
  bool int_ok;       /* ... and it fits in int64 (ival) */
  int64_t ival;
  char *str;         /* T_STRING, T_SYM, T_SCALAR: decoded, NUL-terminated, in the module's arena */
  uint32_t value;    /* T_VALUE */
  char punct;        /* T_PUNCT */
} Token;

typedef struct PendingOwner {
  uint32_t state; /* the state symbol */
  const char *name;
  SrcLoc loc;
} PendingOwner;

typedef struct TextReader {
  const char *src;
  size_t len, pos;
  uint32_t line, col;     /* of pos */
  uint32_t file;          /* diagnostics file id */
  Token tok;              /* the current token */
  bool failed;            /* an error was reported: unwind */
  bool kernel;            /* kernel IR tokens (see TokKind) */
  bool names;             /* identifiers may contain . and / (kernel IR buffer names) */
  Module *m;
  int phase;              /* sections: 0 start, 1 declarations, then the reader's own */
  const char *const *phases; /* the name of each phase, for messages */
  bool have_module, have_loss;
  SrcLoc *symdef;         /* where each symbol was declared */
  uint32_t nsymdef, capsymdef;
  uint32_t *hash;         /* open addressing over symbols: index + 1, 0 = empty */
  uint32_t hashcap;
  PendingOwner *owners;
  uint32_t nowners, capowners;
  IrLoc *chain;           /* scratch for loc(...) */
  uint32_t nchain, capchain;
} TextReader;

#define TRY(x)                                                                 \
  do {                                                                         \
    if (!(x)) return false;                                                    \
  } while (0)

/* A reader over registered file file_id with a new module; txt_done frees
 * the scratch (not the module). */
void txt_init(TextReader *p, uint32_t file_id, bool kernel, const char *const *phases);
void txt_done(TextReader *p);

/* Reports the first error only; the parser unwinds after it. */
bool txt_fail(TextReader *p, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* How a token reads in "found ..." messages. */
const char *txt_desc(const Token *t);
SrcLoc txt_here(const TextReader *p);
/* Reads the next token into p->tok, skipping blanks and ';' comments. */
bool txt_next(TextReader *p);

bool txt_is_punct(const TextReader *p, char c);
bool txt_is_word(const TextReader *p, const char *w);
/* expect_punct(p, ':', "before the type") -> "expected ':' before the type, found 'f32'" */
bool txt_expect_punct(TextReader *p, char c, const char *context);
bool txt_expect_word(TextReader *p, const char *w, const char *context);
bool txt_expect_sym(TextReader *p, const char *what, char **name, SrcLoc *loc);
bool txt_expect_string(TextReader *p, const char *what, char **s);
bool txt_expect_number(TextReader *p, const char *what, double *v);
bool txt_expect_int(TextReader *p, const char *what, int64_t lo, int64_t hi, int64_t *v);
bool txt_expect_eol(TextReader *p, const char *context);

/* Symbol names are unique per group; the group is what a reference can
 * mean: an `input` node names an input or a label, an `update` output a
 * param or a state. */
int txt_sym_group(SymKind k);
int64_t txt_find_sym(const TextReader *p, int group, const char *name);
/* Resolves a reference to a symbol of `kind` (SYM_INPUT also takes labels;
 * `either_state` makes a param reference also take states). */
bool txt_resolve_sym(TextReader *p, const char *name, SrcLoc loc, SymKind kind, bool either_state, const char *user,
                     uint32_t *out);

bool txt_parse_type(TextReader *p, Type *out);
bool txt_parse_loc(TextReader *p, uint32_t *out);
bool txt_parse_opt_loc(TextReader *p, uint32_t *out);

/* Lines come in sections (phases), each after the ones before it. */
bool txt_enter_phase(TextReader *p, int phase, SrcLoc at);
/* If the current token starts a declaration line (module, input, label,
 * param, state, hyper, train), parses it and sets *done. */
bool txt_parse_decl(TextReader *p, bool *done);
/* At the end: states name their parameter, which may be declared after them. */
bool txt_resolve_owners(TextReader *p);

#endif
