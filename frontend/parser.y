/* frontend/parser.y - the .nn grammar (bison), building the AST of ast.h.
 *
 * A pure LALR(1) parser fed by the reentrant flex scanner of lexer.l through
 * nn_lex().  Both share one ParseCtx (declared below, so that it lands in the
 * generated parser.h): the arena, the file, the scanner's position and
 * bracket depth, the error-recovery mode and the items parsed so far.
 *
 * Stack depth.  Every list is left-recursive, so the parser stack stays flat
 * however long a list or a chain `x + x + ... + x` gets.  The two
 * right-associative constructs, unary minus and `^`, are read as a flat
 * sequence too (useq: `- - a ^ - b ^ c`, kept on ctx->ustack) and folded
 * into a tree by fold_unary().  Only brackets nest on the stack, and the
 * lexer allows LEX_MAX_BRACKETS levels of them, so no input reaches
 * YYMAXDEPTH.  Nothing here recurses in C.
 *
 * Expr.depth is computed as nodes are built (see ast.h).  An expression
 * deeper than MAX_EXPR_DEPTH is reported once and replaced by a placeholder
 * (the "poison" E_NAME `<error>`) which swallows every expression built on
 * it, so later stages only ever see shallow trees.
 *
 * Syntax errors go through yyreport_syntax_error: `expected X, Y or Z, found
 * W`, exact thanks to LAC.  Recovery works at two levels, helped by the
 * lexer's skip modes (lexer.l):
 *   - in a block, `opt_stmt: error` drops the rest of the statement: the
 *     lexer skips to the next newline, ';' or '}' (newlines inside brackets
 *     do not count).  Should it meet the end of the file or an item keyword
 *     in column 1 first, the block was never closed: it hands back a '}' and
 *     then that token, so the next item still parses;
 *   - at the top level, `item_seq: item_seq error` drops the item: the lexer
 *     skips to the next item keyword that starts a line.
 * The next token then always fits, so each recovery ends with yyerrok and
 * the next mistake is reported at once: one error per bad line, no cascade.
 */

%code requires {
#include "frontend/ast.h"

/* A parser location: where a token or symbol starts (the file is in ctx). */
typedef struct NnLoc {
  uint32_t line, col;
} NnLoc;

/* A number token's value. */
typedef struct NumLit {
  double value;
  bool is_int; /* written without '.' or exponent */
} NumLit;

/* A growable array in the arena; the caller knows the element size. */
typedef struct AVec {
  void *data;
  uint32_t n, cap;
} AVec;

typedef struct ParseCtx ParseCtx;
}

%code provides {
enum {
  LEX_MAX_BRACKETS = 256, /* nesting of ( and [ */
  LEX_MAX_NAME = 256,     /* bytes in an identifier */
  LEX_MAX_NUMBER = 256,   /* bytes in a number literal */
  LEX_PENDING = 4,        /* tokens queued by error recovery */
};

/* Skip modes of the lexer during error recovery, weakest first. */
enum { SKIP_NONE, SKIP_STMT, SKIP_ITEM };

/* A token, kept to be handed back later or quoted in a message. */
typedef struct LexToken {
  int kind;        /* TOK_* */
  NN_STYPE value;
  NnLoc loc;
  size_t off, len; /* its text in the source */
  uint32_t brackets; /* open ( and [ before it */
  bool first;        /* the first token on its line */
} LexToken;

/* One entry of a unary sequence (see useq in the grammar). */
typedef struct UItem {
  int kind;        /* U_NEG, U_POW or U_OPERAND */
  NnLoc loc;       /* of '-' or '^' */
  Expr *e;         /* U_OPERAND */
} UItem;

struct ParseCtx {
  Arena *arena;
  uint32_t file;
  const char *text;        /* the source, for tokens' texts */
  size_t len;
  void *scanner;           /* the flex scanner (yyscan_t) */

  /* lexer state (lexer.l) */
  uint32_t line, col;      /* position of the next byte */
  size_t off;
  size_t tok_off;          /* where the current token starts */
  uint32_t brackets;       /* open ( and [: newlines inside are ignored */
  NnLoc open_loc[LEX_MAX_BRACKETS];  /* where each open bracket is */
  int open_kind[LEX_MAX_BRACKETS];   /* TOK_LPAREN or TOK_LBRACKET */
  uint32_t brace_line;     /* line of the last '{' */
  uint32_t token_line;     /* line of the last token but newlines */
  int skip;                /* SKIP_*: tokens dropped by error recovery */
  bool eof;                /* the scanner has returned the end of file */
  LexToken pending[LEX_PENDING]; /* handed back first, [0] next */
  int npending;
  LexToken last;           /* the token returned last (the lookahead) */
  LexToken prev;           /* and the one before it */

  /* parser state */
  bool block_open;         /* between a block's '{' and its '}' */
  size_t recover_off;      /* lookahead offset + 1 at the last recovery */
  UItem *ustack;           /* open unary sequences (nnc_xmalloc'd) */
  uint32_t nustack, capustack;
  Item *items;             /* nnc_xmalloc'd; copied to the arena at the end */
  uint32_t nitems, capitems;
};

/* lexer.l */
int nn_lex(NN_STYPE *lval, NnLoc *lloc, ParseCtx *ctx);
void nnlex_open(ParseCtx *ctx);
void nnlex_close(ParseCtx *ctx);
void nnlex_unget(ParseCtx *ctx, const LexToken *t); /* returned next */
bool nnlex_is_item_keyword(int kind);
bool nnlex_starts_item(const LexToken *t);
bool nnlex_closes_block(ParseCtx *ctx, const LexToken *t);
LexToken nnlex_peek(ParseCtx *ctx); /* the next token, left in place */
}

