/* test/unit/test_interp.c - the reference interpreter (codegen/interp).
 *
 * Every op is evaluated on small graphs built by hand here (no frontend, no
 * passes), and compared with values worked out in the test: broadcasting
 * with batched and unbatched operands, every matmul rank case, reductions,
 * argmax ties, index and onehot with their bounds checks, where, casts and
 * int32 arithmetic, f32 rounding against f64, and optimizer steps (sgd with
 * momentum, adam) against their formulas written out.  Prints one line per
 * failed check; exits 1 if any failed.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/interp/interp.h"
#include "runtime/init.h"

#include "check.h"

/* |got - want| <= tol * max(1, |want|); NaN only matches NaN. */
#define NEAR(got, want, tol)                                                   \
  do {                                                                         \
    double g_ = (got), w_ = (want);                                            \
    bool ok_ = isnan(w_) ? isnan(g_) : fabs(g_ - w_) <= (tol) * fmax(1, fabs(w_)); \
    CHECK(ok_, "got %.17g, want %.17g", g_, w_);                               \
  } while (0)

/* ---- building graphs ------------------------------------------------------------ */

static Module *m;

static Type ty(DType dt, bool batched, int rank, int64_t d0, int64_t d1, int64_t d2) {
  int64_t dims[3] = {d0, d1, d2};
  return type_make(dt, rank, dims, batched);
}

static uint32_t add_sym(SymKind kind, const char *name, Type t, InitKind init, double a) {
  Symbol s;
  memset(&s, 0, sizeof s);
  s.kind = kind;
  s.name = name;
  s.type = t;
  s.init.kind = init;
  s.init.a = a;
  return ir_add_symbol(m, s);
}

/* A parameter (zeros; tests write its values) and its leaf node. */
static ValueId param(const char *name, int rank, int64_t d0, int64_t d1) {
  uint32_t s = add_sym(SYM_PARAM, name, ty(DT_F32, false, rank, d0, d1, 0), INIT_ZEROS, 0);
  return ir_leaf(m, OP_PARAM, s, 0);
}

/* The model input x (f32, batched) and label y. */
static ValueId input_x(int rank, int64_t d0, int64_t d1) {
  return ir_leaf(m, OP_INPUT, add_sym(SYM_INPUT, "x", ty(DT_F32, true, rank, d0, d1, 0), INIT_NONE, 0), 0);
}
static ValueId label_y(DType dt) {
  return ir_leaf(m, OP_INPUT, add_sym(SYM_LABEL, "y", ty(dt, true, 0, 0, 0, 0), INIT_NONE, 0), 0);
}

static ValueId cst(double v) { return ir_const(m, DT_F32, v, 0); }
static ValueId icst(double v) { return ir_const(m, DT_I32, v, 0); }

static ValueId reduce(Op op, ValueId a, uint32_t axes) { return ir_reduce(m, op, a, axes, 0); }

static ValueId retype(Op op, ValueId a, Type t) { return ir_retype(m, op, a, t, 0); }

/* Outputs: tests read them back by index. */
static uint32_t out(ValueId v) {
  ir_add_output(m, OUT_METRIC, "o", 0, v);
  return m->noutputs - 1;
}

static void fresh(void) {
  if (m) ir_module_free(m);
  m = ir_module_new();
}

/* Writes values into a parameter's storage (node p is its leaf). */
static void set_param(Interp *it, ValueId p, const double *vals) {
  const Node *nd = &m->nodes[p];
  memcpy(interp_symbol(it, nd->attr.sym), vals, (size_t)type_numel(&nd->type) * sizeof(double));
}

static void check_values(const Interp *it, uint32_t o, const double *want, int64_t n, double tol, const char *what) {
  const double *got = interp_output(it, o);
  CHECK(got != NULL, "%s: output %u was not evaluated", what, o);
  if (!got) return;
  for (int64_t i = 0; i < n; i++) {
    bool ok = isnan(want[i]) ? isnan(got[i]) : fabs(got[i] - want[i]) <= tol * fmax(1, fabs(want[i]));
    CHECK(ok, "%s[%lld]: got %.17g, want %.17g", what, (long long)i, got[i], want[i]);
  }
}

/* ---- elementwise ---------------------------------------------------------------- */

/* Every one-operand f32 op of ir/ops.def (cast aside), in f64 and in f32
 * (each result rounded to float): ir/ops.def's value (op_eval), element
 * for element.  The values of the ops themselves are pinned below. */
