/* test/unit/test_parser.c - unit tests of the lexer and parser (frontend/).
 *
 * Parses strings and checks the trees (written compactly as s-expressions
 * by sx() below), the source locations, the exact diagnostics (collected in
 * verify mode and written "line:col: level: message"), error recovery, and
 * that hostile inputs (deep nesting, huge tokens, long chains, random bytes)
 * finish quickly without a crash.  Exits non-zero on any failure.
 */
#include "frontend/ast.h"
#include "support/diag.h"
#include "support/arena.h"
#include "ir/ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

/* Compares two strings, printing both on a mismatch. */

/* ---- harness ------------------------------------------------------------------ */

static Arena arena;
static uint32_t file_id;

static void reset_diag(void) {
  for (uint32_t i = 0; i < nnc_diag.nfiles; i++) {
    free(nnc_diag.files[i].path);
    free(nnc_diag.files[i].text);
  }
  free(nnc_diag.files);
  for (uint32_t i = 0; i < nnc_diag.ncollected; i++) free(nnc_diag.collected[i].msg);
  free(nnc_diag.collected);
  diag_init(&nnc_diag);
  nnc_diag.verify = true;
  nnc_diag.error_limit = 1000;
}

static Program *parse_n(const char *src, size_t len) {
  reset_diag();
  arena_free(&arena);
  file_id = diag_add_file(&nnc_diag, "t.nn", src, len);
  Program *p = parse_file(&arena, file_id);
  CHECK(p != NULL && p->file == file_id);
  return p;
}

static Program *parse(const char *src) { return parse_n(src, strlen(src)); }

/* The collected diagnostics, one per line: "L:C: error: message". */
static const char *diags(void) {
  static char buf[1 << 16];
  static const char *level[] = {"error", "warning", "note"};
  size_t o = 0;
  buf[0] = 0;
  for (uint32_t i = 0; i < nnc_diag.ncollected && o < sizeof buf - 512; i++) {
    const Diagnostic *d = &nnc_diag.collected[i];
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%u:%u: %s: %s\n", d->loc.line, d->loc.col,
                          level[d->level], d->msg);
  }
  return buf;
}

/* An expression as an s-expression: (+ a b), (- x), (f a k=v), ([] v i),
 * [a b], numbers as written by %g, strings quoted. */
static void sx_rec(const Expr *e, char *buf, size_t size, size_t *o) {
#define OUT(...) (*o += (size_t)snprintf(buf + *o, *o < size ? size - *o : 0, __VA_ARGS__))
  switch (e->kind) {
  case E_NUM: OUT("%g", e->u.num.value); break;
  case E_STR: OUT("\"%s\"", e->u.str); break;
  case E_NAME: OUT("%s", e->u.str); break;
  case E_UNARY:
    OUT("(- ");
    sx_rec(e->u.unary.operand, buf, size, o);
    OUT(")");
    break;
  case E_BINARY:
    OUT("(%s ", binop_text(e->u.binary.op));
    sx_rec(e->u.binary.lhs, buf, size, o);
    OUT(" ");
    sx_rec(e->u.binary.rhs, buf, size, o);
    OUT(")");
    break;
  case E_CALL:
    OUT("(%s", e->u.call.callee);
    for (uint32_t i = 0; i < e->u.call.nargs; i++) {
      OUT(" ");
      if (e->u.call.args[i].name) OUT("%s=", e->u.call.args[i].name);
      sx_rec(e->u.call.args[i].value, buf, size, o);
    }
    OUT(")");
    break;
  case E_INDEX:
    OUT("([] ");
    sx_rec(e->u.index.base, buf, size, o);
    OUT(" ");
    sx_rec(e->u.index.index, buf, size, o);
    OUT(")");
    break;
  case E_LIST:
    OUT("[");
    for (uint32_t i = 0; i < e->u.list.nitems; i++) {
      if (i) OUT(" ");
      sx_rec(e->u.list.items[i], buf, size, o);
    }
    OUT("]");
    break;
  }
#undef OUT
}

static const char *sx(const Expr *e) {
  static char bufs[4][4096];
  static int next;
  char *buf = bufs[next++ & 3];
  size_t o = 0;
  buf[0] = 0;
  if (e) sx_rec(e, buf, 4096, &o);
  else snprintf(buf, 4096, "<null>");
  return buf;
}

/* Parses `fn t() = SRC` and returns the body expression (NULL on errors). */
static const Expr *expr_of(const char *src) {
  char buf[4096];
  snprintf(buf, sizeof buf, "fn t() = %s\n", src);
  Program *p = parse(buf);
  if (diag_error_count() || p->nitems != 1) {
    fprintf(stderr, "unexpected errors in '%s':\n%s", src, diags());
    return NULL;
  }
  return p->items[0].expr_body;
}

static bool loc_is(SrcLoc l, uint32_t line, uint32_t col) {
  return l.file == file_id && l.line == line && l.col == col;
}

static char *ast_text(const Program *p) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  ast_print(p, f);
  fclose(f);
  return text;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the contract example ----------------------------------------------------- */

static const char mnist[] =
    "# examples/mnist.nn — a 784-64-10 perceptron on MNIST-format data\n"
    "model mnist {\n"
    "  input  x: f32[784]            # one sample; the batch axis is implicit\n"
    "  label  y: i32                 # class index\n"
    "  h      = relu(dense(x, 64))\n"
    "  logits = dense(h, 10)\n"
    "  loss   = cross_entropy(logits, y)\n"
    "  metric accuracy = argmax(logits) == y\n"
    "}\n"
    "\n"
    "train mnist {\n"
    "  data      = idx(\"/usr/share/datasets/fashion-mnist\")\n"
    "  scale     = 1/255\n"
    "  optimizer = adam(lr = 0.001)\n"
    "  batch     = 32\n"
    "  epochs    = 5\n"
    "  seed      = 1\n"
    "}\n";