%code {
#include "ir/ir.h"

#include <stdlib.h>
#include <string.h>

/* Deepest expression handed to later stages (they recurse on it). */
enum { MAX_EXPR_DEPTH = 5000 };

/* Kinds of UItem. */
enum { U_NEG, U_POW, U_OPERAND };

/* Legal input needs a few thousand stack entries at most (brackets nest
 * 256 deep); leave room so that the parser never runs out. */
#define YYMAXDEPTH 100000
#define YYINITDEPTH 1000

/* A symbol's location is where its first token starts. */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                            \
  do {                                                                         \
    if (N) (Cur) = YYRHSLOC(Rhs, 1);                                           \
    else (Cur) = YYRHSLOC(Rhs, 0);                                             \
  } while (0)

static void nn_error(NnLoc *loc, ParseCtx *ctx, const char *msg);
static SrcLoc src(const ParseCtx *ctx, NnLoc l);
static void *avec_push(Arena *a, AVec **v, size_t size);
static void add_item(ParseCtx *ctx, ItemKind k, NnLoc l, const char *name, NnLoc nl,
                     AVec *params, AVec *body, Expr *expr_body);
static Expr *poison(ParseCtx *ctx, NnLoc l);
static Expr *new_expr(ParseCtx *ctx, ExprKind k, NnLoc l);
static Expr *mk_num(ParseCtx *ctx, NnLoc l, NumLit n);
static Expr *mk_str(ParseCtx *ctx, ExprKind k, NnLoc l, const char *s);
static Expr *mk_binary(ParseCtx *ctx, BinOp op, NnLoc l, Expr *lhs, Expr *rhs);
static Expr *mk_cmp_chain(ParseCtx *ctx, NnLoc l, Expr *lhs);
static Expr *mk_call(ParseCtx *ctx, Expr *callee, NnLoc l, NnLoc paren, AVec *args);
static Expr *mk_index(ParseCtx *ctx, NnLoc l, Expr *base, Expr *index);
static Expr *mk_list(ParseCtx *ctx, NnLoc l, AVec *items);
static void push_arg(ParseCtx *ctx, AVec **args, Arg *a, NnLoc l);
static uint32_t useq_push(ParseCtx *ctx, int kind, NnLoc l, Expr *e);
static Expr *fold_unary(ParseCtx *ctx, uint32_t start);
static Stmt *mk_stmt(ParseCtx *ctx, StmtKind k, NnLoc l, const char *name, NnLoc nl,
                     TypeExpr *type, Expr *value);
static Param *mk_param(ParseCtx *ctx, const char *name, NnLoc l, TypeExpr *type, Expr *init);
static TypeExpr *mk_type(ParseCtx *ctx, int dtype, NnLoc l, AVec *dims);
static void push_dim(ParseCtx *ctx, AVec **dims, NnLoc l, const char *name, const NumLit *n);
static void recover_stmt(ParseCtx *ctx, int *la, const NN_STYPE *lval, const NnLoc *lloc);
static void recover_item(ParseCtx *ctx, int *la);
}

%define api.pure full
%define api.prefix {nn_}
%define api.token.prefix {TOK_}
%define api.location.type {NnLoc}
%define parse.error custom
%define parse.lac full
%locations
%param {ParseCtx *ctx}

%union {
  const char *str;
  NumLit num;
  Expr *expr;
  AVec *vec;
  Stmt *stmt;
  Param *param;
  Arg *arg;
  TypeExpr *type;
  int op;
  uint32_t idx;
}

%token <str> NAME "identifier"
%token <num> NUMBER "number"
%token <str> STRING "string"
%token NEWLINE "newline"
%token SEMI ";" COMMA "," COLON ":" ASSIGN "=" ELLIPSIS "..."
%token LPAREN "(" RPAREN ")" LBRACKET "[" RBRACKET "]" LBRACE "{" RBRACE "}"
%token PLUS "+" MINUS "-" STAR "*" SLASH "/" CARET "^" AT "@"
%token EQ "==" NE "!=" LT "<" LE "<=" GT ">" GE ">="
%token IMPORT "import" FN "fn" LAYER "layer" OPTIMIZER "optimizer" MODEL "model" TRAIN "train"
%token PARAM "param" STATE "state" RETURN "return" INPUT "input" LABEL "label" METRIC "metric"
%token OUTPUT "output"
%token F32 "f32" I32 "i32"

%type <expr> expr cmp add mul unary postfix primary
%type <idx> useq upow negs
%type <vec> args args_opt list list_opt params params_opt dims block stmt_seq
%type <stmt> stmt opt_stmt
%type <param> param
%type <arg> arg
%type <type> type
%type <op> cmp_op add_op mul_op
%type <str> bind_name item_name arg_name

%%

/* ---- items ------------------------------------------------------------------ */

/* program: item*
 * An item that ends in '}' needs nothing after it; `import` and `fn ... =
 * expr` end at a newline, ';' or the end of the file. */
program: item_seq
       | item_seq line_item
       ;

item_seq: %empty
        | item_seq sep
        | item_seq block_item
        | item_seq line_item sep
        | item_seq error          { recover_item(ctx, &yychar); yyerrok; }
        ;

sep: NEWLINE | ";" ;

