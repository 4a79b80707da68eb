/* passes/autodiff.c - reverse-mode automatic differentiation.
 *
 * The frontend's graph computes, per sample, the loss and, for every
 * parameter and optimizer state, its updated value from placeholder
 * `grad @param` nodes.  This pass replaces each placeholder by the gradient
 * of the objective
 *
 *     J = (1/B) * sum over the batch of loss_b        (B = batch_size)
 *
 * with respect to that parameter, which turns the graph into one training
 * step: forward pass, backward pass, optimizer update.
 *
 * How:
 *   1. Analysis (nothing is changed yet, so an error leaves the module as
 *      it was).  A value is *active* when it lies on a differentiable path
 *      from a parameter that has a grad node to the loss: it is f32, it is
 *      computed from such a parameter, and the loss is computed from it,
 *      both through ops that let gradients pass (not OPF_NODIFF, not a
 *      comparison).  Every active non-leaf node needs a rule in grad_rules;
 *      a missing one is a user-facing diagnostic.
 *   2. Rebuild the node array in three parts:
 *        a. every node that does not depend on a grad node, in order (the
 *           forward pass and the optimizer pieces that need no gradient);
 *        b. the backward nodes: the adjoint dJ/dv of every active value,
 *           visited in reverse topological order from the seed
 *           dJ/dloss = broadcast(1 / batch_size) (a batched f32 scalar);
 *        c. the nodes that depend on grad nodes, each grad node replaced by
 *           the summed adjoint of its parameter's param nodes.
 *      Outputs are remapped.  A backward node takes the location of the
 *      forward node whose rule produced it.
 *
 * Local rules (grad_rules, one per op) see the node, its forward operands
 * and result in the new graph, and its output gradient g (of the node's
 * type).  A contribution they return may still have the node's broadcast
 * result shape; fit_to() then sums it back to the operand's shape
 * ("unbroadcast": summed over broadcast axes, reshaped, batch_sum'd for an
 * unbatched operand).  Contributions to one value are added.
 *
 * Documented choices:
 *   - max/min: ties route the gradient to the SECOND operand, so that
 *     relu(x) = max(x, 0) has gradient 0 at x == 0 (as in PyTorch).
 *   - reduce_max: tied maxima share the gradient equally (mask / count),
 *     so the total gradient is preserved (as in TensorFlow).
 *   - pow: d/db (which needs log(a)) is built only when the exponent is
 *     active; a constant exponent gives no log node.
 *   - A parameter with a grad node that does not influence the loss gets an
 *     all-zero gradient (broadcast of const 0), silently: an optimizer may
 *     still decay it.
 *   - Without grad nodes the module is left unchanged.
 *
 * Requires: a verified module.  Guarantees: no grad nodes remain; the
 * result is verified by the driver.  Invalidates nothing else (symbols,
 * outputs and locations are kept).
 */
#include "support/diag.h"
#include "passes/pass.h"

#include <stdlib.h>
#include <string.h>

/* ---- the context ------------------------------------------------------------ */

typedef struct Ad {
  Module *m;          /* m->nodes is the NEW array while building */
  const Node *old;    /* the forward graph, read-only */
  uint32_t nold;
  ValueId *map;       /* old id -> new id of the forward value */
  const bool *active; /* old id -> needs an adjoint */
  ValueId *adj;       /* old id -> new id of dJ/dv; NO_VALUE = zero so far */
  uint32_t loc;       /* location given to the nodes built now */
} Ad;

/* Short builders at the current location. */
static ValueId cst(Ad *ad, double v) { return ir_const(ad->m, DT_F32, v, ad->loc); }
static ValueId op1(Ad *ad, Op op, ValueId a) { return ir_op1(ad->m, op, a, ad->loc); }
static ValueId op2(Ad *ad, Op op, ValueId a, ValueId b) { return ir_op2(ad->m, op, a, b, ad->loc); }
static ValueId op3(Ad *ad, Op op, ValueId a, ValueId b, ValueId c) { return ir_op3(ad->m, op, a, b, c, ad->loc); }
static ValueId retype(Ad *ad, Op op, ValueId a, Type t) { return ir_retype(ad->m, op, a, t, ad->loc); }
/* A copy, never a pointer: building a node may move m->nodes. */
static Type type_of(Ad *ad, ValueId v) { return ad->m->nodes[v].type; }

