/* test/unit/test_kernel_ir.c - the kernel IR's printer and verifier.
 *
 * Builds a small program with the builder (ir/kernel.c): a matmul with a
 * reduction, a loss with most expression forms, a fixed-size reduction over
 * the batch and an optimizer update, and checks its --emit=kernels text
 * byte for byte, then expression printing (precedence, constants, scalars)
 * on its own.  Then breaks the program once for each invariant the verifier
 * checks and asserts that kprog_verify returns false with the expected
 * `nnc: internal error: kernel IR: WHERE: problem` line on stderr, and that
 * the intact program verifies silently.  Exits non-zero on failure.
 */
#include "ir/kernel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

/* ---- helpers ----------------------------------------------------------------------- */

/* The printed program, malloc'd.  (The stream writes through file-scope
 * variables: with locals, GCC's -Wdangling-pointer takes the result for a
 * pointer into the local once this is inlined.) */
static char *memstream_buf;
static size_t memstream_len;

static char *print_str(const KProgram *p) {
  FILE *f = open_memstream(&memstream_buf, &memstream_len);
  kprog_print(p, f);
  fclose(f);
  char *s = memstream_buf;
  memstream_buf = NULL;
  return s;
}

/* Runs the verifier with stderr captured into out (at most len - 1 bytes). */
static bool verify_captured(const KProgram *p, char *out, size_t len) {
  fflush(stderr);
  FILE *tmp = tmpfile();
  int saved = dup(2);
  if (!tmp || saved < 0) {
    fprintf(stderr, "cannot capture stderr\n");
    exit(1);
  }
  dup2(fileno(tmp), 2);
  bool ok = kprog_verify(p);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  rewind(tmp);
  size_t n = fread(out, 1, len - 1, tmp);
  out[n] = 0;
  fclose(tmp);
  return ok;
}

static Symbol sym(SymKind kind, const char *name, DType dt, bool batched, int rank, int64_t d0, int64_t d1) {
  Symbol s;
  memset(&s, 0, sizeof s);
  s.kind = kind;
  s.name = name;
  int64_t d[2] = {d0, d1};
  s.type = type_make(dt, rank, d, batched);
  return s;
}

static KBuffer buffer(KBufKind kind, const char *name, const Type *t, uint32_t symbol, int32_t slot) {
  KBuffer b;
  memset(&b, 0, sizeof b);
  b.kind = kind;
  b.name = name;
  b.type = *t;
  b.sym = symbol;
  b.slot = slot;
  b.op = -1;
  return b;
}

static void append(KStmt *loop, KStmt *s) { kstmt_append(&loop->body, &loop->nbody, &loop->capbody, s); }
static void append_top(Kernel *k, KStmt *s) { kstmt_append(&k->body, &k->nbody, &k->capbody, s); }

#define IDX(...) ((KExpr *const[]){__VA_ARGS__}), (int)(sizeof((KExpr *const[]){__VA_ARGS__}) / sizeof(KExpr *))

static KExpr *f32c(KProgram *p, double v) { return kexpr_const(p, DT_F32, v); }
static KExpr *op1(KProgram *p, Op op, KExpr *a) { return kexpr_op(p, op, a->dtype, a, NULL, NULL); }
static KExpr *op2(KProgram *p, Op op, KExpr *a, KExpr *b) { return kexpr_op(p, op, a->dtype, a, b, NULL); }
static KExpr *cmp(KProgram *p, Op op, KExpr *a, KExpr *b) { return kexpr_op(p, op, DT_F32, a, b, NULL); }

/* An index expression a OP k that kexpr_iadd / kexpr_imul do not cover. */
static KExpr *iop(KProgram *p, Op op, KExpr *a, KExpr *b) {
  KExpr *e = kexpr_op(p, op, DT_I32, a, b, NULL);
  e->index = true;
  return e;
}

/* ---- the test program ---------------------------------------------------------------- */

/* The program and the pieces the verifier tests break. */
typedef struct T {
  Module *m;
  KProgram *p;
  uint32_t k0, k1, k2, k3, k4;  /* kernel indices */
  KStmt *mm_outer, *mm_mid, *mm_red, *mm_let, *mm_acc, *mm_store;
  KExpr *mm_x, *mm_w;           /* the two loads of the matmul */
  KExpr *loss_where, *loss_cmp, *loss_log, *loss_batch;
  KStmt *loss_store;
  KExpr *sgd_lr;                /* $hyper.lr in the update */
  KStmt *sgd_w;                 /* the store into h.w */
} T;

