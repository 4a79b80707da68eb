/* test/unit/test_autodiff.c - the autodiff pass (passes/autodiff.c) against
 * central finite differences.
 *
 * Each case builds a small module with the builder: an input x f32[B,4]
 * (sometimes a label y), some parameters, a loss, and for every parameter a
 * `grad` placeholder and the update output `p - 0.1 * grad`.  After
 * pass_autodiff and the verifier, a tiny f64 evaluator (below; only what the
 * IR's ops mean, written independently of the compiler's passes and
 * interpreter, with ir/ops.def's scalar semantics, op_eval) computes the
 * gradient node and the objective J = mean over the batch of the loss; every
 * parameter element is compared with (J(p+h) - J(p-h)) / 2h, h = 1e-6, and
 * must agree to a relative error (max |ad - fd| / max |fd|) below 1e-6.
 * Direct checks cover what finite differences cannot see: tie-breaking, the
 * absence of log nodes for constant exponents, zero gradients, and the
 * no-grad / no-loss paths.  The reference interpreter (codegen/interp, f64
 * mode) is a second oracle: on every gradient-checked case it must compute
 * the same loss and updates as the evaluator here.  Prints one line per
 * case; exits 1 on failure.
 */
#include "codegen/interp/interp.h"
#include "support/diag.h"
#include "ir/ir.h"
#include "passes/pass.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

enum { B = 3 }; /* samples in the test batch */

/* ---- a tiny f64 evaluator ------------------------------------------------------ */

/* A value of type t holds (batched ? B : 1) samples of numel(t) doubles. */
static int64_t count(const Type *t) { return (t->batched ? B : 1) * type_numel(t); }

/* Offset in operand a of element e (flat, per sample) of sample b of a
 * result of type r, under NumPy broadcasting of a's shape to r's. */
static int64_t bcast_off(const Type *a, const Type *r, int64_t b, int64_t e) {
  int64_t c[NNC_MAX_RANK], off = 0;
  for (int i = r->rank - 1; i >= 0; i--) {
    c[i] = e % r->dims[i];
    e /= r->dims[i];
  }
  int lead = r->rank - a->rank;
  for (int j = 0; j < a->rank; j++) off = off * a->dims[j] + (a->dims[j] == 1 ? 0 : c[j + lead]);
  return (a->batched ? b * type_numel(a) : 0) + off;
}

typedef struct Env {
  const Module *m;
  double **sym;  /* per symbol: its data (inputs B samples) */
  double **val;  /* per node: its value */
} Env;