/* line_item: 'import' STRING | 'fn' NAME '(' params? ')' '=' expr */
line_item:
    "import" STRING
      { add_item(ctx, I_IMPORT, @1, $2, @2, NULL, NULL, NULL); }
  | "fn" item_name "(" params_opt ")" "=" expr
      { add_item(ctx, I_FN, @1, $2, @2, $4, NULL, $7); }
  ;

/* block_item: 'fn' NAME '(' params? ')' block
 *           | 'layer' NAME '(' params? ')' block
 *           | 'optimizer' NAME '(' params? ')' block
 *           | 'model' NAME block
 *           | 'train' NAME block */
block_item:
    "fn" item_name "(" params_opt ")" block
      { add_item(ctx, I_FN, @1, $2, @2, $4, $6, NULL); }
  | "layer" item_name "(" params_opt ")" block
      { add_item(ctx, I_LAYER, @1, $2, @2, $4, $6, NULL); }
  | "optimizer" item_name "(" params_opt ")" block
      { add_item(ctx, I_OPTIMIZER, @1, $2, @2, $4, $6, NULL); }
  | "model" item_name block
      { add_item(ctx, I_MODEL, @1, $2, @2, NULL, $3, NULL); }
  | "train" item_name block
      { add_item(ctx, I_TRAIN, @1, $2, @2, NULL, $3, NULL); }
  ;

/* The conversions f32(x) and i32(x) are calls: their names are names too. */
item_name: NAME
         | "f32"   { $$ = "f32"; }
         | "i32"   { $$ = "i32"; }
         ;

/* params: param (',' param)* ','? */
params_opt: %empty     { $$ = NULL; }
          | params
          | params ","
          ;
params: param
          { $$ = NULL; *(Param *)avec_push(ctx->arena, &$$, sizeof(Param)) = *$1; }
      | params "," param
          { $$ = $1; *(Param *)avec_push(ctx->arena, &$$, sizeof(Param)) = *$3; }
      ;

/* param: NAME (':' type)? ('=' expr)? */
param: NAME                     { $$ = mk_param(ctx, $1, @1, NULL, NULL); }
     | NAME ":" type            { $$ = mk_param(ctx, $1, @1, $3, NULL); }
     | NAME "=" expr            { $$ = mk_param(ctx, $1, @1, NULL, $3); }
     | NAME ":" type "=" expr   { $$ = mk_param(ctx, $1, @1, $3, $5); }
     ;

/* type: ('f32' | 'i32') ('[' dim (',' dim)* ']')?
 * A bare f32 is a scalar (has_shape false). */
type: "f32"                { $$ = mk_type(ctx, DT_F32, @1, NULL); }
    | "i32"                { $$ = mk_type(ctx, DT_I32, @1, NULL); }
    | "f32" "[" dims "]"   { $$ = mk_type(ctx, DT_F32, @1, $3); }
    | "i32" "[" dims "]"   { $$ = mk_type(ctx, DT_I32, @1, $3); }
    ;

/* dims: dim (',' dim)*      dim: INTEGER | NAME | '...'
 * ('...', any leading axes, only first: mk_type checks) */
dims: NUMBER               { $$ = NULL; push_dim(ctx, &$$, @1, NULL, &$1); }
    | NAME                 { $$ = NULL; push_dim(ctx, &$$, @1, $1, NULL); }
    | "..."                { $$ = NULL; push_dim(ctx, &$$, @1, "...", NULL); }
    | dims "," NUMBER      { $$ = $1; push_dim(ctx, &$$, @3, NULL, &$3); }
    | dims "," NAME        { $$ = $1; push_dim(ctx, &$$, @3, $3, NULL); }
    | dims "," "..."       { $$ = $1; push_dim(ctx, &$$, @3, "...", NULL); }
    ;

/* ---- statements ------------------------------------------------------------- */

/* block: '{' stmt? (sep stmt?)* '}'
 * Which statements a block may hold is checked by elaboration. */
block: "{" { ctx->block_open = true; } stmt_seq "}"
         { ctx->block_open = false; $$ = $3; }
     ;

stmt_seq: opt_stmt
            { $$ = NULL; if ($1) *(Stmt *)avec_push(ctx->arena, &$$, sizeof(Stmt)) = *$1; }
        | stmt_seq sep opt_stmt
            { $$ = $1; if ($3) *(Stmt *)avec_push(ctx->arena, &$$, sizeof(Stmt)) = *$3; }
        ;

opt_stmt: %empty   { $$ = NULL; }
        | stmt
        | error    { recover_stmt(ctx, &yychar, &yylval, &yylloc); yyerrok; $$ = NULL; }
        ;

/* stmt: NAME '=' expr
 *     | 'param' NAME ':' type '=' expr
 *     | 'state' NAME '=' expr
 *     | 'return' expr
 *     | 'input' NAME ':' type
 *     | 'label' NAME ':' type
 *     | 'metric' NAME '=' expr
 *     | 'output' NAME          (the lexer's `output` only before a name) */
