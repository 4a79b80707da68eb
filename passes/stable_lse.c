/* passes/stable_lse.c - log(sum(exp(x))) made safe from overflow.
 *
 * Requires: a verified module.  Guarantees: every
 *
 *     %l = log(reduce_sum(exp(x), axes))
 *
 * is replaced by the log-sum-exp trick, which is equal in exact arithmetic
 * and does not overflow when x is large (exp(89) is inf in f32):
 *
 *     m = stop_gradient(reduce_max(x, axes))          the reduced shape
 *     k = reshape(m, x's shape with the axes as 1)    (skipped when the axes
 *                                                      are leading ones: the
 *                                                      trailing-axis rule then
 *                                                      lines m up already)
 *     %l' = m + log(reduce_sum(exp(x - k), axes))     (x - k broadcasts k)
 *
 * m carries no gradient, which is exact: the derivative of the expression
 * with respect to m is zero.  A sum already in this form (x is
 * `a - b` where b is, through reshape/broadcast/stop_gradient, a
 * reduce_max) is left alone, so the stdlib's logsumexp and this pass's own
 * output are not rewritten twice.  The old exp and reduce_sum stay for dce
 * (or for their other users).
 *
 * Statistics: stable_lse.rewritten (log nodes rewritten).
 */
#include "passes/pass.h"
#include "passes/rewrite.h"

/* x - k where k comes from a reduce_max: already stabilised. */
static bool already_stable(const Module *m, ValueId x) {
  const Node *n = &m->nodes[x];
  if (n->op != OP_SUB) return false;
  const Node *k = &m->nodes[n->args[1]];
  while (k->op == OP_RESHAPE || k->op == OP_BROADCAST || k->op == OP_STOP_GRAD) k = &m->nodes[k->args[0]];
  return k->op == OP_REDUCE_MAX;
}

/* The rewrite of %l = log(s), s = reduce_sum(e, axes), e = exp(x). */
static ValueId stabilise(Module *m, const Node *l, const Node *s, const Node *e) {
  ValueId x = e->args[0];
  uint32_t axes = s->attr.axes;
  Type xt = m->nodes[x].type;
  ValueId mx = ir_reduce(m, OP_REDUCE_MAX, x, axes, s->loc);
  ValueId sg = ir_op1(m, OP_STOP_GRAD, mx, s->loc);
  ValueId k = sg;
  if (axes & (axes + 1)) { /* not a run of leading axes: keep the reduced axes as 1 */
    Type kt = xt;
    for (int i = 0; i < xt.rank; i++)
      if (axes >> i & 1) kt.dims[i] = 1;
    k = ir_retype(m, OP_RESHAPE, sg, kt, s->loc);
  }
  ValueId d = ir_op2(m, OP_SUB, x, k, e->loc);
  ValueId e2 = ir_op1(m, OP_EXP, d, e->loc);
  ValueId s2 = ir_reduce(m, OP_REDUCE_SUM, e2, axes, s->loc);
  ValueId l2 = ir_op1(m, OP_LOG, s2, l->loc);
  return ir_op2(m, OP_ADD, sg, l2, l->loc);
}

static ValueId lse_one(Rewrite *rw, ValueId id, Node *n, void *ctx) {
  (void)id;
  long *rewritten = ctx;
  Module *m = rw->m;
  if (n->op != OP_LOG) return rewrite_keep(rw, n);
  const Node *s = &m->nodes[n->args[0]];
  if (s->op != OP_REDUCE_SUM) return rewrite_keep(rw, n);
  const Node *e = &m->nodes[s->args[0]];
  if (e->op != OP_EXP || already_stable(m, e->args[0])) return rewrite_keep(rw, n);
  /* ir_* may grow m->nodes: pass copies. */
  Node lc = *n, sc = *s, ec = *e;
  ++*rewritten;
  return stabilise(m, &lc, &sc, &ec);
}

bool pass_stable_lse(Module *m) {
  long rewritten = 0;
  rewrite_graph(m, lse_one, &rewritten);
  nnc_stat_add("stable_lse", "rewritten", rewritten);
  return true;
}