static T build(void) {
  T t;
  memset(&t, 0, sizeof t);
  Module *m = t.m = ir_module_new();
  m->name = "mnist";
  uint32_t fu = ir_file(m, "examples/mnist.nn"), fs = ir_file(m, "stdlib/nn.nn");
  uint32_t outer = ir_loc(m, fu, 5, 17, 0), inner = ir_loc(m, fs, 33, 12, outer);
  uint32_t lloss = ir_loc(m, fu, 9, 3, 0);
  uint32_t sx = ir_add_symbol(m, sym(SYM_INPUT, "x", DT_F32, true, 1, 784, 0));
  uint32_t sy = ir_add_symbol(m, sym(SYM_LABEL, "y", DT_I32, true, 0, 0, 0));
  uint32_t sw = ir_add_symbol(m, sym(SYM_PARAM, "h.w", DT_F32, false, 2, 784, 64));
  Symbol st = sym(SYM_STATE, "h.w/m", DT_F32, false, 2, 784, 64);
  st.owner = sw;
  uint32_t sm = ir_add_symbol(m, st);
  Symbol h = sym(SYM_HYPER, "lr", DT_F32, false, 0, 0, 0);
  h.value = 0.1;
  ir_add_symbol(m, h);
  h.name = "beta";
  h.value = 0.9;
  ir_add_symbol(m, h);

  KProgram *p = t.p = kprog_new(m);
  Type tx = type_make(DT_F32, 1, (int64_t[]){784}, true), ty = type_make(DT_I32, 0, NULL, true);
  Type tw = type_make(DT_F32, 2, (int64_t[]){784, 64}, false);
  Type th = type_make(DT_F32, 1, (int64_t[]){64}, true), tb = type_make(DT_F32, 1, (int64_t[]){64}, false);
  Type tl = type_make(DT_F32, 0, NULL, true), ts = type_make(DT_F32, 1, (int64_t[]){6}, false);
  int32_t bx = p->input = kprog_add_buffer(p, buffer(KB_INPUT, "x", &tx, sx, -1));
  int32_t by = p->label = kprog_add_buffer(p, buffer(KB_LABEL, "y", &ty, sy, -1));
  int32_t bw = kprog_add_buffer(p, buffer(KB_PARAM, "h.w", &tw, sw, -1));
  int32_t bm = kprog_add_buffer(p, buffer(KB_STATE, "h.w/m", &tw, sm, -1));
  int32_t bh = kprog_add_buffer(p, buffer(KB_TEMP, "t4", &th, 0, 0));
  int32_t bc = kprog_add_buffer(p, buffer(KB_TEMP, "t5", &tb, 0, 1));
  int32_t bl = p->loss = kprog_add_buffer(p, buffer(KB_LOSS, "loss", &tl, 0, -1));
  int32_t bs = p->scalars = kprog_add_buffer(p, buffer(KB_SCALARS, "scalars", &ts, 0, -1));
  p->nslots = 2;

  /* k0: h = x @ w, reducing over 784 into a temporary */
  Kernel *k = kprog_add_kernel(p, "matmul");
  t.k0 = p->nkernels - 1;
  k->what = "matmul";
  k->loc = inner;
  kernel_use_buffer(p, k, bx);
  kernel_use_buffer(p, k, bw);
  kernel_use_buffer(p, k, bh);
  int32_t v0 = kernel_new_var(k), v1 = kernel_new_var(k), v2 = kernel_new_var(k);
  int32_t t0 = kernel_new_temp(p, k, DT_F32);
  t.mm_outer = kstmt_loop(p, v0, 1, true, KL_PARALLEL);
  t.mm_mid = kstmt_loop(p, v1, 64, false, 0);
  t.mm_mid->sched.vector = 8;
  t.mm_let = kstmt_let(p, t0, f32c(p, 0));
  t.mm_red = kstmt_loop(p, v2, 784, false, KL_REDUCE);
  t.mm_red->sched.unroll = 4;
  t.mm_x = kexpr_load(p, bx, IDX(kexpr_var(p, v0), kexpr_var(p, v2)));
  t.mm_w = kexpr_load(p, bw, IDX(kexpr_var(p, v2), kexpr_var(p, v1)));
  t.mm_acc = kstmt_assign(p, t0, op2(p, OP_ADD, kexpr_temp(p, t0, DT_F32), op2(p, OP_MUL, t.mm_x, t.mm_w)));
  t.mm_store = kstmt_store(p, bh, IDX(kexpr_var(p, v0), kexpr_var(p, v1)), kexpr_temp(p, t0, DT_F32));
  append(t.mm_red, t.mm_acc);
  append(t.mm_mid, t.mm_let);
  append(t.mm_mid, t.mm_red);
  append(t.mm_mid, t.mm_store);
  append(t.mm_outer, t.mm_mid);
  append_top(k, t.mm_outer);

  /* k1: a loss with most expression forms */
  k = kprog_add_kernel(p, "loss");
  t.k1 = p->nkernels - 1;
  k->what = "exp + max + where";
  k->loc = lloss;
  kernel_use_buffer(p, k, bh);
  kernel_use_buffer(p, k, by);
  kernel_use_buffer(p, k, bl);
  kernel_use_buffer(p, k, bs);
  v0 = kernel_new_var(k), v1 = kernel_new_var(k);
  t0 = kernel_new_temp(p, k, DT_F32);
  KStmt *lo = kstmt_loop(p, v0, 1, true, KL_PARALLEL);
  KStmt *lr = kstmt_loop(p, v1, 64, false, KL_REDUCE);
  KExpr *h4 = kexpr_load(p, bh, IDX(kexpr_var(p, v0), kexpr_var(p, v1)));
  KExpr *tt = kexpr_temp(p, t0, DT_F32);
  append(lr, kstmt_assign(p, t0, op2(p, OP_MAX, tt, op2(p, OP_MUL, op1(p, OP_EXP, op2(p, OP_SUB, h4, f32c(p, 1.5))),
                                                        op2(p, OP_ADD, tt, f32c(p, 2))))));
  append(lo, kstmt_let(p, t0, f32c(p, -1)));
  append(lo, lr);
  KExpr *ylab = kexpr_op(p, OP_CAST, DT_F32, kexpr_load(p, by, IDX(kexpr_var(p, v0))), NULL, NULL);
  t.loss_cmp = cmp(p, OP_GT, ylab, f32c(p, 0));
  t.loss_log = op1(p, OP_NEG, op1(p, OP_LOG, tt));
  KExpr *other = op1(p, OP_NEG, op2(p, OP_SUB, tt, f32c(p, 1e-8)));
  t.loss_where = kexpr_op(p, OP_WHERE, DT_F32, t.loss_cmp, t.loss_log, other);
  t.loss_batch = kexpr_scalar(p, KSCALAR_BATCH);
  t.loss_store = kstmt_store(p, bl, IDX(kexpr_var(p, v0)), op2(p, OP_DIV, t.loss_where, t.loss_batch));
  append(lo, t.loss_store);
  append_top(k, lo);

  /* k2: a fixed-size temp: the mean of h over the batch */
  k = kprog_add_kernel(p, "batch_sum");
  t.k2 = p->nkernels - 1;
  k->what = "batch_sum";
  kernel_use_buffer(p, k, bh);
  kernel_use_buffer(p, k, bc);
  v0 = kernel_new_var(k), v1 = kernel_new_var(k);
  t0 = kernel_new_temp(p, k, DT_F32);
  KStmt *co = kstmt_loop(p, v0, 64, false, KL_PARALLEL);
  KStmt *cr = kstmt_loop(p, v1, 1, true, KL_REDUCE);
  append(cr, kstmt_assign(p, t0, op2(p, OP_ADD, kexpr_temp(p, t0, DT_F32),
                                     kexpr_load(p, bh, IDX(kexpr_var(p, v1), kexpr_var(p, v0))))));
  append(co, kstmt_let(p, t0, f32c(p, 0)));
  append(co, cr);
  append(co, kstmt_store(p, bc, IDX(kexpr_var(p, v0)),
                         op2(p, OP_DIV, kexpr_temp(p, t0, DT_F32),
                             kexpr_op(p, OP_CAST, DT_F32, kexpr_batch(p), NULL, NULL))));
  append_top(k, co);

  /* k3: momentum SGD, in place */
  k = kprog_add_kernel(p, "sgd");
  t.k3 = p->nkernels - 1;
  k->what = "sgd";
  kernel_use_buffer(p, k, bm);
  kernel_use_buffer(p, k, bc);
  kernel_use_buffer(p, k, bw);
  kernel_use_buffer(p, k, bs);
  v0 = kernel_new_var(k), v1 = kernel_new_var(k);
  KStmt *so = kstmt_loop(p, v0, 784, false, KL_PARALLEL);
  so->sched.tile = 32;
  KStmt *si = kstmt_loop(p, v1, 64, false, 0);
  si->sched.vector = 4;
#define AT(b) kexpr_load(p, (b), IDX(kexpr_var(p, v0), kexpr_var(p, v1)))
  append(si, kstmt_store(p, bm, IDX(kexpr_var(p, v0), kexpr_var(p, v1)),
                         op2(p, OP_ADD, op2(p, OP_MUL, kexpr_scalar(p, KSCALAR_HYPER0 + 1), AT(bm)),
                             kexpr_load(p, bc, IDX(kexpr_var(p, v1))))));
  t.sgd_lr = kexpr_scalar(p, KSCALAR_HYPER0);
  t.sgd_w = kstmt_store(p, bw, IDX(kexpr_var(p, v0), kexpr_var(p, v1)),
                        op2(p, OP_SUB, AT(bw),
                            op2(p, OP_DIV, op2(p, OP_MUL, t.sgd_lr, AT(bm)),
                                op1(p, OP_SQRT, kexpr_scalar(p, KSCALAR_STEP)))));
#undef AT
  append(si, t.sgd_w);
  append(so, si);
  append_top(k, so);

  /* k4: a flat batched loop with divided indices, and a guarded load */
  k = kprog_add_kernel(p, "shift");
  t.k4 = p->nkernels - 1;
  kernel_use_buffer(p, k, bh);
  v0 = kernel_new_var(k);
  KStmt *fo = kstmt_loop(p, v0, 64, true, KL_PARALLEL);
  KExpr *row = iop(p, OP_DIV, kexpr_var(p, v0), kexpr_index_const(p, 64));
  KExpr *col = iop(p, OP_SUB, kexpr_var(p, v0), kexpr_imul(p, row, 64));
  KExpr *g = kexpr_load(p, bh, IDX(row, kexpr_iadd(p, col, kexpr_index_const(p, 1))));
  g->guarded = true;
  append(fo, kstmt_store(p, bh, IDX(row, col), g));
  append_top(k, fo);

  uint32_t train[] = {t.k0, t.k1, t.k2, t.k3, t.k4}, eval[] = {t.k0, t.k1};
  for (size_t i = 0; i < sizeof train / sizeof *train; i++) VEC_PUSH(p->train, p->ntrain, p->captrain, train[i]);
  for (size_t i = 0; i < sizeof eval / sizeof *eval; i++) VEC_PUSH(p->eval, p->neval, p->capeval, eval[i]);
  return t;
}