stmt: bind_name "=" expr
        { $$ = mk_stmt(ctx, S_BIND, @1, $1, @1, NULL, $3); }
    | "param" NAME ":" type "=" expr
        { $$ = mk_stmt(ctx, S_PARAM, @1, $2, @2, $4, $6); }
    | "state" NAME "=" expr
        { $$ = mk_stmt(ctx, S_STATE, @1, $2, @2, NULL, $4); }
    | "return" expr
        { $$ = mk_stmt(ctx, S_RETURN, @1, NULL, @1, NULL, $2); }
    | "input" NAME ":" type
        { $$ = mk_stmt(ctx, S_INPUT, @1, $2, @2, $4, NULL); }
    | "label" NAME ":" type
        { $$ = mk_stmt(ctx, S_LABEL, @1, $2, @2, $4, NULL); }
    | "metric" NAME "=" expr
        { $$ = mk_stmt(ctx, S_METRIC, @1, $2, @2, NULL, $4); }
    | "output" NAME
        { $$ = mk_stmt(ctx, S_OUTPUT, @1, $2, @2, NULL, NULL); }
    ;

/* `optimizer = adam()` is a train field: the keyword doubles as a name. */
bind_name: NAME
         | "optimizer"   { $$ = "optimizer"; }
         ;

/* ---- expressions -------------------------------------------------------------- */

/* expr: add (cmp_op add)?       comparisons do not chain */
expr: add
    | cmp
    ;
cmp: add cmp_op add   { $$ = mk_binary(ctx, (BinOp)$2, @2, $1, $3); }
   | cmp cmp_op add   { $$ = mk_cmp_chain(ctx, @2, $1); }
   ;
cmp_op: "==" { $$ = B_EQ; } | "!=" { $$ = B_NE; } | "<" { $$ = B_LT; }
      | "<=" { $$ = B_LE; } | ">" { $$ = B_GT; } | ">=" { $$ = B_GE; }
      ;

/* add: mul (('+' | '-') mul)* */
add: mul
   | add add_op mul   { $$ = mk_binary(ctx, (BinOp)$2, @2, $1, $3); }
   ;
add_op: "+" { $$ = B_ADD; } | "-" { $$ = B_SUB; } ;

/* mul: unary (('*' | '/' | '@') unary)* */
mul: unary
   | mul mul_op unary  { $$ = mk_binary(ctx, (BinOp)$2, @2, $1, $3); }
   ;
mul_op: "*" { $$ = B_MUL; } | "/" { $$ = B_DIV; } | "@" { $$ = B_MATMUL; } ;

/* unary: '-' unary | postfix ('^' unary)?
 * read flat as  '-'* postfix ('^' '-'* postfix)*  and folded from the right:
 * -x^2 is -(x^2), 2^-1 is 2^(-1), a^b^c is a^(b^c).  useq and upow are the
 * index on ctx->ustack where the sequence starts; negs push U_NEG there. */
unary: useq            { $$ = fold_unary(ctx, $1); }
     ;
useq: postfix          { $$ = useq_push(ctx, U_OPERAND, @1, $1); }
    | negs postfix     { $$ = $1; useq_push(ctx, U_OPERAND, @2, $2); }
    | upow postfix     { $$ = $1; useq_push(ctx, U_OPERAND, @2, $2); }
    | upow negs postfix { $$ = $1; useq_push(ctx, U_OPERAND, @3, $3); }
    ;
upow: useq "^"         { $$ = $1; useq_push(ctx, U_POW, @2, NULL); }
    ;
negs: "-"              { $$ = useq_push(ctx, U_NEG, @1, NULL); }
    | negs "-"         { $$ = $1; useq_push(ctx, U_NEG, @2, NULL); }
    ;

/* postfix: primary ('(' args? ')' | '[' expr ']')*     only a name is called */
postfix: primary
       | postfix "(" args_opt ")"  { $$ = mk_call(ctx, $1, @1, @2, $3); }
       | postfix "[" expr "]"      { $$ = mk_index(ctx, @1, $1, $3); }
       ;

/* primary: NUMBER | STRING | NAME | '(' expr ')' | '[' (expr (',' expr)* ','?)? ']'
 * (NAME includes f32 and i32, the conversions) */
primary: NUMBER          { $$ = mk_num(ctx, @1, $1); }
       | STRING          { $$ = mk_str(ctx, E_STR, @1, $1); }
       | NAME            { $$ = mk_str(ctx, E_NAME, @1, $1); }
       | "f32"           { $$ = mk_str(ctx, E_NAME, @1, "f32"); }
       | "i32"           { $$ = mk_str(ctx, E_NAME, @1, "i32"); }
       | "(" expr ")"    { $$ = $2; }
       | "[" list_opt "]" { $$ = mk_list(ctx, @1, $2); }
       ;

list_opt: %empty  { $$ = NULL; }
        | list
        | list ","
        ;
list: expr           { $$ = NULL; *(Expr **)avec_push(ctx->arena, &$$, sizeof(Expr *)) = $1; }
    | list "," expr  { $$ = $1; *(Expr **)avec_push(ctx->arena, &$$, sizeof(Expr *)) = $3; }
    ;

/* args: arg (',' arg)* ','?      arg: expr | NAME '=' expr
 * Positional arguments come before named ones.  A statement keyword names
 * an argument too: csv(path, label = 0). */
args_opt: %empty  { $$ = NULL; }
        | args
        | args ","
        ;
args: arg            { $$ = NULL; push_arg(ctx, &$$, $1, @1); }
    | args "," arg   { $$ = $1; push_arg(ctx, &$$, $3, @3); }
    ;
arg: expr
       { $$ = arena_alloc(ctx->arena, sizeof(Arg)); $$->value = $1; }
   | arg_name "=" expr
       { $$ = arena_alloc(ctx->arena, sizeof(Arg)); $$->name = $1; $$->name_loc = src(ctx, @1); $$->value = $3; }
   ;
