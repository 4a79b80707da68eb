/* test/unit/test_ir.c - the graph IR's text form, reader and verifier.
 *
 * Builds modules with the builder (every op in ir/ops.def at least once),
 * prints them, reads the text back and prints again: the bytes must be
 * identical.  Also checks number printing, the shape rules' errors, the
 * verifier on hand-broken modules, one located diagnostic per malformed
 * text, and that random, truncated and mutated texts never crash the reader
 * (whatever it accepts must itself round-trip).  And the op table: the
 * public op numbers of ir/ops.def are include/nnc/backend.h's NncOp (read
 * from the header's text: NNC_OP_<NAME> = the number ops.def gives op
 * `name`), so plugins keep seeing the numbers they were built with.  Exits
 * non-zero on failure.
 */
#include "support/diag.h"
#include "ir/ir.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* ---- helpers ------------------------------------------------------------------ */

static char *print_str(const Module *m) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ir_print(m, f);
  fclose(f);
  return buf;
}

static char *dot_str(const Module *m) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ir_print_dot(m, f);
  fclose(f);
  return buf;
}

static char *number_str(double v) {
  static char buf[64];
  FILE *f = fmemopen(buf, sizeof buf, "w");
  ir_print_number(v, f);
  fclose(f);
  return buf;
}

static void clear_diags(void) {
  for (uint32_t i = 0; i < nnc_diag.ncollected; i++) free(nnc_diag.collected[i].msg);
  nnc_diag.ncollected = 0;
  nnc_diag.errors = 0;
  nnc_diag.suppress_notes = false;
}

/* Forgets the newest registered file (the fuzz loops register thousands). */
static void drop_last_file(void) {
  SourceFile *f = &nnc_diag.files[--nnc_diag.nfiles];
  free(f->path);
  free(f->text);
}

static Module *read_text(const char *name, const char *text, size_t len) {
  uint32_t id = diag_add_file(&nnc_diag, name, text, len);
  return ir_read(id);
}

static bool has_diag(const char *needle) {
  for (uint32_t i = 0; i < nnc_diag.ncollected; i++)
    if (strstr(nnc_diag.collected[i].msg, needle)) return true;
  return false;
}

static void dump_diags(void) {
  for (uint32_t i = 0; i < nnc_diag.ncollected; i++)
    fprintf(stderr, "    diag %u:%u: %s\n", nnc_diag.collected[i].loc.line, nnc_diag.collected[i].loc.col,
            nnc_diag.collected[i].msg);
}

/* print -> read -> print gives the same bytes; returns the read module. */
static Module *roundtrip(const Module *m, const char *label) {
  clear_diags();
  char *a = print_str(m);
  Module *r = read_text(label, a, strlen(a));
  CHECK(r != NULL, "%s: the printed module does not read back:\n%s", label, a);
  if (!r) {
    dump_diags();
    free(a);
    return NULL;
  }
  char *b = print_str(r);
  if (strcmp(a, b) != 0) {
    const char *p = a, *q = b;
    int line = 1;
    while (*p && *p == *q) line += *p++ == '\n', q++;
    CHECK(false, "%s: print -> read -> print differs at line %d:\n  first:  %.80s\n  second: %.80s", label, line, p, q);
  }
  free(a);
  free(b);
  return r;
}

static Symbol sym(SymKind kind, const char *name, Type t) {
  Symbol s;
  memset(&s, 0, sizeof s);
  s.kind = kind;
  s.name = name;
  s.type = t;
  return s;
}

static Type ty(DType dt, bool batched, int rank, int64_t d0, int64_t d1) {
  int64_t d[2] = {d0, d1};
  return type_make(dt, rank, d, batched);
}

/* ---- a module with every op ----------------------------------------------------- */

