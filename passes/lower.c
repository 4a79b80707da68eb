/* passes/lower.c - lowering the training-step graph to kernels.
 *
 * Every graph value is either materialized (stored in a buffer by one
 * kernel) or inlined: its expression is rebuilt inside each consumer's
 * loop nest, at the consumer's index.  Elementwise ops, broadcasts,
 * transposes, reshapes (through div/mod index arithmetic), indexing,
 * onehot and outer products (a matmul over an axis of 1) inline; so chains
 * of elementwise ops fuse into their consumer, and the per-sample outer
 * products of weight gradients fuse into the batch sum that consumes them
 * (dW[i,j] = sum over b of x[b,i] * g[b,j], with no [B,n,m] temporary).
 * Reductions, matmuls, argmax and batch sums are materialized, as is any
 * value used more than once (unless trivially cheap), every output, and
 * anything whose inlined expression would grow too deep.
 *
 * Matmuls (batched ones too), batch sums and reductions become
 * contraction statements (ir/kernel.h): a launch loop over the batch (or
 * the first axis of a matrix) and a contraction whose free axes are the
 * rest of the output, whose reduction axes are k, the batch or the
 * reduced axes, and whose factors are the operands' expressions (a batch
 * sum of an inlined outer product has two factors: a weight gradient is a
 * product; of an inlined product per sample, one reduction over the batch
 * and k together).  gather is a guarded load at a gathered index;
 * scatter_add (with its batch sum: an embedding's gradient) a scatter,
 * stores at the clamped rows its tokens name, in order (kernel_scatter).
 * Loop orders are the targets' choice (their schedules read the
 * statements).
 *
 * The kernels are emitted in graph order; passes/lower_step.c then
 * arranges them into the step: optimizer updates in place, the update
 * kernels of one parameter fused, the grad part of the step before the
 * update part (data-parallel training), and the plans.
 * Last, kernels fuse along their launch loops (whole-step fusion,
 * passes/fuse.c, from -O1): epilogues into matmuls, the loss row into one
 * kernel, updates into the batch sums of their gradients (for targets that
 * ask for separate contractions, nothing joins a contraction's kernel).
 * The eval plan is the subset of kernels the loss and metrics need.
 */
#include "passes/lower.h"

#include "passes/lower_internal.h"
#include "passes/pass.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_INLINE_DEPTH = 24 };

/* One lowering of a module: what is decided per node, and the kernel
 * being built. */
typedef struct Lowering {
  Module *m;
  KProgram *p;
  int32_t *buf;        /* per node: buffer holding its value, -1 = inlined */
  uint32_t *uses;      /* per node: uses by nodes and outputs */
  int32_t *sym_buf;    /* per symbol: its buffer */
  int32_t *hyper_slot; /* per symbol: scalar index of a hyper */
  int32_t training_slot; /* the scalar index of the training flag */
  int32_t seed_slot;     /* and of the random key */
  uint8_t *depth;      /* per node: depth of its inlined expression */
  bool *mat;           /* per node: materialized (gets a buffer and a kernel) */
  bool *position;      /* per node: computed from element positions and run-time scalars only */
  bool *summed;        /* per node: the operand of a batch sum */
  bool *gradient;      /* per node: its buffer is a parameter's gradient (kbuf_is_gradient) */
  uint32_t kidx;       /* kernel being built */
  int64_t *extent;     /* per loop variable of that kernel: its extent, 0 = unknown (batched) */
  int32_t capextent;
} Lowering;

/* The kernel being built, and graph node v. */
static Kernel *cur_kernel(Lowering *l) { return &l->p->kernels[l->kidx]; }
static const Node *node(Lowering *l, ValueId v) { return &l->m->nodes[v]; }

/* ---- index arithmetic -------------------------------------------------------- */

/* The least bound above every value of index expression e (its values
 * are non-negative), from the extents of the loops it uses; 0 = unknown. */
static int64_t ibound(const Lowering *l, const KExpr *e) {
  int64_t a, b;
  switch (e->kind) {
  case KE_CONST: return e->value >= 0 ? (int64_t)e->value + 1 : 0;
  case KE_VAR: return e->var < l->capextent ? l->extent[e->var] : 0;
  case KE_OP:
    if (!e->index) return 0;
    if (e->op == OP_ADD) return (a = ibound(l, e->a)) && (b = ibound(l, e->b)) ? a + b - 1 : 0;
    if (e->op == OP_MUL && e->b->kind == KE_CONST && e->b->value >= 0)
      return (a = ibound(l, e->a)) ? (a - 1) * (int64_t)e->b->value + 1 : 0;
    if (e->op == OP_DIV && e->b->kind == KE_CONST && e->b->value > 0)
      return (a = ibound(l, e->a)) ? (a - 1) / (int64_t)e->b->value + 1 : 0;
    return 0;
  default: return 0;
  }
}

/* Splits a sum a into q k + r: *q the sum of its terms that are multiples
 * of k, divided by k (NULL when none), *r the others (NULL when none).
 * False unless each of the others is known non-negative (a bound): then
 * a / k = q + r / k and a mod k = r mod k, so a reshape's flattened index
 * (i 784 + j) / 784 comes back as i + j / 784 = i (j < 784) instead of a
 * division per element.  A term s c with c dividing k splits s by k / c,
 * so the nested form ((i 28 + j) 28 + m) / 784 comes back as i too. */
static bool split_multiples(Lowering *l, KExpr *a, int64_t k, KExpr **q, KExpr **r) {
  if (a->kind == KE_OP && a->index && a->op == OP_ADD)
    return split_multiples(l, a->a, k, q, r) && split_multiples(l, a->b, k, q, r);
  KProgram *p = l->p;
  if (a->kind == KE_OP && a->index && a->op == OP_MUL && a->b->kind == KE_CONST && a->b->value >= 0 &&
      (int64_t)a->b->value % k == 0) {
    KExpr *t = kexpr_imul(p, a->a, (int64_t)a->b->value / k);
    *q = *q ? kexpr_iadd(p, *q, t) : t;
    return true;
  }
  if (a->kind == KE_OP && a->index && a->op == OP_MUL && a->b->kind == KE_CONST && a->b->value >= 1 &&
      k % (int64_t)a->b->value == 0) { /* s c with c | k: s = q' (k / c) + r', so s c = q' k + r' c */
    int64_t c = (int64_t)a->b->value;
    KExpr *q2 = NULL, *r2 = NULL;
    if (split_multiples(l, a->a, k / c, &q2, &r2)) {
      if (q2) *q = *q ? kexpr_iadd(p, *q, q2) : q2;
      if (r2) *r = *r ? kexpr_iadd(p, *r, kexpr_imul(p, r2, c)) : kexpr_imul(p, r2, c);
      return true;
    }
  }
  if (!ibound(l, a)) return false;
  *r = *r ? kexpr_iadd(p, *r, a) : a;
  return true;
}

static KExpr *idiv(Lowering *l, KExpr *a, int64_t k) {
  KProgram *p = l->p;
  if (k == 1) return a;
  if (a->kind == KE_CONST) return kexpr_index_const(p, (int64_t)a->value / k);
  int64_t hi = ibound(l, a);
  if (hi && hi <= k) return kexpr_index_const(p, 0); /* a < k */
  KExpr *q = NULL, *r = NULL;
  if (split_multiples(l, a, k, &q, &r) && q) return r ? kexpr_iadd(p, q, idiv(l, r, k)) : q;
  KExpr *e = kexpr_op(p, OP_DIV, DT_I32, a, kexpr_index_const(p, k), NULL);
  e->index = true;
  return e;
}

static KExpr *imod(Lowering *l, KExpr *a, int64_t k) {
  KProgram *p = l->p;
  if (k == 1) return kexpr_index_const(p, 0);
  if (a->kind == KE_CONST) return kexpr_index_const(p, (int64_t)a->value % k);
  int64_t hi = ibound(l, a);
  if (hi && hi <= k) return a; /* a < k */
  KExpr *mq = NULL, *mr = NULL;
  if (split_multiples(l, a, k, &mq, &mr) && mq) return mr ? imod(l, mr, k) : kexpr_index_const(p, 0);
  KExpr *q = kexpr_imul(p, idiv(l, a, k), k);
  KExpr *e = kexpr_op(p, OP_SUB, DT_I32, a, q, NULL);
  e->index = true;
  return e;
}