/* The per-sample shape `dims` (rank r) with v's dtype and batch axis. */
static ValueId reshape_to(Ad *ad, ValueId v, int r, const int64_t *dims) {
  Type t = type_of(ad, v);
  return retype(ad, OP_RESHAPE, v, type_make(t.dtype, r, dims, t.batched));
}

/* Broadcasts v to the per-sample shape of `want`, keeping v's batch axis
 * unless want has one. */
static ValueId broadcast_to(Ad *ad, ValueId v, const Type *want) {
  Type t = *want, vt = type_of(ad, v);
  t.batched = want->batched || vt.batched;
  if (type_equal(&vt, &t)) return v;
  return retype(ad, OP_BROADCAST, v, t);
}

/* "Unbroadcast": makes a gradient contribution g fit an operand of type
 * `want`.  g's per-sample shape is the broadcast of want's with something
 * else, so:
 *   - its extra leading axes, and the axes where want has extent 1 but g
 *     not, are summed (one reduce_sum), then size-1 axes are put back with
 *     a reshape;
 *   - a batched g for an unbatched operand (a parameter) is summed over the
 *     batch with batch_sum;
 *   - a g with fewer axes or no batch axis (a rule that returned a scalar)
 *     is broadcast up. */
static ValueId fit_to(Ad *ad, ValueId g, const Type *want) {
  Type gt = type_of(ad, g);
  if (gt.rank >= want->rank) {
    int lead = gt.rank - want->rank;
    uint32_t axes = 0;
    bool ones = false;  /* an axis of extent 1 in want was summed */
    for (int i = 0; i < gt.rank; i++) {
      if (i < lead) {
        axes |= 1u << i;
      } else if (want->dims[i - lead] == 1 && gt.dims[i] != 1) {
        axes |= 1u << i;
        ones = true;
      }
    }
    if (axes) g = ir_reduce(ad->m, OP_REDUCE_SUM, g, axes, ad->loc);
    if (ones) g = reshape_to(ad, g, want->rank, want->dims);
  }
  if (type_of(ad, g).batched && !want->batched) g = op1(ad, OP_BATCH_SUM, g);
  g = broadcast_to(ad, g, want);
  Type result = type_of(ad, g);
  NNC_ASSERT(type_equal(&result, want));
  return g;
}

/* ---- local gradient rules ----------------------------------------------------- */

/* A rule for node n (forward result y, output gradient g, both new ids)
 * writes into d[k] the contribution to operand k's gradient, for each k with
 * NEED(k); it leaves the others NO_VALUE.  A contribution may have the
 * node's broadcast result shape: the caller fits it to the operand. */
typedef void (*GradRule)(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[NNC_MAX_ARGS]);

#define X(k) (ad->map[n->args[k]])          /* forward operand k, new id */
#define NEED(k) (ad->active[n->args[k]])    /* operand k needs a gradient */
#define OLD(k) (&ad->old[n->args[k]])       /* operand k's node in the old graph */

/* -a: -g */
static void grad_neg(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)n, (void)y;
  d[0] = op1(ad, OP_NEG, g);
}

/* e^a: g * y */
static void grad_exp(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)n;
  d[0] = op2(ad, OP_MUL, g, y);
}

/* log a: g / a */
static void grad_log(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  d[0] = op2(ad, OP_DIV, g, X(0));
}

/* sqrt a: g / (2 y) */
static void grad_sqrt(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)n;
  d[0] = op2(ad, OP_DIV, g, op2(ad, OP_MUL, cst(ad, 2), y));
}

/* tanh a: g * (1 - y^2) */
static void grad_tanh(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)n;
  d[0] = op2(ad, OP_MUL, g, op2(ad, OP_SUB, cst(ad, 1), op2(ad, OP_MUL, y, y)));
}

/* sin a: g * cos(a) */
static void grad_sin(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  d[0] = op2(ad, OP_MUL, g, op1(ad, OP_COS, X(0)));
}