static void eval_node(Env *env, ValueId id) {
  const Node *n = &env->m->nodes[id];
  const Type *t = &n->type;
  int64_t per = type_numel(t), nb = t->batched ? B : 1;
  double *out = calloc((size_t)(nb * per), sizeof *out);
  const double *a = n->nargs > 0 ? env->val[n->args[0]] : NULL;
  const double *bv = n->nargs > 1 ? env->val[n->args[1]] : NULL;
  const Type *ta = n->nargs > 0 ? &env->m->nodes[n->args[0]].type : NULL;
  const Type *tb = n->nargs > 1 ? &env->m->nodes[n->args[1]].type : NULL;
  env->val[id] = out;
  switch (n->op) {
  case OP_CONST: out[0] = n->attr.value; break;
  case OP_INPUT:
  case OP_PARAM:
  case OP_STATE: memcpy(out, env->sym[n->attr.sym], sizeof *out * (size_t)count(t)); break;
  case OP_HYPER: out[0] = env->m->syms[n->attr.sym].value; break;
  case OP_STEP: out[0] = 1; break;
  case OP_BATCH_SIZE: out[0] = B; break;
  case OP_GRAD: fprintf(stderr, "evaluator: a grad node survived autodiff\n"); exit(2);
  case OP_CAST:
    for (int64_t i = 0; i < nb * per; i++) out[i] = t->dtype == DT_I32 ? trunc(a[i]) : a[i];
    break;
  case OP_REDUCE_SUM:
  case OP_REDUCE_MAX:
    for (int64_t i = 0; i < nb * per; i++) out[i] = n->op == OP_REDUCE_SUM ? 0 : -INFINITY;
    for (int64_t b = 0; b < nb; b++)
      for (int64_t e = 0; e < type_numel(ta); e++) {
        int64_t rest = e, o = 0, mul = 1;
        for (int i = ta->rank - 1; i >= 0; i--) {
          int64_t c = rest % ta->dims[i];
          rest /= ta->dims[i];
          if (n->attr.axes >> i & 1) continue;
          o += c * mul;
          mul *= ta->dims[i];
        }
        double x = a[b * type_numel(ta) + e], *y = &out[b * per + o];
        *y = n->op == OP_REDUCE_SUM ? *y + x : fmax(*y, x);
      }
    break;
  case OP_ARGMAX: {
    int64_t len = ta->dims[ta->rank - 1];
    for (int64_t b = 0; b < nb; b++)
      for (int64_t o = 0; o < per; o++) {
        const double *row = &a[b * type_numel(ta) + o * len];
        int64_t best = 0;
        for (int64_t k = 1; k < len; k++)
          if (row[k] > row[best]) best = k;
        out[b * per + o] = (double)best;
      }
    break;
  }
  case OP_MATMUL: {
    /* vectors as one row (left) or one column (right): all four forms */
    int64_t kk = ta->dims[ta->rank - 1], rows = ta->rank == 2 ? ta->dims[0] : 1;
    int64_t cols = tb->rank == 2 ? tb->dims[1] : 1;
    for (int64_t b = 0; b < nb; b++) {
      const double *pa = a + (ta->batched ? b * type_numel(ta) : 0);
      const double *pb = bv + (tb->batched ? b * type_numel(tb) : 0);
      for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
          double s = 0;
          for (int64_t k = 0; k < kk; k++) s += pa[i * kk + k] * pb[k * cols + j];
          out[b * per + i * cols + j] = s;
        }
    }
    break;
  }
  case OP_TRANSPOSE:
    for (int64_t b = 0; b < nb; b++)
      for (int64_t e = 0; e < per; e++) {
        int64_t c[NNC_MAX_RANK], ci[NNC_MAX_RANK], rest = e, o = 0;
        for (int i = t->rank - 1; i >= 0; i--) {
          c[i] = rest % t->dims[i];
          rest /= t->dims[i];
        }
        for (int i = 0; i < t->rank; i++) ci[n->attr.perm[i]] = c[i];
        for (int i = 0; i < ta->rank; i++) o = o * ta->dims[i] + ci[i];
        out[b * per + e] = a[b * per + o];
      }
    break;
  case OP_RESHAPE: memcpy(out, a, sizeof *out * (size_t)(nb * per)); break;
  case OP_INDEX: {
    int64_t len = ta->dims[0];
    for (int64_t b = 0; b < nb; b++) {
      int64_t i = (int64_t)bv[tb->batched ? b : 0];
      if (i < 0 || i >= len) {
        fprintf(stderr, "evaluator: index %lld out of range\n", (long long)i);
        exit(2);
      }
      memcpy(&out[b * per], &a[(ta->batched ? b * type_numel(ta) : 0) + i * per], sizeof *out * (size_t)per);
    }
    break;
  }
  case OP_ONEHOT:
    for (int64_t b = 0; b < nb; b++) out[b * per + (int64_t)a[ta->batched ? b : 0]] = 1;
    break;
  case OP_BATCH_SUM:
    for (int64_t b = 0; b < B; b++)
      for (int64_t e = 0; e < per; e++) out[e] += a[b * per + e];
    break;
  default: /* elementwise (broadcast is the one-operand case) */
    for (int64_t b = 0; b < nb; b++)
      for (int64_t e = 0; e < per; e++) {
        double x[3] = {0, 0, 0};
        for (int k = 0; k < n->nargs; k++) {
          const Type *tk = &env->m->nodes[n->args[k]].type;
          x[k] = env->val[n->args[k]][bcast_off(tk, t, b, e)];
        }
        out[b * per + e] = n->op == OP_BROADCAST ? x[0] : op_eval(n->op, t->dtype, x[0], x[1], x[2]);
      }
  }
}

static void eval_all(Env *env) {
  for (ValueId v = 0; v < env->m->nnodes; v++) {
    free(env->val[v]);
    eval_node(env, v);
  }
}

/* J = mean over the batch of the loss output. */
static double objective(Env *env) {
  eval_all(env);
  for (uint32_t i = 0; i < env->m->noutputs; i++)
    if (env->m->outputs[i].kind == OUT_LOSS) {
      const double *l = env->val[env->m->outputs[i].value];
      double s = 0;
      for (int b = 0; b < B; b++) s += l[b];
      return s / B;
    }
  return NAN;
}

/* ---- building test modules ------------------------------------------------------ */

typedef struct T {
  Module *m;
  double lo, hi;       /* random data range */
  uint32_t params[16]; /* param symbols, in order */
  int nparams;
} T;

static T *t_new(double lo, double hi) {
  T *t = calloc(1, sizeof *t);
  t->m = ir_module_new();
  t->m->name = "test";
  t->lo = lo, t->hi = hi;
  return t;
}

static uint32_t t_sym(T *t, SymKind k, const char *name, DType dt, int rank, const int64_t *dims) {
  Symbol s;
  memset(&s, 0, sizeof s);
  s.kind = k;
  s.name = name;
  s.type = type_make(dt, rank, dims, k == SYM_INPUT || k == SYM_LABEL);
  if (k == SYM_PARAM) s.init.kind = INIT_ZEROS;
  if (k == SYM_LABEL) s.bound = rank == 0 ? 5 : 0;
  uint32_t id = ir_add_symbol(t->m, s);
  if (k == SYM_PARAM) t->params[t->nparams++] = id;
  return id;
}

