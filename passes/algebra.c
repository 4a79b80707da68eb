/* passes/algebra.c - algebraic identities that do not change any value.
 *
 * Requires: a verified module.  Guarantees: these nodes are replaced by an
 * operand (or by `broadcast` of it where the result type is bigger than the
 * operand's, so every use keeps its type):
 *
 *     x + 0, 0 + x, x - 0, x * 1, 1 * x, x / 1, x ^ 1      -> x
 *     neg(neg(x))                                          -> x
 *     stop_gradient(stop_gradient(x))                      -> stop_gradient(x)
 *     reshape / broadcast to x's own type, cast to x's dtype,
 *     transpose by the identity permutation                -> x
 *     reshape(reshape(x)), broadcast(broadcast(x))         -> one reshape / broadcast
 *     transpose(transpose(x))                              -> one transpose (or x)
 *     where(c, x, x)                                       -> x
 *     where(k, x, y), k a constant (not NaN)               -> x or y
 *
 * where "0" and "1" are a `const` or a broadcast of one.  Each identity is
 * exact in IEEE arithmetic for every input, NaN and infinities included,
 * with one deliberate exception shared with XLA and most ML compilers:
 * x + 0 and x - (-0) turn a -0 result into +0, so dropping them may change
 * the sign of a zero (never a magnitude; gradients start from `0 + g`, which
 * is why this one matters).  x * 0 -> 0 is NOT done: NaN * 0 and inf * 0 are
 * NaN.  The replaced nodes stay in the graph for dce.
 *
 * Statistics: algebra.simplified (nodes replaced).
 */
#include "passes/pass.h"
#include "passes/rewrite.h"

#include <math.h>
#include <string.h>

/* The scalar constant behind v: a const, or a broadcast of one. */
static bool splat_of(const Module *m, ValueId v, double *out) {
  const Node *n = &m->nodes[v];
  if (n->op == OP_BROADCAST) n = &m->nodes[n->args[0]];
  if (n->op != OP_CONST) return false;
  *out = n->attr.value;
  return true;
}

static bool is_splat(const Module *m, ValueId v, double k) {
  double c;
  return splat_of(m, v, &c) && c == k; /* 0 matches -0 too; NaN nothing */
}

/* y as a value of type t through `op` (reshape or broadcast): y itself when
 * the types are equal, else a new node; NO_VALUE when the op cannot do it. */
static ValueId retype(Module *m, Op op, ValueId y, const Type *t, uint32_t loc) {
  if (type_equal(&m->nodes[y].type, t)) return y;
  if (m->nodes[y].type.dtype != t->dtype) return NO_VALUE;
  Node attrs;
  memset(&attrs, 0, sizeof attrs);
  attrs.type = *t;
  char err[256];
  return ir_build(m, op, &y, 1, &attrs, loc, err, sizeof err);
}

/* x standing in for node n: x, or x broadcast to n's type. */
static ValueId as_result(Module *m, ValueId x, const Node *n) {
  return retype(m, OP_BROADCAST, x, &n->type, n->loc);
}

/* transpose(transpose(y, inner), outer): result axis i is y's axis
 * inner[outer[i]]. */
static ValueId compose_transpose(Module *m, const Node *n, const Node *inner) {
  uint8_t perm[NNC_MAX_RANK];
  bool identity = true;
  for (int i = 0; i < NNC_MAX_RANK; i++) {
    perm[i] = i < n->type.rank ? inner->attr.perm[n->attr.perm[i]] : (uint8_t)i;
    identity &= perm[i] == i;
  }
  ValueId y = inner->args[0];
  if (identity) return type_equal(&m->nodes[y].type, &n->type) ? y : NO_VALUE;
  return ir_transpose(m, y, perm, n->loc);
}

/* What node n (operands already rewritten) simplifies to, or NO_VALUE. */
static ValueId simplify(Module *m, const Node *n) {
  ValueId a = n->nargs > 0 ? n->args[0] : NO_VALUE, b = n->nargs > 1 ? n->args[1] : NO_VALUE;
  const Node *an = a != NO_VALUE ? &m->nodes[a] : NULL;
  switch (n->op) {
  case OP_ADD:
    if (is_splat(m, b, 0)) return as_result(m, a, n);
    if (is_splat(m, a, 0)) return as_result(m, b, n);
    return NO_VALUE;
  case OP_SUB: return is_splat(m, b, 0) ? as_result(m, a, n) : NO_VALUE;
  case OP_MUL:
    if (is_splat(m, b, 1)) return as_result(m, a, n);
    if (is_splat(m, a, 1)) return as_result(m, b, n);
    return NO_VALUE;
  case OP_DIV:
  case OP_POW: return is_splat(m, b, 1) ? as_result(m, a, n) : NO_VALUE;
  case OP_NEG: return an->op == OP_NEG ? an->args[0] : NO_VALUE;
  case OP_STOP_GRAD: return an->op == OP_STOP_GRAD ? a : NO_VALUE;
  case OP_CAST: return an->type.dtype == n->type.dtype ? a : NO_VALUE;
  case OP_RESHAPE:
  case OP_BROADCAST:
    if (an->op == n->op) return retype(m, n->op, an->args[0], &n->type, n->loc);
    return type_equal(&an->type, &n->type) ? a : NO_VALUE;
  case OP_TRANSPOSE: {
    if (an->op == OP_TRANSPOSE) return compose_transpose(m, n, an);
    for (int i = 0; i < n->type.rank; i++)
      if (n->attr.perm[i] != i) return NO_VALUE;
    return a;
  }
  case OP_WHERE: {
    double c;
    if (n->args[1] == n->args[2]) return as_result(m, n->args[1], n);
    if (splat_of(m, a, &c) && !isnan((float)c)) return as_result(m, (float)c != 0 ? n->args[1] : n->args[2], n);
    return NO_VALUE;
  }
  default: return NO_VALUE;
  }
}

static ValueId algebra_one(Rewrite *rw, ValueId id, Node *n, void *ctx) {
  (void)id;
  long *simplified = ctx;
  ValueId r = simplify(rw->m, n);
  if (r == NO_VALUE) return rewrite_keep(rw, n);
  ++*simplified;
  return r;
}

bool pass_algebra(Module *m) {
  long simplified = 0;
  rewrite_graph(m, algebra_one, &simplified);
  nnc_stat_add("algebra", "simplified", simplified);
  return true;
}