/* cos a: -g * sin(a) */
static void grad_cos(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  d[0] = op1(ad, OP_NEG, op2(ad, OP_MUL, g, op1(ad, OP_SIN, X(0))));
}

/* |a|: g * sign(a) (0 at a == 0) */
static void grad_abs(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  d[0] = op2(ad, OP_MUL, g, op1(ad, OP_SIGN, X(0)));
}

/* Identity-like ops whose contribution is g itself, fitted by the caller:
 * cast (only f32 -> f32 is ever active: an i32 side gets no gradient) and
 * broadcast (fit_to sums over the broadcast axes and the batch). */
static void grad_identity(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)ad, (void)n, (void)y;
  d[0] = g;
}

/* a + b: g, g */
static void grad_add(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)ad, (void)y;
  if (NEED(0)) d[0] = g;
  if (NEED(1)) d[1] = g;
}

/* a - b: g, -g */
static void grad_sub(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  if (NEED(0)) d[0] = g;
  if (NEED(1)) d[1] = op1(ad, OP_NEG, g);
}

/* a * b: g b, g a */
static void grad_mul(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  if (NEED(0)) d[0] = op2(ad, OP_MUL, g, X(1));
  if (NEED(1)) d[1] = op2(ad, OP_MUL, g, X(0));
}

/* y = a / b: g / b, -(g y) / b */
static void grad_div(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  if (NEED(0)) d[0] = op2(ad, OP_DIV, g, X(1));
  if (NEED(1)) d[1] = op1(ad, OP_NEG, op2(ad, OP_DIV, op2(ad, OP_MUL, g, y), X(1)));
}

/* y = a ^ b: g b a^(b-1), g y log(a).  The second is built only when b is
 * active, so a constant exponent (x^2) gives no log node; a constant b
 * gives the constant b-1 directly (and a^1 is a). */
static void grad_pow(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  if (NEED(0)) {
    ValueId a = X(0), b = X(1), pw;
    if (OLD(1)->op == OP_CONST && OLD(1)->attr.value == 2)
      pw = a;
    else if (OLD(1)->op == OP_CONST)
      pw = op2(ad, OP_POW, a, cst(ad, OLD(1)->attr.value - 1));
    else
      pw = op2(ad, OP_POW, a, op2(ad, OP_SUB, b, cst(ad, 1)));
    d[0] = op2(ad, OP_MUL, g, op2(ad, OP_MUL, b, pw));
  }
  if (NEED(1)) d[1] = op2(ad, OP_MUL, g, op2(ad, OP_MUL, y, op1(ad, OP_LOG, X(0))));
}

/* max/min route g to the selected operand.  sel = a > b (max) or a < b
 * (min) picks a; on a tie the second operand gets g (relu(0)' = 0). */
static void route_select(Ad *ad, const Node *n, ValueId sel, ValueId g, ValueId d[]) {
  if (NEED(0)) d[0] = op3(ad, OP_WHERE, sel, g, cst(ad, 0));
  if (NEED(1)) d[1] = op3(ad, OP_WHERE, sel, cst(ad, 0), g);
}

static void grad_max(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  route_select(ad, n, op2(ad, OP_GT, X(0), X(1)), g, d);
}

static void grad_min(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  route_select(ad, n, op2(ad, OP_LT, X(0), X(1)), g, d);
}

/* where(c, a, b): where(c, g, 0) to a, where(c, 0, g) to b, none to c. */
static void grad_where(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  if (NEED(1)) d[1] = op3(ad, OP_WHERE, X(0), g, cst(ad, 0));
  if (NEED(2)) d[2] = op3(ad, OP_WHERE, X(0), cst(ad, 0), g);
}

/* v of a reduction's result shape back to the operand's shape `xt`: the
 * reduced axes are put back with extent 1 (reshape), then broadcast. */
static ValueId unreduce(Ad *ad, ValueId v, const Type *xt, uint32_t axes) {
  int64_t dims[NNC_MAX_RANK];
  for (int i = 0; i < xt->rank; i++) dims[i] = (axes >> i & 1) ? 1 : xt->dims[i];
  return broadcast_to(ad, reshape_to(ad, v, xt->rank, dims), xt);
}