/* A new loop variable of the kernel being built, with its extent. */
static int32_t new_var(Lowering *l, int64_t extent, bool batched) {
  int32_t v = kernel_new_var(cur_kernel(l));
  if (v >= l->capextent) {
    int32_t cap = l->capextent ? 2 * l->capextent : 16;
    while (cap <= v) cap *= 2;
    l->extent = nnc_xrealloc(l->extent, sizeof *l->extent * (size_t)cap);
    memset(l->extent + l->capextent, 0, sizeof *l->extent * (size_t)(cap - l->capextent));
    l->capextent = cap;
  }
  l->extent[v] = batched ? 0 : extent;
  return v;
}

/* ---- classification ----------------------------------------------------------- */

static bool is_leaf_buffer(Op op) { return op == OP_INPUT || op == OP_PARAM || op == OP_STATE; }

/* Ops whose value is a whole reduction: they get their own kernel. */
static bool is_reduction(const Node *n) {
  switch (n->op) {
  case OP_REDUCE_SUM:
  case OP_REDUCE_MAX:
  case OP_ARGMAX:
  case OP_BATCH_SUM:
    return true;
  case OP_MATMUL:
    return true; /* outer products (contraction over 1) are handled in inlinable() */
  case OP_CONV2D:
  case OP_CONV2D_DATA_GRAD:
  case OP_FOLD:
    return true;
  case OP_CONV2D_FILTER_GRAD:
  case OP_SCATTER_ADD:
    return true; /* inlined only into a batch sum: choose_materialized, inlinable */
  default:
    return false;
  }
}

static int64_t contraction_extent(Lowering *l, const Node *n) {
  const Type *a = &node(l, n->args[0])->type;
  return a->dims[a->rank - 1];
}

/* A filter gradient up to this many elements is computed per sample (a
 * kernel over the batch, each sample's input and gradient in cache) and
 * then summed by its batch sum: 36864 for 64 x 64 x 3 x 3, 9 MiB at batch
 * 64, and 1.2x faster than summing over the batch inside one contraction,
 * which streams the whole batch once per filter.  Larger filters do that. */
enum { FILTER_GRAD_PER_SAMPLE = 65536 };

/* A product of two matrices per sample, [i, k] @ [k, j], whose only use is
 * its batch sum (a weight's gradient: x^T @ g of a dense layer over [t, n]):
 * inlined into the batch sum, which sums over the batch and k at once. */
static bool summed_product(Lowering *l, ValueId v) {
  const Node *n = node(l, v);
  return n->op == OP_MATMUL && l->summed[v] && l->uses[v] == 1 && n->type.batched &&
         node(l, n->args[0])->type.rank == 2 && node(l, n->args[1])->type.rank == 2;
}

static bool inlinable(Lowering *l, ValueId v) {
  const Node *n = node(l, v);
  if (n->op == OP_MATMUL) return contraction_extent(l, n) == 1 || summed_product(l, v);
  if (n->op == OP_CONV2D_FILTER_GRAD) return type_numel(&n->type) > FILTER_GRAD_PER_SAMPLE; /* into its batch sum */
  if (n->op == OP_SCATTER_ADD) return l->summed[v] && l->uses[v] == 1; /* an embedding's gradient: into its batch sum */
  return !is_reduction(n);
}

/* A fold whose windows tile its output exactly (pooling's size = stride,
 * no padding, sizes multiples of the stride): each element lies in one
 * window, which exists. */
static bool fold_tiles_exactly(const Node *n) {
  int s = n->attr.win.stride, lead = n->type.rank - 2;
  return n->op == OP_FOLD && s == n->attr.win.size && n->attr.win.pad == 0 && n->type.dims[lead] % s == 0 &&
         n->type.dims[lead + 1] % s == 0;
}

/* Window ops read their operand at shifted indices that may fall outside
 * it (padding), as a guarded load that reads 0 there: operand k must then
 * be a buffer of exactly its value, not an expression inlined through a
 * reshape (whose out-of-range indices would land on other elements).  A
 * fold that tiles exactly reads only inside: its operand (pooling's
 * gradient times the window's mask) is computed where it is read. */
static bool reads_guarded(const Node *n, int k) {
  switch (n->op) {
  case OP_CONV2D:
  case OP_CONV2D_FILTER_GRAD:
  case OP_UNFOLD: return k == 0 && n->attr.win.pad > 0;
  case OP_CONV2D_DATA_GRAD: return k == 0;
  case OP_FOLD: return k == 0 && !fold_tiles_exactly(n);
  case OP_GATHER: return k == 0;
  default: return false;
  }
}

/* An unbatched scalar computed from constants and run-time scalars only
 * (Adam's 1 - beta1 and 1 - beta1^step): recomputed where it is used, a
 * few loop-invariant flops, rather than a one-element kernel of its own. */
static bool run_time_scalar_leaf(Op op) {
  return op == OP_CONST || op == OP_HYPER || op == OP_STEP || op == OP_BATCH_SIZE || op == OP_TRAINING ||
         op == OP_SEED;
}

static bool scalar_expr(Lowering *l, ValueId v) {
  const Node *n = node(l, v);
  if (run_time_scalar_leaf(n->op)) return true;
  if (n->type.batched || n->type.rank != 0 || !(ir_ops[n->op].flags & OPF_ELEMWISE)) return false;
  for (int k = 0; k < n->nargs; k++)
    if (!scalar_expr(l, n->args[k])) return false;
  return true;
}

/* l->position: computed from element positions, run-time scalars and
 * constants only, reading no buffer (dropout's mask, recomputed in the
 * backward pass from the same counters instead of stored).  One pass in
 * node order: operands come first. */
static void mark_positions(Lowering *l) {
  for (uint32_t v = 0; v < l->m->nnodes; v++) {
    const Node *n = node(l, v);
    bool p = run_time_scalar_leaf(n->op) || n->op == OP_ELEMENT;
    if (!p && (ir_ops[n->op].flags & OPF_ELEMWISE)) {
      p = true;
      for (int k = 0; k < n->nargs; k++) p = p && l->position[n->args[k]];
    }
    l->position[v] = p;
  }
}

/* Cheap enough to recompute in every consumer. */
static bool cheap(Lowering *l, ValueId v) {
  const Node *n = node(l, v);
  if (run_time_scalar_leaf(n->op) || l->position[v]) return true;
  switch (n->op) {
  case OP_INPUT:
  case OP_PARAM:
  case OP_STATE:
    return true;
  case OP_RESHAPE:
    /* merging axes that a transpose moved apart (attention's heads back
     * into rows): each read divides, and a product reading it there is no
     * affine access, so the packed path cannot take it */
    if (node(l, n->args[0])->op == OP_TRANSPOSE && !l->mat[n->args[0]]) return false;
    return l->mat[n->args[0]] || cheap(l, n->args[0]);
  case OP_BROADCAST:
  case OP_TRANSPOSE:
  case OP_STOP_GRAD:
  case OP_GRADIENT:
  case OP_NEG:
  case OP_CAST:
    return l->mat[n->args[0]] || cheap(l, n->args[0]);
  default:
    return scalar_expr(l, v);
  }
}

/* ---- buffers ---------------------------------------------------------------------- */

static int32_t add_buf(Lowering *l, const char *name, KBufKind kind, Type t, uint32_t sym, uint32_t loc) {
  KBuffer b;
  memset(&b, 0, sizeof b);
  b.name = name;
  b.kind = kind;
  b.type = t;
  b.sym = sym;
  b.slot = -1;
  b.loc = loc;
  b.op = -1;
  return kprog_add_buffer(l->p, b);
}

static int32_t temp_buf(Lowering *l, ValueId v) {
  char name[32];
  snprintf(name, sizeof name, "t%u", v);
  int32_t b = add_buf(l, name, KB_TEMP, node(l, v)->type, 0, node(l, v)->loc);
  l->p->bufs[b].op = (int32_t)node(l, v)->op;
  return b;
}

/* ---- expressions -------------------------------------------------------------------- */

static KExpr *gen(Lowering *l, ValueId v, KExpr **idx, KExpr *b);
static void matmul_index(Lowering *l, const Node *n, KExpr **out_idx, KExpr *k, KExpr **ai, KExpr **bi);

static KExpr *load(Lowering *l, int32_t buf, KExpr **idx, KExpr *b) {
  const KBuffer *kb = &l->p->bufs[buf];
  KExpr *full[NNC_MAX_RANK + 1];
  int n = 0;
  if (kb->type.batched) {
    NNC_ASSERT(b != NULL);
    full[n++] = b;
  }
  for (int i = 0; i < kb->type.rank; i++) full[n++] = idx[i];
  kernel_use_buffer(l->p, cur_kernel(l), buf);
  return kexpr_load(l->p, buf, full, n);
}