static void test_mnist(void) {
  Program *p = parse(mnist);
  CHECK_STR(diags(), "");
  CHECK(p->nitems == 2);
  if (p->nitems != 2) return;

  const Item *m = &p->items[0];
  CHECK(m->kind == I_MODEL && !strcmp(m->name, "mnist"));
  CHECK(loc_is(m->loc, 2, 1) && loc_is(m->name_loc, 2, 7));
  CHECK(m->nparams == 0 && m->expr_body == NULL && m->nbody == 6);
  if (m->nbody == 6) {
    const Stmt *s = m->body;
    CHECK(s[0].kind == S_INPUT && !strcmp(s[0].name, "x") && loc_is(s[0].loc, 3, 3));
    CHECK(loc_is(s[0].name_loc, 3, 10) && s[0].value == NULL);
    CHECK(s[0].type && s[0].type->dtype == DT_F32 && s[0].type->has_shape);
    CHECK(s[0].type->rank == 1 && s[0].type->dims[0].value == 784 && !s[0].type->dims[0].name);
    CHECK(loc_is(s[0].type->loc, 3, 13) && loc_is(s[0].type->dims[0].loc, 3, 17));
    CHECK(s[1].kind == S_LABEL && !strcmp(s[1].name, "y"));
    CHECK(s[1].type && s[1].type->dtype == DT_I32 && !s[1].type->has_shape && s[1].type->rank == 0);
    CHECK(s[2].kind == S_BIND && !strcmp(s[2].name, "h") && loc_is(s[2].loc, 5, 3));
    CHECK(loc_is(s[2].name_loc, 5, 3) && s[2].type == NULL);
    CHECK_STR(sx(s[2].value), "(relu (dense x 64))");
    CHECK(loc_is(s[2].value->loc, 5, 12) && loc_is(s[2].value->u.call.callee_loc, 5, 12));
    CHECK(loc_is(s[2].value->u.call.args[0].value->loc, 5, 17));
    CHECK(s[3].kind == S_BIND && !strcmp(s[3].name, "logits"));
    CHECK_STR(sx(s[3].value), "(dense h 10)");
    CHECK(s[4].kind == S_BIND && !strcmp(s[4].name, "loss"));
    CHECK_STR(sx(s[4].value), "(cross_entropy logits y)");
    CHECK(s[5].kind == S_METRIC && !strcmp(s[5].name, "accuracy") && loc_is(s[5].loc, 8, 3));
    CHECK(loc_is(s[5].name_loc, 8, 10));
    CHECK_STR(sx(s[5].value), "(== (argmax logits) y)");
    CHECK(loc_is(s[5].value->loc, 8, 36)); /* the operator */
  }

  const Item *t = &p->items[1];
  CHECK(t->kind == I_TRAIN && !strcmp(t->name, "mnist") && loc_is(t->loc, 11, 1));
  CHECK(t->nbody == 6);
  if (t->nbody == 6) {
    const Stmt *s = t->body;
    const char *names[] = {"data", "scale", "optimizer", "batch", "epochs", "seed"};
    const char *values[] = {"(idx \"/usr/share/datasets/fashion-mnist\")", "(/ 1 255)",
                            "(adam lr=0.001)", "32", "5", "1"};
    for (int i = 0; i < 6; i++) {
      CHECK(s[i].kind == S_BIND && !strcmp(s[i].name, names[i]));
      CHECK_STR(sx(s[i].value), values[i]);
    }
    const Arg *lr = &s[2].value->u.call.args[0];
    CHECK(loc_is(lr->name_loc, 14, 20) && !lr->value->u.num.is_int);
    CHECK(s[3].value->u.num.is_int && s[3].value->u.num.value == 32);
  }

  char *text = ast_text(p);
  CHECK_STR(text,
            "model mnist 2:1\n"
            "  input x: f32[784] 3:3\n"
            "  label y: i32 4:3\n"
            "  bind h 5:3\n"
            "    call relu 5:12\n"
            "      call dense 5:17\n"
            "        name x 5:23\n"
            "        num 64 5:26\n"
            "  bind logits 6:3\n"
            "    call dense 6:12\n"
            "      name h 6:18\n"
            "      num 10 6:21\n"
            "  bind loss 7:3\n"
            "    call cross_entropy 7:12\n"
            "      name logits 7:26\n"
            "      name y 7:34\n"
            "  metric accuracy 8:3\n"
            "    binary == 8:36\n"
            "      call argmax 8:21\n"
            "        name logits 8:28\n"
            "      name y 8:39\n"
            "train mnist 11:1\n"
            "  bind data 12:3\n"
            "    call idx 12:15\n"
            "      str \"/usr/share/datasets/fashion-mnist\" 12:19\n"
            "  bind scale 13:3\n"
            "    binary / 13:16\n"
            "      num 1 13:15\n"
            "      num 255 13:17\n"
            "  bind optimizer 14:3\n"
            "    call adam 14:15\n"
            "      arg lr = 14:20\n"
            "        num 0.001 14:25\n"
            "  bind batch 15:3\n"
            "    num 32 15:15\n"
            "  bind epochs 16:3\n"
            "    num 5 16:15\n"
            "  bind seed 17:3\n"
            "    num 1 17:15\n");
  free(text);
}

/* ---- every construct ---------------------------------------------------------- */