/* reduce_sum(a, axes): g spread back over the reduced axes. */
static void grad_reduce_sum(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  Type xt = type_of(ad, X(0));
  d[0] = unreduce(ad, g, &xt, n->attr.axes);
}

/* y = reduce_max(a, axes): g to the positions equal to the maximum; tied
 * maxima share it equally:  mask = eq(a, y), g_a = mask * (g / sum(mask)). */
static void grad_reduce_max(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  Type xt = type_of(ad, X(0));
  uint32_t axes = n->attr.axes;
  ValueId mask = op2(ad, OP_EQ, X(0), unreduce(ad, y, &xt, axes));
  ValueId count = ir_reduce(ad->m, OP_REDUCE_SUM, mask, axes, ad->loc);
  d[0] = op2(ad, OP_MUL, mask, unreduce(ad, op2(ad, OP_DIV, g, count), &xt, axes));
}

/* The outer product u v^T of vectors u [p] and v [q]: [p,1] @ [1,q]. */
static ValueId outer(Ad *ad, ValueId u, ValueId v) {
  int64_t du[2] = {type_of(ad, u).dims[0], 1}, dv[2] = {1, type_of(ad, v).dims[0]};
  return op2(ad, OP_MATMUL, reshape_to(ad, u, 2, du), reshape_to(ad, v, 2, dv));
}

static ValueId transpose2(Ad *ad, ValueId v) {
  static const uint8_t perm[NNC_MAX_RANK] = {1, 0};
  return ir_transpose(ad->m, v, perm, ad->loc);
}

/* y = conv2d(x, w): x's gradient is the transposed convolution of g,
 * w's one sample's correlation of x with g (batched; fit_to sums it over
 * the batch for a parameter). */
static void grad_conv2d(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  int k = n->attr.win.size, s = n->attr.win.stride, p = n->attr.win.pad;
  Type xt = type_of(ad, X(0)), wt = type_of(ad, X(1));
  if (NEED(0)) {
    ValueId a[2] = {g, X(1)};
    d[0] = ir_window(ad->m, OP_CONV2D_DATA_GRAD, a, 2, k, s, p, &xt, ad->loc);
  }
  if (NEED(1)) {
    ValueId a[2] = {X(0), g};
    wt.batched = xt.batched || type_of(ad, g).batched;
    d[1] = ir_window(ad->m, OP_CONV2D_FILTER_GRAD, a, 2, k, s, p, &wt, ad->loc);
  }
}

/* unfold and fold are each other's adjoints. */
static void grad_unfold(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  Type xt = type_of(ad, X(0));
  d[0] = ir_window(ad->m, OP_FOLD, &g, 1, n->attr.win.size, n->attr.win.stride, n->attr.win.pad, &xt, ad->loc);
}

static void grad_fold(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  d[0] = ir_window(ad->m, OP_UNFOLD, &g, 1, n->attr.win.size, n->attr.win.stride, n->attr.win.pad, NULL, ad->loc);
}

/* v with its last two axes swapped. */
static ValueId swap_last2(Ad *ad, ValueId v) {
  int r = type_of(ad, v).rank;
  uint8_t perm[NNC_MAX_RANK];
  for (int i = 0; i < r; i++) perm[i] = (uint8_t)i;
  perm[r - 2] = (uint8_t)(r - 1);
  perm[r - 1] = (uint8_t)(r - 2);
  return ir_transpose(ad->m, v, perm, ad->loc);
}

/* v [..., c] as a matrix [rows, c]: its leading axes merged. */
static ValueId rows_of(Ad *ad, ValueId v) {
  Type t = type_of(ad, v);
  if (t.rank == 2) return v;
  int64_t dims[2] = {type_numel(&t) / t.dims[t.rank - 1], t.dims[t.rank - 1]};
  return reshape_to(ad, v, 2, dims);
}