static Module *build_all_ops(void) {
  Module *m = ir_module_new();
  m->name = "all_ops";
  uint32_t fu = ir_file(m, "examples/mnist.nn"), fs = ir_file(m, "stdlib/nn.nn");
  uint32_t fq = ir_file(m, "odd \"dir\"\\with\ttab/\xc3\xa9.nn");
  uint32_t lu = ir_loc(m, fu, 4, 12, 0), ls = ir_loc(m, fs, 21, 12, lu), lq = ir_loc(m, fq, 1, 1, ls);
  uint32_t l0 = ir_loc(m, 0, 7, 0, 0);

  Symbol s = sym(SYM_INPUT, "x", ty(DT_F32, true, 1, 4, 0));
  s.loc = lu;
  uint32_t sx = ir_add_symbol(m, s);
  s = sym(SYM_LABEL, "y", ty(DT_I32, true, 0, 0, 0));
  s.bound = 3;
  uint32_t sy = ir_add_symbol(m, s);
  s = sym(SYM_PARAM, "w", ty(DT_F32, false, 2, 4, 3));
  s.init.kind = INIT_GLOROT_UNIFORM;
  uint32_t sw = ir_add_symbol(m, s);
  s = sym(SYM_PARAM, "b", ty(DT_F32, false, 1, 3, 0));
  s.init.kind = INIT_ZEROS;
  uint32_t sb = ir_add_symbol(m, s);
  s = sym(SYM_PARAM, "layer.u", ty(DT_F32, false, 1, 3, 0));
  s.init = (Init){INIT_UNIFORM, -0.1, 0.1};
  ir_add_symbol(m, s);
  s = sym(SYM_PARAM, "n", ty(DT_F32, false, 2, 2, 2));
  s.init = (Init){INIT_NORMAL, 0.01, 0};
  ir_add_symbol(m, s);
  s = sym(SYM_PARAM, "f", ty(DT_F32, false, 1, 3, 0));
  s.init = (Init){INIT_FULL, 0.5, 0};
  ir_add_symbol(m, s);
  s = sym(SYM_PARAM, "he", ty(DT_F32, false, 1, 4, 0));
  s.init.kind = INIT_HE_NORMAL;
  s.loc = lq;
  ir_add_symbol(m, s);
  s = sym(SYM_PARAM, "one", ty(DT_F32, false, 1, 3, 0));
  s.init.kind = INIT_ONES;
  ir_add_symbol(m, s);
  s = sym(SYM_PARAM, "noinit", ty(DT_F32, false, 1, 3, 0));
  ir_add_symbol(m, s);
  s = sym(SYM_PARAM, "a b\"c\\d\n", ty(DT_F32, false, 1, 3, 0));
  s.init.kind = INIT_ZEROS;
  uint32_t sodd = ir_add_symbol(m, s);
  s = sym(SYM_STATE, "w/m", ty(DT_F32, false, 2, 4, 3));
  s.init.kind = INIT_ZEROS;
  s.owner = sw;
  uint32_t sm = ir_add_symbol(m, s);
  s = sym(SYM_HYPER, "lr", type_scalar(DT_F32));
  s.value = 0.001;
  uint32_t slr = ir_add_symbol(m, s);
  s = sym(SYM_HYPER, "beta", type_scalar(DT_F32));
  s.value = 0.9;
  uint32_t sbeta = ir_add_symbol(m, s);
  int64_t dimg[3] = {2, 5, 5}, dflt[4] = {3, 2, 3, 3};
  uint32_t simg = ir_add_symbol(m, sym(SYM_PARAM, "img", type_make(DT_F32, 3, dimg, false)));
  uint32_t sflt = ir_add_symbol(m, sym(SYM_PARAM, "flt", type_make(DT_F32, 4, dflt, false)));
  s = sym(SYM_PARAM, "bn.running_mean", ty(DT_F32, false, 1, 3, 0));
  s.init.kind = INIT_ZEROS;
  s.no_grad = true;
  ir_add_symbol(m, s);

  TrainSpec *t = &m->train;
  t->present = true;
  t->data = DATA_CSV;
  t->data_path = "train.csv";
  t->test_path = "te\"st.csv";
  t->label = "3";
  t->scale = 1 / 255.0;
  t->batch = 64;
  t->epochs = 2;
  t->seed = -7;
  t->shuffle = false;
  t->optimizer = "my.adam";

  ValueId x = ir_leaf(m, OP_INPUT, sx, lu), y = ir_leaf(m, OP_INPUT, sy, 0);
  ValueId w = ir_leaf(m, OP_PARAM, sw, ls), b = ir_leaf(m, OP_PARAM, sb, lq);
  ValueId mm = ir_op2(m, OP_MATMUL, x, w, ls); /* f32[B,3] */
  ValueId z = ir_op2(m, OP_ADD, mm, b, l0);
  ValueId c1 = ir_const(m, DT_F32, 1 / 255.0, 0), ci = ir_const(m, DT_I32, -2, 0);
  ValueId neg = ir_op1(m, OP_NEG, z, 0);
  ValueId ex = ir_op1(m, OP_EXP, z, 0);
  ValueId lg = ir_op1(m, OP_LOG, ex, 0);
  for (int op = 0; op < OP_COUNT; op++) /* the other math functions of ir/ops.def: sqrt, tanh, ... */
    if ((ir_ops[op].flags & OPF_FLOAT) && ir_ops[op].arity == 1 && op != OP_EXP && op != OP_LOG)
      ir_op1(m, (Op)op, ex, 0);
  ValueId ab = ir_op1(m, OP_ABS, z, 0);
  ir_op1(m, OP_SIGN, z, 0);
  ValueId cast = ir_retype(m, OP_CAST, z, ty(DT_I32, true, 1, 3, 0), 0);
  ir_op2(m, OP_ADD, cast, ci, 0);
  ir_op1(m, OP_STOP_GRAD, z, 0);
  ir_op1(m, OP_GRADIENT, z, 0);
  ir_op2(m, OP_SUB, z, c1, 0);
  ir_op2(m, OP_MUL, z, ab, 0);
  ir_op2(m, OP_DIV, z, c1, 0);
  ir_op2(m, OP_POW, ex, c1, 0);
  ir_op2(m, OP_MAX, z, neg, 0);
  ir_op2(m, OP_MIN, z, neg, 0);
  ValueId eq = ir_op2(m, OP_EQ, z, neg, 0);
  ir_op2(m, OP_NE, z, neg, 0);
  ir_op2(m, OP_LT, z, neg, 0);
  ir_op2(m, OP_LE, z, neg, 0);
  ir_op2(m, OP_GT, z, neg, 0);
  ir_op2(m, OP_GE, cast, ci, 0);
  ir_op3(m, OP_WHERE, eq, z, neg, 0);
  ValueId rs = ir_reduce(m, OP_REDUCE_SUM, z, 1, 0);
  ir_reduce(m, OP_REDUCE_MAX, ir_leaf(m, OP_PARAM, sw, 0), 3, 0);
  ValueId am = ir_op1(m, OP_ARGMAX, z, 0);
  uint8_t perm[NNC_MAX_RANK] = {1, 0};
  ir_transpose(m, w, perm, 0);
  ir_retype(m, OP_RESHAPE, w, ty(DT_F32, false, 2, 2, 6), 0);
  ir_retype(m, OP_BROADCAST, b, ty(DT_F32, true, 1, 3, 0), 0);
  ir_op2(m, OP_INDEX, w, y, 0);
  ValueId ga = ir_op2(m, OP_GATHER, w, y, 0); /* [B,3]: a row of w per sample */
  ir_build_typed(m, OP_SCATTER_ADD, (ValueId[]){ga, y}, 2, ty(DT_F32, true, 2, 4, 3), 0);
  ValueId oh = ir_retype(m, OP_ONEHOT, y, ty(DT_F32, true, 1, 3, 0), 0);
  ir_op1(m, OP_BATCH_SUM, rs, 0);
  ir_op1(m, OP_NEG, ir_leaf(m, OP_PARAM, sodd, 0), 0);
  /* windows: conv2d [2,5,5] * [3,2,3,3] stride 2 pad 1 -> [3,3,3], its gradients, unfold and fold */
  ValueId img = ir_leaf(m, OP_PARAM, simg, 0), flt = ir_leaf(m, OP_PARAM, sflt, 0);
  Type timg = m->nodes[img].type, tflt = m->nodes[flt].type; /* copies: building may move the nodes */
  ValueId cv = ir_window(m, OP_CONV2D, (ValueId[]){img, flt}, 2, 3, 2, 1, NULL, lu);
  ir_window(m, OP_CONV2D_DATA_GRAD, (ValueId[]){cv, flt}, 2, 3, 2, 1, &timg, 0);
  ir_window(m, OP_CONV2D_FILTER_GRAD, (ValueId[]){img, cv}, 2, 3, 2, 1, &tflt, 0);
  ValueId uf = ir_window(m, OP_UNFOLD, &img, 1, 2, 1, 0, NULL, 0);
  ir_window(m, OP_FOLD, &uf, 1, 2, 1, 0, &timg, 0);
  ValueId st = ir_leaf(m, OP_STEP, 0, 0), bsz = ir_leaf(m, OP_BATCH_SIZE, 0, 0);
  ir_op2(m, OP_MUL, ir_leaf(m, OP_TRAINING, 0, 0), z, 0);
  ir_op2(m, OP_DIV, st, bsz, 0);
  /* dropout's draw: random(cast(seed), cast(step), element positions of z) */
  ValueId key = ir_retype(m, OP_CAST, ir_leaf(m, OP_SEED, 0, 0), ty(DT_I32, false, 0, 0, 0), 0);
  ValueId ist = ir_retype(m, OP_CAST, st, ty(DT_I32, false, 0, 0, 0), 0);
  ir_op3(m, OP_RANDOM, key, ist, ir_element(m, m->nodes[z].type, 0), 0);
  ValueId lr = ir_leaf(m, OP_HYPER, slr, 0), beta = ir_leaf(m, OP_HYPER, sbeta, 0);
  ValueId g = ir_leaf(m, OP_GRAD, sw, 0), mstate = ir_leaf(m, OP_STATE, sm, 0);
  ValueId loss = ir_op1(m, OP_NEG, ir_reduce(m, OP_REDUCE_SUM, ir_op2(m, OP_MUL, oh, lg, 0), 1, 0), 0);
  ValueId acc = ir_op2(m, OP_EQ, am, y, 0);
  ValueId neww = ir_op2(m, OP_SUB, w, ir_op2(m, OP_MUL, lr, mstate, 0), 0);
  ValueId newm = ir_op2(m, OP_ADD, ir_op2(m, OP_MUL, beta, mstate, 0), g, 0);
  ir_add_output(m, OUT_LOSS, NULL, 0, loss);
  ir_add_output(m, OUT_METRIC, "accuracy", 0, acc);
  ir_add_output(m, OUT_METRIC, "top 1", 0, acc);
  ir_add_output(m, OUT_UPDATE, "w", sw, neww);
  ir_add_output(m, OUT_UPDATE, "w/m", sm, newm);
  return m;
}