static void drop(T *t) {
  kprog_free(t->p);
  ir_module_free(t->m);
}

/* ---- printing ------------------------------------------------------------------------------ */

static const char golden[] =
    "; kernel IR for @mnist\n"
    "module @mnist\n"
    "\n"
    "input @x : f32[B,784]\n"
    "label @y : i32[B]\n"
    "param @h.w : f32[784,64]\n"
    "state @h.w/m : f32[784,64] for @h.w\n"
    "hyper @lr = 0.1\n"
    "hyper @beta = 0.9\n"
    "\n"
    "buffer %0 input  @x        : f32[B,784]\n"
    "buffer %1 label  @y        : i32[B]\n"
    "buffer %2 param  @h.w      : f32[784,64]\n"
    "buffer %3 state  @h.w/m    : f32[784,64]\n"
    "buffer %4 temp   t4        : f32[B,64]   slot 0\n"
    "buffer %5 temp   t5        : f32[64]     slot 1\n"
    "buffer %6 loss   loss      : f32[B]\n"
    "buffer %7 scalars scalars   : f32[6]\n"
    "; slots: 2 (1 batched, 1 fixed)\n"
    "\n"
    "kernel k0_matmul(%0, %2, %4) ; matmul   loc(\"stdlib/nn.nn\":33:12 at \"examples/mnist.nn\":5:17)\n"
    "  for v0 in 0..B parallel {\n"
    "    for v1 in 0..64 vector=8 {\n"
    "      let t0 = 0.0\n"
    "      for v2 in 0..784 reduce unroll=4 {\n"
    "        t0 = t0 + %0[v0, v2] * %2[v2, v1]\n"
    "      }\n"
    "      %4[v0, v1] = t0\n"
    "    }\n"
    "  }\n"
    "\n"
    "kernel k1_loss(%4, %1, %6, %7) ; exp + max + where   loc(\"examples/mnist.nn\":9:3)\n"
    "  for v0 in 0..B parallel {\n"
    "    let t0 = -1.0\n"
    "    for v1 in 0..64 reduce {\n"
    "      t0 = max(t0, exp(%4[v0, v1] - 1.5) * (t0 + 2.0))\n"
    "    }\n"
    "    %6[v0] = where(cast<f32>(%1[v0]) > 0.0, -log(t0), -(t0 - 1e-8)) / $batch\n"
    "  }\n"
    "\n"
    "kernel k2_batch_sum(%4, %5) ; batch_sum\n"
    "  for v0 in 0..64 parallel {\n"
    "    let t0 = 0.0\n"
    "    for v1 in 0..B reduce {\n"
    "      t0 = t0 + %4[v1, v0]\n"
    "    }\n"
    "    %5[v0] = t0 / cast<f32>(B)\n"
    "  }\n"
    "\n"
    "kernel k3_sgd(%3, %5, %2, %7) ; sgd\n"
    "  for v0 in 0..784 parallel tile=32 {\n"
    "    for v1 in 0..64 vector=4 {\n"
    "      %3[v0, v1] = $hyper.beta * %3[v0, v1] + %5[v1]\n"
    "      %2[v0, v1] = %2[v0, v1] - $hyper.lr * %3[v0, v1] / sqrt($step)\n"
    "    }\n"
    "  }\n"
    "\n"
    "kernel k4_shift(%4)\n"
    "  for v0 in 0..B*64 parallel {\n"
    "    %4[v0 / 64, v0 - v0 / 64 * 64] = %4?[v0 / 64, v0 - v0 / 64 * 64 + 1]\n"
    "  }\n"
    "\n"
    "train: k0_matmul k1_loss k2_batch_sum k3_sgd k4_shift\n"
    "eval: k0_matmul k1_loss\n";