/* The index of operand `a` (type at) for a consumer at idx (type out),
 * by NumPy broadcasting: trailing axes line up; extent-1 axes read 0. */
static void broadcast_index(Lowering *l, const Type *out, const Type *at, KExpr **idx, KExpr **aidx) {
  int lead = out->rank - at->rank;
  for (int i = 0; i < at->rank; i++)
    aidx[i] = at->dims[i] == 1 && out->dims[lead + i] != 1 ? kexpr_index_const(l->p, 0) : idx[lead + i];
}

static KExpr *gen_operand(Lowering *l, const Node *n, int k, KExpr **idx, KExpr *b) {
  KExpr *aidx[NNC_MAX_RANK];
  const Node *a = node(l, n->args[k]);
  broadcast_index(l, &n->type, &a->type, idx, aidx);
  return gen(l, n->args[k], aidx, b);
}

/* pos * stride + k - pad: the input index of window position pos, offset k. */
static KExpr *window_index(Lowering *l, KExpr *pos, KExpr *k, const Node *n) {
  KProgram *p = l->p;
  KExpr *e = kexpr_iadd(p, kexpr_imul(p, pos, n->attr.win.stride), k);
  return kexpr_iadd(p, e, kexpr_index_const(p, -(int64_t)n->attr.win.pad));
}

/* Operand k of n (a window op, or gather) at idx: a load, guarded (0
 * outside) when the index can reach past the operand (reads_guarded made
 * it a buffer). */
static KExpr *guarded_operand(Lowering *l, const Node *n, int k, KExpr **idx, KExpr *b) {
  KExpr *e = gen(l, n->args[k], idx, b);
  if (!reads_guarded(n, k)) return e;
  NNC_ASSERT(e->kind == KE_LOAD);
  e->guarded = true;
  return e;
}

static KExpr *gen(Lowering *l, ValueId v, KExpr **idx, KExpr *b) {
  const Node *n = node(l, v);
  KProgram *p = l->p;
  if (l->buf[v] >= 0) return load(l, l->buf[v], idx, b);
  KExpr *aidx[NNC_MAX_RANK];
  switch (n->op) {
  case OP_CONST: return kexpr_const(p, n->type.dtype, n->attr.value);
  case OP_HYPER:
  case OP_STEP:
  case OP_BATCH_SIZE:
  case OP_TRAINING:
  case OP_SEED:
    kernel_use_buffer(p, cur_kernel(l), p->scalars); /* scalars are read from their buffer */
    return kexpr_scalar(p, n->op == OP_HYPER      ? l->hyper_slot[n->attr.sym]
                           : n->op == OP_STEP     ? KSCALAR_STEP
                           : n->op == OP_TRAINING ? l->training_slot
                           : n->op == OP_SEED     ? l->seed_slot
                                                  : KSCALAR_BATCH);
  case OP_ELEMENT: { /* b * numel + the row-major index: 64-bit index arithmetic */
    KExpr *flat = n->type.batched ? b : kexpr_index_const(p, 0);
    for (int i = 0; i < n->type.rank; i++) flat = kexpr_iadd(p, kexpr_imul(p, flat, n->type.dims[i]), idx[i]);
    return flat;
  }
  case OP_INPUT:
  case OP_PARAM:
  case OP_STATE: return load(l, l->sym_buf[n->attr.sym], idx, b);
  case OP_STOP_GRAD:
  case OP_GRADIENT: return gen(l, n->args[0], idx, b);
  case OP_UNFOLD: { /* [..., ky, kx, oy, ox] reads [..., oy s + ky - p, ox s + kx - p] */
    int lead = n->type.rank - 4;
    for (int i = 0; i < lead; i++) aidx[i] = idx[i];
    aidx[lead] = window_index(l, idx[lead + 2], idx[lead], n);
    aidx[lead + 1] = window_index(l, idx[lead + 3], idx[lead + 1], n);
    return guarded_operand(l, n, 0, aidx, b);
  }
  case OP_BROADCAST: return gen_operand(l, n, 0, idx, b);
  case OP_TRANSPOSE:
    for (int i = 0; i < n->type.rank; i++) aidx[n->attr.perm[i]] = idx[i];
    return gen(l, n->args[0], aidx, b);
  case OP_RESHAPE: {
    /* Row-major: flatten the index, then unflatten in the operand's shape. */
    const Type *at = &node(l, n->args[0])->type;
    KExpr *flat = kexpr_index_const(p, 0);
    for (int i = 0; i < n->type.rank; i++) flat = kexpr_iadd(p, kexpr_imul(p, flat, n->type.dims[i]), idx[i]);
    int64_t stride = type_numel(at);
    for (int i = 0; i < at->rank; i++) {
      stride /= at->dims[i];
      aidx[i] = imod(l, idiv(l, flat, stride), at->dims[i]);
    }
    return gen(l, n->args[0], aidx, b);
  }
  case OP_INDEX: { /* a[L..., i[L...], rest...] */
    int ir = node(l, n->args[1])->type.rank;
    KExpr *i = gen(l, n->args[1], idx, b);
    i->index = true; /* a gathered index: widened to i64 like the others */
    for (int k = 0; k < ir; k++) aidx[k] = idx[k];
    aidx[ir] = i;
    for (int k = ir; k < n->type.rank; k++) aidx[k + 1] = idx[k];
    return gen(l, n->args[0], aidx, b);
  }
  case OP_GATHER: { /* table[i[s...], rest...], 0 outside the table (a guarded load) */
    int ir = node(l, n->args[1])->type.rank;
    KExpr *i = gen(l, n->args[1], idx, b);
    i->index = true;
    aidx[0] = i;
    for (int k = ir; k < n->type.rank; k++) aidx[k - ir + 1] = idx[k];
    return guarded_operand(l, n, 0, aidx, b);
  }
  case OP_ONEHOT: { /* [L..., k]: k == i[L...] */
    int r = n->type.rank;
    KExpr *i = gen(l, n->args[0], idx, b);
    i->index = true;
    return kexpr_op(p, OP_EQ, DT_F32, idx[r - 1], i, NULL);
  }
  case OP_MATMUL: { /* an outer product: contraction over one element */
    KExpr *ai[NNC_MAX_RANK], *bi[NNC_MAX_RANK];
    matmul_index(l, n, idx, kexpr_index_const(p, 0), ai, bi);
    return kexpr_op(p, OP_MUL, DT_F32, gen(l, n->args[0], ai, b), gen(l, n->args[1], bi, b), NULL);
  }
  default:
    break;
  }
  NNC_ASSERT(ir_ops[n->op].flags & OPF_ELEMWISE);
  KExpr *ops[3] = {NULL, NULL, NULL};
  for (int k = 0; k < n->nargs; k++) ops[k] = gen_operand(l, n, k, idx, b);
  return kexpr_op(p, n->op, n->type.dtype, ops[0], ops[1], ops[2]);
}

/* ---- kernels ------------------------------------------------------------------------- */

typedef struct Nest {
  KStmt *outer;            /* the outermost loop */
  KStmt *inner;            /* where the body goes */
  KExpr *b;                /* batch index or NULL */
  KExpr *idx[NNC_MAX_RANK];
} Nest;

static void push(Lowering *l, KStmt *parent, KStmt *s) {
  if (parent)
    kstmt_append(&parent->body, &parent->nbody, &parent->capbody, s);
  else
    kstmt_append(&cur_kernel(l)->body, &cur_kernel(l)->nbody, &cur_kernel(l)->capbody, s);
}

static KStmt *loop(Lowering *l, KStmt *parent, int64_t extent, bool batched, unsigned flags, KExpr **var) {
  int32_t v = new_var(l, extent, batched);
  KStmt *s = kstmt_loop(l->p, v, extent, batched, flags);
  push(l, parent, s);
  *var = kexpr_var(l->p, v);
  return s;
}

/* Loops over a value's domain: the batch (parallel), then each axis; the
 * first loop is parallel.  `nest_rank` axes get loops (the rest are left to
 * the caller). */