/* ---- the op table ---------------------------------------------------------------- */

enum { MAX_PUBLIC = 128 };

/* The enumerators of NncOp in include/nnc/backend.h, by value; the count,
 * or -1 when the header cannot be read or parsed. */
static int header_ops(char names[MAX_PUBLIC][40]) {
  FILE *f = fopen("../include/nnc/backend.h", "rb");
  if (!f) return -1;
  static char text[1 << 17];
  size_t len = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[len] = 0;
  char *start = strstr(text, "NNC_OP_UNKNOWN"), *end = start ? strstr(start, "} NncOp;") : NULL;
  if (!start || !end) return -1;
  *end = 0;
  int n = 0;
  long next = 0;
  for (char *p = start; *p;) {
    if (p[0] == '/' && p[1] == '*') { /* a comment */
      char *close = strstr(p + 2, "*/");
      if (!close) return -1;
      p = close + 2;
    } else if (isalpha((unsigned char)*p) || *p == '_') {
      char name[40];
      int k = 0;
      while ((isalnum((unsigned char)*p) || *p == '_') && k < 39) name[k++] = *p++;
      name[k] = 0;
      while (isspace((unsigned char)*p)) p++;
      if (*p == '=') next = strtol(p + 1, &p, 0);
      if (next < 0 || next >= MAX_PUBLIC || names[next][0]) return -1; /* out of range or a value twice */
      snprintf(names[next], 40, "%s", name);
      if (next + 1 > n) n = (int)next + 1;
      next++;
    } else {
      p++;
    }
  }
  return n;
}

static void test_public_numbers(void) {
  static char names[MAX_PUBLIC][40];
  int n = header_ops(names);
  CHECK(n > 20, "cannot read NncOp from ../include/nnc/backend.h (found %d)", n);
  if (n <= 20) return;
  CHECK(!strcmp(names[0], "NNC_OP_UNKNOWN"), "NncOp 0 is %s, not NNC_OP_UNKNOWN", names[0]);
  bool used[MAX_PUBLIC] = {false};
  for (int op = 0; op < OP_COUNT; op++) {
    const OpInfo *o = &ir_ops[op];
    int k = o->nnc_op;
    CHECK(!(o->flags & OPF_ELEMWISE) == (k == 0), "%s: elementwise ops, and only they, have an NncOp number (%d)",
          o->name, k);
    if (k == 0) continue;
    char want[40] = "NNC_OP_";
    for (int i = 0; o->name[i] && i < 30; i++) want[7 + i] = (char)toupper((unsigned char)o->name[i]);
    CHECK(k > 0 && k < n && !strcmp(names[k], want),
          "%s has NncOp number %d in ir/ops.def, which include/nnc/backend.h calls %s (want %s)", o->name, k,
          k > 0 && k < n && names[k][0] ? names[k] : "nothing", want);
    CHECK(k <= 0 || k >= n || !used[k], "NncOp number %d is given twice in ir/ops.def", k);
    if (k > 0 && k < n) used[k] = true;
  }
  for (int k = 1; k < n; k++) CHECK(used[k], "include/nnc/backend.h has %s (%d), which no op of ir/ops.def has", names[k], k);
}

static void test_all_ops(void) {
  Module *m = build_all_ops();
  clear_diags();
  CHECK(ir_verify(m, "all ops"), "the all-ops module does not verify");
  dump_diags();
  bool seen[OP_COUNT] = {false};
  for (uint32_t i = 0; i < m->nnodes; i++) seen[m->nodes[i].op] = true;
  for (int op = 0; op < OP_COUNT; op++) CHECK(seen[op], "op %s is not covered", ir_ops[op].name);
  Module *r = roundtrip(m, "all_ops.nnir");
  if (r) {
    CHECK(r->nnodes == m->nnodes && r->nsyms == m->nsyms && r->noutputs == m->noutputs, "counts differ");
    CHECK(!strcmp(r->name, "all_ops"), "module name %s", r->name);
    CHECK(r->train.present && r->train.data == DATA_CSV && !strcmp(r->train.test_path, "te\"st.csv") &&
              !strcmp(r->train.label, "3") && r->train.scale == 1 / 255.0 && r->train.seed == -7 &&
              !r->train.shuffle && !strcmp(r->train.optimizer, "my.adam"),
          "train spec differs");
    CHECK(!strcmp(r->syms[10].name, "a b\"c\\d\n"), "quoted name decoded wrongly: %s", r->syms[10].name);
    CHECK(r->syms[11].owner == 2, "state owner %u", r->syms[11].owner);
    /* locs: %3 = param @b has the three-deep chain */
    const IrLoc *l = &r->locs[r->nodes[3].loc];
    CHECK(!strcmp(r->files[l->file], "odd \"dir\"\\with\ttab/\xc3\xa9.nn") && l->line == 1 && l->parent != 0,
          "inner loc lost");
    ir_module_free(r);
  }
  /* The DOT form mentions every value and output. */
  char *dot = dot_str(m);
  CHECK(strstr(dot, "digraph \"all_ops\" {") != NULL, "dot header");
  CHECK(strstr(dot, "v4 [label=\"%4 matmul\\nf32[B,3]\"];") != NULL, "dot matmul node:\n%s", dot);
  CHECK(strstr(dot, "v0 -> v4;") && strstr(dot, "v2 -> v4;"), "dot edges");
  CHECK(strstr(dot, "label=\"metric top 1\"") && strstr(dot, "label=\"update w/m\""), "dot outputs");
  CHECK(strstr(dot, "@a b\\\"c\\\\d\\\\x0a") != NULL, "dot escape");
  int quotes = 0;
  for (const char *p = dot; *p; p++) {
    if (*p == '\\' && p[1]) p++;
    else if (*p == '"') quotes++;
  }
  CHECK(quotes % 2 == 0, "unbalanced quotes in DOT");
  free(dot);
  ir_module_free(m);
}

/* ---- the example from docs/ir.md, printed exactly -------------------------------- */

static const char golden[] =
    "module @mnist\n"
    "\n"
    "input @x : f32[B,784]\n"
    "label @y : i32[B] bound 10\n"
    "param @h.w : f32[784,64] = glorot_uniform()\n"
    "param @h.b : f32[64] = zeros()\n"
    "state @h.w/m : f32[784,64] = zeros() for @h.w\n"
    "hyper @lr = 0.001\n"
    "train data = idx(\"/usr/share/datasets/fashion-mnist\"), scale = 0.00392156862745098, batch = 32, "
    "epochs = 5, seed = 1, shuffle = true, optimizer = adam\n"
    "\n"
    "%0 = input @x : f32[B,784] loc(\"examples/mnist.nn\":2:10)\n"
    "%1 = param @h.w : f32[784,64] loc(\"stdlib/nn.nn\":20:3 at \"examples/mnist.nn\":4:12)\n"
    "%2 = matmul %0, %1 : f32[B,64] loc(\"stdlib/nn.nn\":21:12 at \"examples/mnist.nn\":4:12)\n"
    "%3 = const 0 : f32\n"
    "%4 = reduce_sum %2 axes [0] : f32[B]\n"
    "%5 = transpose %1 perm [1,0] : f32[64,784]\n"
    "%6 = step : f32\n"
    "%7 = grad @h.w : f32[784,64]\n"
    "\n"
    "output loss %4\n"
    "output metric @accuracy %4\n"
    "output update @h.w %7\n";