arg_name: NAME
        | "param"   { $$ = "param"; }
        | "state"   { $$ = "state"; }
        | "return"  { $$ = "return"; }
        | "input"   { $$ = "input"; }
        | "label"   { $$ = "label"; }
        | "metric"  { $$ = "metric"; }
        ;

%%

/* ---- helpers ------------------------------------------------------------------ */

static SrcLoc src(const ParseCtx *ctx, NnLoc l) {
  SrcLoc s = {ctx->file, l.line, l.col};
  return s;
}

/* Appends a zeroed element of `size` bytes to *v (created on first use) and
 * returns it.  Growth doubles, so the arena holds at most twice the data. */
static void *avec_push(Arena *a, AVec **v, size_t size) {
  if (!*v) *v = arena_alloc(a, sizeof(AVec));
  AVec *w = *v;
  if (w->n == w->cap) {
    uint32_t cap = w->cap ? 2 * w->cap : 4;
    void *data = arena_alloc(a, (size_t)cap * size);
    if (w->n) memcpy(data, w->data, (size_t)w->n * size);
    w->data = data;
    w->cap = cap;
  }
  return (char *)w->data + (size_t)w->n++ * size;
}

static void add_item(ParseCtx *ctx, ItemKind k, NnLoc l, const char *name, NnLoc nl,
                     AVec *params, AVec *body, Expr *expr_body) {
  Item it;
  memset(&it, 0, sizeof it);
  it.kind = k;
  it.loc = src(ctx, l);
  it.name = name;
  it.name_loc = src(ctx, nl);
  if (params) it.params = params->data, it.nparams = params->n;
  if (body) it.body = body->data, it.nbody = body->n;
  it.expr_body = expr_body;
  VEC_PUSH(ctx->items, ctx->nitems, ctx->capitems, it);
}

/* The placeholder for an expression whose error has been reported. */
static const char poison_name[] = "<error>";

static bool is_poison(const Expr *e) { return e->kind == E_NAME && e->u.str == poison_name; }

static Expr *poison(ParseCtx *ctx, NnLoc l) { return mk_str(ctx, E_NAME, l, poison_name); }

static Expr *new_expr(ParseCtx *ctx, ExprKind k, NnLoc l) {
  Expr *e = arena_alloc(ctx->arena, sizeof(Expr));
  e->kind = k;
  e->loc = src(ctx, l);
  e->depth = 1;
  return e;
}

/* Replaces a too deep expression by poison, reporting it once. */
static Expr *check_depth(ParseCtx *ctx, Expr *e) {
  if (e->depth <= MAX_EXPR_DEPTH) return e;
  diag_error(e->loc, "expression is nested too deeply (limit %d)", MAX_EXPR_DEPTH);
  NnLoc l = {e->loc.line, e->loc.col};
  return poison(ctx, l);
}

static Expr *mk_num(ParseCtx *ctx, NnLoc l, NumLit n) {
  Expr *e = new_expr(ctx, E_NUM, l);
  e->u.num.value = n.value;
  e->u.num.is_int = n.is_int;
  return e;
}

static Expr *mk_str(ParseCtx *ctx, ExprKind k, NnLoc l, const char *s) {
  Expr *e = new_expr(ctx, k, l);
  e->u.str = s;
  return e;
}

static Expr *mk_unary(ParseCtx *ctx, NnLoc l, Expr *operand) {
  if (is_poison(operand)) return operand;
  Expr *e = new_expr(ctx, E_UNARY, l);
  e->u.unary.operand = operand;
  e->depth = operand->depth + 1;
  return check_depth(ctx, e);
}

/* Elaboration walks left spines iteratively, so only the right operand adds
 * a level. */
static Expr *mk_binary(ParseCtx *ctx, BinOp op, NnLoc l, Expr *lhs, Expr *rhs) {
  if (is_poison(lhs)) return lhs;
  if (is_poison(rhs)) return rhs;
  Expr *e = new_expr(ctx, E_BINARY, l);
  e->u.binary.op = op;
  e->u.binary.lhs = lhs;
  e->u.binary.rhs = rhs;
  e->depth = lhs->depth > rhs->depth + 1 ? lhs->depth : rhs->depth + 1;
  return check_depth(ctx, e);
}

/* `a < b < c`: comparisons are non-associative. */
static Expr *mk_cmp_chain(ParseCtx *ctx, NnLoc l, Expr *lhs) {
  if (!is_poison(lhs))
    diag_error(src(ctx, l), "comparison operators cannot be chained; add parentheses");
  return poison(ctx, l);
}

static Expr *mk_call(ParseCtx *ctx, Expr *callee, NnLoc l, NnLoc paren, AVec *args) {
  if (is_poison(callee)) return callee;
  if (callee->kind != E_NAME) {
    diag_error(src(ctx, paren), "only a name can be called");
    return poison(ctx, l);
  }
  Expr *e = new_expr(ctx, E_CALL, l);
  e->u.call.callee = callee->u.str;
  e->u.call.callee_loc = callee->loc;
  uint32_t depth = 0;
  if (args) {
    e->u.call.args = args->data;
    e->u.call.nargs = args->n;
    for (uint32_t i = 0; i < args->n; i++) {
      Expr *v = e->u.call.args[i].value;
      if (is_poison(v)) return v;
      if (v->depth > depth) depth = v->depth;
    }
  }
  e->depth = depth + 1;
  return check_depth(ctx, e);
}