static void test_unary(void) {
  fresh();
  ValueId p = param("p", 1, 4, 0);
  Op ops[OP_COUNT];
  uint32_t outs[OP_COUNT];
  int n = 0;
  for (int op = 0; op < OP_COUNT; op++)
    if ((ir_ops[op].flags & OPF_ELEMWISE) && ir_ops[op].arity == 1 && op != OP_CAST) {
      ops[n] = (Op)op;
      outs[n++] = out(ir_op1(m, (Op)op, p, 0));
    }
  CHECK(n >= 8, "only %d one-operand ops", n);
  for (int f64 = 0; f64 < 2; f64++) {
    Interp *it = interp_new(m, f64);
    double pv[4] = {0.25, 1.5, 2.0, 9.0};
    set_param(it, p, pv);
    CHECK(interp_run(it, NULL, NULL, 1, false) == 0, "%s", interp_error(it));
    for (int i = 0; i < n; i++) {
      double want[4];
      for (int k = 0; k < 4; k++) {
        double r = op_eval(ops[i], DT_F32, pv[k], 0, 0);
        want[k] = f64 ? r : (float)r;
      }
      check_values(it, outs[i], want, 4, 0, ir_ops[ops[i]].name);
    }
    interp_free(it);
  }
  /* The values op_eval gives (exp(1.5), sqrt(9), ...). */
  static const struct { Op op; double a, want; } known[] = {
      {OP_NEG, 1.5, -1.5},           {OP_EXP, 1.5, 4.4816890703380645}, {OP_LOG, 2.0, 0.69314718055994529},
      {OP_SQRT, 9.0, 3.0},          {OP_TANH, 0.25, 0.24491866240370913}, {OP_ABS, -2.0, 2.0},
      {OP_SIGN, 9.0, 1.0},          {OP_STOP_GRAD, 0.25, 0.25},
  };
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    double got = op_eval(known[i].op, DT_F32, known[i].a, 0, 0);
    CHECK(fabs(got - known[i].want) <= 1e-15 * fabs(known[i].want), "%s(%g) = %.17g, want %.17g",
          ir_ops[known[i].op].name, known[i].a, got, known[i].want);
  }
  /* abs and sign of negatives, zero and NaN. */
  fresh();
  p = param("p", 1, 4, 0);
  uint32_t oa = out(ir_op1(m, OP_ABS, p, 0)), os = out(ir_op1(m, OP_SIGN, p, 0));
  Interp *it = interp_new(m, true);
  set_param(it, p, (double[]){-3, 0, 2, NAN});
  CHECK(interp_run(it, NULL, NULL, 1, false) == 0, "%s", interp_error(it));
  check_values(it, oa, (double[]){3, 0, 2, NAN}, 4, 0, "abs");
  check_values(it, os, (double[]){-1, 0, 1, NAN}, 4, 0, "sign");
  interp_free(it);
}

static void test_binary_broadcast(void) {
  /* x: f32[B,3] + p: f32[2,1] -> f32[B,2,3]: out[s][i][j] = x[s][j] + p[i]. */
  fresh();
  ValueId x = input_x(1, 3, 0);
  ValueId p = param("p", 2, 2, 1);
  ValueId q = param("q", 1, 3, 0);
  uint32_t o_add = out(ir_op2(m, OP_ADD, x, p, 0));
  uint32_t o_sub = out(ir_op2(m, OP_SUB, p, x, 0));        /* [B,2,3] the other way round */
  uint32_t o_mul = out(ir_op2(m, OP_MUL, p, q, 0));        /* unbatched [2,1]*[3] -> [2,3] */
  uint32_t o_div = out(ir_op2(m, OP_DIV, x, cst(4), 0));   /* scalar constant */
  uint32_t o_pow = out(ir_op2(m, OP_POW, q, cst(2), 0));
  uint32_t o_max = out(ir_op2(m, OP_MAX, x, q, 0));        /* batched [3] with unbatched [3] */
  uint32_t o_min = out(ir_op2(m, OP_MIN, x, q, 0));
  CHECK(m->nodes[m->outputs[o_add].value].type.batched && m->nodes[m->outputs[o_add].value].type.rank == 2,
        "add type");
  Interp *it = interp_new(m, true);
  set_param(it, p, (double[]){10, 20});
  set_param(it, q, (double[]){1, -2, 3});
  float xv[6] = {1, 2, 3, 4, 5, 6}; /* two samples */
  CHECK(interp_run(it, xv, NULL, 2, false) == 0, "%s", interp_error(it));
  check_values(it, o_add, (double[]){11, 12, 13, 21, 22, 23, 14, 15, 16, 24, 25, 26}, 12, 0, "add");
  check_values(it, o_sub, (double[]){9, 8, 7, 19, 18, 17, 6, 5, 4, 16, 15, 14}, 12, 0, "sub");
  check_values(it, o_mul, (double[]){10, -20, 30, 20, -40, 60}, 6, 0, "mul");
  check_values(it, o_div, (double[]){0.25, 0.5, 0.75, 1, 1.25, 1.5}, 6, 0, "div");
  check_values(it, o_pow, (double[]){1, 4, 9}, 3, 0, "pow");
  check_values(it, o_max, (double[]){1, 2, 3, 4, 5, 6}, 6, 0, "max");
  check_values(it, o_min, (double[]){1, -2, 3, 1, -2, 3}, 6, 0, "min");
  interp_free(it);

  /* max/min propagate NaN; comparisons give 1 or 0. */
  fresh();
  ValueId a = param("a", 1, 4, 0), b = param("b", 1, 4, 0);
  uint32_t omax = out(ir_op2(m, OP_MAX, a, b, 0)), omin = out(ir_op2(m, OP_MIN, a, b, 0));
  Op cmps[] = {OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE};
  uint32_t oc[6];
  for (int i = 0; i < 6; i++) oc[i] = out(ir_op2(m, cmps[i], a, b, 0));
  it = interp_new(m, false);
  set_param(it, a, (double[]){1, 2, 3, NAN});
  set_param(it, b, (double[]){2, 2, 1, 0});
  CHECK(interp_run(it, NULL, NULL, 1, false) == 0, "%s", interp_error(it));
  check_values(it, omax, (double[]){2, 2, 3, NAN}, 4, 0, "max nan");
  check_values(it, omin, (double[]){1, 2, 1, NAN}, 4, 0, "min nan");
  check_values(it, oc[0], (double[]){0, 1, 0, 0}, 4, 0, "eq");
  check_values(it, oc[1], (double[]){1, 0, 1, 1}, 4, 0, "ne");
  check_values(it, oc[2], (double[]){1, 0, 0, 0}, 4, 0, "lt");
  check_values(it, oc[3], (double[]){1, 1, 0, 0}, 4, 0, "le");
  check_values(it, oc[4], (double[]){0, 0, 1, 0}, 4, 0, "gt");
  check_values(it, oc[5], (double[]){0, 1, 1, 0}, 4, 0, "ge");
  interp_free(it);
}