static void test_golden(void) {
  Module *m = ir_module_new();
  m->name = "mnist";
  uint32_t fu = ir_file(m, "examples/mnist.nn"), fs = ir_file(m, "stdlib/nn.nn");
  uint32_t call = ir_loc(m, fu, 4, 12, 0);
  Symbol s = sym(SYM_INPUT, "x", ty(DT_F32, true, 1, 784, 0));
  uint32_t sx = ir_add_symbol(m, s);
  s = sym(SYM_LABEL, "y", ty(DT_I32, true, 0, 0, 0));
  s.bound = 10;
  ir_add_symbol(m, s);
  s = sym(SYM_PARAM, "h.w", ty(DT_F32, false, 2, 784, 64));
  s.init.kind = INIT_GLOROT_UNIFORM;
  uint32_t sw = ir_add_symbol(m, s);
  s = sym(SYM_PARAM, "h.b", ty(DT_F32, false, 1, 64, 0));
  s.init.kind = INIT_ZEROS;
  ir_add_symbol(m, s);
  s = sym(SYM_STATE, "h.w/m", ty(DT_F32, false, 2, 784, 64));
  s.init.kind = INIT_ZEROS;
  s.owner = sw;
  ir_add_symbol(m, s);
  s = sym(SYM_HYPER, "lr", type_scalar(DT_F32));
  s.value = 0.001;
  ir_add_symbol(m, s);
  m->train = (TrainSpec){true, DATA_IDX, "/usr/share/datasets/fashion-mnist", NULL, NULL, 1 / 255.0, 32, 5, 1,
                         true, "adam", 0, 0, 0, {SCHEDULE_CONSTANT, 0, 0, 0, 0}};
  ValueId x = ir_leaf(m, OP_INPUT, sx, ir_loc(m, fu, 2, 10, 0));
  ValueId w = ir_leaf(m, OP_PARAM, sw, ir_loc(m, fs, 20, 3, call));
  ValueId mm = ir_op2(m, OP_MATMUL, x, w, ir_loc(m, fs, 21, 12, call));
  ir_const(m, DT_F32, 0, 0);
  ValueId rs = ir_reduce(m, OP_REDUCE_SUM, mm, 1, 0);
  uint8_t perm[NNC_MAX_RANK] = {1, 0};
  ir_transpose(m, w, perm, 0);
  ir_leaf(m, OP_STEP, 0, 0);
  ValueId g = ir_leaf(m, OP_GRAD, sw, 0);
  ir_add_output(m, OUT_LOSS, NULL, 0, rs);
  ir_add_output(m, OUT_METRIC, "accuracy", 0, rs);
  ir_add_output(m, OUT_UPDATE, "h.w", sw, g);
  clear_diags();
  CHECK(ir_verify(m, "golden"), "golden module does not verify");
  char *text = print_str(m);
  CHECK(!strcmp(text, golden), "printed:\n%s\nexpected:\n%s", text, golden);
  free(text);
  Module *r = roundtrip(m, "golden.nnir");
  ir_module_free(r);
  ir_module_free(m);

  /* An empty module prints nothing; a module with only nodes has no blank line. */
  m = ir_module_new();
  text = print_str(m);
  CHECK(!strcmp(text, ""), "empty module printed '%s'", text);
  free(text);
  ir_const(m, DT_F32, 2, 0);
  text = print_str(m);
  CHECK(!strcmp(text, "%0 = const 2 : f32\n"), "nodes-only module printed '%s'", text);
  free(text);
  ir_module_free(roundtrip(m, "nodes-only.nnir"));
  ir_module_free(m);
}

/* ---- numbers ---------------------------------------------------------------------- */

static void test_numbers(void) {
  static const struct { double v; const char *text; } exact[] = {
      {0.001, "0.001"}, {1 / 255.0, "0.00392156862745098"}, {1e-8, "1e-8"}, {3, "3"}, {-0.0, "-0"},
      {0, "0"}, {1e300, "1e300"}, {-2.5, "-2.5"}, {100, "100"}, {123456789, "123456789"}, {0.1, "0.1"},
      {5e-324, "5e-324"}, {1e21, "1e21"}, {1e-7, "1e-7"}, {2147483648.0, "2147483648"},
  };
  for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
    const char *got = number_str(exact[i].v);
    CHECK(!strcmp(got, exact[i].text), "ir_print_number(%.17g) = %s, expected %s", exact[i].v, got, exact[i].text);
  }
  CHECK(!strcmp(number_str(INFINITY), "inf"), "inf");
  CHECK(!strcmp(number_str(-INFINITY), "-inf"), "-inf");
  CHECK(!strcmp(number_str(NAN), "nan"), "nan");

  double vals[] = {0.001, 1 / 255.0, 1e-8, 3, -0.0, 0.0, INFINITY, -INFINITY, NAN, 1e300, -1e300, 5e-324,
                   2.2250738585072009e-308, 2.2250738585072014e-308, 1.7976931348623157e308, 1.0 / 3, 2.0 / 3,
                   0.1 + 0.2, 9007199254740993.0, 4.35, 1e23, 8.41e21, 5e-310, -7.5e-320, 123.456e-100};
  int n = (int)(sizeof vals / sizeof vals[0]);
  for (int i = 0; i < n; i++) {
    const char *got = number_str(vals[i]);
    double back = !strcmp(got, "nan")    ? NAN
                  : !strcmp(got, "inf")  ? INFINITY
                  : !strcmp(got, "-inf") ? -INFINITY
                                         : strtod(got, NULL);
    CHECK(isnan(vals[i]) ? isnan(back) : memcmp(&back, &vals[i], sizeof back) == 0, "%s does not read back as %.17g",
          got, vals[i]);
  }
  /* Through the reader: constants and hypers keep their exact bits. */
  Module *m = ir_module_new();
  for (int i = 0; i < n; i++) {
    ir_const(m, DT_F32, vals[i], 0);
    char name[16];
    snprintf(name, sizeof name, "h%d", i);
    Symbol s = sym(SYM_HYPER, name, type_scalar(DT_F32));
    s.value = vals[i];
    ir_add_symbol(m, s);
  }
  Module *r = roundtrip(m, "numbers.nnir");
  if (r) {
    for (int i = 0; i < n; i++) {
      double a = r->nodes[i].attr.value, h = r->syms[i].value;
      CHECK(isnan(vals[i]) ? isnan(a) && isnan(h) : !memcmp(&a, &vals[i], sizeof a) && !memcmp(&h, &vals[i], sizeof h),
            "value %d (%.17g) changed to %.17g / %.17g", i, vals[i], a, h);
    }
    ir_module_free(r);
  }
  ir_module_free(m);
}

/* ---- shape rules ------------------------------------------------------------------- */