/* The batched product [..., k, n] @ [..., n, m] -> [..., k, m]:
 *   g_a = g @ b^T and g_b = a^T @ g, over the leading axes (fit_to sums
 *   them where the operand was broadcast).
 * A matrix b [n, m] shared by every leading index (a dense layer over
 * the last axis) takes its gradient as one product over all the rows,
 * rows(a)^T @ rows(g), so nothing of shape [..., n, m] is formed; the
 * batch sum of a batched one is a single contraction (passes/lower.c). */
static void grad_batched_matmul(Ad *ad, const Node *n, ValueId g, ValueId d[]) {
  ValueId a = X(0), b = X(1);
  if (NEED(0)) d[0] = op2(ad, OP_MATMUL, g, swap_last2(ad, b));
  if (NEED(1)) {
    if (type_of(ad, b).rank == 2)
      d[1] = op2(ad, OP_MATMUL, transpose2(ad, rows_of(ad, a)), rows_of(ad, g));
    else
      d[1] = op2(ad, OP_MATMUL, swap_last2(ad, a), g);
  }
}

/* The four matmul forms (a batched g for an unbatched weight is then
 * batch-summed by fit_to):
 *   [n]@[n,m]->[m]:     g_a = b @ g             g_b = outer(a, g)
 *   [k,n]@[n,m]->[k,m]: g_a = g @ b^T           g_b = a^T @ g
 *   [k,n]@[n]->[k]:     g_a = outer(g, b)       g_b = g @ a
 *   [n]@[n]->[]:        g_a = g b               g_b = g a
 * and the batched product (rank 3 or more). */
static void grad_matmul(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  ValueId a = X(0), b = X(1);
  int ra = type_of(ad, a).rank, rb = type_of(ad, b).rank;
  if (ra > 2 || rb > 2) {
    grad_batched_matmul(ad, n, g, d);
  } else if (ra == 1 && rb == 2) {
    if (NEED(0)) d[0] = op2(ad, OP_MATMUL, b, g);
    if (NEED(1)) d[1] = outer(ad, a, g);
  } else if (ra == 2 && rb == 2) {
    if (NEED(0)) d[0] = op2(ad, OP_MATMUL, g, transpose2(ad, b));
    if (NEED(1)) d[1] = op2(ad, OP_MATMUL, transpose2(ad, a), g);
  } else if (ra == 2 && rb == 1) {
    if (NEED(0)) d[0] = outer(ad, g, b);
    if (NEED(1)) d[1] = op2(ad, OP_MATMUL, g, a);
  } else {
    if (NEED(0)) d[0] = op2(ad, OP_MUL, g, b);
    if (NEED(1)) d[1] = op2(ad, OP_MUL, g, a);
  }
}

/* transpose(a, perm): transpose(g, perm^-1). */
static void grad_transpose(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  uint8_t inv[NNC_MAX_RANK] = {0};
  for (int i = 0; i < n->type.rank; i++) inv[n->attr.perm[i]] = (uint8_t)i;
  d[0] = ir_transpose(ad->m, g, inv, ad->loc);
}

/* reshape(a): g reshaped to a's shape. */
static void grad_reshape(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  Type xt = type_of(ad, X(0));
  d[0] = reshape_to(ad, g, xt.rank, xt.dims);
}

/* y = a[i], a [L..., n, r...], i [L...]: g_a = onehot(i) [L..., n, 1...] *
 * g [L..., 1, r...] (batched when i or g is; fit_to batch-sums it for an
 * unbatched a, e.g. an embedding table indexed by a batched label). */
static void grad_index(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  Type xt = type_of(ad, X(0)), it = type_of(ad, X(1));
  int ir = it.rank;
  int64_t dims[NNC_MAX_RANK];
  for (int i = 0; i <= ir; i++) dims[i] = xt.dims[i];
  ValueId oh = retype(ad, OP_ONEHOT, X(1), type_make(DT_F32, ir + 1, dims, it.batched));
  int64_t col[NNC_MAX_RANK], row[NNC_MAX_RANK];
  for (int i = 0; i < xt.rank; i++) {
    col[i] = i <= ir ? xt.dims[i] : 1;
    row[i] = i == ir ? 1 : xt.dims[i];
  }
  if (xt.rank > ir + 1) oh = reshape_to(ad, oh, xt.rank, col);
  if (xt.rank > 1) g = reshape_to(ad, g, xt.rank, row); /* a scalar g broadcasts as it is */
  d[0] = op2(ad, OP_MUL, oh, g);
}

