/* test/unit/test_simplify.c - the simplification passes: fold, algebra,
 * stable-lse, cse and dce (passes/fold.c, algebra.c, stable_lse.c, cse.c,
 * dce.c, through passes/rewrite.c).
 *
 * Each test builds a small module with the builder, runs one pass and
 * checks the resulting graph (ops, operands, constant values, counters from
 * --stats) and that the verifier accepts it.  A differential test runs all
 * passes over random scalar graphs and compares the outputs, evaluated
 * before and after, with a tiny evaluator.  The last test shows cse and dce
 * are linear: a 1,000,000-node graph must take well under 2 s.  Exits
 * non-zero on failure.
 */
#include "support/diag.h"
#include "ir/ir.h"
#include "passes/pass.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

/* ---- building modules ---------------------------------------------------------- */

static Module *new_module(void) {
  Module *m = ir_module_new();
  m->name = "t";
  return m;
}

static Type ty(DType dt, bool batched, int rank, int64_t d0, int64_t d1) {
  int64_t dims[2] = {d0, d1};
  return type_make(dt, rank, dims, batched);
}

static uint32_t add_sym(Module *m, SymKind kind, const char *name, Type t) {
  Symbol s;
  memset(&s, 0, sizeof s);
  s.kind = kind;
  s.name = name;
  s.type = t;
  if (kind == SYM_PARAM) s.init.kind = INIT_ZEROS;
  return ir_add_symbol(m, s);
}

static ValueId input(Module *m, const char *name, Type t) {
  return ir_leaf(m, OP_INPUT, add_sym(m, SYM_INPUT, name, t), 0);
}

static ValueId param(Module *m, const char *name, Type t) {
  return ir_leaf(m, OP_PARAM, add_sym(m, SYM_PARAM, name, t), 0);
}

/* Makes v an output: an f32[B] value a metric, anything unbatched the
 * update of a fresh parameter of its type.  Returns the output's index. */
static uint32_t keep(Module *m, ValueId v) {
  char name[32];
  snprintf(name, sizeof name, "o%u", m->noutputs);
  const Type *t = &m->nodes[v].type;
  if (t->batched) {
    NNC_ASSERT(t->dtype == DT_F32 && t->rank == 0);
    ir_add_output(m, OUT_METRIC, name, 0, v);
  } else {
    uint32_t s = add_sym(m, SYM_PARAM, name, *t);
    ir_add_output(m, OUT_UPDATE, name, s, v);
  }
  return m->noutputs - 1;
}

static const Node *out_node(const Module *m, uint32_t k) { return &m->nodes[m->outputs[k].value]; }
static const Node *arg(const Module *m, const Node *n, int i) { return &m->nodes[n->args[i]]; }

static Type f32s(void) { return type_scalar(DT_F32); }

static bool verify(const Module *m, const char *what) { return ir_verify(m, what); }

/* Runs a pass and returns how much the counter moved. */
static long run(bool (*pass)(Module *), Module *m, const char *p, const char *counter) {
  long before = nnc_stat_get(p, counter);
  CHECK(pass(m), "%s failed", p);
  CHECK(verify(m, p), "%s left invalid IR", p);
  return nnc_stat_get(p, counter) - before;
}

static long count_op(const Module *m, Op op) {
  long n = 0;
  for (uint32_t i = 0; i < m->nnodes; i++) n += m->nodes[i].op == op;
  return n;
}

/* ---- fold ------------------------------------------------------------------------- */

/* The constant output k folded to, or NAN if it is not a constant. */
static double folded(const Module *m, uint32_t k) {
  const Node *n = out_node(m, k);
  return n->op == OP_CONST ? n->attr.value : NAN;
}