/* An input f32[B, dims] / a label i32[B] with values in [0, 5) / a param. */
static ValueId t_input(T *t, const char *name, int rank, const int64_t *dims) {
  return ir_leaf(t->m, OP_INPUT, t_sym(t, SYM_INPUT, name, DT_F32, rank, dims), 0);
}
static ValueId t_label(T *t, const char *name) {
  return ir_leaf(t->m, OP_INPUT, t_sym(t, SYM_LABEL, name, DT_I32, 0, NULL), 0);
}
static ValueId t_param(T *t, const char *name, int rank, const int64_t *dims) {
  return ir_leaf(t->m, OP_PARAM, t_sym(t, SYM_PARAM, name, DT_F32, rank, dims), 0);
}

/* Shorthands over t->m. */
#define C(v) ir_const(t->m, DT_F32, (v), 0)
#define U(op, a) ir_op1(t->m, OP_##op, (a), 0)
#define BIN(op, a, b) ir_op2(t->m, OP_##op, (a), (b), 0)
#define ADD(a, b) BIN(ADD, a, b)
#define MUL(a, b) BIN(MUL, a, b)
#define DIMS(...) ((const int64_t[]){__VA_ARGS__})

/* Sums every per-sample axis: a per-sample scalar. */
static ValueId t_sum(T *t, ValueId v) {
  int r = t->m->nodes[v].type.rank;
  return r ? ir_reduce(t->m, OP_REDUCE_SUM, v, (1u << r) - 1, 0) : v;
}

static ValueId t_reshape(T *t, ValueId v, int rank, const int64_t *dims) {
  return ir_retype(t->m, OP_RESHAPE, v, type_make(DT_F32, rank, dims, false), 0);
}

/* Makes `loss` the loss (broadcast to f32[B] if needed) and adds, for every
 * param, `grad` and the update `p - 0.1 * grad`. */
static void t_finish(T *t, ValueId loss) {
  Module *m = t->m;
  if (!m->nodes[loss].type.batched) {
    Type bt = type_scalar(DT_F32);
    bt.batched = true;
    loss = ir_retype(m, OP_BROADCAST, loss, bt, 0);
  }
  ir_add_output(m, OUT_LOSS, "loss", 0, loss);
  for (int i = 0; i < t->nparams; i++) {
    uint32_t s = t->params[i];
    ValueId p = ir_leaf(m, OP_PARAM, s, 0), g = ir_leaf(m, OP_GRAD, s, 0);
    ir_add_output(m, OUT_UPDATE, m->syms[s].name, s, ir_op2(m, OP_SUB, p, ir_op2(m, OP_MUL, C(0.1), g, 0), 0));
  }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void) {
  rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
  return (double)(rng_state >> 11) / 9007199254740992.0;
}

static Env t_env(T *t) {
  Env env = {t->m, calloc(t->m->nsyms, sizeof(double *)), NULL};
  for (uint32_t s = 0; s < t->m->nsyms; s++) {
    const Symbol *sym = &t->m->syms[s];
    int64_t n = count(&sym->type);
    env.sym[s] = calloc((size_t)n, sizeof(double));
    for (int64_t i = 0; i < n; i++)
      env.sym[s][i] = sym->kind == SYM_LABEL ? floor(urand() * (double)sym->bound)
                      : sym->kind == SYM_INPUT ? (double)(float)(t->lo + (t->hi - t->lo) * urand()) /* fed as f32 */
                                               : t->lo + (t->hi - t->lo) * urand();
  }
  return env;
}

static void env_free(Env *env) {
  for (uint32_t s = 0; s < env->m->nsyms; s++) free(env->sym[s]);
  if (env->val)
    for (uint32_t v = 0; v < env->m->nnodes; v++) free(env->val[v]);
  free(env->sym);
  free(env->val);
}

static int count_op(const Module *m, Op op) {
  int k = 0;
  for (ValueId v = 0; v < m->nnodes; v++) k += m->nodes[v].op == op;
  return k;
}

/* The gradient node of param symbol s: the update p - 0.1 * G gives G. */
static ValueId grad_node(const Module *m, uint32_t s) {
  for (uint32_t i = 0; i < m->noutputs; i++)
    if (m->outputs[i].kind == OUT_UPDATE && m->outputs[i].sym == s) {
      const Node *upd = &m->nodes[m->outputs[i].value];
      return m->nodes[upd->args[1]].args[1];
    }
  return NO_VALUE;
}

/* Runs autodiff and the verifier on a finished module; false on failure. */
static bool t_autodiff(T *t, const char *name) {
  bool ok = pass_autodiff(t->m);
  CHECK(ok, "%s: pass_autodiff failed", name);
  if (!ok) return false;
  bool valid = ir_verify(t->m, "autodiff");
  CHECK(valid, "%s: the IR does not verify after autodiff", name);
  CHECK(count_op(t->m, OP_GRAD) == 0, "%s: grad nodes remain", name);
  return valid;
}

/* The interpreter (f64) on the same data must give the same loss and
 * update outputs as the evaluated env; returns the relative difference. */