static Nest nest(Lowering *l, const Type *t, int nest_rank) {
  Nest ns;
  memset(&ns, 0, sizeof ns);
  KStmt *parent = NULL;
  if (t->batched) {
    parent = loop(l, NULL, 1, true, KL_PARALLEL, &ns.b);
    ns.outer = parent;
  }
  for (int i = 0; i < nest_rank; i++) {
    KStmt *s = loop(l, parent, t->dims[i], false, parent ? 0 : KL_PARALLEL, &ns.idx[i]);
    if (!ns.outer) ns.outer = s;
    parent = s;
  }
  if (!ns.outer) { /* an unbatched scalar: one iteration */
    KExpr *unused;
    parent = loop(l, NULL, 1, false, KL_PARALLEL, &unused);
    ns.outer = parent;
  }
  ns.inner = parent;
  return ns;
}

static void store(Lowering *l, KStmt *parent, int32_t buf, KExpr **idx, KExpr *b, KExpr *value) {
  const KBuffer *kb = &l->p->bufs[buf];
  KExpr *full[NNC_MAX_RANK + 1];
  int n = 0;
  if (kb->type.batched) full[n++] = b;
  for (int i = 0; i < kb->type.rank; i++) full[n++] = idx[i];
  kernel_use_buffer(l->p, cur_kernel(l), buf);
  push(l, parent, kstmt_store(l->p, buf, full, n, value));
}

static uint32_t begin_kernel(Lowering *l, const char *what, ValueId v) {
  Kernel *k = kprog_add_kernel(l->p, what);
  k->loc = node(l, v)->loc;
  k->what = what;
  l->kidx = l->p->nkernels - 1;
  return l->kidx;
}

/* out[I] = value at I, for elementwise-like nodes. */
static void kernel_map(Lowering *l, ValueId v, int32_t dst) {
  const Node *n = node(l, v);
  begin_kernel(l, ir_ops[n->op].name, v);
  Nest ns = nest(l, &n->type, n->type.rank);
  int32_t keep = l->buf[v];
  l->buf[v] = -1; /* build its expression, not a load of itself */
  KExpr *value = gen(l, v, ns.idx, ns.b);
  l->buf[v] = keep;
  store(l, ns.inner, dst, ns.idx, ns.b, value);
}

/* A copy kernel dst = src (for outputs whose value lives elsewhere). */
static void kernel_copy(Lowering *l, ValueId v, int32_t dst) {
  const Node *n = node(l, v);
  begin_kernel(l, "copy", v);
  Nest ns = nest(l, &n->type, n->type.rank);
  store(l, ns.inner, dst, ns.idx, ns.b, gen(l, v, ns.idx, ns.b));
}

static KExpr *neg_inf(Lowering *l) { return kexpr_const(l->p, DT_F32, -INFINITY); }

/* A new axis (its loop variable) for a contraction. */
static KAxis axis(Lowering *l, int64_t extent, bool batched, KExpr **var) {
  KAxis x = {new_var(l, extent, batched), extent, batched};
  *var = kexpr_var(l->p, x.var);
  return x;
}

/* Appends `contract dst[idx] = t ... with t = combine axes[nfree..] of a * b`. */
static void contract(Lowering *l, KStmt *parent, int32_t dst, KExpr **idx, KExpr *b, const KAxis *axes, int nfree,
                     int nred, Op combine, KExpr *fa, KExpr *fb) {
  const KBuffer *kb = &l->p->bufs[dst];
  KExpr *full[NNC_MAX_RANK + 1];
  int n = 0;
  if (kb->type.batched) full[n++] = b;
  for (int i = 0; i < kb->type.rank; i++) full[n++] = idx[i];
  kernel_use_buffer(l->p, cur_kernel(l), dst);
  int32_t t = kernel_new_temp(l->p, cur_kernel(l), fa->dtype);
  push(l, parent,
       kstmt_contract(l->p, dst, full, n, axes, nfree, nred, combine, t, fa, fb, kexpr_temp(l->p, t, fa->dtype)));
}

/* The launch loop of a contraction kernel over a value of type t: the
 * batch, else the first axis of a matrix or more, else one iteration.  The other axes of t
 * are the contraction's free axes: their indices go to idx[first..rank),
 * where *first is the number of axes the launch loop covers. */
static Nest launch_nest(Lowering *l, const Type *t, int *first) {
  *first = !t->batched && t->rank > 1 ? 1 : 0; /* a vector: one iteration, its axis free */
  return nest(l, t, *first);
}

static int free_axes(Lowering *l, const Type *t, int first, KExpr **idx, KAxis *axes) {
  int n = 0;
  for (int i = first; i < t->rank; i++) axes[n++] = axis(l, t->dims[i], false, &idx[i]);
  return n;
}

/* A contraction kernel for v: begins it, opens its launch nest over v's
 * type (into *ns), and makes the rest of v's axes the contraction's free
 * axes (into idx and axes); returns their count. */
static int begin_contraction(Lowering *l, ValueId v, const char *what, Nest *ns, KExpr **idx, KAxis *axes) {
  const Type *t = &node(l, v)->type;
  begin_kernel(l, what, v);
  int first;
  *ns = launch_nest(l, t, &first);
  for (int i = 0; i < first; i++) idx[i] = ns->idx[i];
  return free_axes(l, t, first, idx, axes);
}

/* reduce_sum / reduce_max over a set of per-sample axes: a contraction
 * whose reduction axes are those axes. */
static void kernel_reduce(Lowering *l, ValueId v, int32_t dst) {
  const Node *n = node(l, v);
  const Type *at = &node(l, n->args[0])->type;
  KAxis axes[NNC_MAX_CONTRACT_AXES];
  KExpr *idx[NNC_MAX_RANK], *aidx[NNC_MAX_RANK];
  Nest ns;
  int nfree = begin_contraction(l, v, ir_ops[n->op].name, &ns, idx, axes), nred = 0;
  for (int i = 0, o = 0; i < at->rank; i++) {
    if (n->attr.axes >> i & 1)
      axes[nfree + nred++] = axis(l, at->dims[i], false, &aidx[i]);
    else
      aidx[i] = idx[o++];
  }
  KExpr *x = gen(l, n->args[0], aidx, ns.b);
  contract(l, ns.inner, dst, idx, ns.b, axes, nfree, nred, n->op == OP_REDUCE_MAX ? OP_MAX : OP_ADD, x, NULL);
}

/* argmax along the last axis: the first maximal index. */
static void kernel_argmax(Lowering *l, ValueId v, int32_t dst) {
  const Node *n = node(l, v);
  const Type *at = &node(l, n->args[0])->type;
  begin_kernel(l, "argmax", v);
  Nest ns = nest(l, &n->type, n->type.rank);
  KProgram *p = l->p;
  int32_t best = kernel_new_temp(p, cur_kernel(l), DT_F32), arg = kernel_new_temp(p, cur_kernel(l), DT_I32);
  push(l, ns.inner, kstmt_let(p, best, neg_inf(l)));
  push(l, ns.inner, kstmt_let(p, arg, kexpr_const(p, DT_I32, 0)));
  KExpr *aidx[NNC_MAX_RANK];
  for (int i = 0; i < n->type.rank; i++) aidx[i] = ns.idx[i];
  KStmt *r = loop(l, ns.inner, at->dims[at->rank - 1], false, KL_REDUCE, &aidx[at->rank - 1]);
  KExpr *x = gen(l, n->args[0], aidx, ns.b);
  KExpr *better = kexpr_op(p, OP_GT, DT_F32, x, kexpr_temp(p, best, DT_F32), NULL);
  KExpr *ri = kexpr_op(p, OP_CAST, DT_I32, aidx[at->rank - 1], NULL, NULL);
  push(l, r, kstmt_assign(p, arg, kexpr_op(p, OP_WHERE, DT_I32, better, ri, kexpr_temp(p, arg, DT_I32))));
  push(l, r, kstmt_assign(p, best, kexpr_op(p, OP_WHERE, DT_F32, better, x, kexpr_temp(p, best, DT_F32))));
  store(l, ns.inner, dst, ns.idx, ns.b, kexpr_temp(p, arg, DT_I32));
}

/* An outer product (a matmul over one element) inlined into v's operand:
 * its two factors at out_idx, so a batch sum of it is a product of two. */