static void test_fold(void) {
  Module *m = new_module();
  ValueId two = ir_const(m, DT_F32, 2, 0), three = ir_const(m, DT_F32, 3, 0), one = ir_const(m, DT_F32, 1, 0);
  ValueId i7 = ir_const(m, DT_I32, 7, 0), im2 = ir_const(m, DT_I32, -2, 0), i0 = ir_const(m, DT_I32, 0, 0);
  ValueId imax = ir_const(m, DT_I32, INT32_MAX, 0), i1 = ir_const(m, DT_I32, 1, 0);
  ValueId nan = ir_const(m, DT_F32, NAN, 0), f27 = ir_const(m, DT_F32, -2.7, 0);
  uint32_t o_add = keep(m, ir_op2(m, OP_ADD, two, three, 0));
  uint32_t o_div = keep(m, ir_op2(m, OP_DIV, one, three, 0));
  ValueId six = ir_op2(m, OP_MUL, two, three, 0), five = ir_op2(m, OP_ADD, two, three, 0);
  uint32_t o_chain = keep(m, ir_op1(m, OP_EXP, ir_op2(m, OP_SUB, six, five, 0), 0));
  uint32_t o_idiv = keep(m, ir_op2(m, OP_DIV, i7, im2, 0));
  uint32_t o_wrap = keep(m, ir_op2(m, OP_ADD, imax, i1, 0));
  uint32_t o_div0 = keep(m, ir_op2(m, OP_DIV, i7, i0, 0));
  uint32_t o_cmp = keep(m, ir_op2(m, OP_LT, im2, i7, 0));
  uint32_t o_cast = keep(m, ir_retype(m, OP_CAST, f27, type_scalar(DT_I32), 0));
  uint32_t o_icast = keep(m, ir_retype(m, OP_CAST, i7, f32s(), 0));
  uint32_t o_max = keep(m, ir_op2(m, OP_MAX, nan, one, 0));
  uint32_t o_where = keep(m, ir_op3(m, OP_WHERE, ir_op2(m, OP_GE, two, three, 0), two, three, 0));
  uint32_t o_pow = keep(m, ir_op2(m, OP_POW, two, ir_op1(m, OP_NEG, three, 0), 0));
  uint32_t o_log = keep(m, ir_op1(m, OP_LOG, ir_op1(m, OP_STOP_GRAD, ir_const(m, DT_F32, 0, 0), 0), 0));
  /* a broadcast of a constant stays a broadcast, and so does what uses it */
  ValueId x = input(m, "x", ty(DT_F32, true, 1, 4, 0));
  ValueId bc = ir_retype(m, OP_BROADCAST, ir_op2(m, OP_ADD, one, one, 0), ty(DT_F32, false, 1, 4, 0), 0);
  uint32_t o_bc = keep(m, ir_reduce(m, OP_REDUCE_SUM, ir_op2(m, OP_MUL, x, ir_op1(m, OP_EXP, bc, 0), 0), 1, 0));
  CHECK(verify(m, "build"), "bad test module");

  long n = run(pass_fold, m, "fold", "folded");
  CHECK(folded(m, o_add) == 5, "2+3 gave %g", folded(m, o_add));
  CHECK(folded(m, o_div) == (double)(1.0f / 3.0f), "1/3 gave %.17g, not rounded to f32", folded(m, o_div));
  CHECK(folded(m, o_chain) == (double)(float)exp(1.0), "exp(2*3-(2+3)) gave %.17g", folded(m, o_chain));
  CHECK(folded(m, o_idiv) == -3, "7/-2 gave %g (i32 divides toward zero)", folded(m, o_idiv));
  CHECK(folded(m, o_wrap) == INT32_MIN, "INT32_MAX+1 gave %g (i32 wraps)", folded(m, o_wrap));
  CHECK(out_node(m, o_div0)->op == OP_DIV, "i32 division by zero was folded");
  CHECK(folded(m, o_cmp) == 1 && out_node(m, o_cmp)->type.dtype == DT_F32, "-2<7 gave %g", folded(m, o_cmp));
  CHECK(folded(m, o_cast) == -2 && out_node(m, o_cast)->type.dtype == DT_I32, "i32(-2.7) gave %g", folded(m, o_cast));
  CHECK(folded(m, o_icast) == 7 && out_node(m, o_icast)->type.dtype == DT_F32, "f32(7) gave %g", folded(m, o_icast));
  CHECK(out_node(m, o_max)->op == OP_MAX, "max(nan, 1) was folded");
  CHECK(folded(m, o_where) == 3, "where(2>=3, 2, 3) gave %g", folded(m, o_where));
  CHECK(folded(m, o_pow) == 0.125, "2^-3 gave %g", folded(m, o_pow));
  CHECK(isinf(folded(m, o_log)) && folded(m, o_log) < 0, "log(0) gave %g", folded(m, o_log));
  const Node *r = out_node(m, o_bc), *mul = arg(m, r, 0), *e = arg(m, mul, 1), *b = arg(m, e, 0);
  CHECK(r->op == OP_REDUCE_SUM && e->op == OP_EXP && b->op == OP_BROADCAST && arg(m, b, 0)->op == OP_CONST &&
            arg(m, b, 0)->attr.value == 2,
        "broadcast(1+1) should become broadcast(const 2)");
  /* add, div, mul/add/sub/exp, idiv, wrap, lt, 2 casts, ge/where, neg/pow, stop_gradient/log, 1+1 */
  CHECK(n == 18, "fold.folded moved by %ld, expected 18", n);

  /* folding is idempotent */
  CHECK(run(pass_fold, m, "fold", "folded") == 0, "second fold folded more");
  ir_module_free(m);
}

