/* passes/fold.c - constant folding.
 *
 * Requires: a verified module.  Guarantees: every elementwise op whose
 * operands are all `const` scalars (rank 0, unbatched) is replaced by one
 * `const` holding its value, computed the way the target computes it:
 *   - f32 operands are read as floats, computed in double and rounded
 *     through (float): + - * / sqrt give exactly the f32 result, exp, log,
 *     tanh and pow the double function's value rounded to f32;
 *   - i32 arithmetic wraps modulo 2^32 like the code we emit; division by
 *     zero and INT32_MIN / -1 are left unfolded (undefined in C);
 *   - cases whose result depends on how a backend treats NaN or signed
 *     zeros (max/min with a NaN or of +0 and -0, sign of NaN, where with a
 *     NaN condition, f32 -> i32 casts of NaN or out-of-range values) are
 *     left unfolded.
 * Folding is transitive (operands are rewritten first).  Constants are
 * scalars only, so a broadcast of a constant stays a broadcast, and ops
 * that need an axis (reductions, matmul, index, ...) never see one.  The
 * folded-away operands stay in the graph for dce.  Symbols and outputs are
 * untouched (outputs are remapped).
 *
 * Statistics: fold.folded (nodes replaced by a constant).
 */
#include "passes/pass.h"
#include "passes/rewrite.h"

#include <math.h>
#include <stdint.h>

/* The scalar constant behind new value v, or false. */
static bool const_of(const Module *m, ValueId v, double *out) {
  const Node *n = &m->nodes[v];
  if (n->op != OP_CONST || n->type.rank != 0 || n->type.batched) return false;
  *out = n->attr.value;
  return true;
}

/* An i32 constant's value as int32_t (the verifier keeps them integral and
 * in range; anything else is left alone). */
static bool as_i32(double v, int32_t *out) {
  if (!(v >= INT32_MIN && v <= INT32_MAX) || v != floor(v)) return false;
  *out = (int32_t)v;
  return true;
}

static int32_t wrap(uint32_t u) { return (int32_t)u; /* modulo 2^32 (GCC, Clang) */ }

/* f32 op: a, b are the operand values as floats; *out the result (f32 ops
 * rounded through (float), comparisons 1 or 0). */
static bool fold_f32(Op op, float a, float b, double *out) {
  double r;
  switch (op) {
  case OP_NEG: r = -a; break;
  case OP_EXP: r = exp(a); break;
  case OP_LOG: r = log(a); break;
  case OP_SQRT: r = sqrt(a); break;
  case OP_TANH: r = tanh(a); break;
  case OP_ABS: r = fabs(a); break;
  case OP_SIGN:
    if (isnan(a)) return false;
    r = (a > 0) - (a < 0);
    break;
  case OP_STOP_GRAD: r = a; break;
  case OP_ADD: r = (double)a + b; break;
  case OP_SUB: r = (double)a - b; break;
  case OP_MUL: r = (double)a * b; break;
  case OP_DIV: r = (double)a / b; break;
  case OP_POW: r = pow(a, b); break;
  case OP_MAX:
  case OP_MIN:
    if (isnan(a) || isnan(b) || (a == b && signbit(a) != signbit(b))) return false;
    r = (op == OP_MAX) == (a > b) ? a : b;
    break;
  case OP_EQ: r = a == b; break;
  case OP_NE: r = a != b; break;
  case OP_LT: r = a < b; break;
  case OP_LE: r = a <= b; break;
  case OP_GT: r = a > b; break;
  case OP_GE: r = a >= b; break;
  default: return false;
  }
  *out = (float)r;
  return true;
}

/* i32 op with C semantics, wrapping on overflow. */
static bool fold_i32(Op op, int32_t a, int32_t b, double *out) {
  int32_t r;
  switch (op) {
  case OP_NEG: r = wrap(0u - (uint32_t)a); break;
  case OP_ABS: r = a < 0 ? wrap(0u - (uint32_t)a) : a; break;
  case OP_SIGN: r = (a > 0) - (a < 0); break;
  case OP_STOP_GRAD: r = a; break;
  case OP_ADD: r = wrap((uint32_t)a + (uint32_t)b); break;
  case OP_SUB: r = wrap((uint32_t)a - (uint32_t)b); break;
  case OP_MUL: r = wrap((uint32_t)a * (uint32_t)b); break;
  case OP_DIV:
    if (b == 0 || (a == INT32_MIN && b == -1)) return false;
    r = a / b;
    break;
  case OP_MAX: r = a > b ? a : b; break;
  case OP_MIN: r = a < b ? a : b; break;
  case OP_EQ: r = a == b; break;
  case OP_NE: r = a != b; break;
  case OP_LT: r = a < b; break;
  case OP_LE: r = a <= b; break;
  case OP_GT: r = a > b; break;
  case OP_GE: r = a >= b; break;
  default: return false;
  }
  *out = r;
  return true;
}

/* cast from dtype `from` to `to`. */
static bool fold_cast(DType from, DType to, double v, double *out) {
  if (from == DT_I32) {
    int32_t i;
    if (!as_i32(v, &i)) return false;
    *out = to == DT_F32 ? (double)(float)i : i;
    return true;
  }
  float f = (float)v;
  if (to == DT_F32) {
    *out = f;
    return true;
  }
  if (isnan(f) || (double)f >= 2147483648.0 || (double)f < -2147483648.0) return false;
  *out = (double)(int32_t)f; /* toward zero */
  return true;
}

/* The value of node n, whose operands are all constants, or false. */
static bool fold_node(const Module *m, const Node *n, double *out) {
  double v[NNC_MAX_ARGS] = {0, 0, 0};
  for (int i = 0; i < n->nargs; i++)
    if (!const_of(m, n->args[i], &v[i])) return false;
  DType dt = n->nargs ? m->nodes[n->args[0]].type.dtype : n->type.dtype;
  if (n->op == OP_CAST) return fold_cast(dt, n->type.dtype, v[0], out);
  if (n->op == OP_WHERE) {
    if (isnan((float)v[0])) return false;
    *out = (float)v[0] != 0 ? v[1] : v[2];
    return true;
  }
  if (!(ir_ops[n->op].flags & OPF_ELEMWISE) || n->nargs < 1 || n->nargs > 2) return false;
  if (dt == DT_F32) return fold_f32(n->op, (float)v[0], (float)v[1], out);
  int32_t a, b = 0;
  if (!as_i32(v[0], &a) || (n->nargs == 2 && !as_i32(v[1], &b))) return false;
  return fold_i32(n->op, a, b, out);
}

static ValueId fold_one(Rewrite *rw, ValueId id, Node *n, void *ctx) {
  (void)id;
  long *folded = ctx;
  double value;
  if (n->nargs == 0 || n->type.rank != 0 || n->type.batched || !fold_node(rw->m, n, &value))
    return rewrite_keep(rw, n);
  ++*folded;
  return ir_const(rw->m, n->type.dtype, value, n->loc);
}

bool pass_fold(Module *m) {
  long folded = 0;
  rewrite_graph(m, fold_one, &folded);
  nnc_stat_add("fold", "folded", folded);
  return true;
}