static void test_shape_errors(void) {
  Module *m = ir_module_new();
  Symbol s = sym(SYM_INPUT, "x", ty(DT_F32, true, 1, 784, 0));
  ValueId x = ir_leaf(m, OP_INPUT, ir_add_symbol(m, s), 0);
  s = sym(SYM_PARAM, "w", ty(DT_F32, false, 2, 512, 10));
  ValueId w = ir_leaf(m, OP_PARAM, ir_add_symbol(m, s), 0);
  s = sym(SYM_PARAM, "v", ty(DT_F32, false, 1, 3, 0));
  ValueId v = ir_leaf(m, OP_PARAM, ir_add_symbol(m, s), 0);
  char err[256];
  ValueId args[2] = {x, w};
  CHECK(ir_build(m, OP_MATMUL, args, 2, NULL, 0, err, sizeof err) == NO_VALUE, "matmul mismatch accepted");
  CHECK(strstr(err, "matmul shapes do not match: [784] @ [512,10]") != NULL, "message: %s", err);
  ValueId args2[2] = {x, v};
  CHECK(ir_build(m, OP_ADD, args2, 2, NULL, 0, err, sizeof err) == NO_VALUE, "bad broadcast accepted");
  CHECK(strstr(err, "shapes do not broadcast: [784] add [3]") != NULL, "message: %s", err);
  Node attrs;
  memset(&attrs, 0, sizeof attrs);
  attrs.type = ty(DT_F32, false, 2, 100, 50);
  CHECK(ir_build(m, OP_RESHAPE, &w, 1, &attrs, 0, err, sizeof err) == NO_VALUE, "bad reshape accepted");
  CHECK(strstr(err, "cannot reshape [512,10] (5120 elements) to [100,50] (5000 elements)") != NULL, "message: %s", err);
  attrs.type = ty(DT_F32, false, 2, 1024, 5);
  CHECK(ir_build(m, OP_RESHAPE, &w, 1, &attrs, 0, err, sizeof err) != NO_VALUE, "good reshape refused: %s", err);
  ir_module_free(m);
}

/* ---- the verifier ------------------------------------------------------------------- */

/* input x f32[B,4]; param w f32[4,3]; param b f32[3]; state w/m; hyper lr
 * %0 input x, %1 param w, %2 matmul, %3 param b, %4 add, %5 reduce_sum,
 * %6 hyper lr, %7 state, %8 mul; outputs loss %5, metric @m %5, update @w/m %8 */
static Module *small_module(void) {
  Module *m = ir_module_new();
  m->name = "small";
  uint32_t sx = ir_add_symbol(m, sym(SYM_INPUT, "x", ty(DT_F32, true, 1, 4, 0)));
  uint32_t sw = ir_add_symbol(m, sym(SYM_PARAM, "w", ty(DT_F32, false, 2, 4, 3)));
  uint32_t sb = ir_add_symbol(m, sym(SYM_PARAM, "b", ty(DT_F32, false, 1, 3, 0)));
  Symbol s = sym(SYM_STATE, "w/m", ty(DT_F32, false, 2, 4, 3));
  s.owner = sw;
  uint32_t sm = ir_add_symbol(m, s);
  uint32_t slr = ir_add_symbol(m, sym(SYM_HYPER, "lr", type_scalar(DT_F32)));
  ValueId x = ir_leaf(m, OP_INPUT, sx, 0), w = ir_leaf(m, OP_PARAM, sw, 0);
  ValueId mm = ir_op2(m, OP_MATMUL, x, w, 0);
  ValueId z = ir_op2(m, OP_ADD, mm, ir_leaf(m, OP_PARAM, sb, 0), 0);
  ValueId rs = ir_reduce(m, OP_REDUCE_SUM, z, 1, 0);
  ValueId lr = ir_leaf(m, OP_HYPER, slr, 0);
  ValueId up = ir_op2(m, OP_MUL, lr, ir_leaf(m, OP_STATE, sm, 0), 0);
  ir_add_output(m, OUT_LOSS, NULL, 0, rs);
  ir_add_output(m, OUT_METRIC, "m", 0, rs);
  ir_add_output(m, OUT_UPDATE, "w/m", sm, up);
  return m;
}

typedef void (*Breaker)(Module *m);
static void break_type(Module *m) { m->nodes[4].type.dims[0] = 5; }
static void break_forward(Module *m) { m->nodes[4].args[1] = 6; }
static void break_kind(Module *m) { m->nodes[1].attr.sym = 0; }
static void break_loss(Module *m) { m->outputs[0].value = 4; }
static void break_update(Module *m) { m->outputs[2].value = 3; }
static void break_two_losses(Module *m) { ir_add_output(m, OUT_LOSS, NULL, 0, 5); }
static void break_output_value(Module *m) { m->outputs[1].value = 99; }
static void break_owner(Module *m) { m->syms[3].owner = 0; }
static void break_dup(Module *m) { ir_add_symbol(m, sym(SYM_STATE, "w", ty(DT_F32, false, 0, 0, 0))); }
static void break_op(Module *m) { m->nodes[2].op = (Op)OP_COUNT; }
static void break_arity(Module *m) { m->nodes[4].nargs = 1; }
static void break_sym_range(Module *m) { m->nodes[3].attr.sym = 77; }
static void break_loc(Module *m) { m->nodes[2].loc = 42; }
static void break_loc_parent(Module *m) {
  uint32_t f = ir_file(m, "a.nn");
  uint32_t l = ir_loc(m, f, 1, 1, 0);
  m->locs[l].parent = l;
}
static void break_leaf_type(Module *m) { m->nodes[0].type.batched = false; }
static void break_update_kind(Module *m) { m->outputs[2].sym = 0; }
static void break_rank(Module *m) { m->nodes[2].type.rank = 9; }

static void test_verifier(void) {
  static const struct { Breaker fn; const char *msg; } cases[] = {
      {break_type, "verifier (test): %4 = add: type f32[B,5], but the shape rule gives f32[B,3]"},
      {break_forward, "verifier (test): %4 = add: operand %6 is not defined before its use"},
      {break_kind, "verifier (test): %1 = param: @x is input"},
      {break_loss, "verifier (test): output loss %4: type f32[B,3], expected f32[B]"},
      {break_update, "verifier (test): output update @w/m %3: type f32[3], but the state is f32[4,3]"},
      {break_two_losses, "output loss %5: more than one loss"},
      {break_output_value, "output metric @m %99: undefined value"},
      {break_owner, "state @w/m: owner #0 is not a param"},
      {break_dup, "state @w: name already used by param #1"},
      {break_op, "%2 = <op"},
      {break_arity, "%4 = add: 1 operands, expected 2"},
      {break_sym_range, "%3 = param: symbol #77 out of range"},
      {break_loc, "%2 = matmul: loc 42 out of range"},
      {break_loc_parent, "is not an earlier loc"},
      {break_leaf_type, "%0 = input: type f32[4], but @x is f32[B,4]"},
      {break_update_kind, "output update @x %8: not a param or state"},
      {break_rank, "%2 = matmul: invalid type: rank 9"},
  };
  Module *m = small_module();
  clear_diags();
  CHECK(ir_verify(m, "test"), "small module does not verify");
  dump_diags();
  ir_module_free(m);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    m = small_module();
    cases[i].fn(m);
    clear_diags();
    CHECK(!ir_verify(m, "test"), "case %zu: broken module verifies", i);
    CHECK(has_diag(cases[i].msg), "case %zu: no diagnostic '%s'", i, cases[i].msg);
    if (!has_diag(cases[i].msg)) dump_diags();
    /* Broken modules still print without crashing. */
    char *t = print_str(m);
    free(t);
    t = dot_str(m);
    free(t);
    ir_module_free(m);
  }
}