static double interp_crosscheck(T *t, Env *env) {
  const Module *m = t->m;
  Interp *it = interp_new(m, true);
  interp_init(it, 1);
  int64_t xsym = ir_find_symbol(m, SYM_INPUT, "x"), ysym = ir_find_symbol(m, SYM_LABEL, "y");
  float xf[B * 64];
  int32_t yi[B];
  for (int64_t i = 0; xsym >= 0 && i < count(&m->syms[xsym].type); i++) xf[i] = (float)env->sym[xsym][i];
  for (int b = 0; ysym >= 0 && b < B; b++) yi[b] = (int32_t)env->sym[ysym][b];
  for (int i = 0; i < t->nparams; i++)
    memcpy(interp_symbol(it, t->params[i]), env->sym[t->params[i]],
           sizeof(double) * (size_t)type_numel(&m->syms[t->params[i]].type));
  double worst = INFINITY;
  if (interp_run(it, xf, ysym >= 0 ? yi : NULL, B, true) == 0) {
    worst = 0;
    eval_all(env);
    for (uint32_t o = 0; o < m->noutputs; o++) {
      const double *a = interp_output(it, o), *b = env->val[m->outputs[o].value];
      if (!a) worst = INFINITY; /* every output must have been evaluated */
      for (int64_t k = 0; a && k < count(&m->nodes[m->outputs[o].value].type); k++)
        worst = fmax(worst, fabs(a[k] - b[k]) / fmax(1, fabs(b[k])));
    }
  } else {
    printf("interp: %s\n", interp_error(it));
  }
  interp_free(it);
  return worst;
}

/* Autodiff, then every parameter's gradient against finite differences. */
static void gradcheck(T *t, const char *name) {
  if (!t_autodiff(t, name)) return;
  Env env = t_env(t);
  env.val = calloc(t->m->nnodes, sizeof(double *));
  const double h = 1e-6;
  double worst = 0;
  for (int i = 0; i < t->nparams; i++) {
    uint32_t s = t->params[i];
    ValueId g = grad_node(t->m, s);
    int64_t n = type_numel(&t->m->syms[s].type);
    eval_all(&env);
    double *ad = malloc(sizeof *ad * (size_t)n);
    memcpy(ad, env.val[g], sizeof *ad * (size_t)n);
    double maxdiff = 0, scale = 0;
    for (int64_t k = 0; k < n; k++) {
      double keep = env.sym[s][k];
      env.sym[s][k] = keep + h;
      double jp = objective(&env);
      env.sym[s][k] = keep - h;
      double jm = objective(&env);
      env.sym[s][k] = keep;
      double fd = (jp - jm) / (2 * h);
      maxdiff = fmax(maxdiff, fabs(ad[k] - fd));
      scale = fmax(scale, fabs(fd));
    }
    double rel = scale > 1e-8 ? maxdiff / scale : maxdiff;
    worst = fmax(worst, rel);
    CHECK(rel < 1e-6, "%s: @%s: maxdiff = %.3g, max |fd| = %.3g, relative error %.3g", name, t->m->syms[s].name,
          maxdiff, scale, rel);
    free(ad);
  }
  double icheck = interp_crosscheck(t, &env);
  CHECK(icheck < 1e-12, "%s: the interpreter disagrees with the evaluator by %.3g", name, icheck);
  printf("%-14s %d params, %4u nodes, worst relative error %.2g, interp agrees to %.2g\n", name, t->nparams,
         t->m->nnodes, worst, icheck);
  env_free(&env);
}

static void t_free(T *t) {
  ir_module_free(t->m);
  free(t);
}

/* ---- gradient-checked cases --------------------------------------------------------- */

/* Unary ops, cast, a comparison as a mask; batched x times an unbatched w.
 * (stop_gradient is checked in case_stop_gradient: finite differences see
 * through it.) */
static void case_unary(void) {
  T *t = t_new(-1, 1);
  ValueId x = t_input(t, "x", 1, DIMS(4)), w = t_param(t, "w", 1, DIMS(4));
  ValueId xw = MUL(x, w);
  ValueId e = ADD(U(NEG, U(TANH, xw)), U(EXP, MUL(xw, C(0.5))));
  e = ADD(e, U(LOG, ADD(U(ABS, w), C(1))));
  e = ADD(e, U(SQRT, ADD(MUL(w, w), C(1))));
  e = ADD(e, ir_retype(t->m, OP_CAST, xw, type_scalar(DT_F32), 0));
  e = ADD(e, U(ABS, BIN(SUB, x, w)));
  e = ADD(e, MUL(BIN(GT, w, C(0)), xw));
  t_finish(t, t_sum(t, e));
  gradcheck(t, "unary");
  t_free(t);
}