static bool outer_factors(Lowering *l, ValueId v, KExpr **out_idx, KExpr *b, KExpr **fa, KExpr **fb) {
  const Node *n = node(l, v);
  if (n->op != OP_MATMUL || l->buf[v] >= 0 || contraction_extent(l, n) != 1) return false;
  KExpr *ai[NNC_MAX_RANK], *bi[NNC_MAX_RANK];
  matmul_index(l, n, out_idx, kexpr_index_const(l->p, 0), ai, bi);
  *fa = gen(l, n->args[0], ai, b);
  *fb = gen(l, n->args[1], bi, b);
  return true;
}

/* ---- windows ---------------------------------------------------------------------------- */

/* The index of a window position from input index x and offset k,
 * (x + pad - k) / stride: *pos; and, for a stride above 1, the f32
 * condition that the window really covers x (x + pad - k >= 0 and
 * divisible), AND-ed into *cond. */
static KExpr *position_of(Lowering *l, KExpr *x, KExpr *k, const Node *n, KExpr **cond) {
  KProgram *p = l->p;
  int s = n->attr.win.stride;
  KExpr *num = kexpr_iadd(p, kexpr_iadd(p, x, kexpr_index_const(p, n->attr.win.pad)), kexpr_imul(p, k, -1));
  if (s == 1) return num; /* a guarded load reads 0 out of range */
  KExpr *rem = kexpr_op(p, OP_SUB, DT_I32, num, kexpr_imul(p, idiv(l, num, s), s), NULL);
  rem->index = true;
  KExpr *c = kexpr_op(p, OP_MUL, DT_F32, kexpr_op(p, OP_GE, DT_F32, num, kexpr_index_const(p, 0), NULL),
                      kexpr_op(p, OP_EQ, DT_F32, rem, kexpr_index_const(p, 0), NULL), NULL);
  *cond = *cond ? kexpr_op(p, OP_MUL, DT_F32, *cond, c, NULL) : c;
  return idiv(l, num, s);
}

static KExpr *where_covered(Lowering *l, KExpr *cond, KExpr *e) {
  return cond ? kexpr_op(l->p, OP_WHERE, e->dtype, cond, e, kexpr_const(l->p, e->dtype, 0)) : e;
}

/* A copy of window op n's operand k with `pad` zeros before and after each
 * of its last two axes, made by a kernel of its own (the one guarded read):
 * the window op then reads the copy without guards, where a guarded read
 * costs a mask per vector of the CPU's direct plans; a pass over the
 * operand against k^2 filters' worth of multiply-adds.  Returns the copy. */
static int32_t padded_copy(Lowering *l, const Node *n, int k, int64_t pad) {
  ValueId a = n->args[k];
  Type t = node(l, a)->type;
  t.dims[t.rank - 2] += 2 * pad;
  t.dims[t.rank - 1] += 2 * pad;
  char name[40];
  snprintf(name, sizeof name, "t%u.pad", a);
  int32_t buf = add_buf(l, name, KB_TEMP, t, 0, node(l, a)->loc);
  begin_kernel(l, "pad", a);
  Nest ns = nest(l, &t, t.rank);
  KExpr *src[NNC_MAX_RANK];
  for (int i = 0; i < t.rank; i++)
    src[i] = i < t.rank - 2 ? ns.idx[i] : kexpr_iadd(l->p, ns.idx[i], kexpr_index_const(l->p, -pad));
  KExpr *e = gen(l, a, src, ns.b);
  NNC_ASSERT(e->kind == KE_LOAD);
  e->guarded = true;
  store(l, ns.inner, buf, ns.idx, ns.b, e);
  return buf;
}

/* conv2d(x[c,h,w], w[f,c,k,k]): for each output [f, oy, ox], a sum over
 * c, ky, kx of w[f, c, ky, kx] * x[c, oy s + ky - p, ox s + kx - p]; with
 * padding, x[c, oy s + ky, ox s + kx] of x's padded copy. */
static void kernel_conv2d(Lowering *l, ValueId v, int32_t dst) {
  const Node *n = node(l, v);
  const Type *xt = &node(l, n->args[0])->type;
  int pad = n->attr.win.pad;
  int32_t xpad = pad > 0 ? padded_copy(l, n, 0, pad) : -1;
  KAxis axes[NNC_MAX_CONTRACT_AXES];
  KExpr *idx[NNC_MAX_RANK], *c, *ky, *kx;
  Nest ns;
  int nfree = begin_contraction(l, v, "conv2d", &ns, idx, axes), k = n->attr.win.size;
  axes[nfree] = axis(l, xt->dims[0], false, &c);
  axes[nfree + 1] = axis(l, k, false, &ky);
  axes[nfree + 2] = axis(l, k, false, &kx);
  KExpr *wi[4] = {idx[0], c, ky, kx};
  KExpr *xi[3] = {c, window_index(l, idx[1], ky, n), window_index(l, idx[2], kx, n)};
  if (xpad >= 0) { /* the padded copy: the same positions, pad further on */
    xi[1] = kexpr_iadd(l->p, xi[1], kexpr_index_const(l->p, pad));
    xi[2] = kexpr_iadd(l->p, xi[2], kexpr_index_const(l->p, pad));
  }
  contract(l, ns.inner, dst, idx, ns.b, axes, nfree, 3, OP_ADD, gen(l, n->args[1], wi, ns.b),
           xpad >= 0 ? load(l, xpad, xi, ns.b) : guarded_operand(l, n, 0, xi, ns.b));
}

/* conv2d_data_grad(g[f,h',w'], w[f,c,k,k]) -> [c,h,w]: for each input
 * [c, y, x], a sum over f, ky, kx of g[f, (y + p - ky) / s, (x + p - kx) / s]
 * (where that window position exists) * w[f, c, ky, kx]. */
static void kernel_conv2d_data_grad(Lowering *l, ValueId v, int32_t dst) {
  const Node *n = node(l, v);
  const Type *gt = &node(l, n->args[0])->type;
  /* stride 1: g padded by k - 1 - p, read at y + k - 1 - ky without guards */
  int gpad = n->attr.win.size - 1 - n->attr.win.pad;
  int32_t gbuf = n->attr.win.stride == 1 && gpad >= 0 ? padded_copy(l, n, 0, gpad) : -1;
  KAxis axes[NNC_MAX_CONTRACT_AXES];
  KExpr *idx[NNC_MAX_RANK], *f, *ky, *kx, *cond = NULL;
  Nest ns;
  int nfree = begin_contraction(l, v, "conv2d_data_grad", &ns, idx, axes), k = n->attr.win.size;
  axes[nfree] = axis(l, gt->dims[0], false, &f);
  axes[nfree + 1] = axis(l, k, false, &ky);
  axes[nfree + 2] = axis(l, k, false, &kx);
  KExpr *gi[3] = {f, position_of(l, idx[1], ky, n, &cond), position_of(l, idx[2], kx, n, &cond)};
  KExpr *wi[4] = {f, idx[0], ky, kx};
  KExpr *ga;
  if (gbuf >= 0) {
    gi[1] = kexpr_iadd(l->p, gi[1], kexpr_index_const(l->p, gpad));
    gi[2] = kexpr_iadd(l->p, gi[2], kexpr_index_const(l->p, gpad));
    ga = load(l, gbuf, gi, ns.b);
  } else {
    ga = where_covered(l, cond, guarded_operand(l, n, 0, gi, ns.b));
  }
  contract(l, ns.inner, dst, idx, ns.b, axes, nfree, 3, OP_ADD, ga, gen(l, n->args[1], wi, ns.b));
}

/* The factors of conv2d_filter_grad(x, g) at filter index [f, c, ky, kx]
 * and window position (oy, ox): g[f, oy, ox] and x[c, oy s + ky - p, ox s + kx - p]. */
static void filter_grad_factors(Lowering *l, const Node *n, KExpr **idx, KExpr *oy, KExpr *ox, KExpr *b, KExpr **fa,
                                KExpr **fb) {
  KExpr *gi[3] = {idx[0], oy, ox};
  KExpr *xi[3] = {idx[1], window_index(l, oy, idx[2], n), window_index(l, ox, idx[3], n)};
  *fa = gen(l, n->args[1], gi, b);
  *fb = guarded_operand(l, n, 0, xi, b);
}

/* One sample's filter gradient, when it is not inlined into its batch sum;
 * with padding, x read from its padded copy. */