/* ---- reader errors -------------------------------------------------------------- */

#define DECLS "input @x : f32[B,4]\nlabel @y : i32[B] bound 3\nparam @w : f32[4,3]\nparam @b : f32[3]\n\n"
/* DECLS is lines 1-5; the case's lines start at line 6. */

static void test_reader_errors(void) {
  static const struct { const char *text; unsigned line, col; const char *msg; } cases[] = {
      {DECLS "%0 = input @x f32[B,4]\n", 6, 15, "expected ':' before the type, found 'f32'"},
      {DECLS "%0 = input @x : f32[B,4]\n%1 = param @w : f32[4,3]\n%2 = matmull %0, %1 : f32[B,3]\n", 8, 6,
       "unknown op 'matmull'"},
      {DECLS "%0 = input @x : f32[B,4]\n%1 = neg %12 : f32[B,4]\n", 7, 10, "use of undefined value %12"},
      {DECLS "%0 = input @x : f32[B,4]\n%1 = neg %1 : f32[B,4]\n", 7, 10, "use of undefined value %1"},
      {DECLS "%0 = param @h.q : f32[4,3]\n", 6, 12, "unknown symbol @h.q"},
      {DECLS "%0 = input @x : f32[B,4]\n%1 = input @x : f32[B,4]\n%3 = input @x : f32[B,4]\n", 8, 1,
       "value %3 is defined out of order (expected %2)"},
      {DECLS "%0 = input @x : f32[B,4]\n%0 = input @x : f32[B,4]\n", 7, 1, "value %0 is already defined"},
      {DECLS "%0 = param @x : f32[B,4]\n", 6, 12, "param needs a param, but @x is an input"},
      {DECLS "%0 = grad @y : i32[B]\n", 6, 11, "grad needs a param, but @y is a label"},
      {DECLS "%0 = input @x : f32[B,4]\n%1 = neg : f32[B,4]\n", 7, 6, "neg takes 1 operand, found 0"},
      {DECLS "%0 = input @x : f32[B,4]\n%1 = neg %0, %0 : f32[B,4]\n", 7, 14, "neg takes 1 operand"},
      {DECLS "%0 = input @x : f32[B,4]\n%1 = neg %0 %0 : f32[B,4]\n", 7, 13, "expected ',' between operands, found '%0'"},
      {DECLS "%0 = const 1 %0 : f32\n", 6, 14, "const takes 0 operands"},
      {"param @p : f32[1,1,1,1,1,1,1]\n", 1, 28, "a type has at most 6 axes"},
      {"param @p : f32[3,0]\n", 1, 18, "dimension 0 is out of range (1 to 2147483647)"},
      {"param @p : f32[99999999999999999999]\n", 1, 16, "dimension 99999999999999999999 is out of range"},
      {"param @p : f32[2147483647,2147483647]\n", 1, 27, "a tensor has at most 1099511627776 elements"},
      {"param @p : f32[3,B]\n", 1, 18, "the batch axis B must come first"},
      {"param @p : f64[3]\n", 1, 12, "unknown type 'f64' (expected f32 or i32)"},
      {"param @p : f32[]\n", 1, 16, "expected dimension, found ']'"},
      {"input @p : f32[3]\n", 1, 12, "inputs are batched: the type must start with B, found f32[3]"},
      {"param @p : f32[B,3]\n", 1, 12, "params are not batched, found f32[B,3]"},
      {DECLS "%0 = input @x : f32[B,4]\n%1 = reduce_sum %0 axes [1] : f32[B]\n", 7, 26,
       "axis 1 is out of range for an operand of rank 1"},
      {DECLS "%0 = param @w : f32[4,3]\n%1 = reduce_sum %0 axes [1,1] : f32[4]\n", 7, 28, "duplicate axis 1"},
      {DECLS "%0 = param @w : f32[4,3]\n%1 = reduce_sum %0 axes [] : f32[4,3]\n", 7, 20,
       "reduce_sum needs at least one axis"},
      {DECLS "%0 = param @w : f32[4,3]\n%1 = transpose %0 perm [0] : f32[4,3]\n", 7, 19,
       "perm has 1 entries, but the operand has rank 2"},
      {DECLS "%0 = param @w : f32[4,3]\n%1 = transpose %0 : f32[3,4]\n", 7, 19, "expected 'perm' after the operand"},
      {DECLS "%0 = input @x : f32[B,4]\n%1 = param @w : f32[4,3]\n%2 = matmul %0, %1 : f32[B,4]\n", 8, 22,
       "type f32[B,4] does not match the type matmul computes, f32[B,3]"},
      {DECLS "%0 = input @x : f32[B,4]\n%1 = param @w : f32[4,3]\n%2 = matmul %1, %0 : f32[B,3]\n", 8, 6,
       "matmul shapes do not match: [4,3] @ [4]"},
      {DECLS "%0 = input @x : f32[B,3]\n", 6, 17, "type f32[B,3] does not match the type of @x, f32[B,4]"},
      {DECLS "%0 = const 1 : f32[3]\n", 6, 16, "const must be a scalar (f32 or i32), found f32[3]"},
      {DECLS "%0 = const 0.5 : i32\n", 6, 18, "an i32 const must be an integer in the i32 range"},
      {DECLS "%0 = step : i32\n", 6, 13, "step is an f32 scalar, found i32"},
      {"input @x : f32[B,4]\nparam @x : f32[4]\ninput @x : f32[B,2]\n", 3, 7, "redefinition of @x"},
      {"label @x : i32[B]\ninput @x : f32[B,2]\n", 2, 7, "redefinition of @x"},
      {DECLS "%0 = input @x : f32[B,4] loc(\"a.nn:1:2)\n", 6, 30, "unterminated string"},
      {DECLS "%0 = input @x : f32[B,4] loc(\"a\\q.nn\":1:2)\n", 6, 32, "unknown escape '\\q' in a string"},
      {DECLS "%0 = input @x : f32[B,4] loc(\"a\\x0.nn\":1:2)\n", 6, 32, "expected two hex digits after '\\x'"},
      {DECLS "%0 = input @x : f32[B,4] loc(\"a\\x00.nn\":1:2)\n", 6, 32, "a string cannot contain a NUL byte"},
      {DECLS "%0 = input @x : f32[B,4] loc(\"a.nn\":0:2)\n", 6, 37, "line 0 is out of range (1 to 4294967295)"},
      {DECLS "%0 = input @x : f32[B,4] loc(\"a.nn\":1:2 in \"b.nn\":3:4)\n", 6, 41,
       "expected 'at' or ')' in loc(...), found 'in'"},
      {DECLS "%0 = input @x : f32[B,4] $\n", 6, 26, "unexpected character '$'"},
      {DECLS "%0 = input @x : f32[B,4]\n%1 = neg %0 : f32[B,4] junk\n", 7, 24,
       "expected end of line after the node, found 'junk'"},
      {"state @s : f32[3] = zeros() for @nope\nparam @p : f32[3]\n", 1, 33, "unknown symbol @nope"},
      {"state @s : f32[3] = zeros()\n", 1, 28, "expected 'for' and the state's parameter, found end of line"},
      {"param @p : f32[3] = zeros(1)\n", 1, 21, "zeros takes 0 arguments"},
      {"param @p : f32[3] = uniform(1)\n", 1, 21, "uniform takes 2 arguments, found 1"},
      {"param @p : f32[3] = random()\n", 1, 21, "unknown initializer 'random'"},
      {"train batch = 32, color = red\n", 1, 19, "unknown train field 'color'"},
      {"train batch = 32, batch = 4\n", 1, 19, "duplicate train field 'batch'"},
      {"train batch = 0\n", 1, 15, "batch 0 is out of range (1 to 2147483647)"},
      {"train data = idx(\"a\"), shuffle = yes\n", 1, 34, "expected true or false, found 'yes'"},
      {"train data = csv(\"a\", test = \"b\", test = \"c\")\n", 1, 35, "duplicate csv option 'test'"},
      {"train\ntrain\n", 2, 1, "duplicate train line"},
      {DECLS "%0 = input @x : f32[B,4]\ninput @z : f32[B,4]\n", 7, 1, "declarations must come before the nodes"},
      {DECLS "%0 = input @x : f32[B,4]\nmodule @m\n", 7, 1, "the module line must come first"},
      {"module @a\nmodule @b\n", 2, 1, "duplicate module line"},
      {DECLS "%0 = input @x : f32[B,4]\n%1 = reduce_sum %0 axes [0] : f32[B]\noutput loss %0\n", 8, 13,
       "a loss is a per-sample f32 scalar (f32[B]), but %0 is f32[B,4]"},
      {DECLS "%0 = input @x : f32[B,4]\n%1 = reduce_sum %0 axes [0] : f32[B]\noutput loss %1\noutput loss %1\n", 9, 8,
       "duplicate loss output"},
      {DECLS "%0 = input @x : f32[B,4]\n%1 = reduce_sum %0 axes [0] : f32[B]\noutput loss %1\n%2 = neg %1 : f32[B]\n",
       9, 1, "nodes must come before the outputs"},
      {DECLS "%0 = input @x : f32[B,4]\noutput update @x %0\n", 7, 15, "update needs a param or a state, but @x is an input"},
      {DECLS "%0 = param @b : f32[3]\noutput update @w %0\n", 7, 18,
       "the update of @w must have its type f32[4,3], but %0 is f32[3]"},
      {DECLS "%0 = input @x : f32[B,4]\noutput gain %0\n", 7, 8, "expected loss, metric, update or predict, found 'gain'"},
      {DECLS "%0 = param @b : f32[3]\noutput predict @p %0\n", 7, 19,
       "a prediction is a batched f32 tensor, but %0 is f32[3]"},
      {DECLS "%0 = input @x : f32[B,4]\noutput predict @p %0\noutput predict @q %0\n", 8, 8, "duplicate predict output"},
      {DECLS "%0 = input @x : f32[B,4]\noutput predict %0\n", 7, 16, "expected the prediction's name (@name)"},
      {DECLS "%0 = const 1.2.3 : f32\n", 6, 12, "malformed number '1.2.3'"},
      {DECLS "%0 = const 1e : f32\n", 6, 12, "malformed number '1e'"},
      {DECLS "%0 = const -info : f32\n", 6, 12, "malformed number '-info'"},
      {DECLS "%0 = const 12abc : f32\n", 6, 12, "malformed number '12abc'"},
      {DECLS "% = const 1 : f32\n", 6, 1, "expected a value number after '%'"},
      {DECLS "%99999999999 = const 1 : f32\n", 6, 1, "value number is too large"},
      {DECLS "%0 = param @ : f32\n", 6, 12, "expected a name after '@'"},
      {"hello\n", 1, 1, "expected a declaration, a node (%N = ...) or an output, found 'hello'"},
      {"param @p : f32[3] bound 4\n", 0, 0, "verifier (reading t.nnir): param @p: only i32 inputs and labels have a bound"},
      {"\xff\n", 1, 1, "unexpected character '\\xff'"},
      {"  ; just a comment\n\n\t%0 = const 1 : f32 ; trailing\n%1 = exp %0 : i32\n", 4, 15,
       "type i32 does not match the type exp computes, f32"},
      {"input @x : i32[B]\n%0 = input @x : i32[B]\n%1 = exp %0 : f32[B]\n", 3, 6, "exp needs an f32 operand, found i32"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    clear_diags();
    Module *m = read_text("t.nnir", cases[i].text, strlen(cases[i].text));
    CHECK(m == NULL, "case %zu: accepted:\n%s", i, cases[i].text);
    ir_module_free(m);
    int errors = 0;
    const Diagnostic *first = NULL;
    for (uint32_t k = 0; k < nnc_diag.ncollected; k++)
      if (nnc_diag.collected[k].level == DIAG_ERROR) {
        errors++;
        if (!first) first = &nnc_diag.collected[k];
      }
    CHECK(errors == 1, "case %zu: %d errors", i, errors);
    if (!first) continue;
    bool ok = first->loc.line == cases[i].line && first->loc.col == cases[i].col && strstr(first->msg, cases[i].msg);
    CHECK(ok, "case %zu: got %u:%u: %s\n    expected %u:%u: %s", i, first->loc.line, first->loc.col, first->msg,
          cases[i].line, cases[i].col, cases[i].msg);
  }
  /* A NUL byte in the middle of the text. */
  static const char nul[] = "%0 = const 1 :\0 f32\n";
  clear_diags();
  Module *m = read_text("nul.nnir", nul, sizeof nul - 1);
  CHECK(m == NULL && nnc_diag.ncollected >= 1 && nnc_diag.collected[0].loc.col == 15 &&
            strstr(nnc_diag.collected[0].msg, "unexpected character '\\x00'"),
        "NUL byte not reported");
  ir_module_free(m);
  /* The duplicate symbol note points at the first declaration. */
  clear_diags();
  m = read_text("dup.nnir", "param @w : f32[3]\n\nparam @w : f32[3]\n", 36);
  CHECK(m == NULL && nnc_diag.ncollected == 2 && nnc_diag.collected[1].level == DIAG_NOTE &&
            nnc_diag.collected[1].loc.line == 1 && nnc_diag.collected[1].loc.col == 7,
        "duplicate symbol note");
}

/* Texts the reader accepts, beyond what the printer prints: comments, free
 * space, any order of train fields and symbols declared out of order. */
static void test_reader_accepts(void) {
  static const char text[] =
      "; a comment\n"
      "   module   @\"my model\"   ; trailing comment\n"
      "\n\n"
      "state @w/m : f32[3] for @w\n"
      "param @w : f32[3] = full(-inf) loc(\"a.nn\":3:4)\n"
      "hyper @h = nan\n"
      "train optimizer = \"odd name\", seed = -9223372036854775808, data = idx(\"d\")\n"
      "\t%0 = param @w:f32[3]\n"
      "%1 = const -.5e+1 : f32\n"
      "%2 = add %0,%1 : f32[3]\n"
      "output update @w %2\n";
  static const char canon[] =
      "module @\"my model\"\n"
      "\n"
      "state @w/m : f32[3] for @w\n"
      "param @w : f32[3] = full(-inf) loc(\"a.nn\":3:4)\n"
      "hyper @h = nan\n"
      "train data = idx(\"d\"), seed = -9223372036854775808, shuffle = true, optimizer = \"odd name\"\n"
      "\n"
      "%0 = param @w : f32[3]\n"
      "%1 = const -5 : f32\n"
      "%2 = add %0, %1 : f32[3]\n"
      "\n"
      "output update @w %2\n";
  clear_diags();
  Module *m = read_text("accept.nnir", text, strlen(text));
  CHECK(m != NULL, "free-form text refused");
  if (!m) {
    dump_diags();
    return;
  }
  char *p = print_str(m);
  CHECK(!strcmp(p, canon), "canonical form:\n%s", p);
  free(p);
  ir_module_free(m);
}

/* ---- robustness ---------------------------------------------------------------- */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}