/* add/sub/mul/div with broadcasting: [B,4] with [4], [] and [3,4]. */
static void case_binary(void) {
  T *t = t_new(-1, 1);
  ValueId x = t_input(t, "x", 1, DIMS(4)), w = t_param(t, "w", 1, DIMS(4));
  ValueId s = t_param(t, "s", 0, NULL), v = t_param(t, "v", 2, DIMS(3, 4));
  ValueId c = t_param(t, "c", 2, DIMS(3, 1));
  ValueId e = BIN(DIV, MUL(BIN(SUB, x, w), s), ADD(v, C(3)));  /* [B,3,4] */
  e = ADD(e, BIN(DIV, c, ADD(MUL(x, x), C(1))));            /* [3,1] / [B,4] */
  e = ADD(e, BIN(SUB, s, MUL(c, w)));
  t_finish(t, t_sum(t, e));
  gradcheck(t, "binary");
  t_free(t);
}

/* pow with constant exponents (2 and 3) and with a parameter exponent. */
static void case_pow(void) {
  T *t = t_new(0.5, 1.5);
  ValueId x = t_input(t, "x", 1, DIMS(4)), w = t_param(t, "w", 1, DIMS(4));
  ValueId k = t_param(t, "k", 0, NULL);
  ValueId e = ADD(BIN(POW, MUL(x, w), C(3)), MUL(BIN(POW, w, C(2)), x));
  e = ADD(e, BIN(POW, ADD(x, w), k));
  t_finish(t, t_sum(t, e));
  gradcheck(t, "pow");
  t_free(t);

  /* A constant exponent must not produce a log node. */
  t = t_new(0.5, 1.5);
  x = t_input(t, "x", 1, DIMS(4)), w = t_param(t, "w", 1, DIMS(4));
  t_finish(t, t_sum(t, MUL(BIN(POW, w, C(3)), x)));
  if (t_autodiff(t, "pow-const")) CHECK(count_op(t->m, OP_LOG) == 0, "pow-const: found a log node");
  t_free(t);
}

/* max/min (relu-like with a constant, batched with unbatched, two params). */
static void case_maxmin(void) {
  T *t = t_new(-1, 1);
  ValueId x = t_input(t, "x", 1, DIMS(4)), w = t_param(t, "w", 1, DIMS(4)), v = t_param(t, "v", 1, DIMS(4));
  ValueId s = t_param(t, "s", 0, NULL);
  ValueId e = ADD(BIN(MAX, MUL(x, w), C(0)), BIN(MIN, x, v));
  e = ADD(e, MUL(BIN(MAX, w, v), x));
  e = ADD(e, BIN(MIN, MUL(x, s), w));
  t_finish(t, t_sum(t, e));
  gradcheck(t, "max/min");
  t_free(t);
}

/* where: both branches, broadcast branches, a condition from a param. */
static void case_where(void) {
  T *t = t_new(-1, 1);
  ValueId x = t_input(t, "x", 1, DIMS(4)), w = t_param(t, "w", 1, DIMS(4)), s = t_param(t, "s", 0, NULL);
  ValueId e = ir_op3(t->m, OP_WHERE, BIN(GT, x, C(0)), MUL(x, w), BIN(SUB, MUL(w, w), x), 0);
  e = ADD(e, ir_op3(t->m, OP_WHERE, BIN(LT, w, C(0)), s, MUL(x, s), 0));
  t_finish(t, t_sum(t, e));
  gradcheck(t, "where");
  t_free(t);
}

/* reduce_sum and reduce_max over various axes, ranks 2 and 3. */
static void case_reduce(void) {
  T *t = t_new(-1, 1);
  ValueId x = t_input(t, "x", 1, DIMS(4)), w = t_param(t, "W", 2, DIMS(3, 4));
  ValueId p = t_param(t, "P", 3, DIMS(2, 3, 4));
  ValueId xw = MUL(x, w);                                                    /* [B,3,4] */
  ValueId e = ir_reduce(t->m, OP_REDUCE_MAX, ir_reduce(t->m, OP_REDUCE_SUM, xw, 2, 0), 1, 0);
  e = ADD(e, t_sum(t, U(TANH, ir_reduce(t->m, OP_REDUCE_MAX, xw, 1, 0))));
  ValueId px = MUL(p, x);                                                    /* [B,2,3,4] */
  e = ADD(e, t_sum(t, MUL(ir_reduce(t->m, OP_REDUCE_MAX, px, 5, 0), C(0.5))));
  e = ADD(e, t_sum(t, U(TANH, ir_reduce(t->m, OP_REDUCE_SUM, px, 2, 0))));
  e = ADD(e, U(TANH, ir_reduce(t->m, OP_REDUCE_MAX, p, 7, 0)));
  t_finish(t, e);
  gradcheck(t, "reduce");
  t_free(t);
}