/* ---- algebra ---------------------------------------------------------------------- */

static void test_algebra(void) {
  Module *m = new_module();
  Type bt = ty(DT_F32, true, 1, 4, 0);
  ValueId x = input(m, "x", bt), w = param(m, "w", ty(DT_F32, false, 1, 4, 0));
  ValueId zero = ir_const(m, DT_F32, 0, 0), one = ir_const(m, DT_F32, 1, 0), nzero = ir_const(m, DT_F32, -0.0, 0);
  ValueId v = x;
  v = ir_op2(m, OP_ADD, v, zero, 0);
  v = ir_op2(m, OP_ADD, nzero, v, 0);
  v = ir_op2(m, OP_SUB, v, zero, 0);
  v = ir_op2(m, OP_MUL, v, one, 0);
  v = ir_op2(m, OP_MUL, one, v, 0);
  v = ir_op2(m, OP_DIV, v, one, 0);
  v = ir_op2(m, OP_POW, v, one, 0);
  v = ir_op1(m, OP_NEG, ir_op1(m, OP_NEG, v, 0), 0);
  v = ir_retype(m, OP_RESHAPE, v, bt, 0);
  v = ir_retype(m, OP_BROADCAST, v, bt, 0);
  v = ir_retype(m, OP_CAST, v, bt, 0);
  uint8_t id[NNC_MAX_RANK] = {0, 1, 2, 3, 4, 5};
  v = ir_transpose(m, v, id, 0);
  v = ir_op3(m, OP_WHERE, x, v, v, 0);
  v = ir_op3(m, OP_WHERE, one, v, x, 0);
  uint32_t o_x = keep(m, ir_reduce(m, OP_REDUCE_SUM, v, 1, 0));
  /* not identities: x*0, 0-x, x+1 */
  uint32_t o_mul0 = keep(m, ir_reduce(m, OP_REDUCE_SUM, ir_op2(m, OP_MUL, x, zero, 0), 1, 0));
  uint32_t o_sub0 = keep(m, ir_reduce(m, OP_REDUCE_SUM, ir_op2(m, OP_SUB, zero, x, 0), 1, 0));
  /* w + zeros[B,4]: the result is bigger than w, so w is broadcast */
  ValueId zb = ir_retype(m, OP_BROADCAST, zero, bt, 0);
  uint32_t o_bw = keep(m, ir_reduce(m, OP_REDUCE_SUM, ir_op2(m, OP_ADD, w, zb, 0), 1, 0));
  /* stop_gradient(stop_gradient(w)) -> stop_gradient(w) */
  uint32_t o_sg = keep(m, ir_op1(m, OP_STOP_GRAD, ir_op1(m, OP_STOP_GRAD, w, 0), 0));
  /* transposes compose; reshapes collapse */
  ValueId y = param(m, "y", ty(DT_F32, false, 2, 3, 4));
  uint8_t swap[NNC_MAX_RANK] = {1, 0, 2, 3, 4, 5};
  uint32_t o_tt = keep(m, ir_transpose(m, ir_transpose(m, y, swap, 0), swap, 0));
  uint32_t o_rr = keep(m, ir_retype(m, OP_RESHAPE, ir_retype(m, OP_RESHAPE, y, ty(DT_F32, false, 1, 12, 0), 0),
                                    ty(DT_F32, false, 2, 2, 6), 0));
  CHECK(verify(m, "build"), "bad test module");

  long n = run(pass_algebra, m, "algebra", "simplified");
  const Node *r = out_node(m, o_x);
  CHECK(r->op == OP_REDUCE_SUM && r->args[0] == 0, "x+0, 0+x, ..., where(1, x, y) did not all reduce to x (%%%u: %s)",
        r->args[0], ir_ops[arg(m, r, 0)->op].name);
  CHECK(arg(m, out_node(m, o_mul0), 0)->op == OP_MUL, "x*0 must stay");
  CHECK(arg(m, out_node(m, o_sub0), 0)->op == OP_SUB, "0-x must stay");
  const Node *bw = arg(m, out_node(m, o_bw), 0);
  CHECK(bw->op == OP_BROADCAST && bw->args[0] == w && type_equal(&bw->type, &bt),
        "w+zeros[B,4] should be broadcast(w)");
  const Node *sg = out_node(m, o_sg);
  CHECK(sg->op == OP_STOP_GRAD && sg->args[0] == w, "stop_gradient(stop_gradient(w))");
  CHECK(out_node(m, o_tt)->op == OP_PARAM,
        "transpose(transpose(y)) should be y, found %s", ir_ops[out_node(m, o_tt)->op].name);
  const Node *rr = out_node(m, o_rr);
  CHECK(rr->op == OP_RESHAPE && arg(m, rr, 0)->op == OP_PARAM, "reshape(reshape(y)) should be one reshape");
  /* 7 arithmetic, neg, reshape, broadcast, cast, transpose, 2 where, w+0, sg, tt, rr */
  CHECK(n == 18, "algebra.simplified moved by %ld, expected 18", n);
  ir_module_free(m);
}