static void test_where(void) {
  /* where(c, a, b): c batched [B,2], a unbatched [2], b scalar. */
  fresh();
  ValueId x = input_x(1, 2, 0);
  ValueId a = param("a", 1, 2, 0);
  ValueId c = ir_op2(m, OP_GT, x, cst(0), 0);
  uint32_t o = out(ir_op3(m, OP_WHERE, c, a, cst(-1), 0));
  Interp *it = interp_new(m, false);
  set_param(it, a, (double[]){7, 8});
  float xv[4] = {1, -1, 0, 2};
  CHECK(interp_run(it, xv, NULL, 2, false) == 0, "%s", interp_error(it));
  check_values(it, o, (double[]){7, -1, -1, 8}, 4, 0, "where");
  interp_free(it);
}

/* ---- i32 and casts ------------------------------------------------------------------ */

static void test_int32(void) {
  fresh();
  ValueId p = param("p", 1, 6, 0);
  ValueId ip = retype(OP_CAST, p, ty(DT_I32, false, 1, 6, 0, 0)); /* truncates toward zero */
  ValueId q = param("q", 1, 6, 0);
  ValueId iq = retype(OP_CAST, q, ty(DT_I32, false, 1, 6, 0, 0));
  uint32_t o_cast = out(ip);
  uint32_t o_div = out(ir_op2(m, OP_DIV, ip, iq, 0));
  uint32_t o_back = out(retype(OP_CAST, ir_op2(m, OP_MUL, ip, icst(3), 0), ty(DT_F32, false, 1, 6, 0, 0)));
  uint32_t o_neg = out(ir_op1(m, OP_NEG, ip, 0));
  Interp *it = interp_new(m, false);
  set_param(it, p, (double[]){7.9, -7.9, 7, -7, 0.5, -0.5});
  set_param(it, q, (double[]){2, 2, -2, -2, 1, 1});
  CHECK(interp_run(it, NULL, NULL, 1, false) == 0, "%s", interp_error(it));
  check_values(it, o_cast, (double[]){7, -7, 7, -7, 0, 0}, 6, 0, "cast f32->i32");
  check_values(it, o_div, (double[]){3, -3, -3, 3, 0, 0}, 6, 0, "i32 div toward zero");
  check_values(it, o_back, (double[]){21, -21, 21, -21, 0, 0}, 6, 0, "i32 mul, cast back");
  check_values(it, o_neg, (double[]){-7, 7, -7, 7, 0, 0}, 6, 0, "i32 neg");
  interp_free(it);

  /* Wrap-around, saturating casts and division by zero. */
  fresh();
  p = param("p", 1, 3, 0);
  ip = retype(OP_CAST, p, ty(DT_I32, false, 1, 3, 0, 0));
  uint32_t o_wrap = out(ir_op2(m, OP_ADD, ip, icst(1), 0));
  uint32_t o_sat = out(ip);
  it = interp_new(m, true);
  set_param(it, p, (double[]){3e9, -3e9, NAN});
  CHECK(interp_run(it, NULL, NULL, 1, false) == 0, "%s", interp_error(it));
  check_values(it, o_sat, (double[]){2147483647, -2147483648.0, 0}, 3, 0, "saturating cast");
  check_values(it, o_wrap, (double[]){-2147483648.0, -2147483647, 1}, 3, 0, "i32 add wraps");
  interp_free(it);

  fresh();
  ValueId y = label_y(DT_I32);
  uint32_t l = ir_loc(m, ir_file(m, "t.nn"), 4, 9, 0);
  ValueId args[2] = {icst(10), y};
  char err[128];
  ValueId d = ir_build(m, OP_DIV, args, 2, NULL, l, err, sizeof err);
  out(d);
  it = interp_new(m, false);
  int32_t yv[3] = {5, -3, 0};
  CHECK(interp_run(it, NULL, yv, 3, false) != 0, "division by zero must fail");
  CHECK(strstr(interp_error(it), "division by zero") && strstr(interp_error(it), "t.nn:4:9") &&
            strstr(interp_error(it), "sample 2"),
        "error: %s", interp_error(it));
  yv[2] = 4;
  CHECK(interp_run(it, NULL, yv, 3, false) == 0, "%s", interp_error(it));
  check_values(it, 0, (double[]){2, -3, 2}, 3, 0, "10 / y");
  interp_free(it);
}