static Expr *mk_index(ParseCtx *ctx, NnLoc l, Expr *base, Expr *index) {
  if (is_poison(base)) return base;
  if (is_poison(index)) return index;
  Expr *e = new_expr(ctx, E_INDEX, l);
  e->u.index.base = base;
  e->u.index.index = index;
  e->depth = 1 + (base->depth > index->depth ? base->depth : index->depth);
  return check_depth(ctx, e);
}

static Expr *mk_list(ParseCtx *ctx, NnLoc l, AVec *items) {
  Expr *e = new_expr(ctx, E_LIST, l);
  uint32_t depth = 0;
  if (items) {
    e->u.list.items = items->data;
    e->u.list.nitems = items->n;
    for (uint32_t i = 0; i < items->n; i++) {
      Expr *v = e->u.list.items[i];
      if (is_poison(v)) return v;
      if (v->depth > depth) depth = v->depth;
    }
  }
  e->depth = depth + 1;
  return check_depth(ctx, e);
}

static void push_arg(ParseCtx *ctx, AVec **args, Arg *a, NnLoc l) {
  if (!a->name && *args && (*args)->n &&
      ((Arg *)(*args)->data)[(*args)->n - 1].name)
    diag_error(src(ctx, l), "positional argument after a named argument");
  *(Arg *)avec_push(ctx->arena, args, sizeof(Arg)) = *a;
}

/* Pushes an entry of a unary sequence; returns its index on ctx->ustack. */
static uint32_t useq_push(ParseCtx *ctx, int kind, NnLoc l, Expr *e) {
  UItem u = {kind, l, e};
  VEC_PUSH(ctx->ustack, ctx->nustack, ctx->capustack, u);
  return ctx->nustack - 1;
}

/* Folds the sequence ustack[start..] ('-'* operand ('^' '-'* operand)*) from
 * the right into a tree and pops it. */
static Expr *fold_unary(ParseCtx *ctx, uint32_t start) {
  uint32_t i = ctx->nustack - 1;
  NNC_ASSERT(ctx->ustack[i].kind == U_OPERAND && i >= start);
  Expr *acc = ctx->ustack[i].e;
  while (i-- > start) {
    UItem *u = &ctx->ustack[i];
    if (u->kind == U_NEG) {
      acc = mk_unary(ctx, u->loc, acc);
    } else {
      NNC_ASSERT(u->kind == U_POW && i > start && ctx->ustack[i - 1].kind == U_OPERAND);
      acc = mk_binary(ctx, B_POW, u->loc, ctx->ustack[i - 1].e, acc);
      i--;
    }
  }
  ctx->nustack = start;
  return acc;
}

static Stmt *mk_stmt(ParseCtx *ctx, StmtKind k, NnLoc l, const char *name, NnLoc nl,
                     TypeExpr *type, Expr *value) {
  Stmt *s = arena_alloc(ctx->arena, sizeof(Stmt));
  s->kind = k;
  s->loc = src(ctx, l);
  s->name = name;
  s->name_loc = src(ctx, nl);
  s->type = type;
  s->value = value;
  return s;
}

static Param *mk_param(ParseCtx *ctx, const char *name, NnLoc l, TypeExpr *type, Expr *init) {
  Param *p = arena_alloc(ctx->arena, sizeof(Param));
  p->name = name;
  p->loc = src(ctx, l);
  p->type = type;
  p->init = init;
  return p;
}

static TypeExpr *mk_type(ParseCtx *ctx, int dtype, NnLoc l, AVec *dims) {
  TypeExpr *t = arena_alloc(ctx->arena, sizeof(TypeExpr));
  t->loc = src(ctx, l);
  t->dtype = dtype;
  if (dims) {
    t->has_shape = true;
    t->rank = dims->n;
    t->dims = dims->data;
    /* '...' (pushed with the name "...") stands first, once */
    for (uint32_t i = 0; i < t->rank; i++)
      if (t->dims[i].name && !strcmp(t->dims[i].name, "...") && i > 0)
        diag_error(t->dims[i].loc, "'...' (any leading axes) must come first in a shape");
    if (t->rank && t->dims[0].name && !strcmp(t->dims[0].name, "...")) {
      t->ellipsis = true;
      t->ellipsis_loc = t->dims[0].loc;
      t->dims++;
      t->rank--;
    }
  }
  return t;
}

static void push_dim(ParseCtx *ctx, AVec **dims, NnLoc l, const char *name, const NumLit *n) {
  DimExpr *d = avec_push(ctx->arena, dims, sizeof(DimExpr));
  d->loc = src(ctx, l);
  d->name = name;
  if (n) {
    if (!n->is_int)
      diag_error(d->loc, "a dimension must be an integer or a name, found number '%g'",
                 n->value);
    else
      d->value = (int64_t)n->value;
  }
}

/* ---- error recovery ---------------------------------------------------------- */