/* ---- stable-lse --------------------------------------------------------------------- */

static void test_stable_lse(void) {
  Module *m = new_module();
  ValueId x = input(m, "x", ty(DT_F32, true, 1, 10, 0));
  uint32_t o1 = keep(m, ir_op1(m, OP_LOG, ir_reduce(m, OP_REDUCE_SUM, ir_op1(m, OP_EXP, x, 0), 1, 0), 0));
  /* rank 2, reducing the last axis: m needs a reshape to [3,1] */
  ValueId z = input(m, "z", ty(DT_F32, true, 2, 3, 5));
  ValueId l2 = ir_op1(m, OP_LOG, ir_reduce(m, OP_REDUCE_SUM, ir_op1(m, OP_EXP, z, 0), 2, 0), 0);
  uint32_t o2 = keep(m, ir_reduce(m, OP_REDUCE_SUM, l2, 1, 0));
  /* the stdlib's form is left alone */
  ValueId mx = ir_op1(m, OP_STOP_GRAD, ir_reduce(m, OP_REDUCE_MAX, x, 1, 0), 0);
  ValueId ex = ir_op1(m, OP_EXP, ir_op2(m, OP_SUB, x, mx, 0), 0);
  keep(m, ir_op2(m, OP_ADD, mx, ir_op1(m, OP_LOG, ir_reduce(m, OP_REDUCE_SUM, ex, 1, 0), 0), 0));
  CHECK(verify(m, "build"), "bad test module");

  long n = run(pass_stable_lse, m, "stable_lse", "rewritten");
  CHECK(n == 2, "stable_lse.rewritten moved by %ld, expected 2", n);
  /* %r = add(stop_gradient(reduce_max(x)), log(reduce_sum(exp(sub(x, stop_gradient(...)))))) */
  const Node *r = out_node(m, o1);
  CHECK(r->op == OP_ADD, "expected add, found %s", ir_ops[r->op].name);
  const Node *s = arg(m, r, 0), *l = arg(m, r, 1);
  CHECK(s->op == OP_STOP_GRAD && arg(m, s, 0)->op == OP_REDUCE_MAX && arg(m, s, 0)->args[0] == x &&
            arg(m, s, 0)->attr.axes == 1,
        "expected stop_gradient(reduce_max(x, [0]))");
  const Node *sum = arg(m, l, 0), *e = arg(m, sum, 0), *d = arg(m, e, 0);
  CHECK(l->op == OP_LOG && sum->op == OP_REDUCE_SUM && e->op == OP_EXP && d->op == OP_SUB && d->args[0] == x &&
            d->args[1] == r->args[0],
        "expected log(reduce_sum(exp(x - m)))");
  const Node *r2 = arg(m, out_node(m, o2), 0);
  const Node *d2 = arg(m, arg(m, arg(m, arg(m, r2, 1), 0), 0), 0), *k = arg(m, d2, 1);
  CHECK(r2->op == OP_ADD && d2->op == OP_SUB && k->op == OP_RESHAPE && k->type.rank == 2 && k->type.dims[0] == 3 &&
            k->type.dims[1] == 1,
        "rank 2: expected x - reshape(m) with shape [3,1]");
  /* the pass's own output is stable: a second run changes nothing */
  CHECK(run(pass_stable_lse, m, "stable_lse", "rewritten") == 0, "stable-lse is not idempotent");
  ir_module_free(m);
}