/* ---- reductions, argmax, shape ops --------------------------------------------------- */

static void test_reduce(void) {
  fresh();
  ValueId x = input_x(2, 2, 3);   /* [B,2,3] */
  uint32_t o0 = out(reduce(OP_REDUCE_SUM, x, 1));
  uint32_t o1 = out(reduce(OP_REDUCE_SUM, x, 2));
  uint32_t o01 = out(reduce(OP_REDUCE_SUM, x, 3));
  uint32_t m0 = out(reduce(OP_REDUCE_MAX, x, 1));
  uint32_t m1 = out(reduce(OP_REDUCE_MAX, x, 2));
  uint32_t bs = out(ir_op1(m, OP_BATCH_SUM, x, 0));
  Interp *it = interp_new(m, true);
  float xv[12] = {1, 2, 3, 4, 5, 6, /* sample 1 */ -1, 0, 9, 2, -5, 1};
  CHECK(interp_run(it, xv, NULL, 2, false) == 0, "%s", interp_error(it));
  check_values(it, o0, (double[]){5, 7, 9, 1, -5, 10}, 6, 0, "sum axis 0");
  check_values(it, o1, (double[]){6, 15, 8, -2}, 4, 0, "sum axis 1");
  check_values(it, o01, (double[]){21, 6}, 2, 0, "sum axes 0,1");
  check_values(it, m0, (double[]){4, 5, 6, 2, 0, 9}, 6, 0, "max axis 0");
  check_values(it, m1, (double[]){3, 6, 9, 2}, 4, 0, "max axis 1");
  check_values(it, bs, (double[]){0, 2, 12, 6, 0, 7}, 6, 0, "batch_sum");
  interp_free(it);

  /* An unbatched operand, and reduce_max with NaN. */
  fresh();
  ValueId p = param("p", 2, 2, 2);
  uint32_t s = out(reduce(OP_REDUCE_SUM, p, 1)), mx = out(reduce(OP_REDUCE_MAX, p, 2));
  it = interp_new(m, true);
  set_param(it, p, (double[]){1, NAN, -3, -4});
  CHECK(interp_run(it, NULL, NULL, 5, false) == 0, "%s", interp_error(it));
  check_values(it, s, (double[]){-2, NAN}, 2, 0, "unbatched sum");
  check_values(it, mx, (double[]){NAN, -3}, 2, 0, "max with nan");
  interp_free(it);
}

static void test_argmax(void) {
  fresh();
  ValueId x = input_x(1, 4, 0);
  uint32_t o = out(ir_op1(m, OP_ARGMAX, x, 0));
  ValueId p = param("p", 2, 2, 3);
  uint32_t op = out(ir_op1(m, OP_ARGMAX, p, 0));
  Interp *it = interp_new(m, false);
  set_param(it, p, (double[]){5, 5, 1, 0, 1, 2});
  float xv[12] = {1, 3, 3, 2, /* ties: first */ -1, -2, -3, -4, 0, NAN, 7, NAN};
  CHECK(interp_run(it, xv, NULL, 3, false) == 0, "%s", interp_error(it));
  check_values(it, o, (double[]){1, 0, 1}, 3, 0, "argmax");
  check_values(it, op, (double[]){0, 2}, 2, 0, "argmax rows");
  CHECK(m->nodes[m->outputs[o].value].type.dtype == DT_I32, "argmax is i32");
  interp_free(it);
}

static void test_matmul(void) {
  fresh();
  ValueId x = input_x(1, 2, 0);   /* [B,2] */
  ValueId w = param("w", 2, 2, 3); /* [2,3] */
  ValueId v = param("v", 1, 3, 0); /* [3] */
  ValueId a = param("a", 2, 3, 2); /* [3,2] */
  uint32_t vm = out(ir_op2(m, OP_MATMUL, x, w, 0));   /* [n]@[n,m] batched @ unbatched */
  uint32_t mv = out(ir_op2(m, OP_MATMUL, a, x, 0));   /* [k,n]@[n] unbatched @ batched */
  uint32_t mm = out(ir_op2(m, OP_MATMUL, w, a, 0));   /* [k,n]@[n,m] unbatched */
  uint32_t vv = out(ir_op2(m, OP_MATMUL, v, v, 0));   /* [n]@[n] */
  ValueId xc = retype(OP_RESHAPE, x, ty(DT_F32, true, 2, 2, 1, 0)); /* [B,2,1] */
  ValueId xr = retype(OP_RESHAPE, x, ty(DT_F32, true, 2, 1, 2, 0)); /* [B,1,2] */
  uint32_t outer = out(ir_op2(m, OP_MATMUL, xc, xr, 0)); /* batched @ batched [2,1]@[1,2] */
  uint32_t dot = out(ir_op2(m, OP_MATMUL, x, x, 0));     /* batched [n]@[n] */
  Interp *it = interp_new(m, true);
  set_param(it, w, (double[]){1, 2, 3, 4, 5, 6});
  set_param(it, v, (double[]){1, 2, 3});
  set_param(it, a, (double[]){1, 0, 0, 1, 1, 1});
  float xv[4] = {1, 2, -1, 3};
  CHECK(interp_run(it, xv, NULL, 2, false) == 0, "%s", interp_error(it));
  check_values(it, vm, (double[]){9, 12, 15, 11, 13, 15}, 6, 0, "[n]@[n,m]");
  check_values(it, mv, (double[]){1, 2, 3, -1, 3, 2}, 6, 0, "[k,n]@[n]");
  check_values(it, mm, (double[]){4, 5, 10, 11}, 4, 0, "[k,n]@[n,m]");
  check_values(it, vv, (double[]){14}, 1, 0, "[n]@[n]");
  check_values(it, outer, (double[]){1, 2, 2, 4, 1, -3, -3, 9}, 8, 0, "outer");
  check_values(it, dot, (double[]){5, 10}, 2, 0, "batched dot");
  interp_free(it);
}