/* Reads any bytes; what is accepted must round-trip and verify. */
static void fuzz_one(const char *text, size_t len, FILE *sink) {
  clear_diags();
  Module *m = read_text("fuzz.nnir", text, len);
  drop_last_file();
  if (m) {
    char *a = print_str(m);
    Module *r = read_text("fuzz2.nnir", a, strlen(a));
    drop_last_file();
    CHECK(r != NULL, "accepted text does not round-trip:\n%.*s\nprinted as:\n%s", (int)len, text, a);
    if (r) {
      char *b = print_str(r);
      CHECK(!strcmp(a, b), "accepted text prints differently the second time:\n%s\n---\n%s", a, b);
      free(b);
      ir_print_dot(r, sink);
      ir_module_free(r);
    }
    free(a);
    ir_module_free(m);
  }
}

static void test_robustness(void) {
  FILE *sink = fopen("/dev/null", "w");
  Module *all = build_all_ops();
  char *text = print_str(all);
  size_t len = strlen(text);
  /* every truncation */
  for (size_t n = 0; n <= len; n++) fuzz_one(text, n, sink);
  /* random single-byte mutations, deletions, insertions, and a few at once */
  static const char alphabet[] = "%@:=,[]()\"\\;\n -.0123456789eBfix";
  char *buf = malloc(len + 16);
  for (int iter = 0; iter < 6000; iter++) {
    memcpy(buf, text, len);
    size_t n = len;
    int edits = 1 + (int)(rnd() % 3);
    for (int e = 0; e < edits; e++) {
      size_t at = rnd() % n;
      unsigned kind = rnd() % 3;
      char c = rnd() % 2 ? alphabet[rnd() % (sizeof alphabet - 1)] : (char)(rnd() & 0xff);
      if (kind == 0) buf[at] = c;
      else if (kind == 1 && n > 1) memmove(buf + at, buf + at + 1, n - at - 1), n--;
      else if (n < len + 8) memmove(buf + at + 1, buf + at, n - at), buf[at] = c, n++;
    }
    fuzz_one(buf, n, sink);
  }
  /* random bytes and random token soup */
  static const char *tokens[] = {"%0", "%1", "%2", " = ", "input", "param", "state", "hyper", "label", "train",
                                 "module", "output", "loss", "@x", "@w", " : ", "f32", "i32", "[B,3]", "[4,3]",
                                 "const", "add", "matmul", "1", "-inf", "nan", "\n", ", ", "loc(\"a\":1:2)",
                                 "axes [0]", "perm [1,0]", "= zeros()", "for @w", "bound 3", "\"", "@\"", ";"};
  char soup[512];
  for (int iter = 0; iter < 4000; iter++) {
    size_t n = 0, target = rnd() % 400;
    bool bytes = iter % 4 == 0;
    while (n < target) {
      if (bytes) {
        soup[n++] = (char)(rnd() & 0xff);
      } else {
        const char *t = tokens[rnd() % (sizeof tokens / sizeof tokens[0])];
        size_t k = strlen(t);
        if (n + k >= sizeof soup) break;
        memcpy(soup + n, t, k);
        n += k;
      }
    }
    fuzz_one(soup, n, sink);
  }
  /* long inputs: deep loc chains, many nodes, a huge number */
  size_t cap = 1 << 20;
  char *big = malloc(cap);
  size_t n = (size_t)snprintf(big, cap, "%%0 = const 1 : f32 loc(\"a\":1:1");
  while (n + 20 < cap / 2) n += (size_t)snprintf(big + n, cap - n, " at \"b\":2:2");
  n += (size_t)snprintf(big + n, cap - n, ")\n");
  clear_diags();
  Module *m = read_text("deep.nnir", big, n);
  CHECK(m != NULL, "deep loc chain refused");
  ir_module_free(m);
  memset(big, '9', cap);
  memcpy(big, "%0 = const ", 11);
  fuzz_one(big, cap, sink);
  free(big);
  free(buf);
  free(text);
  ir_module_free(all);
  fclose(sink);
}