static void check_text(const char *got, const char *want, const char *label) {
  if (strcmp(got, want) == 0) return;
  const char *a = got, *b = want;
  int line = 1;
  while (*a && *a == *b) line += *a++ == '\n', b++;
  CHECK(false, "%s differs at line %d:\n  got:  %.100s\n  want: %.100s\n--- full output ---\n%s", label, line, a, b,
        got);
}

static void test_golden(void) {
  T t = build();
  char *s = print_str(t.p);
  check_text(s, golden, "golden program");
  free(s);
  char err[1024];
  CHECK(verify_captured(t.p, err, sizeof err), "the golden program does not verify:\n%s", err);
  CHECK(err[0] == 0, "the verifier printed for a valid program:\n%s", err);
  drop(&t);
}

/* One expression printed alone (as the value of a store in a scratch
 * kernel); returns the text after "= ". */
static char *expr_str(KProgram *p, KExpr *e) {
  static char line[512];
  Kernel *k = kprog_add_kernel(p, "e");
  KStmt *l = kstmt_loop(p, kernel_new_var(k), 1, false, 0);
  append(l, kstmt_store(p, 0, NULL, 0, e));
  append_top(k, l);
  char *s = print_str(p);
  const char *at = strstr(s, "  %0[] = ");
  size_t n = at ? strcspn(at + 9, "\n") : 0;
  if (n >= sizeof line) n = sizeof line - 1;
  if (at) memcpy(line, at + 9, n);
  line[n] = 0;
  free(s);
  kernel_free_body(&p->kernels[0]);
  p->nkernels = 0;
  return line;
}