static void test_shape_ops(void) {
  fresh();
  ValueId x = input_x(2, 2, 3);
  uint8_t perm[NNC_MAX_RANK] = {1, 0};
  uint32_t tr = out(ir_transpose(m, x, perm, 0));
  uint32_t rs = out(retype(OP_RESHAPE, x, ty(DT_F32, true, 2, 3, 2, 0)));
  ValueId p = param("p", 1, 3, 0);
  uint32_t bc = out(retype(OP_BROADCAST, p, ty(DT_F32, true, 2, 2, 3, 0))); /* adds the batch axis */
  uint32_t bc2 = out(retype(OP_BROADCAST, cst(2), ty(DT_F32, false, 1, 2, 0, 0)));
  Interp *it = interp_new(m, true);
  set_param(it, p, (double[]){7, 8, 9});
  float xv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  CHECK(interp_run(it, xv, NULL, 2, false) == 0, "%s", interp_error(it));
  check_values(it, tr, (double[]){1, 4, 2, 5, 3, 6, 7, 10, 8, 11, 9, 12}, 12, 0, "transpose");
  check_values(it, rs, (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 12, 0, "reshape");
  check_values(it, bc, (double[]){7, 8, 9, 7, 8, 9, 7, 8, 9, 7, 8, 9}, 12, 0, "broadcast");
  check_values(it, bc2, (double[]){2, 2}, 2, 0, "broadcast scalar");
  interp_free(it);

  /* A rank-3 transpose. */
  fresh();
  ValueId q = param("q", 2, 2, 3); /* reshaped to [1,2,3] then permuted to [3,1,2] */
  ValueId q3 = retype(OP_RESHAPE, q, ty(DT_F32, false, 3, 1, 2, 3));
  uint8_t perm3[NNC_MAX_RANK] = {2, 0, 1};
  uint32_t t3 = out(ir_transpose(m, q3, perm3, 0));
  it = interp_new(m, true);
  set_param(it, q, (double[]){1, 2, 3, 4, 5, 6});
  CHECK(interp_run(it, NULL, NULL, 1, false) == 0, "%s", interp_error(it));
  check_values(it, t3, (double[]){1, 4, 2, 5, 3, 6}, 6, 0, "transpose rank 3");
  interp_free(it);
}

static void test_index_onehot(void) {
  fresh();
  uint32_t f = ir_file(m, "model.nn"), g = ir_file(m, "stdlib/nn.nn");
  uint32_t call = ir_loc(m, f, 7, 12, 0), inner = ir_loc(m, g, 39, 45, call);
  ValueId x = input_x(1, 3, 0);
  ValueId y = label_y(DT_I32);
  ValueId p = param("p", 2, 3, 2);
  char err[128];
  ValueId a1[2] = {x, y}, a2[2] = {p, y};
  uint32_t ix = out(ir_build(m, OP_INDEX, a1, 2, NULL, inner, err, sizeof err)); /* batched[batched] */
  uint32_t ip = out(ir_build(m, OP_INDEX, a2, 2, NULL, call, err, sizeof err));  /* unbatched[batched] -> [B,2] */
  uint32_t ic = out(ir_op2(m, OP_INDEX, p, icst(2), 0));                          /* unbatched[const] */
  uint32_t oh = out(retype(OP_ONEHOT, y, ty(DT_F32, false, 1, 3, 0, 0)));
  Interp *it = interp_new(m, false);
  set_param(it, p, (double[]){1, 2, 3, 4, 5, 6});
  float xv[6] = {10, 11, 12, 20, 21, 22};
  int32_t yv[2] = {2, 0};
  CHECK(interp_run(it, xv, yv, 2, false) == 0, "%s", interp_error(it));
  check_values(it, ix, (double[]){12, 20}, 2, 0, "index batched");
  check_values(it, ip, (double[]){5, 6, 1, 2}, 4, 0, "index param");
  check_values(it, ic, (double[]){5, 6}, 2, 0, "index const");
  check_values(it, oh, (double[]){0, 0, 1, 1, 0, 0}, 6, 0, "onehot");
  /* Out of range: a clear error naming the op and the user's line. */
  yv[1] = 3;
  CHECK(interp_run(it, xv, yv, 2, false) != 0, "index 3 of 3 must fail");
  const char *e = interp_error(it);
  CHECK(strstr(e, "index 3 is out of range [0, 3)") && strstr(e, "in index at model.nn:7:12") &&
            strstr(e, "inside stdlib/nn.nn:39:45") && strstr(e, "sample 1"),
        "error: %s", e);
  yv[1] = -1;
  CHECK(interp_run(it, xv, yv, 2, false) != 0 && strstr(interp_error(it), "index -1"), "error: %s",
        interp_error(it));
  interp_free(it);

  fresh();
  y = label_y(DT_I32);
  out(retype(OP_ONEHOT, y, ty(DT_F32, false, 1, 4, 0, 0)));
  it = interp_new(m, false);
  int32_t bad[1] = {4};
  CHECK(interp_run(it, NULL, bad, 1, false) != 0 && strstr(interp_error(it), "in onehot at"), "error: %s",
        interp_error(it));
  interp_free(it);
}

/* ---- leaves, f32 vs f64, lazy evaluation ------------------------------------------------ */

static void test_leaves_and_precision(void) {
  fresh();
  uint32_t h = add_sym(SYM_HYPER, "lr", type_scalar(DT_F32), INIT_NONE, 0);
  m->syms[h].value = 0.1;
  ValueId hv = ir_leaf(m, OP_HYPER, h, 0);
  uint32_t o_h = out(hv);
  uint32_t o_step = out(ir_leaf(m, OP_STEP, 0, 0));
  uint32_t o_bs = out(ir_leaf(m, OP_BATCH_SIZE, 0, 0));
  uint32_t o_sum = out(ir_op2(m, OP_ADD, hv, cst(0.2), 0));
  uint32_t o_exp = out(ir_op1(m, OP_EXP, cst(1), 0));
  Interp *f = interp_new(m, false), *d = interp_new(m, true);
  interp_init(f, 1);
  interp_init(d, 1);
  CHECK(interp_run(f, NULL, NULL, 3, false) == 0 && interp_run(d, NULL, NULL, 3, false) == 0, "run");
  check_values(f, o_h, (double[]){(float)0.1}, 1, 0, "hyper f32");
  check_values(d, o_h, (double[]){0.1}, 1, 0, "hyper f64");
  check_values(f, o_sum, (double[]){(float)((double)(float)0.1 + (double)(float)0.2)}, 1, 0, "0.1+0.2 f32");
  check_values(d, o_sum, (double[]){0.1 + 0.2}, 1, 0, "0.1+0.2 f64");
  check_values(f, o_exp, (double[]){(float)exp(1)}, 1, 0, "exp f32");
  check_values(d, o_exp, (double[]){exp(1)}, 1, 0, "exp f64");
  check_values(d, o_step, (double[]){1}, 1, 0, "step");
  check_values(d, o_bs, (double[]){3}, 1, 0, "batch_size");
  CHECK(interp_set_hyper(d, "lr", 0.5) && !interp_set_hyper(d, "momentum", 1), "set_hyper");
  interp_set_step(d, 7);
  CHECK(interp_run(d, NULL, NULL, 2, false) == 0, "run");
  check_values(d, o_h, (double[]){0.5}, 1, 0, "hyper set");
  check_values(d, o_step, (double[]){7}, 1, 0, "step set");
  interp_free(f);
  interp_free(d);

  /* interp_init: the runtime's initializers, seeded by name. */
  fresh();
  uint32_t s = add_sym(SYM_PARAM, "h.w", ty(DT_F32, false, 2, 3, 4, 0), INIT_GLOROT_UNIFORM, 0);
  uint32_t s2 = add_sym(SYM_PARAM, "c", ty(DT_F32, false, 1, 2, 0, 0), INIT_FULL, 0.25);
  out(ir_leaf(m, OP_PARAM, s, 0));
  Interp *it = interp_new(m, false);
  interp_init(it, 42);
  float want[12];
  int64_t dims[2] = {3, 4};
  rt_init_tensor(RT_INIT_GLOROT_UNIFORM, 0, 0, dims, 2, 42, "h.w", want);
  bool same = true;
  for (int i = 0; i < 12; i++) same &= interp_symbol(it, s)[i] == want[i];
  CHECK(same, "interp_init matches rt_init_tensor");
  CHECK(interp_symbol(it, s2)[0] == 0.25 && interp_symbol(it, s2)[1] == 0.25, "full init");
  interp_free(it);

  /* Only what the requested outputs need is evaluated: an index that would
   * fail feeds only an update output, so interp_eval succeeds. */
  fresh();
  ValueId y = label_y(DT_I32);
  ValueId p = param("p", 1, 2, 0);
  ValueId bad = ir_op2(m, OP_INDEX, p, y, 0);
  ir_add_output(m, OUT_LOSS, "loss", 0, retype(OP_BROADCAST, cst(1), ty(DT_F32, true, 0, 0, 0, 0)));
  ir_add_output(m, OUT_UPDATE, "p", m->nodes[p].attr.sym,
                retype(OP_BROADCAST, ir_op1(m, OP_BATCH_SUM, bad, 0), ty(DT_F32, false, 1, 2, 0, 0)));
  it = interp_new(m, false);
  int32_t yv[2] = {5, 5};
  double loss = 0;
  CHECK(interp_eval(it, NULL, yv, 2, &loss, NULL) == 0 && loss == 2, "eval: %s, loss %g", interp_error(it), loss);
  CHECK(interp_step(it, NULL, yv, 2, &loss, NULL) != 0, "step must fail");
  CHECK(interp_get_step(it) == 1, "a failed step is not counted");
  interp_free(it);
}

/* ---- optimizers ------------------------------------------------------------------------- */

/* A one-parameter regression: per sample loss = (w*x - y)^2, and its
 * gradient built by hand (autodiff is not under test here):
 *   g = (1/B) * sum_b 2 (w x_b - y_b) x_b.  Returns g's node; *loss_out the
 * loss's. */
static ValueId regression(ValueId *w_out, ValueId *loss_out) {
  ValueId x = input_x(0, 0, 0), y = label_y(DT_F32);
  uint32_t ws = add_sym(SYM_PARAM, "w", type_scalar(DT_F32), INIT_FULL, 0.5);
  ValueId w = ir_leaf(m, OP_PARAM, ws, 0);
  ValueId r = ir_op2(m, OP_SUB, ir_op2(m, OP_MUL, w, x, 0), y, 0);
  *loss_out = ir_op2(m, OP_MUL, r, r, 0);
  ValueId gs = ir_op1(m, OP_BATCH_SUM, ir_op2(m, OP_MUL, ir_op2(m, OP_MUL, cst(2), r, 0), x, 0), 0);
  *w_out = w;
  return ir_op2(m, OP_DIV, gs, ir_leaf(m, OP_BATCH_SIZE, 0, 0), 0);
}

static const float RX[3] = {1, 2, -1}, RY[3] = {2, 3, 0.5};

static double grad_by_hand(double w) {
  double g = 0;
  for (int b = 0; b < 3; b++) g += 2 * (w * RX[b] - RY[b]) * RX[b];
  return g / 3;
}

static void test_sgd_momentum(void) {
  for (int f64 = 0; f64 < 2; f64++) {
    fresh();
    ValueId w, loss;
    ValueId g = regression(&w, &loss);
    uint32_t lr = add_sym(SYM_HYPER, "lr", type_scalar(DT_F32), INIT_NONE, 0);
    uint32_t mu = add_sym(SYM_HYPER, "momentum", type_scalar(DT_F32), INIT_NONE, 0);
    m->syms[lr].value = 0.1;
    m->syms[mu].value = 0.9;
    uint32_t vs = add_sym(SYM_STATE, "w/v", type_scalar(DT_F32), INIT_ZEROS, 0);
    m->syms[vs].owner = m->nodes[w].attr.sym;
    /* v' = momentum * v + g;  w' = w - lr * v' */
    ValueId v2 = ir_op2(m, OP_ADD, ir_op2(m, OP_MUL, ir_leaf(m, OP_HYPER, mu, 0), ir_leaf(m, OP_STATE, vs, 0), 0), g, 0);
    ValueId w2 = ir_op2(m, OP_SUB, w, ir_op2(m, OP_MUL, ir_leaf(m, OP_HYPER, lr, 0), v2, 0), 0);
    ir_add_output(m, OUT_LOSS, "loss", 0, loss);
    ir_add_output(m, OUT_UPDATE, "w", m->nodes[w].attr.sym, w2);
    ir_add_output(m, OUT_UPDATE, "w/v", vs, v2);
    Interp *it = interp_new(m, f64);
    interp_init(it, 0);
    double W = 0.5, V = 0, tol = f64 ? 1e-14 : 1e-6;
    for (int step = 1; step <= 3; step++) {
      double want_loss = 0;
      for (int b = 0; b < 3; b++) want_loss += (W * RX[b] - RY[b]) * (W * RX[b] - RY[b]);
      double G = grad_by_hand(W);
      V = 0.9 * V + G;
      W = W - 0.1 * V;
      double ls = 0;
      CHECK(interp_step(it, RX, RY, 3, &ls, NULL) == 0, "%s", interp_error(it));
      NEAR(ls, want_loss, tol);
      NEAR(interp_symbol(it, m->nodes[w].attr.sym)[0], W, tol);
      NEAR(interp_symbol(it, vs)[0], V, tol);
      CHECK(interp_get_step(it) == step + 1, "step counter %lld", (long long)interp_get_step(it));
    }
    /* Evaluation changes nothing. */
    double ls = 0;
    CHECK(interp_eval(it, RX, RY, 3, &ls, NULL) == 0, "eval");
    NEAR(interp_symbol(it, m->nodes[w].attr.sym)[0], W, tol);
    CHECK(interp_get_step(it) == 4, "eval does not step");
    interp_free(it);
  }
}

static void test_adam(void) {
  for (int f64 = 0; f64 < 2; f64++) {
    fresh();
    ValueId w, loss;
    ValueId g = regression(&w, &loss);
    const char *names[4] = {"lr", "beta1", "beta2", "eps"};
    double vals[4] = {0.01, 0.9, 0.999, 1e-8};
    ValueId hv[4];
    for (int i = 0; i < 4; i++) {
      uint32_t s = add_sym(SYM_HYPER, names[i], type_scalar(DT_F32), INIT_NONE, 0);
      m->syms[s].value = vals[i];
      hv[i] = ir_leaf(m, OP_HYPER, s, 0);
    }
    uint32_t ms = add_sym(SYM_STATE, "w/m", type_scalar(DT_F32), INIT_ZEROS, 0);
    uint32_t vs = add_sym(SYM_STATE, "w/v", type_scalar(DT_F32), INIT_ZEROS, 0);
    ValueId one = cst(1), step = ir_leaf(m, OP_STEP, 0, 0);
    /* m' = b1 m + (1 - b1) g;  v' = b2 v + (1 - b2) g g;
     * mhat = m' / (1 - b1^step);  vhat = v' / (1 - b2^step);
     * w' = w - lr mhat / (sqrt(vhat) + eps) */
    ValueId m2 = ir_op2(m, OP_ADD, ir_op2(m, OP_MUL, hv[1], ir_leaf(m, OP_STATE, ms, 0), 0),
                        ir_op2(m, OP_MUL, ir_op2(m, OP_SUB, one, hv[1], 0), g, 0), 0);
    ValueId v2 = ir_op2(m, OP_ADD, ir_op2(m, OP_MUL, hv[2], ir_leaf(m, OP_STATE, vs, 0), 0),
                        ir_op2(m, OP_MUL, ir_op2(m, OP_MUL, ir_op2(m, OP_SUB, one, hv[2], 0), g, 0), g, 0), 0);
    ValueId mhat = ir_op2(m, OP_DIV, m2, ir_op2(m, OP_SUB, one, ir_op2(m, OP_POW, hv[1], step, 0), 0), 0);
    ValueId vhat = ir_op2(m, OP_DIV, v2, ir_op2(m, OP_SUB, one, ir_op2(m, OP_POW, hv[2], step, 0), 0), 0);
    ValueId upd = ir_op2(m, OP_DIV, ir_op2(m, OP_MUL, hv[0], mhat, 0),
                         ir_op2(m, OP_ADD, ir_op1(m, OP_SQRT, vhat, 0), hv[3], 0), 0);
    ir_add_output(m, OUT_LOSS, "loss", 0, loss);
    ir_add_output(m, OUT_UPDATE, "w", m->nodes[w].attr.sym, ir_op2(m, OP_SUB, w, upd, 0));
    ir_add_output(m, OUT_UPDATE, "w/m", ms, m2);
    ir_add_output(m, OUT_UPDATE, "w/v", vs, v2);
    Interp *it = interp_new(m, f64);
    interp_init(it, 0);
    double W = 0.5, M = 0, V = 0, tol = f64 ? 1e-13 : 1e-5;
    for (int t = 1; t <= 3; t++) {
      double G = grad_by_hand(W);
      M = 0.9 * M + (1 - 0.9) * G;
      V = 0.999 * V + (1 - 0.999) * G * G;
      double Mh = M / (1 - pow(0.9, t)), Vh = V / (1 - pow(0.999, t));
      W = W - 0.01 * Mh / (sqrt(Vh) + 1e-8);
      CHECK(interp_step(it, RX, RY, 3, NULL, NULL) == 0, "%s", interp_error(it));
      NEAR(interp_symbol(it, m->nodes[w].attr.sym)[0], W, tol);
      NEAR(interp_symbol(it, ms)[0], M, tol);
      NEAR(interp_symbol(it, vs)[0], V, tol);
    }
    /* Adam's first step moves w by lr (times the gradient's sign). */
    CHECK(fabs(W - 0.5) < 0.031 && fabs(W - 0.5) > 0.029, "three steps of about lr: %g", W);
    interp_free(it);
  }
}

/* The loss and metric sums over a batch. */
static void test_sums(void) {
  fresh();
  ValueId x = input_x(0, 0, 0);
  ir_add_output(m, OUT_LOSS, "loss", 0, ir_op2(m, OP_MUL, x, x, 0));
  ir_add_output(m, OUT_METRIC, "pos", 0, ir_op2(m, OP_GT, x, cst(0), 0));
  ir_add_output(m, OUT_METRIC, "half", 0, retype(OP_BROADCAST, cst(0.5), ty(DT_F32, true, 0, 0, 0, 0)));
  Interp *it = interp_new(m, false);
  CHECK(interp_metric_count(it) == 2 && !strcmp(interp_metric_name(it, 1), "half"), "metrics");
  float xv[4] = {1, -2, 3, 0};
  double loss = 0, ms[2] = {0, 0};
  CHECK(interp_eval(it, xv, NULL, 4, &loss, ms) == 0, "%s", interp_error(it));
  CHECK(loss == 14 && ms[0] == 2 && ms[1] == 2, "sums %g %g %g", loss, ms[0], ms[1]);
  interp_free(it);
}

int main(void) {
  test_unary();
  test_binary_broadcast();
  test_where();
  test_int32();
  test_reduce();
  test_argmax();
  test_matmul();
  test_shape_ops();
  test_index_onehot();
  test_leaves_and_precision();
  test_sgd_momentum();
  test_adam();
  test_sums();
  ir_module_free(m);
  return check_done();
}