static void test_items(void) {
  Program *p = parse(
      "import \"lib/extra.nn\"\n"
      "fn scale(x: f32[n, 4], k = 2) = x * k\n"
      "fn softmax(x) {\n"
      "  e = exp(x - max(x, axis = -1))\n"
      "  return e / sum(e, axis = -1)\n"
      "}\n"
      "layer dense(x: f32[n], units) {\n"
      "  param w: f32[n, units] = glorot_uniform()\n"
      "  param b: f32[units] = zeros()\n"
      "  return x @ w + b\n"
      "}\n"
      "optimizer sgd(lr: f32 = 0.01, momentum = 0) {\n"
      "  state v = zeros()\n"
      "  v = momentum * v + g\n"
      "  p = p - lr * v\n"
      "}\n"
      "model m {\n"
      "  input x: i32[28, 28]\n"
      "  param s: f32 = 1\n"
      "  loss = f32(x) + i32(1)\n"
      "}\n"
      "fn f32(x) = x\n");
  CHECK_STR(diags(), "");
  CHECK(p->nitems == 7);
  if (p->nitems != 7) return;
  const Item *it = p->items;
  CHECK(it[0].kind == I_IMPORT && !strcmp(it[0].name, "lib/extra.nn") && loc_is(it[0].name_loc, 1, 8));

  CHECK(it[1].kind == I_FN && !strcmp(it[1].name, "scale") && it[1].nparams == 2 && it[1].nbody == 0);
  CHECK_STR(sx(it[1].expr_body), "(* x k)");
  const Param *pa = it[1].params;
  CHECK(!strcmp(pa[0].name, "x") && loc_is(pa[0].loc, 2, 10) && pa[0].init == NULL);
  CHECK(pa[0].type && pa[0].type->rank == 2 && !strcmp(pa[0].type->dims[0].name, "n"));
  CHECK(pa[0].type->dims[1].name == NULL && pa[0].type->dims[1].value == 4);
  CHECK(!strcmp(pa[1].name, "k") && pa[1].type == NULL && !strcmp(sx(pa[1].init), "2"));

  CHECK(it[2].kind == I_FN && it[2].expr_body == NULL && it[2].nbody == 2);
  if (it[2].nbody == 2) {
    CHECK_STR(sx(it[2].body[0].value), "(exp (- x (max x axis=(- 1))))");
    CHECK(it[2].body[1].kind == S_RETURN && it[2].body[1].name == NULL);
    CHECK(loc_is(it[2].body[1].loc, 5, 3));
    CHECK_STR(sx(it[2].body[1].value), "(/ e (sum e axis=(- 1)))");
  }

  CHECK(it[3].kind == I_LAYER && !strcmp(it[3].name, "dense") && it[3].nparams == 2);
  CHECK(it[3].nbody == 3);
  if (it[3].nbody == 3) {
    const Stmt *w = &it[3].body[0];
    CHECK(w->kind == S_PARAM && !strcmp(w->name, "w") && loc_is(w->loc, 8, 3));
    CHECK(loc_is(w->name_loc, 8, 9) && w->type->rank == 2);
    CHECK_STR(sx(w->value), "(glorot_uniform)");
    CHECK(w->value->u.call.nargs == 0 && w->value->u.call.args == NULL);
    CHECK_STR(sx(it[3].body[2].value), "(+ (@ x w) b)");
  }

  CHECK(it[4].kind == I_OPTIMIZER && !strcmp(it[4].name, "sgd") && it[4].nparams == 2);
  CHECK(it[4].params[0].type && !it[4].params[0].type->has_shape);
  CHECK_STR(sx(it[4].params[0].init), "0.01");
  CHECK(it[4].nbody == 3 && it[4].body[0].kind == S_STATE && !strcmp(it[4].body[0].name, "v"));
  CHECK(it[4].body[1].kind == S_BIND && it[4].body[2].kind == S_BIND);

  CHECK(it[5].kind == I_MODEL && it[5].nbody == 3);
  if (it[5].nbody == 3) {
    CHECK(it[5].body[0].type->dtype == DT_I32 && it[5].body[0].type->rank == 2);
    CHECK(it[5].body[1].kind == S_PARAM && !it[5].body[1].type->has_shape);
    CHECK_STR(sx(it[5].body[2].value), "(+ (f32 x) (i32 1))");
  }
  CHECK(it[6].kind == I_FN && !strcmp(it[6].name, "f32"));
}

