/* passes/fold.c - constant folding.
 *
 * Requires: a verified module.  Guarantees: every elementwise op whose
 * operands are all `const` scalars (rank 0, unbatched) is replaced by one
 * `const` holding its value, computed the way the target computes it
 * (op_eval, ir/ops.def's semantics):
 *   - f32 operands are read as floats, computed in double and rounded
 *     through (float): + - * / sqrt give exactly the f32 result, the math
 *     functions the double function's value rounded to f32;
 *   - i32 arithmetic wraps modulo 2^32 like the code we emit; division by
 *     zero (the interpreter reports it) and INT32_MIN / -1 are left
 *     unfolded;
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

/* Whether every target computes op on these operands exactly as op_eval
 * does, so the value may be written into the program.  Left alone: an i32
 * division by zero (the interpreter reports it) or INT32_MIN / -1, and
 * what depends on how a target treats NaN and signed zeros: max/min with a
 * NaN or of +0 and -0, the sign of NaN, where with a NaN condition, f32 ->
 * i32 casts of NaN or out-of-range values. */
static bool portable(Op op, DType dt, const double v[]) {
  double a = v[0], b = v[1];
  switch (op) {
  case OP_DIV: return dt != DT_I32 || (b != 0 && !(a == INT32_MIN && b == -1));
  case OP_MAX:
  case OP_MIN: return dt == DT_I32 || !(isnan(a) || isnan(b) || (a == b && signbit(a) != signbit(b)));
  case OP_SIGN:
  case OP_WHERE: return !isnan(a);
  case OP_CAST: return dt == DT_F32 || !(isnan(a) || a >= 2147483648.0 || a < -2147483648.0);
  default: return true;
  }
}

/* The value of node n, whose operands are all constants, or false.
 * Operands are read in their dtype (f32 ones as floats); an f32 result is
 * rounded through float, as the target computes it. */
static bool fold_node(const Module *m, const Node *n, double *out) {
  if (!(ir_ops[n->op].flags & OPF_ELEMWISE)) return false;
  double v[NNC_MAX_ARGS] = {0, 0, 0};
  for (int i = 0; i < n->nargs; i++) {
    if (!const_of(m, n->args[i], &v[i])) return false;
    int32_t k;
    if (m->nodes[n->args[i]].type.dtype == DT_F32) v[i] = (float)v[i];
    else if (!as_i32(v[i], &k)) return false;
  }
  DType dt = n->type.dtype;
  if (!portable(n->op, dt, v)) return false;
  double r = op_eval(n->op, dt, v[0], v[1], v[2]);
  *out = dt == DT_F32 ? (double)(float)r : r;
  return true;
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