/* y = gather(table, i): g_table = scatter_add(g, i), the sum of g's rows
 * into the rows they were read from (batched when g is: fit_to batch-sums
 * it for a parameter, in one contraction: passes/lower.c). */
static void grad_gather(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  Type tt = type_of(ad, X(0));
  tt.batched = type_of(ad, g).batched || type_of(ad, X(1)).batched;
  ValueId args[2] = {g, X(1)};
  d[0] = ir_build_typed(ad->m, OP_SCATTER_ADD, args, 2, tt, ad->loc);
}

/* batch_sum(a): g broadcast back over the batch. */
static void grad_batch_sum(Ad *ad, const Node *n, ValueId y, ValueId g, ValueId d[]) {
  (void)y;
  Type xt = type_of(ad, X(0));
  d[0] = broadcast_to(ad, g, &xt);
}

#undef X
#undef NEED
#undef OLD

/* ORDER OP: one rule per differentiable op.  Leaves, OPF_NODIFF ops (sign,
 * stop_gradient, argmax, onehot) and comparisons have none: they pass no
 * gradient, so the analysis never asks for their rule.  An op missing here
 * that lies on a path from a parameter to the loss is a diagnostic. */
static const GradRule grad_rules[OP_COUNT] = {
    [OP_NEG] = grad_neg,
    [OP_EXP] = grad_exp,
    [OP_LOG] = grad_log,
    [OP_SQRT] = grad_sqrt,
    [OP_TANH] = grad_tanh,
    [OP_SIN] = grad_sin,
    [OP_COS] = grad_cos,
    [OP_ABS] = grad_abs,
    [OP_CAST] = grad_identity,
    [OP_ADD] = grad_add,
    [OP_SUB] = grad_sub,
    [OP_MUL] = grad_mul,
    [OP_DIV] = grad_div,
    [OP_POW] = grad_pow,
    [OP_MAX] = grad_max,
    [OP_MIN] = grad_min,
    [OP_WHERE] = grad_where,
    [OP_REDUCE_SUM] = grad_reduce_sum,
    [OP_REDUCE_MAX] = grad_reduce_max,
    [OP_MATMUL] = grad_matmul,
    [OP_TRANSPOSE] = grad_transpose,
    [OP_RESHAPE] = grad_reshape,
    [OP_BROADCAST] = grad_identity,
    [OP_INDEX] = grad_index,
    [OP_GATHER] = grad_gather,
    [OP_BATCH_SUM] = grad_batch_sum,
    [OP_CONV2D] = grad_conv2d,
    [OP_UNFOLD] = grad_unfold,
    [OP_FOLD] = grad_fold,
};

/* ---- analysis ------------------------------------------------------------------ */

/* Whether gradients flow from node n's result into its operands. */
static bool passes_gradient(const Node *n) {
  unsigned f = ir_ops[n->op].flags;
  return !(f & (OPF_LEAF | OPF_NODIFF | OPF_CMP)) && n->type.dtype == DT_F32;
}


/* Reports each op without a rule once, at its first active node, with
 * notes for the calls it was inlined from.  Returns false if any. */
static bool check_rules(const Module *m, const bool *active) {
  bool seen[OP_COUNT] = {false}, ok = true;
  for (ValueId v = 0; v < m->nnodes; v++) {
    const Node *n = &m->nodes[v];
    if (!active[v] || !passes_gradient(n) || grad_rules[n->op] || seen[n->op]) continue;
    seen[n->op] = true;
    ok = false;
    SrcLoc s = ir_diag_loc(m, n->loc);
    if (s.file) diag_error(s, "no gradient rule for op '%s'", ir_ops[n->op].name);
    else diag_error_plain("no gradient rule for op '%s'", ir_ops[n->op].name);
    for (uint32_t p = n->loc < m->nlocs ? m->locs[n->loc].parent : 0; p && p < m->nlocs; p = m->locs[p].parent) {
      SrcLoc ps = ir_diag_loc(m, p);
      if (ps.file) diag_note(ps, "called from here");
    }
  }
  return ok;
}