/* ---- cse ---------------------------------------------------------------------------- */

static void test_cse(void) {
  Module *m = new_module();
  Type wt = ty(DT_F32, false, 1, 4, 0);
  uint32_t ws = add_sym(m, SYM_PARAM, "w", wt);
  uint32_t loc1 = ir_loc(m, ir_file(m, "a.nn"), 1, 1, 0), loc2 = ir_loc(m, ir_file(m, "a.nn"), 2, 1, 0);
  ValueId x = input(m, "x", ty(DT_F32, true, 1, 4, 0));
  ValueId w1 = ir_leaf(m, OP_PARAM, ws, loc1), w2 = ir_leaf(m, OP_PARAM, ws, loc2);
  ValueId a1 = ir_op2(m, OP_ADD, x, w1, loc1), a2 = ir_op2(m, OP_ADD, w2, x, loc2); /* commuted */
  ValueId s1 = ir_op2(m, OP_SUB, x, w1, 0), s2 = ir_op2(m, OP_SUB, w2, x, 0);       /* not commutative */
  ValueId c0 = ir_const(m, DT_F32, 0, 0), cn0 = ir_const(m, DT_F32, -0.0, 0), c0b = ir_const(m, DT_F32, 0, 0);
  ValueId r1 = ir_reduce(m, OP_REDUCE_SUM, ir_op2(m, OP_MUL, a1, a2, 0), 1, 0);
  ValueId r2 = ir_reduce(m, OP_REDUCE_MAX, ir_op2(m, OP_MUL, a1, a2, 0), 1, 0); /* other op: stays */
  ValueId r3 = ir_reduce(m, OP_REDUCE_SUM, ir_op2(m, OP_MUL, s1, s2, 0), 1, 0);
  ValueId sum = ir_op2(m, OP_ADD, ir_op2(m, OP_ADD, r1, r2, 0), r3, 0);
  sum = ir_op2(m, OP_ADD, sum, ir_op2(m, OP_ADD, ir_op2(m, OP_ADD, c0, cn0, 0), c0b, 0), 0);
  keep(m, sum);
  CHECK(verify(m, "build"), "bad test module");
  uint32_t before = m->nnodes;

  long n = run(pass_cse, m, "cse", "merged");
  /* w2, a2, the second mul, c0b */
  CHECK(n == 4, "cse.merged moved by %ld, expected 4", n);
  CHECK(m->nnodes == before - 4, "%u nodes left of %u", m->nnodes, before);
  CHECK(count_op(m, OP_PARAM) == 1 && count_op(m, OP_SUB) == 2 && count_op(m, OP_CONST) == 2, "wrong merges");
  CHECK(m->nodes[1].op == OP_PARAM && m->nodes[1].loc == loc1, "the first node's location is kept");
  CHECK(run(pass_cse, m, "cse", "merged") == 0, "second cse merged more");
  ir_module_free(m);
}

/* ---- dce ---------------------------------------------------------------------------- */