/* Recovery inside a block (`opt_stmt: error`), with *la the lookahead. */
static void recover_stmt(ParseCtx *ctx, int *la, const NN_STYPE *lval, const NnLoc *lloc) {
  ctx->nustack = 0;
  LexToken t = ctx->last;
  t.kind = *la;
  t.value = *lval;
  t.loc = *lloc;
  switch (*la) {
  case TOK_RBRACE:
    if (!nnlex_closes_block(ctx, &t)) {
      *la = TOK_NN_EMPTY; /* a stray '}' */
      break;
    }
    return;
  case TOK_NEWLINE:
  case TOK_SEMI:
    return; /* ends the statement: the parser takes it */
  case TOK_NN_EMPTY:
    break;
  default: {
    /* `optimizer NAME` at the start of a line: an item, not a train field. */
    bool opt_item = *la == TOK_NAME && ctx->prev.kind == TOK_OPTIMIZER && ctx->prev.loc.col == 1;
    if (opt_item || nnlex_starts_item(&t)) {
      /* The block was never closed: give it its '}', then the item. */
      LexToken close = opt_item ? ctx->prev : t;
      close.kind = TOK_RBRACE;
      close.len = 0;
      nnlex_unget(ctx, &t);
      if (opt_item) nnlex_unget(ctx, &ctx->prev);
      nnlex_unget(ctx, &close);
      *la = TOK_NN_EMPTY;
      return;
    }
    /* A bracket left open on an earlier line, and this token starts a
     * line: the bracket was never closed, and this line is a statement of
     * its own.  Let the newline at its end count again. */
    if (ctx->brackets && t.brackets && ctx->prev.loc.line < t.loc.line) ctx->brackets = 0;
    *la = TOK_NN_EMPTY; /* drop it here rather than let the parser discard it */
    break;
  }
  }
  if (ctx->skip < SKIP_STMT) ctx->skip = SKIP_STMT;
}

/* Recovery at the top level (`item_seq: item_seq error`). */
static void recover_item(ParseCtx *ctx, int *la) {
  ctx->nustack = 0;
  ctx->block_open = false;
  if (*la == TOK_YYEOF || (nnlex_is_item_keyword(*la) && ctx->last.first)) {
    /* Taken by the parser: must be a fresh token, else we would loop. */
    size_t off = ctx->last.off + 1;
    if (*la == TOK_YYEOF || off != ctx->recover_off) {
      ctx->recover_off = off;
      return;
    }
  }
  if (*la != TOK_NN_EMPTY) *la = TOK_NN_EMPTY;
  ctx->skip = SKIP_ITEM;
}

/* ---- syntax errors ----------------------------------------------------------- */

/* A keyword or punctuation token, quoted: '+'. */
static void quote_symbol(yysymbol_kind_t k, char *buf, size_t size) {
  snprintf(buf, size, "'%s'", yysymbol_name(k));
}

/* How a token is shown after "found": its kind and, for names, numbers and
 * strings, its text as written. */
static void describe_found(const ParseCtx *ctx, yysymbol_kind_t k, char *buf, size_t size) {
  const LexToken *t = &ctx->last;
  const char *text = t->len ? diag_quote(ctx->text + t->off, t->len) : "";
  switch (k) {
  case YYSYMBOL_YYEOF: snprintf(buf, size, "end of file"); break;
  case YYSYMBOL_NEWLINE: snprintf(buf, size, "newline"); break;
  case YYSYMBOL_NAME: snprintf(buf, size, "identifier '%s'", text); break;
  case YYSYMBOL_NUMBER: snprintf(buf, size, "number '%s'", text); break;
  case YYSYMBOL_STRING: snprintf(buf, size, "string %s", text); break;
  default: quote_symbol(k, buf, size); break;
  }
}

/* An entry of the "expected" list: lower prio is shown first. */
typedef struct Expect {
  int prio;
  const char *text;
} Expect;

/* Where a token sits in the "expected" list, most useful first; 0 drops it
 * (shown through a summary instead).  ORDER: matches the %token list. */
static int expect_prio(yysymbol_kind_t k) {
  switch (k) {
  case YYSYMBOL_RPAREN: return 10;
  case YYSYMBOL_RBRACKET: return 11;
  case YYSYMBOL_COMMA: return 12;
  case YYSYMBOL_NEWLINE: return 14;
  case YYSYMBOL_SEMI: return 15;
  case YYSYMBOL_RBRACE: return 16;
  case YYSYMBOL_ASSIGN: return 17;
  case YYSYMBOL_COLON: return 18;
  case YYSYMBOL_LBRACE: return 19;
  case YYSYMBOL_LPAREN: return 20;
  case YYSYMBOL_LBRACKET: return 21;
  case YYSYMBOL_NAME: return 23;
  case YYSYMBOL_NUMBER: return 24;
  case YYSYMBOL_STRING: return 25;
  case YYSYMBOL_YYEOF: return 60;
  default:
    if (k >= YYSYMBOL_PLUS && k <= YYSYMBOL_GE) return 27;
    if (k >= YYSYMBOL_IMPORT && k <= YYSYMBOL_I32) return 30 + (k - YYSYMBOL_IMPORT);
    return 0;
  }
}

static const char *expect_text(yysymbol_kind_t k) {
  switch (k) {
  case YYSYMBOL_YYEOF: return "end of file";
  case YYSYMBOL_NEWLINE: return "newline";
  case YYSYMBOL_NAME: return "identifier";
  case YYSYMBOL_NUMBER: return "number";
  case YYSYMBOL_STRING: return "string";
  default: return NULL; /* quoted from yysymbol_name */
  }
}

/* `expected X, Y or Z, found W`.  Sets of tokens are summarised: everything
 * that starts an expression as "expression", a statement as "statement", the
 * binary operators (and call/index brackets) after an operand as "operator";
 * at the top level only the item keywords are listed. */