/* Every matmul form, with batched and unbatched operands on either side. */
static void case_matmul(void) {
  T *t = t_new(-1, 1);
  ValueId x = t_input(t, "x", 1, DIMS(4));
  ValueId w1 = t_param(t, "W1", 2, DIMS(4, 3)), u = t_param(t, "u", 1, DIMS(4));
  ValueId w2 = t_param(t, "W2", 2, DIMS(3, 4)), w3 = t_param(t, "W3", 2, DIMS(2, 3));
  ValueId w4 = t_param(t, "W4", 2, DIMS(3, 2)), v2 = t_param(t, "v2", 1, DIMS(2));
  ValueId x22 = t_reshape(t, x, 2, DIMS(2, 2)), x42 = t_reshape(t, MUL(x, x), 2, DIMS(2, 2));
  ValueId h1 = BIN(MATMUL, x, w1);                 /* [n]@[n,m], batched a */
  ValueId h2 = BIN(MATMUL, u, w1);                 /* [n]@[n,m], both params */
  ValueId h3 = BIN(MATMUL, w2, x);                 /* [k,n]@[n], batched b */
  ValueId h7 = BIN(MATMUL, w2, u);                 /* [k,n]@[n], both params */
  ValueId h4 = BIN(MATMUL, x22, w3);               /* [k,n]@[n,m], batched a */
  ValueId h5 = BIN(MATMUL, w4, x42);               /* [k,n]@[n,m], batched b */
  ValueId h6 = BIN(MATMUL, x, u);                  /* [n]@[n] */
  ValueId h8 = BIN(MATMUL, x22, v2);               /* [k,n]@[n], batched a */
  ValueId h9 = BIN(MATMUL, v2, x22);               /* [n]@[n,m], batched b */
  ValueId h10 = BIN(MATMUL, w3, BIN(MATMUL, w2, w1)); /* [k,n]@[n,m], both params */
  ValueId e = t_sum(t, U(TANH, ADD(h1, h2)));
  e = ADD(e, t_sum(t, MUL(h3, h7)));
  e = ADD(e, t_sum(t, U(TANH, h4)));
  e = ADD(e, t_sum(t, MUL(h5, h5)));
  e = ADD(e, h6);
  e = ADD(e, t_sum(t, MUL(h8, h9)));
  e = ADD(e, t_sum(t, MUL(U(TANH, h10), h4)));
  t_finish(t, e);
  gradcheck(t, "matmul");
  t_free(t);
}

/* transpose (rank 2 and 3), reshape, explicit broadcast (with and without
 * adding the batch axis). */
static void case_shape(void) {
  T *t = t_new(-1, 1);
  ValueId x = t_input(t, "x", 1, DIMS(4));
  ValueId p = t_param(t, "P", 3, DIMS(2, 3, 4)), w = t_param(t, "W", 2, DIMS(2, 2));
  ValueId v = t_param(t, "v", 2, DIMS(1, 4)), s = t_param(t, "s", 0, NULL), q = t_param(t, "Q", 2, DIMS(3, 4));
  static const uint8_t perm3[NNC_MAX_RANK] = {2, 0, 1}, perm2[NNC_MAX_RANK] = {1, 0};
  ValueId pt = ir_transpose(t->m, p, perm3, 0);                          /* [4,2,3] */
  ValueId e = t_sum(t, U(TANH, MUL(pt, ir_retype(t->m, OP_RESHAPE, x, type_make(DT_F32, 3, DIMS(4, 1, 1), true), 0))));
  e = ADD(e, t_sum(t, MUL(t_reshape(t, w, 1, DIMS(4)), x)));
  ValueId vb = ir_retype(t->m, OP_BROADCAST, v, type_make(DT_F32, 2, DIMS(3, 4), false), 0);
  e = ADD(e, t_sum(t, U(TANH, MUL(MUL(vb, q), x))));
  ValueId sb = ir_retype(t->m, OP_BROADCAST, s, type_make(DT_F32, 1, DIMS(4), true), 0);
  e = ADD(e, t_sum(t, MUL(sb, U(TANH, x))));
  e = ADD(e, t_sum(t, MUL(ir_transpose(t->m, q, perm2, 0), U(TANH, t_reshape(t, MUL(x, x), 2, DIMS(4, 1))))));
  t_finish(t, e);
  gradcheck(t, "shape");
  t_free(t);
}

/* index: cross-entropy of logits (the stdlib's form), an embedding table
 * indexed by the label (rank 2 and 3), a constant index. */
static void case_index(void) {
  T *t = t_new(-1, 1);
  ValueId x = t_input(t, "x", 1, DIMS(4)), y = t_label(t, "y");
  ValueId w = t_param(t, "W", 2, DIMS(4, 5)), b = t_param(t, "b", 1, DIMS(5));
  ValueId emb = t_param(t, "E", 2, DIMS(5, 3)), t3 = t_param(t, "T", 3, DIMS(5, 2, 3));
  ValueId logits = ADD(BIN(MATMUL, x, w), b);
  ValueId mx = U(STOP_GRAD, ir_reduce(t->m, OP_REDUCE_MAX, logits, 1, 0));
  ValueId lse = ADD(mx, U(LOG, ir_reduce(t->m, OP_REDUCE_SUM, U(EXP, BIN(SUB, logits, mx)), 1, 0)));
  ValueId e = U(NEG, BIN(INDEX, BIN(SUB, logits, lse), y));
  e = ADD(e, t_sum(t, U(TANH, BIN(INDEX, emb, y))));
  e = ADD(e, t_sum(t, MUL(BIN(INDEX, t3, y), BIN(INDEX, emb, y))));  /* [2,3] * [3] */
  e = ADD(e, t_sum(t, MUL(BIN(INDEX, emb, ir_const(t->m, DT_I32, 2, 0)), U(TANH, BIN(INDEX, t3, y)))));
  t_finish(t, e);
  gradcheck(t, "index");
  t_free(t);
}