static void kernel_conv2d_filter_grad(Lowering *l, ValueId v, int32_t dst) {
  const Node *n = node(l, v);
  const Type *gt = &node(l, n->args[1])->type;
  int pad = n->attr.win.pad;
  int32_t xpad = pad > 0 ? padded_copy(l, n, 0, pad) : -1;
  KAxis axes[NNC_MAX_CONTRACT_AXES];
  KExpr *idx[NNC_MAX_RANK], *oy, *ox, *fa, *fb;
  Nest ns;
  int nfree = begin_contraction(l, v, "conv2d_filter_grad", &ns, idx, axes);
  axes[nfree] = axis(l, gt->dims[1], false, &oy);
  axes[nfree + 1] = axis(l, gt->dims[2], false, &ox);
  if (xpad >= 0) {
    KExpr *gi[3] = {idx[0], oy, ox};
    KExpr *xi[3] = {idx[1], kexpr_iadd(l->p, kexpr_imul(l->p, oy, n->attr.win.stride), idx[2]),
                    kexpr_iadd(l->p, kexpr_imul(l->p, ox, n->attr.win.stride), idx[3])};
    fa = gen(l, n->args[1], gi, ns.b);
    fb = load(l, xpad, xi, ns.b);
  } else {
    filter_grad_factors(l, n, idx, oy, ox, ns.b, &fa, &fb);
  }
  contract(l, ns.inner, dst, idx, ns.b, axes, nfree, 2, OP_ADD, fa, fb);
}

/* fold(g[..., k, k, h', w']) -> [..., h, w]: for each [..., y, x], a sum
 * over ky, kx of g[..., ky, kx, (y + p - ky) / s, (x + p - kx) / s] where
 * that window position exists. */
static void kernel_fold(Lowering *l, ValueId v, int32_t dst) {
  const Node *n = node(l, v);
  begin_kernel(l, "fold", v);
  int s = n->attr.win.stride, lead = n->type.rank - 2;
  if (s == n->attr.win.size && n->attr.win.pad == 0) {
    /* windows that tile the input (pooling's size = stride): each element
     * lies in one window, at (y mod s, x mod s) of window (y / s, x / s);
     * past the last whole window (floor) the guarded load reads 0, and
     * when there is none past it the operand is inlined (reads_guarded) */
    Nest ns = nest(l, &n->type, n->type.rank);
    KExpr *gi[NNC_MAX_RANK];
    for (int i = 0; i < lead; i++) gi[i] = ns.idx[i];
    gi[lead] = imod(l, ns.idx[lead], s), gi[lead + 1] = imod(l, ns.idx[lead + 1], s);
    gi[lead + 2] = idiv(l, ns.idx[lead], s), gi[lead + 3] = idiv(l, ns.idx[lead + 1], s);
    store(l, ns.inner, dst, ns.idx, ns.b, guarded_operand(l, n, 0, gi, ns.b));
    return;
  }
  int first;
  Nest ns = launch_nest(l, &n->type, &first);
  KAxis axes[NNC_MAX_CONTRACT_AXES];
  KExpr *idx[NNC_MAX_RANK], *ky, *kx, *cond = NULL, *gi[NNC_MAX_RANK];
  for (int i = 0; i < first; i++) idx[i] = ns.idx[i];
  int nfree = free_axes(l, &n->type, first, idx, axes), k = n->attr.win.size;
  axes[nfree] = axis(l, k, false, &ky);
  axes[nfree + 1] = axis(l, k, false, &kx);
  for (int i = 0; i < lead; i++) gi[i] = idx[i];
  gi[lead] = ky, gi[lead + 1] = kx;
  gi[lead + 2] = position_of(l, idx[lead], ky, n, &cond);
  gi[lead + 3] = position_of(l, idx[lead + 1], kx, n, &cond);
  contract(l, ns.inner, dst, idx, ns.b, axes, nfree, 2, OP_ADD, where_covered(l, cond, guarded_operand(l, n, 0, gi, ns.b)),
           NULL);
}

/* Loops over the columns of a scatter's rows, axes [from, rank) of t
 * (plain loops, innermost: contiguous), inside parent; their variables go
 * to col[from - 1 ..].  Returns where the body goes. */
static KStmt *column_loops(Lowering *l, KStmt *parent, const Type *t, int from, KExpr **col) {
  for (int k = from; k < t->rank; k++) parent = loop(l, parent, t->dims[k], false, 0, &col[k - 1]);
  return parent;
}

/* scatter_add(g, i) -> T [n, r...], or its batch sum (summed: the batch
 * is one more index axis), as a scatter: g [s..., r...] added into the
 * rows of T that i [s...] names,
 *
 *   for each column r (the launch loop: the first of r, or the sample):
 *     for v in 0..n: dst[v, r] = 0
 *     for each position s, in order (reduce):  let t = i[s]
 *       dst[min(max(t, 0), n - 1), r] = dst[...] + where((t >= 0) * (t < n), g[s, r], 0)
 *
 * so the work is the tokens, not the table's rows times the tokens.  The
 * positions run in order in one loop nest per column: the sums are the
 * same on every target, without atomics, and the columns stay parallel.
 * An index outside [0, n) adds 0 to a row clamped into the table, so no
 * store leaves it. */
static void kernel_scatter(Lowering *l, ValueId v, const Node *n, int32_t dst, bool summed) {
  KProgram *p = l->p;
  const Type *t = &node(l, v)->type, *it = &node(l, n->args[1])->type;
  begin_kernel(l, summed ? "batch_sum" : "scatter_add", v);
  /* The launch loop: the sample, else the first column axis, else one iteration. */
  KExpr *b = NULL, *launch, *col[NNC_MAX_RANK], *zcol[NNC_MAX_RANK], *row, *s[NNC_MAX_RANK];
  int first = t->batched ? 1 : 2; /* the first axis of t that an inner loop runs over */
  KStmt *top = loop(l, NULL, t->batched ? 1 : t->rank > 1 ? t->dims[1] : 1, t->batched, KL_PARALLEL, &launch);
  if (t->batched) b = launch;
  else if (t->rank > 1) col[0] = zcol[0] = launch;
  /* Zero the rows. */
  KStmt *z = column_loops(l, loop(l, top, t->dims[0], false, 0, &row), t, first, zcol);
  KExpr *zi[NNC_MAX_RANK];
  zi[0] = row;
  for (int k = 1; k < t->rank; k++) zi[k] = zcol[k - 1];
  store(l, z, dst, zi, b, kexpr_const(p, DT_F32, 0));
  /* The positions in order: the batch (summed), then i's axes. */
  KStmt *in = top;
  KExpr *bs = b;
  if (summed) in = loop(l, in, 1, true, KL_REDUCE, &bs);
  for (int k = 0; k < it->rank; k++) in = loop(l, in, it->dims[k], false, KL_REDUCE, &s[k]);
  int32_t tok = kernel_new_temp(p, cur_kernel(l), DT_I32);
  push(l, in, kstmt_let(p, tok, gen(l, n->args[1], s, bs)));
  in = column_loops(l, in, t, first, col);
  KExpr *ti = kexpr_temp(p, tok, DT_I32);
  ti->index = true;
  KExpr *lo = kexpr_op(p, OP_MAX, DT_I32, ti, kexpr_index_const(p, 0), NULL);
  lo->index = true;
  KExpr *clamped = kexpr_op(p, OP_MIN, DT_I32, lo, kexpr_index_const(p, t->dims[0] - 1), NULL);
  clamped->index = true;
  KExpr *di[NNC_MAX_RANK], *gi[NNC_MAX_RANK];
  di[0] = clamped;
  for (int k = 0; k < it->rank; k++) gi[k] = s[k];
  for (int k = 1; k < t->rank; k++) di[k] = gi[it->rank + k - 1] = col[k - 1];
  KExpr *tv = kexpr_temp(p, tok, DT_I32);
  KExpr *inside = kexpr_op(p, OP_MUL, DT_F32, kexpr_op(p, OP_GE, DT_F32, tv, kexpr_const(p, DT_I32, 0), NULL),
                           kexpr_op(p, OP_LT, DT_F32, tv, kexpr_const(p, DT_I32, (double)t->dims[0]), NULL), NULL);
  KExpr *add = kexpr_op(p, OP_WHERE, DT_F32, inside, gen(l, n->args[0], gi, bs), kexpr_const(p, DT_F32, 0));
  store(l, in, dst, di, b, kexpr_op(p, OP_ADD, DT_F32, load(l, dst, di, b), add, NULL));
}

/* batch_sum: for each element, a sum over the batch (a contraction whose
 * one reduction axis is the batch): of a product of two factors when the
 * operand is an inlined outer product (a weight gradient), else of the
 * operand (a bias gradient).  A summed product (summed_product) sums over
 * the batch and its k at once: one reduction axis B K long, at sample
 * kb / K and k = kb mod K, so the CPU runs it as one matrix product. */