static void test_dce(void) {
  Module *m = new_module();
  ValueId x = input(m, "x", ty(DT_F32, true, 1, 4, 0));
  ValueId w = param(m, "w", ty(DT_F32, false, 1, 4, 0));
  ValueId dead = ir_op1(m, OP_EXP, ir_op2(m, OP_MUL, x, w, 0), 0);
  (void)dead;
  ValueId g = ir_leaf(m, OP_GRAD, 1, 0); /* unused */
  (void)g;
  ValueId live = ir_reduce(m, OP_REDUCE_SUM, ir_op2(m, OP_ADD, x, x, 0), 1, 0);
  ir_op1(m, OP_NEG, live, 0); /* dead user of a live node */
  keep(m, live);
  uint32_t nsyms = m->nsyms;
  CHECK(verify(m, "build"), "bad test module");

  long n = run(pass_dce, m, "dce", "removed");
  CHECK(n == 5, "dce.removed moved by %ld, expected 5", n);
  CHECK(m->nnodes == 3 && m->nodes[0].op == OP_INPUT && m->nodes[1].op == OP_ADD && m->nodes[2].op == OP_REDUCE_SUM &&
            m->outputs[0].value == 2,
        "expected input, add, reduce_sum with the output remapped");
  CHECK(m->nsyms == nsyms, "symbols must stay");
  CHECK(run(pass_dce, m, "dce", "removed") == 0, "second dce removed more");
  ir_module_free(m);
}

/* ---- differential: random scalar graphs through every pass ---------------------------- */

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint32_t rnd(uint32_t n) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (uint32_t)(rng % n);
}

/* Evaluates a graph of f32 scalars (batched ones hold one sample) in f32,
 * with ir/ops.def's semantics (op_eval); inputs take the given values. */
static double *eval(const Module *m, const double *inputs) {
  double *v = nnc_xmalloc(sizeof *v * (m->nnodes + 1));
  for (uint32_t i = 0; i < m->nnodes; i++) {
    const Node *n = &m->nodes[i];
    double x[NNC_MAX_ARGS] = {0, 0, 0}, r;
    for (int k = 0; k < n->nargs; k++) x[k] = v[n->args[k]];
    switch (n->op) {
    case OP_CONST: r = n->attr.value; break;
    case OP_INPUT: r = inputs[n->attr.sym]; break;
    case OP_BROADCAST:
    case OP_RESHAPE: r = x[0]; break;
    default:
      NNC_ASSERT(ir_ops[n->op].flags & OPF_ELEMWISE);
      r = op_eval(n->op, DT_F32, x[0], x[1], x[2]);
    }
    v[i] = (float)r;
  }
  return v;
}