/* batch_sum inside the loss; two param nodes of one symbol; a param that
 * does not influence the loss (zero gradient). */
static void case_batch_sum(void) {
  T *t = t_new(-1, 1);
  ValueId x = t_input(t, "x", 1, DIMS(4)), w = t_param(t, "w", 1, DIMS(4));
  t_param(t, "z", 1, DIMS(2));
  uint32_t zsym = t->params[1];
  ValueId s = ir_op1(t->m, OP_BATCH_SUM, MUL(x, w), 0);          /* [4], unbatched */
  ValueId w_again = ir_leaf(t->m, OP_PARAM, t->params[0], 0);
  ValueId e = ADD(t_sum(t, MUL(x, U(TANH, s))), t_sum(t, MUL(U(TANH, w_again), x)));
  t_finish(t, e);
  gradcheck(t, "batch_sum");
  /* z: exactly zero */
  Env env = t_env(t);
  env.val = calloc(t->m->nnodes, sizeof(double *));
  eval_all(&env);
  const double *gz = env.val[grad_node(t->m, zsym)];
  CHECK(gz[0] == 0 && gz[1] == 0, "unused param: gradient %g %g, expected 0", gz[0], gz[1]);
  env_free(&env);
  t_free(t);
}

/* ---- direct checks --------------------------------------------------------------- */

/* Evaluates the gradient of param symbol index `pi` with given values. */
static void grad_with(T *t, const double *const *values, int pi, double *out) {
  Env env = t_env(t);
  for (int i = 0; i < t->nparams; i++)
    memcpy(env.sym[t->params[i]], values[i], sizeof(double) * (size_t)type_numel(&t->m->syms[t->params[i]].type));
  env.val = calloc(t->m->nnodes, sizeof(double *));
  eval_all(&env);
  uint32_t s = t->params[pi];
  memcpy(out, env.val[grad_node(t->m, s)], sizeof(double) * (size_t)type_numel(&t->m->syms[s].type));
  env_free(&env);
}

/* Ties: max/min give the gradient to the second operand (relu'(0) = 0);
 * reduce_max splits it equally among tied maxima. */
static void case_ties(void) {
  T *t = t_new(-1, 1);
  t_input(t, "x", 1, DIMS(4));
  ValueId a = t_param(t, "a", 1, DIMS(3)), b = t_param(t, "b", 1, DIMS(3)), w = t_param(t, "w", 1, DIMS(4));
  ValueId e = ADD(t_sum(t, BIN(MAX, a, b)), t_sum(t, BIN(MAX, a, C(0))));
  e = ADD(e, MUL(t_sum(t, BIN(MIN, b, a)), C(10)));
  e = ADD(e, ir_reduce(t->m, OP_REDUCE_MAX, w, 1, 0));
  t_finish(t, e);
  if (!t_autodiff(t, "ties")) {
    t_free(t);
    return;
  }
  const double va[3] = {0, 1, 2}, vb[3] = {0, 1, -1}, vw[4] = {1, 3, 3, 2};
  const double *vals[3] = {va, vb, vw};
  double ga[3], gb[3], gw[4];
  grad_with(t, vals, 0, ga);
  grad_with(t, vals, 1, gb);
  grad_with(t, vals, 2, gw);
  /* a: max(a,b) ties -> b; max(a,0): a[0] = 0 ties -> 0, a[1..2] > 0 -> 1;
   *    min(b,a) ties -> a (second): 10 each at 0, 1; a[2] = 2 > b[2] -> 0 */
  CHECK(ga[0] == 10 && ga[1] == 11 && ga[2] == 2, "ties: grad a = %g %g %g, expected 10 11 2", ga[0], ga[1], ga[2]);
  /* b: max ties -> 1 at 0, 1; b[2] = -1 < a[2] -> 0; min: b[2] smaller -> 10 */
  CHECK(gb[0] == 1 && gb[1] == 1 && gb[2] == 10, "ties: grad b = %g %g %g, expected 1 1 10", gb[0], gb[1], gb[2]);
  CHECK(gw[0] == 0 && gw[1] == 0.5 && gw[2] == 0.5 && gw[3] == 0, "ties: grad w = %g %g %g %g, expected 0 .5 .5 0",
        gw[0], gw[1], gw[2], gw[3]);
  printf("%-14s max/min ties -> second operand, reduce_max ties share\n", "ties");
  t_free(t);
}