static void test_precedence(void) {
  static const char *const cases[][2] = {
      {"-x^2", "(- (^ x 2))"},
      {"a-b-c", "(- (- a b) c)"},
      {"a*b@c", "(@ (* a b) c)"},
      {"a@b*c", "(* (@ a b) c)"},
      {"a/b/c", "(/ (/ a b) c)"},
      {"2^-1", "(^ 2 (- 1))"},
      {"a^b^c", "(^ a (^ b c))"},
      {"2^-x^2", "(^ 2 (- (^ x 2)))"},
      {"-a^-b^c", "(- (^ a (- (^ b c))))"},
      {"- - x", "(- (- x))"},
      {"-a*b", "(* (- a) b)"},
      {"a - -b", "(- a (- b))"},
      {"a+b*c", "(+ a (* b c))"},
      {"(a+b)*c", "(* (+ a b) c)"},
      {"a < b + 1", "(< a (+ b 1))"},
      {"a + 1 == b * 2", "(== (+ a 1) (* b 2))"},
      {"a != b", "(!= a b)"},
      {"a <= b", "(<= a b)"},
      {"a > b", "(> a b)"},
      {"a >= -b", "(>= a (- b))"},
      {"(a < b) < c", "(< (< a b) c)"},
      {"-x[0]", "(- ([] x 0))"},
      {"x[i][j]", "([] ([] x i) j)"},
      {"f(x)[1]^2", "(^ ([] (f x) 1) 2)"},
      {"-log_softmax(l)[y]", "(- ([] (log_softmax l) y))"},
      {"(x)^2", "(^ x 2)"},
      {"((x))", "x"},
      {"[]", "[]"},
      {"[1, [2, 3], x]", "[1 [2 3] x]"},
      {"[a, b,]", "[a b]"},
      {"f()", "(f)"},
      {"f(a, b, k = c, m = -1)", "(f a b k=c m=(- 1))"},
      {"f(a,)", "(f a)"},
      {"reshape(x, [3, -1])", "(reshape x [3 (- 1)])"},
      {"csv(p, test = q, label = 0)", "(csv p test=q label=0)"},
      {"f32(x) + i32(y)", "(+ (f32 x) (i32 y))"},
      {"\"s\"", "\"s\""},
      {"f((a), [b])", "(f a [b])"},
      {"1 - 2 + 3 * 4 / 5 ^ 6", "(+ (- 1 2) (/ (* 3 4) (^ 5 6)))"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) CHECK_STR(sx(expr_of(cases[i][0])), cases[i][1]);
}

static void test_depth(void) {
  static const struct {
    const char *src;
    uint32_t depth;
  } cases[] = {
      {"x", 1},          {"-x", 2},          {"x + x + x + x", 2}, {"x + (x + x)", 3},
      {"a^b^c", 3},      {"f(x)", 2},        {"f(g(x), y)", 3},    {"[1, [2]]", 3},
      {"x[i]", 2},       {"x[i][j]", 3},     {"-(-x)", 3},         {"a * b + c", 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const Expr *e = expr_of(cases[i].src);
    CHECK(e && e->depth == cases[i].depth);
    if (e && e->depth != cases[i].depth)
      fprintf(stderr, "  depth of '%s' is %u, want %u\n", cases[i].src, e->depth, cases[i].depth);
  }
}

static void test_numbers_and_strings(void) {
  static const struct {
    const char *src;
    double value;
    bool is_int;
  } nums[] = {
      {"123", 123, true},     {"0", 0, true},          {"0.001", 0.001, false},
      {"1e-8", 1e-8, false},  {"1.5E+3", 1500, false}, {".5", 0.5, false},
      {"2.", 2, false},       {"1e3", 1000, false},    {"9007199254740992", 9007199254740992.0, true},
  };
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
    const Expr *e = expr_of(nums[i].src);
    CHECK(e && e->kind == E_NUM && e->u.num.value == nums[i].value && e->u.num.is_int == nums[i].is_int);
  }
  const Expr *s = expr_of("\"a\\\\b\\\"c\\nd\\te\"");
  CHECK(s && s->kind == E_STR && !strcmp(s->u.str, "a\\b\"c\nd\te"));
  s = expr_of("\"\"");
  CHECK(s && s->kind == E_STR && s->u.str[0] == 0);
  s = expr_of("\"x # not a comment\"");
  CHECK(s && !strcmp(s->u.str, "x # not a comment"));

  /* Dump forms: integers as integers, others round-trip, strings escaped. */
  Program *p = parse("fn t() = [64, 0.1, 2.0, 1e-8, 1e300, 0.30000000000000004, \"a\\\"\\n\\t\\\\\"]\n");
  char *text = ast_text(p);
  CHECK_STR(text,
            "fn t 1:1\n"
            "  list 1:10\n"
            "    num 64 1:11\n"
            "    num 0.1 1:15\n"
            "    num 2.0 1:20\n"
            "    num 1e-08 1:25\n"
            "    num 1e+300 1:31\n"
            "    num 0.30000000000000004 1:38\n"
            "    str \"a\\\"\\n\\t\\\\\" 1:59\n");
  free(text);
}

static void test_layout(void) {
  /* Newlines inside ( ) and [ ] are ignored; braces do not hide them. */
  Program *p = parse(
      "\n\n# leading comment\n"
      "model m {\n"
      "\n"
      "  x = f(a,\n"
      "        b,   # comment inside a call\n"
      "\n"
      "        k = [1,\n"
      "             2]\n"
      "  )\n"
      "  y = 1; z = 2;; w = 3\n"
      "  ;\n"
      "}\n\n"
      "model e {}\n"
      "model e2 { }; model e3 {\n}\n"
      "train t { a = 1 }\n"
      "fn g(\n  a,\n  b\n) = a\n"
      "import \"x\"; import \"y\"");
  CHECK_STR(diags(), "");
  CHECK(p->nitems == 8);
  if (p->nitems != 8) return;
  CHECK(p->items[0].nbody == 4);
  if (p->items[0].nbody == 4) {
    CHECK_STR(sx(p->items[0].body[0].value), "(f a b k=[1 2])");
    CHECK(!strcmp(p->items[0].body[3].name, "w"));
  }
  CHECK(p->items[1].nbody == 0 && p->items[1].body == NULL);
  CHECK(p->items[4].nbody == 1);
  CHECK(p->items[5].nparams == 2);
  CHECK(p->items[7].kind == I_IMPORT && !strcmp(p->items[7].name, "y"));

  /* CRLF line ends, a file without a final newline, only comments, nothing. */
  p = parse("model m {\r\n  x = 1\r\n}\r\nfn f(x) = x");
  CHECK_STR(diags(), "");
  CHECK(p->nitems == 2);
  p = parse("# nothing here\n\n   \n# at all");
  CHECK_STR(diags(), "");
  CHECK(p->nitems == 0 && p->items == NULL);
  p = parse("");
  CHECK(p->nitems == 0 && diag_error_count() == 0);
}

static void test_locations(void) {
  Program *p = parse("fn t(a) = (a + b)[0] * -c\n"
                     "layer l(x: f32[n]) {\n"
                     "  param w: f32[n] = [x, 2]\n"
                     "  return f(k = 1)\n"
                     "}\n");
  CHECK_STR(diags(), "");
  if (p->nitems != 2) return;
  const Expr *e = p->items[0].expr_body;
  CHECK(e->kind == E_BINARY && loc_is(e->loc, 1, 22));                /* '*' */
  const Expr *ix = e->u.binary.lhs;
  CHECK(ix->kind == E_INDEX && loc_is(ix->loc, 1, 11));               /* '(' */
  CHECK(loc_is(ix->u.index.base->loc, 1, 14));                        /* '+' */
  CHECK(loc_is(ix->u.index.index->loc, 1, 19));
  CHECK(e->u.binary.rhs->kind == E_UNARY && loc_is(e->u.binary.rhs->loc, 1, 24));
  CHECK(loc_is(e->u.binary.rhs->u.unary.operand->loc, 1, 25));
  const Item *l = &p->items[1];
  CHECK(loc_is(l->loc, 2, 1) && loc_is(l->name_loc, 2, 7) && loc_is(l->params[0].loc, 2, 9));
  CHECK(loc_is(l->params[0].type->loc, 2, 12) && loc_is(l->params[0].type->dims[0].loc, 2, 16));
  const Stmt *w = &l->body[0];
  CHECK(loc_is(w->loc, 3, 3) && loc_is(w->name_loc, 3, 9) && loc_is(w->value->loc, 3, 21));
  const Expr *call = l->body[1].value;
  CHECK(loc_is(l->body[1].loc, 4, 3) && loc_is(call->loc, 4, 10));
  CHECK(loc_is(call->u.call.callee_loc, 4, 10) && loc_is(call->u.call.args[0].name_loc, 4, 12));
  CHECK(loc_is(call->u.call.args[0].value->loc, 4, 16));
}

/* ---- errors ------------------------------------------------------------------- */

/* Parses src and compares its diagnostics with want. */
static void expect_diags(const char *src, const char *want) {
  parse(src);
  CHECK_STR(diags(), want);
}

static void test_lexical_errors(void) {
  expect_diags("model m {\n  x = 1 $ 2\n}\n", "2:9: error: invalid character '$'\n");
  expect_diags("model m {\n  x = \xff\n}\n", "2:7: error: invalid character '\\xff'\n");
  expect_diags("model m {\n  x = \xc3\xa9\n}\n", "2:7: error: invalid character '\xc3\xa9'\n");
  expect_diags("model m {\n  x = \xff\xfe\x01 + 1\n}\n",
               "2:7: error: invalid characters '\\xff\\xfe\\x01'\n");
  parse_n("model m {\n  x = 1 +\0\0 2\n}\n", 25);
  CHECK_STR(diags(), "2:10: error: invalid characters '\\x00\\x00'\n");
  expect_diags("model m {\n  x = a.b\n  y = !c\n}\n",
               "2:8: error: invalid character '.'\n3:7: error: invalid character '!'\n");
  /* One error per run of bad bytes, and the statement is dropped quietly. */
  expect_diags("model m {\n  x = \x80\x81 a \x82\n  y = 1\n}\n",
               "2:7: error: invalid characters '\\x80\\x81'\n2:12: error: invalid character '\\x82'\n");

  expect_diags("model m {\n  x = \"abc\n  y = 1\n}\n", "2:7: error: unterminated string\n");
  expect_diags("fn f() = \"abc", "1:10: error: unterminated string\n");
  expect_diags("fn f() = \"abc\\", "1:10: error: unterminated string\n");
  expect_diags("fn f() = \"a\\qb\\n\"\n", "1:12: error: invalid escape sequence '\\q' in string\n");
  parse_n("fn f() = \"a\0b\"\n", 15);
  CHECK_STR(diags(), "1:12: error: invalid character '\\x00' in string\n");

  expect_diags("fn f() = 1e999\n", "1:10: error: number '1e999' is too large\n");
  expect_diags("fn f() = 99999999999999999999\n",
               "1:10: error: integer '99999999999999999999' is too large "
               "(the limit is 2^53 = 9007199254740992)\n");
  expect_diags("fn f() = 3x + 1e5e\n",
               "1:10: error: invalid number '3x'\n1:15: error: invalid number '1e5e'\n");

  char *big = malloc(300 + 1048576);
  strcpy(big, "model m {\n  ");
  size_t n = strlen(big);
  memset(big + n, 'a', 1048576);
  strcpy(big + n + 1048576, " = 1\n}\n");
  expect_diags(big, "2:3: error: identifier is too long (1048576 bytes; the limit is 256)\n");
  memset(big, '7', 300);
  memcpy(big, "fn f() = ", 9);
  strcpy(big + 300, "\n");
  expect_diags(big, "1:10: error: number is too long (291 bytes; the limit is 256)\n");
  free(big);

  /* 256 bytes is still fine. */
  char name[300] = "fn ";
  memset(name + 3, 'n', 256);
  strcpy(name + 259, "() = 1\n");
  expect_diags(name, "");
}

static void test_syntax_errors(void) {
  expect_diags("model m {\n  x = \n}\n", "2:7: error: expected expression, found newline\n");
  expect_diags("model m {\n  x = f(a b)\n}\n",
               "2:11: error: expected ')', ',', '=' or operator, found identifier 'b'\n");
  expect_diags("model m {\n  x = 1 2\n}\n",
               "2:9: error: expected newline, ';', '}' or operator, found number '2'\n");
  expect_diags("model m {\n  3\n}\n", "2:3: error: expected statement or '}', found number '3'\n");
  expect_diags("foo\n",
               "1:1: error: expected 'import', 'fn', 'layer', 'optimizer', 'model' or 'train', "
               "found identifier 'foo'\n");
  expect_diags("model {\n}\n", "1:7: error: expected identifier, found '{'\n");
  expect_diags("model m x\n", "1:9: error: expected '{', found identifier 'x'\n");
  expect_diags("model m {\n  input x f32\n}\n", "2:11: error: expected ':', found 'f32'\n");
  expect_diags("fn f(x: f33) = x\n", "1:9: error: expected 'f32' or 'i32', found identifier 'f33'\n");
  expect_diags("fn f(x: f32[]) = x\n", "1:13: error: expected identifier or number, found ']'\n");
  expect_diags("fn f(x) = x +", "1:14: error: expected expression, found end of file\n");
  expect_diags("fn f(x) = a b\n",
               "1:13: error: expected newline, ';', operator or end of file, found identifier 'b'\n");
  expect_diags("import foo\n", "1:8: error: expected string, found identifier 'foo'\n");
  expect_diags("model m {\n  x = \"s\" \"t\"\n}\n",
               "2:11: error: expected newline, ';', '}' or operator, found string \"t\"\n");
  expect_diags("model m {\n  x = (1))\n}\n",
               "2:10: error: expected newline, ';', '}' or operator, found ')'\n");
  expect_diags("model m {\n  x = 1\n", "3:1: error: expected statement or '}', found end of file\n");
  expect_diags("model m {\n  x = f(\n}\n",
               "3:1: error: expected expression or ')', found '}'\n2:8: note: to match this '('\n");
  expect_diags("model m {\n  x = [1,\n  2\n  y = 3\n}\n",
               "4:3: error: expected ']', ',' or operator, found identifier 'y'\n"
               "2:7: note: to match this '['\n");

  /* Errors the grammar accepts but the actions refuse. */
  expect_diags("fn f() = a < b < c\n",
               "1:16: error: comparison operators cannot be chained; add parentheses\n");
  expect_diags("fn f() = a == b != c == d\n",
               "1:17: error: comparison operators cannot be chained; add parentheses\n");
  expect_diags("fn f() = g(k = 1, 2)\n", "1:19: error: positional argument after a named argument\n");
  expect_diags("fn f() = g(x)(y)\n", "1:14: error: only a name can be called\n");
  expect_diags("fn f() = [1](y)\n", "1:13: error: only a name can be called\n");
  expect_diags("fn f(x: f32[2.5]) = x\n",
               "1:13: error: a dimension must be an integer or a name, found number '2.5'\n");
}

/* Independent mistakes are all reported, one error each, and what parsed
 * around them is kept. */
static void test_recovery(void) {
  Program *p = parse("model m {\n"                           /* 1 */
                     "  input x f32[784]\n"                   /* 2 */
                     "  label y: i32\n"                       /* 3 */
                     "  h = relu(dense(x, 64)\n"              /* 4 */
                     "  logits = dense(h, 10))\n"             /* 5 */
                     "  loss = cross_entropy(logits y)\n"     /* 6 */
                     "  z = 1 2 3\n"                          /* 7 */
                     "  w = $ + 1\n"                          /* 8 */
                     "  ok = 1\n"                             /* 9 */
                     "}\n"                                    /* 10 */
                     "layer l(x: f32[n] units) {\n"           /* 11 */
                     "  return x\n"                           /* 12 */
                     "}\n"                                    /* 13 */
                     "fn f(x) = x +\n"                        /* 14 */
                     "fn g(x) = x\n"                          /* 15 */
                     "modle q {\n"                            /* 16 */
                     "  a = 1\n"                              /* 17 */
                     "}\n"                                    /* 18 */
                     "train m {\n"                            /* 19 */
                     "  optimizer = adam(lr = 0.001)\n"       /* 20 */
                     "  batch = 32 32\n"                      /* 21 */
                     "  epochs = 5\n"                         /* 22 */
                     "}\n");                                  /* 23 */
  CHECK_STR(diags(),
            "2:11: error: expected ':', found 'f32'\n"
            "5:3: error: expected ')', ',' or operator, found identifier 'logits'\n"
            "4:11: note: to match this '('\n"
            "6:31: error: expected ')', ',', '=' or operator, found identifier 'y'\n"
            "7:9: error: expected newline, ';', '}' or operator, found number '2'\n"
            "8:7: error: invalid character '$'\n"
            "11:19: error: expected ')', ',' or '=', found identifier 'units'\n"
            "14:14: error: expected expression, found newline\n"
            "16:1: error: expected 'import', 'fn', 'layer', 'optimizer', 'model' or 'train', "
            "found identifier 'modle'\n"
            "21:14: error: expected newline, ';', '}' or operator, found number '32'\n");
  CHECK(p->nitems == 3);
  if (p->nitems == 3) {
    CHECK(p->items[0].kind == I_MODEL && p->items[0].nbody == 2); /* y, ok */
    CHECK(p->items[1].kind == I_FN && !strcmp(p->items[1].name, "g"));
    CHECK(p->items[2].kind == I_TRAIN && p->items[2].nbody == 2); /* optimizer, epochs */
  }

  /* A block left open ends at the next item in column 1, or at the end. */
  p = parse("model m {\n  x = 1\ntrain t {\n  a = 1\n}\n");
  CHECK_STR(diags(), "3:1: error: expected statement or '}', found 'train'\n");
  CHECK(p->nitems == 2 && p->items[0].nbody == 1 && p->items[1].nbody == 1);
  p = parse("model m {\n  x = f(1,\nfn g(x) = x\n");
  CHECK_STR(diags(), "3:1: error: expected expression or ')', found 'fn'\n2:8: note: to match this '('\n");
  CHECK(p->nitems == 2 && p->items[1].kind == I_FN);
  p = parse("model m {\n  x = 1\noptimizer o(lr = 1) {\n  p = p - lr * g\n}\n");
  CHECK_STR(diags(), "3:11: error: expected '=', found identifier 'o'\n");
  CHECK(p->nitems == 2 && p->items[1].kind == I_OPTIMIZER && p->items[1].nbody == 1);
  p = parse("model m {\n  x = (1 + 2\n");
  CHECK_STR(diags(), "3:1: error: expected ')' or operator, found end of file\n2:7: note: to match this '('\n");
  CHECK(p->nitems == 1);
  /* An indented item keyword inside a block is a bad statement. */
  p = parse("model m {\n  import \"x\"\n  y = 1\n}\nfn f(x) = x\n");
  CHECK_STR(diags(), "2:3: error: expected statement or '}', found 'import'\n");
  CHECK(p->nitems == 2 && p->items[0].nbody == 1);
  /* Stray closers at the top level. */
  p = parse("}\n)\nmodel m {}\n]\nfn f(x) = x\n");
  CHECK_STR(diags(),
            "1:1: error: expected 'import', 'fn', 'layer', 'optimizer', 'model' or 'train', found '}'\n"
            "4:1: error: expected 'import', 'fn', 'layer', 'optimizer', 'model' or 'train', found ']'\n");
  CHECK(p->nitems == 2);
  /* A bracket never closed: the next line that starts with the error is a
   * statement of its own, so later mistakes still show. */
  p = parse("model m {\n  h = relu(dense(x, 64)\n  logits = dense(h, 10)\n"
            "  v = [1, 2\n  w = 3\n  ok = 1\n}\n");
  CHECK_STR(diags(),
            "3:3: error: expected ')', ',' or operator, found identifier 'logits'\n"
            "2:11: note: to match this '('\n"
            "5:3: error: expected ']', ',' or operator, found identifier 'w'\n"
            "4:7: note: to match this '['\n");
  CHECK(p->nitems == 1 && p->items[0].nbody == 1);
  /* An error inside a multi-line call skips the whole call. */
  p = parse("model m {\n  x = f(a b,\n        c)\n  y = 1\n}\n");
  CHECK_STR(diags(), "2:11: error: expected ')', ',', '=' or operator, found identifier 'b'\n");
  CHECK(p->nitems == 1 && p->items[0].nbody == 1);
  /* An unterminated string inside brackets does not join the next line. */
  p = parse("train t {\n  data = idx(\"/data\n  batch = 32\n}\n");
  CHECK_STR(diags(), "2:14: error: unterminated string\n");
  CHECK(p->nitems == 1 && p->items[0].nbody == 1);
  /* Skipping a bad item stops at the next item, not at `optimizer =`. */
  p = parse("trian t {\n  data = 1\n  optimizer = adam()\n}\nmodel m {}\n");
  CHECK_STR(diags(),
            "1:1: error: expected 'import', 'fn', 'layer', 'optimizer', 'model' or 'train', "
            "found identifier 'trian'\n");
  CHECK(p->nitems == 1 && p->items[0].kind == I_MODEL);
  /* A '}' in the middle of a line is a stray key, not the end of the block;
   * one that ends a line or sits on the line of its '{' is. */
  p = parse("model m {\n  x = a @ } w + b\n  y = 1\n}\ntrain t { a = 1 + }\n"
            "model n {\n  z = 1 + }\nfn f(x) = x\n");
  CHECK_STR(diags(),
            "2:11: error: expected expression, found '}'\n"
            "5:19: error: expected expression, found '}'\n"
            "7:11: error: expected expression, found '}'\n");
  CHECK(p->nitems == 4 && p->items[0].nbody == 1 && p->items[3].kind == I_FN);
  /* An item keyword in the middle of a line is not the next item. */
  p = parse("fn f(lr = model 0.01) = lr\nfn g(x) = x\n");
  CHECK_STR(diags(), "1:11: error: expected expression, found 'model'\n");
  CHECK(p->nitems == 1 && !strcmp(p->items[0].name, "g"));
  /* A bad number drops its statement without a second error. */
  p = parse("model m {\n  x = f(1e-) + 1\n  y = 2\n}\n");
  CHECK_STR(diags(), "2:9: error: invalid number '1e'\n");
  CHECK(p->nitems == 1 && p->items[0].nbody == 1);
  /* Every bad line reports, even one right after another. */
  p = parse("model m {\n  x = )\n  )\n  y = (\n  z = 1\n}\n");
  CHECK_STR(diags(),
            "2:7: error: expected expression, found ')'\n"
            "3:3: error: expected statement or '}', found ')'\n"
            "5:5: error: expected ')' or operator, found '='\n"
            "4:7: note: to match this '('\n");
}

/* ---- hostile inputs ----------------------------------------------------------------- */

/* Builds prefix + piece * n + middle + piece2 * n + suffix. */
static char *repeat(const char *prefix, const char *piece, size_t n, const char *middle,
                    const char *piece2, const char *suffix) {
  size_t lp = strlen(prefix), l1 = strlen(piece), lm = strlen(middle), l2 = strlen(piece2),
         ls = strlen(suffix);
  char *s = malloc(lp + n * (l1 + l2) + lm + ls + 1), *o = s;
  memcpy(o, prefix, lp), o += lp;
  for (size_t i = 0; i < n; i++) memcpy(o, piece, l1), o += l1;
  memcpy(o, middle, lm), o += lm;
  for (size_t i = 0; i < n; i++) memcpy(o, piece2, l2), o += l2;
  memcpy(o, suffix, ls + 1);
  return s;
}

/* Parses a generated input; returns its diagnostics.  Slow parses are
 * reported, not failed: timings never decide a test on a shared machine
 * (a parser gone quadratic on these inputs runs into ctest's timeout). */
static const char *stress(const char *what, char *src, double limit_s, Program **out) {
  double t0 = now();
  Program *p = parse(src);
  double dt = now() - t0;
  if (dt > limit_s) fprintf(stderr, "note: %s: parsing took %.2f s (usually under %.1f s)\n", what, dt, limit_s);
  free(src);
  if (out) *out = p;
  return diags();
}

static void test_stress(void) {
  const size_t N = 100000;
  Program *p;
  /* 100,000-deep ( and [: one error at the 257th bracket; the item stops. */
  CHECK_STR(stress("parens", repeat("fn f(x) = ", "(", N, "x", ")", "\nfn g(x) = x\n"), 1.0, &p),
            "1:267: error: expressions are nested too deeply (limit 256)\n");
  CHECK(p->nitems == 1 && !strcmp(p->items[0].name, "g"));
  CHECK_STR(stress("brackets", repeat("model m {\n  x = ", "[", N, "1", "]", "\n  y = 2\n}\nfn g(x) = x\n"), 1.0, &p),
            "2:263: error: expressions are nested too deeply (limit 256)\n");
  CHECK(p->nitems == 2);
  CHECK_STR(stress("calls", repeat("model m {\n  x = ", "f(", N, "1", ")", "\n}\n"), 1.0, NULL),
            "2:520: error: expressions are nested too deeply (limit 256)\n");
  /* 256 levels are fine. */
  CHECK_STR(stress("256 parens", repeat("fn f(x) = ", "(", 256, "x", ")", "\n"), 1.0, NULL), "");

  /* A 200,000-term sum parses with a flat stack and stays shallow. */
  char *sum = repeat("fn f(x) = x", " + x", 200000, "", "", "\n");
  CHECK_STR(stress("sum", sum, 2.0, &p), "");
  CHECK(p->nitems == 1 && p->items[0].expr_body->depth == 2);
  char *text = ast_text(p); /* the printer does not recurse either */
  CHECK(text && strlen(text) > 200000);
  free(text);

  /* Unary minus, ^, index chains: located errors past depth 5000. */
  CHECK_STR(stress("neg", repeat("model m {\n  y = ", "-", N, "x\n  z = 1\n}\n", "", ""), 2.0, &p),
            "2:95007: error: expression is nested too deeply (limit 5000)\n");
  CHECK(p->nitems == 1 && p->items[0].nbody == 2);
  CHECK_STR(stress("neg 4999", repeat("fn f(x) = ", "-", 4999, "x\n", "", ""), 2.0, &p), "");
  CHECK(p->items[0].expr_body->depth == 5000);
  CHECK_STR(stress("neg 5000", repeat("fn f(x) = ", "-", 5000, "x\n", "", ""), 2.0, NULL),
            "1:11: error: expression is nested too deeply (limit 5000)\n");
  CHECK_STR(stress("pow", repeat("fn f(x) = x", "^x", N, "\n", "", ""), 2.0, NULL),
            "1:190012: error: expression is nested too deeply (limit 5000)\n");
  CHECK_STR(stress("pow neg", repeat("fn f(x) = x", "^-x", N, "\n", "", ""), 2.0, NULL),
            "1:292512: error: expression is nested too deeply (limit 5000)\n");
  CHECK_STR(stress("index", repeat("fn f(x) = x", "[0]", N, "\n", "", ""), 2.0, NULL),
            "1:11: error: expression is nested too deeply (limit 5000)\n");

  /* Random bytes, random printable tokens, an empty file: no crash. */
  unsigned seed = 12345;
  char *bin = malloc(1 << 20 | 1);
  for (size_t i = 0; i < 1 << 20; i++) {
    seed = seed * 1103515245u + 12345u;
    bin[i] = (char)(seed >> 16);
  }
  bin[1 << 20] = 0;
  double t0 = now();
  parse_n(bin, 1 << 20);
  CHECK(diag_error_count() > 0 && now() - t0 < 2.0);
  static const char alphabet[] = "model{}()[]=+-^*@/<>,;:#\"\n \n x1.e";
  for (size_t i = 0; i < 1 << 20; i++) {
    seed = seed * 1103515245u + 12345u;
    bin[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
  }
  t0 = now();
  parse_n(bin, 1 << 20);
  CHECK(diag_error_count() > 0 && now() - t0 < 2.0);
  free(bin);
}

int main(void) {
  test_mnist();
  test_items();
  test_precedence();
  test_depth();
  test_numbers_and_strings();
  test_layout();
  test_locations();
  test_lexical_errors();
  test_syntax_errors();
  test_recovery();
  test_stress();
  reset_diag();
  arena_free(&arena);
  free(nnc_diag.files[0].path);
  free(nnc_diag.files[0].text);
  free(nnc_diag.files);
  return check_done();
}