static void kernel_batch_sum(Lowering *l, ValueId v, int32_t dst) {
  const Node *n = node(l, v);
  const Node *a = node(l, n->args[0]);
  if (a->op == OP_SCATTER_ADD && l->buf[n->args[0]] < 0) { /* an embedding's gradient: a scatter over the batch too */
    kernel_scatter(l, v, a, dst, true);
    return;
  }
  KAxis axes[NNC_MAX_CONTRACT_AXES];
  KExpr *bv, *idx[NNC_MAX_RANK];
  Nest ns;
  int nfree = begin_contraction(l, v, "batch_sum", &ns, idx, axes);
  KExpr *fa, *fb = NULL;
  if (a->op == OP_MATMUL && l->buf[n->args[0]] < 0 && contraction_extent(l, a) > 1) {
    int64_t kext = contraction_extent(l, a);
    KExpr *kb, *ai[NNC_MAX_RANK], *bi[NNC_MAX_RANK];
    axes[nfree] = axis(l, kext, true, &kb);
    KExpr *sample = idiv(l, kb, kext);
    matmul_index(l, a, idx, imod(l, kb, kext), ai, bi);
    fa = gen(l, a->args[0], ai, sample);
    fb = gen(l, a->args[1], bi, sample);
    contract(l, ns.inner, dst, idx, NULL, axes, nfree, 1, OP_ADD, fa, fb);
    return;
  }
  axes[nfree] = axis(l, 1, true, &bv);
  int nred = 1;
  if (a->op == OP_CONV2D_FILTER_GRAD && l->buf[n->args[0]] < 0) { /* sum over the batch and the window positions */
    const Type *gt = &node(l, a->args[1])->type;
    KExpr *oy, *ox;
    axes[nfree + nred++] = axis(l, gt->dims[1], false, &oy);
    axes[nfree + nred++] = axis(l, gt->dims[2], false, &ox);
    filter_grad_factors(l, a, idx, oy, ox, bv, &fa, &fb);
  } else if (!outer_factors(l, n->args[0], idx, bv, &fa, &fb)) {
    fa = gen(l, n->args[0], idx, bv);
  }
  contract(l, ns.inner, dst, idx, NULL, axes, nfree, nred, OP_ADD, fa, fb);
}

/* Matmul operand indices for output index out_idx and contraction index
 * k: (i, k) and (k, j) for matrices, without i or j for vectors; in a
 * batched product the leading axes of each operand line up with the
 * output's trailing leading axes (NumPy's broadcasting: extent 1 reads 0). */
static void matmul_index(Lowering *l, const Node *n, KExpr **out_idx, KExpr *k, KExpr **ai, KExpr **bi) {
  const Type *at = &node(l, n->args[0])->type, *bt = &node(l, n->args[1])->type;
  if (at->rank > 2 || bt->rank > 2) {
    int r = n->type.rank;
    Type lead = n->type, la = *at, lb = *bt;
    lead.rank = (uint8_t)(r - 2), la.rank = (uint8_t)(at->rank - 2), lb.rank = (uint8_t)(bt->rank - 2);
    broadcast_index(l, &lead, &la, out_idx, ai);
    broadcast_index(l, &lead, &lb, out_idx, bi);
    ai[la.rank] = out_idx[r - 2], ai[la.rank + 1] = k;
    bi[lb.rank] = k, bi[lb.rank + 1] = out_idx[r - 1];
    return;
  }
  int o = 0;
  if (at->rank == 2) ai[0] = out_idx[o++], ai[1] = k;
  else ai[0] = k;
  bi[0] = k;
  if (bt->rank == 2) bi[1] = out_idx[o++];
}

/* A matmul: a contraction over k for each output element (a batched
 * product's leading axes are free axes too: the launch loop takes the
 * batch or the first of them, the contraction the rest). */
static void kernel_matmul(Lowering *l, ValueId v, int32_t dst) {
  const Node *n = node(l, v);
  KAxis axes[NNC_MAX_CONTRACT_AXES];
  KExpr *k, *idx[NNC_MAX_RANK], *ai[NNC_MAX_RANK], *bi[NNC_MAX_RANK];
  Nest ns;
  int nfree = begin_contraction(l, v, "matmul", &ns, idx, axes);
  axes[nfree] = axis(l, contraction_extent(l, n), false, &k);
  matmul_index(l, n, idx, k, ai, bi);
  contract(l, ns.inner, dst, idx, ns.b, axes, nfree, 1, OP_ADD, gen(l, n->args[0], ai, ns.b),
           gen(l, n->args[1], bi, ns.b));
}

static void emit_node(Lowering *l, ValueId v, int32_t dst) {
  switch (node(l, v)->op) {
  case OP_REDUCE_SUM:
  case OP_REDUCE_MAX: kernel_reduce(l, v, dst); break;
  case OP_ARGMAX: kernel_argmax(l, v, dst); break;
  case OP_BATCH_SUM: kernel_batch_sum(l, v, dst); break;
  case OP_CONV2D: kernel_conv2d(l, v, dst); break;
  case OP_CONV2D_DATA_GRAD: kernel_conv2d_data_grad(l, v, dst); break;
  case OP_CONV2D_FILTER_GRAD: kernel_conv2d_filter_grad(l, v, dst); break;
  case OP_FOLD: kernel_fold(l, v, dst); break;
  case OP_SCATTER_ADD: kernel_scatter(l, v, node(l, v), dst, false); break;
  case OP_MATMUL:
    if (contraction_extent(l, node(l, v)) > 1) {
      kernel_matmul(l, v, dst);
      break;
    }
    kernel_map(l, v, dst); /* an outer product is elementwise */
    break;
  default: kernel_map(l, v, dst); break;
  }
}

/* ---- the pass -------------------------------------------------------------------------------- */

/* Which nodes are materialized (l->mat: a buffer and a kernel of their
 * own) and which are inlined into their consumers: see the file comment.
 * Counts uses and inlined depths on the way. */
static void choose_materialized(Lowering *l) {
  Module *m = l->m;
  for (uint32_t v = 0; v < m->nnodes; v++) {
    const Node *n = &m->nodes[v];
    for (int k = 0; k < n->nargs; k++) l->uses[n->args[k]]++;
    if (n->op == OP_BATCH_SUM) l->summed[n->args[0]] = true;
  }
  /* The prediction is no use: its copy (lower_program) reads it where
   * training left it, or computes it again, so training keeps its kernels. */
  for (uint32_t o = 0; o < m->noutputs; o++)
    if (m->outputs[o].kind != OUT_PREDICT) l->uses[m->outputs[o].value]++;
  for (uint32_t v = 0; v < m->nnodes; v++) {
    const Node *n = &m->nodes[v];
    l->buf[v] = -1;
    if (run_time_scalar_leaf(n->op) || is_leaf_buffer(n->op))
      continue;
    int d = 0;
    for (int k = 0; k < n->nargs; k++)
      if (!l->mat[n->args[k]] && l->depth[n->args[k]] > d) d = l->depth[n->args[k]];
    l->depth[v] = (uint8_t)(d + 1);
    l->mat[v] = !inlinable(l, v) || d + 1 > MAX_INLINE_DEPTH || (l->uses[v] > 1 && !cheap(l, v));
    for (int k = 0; k < n->nargs; k++) {
      const Node *a = node(l, n->args[k]);
      if (reads_guarded(n, k) && !is_leaf_buffer(a->op)) l->mat[n->args[k]] = true;
      /* a filter gradient is a whole reduction: inlined only into the batch sum that sums it */
      if (a->op == OP_CONV2D_FILTER_GRAD && (n->op != OP_BATCH_SUM || l->uses[n->args[k]] > 1)) l->mat[n->args[k]] = true;
    }
  }
  /* Outputs are computed in graph order by their own kernels: an update
   * computed at the end straight into its parameter could read another
   * parameter already overwritten.  Updates then move in place only
   * through lower_place_update's checks. */
  for (uint32_t o = 0; o < m->noutputs; o++) {
    ValueId v = m->outputs[o].value;
    const Node *n = &m->nodes[v];
    if (m->outputs[o].kind != OUT_PREDICT && !is_leaf_buffer(n->op) && !run_time_scalar_leaf(n->op))
      l->mat[v] = true;
  }
  /* A parameter's gradient (a `gradient` node) is stored in a buffer of
   * its own: the buffer of its operand when that is materialized for it
   * alone (a batch sum), else the node's.  Data-parallel training
   * all-reduces these buffers between the two sides of the step. */
  for (uint32_t v = 0; v < m->nnodes; v++) {
    if (m->nodes[v].op != OP_GRADIENT) continue;
    ValueId a = m->nodes[v].args[0];
    const Node *an = node(l, a);
    bool own = l->mat[a] && l->uses[a] == 1 && !is_leaf_buffer(an->op) && !run_time_scalar_leaf(an->op) &&
               an->op != OP_GRADIENT;
    for (uint32_t o = 0; o < m->noutputs && own; o++) own = m->outputs[o].value != a;
    l->mat[v] = !own;
    l->gradient[own ? a : v] = true;
  }
}