static int yyreport_syntax_error(const yypcontext_t *yyctx, ParseCtx *ctx) {
  yysymbol_kind_t la = yypcontext_token(yyctx);
  if (la == YYSYMBOL_YYUNDEF || la == YYSYMBOL_YYerror) return 0; /* reported by the lexer */
  yysymbol_kind_t exp[YYNTOKENS];
  int n = yypcontext_expected_tokens(yyctx, exp, YYNTOKENS);
  if (n < 0) n = 0;
  bool has[YYNTOKENS] = {false};
  for (int i = 0; i < n; i++) has[exp[i]] = true;
  bool at_item = has[YYSYMBOL_FN];
  bool at_expr = has[YYSYMBOL_NUMBER] && has[YYSYMBOL_LPAREN];
  bool at_stmt = has[YYSYMBOL_PARAM] && !at_expr; /* not `label = ` in a call */
  bool after_operand = has[YYSYMBOL_PLUS];

  char quoted[YYNTOKENS][16];
  Expect list[YYNTOKENS + 3];
  int m = 0;
  if (at_expr) list[m++] = (Expect){5, "expression"};
  if (at_stmt) list[m++] = (Expect){13, "statement"};
  if (after_operand) list[m++] = (Expect){26, "operator"};
  for (int i = 0; i < n; i++) {
    yysymbol_kind_t k = exp[i];
    int prio = expect_prio(k);
    if (!prio) continue;
    if (at_item && (k == YYSYMBOL_NEWLINE || k == YYSYMBOL_SEMI || k == YYSYMBOL_YYEOF)) continue;
    if (at_stmt && (k == YYSYMBOL_NAME || (k >= YYSYMBOL_PARAM && k <= YYSYMBOL_METRIC) || k == YYSYMBOL_OUTPUT ||
                    k == YYSYMBOL_OPTIMIZER || k == YYSYMBOL_NEWLINE || k == YYSYMBOL_SEMI))
      continue;
    if (at_expr && (k == YYSYMBOL_NAME || k == YYSYMBOL_NUMBER || k == YYSYMBOL_STRING ||
                    k == YYSYMBOL_LPAREN || k == YYSYMBOL_LBRACKET || k == YYSYMBOL_MINUS))
      continue;
    if (has[YYSYMBOL_NAME] && (k == YYSYMBOL_F32 || k == YYSYMBOL_I32))
      continue; /* names like f32(x): say "identifier" */
    if (at_expr && k >= YYSYMBOL_PARAM && k <= YYSYMBOL_METRIC)
      continue; /* argument names like label = 0 */
    if (after_operand && ((k >= YYSYMBOL_PLUS && k <= YYSYMBOL_GE) || k == YYSYMBOL_LPAREN ||
                          k == YYSYMBOL_LBRACKET))
      continue;
    const char *text = expect_text(k);
    if (!text) {
      quote_symbol(k, quoted[k], sizeof quoted[k]);
      text = quoted[k];
    }
    list[m++] = (Expect){prio, text};
  }
  /* Insertion sort by priority (stable: the lists are short). */
  for (int i = 1; i < m; i++) {
    Expect e = list[i];
    int j = i;
    for (; j > 0 && list[j - 1].prio > e.prio; j--) list[j] = list[j - 1];
    list[j] = e;
  }
  if (m > 6) m = 6;

  char found[320], msg[640];
  describe_found(ctx, la, found, sizeof found);
  size_t o = 0;
  if (m == 0) {
    o += (size_t)snprintf(msg, sizeof msg, "unexpected %s", found);
  } else {
    o += (size_t)snprintf(msg, sizeof msg, "expected ");
    for (int i = 0; i < m; i++) {
      const char *joint = i == 0 ? "" : i == m - 1 ? " or " : ", ";
      o += (size_t)snprintf(msg + o, sizeof msg - o, "%s%s", joint, list[i].text);
    }
    snprintf(msg + o, sizeof msg - o, ", found %s", found);
  }
  diag_error(src(ctx, *yypcontext_location(yyctx)), "%s", msg);

  /* A bracket left open hides the newlines after it: show where it is. */
  uint32_t open = ctx->last.brackets;
  if (open > 0 && open <= LEX_MAX_BRACKETS &&
      ctx->open_loc[open - 1].line != yypcontext_location(yyctx)->line) {
    bool paren = ctx->open_kind[open - 1] == TOK_LPAREN;
    if (has[paren ? YYSYMBOL_RPAREN : YYSYMBOL_RBRACKET])
      diag_note(src(ctx, ctx->open_loc[open - 1]), "to match this '%s'", paren ? "(" : "[");
  }
  return 0;
}

/* Bison's own messages; with the limits above, "memory exhausted" cannot
 * happen on any input, but say something sensible if it does. */
static void nn_error(NnLoc *loc, ParseCtx *ctx, const char *msg) {
  diag_error(src(ctx, *loc), "%s (input is nested too deeply)", msg);
}

/* ---- entry point ------------------------------------------------------------- */

Program *parse_file(Arena *arena, uint32_t file_id) {
  Program *p = arena_alloc(arena, sizeof(Program));
  p->file = file_id;
  const SourceFile *f = diag_file(&nnc_diag, file_id);
  if (!f || file_id == 0) return p;

  ParseCtx ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.arena = arena;
  ctx.file = file_id;
  ctx.text = f->text;
  ctx.len = f->len;
  ctx.line = ctx.col = 1;
  nnlex_open(&ctx);
  nn_parse(&ctx);
  nnlex_close(&ctx);

  if (ctx.nitems) {
    p->items = arena_alloc(arena, ctx.nitems * sizeof(Item));
    memcpy(p->items, ctx.items, ctx.nitems * sizeof(Item));
    p->nitems = ctx.nitems;
  }
  free(ctx.items);
  free(ctx.ustack);
  return p;
}