/* ---- building ------------------------------------------------------------------ */

/* Copies old node v into the new array with its operands remapped. */
static ValueId copy_node(Ad *ad, ValueId v) {
  Node n = ad->old[v];
  for (int i = 0; i < n.nargs; i++) n.args[i] = ad->map[n.args[i]];
  return ir_append(ad->m, &n);
}

/* Adds contribution c (fitted to old value v's type) to v's adjoint. */
static void accumulate(Ad *ad, ValueId v, ValueId c) {
  c = fit_to(ad, c, &ad->old[v].type);
  ad->adj[v] = ad->adj[v] == NO_VALUE ? c : op2(ad, OP_ADD, ad->adj[v], c);
}

/* The backward pass: adjoints from the loss down to the parameters. */
static void backward(Ad *ad, ValueId loss) {
  const Node *ln = &ad->old[loss];
  ad->loc = ln->loc;
  /* seed: dJ/dloss_b = 1/B; a loss without batch axis counts once. */
  ValueId seed = cst(ad, 1);
  if (ln->type.batched) seed = op2(ad, OP_DIV, seed, ir_leaf(ad->m, OP_BATCH_SIZE, 0, ad->loc));
  ad->adj[loss] = broadcast_to(ad, seed, &ln->type);
  for (ValueId v = loss + 1; v-- > 0;) {
    const Node *n = &ad->old[v];
    if (!ad->active[v] || ad->adj[v] == NO_VALUE || !passes_gradient(n)) continue;
    ValueId d[NNC_MAX_ARGS] = {NO_VALUE, NO_VALUE, NO_VALUE};
    ad->loc = n->loc;
    grad_rules[n->op](ad, n, ad->map[v], ad->adj[v], d);
    for (int k = 0; k < n->nargs; k++)
      if (d[k] != NO_VALUE && ad->active[n->args[k]]) accumulate(ad, n->args[k], d[k]);
  }
}

/* dJ/d(param s) for every parameter: the sum of the adjoints of its param
 * nodes (one symbol may be read by several), into grad_of[s]. */
static void param_gradients(Ad *ad, ValueId *grad_of) {
  for (ValueId v = 0; v < ad->nold; v++) {
    const Node *n = &ad->old[v];
    if (n->op != OP_PARAM || ad->adj[v] == NO_VALUE) continue;
    ad->loc = n->loc;
    ValueId *sum = &grad_of[n->attr.sym];
    *sum = *sum == NO_VALUE ? ad->adj[v] : op2(ad, OP_ADD, *sum, ad->adj[v]);
  }
}

/* The gradient of a parameter the loss does not depend on: zeros of the
 * grad node's type. */
static ValueId zero_gradient(Ad *ad, const Node *grad) {
  ad->loc = grad->loc;
  return broadcast_to(ad, ir_const(ad->m, grad->type.dtype, 0, ad->loc), &grad->type);
}

/* Marks active[v]: v is f32, computed from a wanted parameter (forward)
 * and the loss is computed from it (backward), both through ops that pass
 * gradients. */
static void find_active(const Module *m, const bool *wanted, ValueId loss, bool *active) {
  bool *from = nnc_xcalloc(m->nnodes, sizeof *from);
  for (ValueId v = 0; v <= loss; v++) {
    const Node *n = &m->nodes[v];
    if (n->op == OP_PARAM)
      from[v] = wanted[n->attr.sym] && n->type.dtype == DT_F32;
    else if (passes_gradient(n))
      for (int i = 0; i < n->nargs; i++) from[v] |= from[n->args[i]];
  }
  active[loss] = from[loss];
  for (ValueId v = loss + 1; v-- > 0;) {
    const Node *n = &m->nodes[v];
    if (!active[v] || !passes_gradient(n)) continue;
    for (int i = 0; i < n->nargs; i++) active[n->args[i]] |= from[n->args[i]];
  }
  free(from);
}