static bool same_value(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

static void test_random(void) {
  /* no division: algebra may turn a -0 into +0 (documented), which only
   * 1/x would tell apart; == below does not */
  static const Op ops[] = {OP_NEG, OP_EXP, OP_TANH, OP_STOP_GRAD, OP_ADD, OP_SUB, OP_MUL, OP_LT, OP_WHERE};
  static const double consts[] = {0, 1, -0.0, 2, 0.5, -3};
  int bad = 0;
  long f0 = nnc_stat_get("fold", "folded"), a0 = nnc_stat_get("algebra", "simplified");
  long c0 = nnc_stat_get("cse", "merged"), d0 = nnc_stat_get("dce", "removed");
  for (int iter = 0; iter < 300; iter++) {
    Module *m = new_module();
    input(m, "x", ty(DT_F32, true, 0, 0, 0));
    input(m, "y", ty(DT_F32, true, 0, 0, 0));
    uint32_t n = 8 + rnd(40);
    for (uint32_t i = 0; i < n; i++) {
      uint32_t k = rnd(14);
      if (k < 3) {
        ValueId c = ir_const(m, DT_F32, consts[rnd(6)], 0);
        if (k == 0) ir_retype(m, OP_BROADCAST, c, ty(DT_F32, true, 0, 0, 0), 0);
        continue;
      }
      if (k == 3) {
        ir_leaf(m, OP_INPUT, rnd(2), 0); /* more leaves for cse to merge */
        continue;
      }
      Op op = ops[rnd(sizeof ops / sizeof ops[0])];
      ValueId a[3];
      for (int j = 0; j < 3; j++) a[j] = rnd(m->nnodes);
      int ar = ir_ops[op].arity;
      char err[128];
      ir_build(m, op, a, ar, NULL, 0, err, sizeof err);
    }
    for (uint32_t i = 0; i < 3; i++) {
      ValueId v = m->nnodes - 1 - rnd(m->nnodes < 4 ? m->nnodes : 4);
      if (!m->nodes[v].type.batched) v = ir_op2(m, OP_ADD, v, 0, 0);
      keep(m, v);
    }
    if (!verify(m, "build")) {
      bad++;
      ir_module_free(m);
      continue;
    }
    double in[2] = {0.75, -1.25};
    double *before = eval(m, in);
    double want[3];
    for (int k = 0; k < 3; k++) want[k] = before[m->outputs[k].value];
    free(before);
    bool ok = pass_fold(m) && verify(m, "fold") && pass_algebra(m) && verify(m, "algebra") && pass_cse(m) &&
              verify(m, "cse") && pass_dce(m) && verify(m, "dce");
    CHECK(ok, "iteration %d: a pass failed or left invalid IR", iter);
    double *after = eval(m, in);
    for (int k = 0; k < 3; k++)
      CHECK(same_value(after[m->outputs[k].value], want[k]), "iteration %d output %d: %.9g after, %.9g before", iter,
            k, after[m->outputs[k].value], want[k]);
    free(after);
    ir_module_free(m);
  }
  CHECK(bad == 0, "%d random modules were invalid", bad);
  long nf = nnc_stat_get("fold", "folded") - f0, na = nnc_stat_get("algebra", "simplified") - a0;
  long nc = nnc_stat_get("cse", "merged") - c0, nd = nnc_stat_get("dce", "removed") - d0;
  CHECK(nf > 300 && na > 300 && nc > 300 && nd > 300, "random graphs exercised too little: %ld folded, "
        "%ld simplified, %ld merged, %ld removed", nf, na, nc, nd);
  if (getenv("VERBOSE"))
    printf("random: %ld folded, %ld simplified, %ld merged, %ld removed\n", nf, na, nc, nd);
}

/* ---- scale: linear work on a million nodes ---------------------------------------------
 * Timings never decide a test (machines are shared and noisy): the work is
 * bounded through cse.probes, and a quadratic pass would run into ctest's
 * timeout long before finishing.  The seconds are printed for people. */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_large(void) {
  Module *m = new_module();
  Type bt = ty(DT_F32, true, 0, 0, 0);
  uint32_t xs = add_sym(m, SYM_INPUT, "x", bt), ws = add_sym(m, SYM_PARAM, "w", type_scalar(DT_F32));
  /* 340,000 rounds of: two param leaves, two equal products, their sum, a
   * dead node: 2,040,001 nodes, 1,019,999 of them duplicates. */
  const int rounds = 340000;
  ValueId v = ir_leaf(m, OP_INPUT, xs, 0);
  for (int i = 0; i < rounds; i++) {
    ValueId w1 = ir_leaf(m, OP_PARAM, ws, 0), w2 = ir_leaf(m, OP_PARAM, ws, 0);
    ValueId p1 = ir_op2(m, OP_MUL, v, w1, 0), p2 = ir_op2(m, OP_MUL, v, w2, 0);
    ValueId s = ir_op2(m, OP_ADD, p1, p2, 0);
    ir_op1(m, OP_EXP, p1, 0);
    v = s;
  }
  keep(m, v);
  uint32_t n0 = m->nnodes;
  CHECK(n0 == 1 + 6 * (uint32_t)rounds, "built %u nodes", n0);

  double t0 = now();
  long probes0 = nnc_stat_get("cse", "probes");
  long merged = run(pass_cse, m, "cse", "merged");
  long probes = nnc_stat_get("cse", "probes") - probes0;
  double t1 = now();
  long removed = run(pass_dce, m, "dce", "removed");
  double t2 = now();
  /* cse: every w after the first, and the second product of every round */
  CHECK(merged == 3L * rounds - 1, "cse.merged = %ld", merged);
  CHECK(removed == rounds, "dce.removed = %ld (one exp per round)", removed);
  CHECK(m->nnodes == 2 + 2 * (uint32_t)rounds, "%u nodes left", m->nnodes);
  CHECK(probes <= 4L * (long)n0, "cse examined %ld table slots for %u nodes (expected about 1.5 per node)", probes, n0);
  printf("test_simplify: cse %.3f s, dce %.3f s on %u nodes\n", t1 - t0, t2 - t1, n0);
  ir_module_free(m);
}

int main(void) {
  diag_init(&nnc_diag);
  test_fold();
  test_algebra();
  test_stable_lse();
  test_cse();
  test_dce();
  test_random();
  test_large();
  return check_done();
}