/* A dense layer trained by sgd: the structure the frontend produces. */
static void case_dense(void) {
  T *t = t_new(-1, 1);
  ValueId x = t_input(t, "x", 1, DIMS(4));
  ValueId w = t_param(t, "h.w", 2, DIMS(4, 3)), b = t_param(t, "h.b", 1, DIMS(3));
  ValueId h = BIN(MAX, ADD(BIN(MATMUL, x, w), b), C(0));
  ValueId d = BIN(SUB, t_sum(t, h), C(1));
  t_finish(t, MUL(d, d));
  long before = nnc_stat_get("autodiff", "params");
  gradcheck(t, "dense");
  CHECK(nnc_stat_get("autodiff", "params") == before + 2, "dense: params stat %ld",
        nnc_stat_get("autodiff", "params") - before);
  CHECK(count_op(t->m, OP_BATCH_SUM) >= 2, "dense: expected batch_sum for the weight and the bias");
  t_free(t);
}

/* stop_gradient: loss = sum(w x + stop_gradient(w w) x) has gradient mean(x),
 * not mean(x + 2 w x). */
static void case_stop_gradient(void) {
  T *t = t_new(-1, 1);
  ValueId x = t_input(t, "x", 1, DIMS(4)), w = t_param(t, "w", 1, DIMS(4));
  t_finish(t, t_sum(t, ADD(MUL(w, x), MUL(U(STOP_GRAD, MUL(w, w)), x))));
  if (!t_autodiff(t, "stop_gradient")) {
    t_free(t);
    return;
  }
  Env env = t_env(t);
  env.val = calloc(t->m->nnodes, sizeof(double *));
  eval_all(&env);
  const double *g = env.val[grad_node(t->m, t->params[0])];
  double maxdiff = 0;
  for (int k = 0; k < 4; k++) {
    double mean = 0;
    for (int b = 0; b < B; b++) mean += env.sym[0][b * 4 + k] / B;
    maxdiff = fmax(maxdiff, fabs(g[k] - mean));
  }
  CHECK(maxdiff < 1e-12, "stop_gradient: maxdiff = %g from mean(x)", maxdiff);
  printf("%-14s gradient blocked, maxdiff = %.2g\n", "stop_gradient", maxdiff);
  env_free(&env);
  t_free(t);
}

/* No grad nodes: the module is left as it is. */
static void case_no_grads(void) {
  T *t = t_new(-1, 1);
  ValueId x = t_input(t, "x", 1, DIMS(4));
  ir_add_output(t->m, OUT_LOSS, "loss", 0, t_sum(t, MUL(x, x)));
  uint32_t n = t->m->nnodes;
  CHECK(pass_autodiff(t->m), "no-grads: pass failed");
  CHECK(t->m->nnodes == n, "no-grads: the module changed (%u -> %u nodes)", n, t->m->nnodes);
  t_free(t);
}

/* Grad nodes but no loss: a diagnostic, and false. */
static void case_no_loss(void) {
  T *t = t_new(-1, 1);
  ValueId w = t_param(t, "w", 1, DIMS(4));
  (void)w;
  uint32_t s = t->params[0];
  ValueId p = ir_leaf(t->m, OP_PARAM, s, 0), g = ir_leaf(t->m, OP_GRAD, s, 0);
  ir_add_output(t->m, OUT_UPDATE, "w", s, ir_op2(t->m, OP_SUB, p, g, 0));
  int errors = diag_error_count();
  fprintf(stderr, "(expected:) ");
  CHECK(!pass_autodiff(t->m), "no-loss: pass succeeded");
  CHECK(diag_error_count() == errors + 1, "no-loss: expected one error");
  t_free(t);
}

/* A loss computed from a grad node: a diagnostic, and the module unchanged. */
static void case_loss_uses_grad(void) {
  T *t = t_new(-1, 1);
  ValueId x = t_input(t, "x", 1, DIMS(4));
  t_param(t, "w", 1, DIMS(4));
  ValueId g = ir_leaf(t->m, OP_GRAD, t->params[0], 0);
  t_finish(t, t_sum(t, MUL(x, g)));
  uint32_t n = t->m->nnodes;
  int errors = diag_error_count();
  fprintf(stderr, "(expected:) ");
  CHECK(!pass_autodiff(t->m), "loss-uses-grad: pass succeeded");
  CHECK(diag_error_count() == errors + 1, "loss-uses-grad: expected one error");
  CHECK(t->m->nnodes == n && count_op(t->m, OP_GRAD) == 2, "loss-uses-grad: the module changed");
  t_free(t);
}

int main(void) {
  diag_init(&nnc_diag);
  case_unary();
  case_binary();
  case_pow();
  case_maxmin();
  case_where();
  case_reduce();
  case_matmul();
  case_shape();
  case_index();
  case_batch_sum();
  case_ties();
  case_stop_gradient();
  case_dense();
  case_no_grads();
  case_no_loss();
  case_loss_uses_grad();
  return check_done();
}