/* Rebuilds the node array as forward / backward / update (see the top of
 * the file); dep[v] says v depends on a grad node. */
static void rebuild(Module *m, ValueId loss, const bool *dep, const bool *active) {
  uint32_t nold = m->nnodes;
  Ad ad;
  ad.m = m;
  ad.old = m->nodes;
  ad.nold = nold;
  ad.active = active;
  ad.map = nnc_xmalloc(sizeof *ad.map * nold);
  ad.adj = nnc_xmalloc(sizeof *ad.adj * nold);
  for (ValueId v = 0; v < nold; v++) ad.map[v] = ad.adj[v] = NO_VALUE;
  m->nodes = NULL; /* detach the old array; m->nodes becomes the new one */
  m->nnodes = m->capnodes = 0;

  /* a. the nodes that need no gradient */
  for (ValueId v = 0; v < nold; v++)
    if (!dep[v]) ad.map[v] = copy_node(&ad, v);
  /* b. the backward pass */
  uint32_t before = m->nnodes;
  backward(&ad, loss);
  /* c. the nodes that use gradients; each grad node becomes its gradient,
   * computed once per parameter */
  ValueId *grad_of = nnc_xmalloc(sizeof *grad_of * m->nsyms);
  uint32_t copied = 0;
  for (uint32_t s = 0; s < m->nsyms; s++) grad_of[s] = NO_VALUE;
  param_gradients(&ad, grad_of);
  for (ValueId v = 0; v < nold; v++) {
    if (!dep[v]) continue;
    const Node *n = &ad.old[v];
    if (n->op == OP_GRAD) {
      if (grad_of[n->attr.sym] == NO_VALUE) grad_of[n->attr.sym] = zero_gradient(&ad, n);
      ad.map[v] = grad_of[n->attr.sym];
    } else {
      ad.map[v] = copy_node(&ad, v);
      copied++;
    }
  }
  /* Backward nodes: everything built after part a except the copies. */
  nnc_stat_add("autodiff", "grad_nodes", (long)(m->nnodes - before - copied));

  for (uint32_t i = 0; i < m->noutputs; i++) m->outputs[i].value = ad.map[m->outputs[i].value];
  free((void *)ad.old);
  free(ad.map);
  free(ad.adj);
  free(grad_of);
}

bool pass_autodiff(Module *m) {
  uint32_t nold = m->nnodes, nparams = 0;
  ValueId loss = NO_VALUE;
  for (uint32_t i = 0; i < m->noutputs; i++)
    if (m->outputs[i].kind == OUT_LOSS) loss = m->outputs[i].value;

  /* dep[v]: v is a grad node or computed from one; wanted[s]: param s has
   * a grad node. */
  bool *dep = nnc_xcalloc(nold ? nold : 1, sizeof *dep);
  bool *wanted = nnc_xcalloc(m->nsyms ? m->nsyms : 1, sizeof *wanted);
  for (ValueId v = 0; v < nold; v++) {
    const Node *n = &m->nodes[v];
    if (n->op == OP_GRAD) {
      dep[v] = true;
      nparams += !wanted[n->attr.sym];
      wanted[n->attr.sym] = true;
    }
    for (int i = 0; i < n->nargs; i++) dep[v] |= dep[n->args[i]];
  }

  bool ok = true;
  bool *active = NULL;
  if (nparams == 0) {
    /* nothing to differentiate: the module stays as it is */
  } else if (loss == NO_VALUE) {
    diag_error_plain("the model has no loss to differentiate");
    ok = false;
  } else if (dep[loss]) {
    diag_error_plain("the loss depends on a gradient placeholder; grad nodes belong to the optimizer");
    ok = false;
  } else {
    active = nnc_xcalloc(nold, sizeof *active);
    find_active(m, wanted, loss, active);
    ok = check_rules(m, active);  /* before anything changes */
    if (ok) {
      rebuild(m, loss, dep, active);
      nnc_stat_add("autodiff", "params", (long)nparams);
    }
  }
  free(dep);
  free(wanted);
  free(active);
  return ok;
}