KProgram *lower_program(Module *m, const LowerOptions *o) {
  Lowering l;
  memset(&l, 0, sizeof l);
  l.m = m;
  l.p = kprog_new(m);
  KProgram *p = l.p;
  size_t nn = m->nnodes ? m->nnodes : 1;
  l.buf = nnc_xmalloc(nn * sizeof *l.buf);
  l.uses = nnc_xcalloc(nn, sizeof *l.uses);
  l.depth = nnc_xcalloc(nn, 1);
  l.mat = nnc_xcalloc(nn, 1);
  l.position = nnc_xcalloc(nn, 1);
  l.summed = nnc_xcalloc(nn, 1);
  l.gradient = nnc_xcalloc(nn, 1);
  l.sym_buf = nnc_xmalloc((m->nsyms ? m->nsyms : 1) * sizeof *l.sym_buf);
  l.hyper_slot = nnc_xmalloc((m->nsyms ? m->nsyms : 1) * sizeof *l.hyper_slot);
  for (uint32_t v = 0; v < m->nnodes; v++)
    if (m->nodes[v].op == OP_GRAD) nnc_internal_error(__FILE__, __LINE__, "lowering needs autodiff first");

  /* Symbol buffers, then the scalars, the loss and the metrics. */
  int nhyper = 0;
  for (uint32_t s = 0; s < m->nsyms; s++) {
    const Symbol *sym = &m->syms[s];
    l.sym_buf[s] = -1;
    static const KBufKind kinds[] = {[SYM_INPUT] = KB_INPUT, [SYM_LABEL] = KB_LABEL, [SYM_PARAM] = KB_PARAM,
                                     [SYM_STATE] = KB_STATE};
    if (sym->kind == SYM_HYPER) {
      l.hyper_slot[s] = KSCALAR_HYPER0 + nhyper++;
      continue;
    }
    l.sym_buf[s] = add_buf(&l, sym->name, kinds[sym->kind], sym->type, s, sym->loc);
    if (sym->kind == SYM_INPUT && p->input < 0) p->input = l.sym_buf[s];
    if (sym->kind == SYM_LABEL && p->label < 0) p->label = l.sym_buf[s];
  }
  Type st = type_scalar(DT_F32);
  st.rank = 1;
  l.training_slot = kscalar_training(nhyper);
  l.seed_slot = kscalar_seed(nhyper);
  st.dims[0] = kscalar_count(nhyper);
  p->scalars = add_buf(&l, "scalars", KB_SCALARS, st, 0, 0);

  mark_positions(&l);
  choose_materialized(&l);

  /* Output buffers.  A node computed into an output buffer is stored there
   * by its own kernel; an output whose node lives elsewhere gets a copy. */
  int32_t *out_buf = nnc_xmalloc((m->noutputs ? m->noutputs : 1) * sizeof *out_buf);
  bool *out_direct = nnc_xcalloc(m->noutputs ? m->noutputs : 1, 1);
  uint32_t capmetrics = 0;
  ValueId predict = NO_VALUE;
  for (uint32_t i = 0; i < m->noutputs; i++) {
    const Output *out = &m->outputs[i];
    Type t = m->nodes[out->value].type;
    if (out->kind == OUT_LOSS) {
      out_buf[i] = p->loss = add_buf(&l, "loss", KB_LOSS, t, 0, m->nodes[out->value].loc);
      p->bufs[p->loss].op = (int32_t)m->nodes[out->value].op;
    } else if (out->kind == OUT_METRIC) {
      char name[160];
      snprintf(name, sizeof name, "metric.%s", out->name);
      out_buf[i] = add_buf(&l, name, KB_METRIC, t, 0, m->nodes[out->value].loc);
      p->bufs[out_buf[i]].op = (int32_t)m->nodes[out->value].op;
      VEC_PUSH(p->metrics, p->nmetrics, capmetrics, out_buf[i]);
    } else if (out->kind == OUT_PREDICT) {
      out_buf[i] = -1; /* its buffer and copy come last */
      predict = out->value;
      continue;
    } else {
      out_buf[i] = l.sym_buf[out->sym];
    }
    /* Loss and metrics: the node's own kernel stores straight into the
     * output buffer when it is materialized and is not a leaf. */
    ValueId v = out->value;
    if (out->kind != OUT_UPDATE && l.mat[v] && l.buf[v] < 0) { /* an earlier output may have taken v */
      out_direct[i] = true;
      l.buf[v] = out_buf[i];
    }
  }

  /* Kernels in graph order. */
  bool *is_update = nnc_xcalloc(nn, 1);
  for (uint32_t i = 0; i < m->noutputs; i++)
    if (m->outputs[i].kind == OUT_UPDATE) is_update[m->outputs[i].value] = true;
  uint32_t first_update_kernel = UINT32_MAX;
  for (uint32_t v = 0; v < m->nnodes; v++) {
    if (!l.mat[v]) continue;
    if (l.buf[v] < 0) l.buf[v] = temp_buf(&l, v); /* else an output buffer, assigned above */
    if (l.gradient[v] && p->bufs[l.buf[v]].kind == KB_TEMP) p->bufs[l.buf[v]].op = OP_GRADIENT;
    if (is_update[v] && first_update_kernel == UINT32_MAX) first_update_kernel = p->nkernels;
    emit_node(&l, v, l.buf[v]);
  }
  /* Outputs not stored directly: loss/metrics of leaves or shared nodes,
   * and every update (in place when safe). */
  UpdatePlacement up; /* no buffers are added until lower_updates_end */
  lower_updates_begin(&up, p);
  for (uint32_t i = 0; i < m->noutputs; i++) {
    const Output *out = &m->outputs[i];
    if (out_direct[i] || out->kind == OUT_PREDICT) continue;
    ValueId v = out->value;
    if (out->kind == OUT_UPDATE) {
      if (is_leaf_buffer(m->nodes[v].op) && l.sym_buf[m->nodes[v].attr.sym] == out_buf[i]) continue; /* p = p */
      if (l.buf[v] >= 0 && p->bufs[l.buf[v]].kind == KB_TEMP) {
        if (lower_place_update(&up, l.buf[v], out_buf[i])) {
          l.buf[v] = out_buf[i];
          continue;
        }
      }
    }
    kernel_copy(&l, v, out_buf[i]);
    lower_note_kernel(&up, p->nkernels - 1); /* a later update must not overwrite what it reads */
  }
  lower_updates_end(&up);
  if (first_update_kernel != UINT32_MAX) lower_fuse_updates(p, first_update_kernel);
  /* The prediction's copy (and its buffer) come last, so the step's
   * kernels and buffers are those of a model without it; the train plan
   * leaves it out (lower_predict_only), the eval plan runs it. */
  if (predict != NO_VALUE) {
    const Node *n = &m->nodes[predict];
    p->output = add_buf(&l, "output", KB_OUTPUT, n->type, 0, n->loc);
    p->bufs[p->output].op = (int32_t)n->op;
    kernel_copy(&l, predict, p->output);
  }
  lower_order_step(p);
  lower_drop_buffers(p);
  lower_build_plans(p);
  nnc_stat_add("lower", "kernels", p->nkernels);
  nnc_stat_add("lower", "eval_kernels", p->neval);
  if (!o || o->opt_level > 0) lower_fuse(p, o && o->separate_contractions);

  free(out_buf);
  free(out_direct);
  free(is_update);
  free(l.buf);
  free(l.uses);
  free(l.depth);
  free(l.mat);
  free(l.position);
  free(l.summed);
  free(l.gradient);
  free(l.sym_buf);
  free(l.hyper_slot);
  free(l.extent);
  return p;
}