/* Philox4x32-10 against Random123's known-answer vectors (kat_vectors),
 * and `random` as the top 24 bits of word 0 of key (a, 0), counter
 * (c, c >> 32, b, 0). */
static void test_philox(void) {
  static const uint32_t kat[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
       0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
       0x24126ea1},
  };
  for (int i = 0; i < 3; i++) {
    uint32_t out[4];
    op_philox4x32(kat[i], kat[i] + 4, out);
    for (int w = 0; w < 4; w++)
      CHECK(out[w] == kat[i][6 + w], "philox vector %d word %d: got %08x, want %08x", i, w, out[w], kat[i][6 + w]);
  }
  CHECK(op_eval(OP_RANDOM, DT_F32, 0, 0, 0) == 0x6627e8 * 0x1p-24, "random(0, 0, 0) = %.9g", op_eval(OP_RANDOM, DT_F32, 0, 0, 0));
  uint32_t ctr[4] = {5, 1, 7, 0}, key[2] = {0xfffffffe, 0}, out[4];
  op_philox4x32(ctr, key, out);
  double r = op_eval(OP_RANDOM, DT_F32, -2, 7, 4294967296.0 + 5);
  CHECK(r == (out[0] >> 8) * 0x1p-24, "random(-2, 7, 2^32 + 5) = %.9g, want %.9g", r, (out[0] >> 8) * 0x1p-24);
  /* uniform: the mean and the fraction below 0.3 of 100000 draws */
  double sum = 0, below = 0;
  for (int i = 0; i < 100000; i++) {
    double u = op_eval(OP_RANDOM, DT_F32, 12345, 3, i);
    CHECK(u >= 0 && u < 1, "draw %d is %g", i, u);
    sum += u, below += u < 0.3;
  }
  CHECK(fabs(sum / 100000 - 0.5) < 0.005 && fabs(below / 100000 - 0.3) < 0.005, "mean %g, below 0.3: %g",
        sum / 100000, below / 100000);
}

int main(void) {
  diag_init(&nnc_diag);
  nnc_diag.verify = true; /* collect diagnostics instead of printing them */
  nnc_diag.error_limit = 0;
  test_golden();
  test_public_numbers();
  test_philox();
  test_all_ops();
  test_numbers();
  test_shape_errors();
  test_verifier();
  test_reader_errors();
  test_reader_accepts();
  test_robustness();
  return check_done();
}