static void test_expressions(void) {
  Module *m = ir_module_new();
  ir_add_symbol(m, sym(SYM_HYPER, "eps", DT_F32, false, 0, 0, 0));
  KProgram *p = kprog_new(m);
  Type sc = type_scalar(DT_F32);
  kprog_add_buffer(p, buffer(KB_TEMP, "s", &sc, 0, -1));
  KExpr *a = kexpr_temp(p, 0, DT_F32), *b = kexpr_temp(p, 1, DT_F32), *c = kexpr_temp(p, 2, DT_F32);
  struct {
    KExpr *e;
    const char *want;
  } cases[] = {
      {op2(p, OP_ADD, a, op2(p, OP_MUL, b, c)), "t0 + t1 * t2"},
      {op2(p, OP_MUL, op2(p, OP_ADD, a, b), c), "(t0 + t1) * t2"},
      {op2(p, OP_SUB, op2(p, OP_SUB, a, b), c), "t0 - t1 - t2"},
      {op2(p, OP_SUB, a, op2(p, OP_SUB, b, c)), "t0 - (t1 - t2)"},
      {op2(p, OP_ADD, a, op2(p, OP_ADD, b, c)), "t0 + (t1 + t2)"},
      {op2(p, OP_DIV, a, op2(p, OP_MUL, b, c)), "t0 / (t1 * t2)"},
      {op2(p, OP_MUL, a, f32c(p, -1)), "t0 * -1.0"},
      {op2(p, OP_SUB, a, f32c(p, -0.25)), "t0 - -0.25"},
      {op1(p, OP_NEG, f32c(p, -2)), "-(-2.0)"},
      {op1(p, OP_NEG, op1(p, OP_NEG, a)), "-(-t0)"},
      {op2(p, OP_MUL, op1(p, OP_NEG, a), b), "-t0 * t1"},
      {op1(p, OP_NEG, op2(p, OP_MUL, a, b)), "-(t0 * t1)"},
      {cmp(p, OP_LE, op2(p, OP_ADD, a, b), c), "t0 + t1 <= t2"},
      {cmp(p, OP_EQ, cmp(p, OP_LT, a, b), c), "(t0 < t1) == t2"},
      {cmp(p, OP_NE, a, b), "t0 != t1"},
      {cmp(p, OP_GE, a, b), "t0 >= t1"},
      {op2(p, OP_POW, a, f32c(p, 0.5)), "pow(t0, 0.5)"},
      {op2(p, OP_MIN, a, b), "min(t0, t1)"},
      {op1(p, OP_TANH, op1(p, OP_ABS, op1(p, OP_SIGN, a))), "tanh(abs(sign(t0)))"},
      {op1(p, OP_STOP_GRAD, a), "stop_gradient(t0)"},
      {kexpr_op(p, OP_CAST, DT_I32, a, NULL, NULL), "cast<i32>(t0)"},
      {kexpr_const(p, DT_I32, 7), "7"},
      {f32c(p, 784), "784.0"},
      {f32c(p, 0.1), "0.1"},
      {f32c(p, 1e20), "1e20"},
      {f32c(p, -INFINITY), "-inf"},
      {kexpr_scalar(p, KSCALAR_STEP), "$step"},
      {kexpr_scalar(p, KSCALAR_HYPER0), "$hyper.eps"},
      {kexpr_scalar(p, KSCALAR_HYPER0 + 1), "$training"},
      {kexpr_scalar(p, KSCALAR_HYPER0 + 2), "$seed"},
      {kexpr_scalar(p, KSCALAR_HYPER0 + 3), "$<bad scalar 5>"},
      {kexpr_op(p, OP_ADD, DT_F32, a, NULL, NULL), "t0 + <null>"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const char *got = expr_str(p, cases[i].e);
    CHECK(strcmp(got, cases[i].want) == 0, "expression %zu: got \"%s\", want \"%s\"", i, got, cases[i].want);
  }
  kprog_free(p);
  ir_module_free(m);
}

/* A program without a module name, with an unplanned temp, a bad plan entry
 * and a bad argument still prints. */
static void test_broken_prints(void) {
  T t = build();
  t.m->name = "";
  t.p->bufs[4].slot = -1;
  t.p->train[0] = 42;
  t.p->kernels[t.k4].args[0] = 99;
  char *s = print_str(t.p);
  CHECK(strncmp(s, "; kernel IR\n", 12) == 0, "header: %.40s", s);
  CHECK(strstr(s, "f32[B,64]   no slot\n") != NULL, "no slot:\n%s", s);
  CHECK(strstr(s, "train: <bad kernel 42> k1_loss") != NULL, "plan:\n%s", s);
  CHECK(strstr(s, "kernel k4_shift(<bad buffer 99>)") != NULL, "args:\n%s", s);
  free(s);
  drop(&t);
}

/* ---- the verifier ---------------------------------------------------------------------- */

/* Asserts that the verifier rejects t (and frees it), that its first line
 * contains want (a broken buffer may break the kernels that use it too) and
 * that every line is an internal error. */
static void expect_broken(T *t, const char *want, int line) {
  char err[2048];
  bool ok = verify_captured(t->p, err, sizeof err);
  char line1[sizeof err];
  snprintf(line1, sizeof line1, "%s", err);
  char *nl = strchr(line1, '\n');
  if (nl) *nl = 0;
  bool good = nl && strstr(line1, want);
  for (const char *l = err; good && *l;) {
    const char *end = strchr(l, '\n');
    good = end && strncmp(l, "nnc: internal error: kernel IR: ", 32) == 0;
    l = end ? end + 1 : l;
  }
  checks++;
  if (ok || !good) {
    check_failed(__FILE__, line, "kprog_verify", ": %s, expected a first line containing \"%s\"; it printed:\n%s",
                 ok ? "accepted" : "rejected", want, err);
  }
  drop(t);
}
#define BROKEN(want) expect_broken(&t, want, __LINE__)

static void test_verifier(void) {
  T t;
  KProgram *p;
  Kernel *k;

  /* loop variables */
  t = build(), p = t.p, k = &p->kernels[t.k0];
  t.mm_x->idx[1] = kexpr_var(p, kernel_new_var(k));
  BROKEN("k0_matmul: use of v3 outside a loop binding it");
  t = build(), p = t.p;
  t.mm_x->idx[1] = kexpr_var(p, 17);
  BROKEN("k0_matmul: use of v17, which does not exist (3 vars)");
  t = build();
  t.mm_red->var = 0;
  BROKEN("k0_matmul: loop rebinds v0 inside a loop over v0");
  t = build(), p = t.p; /* v2 bound by a loop that has ended */
  t.mm_store->idx[1] = kexpr_var(p, 2);
  BROKEN("k0_matmul: use of v2 outside a loop binding it");
  t = build();
  t.mm_x->idx[0]->index = false;
  BROKEN("k0_matmul: load of %0: index 0 is not an index expression");

  /* temporaries */
  t = build();
  t.mm_mid->body[0] = t.mm_red, t.mm_mid->body[1] = t.mm_let; /* accumulate before the let */
  BROKEN("k0_matmul: use of t0 before its let");
  t = build(), p = t.p; /* t0 used after the block that declared it */
  append(t.mm_outer, kstmt_store(p, 4, IDX(kexpr_var(p, 0), kexpr_index_const(p, 0)), kexpr_temp(p, 0, DT_F32)));
  BROKEN("k0_matmul: use of t0 outside the block of its let");
  t = build(), p = t.p;
  t.mm_let->value = kexpr_temp(p, 0, DT_F32);
  BROKEN("k0_matmul: use of t0 before its let");
  t = build(), p = t.p;
  append(t.mm_mid, kstmt_let(p, 0, f32c(p, 1)));
  BROKEN("k0_matmul: let t0 while t0 is already declared");
  t = build(), p = t.p;
  t.mm_acc->value->a = kexpr_temp(p, 0, DT_I32);
  BROKEN("k0_matmul: use of t0 as i32, but it is f32");
  t = build(), p = t.p;
  t.mm_let->value = kexpr_const(p, DT_I32, 0);
  BROKEN("k0_matmul: let t0: value is i32, expected f32");
  t = build(), p = t.p;
  t.mm_acc->temp = 5;
  BROKEN("k0_matmul: assignment to t5, which does not exist (1 temps)");

  /* buffers and arguments */
  t = build();
  t.mm_w->buf = 99;
  BROKEN("k0_matmul: load of buffer %99, which does not exist (8 buffers)");
  t = build();
  t.p->kernels[t.k0].nargs = 2;
  BROKEN("k0_matmul: store of %4, which is not in the kernel's arguments");
  t = build();
  t.p->kernels[t.k0].args[1] = 0;
  BROKEN("k0_matmul: buffer %0 is listed twice in the arguments");
  t = build();
  t.mm_x->nidx = 1;
  BROKEN("k0_matmul: load of %0 has 1 indices, expected 2 (rank 1, batched)");
  t = build();
  t.mm_store->nidx = 3, t.mm_store->idx[2] = t.mm_store->idx[1];
  BROKEN("k0_matmul: store of %4 has 3 indices, expected 2 (rank 1, batched)");
  t = build();
  t.sgd_w->nidx = 1;
  BROKEN("k3_sgd: store of %2 has 1 indices, expected 2 (rank 2)");
  t = build(), p = t.p;
  t.mm_store->value = kexpr_const(p, DT_I32, 0);
  BROKEN("k0_matmul: store into %4: value is i32, expected f32");
  t = build(), p = t.p;
  t.mm_store->buf = 0;
  BROKEN("k0_matmul: store into %0, an input buffer the runtime fills");
  t = build();
  t.mm_x->dtype = DT_I32;
  BROKEN("k0_matmul: load of %0 is i32, expected f32 (the buffer's dtype)");

  /* ops */
  t = build();
  t.loss_log->a->op = OP_MATMUL;
  BROKEN("k1_loss: op matmul is not elementwise");
  t = build();
  t.loss_log->a->op = OP_REDUCE_SUM;
  BROKEN("k1_loss: op reduce_sum is not elementwise");
  t = build();
  t.loss_cmp->b = NULL;
  BROKEN("k1_loss: gt needs 2 operands, operand 1 is missing");
  t = build();
  t.loss_log->b = t.loss_log->a;
  BROKEN("k1_loss: neg takes 1 operands, found an operand 1");
  t = build(), p = t.p;
  t.loss_cmp->b = kexpr_const(p, DT_I32, 0);
  BROKEN("k1_loss: gt compares f32 with i32");
  t = build();
  t.loss_cmp->dtype = DT_I32;
  BROKEN("k1_loss: comparison gt gives i32, expected f32");
  t = build(), p = t.p;
  t.loss_where->a = kexpr_op(p, OP_CAST, DT_I32, t.loss_cmp, NULL, NULL);
  BROKEN("k1_loss: where has an i32 condition, expected f32");
  t = build();
  t.loss_where->dtype = DT_I32;
  BROKEN("k1_loss: where gives i32 but operand 1 is f32");
  t = build(), p = t.p;
  t.loss_log->a->a = kexpr_const(p, DT_I32, 1);
  BROKEN("k1_loss: log gives f32 but operand 0 is i32");
  t = build();
  t.loss_log->a->dtype = DT_I32;
  BROKEN("k1_loss: log gives i32, expected f32");
  t = build(), p = t.p;
  t.loss_cmp->a->a = kexpr_const(p, DT_I32, 0.5); /* cast<f32>(0.5 as i32) */
  BROKEN("k1_loss: i32 constant 0.5 is not an integer");
  t = build(), p = t.p;
  t.mm_x->idx[1] = kexpr_const(p, DT_F32, 0);
  t.mm_x->idx[1]->index = true;
  BROKEN("k0_matmul: index expression of dtype f32, expected i32");
  t = build();
  t.loss_batch->dtype = DT_I32;
  BROKEN("k1_loss: scalar 1 read as i32, expected f32");

  /* run-time scalars */
  t = build();
  t.sgd_lr->scalar = 6;
  BROKEN("k3_sgd: scalar 6 does not exist (step, batch, 2 hypers, training and seed)");
  t = build();
  t.p->kernels[t.k3].nargs = 3;
  BROKEN("k3_sgd: reads scalar 3, but the scalars buffer is not in its arguments");

  /* loops and kernel shape */
  t = build(), p = t.p;
  t.p->kernels[t.k0].body[0] = kstmt_let(p, 0, f32c(p, 0));
  BROKEN("k0_matmul: outermost statement 0 is not a loop");
  t = build();
  t.p->kernels[t.k2].nbody = 0;
  BROKEN("k2_batch_sum: empty kernel");
  t = build();
  t.mm_red->flags |= KL_PARALLEL;
  BROKEN("k0_matmul: loop over v2 is both parallel and reduce");
  t = build();
  t.mm_red->extent = 0;
  BROKEN("k0_matmul: loop over v2 has extent 0, expected at least 1");
  t = build();
  t.mm_red->sched.unroll = -2;
  BROKEN("k0_matmul: loop over v2 has a negative schedule attribute");
  t = build();
  t.p->kernels[t.k1].loc = 999;
  BROKEN("k1_loss: location 999 is out of range");

  /* buffers, the memory plan, the program's buffers and the plans */
  t = build();
  t.p->bufs[5].slot = -1;
  BROKEN("buffer %5 t5: temp without a memory slot");
  t = build();
  t.p->bufs[4].slot = 2;
  BROKEN("buffer %4 t4: slot 2 is out of range (2 slots)");
  t = build();
  t.p->bufs[2].type.batched = true;
  BROKEN("buffer %2 h.w: param buffer is batched");
  t = build();
  t.p->bufs[0].sym = 40;
  BROKEN("buffer %0 x: symbol 40 is out of range");
  t = build();
  t.p->bufs[6].type.batched = false;
  BROKEN("buffer %6 loss: loss buffer is not f32[B]");
  t = build();
  t.p->bufs[7].type.dims[0] = 5;
  BROKEN("buffer %7 scalars: scalars buffer is not f32[N] with N >= 6");
  t = build();
  t.p->loss = 5;
  BROKEN("program: loss buffer %5 is a temp buffer");
  t = build();
  t.p->scalars = 8;
  BROKEN("program: scalars buffer %8 does not exist");
  t = build();
  t.p->train[2] = 5;
  BROKEN("train plan: entry 2 is kernel 5, which does not exist (5 kernels)");
  t = build();
  t.p->eval[0] = 77;
  BROKEN("eval plan: entry 0 is kernel 77, which does not exist (5 kernels)");

  /* one line per broken kernel, each kernel's first problem only */
  t = build(), p = t.p;
  t.mm_x->buf = 99;
  t.mm_w->buf = 98;
  t.sgd_lr->scalar = 9;
  char err[2048];
  CHECK(!verify_captured(p, err, sizeof err), "two broken kernels accepted");
  static const char want[] =
      "nnc: internal error: kernel IR: k0_matmul: load of buffer %99, which does not exist (8 buffers)\n"
      "nnc: internal error: kernel IR: k3_sgd: scalar 9 does not exist (step, batch, 2 hypers, training and seed)\n";
  CHECK(strcmp(err, want) == 0, "two broken kernels:\n%s", err);
  drop(&t);
}

/* ---- contractions ------------------------------------------------------------------------ */

/* k0's matmul as one contraction statement instead of its loops. */
static KStmt *as_contract(T *t) {
  KProgram *p = t->p;
  Kernel *k = &p->kernels[t->k0];
  KAxis axes[2] = {{t->mm_mid->var, 64, false}, {t->mm_red->var, 784, false}};
  KStmt *c = kstmt_contract(p, t->mm_store->buf, t->mm_store->idx, t->mm_store->nidx, axes, 1, 1, OP_ADD,
                            t->mm_let->temp, t->mm_x, t->mm_w, kexpr_temp(p, t->mm_let->temp, DT_F32));
  free(t->mm_red->body); /* the loops it replaces (their statements live in the arena) */
  free(t->mm_mid->body);
  t->mm_outer->body[0] = c;
  (void)k;
  return c;
}

static bool contains(const char *text, const char *want, int line) {
  checks++;
  if (strstr(text, want)) return true;
  check_failed(__FILE__, line, "contains", ": expected \"%s\" in:\n%s", want, text);
  return false;
}

static void test_contractions(void) {
  /* prints as one line, verifies */
  T t = build();
  KStmt *c = as_contract(&t);
  char err[2048];
  bool ok = verify_captured(t.p, err, sizeof err);
  CHECK(ok, "a contraction does not verify: %s", err);
  char *text = print_str(t.p);
  contains(text, "    contract %4[v0, v1] = t0 for v1 in 0..64 with t0 = sum v2 in 0..784 of %0[v0, v2] * %2[v2, v1]\n",
           __LINE__);
  free(text);
  /* a factor that is a sum is parenthesized; a max without a store */
  c->a = op2(t.p, OP_ADD, t.mm_x, f32c(t.p, 1));
  c->combine = OP_MAX;
  c->sched.rows = true;
  text = print_str(t.p);
  contains(text, "contract rows %4[v0, v1] = t0 for v1 in 0..64 with t0 = max v2 in 0..784 of (%0[v0, v2] + 1.0) * %2[v2, v1]",
           __LINE__);
  free(text);

  /* the verifier's rules */
  drop(&t);
  t = build(), c = as_contract(&t);
  c->value = kexpr_load(t.p, t.mm_x->buf, IDX(kexpr_var(t.p, 0), kexpr_var(t.p, c->axes[1].var)));
  BROKEN("k0_matmul: use of v2 outside a loop binding it"); /* a reduction variable in the value */
  t = build(), c = as_contract(&t);
  c->a = kexpr_temp(t.p, c->temp, DT_F32);
  BROKEN("k0_matmul: use of t0 before its let"); /* the temporary in a factor */
  t = build(), c = as_contract(&t);
  c->combine = OP_MUL;
  BROKEN("k0_matmul: contraction combines by mul, expected add, max or min");
  t = build(), c = as_contract(&t);
  c->nred = 0;
  BROKEN("k0_matmul: contraction with 1 free and 0 reduction axes");
  t = build(), c = as_contract(&t);
  c->buf = -1;
  BROKEN("k0_matmul: contraction without a store has free axes, indices or a value");
  t = build(), c = as_contract(&t);
  c->axes[1].var = c->axes[0].var;
  BROKEN("k0_matmul: contraction rebinds v1");
  t = build(), c = as_contract(&t); /* with no free axes the temporary lives on, like a let */
  c->nfree = 0, c->axes[0] = c->axes[1], c->nidx = 2, c->idx[1] = kexpr_index_const(t.p, 0);
  c->b = kexpr_load(t.p, 2, IDX(kexpr_var(t.p, c->axes[0].var), kexpr_index_const(t.p, 0)));
  append(t.mm_outer, kstmt_store(t.p, 4, IDX(kexpr_var(t.p, 0), kexpr_index_const(t.p, 1)), kexpr_temp(t.p, 0, DT_F32)));
  ok = verify_captured(t.p, err, sizeof err);
  CHECK(ok, "t0 after a contraction without free axes: %s", err);

  /* expanded: one reduction per output, or rows accumulating in C */
  drop(&t);
  t = build(), c = as_contract(&t);
  kernel_expand_contractions(t.p, &t.p->kernels[t.k0], NULL, NULL);
  text = print_str(t.p);
  contains(text, "    for v1 in 0..64 {\n      let t0 = 0.0\n      for v2 in 0..784 reduce {\n"
                 "        t0 = t0 + %0[v0, v2] * %2[v2, v1]\n      }\n      %4[v0, v1] = t0\n    }\n", __LINE__);
  free(text);
  drop(&t);
  t = build(), c = as_contract(&t);
  c->sched.rows = true;
  c->value = op2(t.p, OP_MUL, kexpr_temp(t.p, c->temp, DT_F32), f32c(t.p, 2));
  kernel_expand_contractions(t.p, &t.p->kernels[t.k0], NULL, NULL);
  text = print_str(t.p);
  contains(text, "    for v1 in 0..64 {\n      %4[v0, v1] = 0.0\n    }\n    for v2 in 0..784 reduce {\n"
                 "      for v1 in 0..64 {\n        %4[v0, v1] = %4[v0, v1] + %0[v0, v2] * %2[v2, v1]\n      }\n    }\n"
                 "    for v1 in 0..64 {\n      %4[v0, v1] = %4[v0, v1] * 2.0\n    }\n", __LINE__);
  free(text);
  ok = verify_captured(t.p, err, sizeof err);
  CHECK(ok, "rows expansion does not verify: %s", err);
  drop(&t);
}

int main(void) {
  test_golden();
  test_expressions();
  test_broken_prints();
  test_verifier();
  test_contractions();
  return check_done();
}
