/* ir/type.c - types and the per-op shape rules named in ir/ops.def.
 *
 * A shape rule checks the operand types of one node and computes its result
 * type.  Shapes are per sample; the result is batched when any operand is
 * (batch_sum removes the axis, broadcast may add it).  Messages name both
 * shapes so a user can see what did not fit.
 */
#include "ir/ir.h"

#include <stdio.h>
#include <string.h>

Type type_scalar(DType dt) {
  Type t;
  memset(&t, 0, sizeof t);
  t.dtype = dt;
  return t;
}

Type type_make(DType dt, int rank, const int64_t *dims, bool batched) {
  NNC_ASSERT(rank >= 0 && rank <= NNC_MAX_RANK);
  Type t = type_scalar(dt);
  t.rank = (uint8_t)rank;
  t.batched = batched;
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  return t;
}

int64_t type_numel(const Type *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dims[i];
  return n;
}

bool type_same_shape(const Type *a, const Type *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return false;
  return true;
}

bool type_equal(const Type *a, const Type *b) {
  return a->dtype == b->dtype && a->batched == b->batched && type_same_shape(a, b);
}

const char *dtype_name(DType dt) { return dt == DT_F32 ? "f32" : "i32"; }

char *shape_str(const Type *t, char *buf, size_t len) {
  size_t o = (size_t)snprintf(buf, len, "[");
  for (int i = 0; i < t->rank && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, i ? ",%lld" : "%lld", (long long)t->dims[i]);
  if (o < len) snprintf(buf + o, len - o, "]");
  return buf;
}

char *type_str(const Type *t, char *buf, size_t len) {
  size_t o = (size_t)snprintf(buf, len, "%s", dtype_name(t->dtype));
  if (t->rank == 0 && !t->batched) return buf;
  o += (size_t)snprintf(buf + o, len > o ? len - o : 0, "[%s", t->batched ? "B" : "");
  for (int i = 0; i < t->rank && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, (i || t->batched) ? ",%lld" : "%lld",
                          (long long)t->dims[i]);
  if (o < len) snprintf(buf + o, len - o, "]");
  return buf;
}

bool shape_broadcast(const Type *a, const Type *b, Type *out) {
  int rank = a->rank > b->rank ? a->rank : b->rank;
  Type t = type_scalar(a->dtype);
  t.rank = (uint8_t)rank;
  t.batched = a->batched || b->batched;
  for (int i = 0; i < rank; i++) {
    int ia = i - (rank - a->rank), ib = i - (rank - b->rank);
    int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
    if (da != db && da != 1 && db != 1) return false;
    t.dims[i] = da == 1 ? db : da;
  }
  *out = t;
  return true;
}

/* ---- shape rules ---------------------------------------------------------- */

#define FAIL(...)                                                              \
  do {                                                                         \
    snprintf(err, errlen, __VA_ARGS__);                                        \
    return false;                                                              \
  } while (0)

static const char *opname(const Node *n) { return ir_ops[n->op].name; }

/* Leaves: the type was set from the symbol or the literal. */
static bool infer_leaf(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  (void)args, (void)err, (void)errlen;
  *out = n->type;
  return true;
}

static bool check_float(const Node *n, const Type *a, char *err, size_t errlen) {
  if ((ir_ops[n->op].flags & OPF_FLOAT) && a->dtype != DT_F32)
    FAIL("%s needs an f32 operand, found %s", opname(n), dtype_name(a->dtype));
  return true;
}

static bool infer_unary(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  if (!check_float(n, &args[0], err, errlen)) return false;
  *out = args[0];
  return true;
}

static bool infer_cast(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  *out = args[0];
  out->dtype = n->type.dtype;
  return true;
}

static bool infer_binary(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  char sa[96], sb[96];
  if (args[0].dtype != args[1].dtype)
    FAIL("%s operands have different types: %s and %s", opname(n),
         type_str(&args[0], sa, sizeof sa), type_str(&args[1], sb, sizeof sb));
  if (!check_float(n, &args[0], err, errlen)) return false;
  if (!shape_broadcast(&args[0], &args[1], out))
    FAIL("shapes do not broadcast: %s %s %s", shape_str(&args[0], sa, sizeof sa), opname(n),
         shape_str(&args[1], sb, sizeof sb));
  return true;
}

static bool infer_compare(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  if (!infer_binary(n, args, out, err, errlen)) return false;
  out->dtype = DT_F32;
  return true;
}

static bool infer_where(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  char sa[96], sb[96], sc[96];
  (void)n;
  if (args[0].dtype != DT_F32) FAIL("where needs an f32 condition, found %s", dtype_name(args[0].dtype));
  if (args[1].dtype != args[2].dtype)
    FAIL("where branches have different types: %s and %s", type_str(&args[1], sa, sizeof sa),
         type_str(&args[2], sb, sizeof sb));
  Type t;
  if (!shape_broadcast(&args[1], &args[2], &t) || !shape_broadcast(&args[0], &t, out))
    FAIL("where shapes do not broadcast: %s, %s, %s", shape_str(&args[0], sa, sizeof sa),
         shape_str(&args[1], sb, sizeof sb), shape_str(&args[2], sc, sizeof sc));
  out->dtype = args[1].dtype;
  return true;
}

static bool infer_random(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  char sa[96], sb[96], sc[96];
  (void)n;
  for (int k = 0; k < 3; k++)
    if (args[k].dtype != DT_I32) FAIL("random needs i32 key and counters, operand %d is %s", k, dtype_name(args[k].dtype));
  Type t;
  if (!shape_broadcast(&args[0], &args[1], &t) || !shape_broadcast(&t, &args[2], out))
    FAIL("random shapes do not broadcast: %s, %s, %s", shape_str(&args[0], sa, sizeof sa),
         shape_str(&args[1], sb, sizeof sb), shape_str(&args[2], sc, sizeof sc));
  out->dtype = DT_F32;
  return true;
}

static bool infer_reduce(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  const Type *a = &args[0];
  uint32_t axes = n->attr.axes;
  if (axes == 0) FAIL("%s needs at least one axis", opname(n));
  if (axes >> a->rank) FAIL("%s axis out of range for a rank-%d value", opname(n), a->rank);
  *out = *a;
  out->rank = 0;
  for (int i = 0; i < a->rank; i++)
    if (!(axes >> i & 1)) out->dims[out->rank++] = a->dims[i];
  return true;
}

static bool infer_argmax(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  (void)n;
  if (args[0].rank == 0) FAIL("argmax needs a value with at least one axis");
  *out = args[0];
  out->rank--;
  out->dtype = DT_I32;
  return true;
}

/* The leading (batch) axes of a batched product: a's and b's axes before
 * their last two, broadcast by NumPy's rule into out->dims[0 .. lead). */
static bool batch_axes(const Type *a, const Type *b, Type *out) {
  Type la = *a, lb = *b;
  la.rank = (uint8_t)(a->rank - 2);
  lb.rank = (uint8_t)(b->rank - 2);
  return shape_broadcast(&la, &lb, out);
}

static bool infer_matmul(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  (void)n;
  const Type *a = &args[0], *b = &args[1];
  char sa[96], sb[96];
  if (a->dtype != DT_F32 || b->dtype != DT_F32) FAIL("matmul needs f32 operands");
  if (a->rank < 1 || b->rank < 1)
    FAIL("matmul needs vectors or matrices, found %s @ %s", shape_str(a, sa, sizeof sa), shape_str(b, sb, sizeof sb));
  if (a->rank > 2 || b->rank > 2) { /* a batched product: [..., k, n] @ [..., n, m] -> [..., k, m] */
    if (a->rank < 2 || b->rank < 2)
      FAIL("a batched matmul needs matrices on both sides ([..., k, n] @ [..., n, m]), found %s @ %s",
           shape_str(a, sa, sizeof sa), shape_str(b, sb, sizeof sb));
    if (a->dims[a->rank - 1] != b->dims[b->rank - 2])
      FAIL("matmul shapes do not match: %s @ %s", shape_str(a, sa, sizeof sa), shape_str(b, sb, sizeof sb));
    Type t;
    if (!batch_axes(a, b, &t))
      FAIL("matmul batch axes do not broadcast: %s @ %s", shape_str(a, sa, sizeof sa), shape_str(b, sb, sizeof sb));
    if (t.rank + 2 > NNC_MAX_RANK)
      FAIL("matmul result would have rank %d (limit %d)", t.rank + 2, NNC_MAX_RANK);
    *out = t;
    out->dtype = DT_F32;
    out->batched = a->batched || b->batched;
    out->dims[out->rank++] = a->dims[a->rank - 2];
    out->dims[out->rank++] = b->dims[b->rank - 1];
    return true;
  }
  int64_t ka = a->dims[a->rank - 1], kb = b->dims[0];
  if (ka != kb)
    FAIL("matmul shapes do not match: %s @ %s", shape_str(a, sa, sizeof sa), shape_str(b, sb, sizeof sb));
  *out = type_scalar(DT_F32);
  out->batched = a->batched || b->batched;
  if (a->rank == 2) out->dims[out->rank++] = a->dims[0];
  if (b->rank == 2) out->dims[out->rank++] = b->dims[1];
  return true;
}

static bool infer_transpose(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  const Type *a = &args[0];
  unsigned seen = 0;
  *out = *a;
  for (int i = 0; i < a->rank; i++) {
    unsigned p = n->attr.perm[i];
    if (p >= a->rank || (seen >> p & 1)) FAIL("transpose permutation is not valid for rank %d", a->rank);
    seen |= 1u << p;
    out->dims[i] = a->dims[p];
  }
  return true;
}

static bool infer_reshape(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  char sa[96], sb[96];
  if (type_numel(&n->type) != type_numel(&args[0]))
    FAIL("cannot reshape %s (%lld elements) to %s (%lld elements)", shape_str(&args[0], sa, sizeof sa),
         (long long)type_numel(&args[0]), shape_str(&n->type, sb, sizeof sb),
         (long long)type_numel(&n->type));
  *out = n->type;
  out->dtype = args[0].dtype;
  out->batched = args[0].batched;
  return true;
}

static bool infer_broadcast(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  char sa[96], sb[96];
  Type t;
  if (!shape_broadcast(&args[0], &n->type, &t) || !type_same_shape(&t, &n->type))
    FAIL("cannot broadcast %s to %s", shape_str(&args[0], sa, sizeof sa), shape_str(&n->type, sb, sizeof sb));
  if (args[0].batched && !n->type.batched) FAIL("broadcast cannot remove the batch axis");
  *out = n->type;
  out->dtype = args[0].dtype;
  return true;
}

/* a [L..., n, r...] indexed by i: i32[L...] (a scalar: L empty) -> [L..., r...]. */
static bool infer_index(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  (void)n;
  char sa[96], si[96];
  const Type *a = &args[0], *i = &args[1];
  if (a->rank == 0) FAIL("cannot index a scalar");
  if (i->dtype != DT_I32) FAIL("an index must be i32, found %s", type_str(i, si, sizeof si));
  bool lead = i->rank < a->rank;
  for (int k = 0; lead && k < i->rank; k++) lead = i->dims[k] == a->dims[k];
  if (!lead)
    FAIL("an index of shape %s must have the first axes of %s", shape_str(i, si, sizeof si), shape_str(a, sa, sizeof sa));
  *out = *a;
  out->rank--;
  memmove(out->dims + i->rank, out->dims + i->rank + 1, sizeof(int64_t) * (size_t)(out->rank - i->rank));
  out->dims[out->rank] = 0;
  out->batched = a->batched || i->batched;
  return true;
}

/* table [n, r...] gathered by i: i32[s...] -> [s..., r...]. */
static bool infer_gather(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  (void)n;
  char sa[96], si[96];
  const Type *a = &args[0], *i = &args[1];
  if (a->rank == 0) FAIL("gather needs a table with at least one axis, found a scalar");
  if (i->dtype != DT_I32) FAIL("gather needs i32 indices, found %s", type_str(i, si, sizeof si));
  if (i->rank + a->rank - 1 > NNC_MAX_RANK)
    FAIL("gather of %s by indices %s has rank %d (limit %d)", shape_str(a, sa, sizeof sa), shape_str(i, si, sizeof si),
         i->rank + a->rank - 1, NNC_MAX_RANK);
  *out = *i;
  out->dtype = a->dtype;
  for (int k = 1; k < a->rank; k++) out->dims[out->rank++] = a->dims[k];
  out->batched = a->batched || i->batched;
  return true;
}

/* g [s..., r...] and i: i32[s...] -> the result type [n, r...] (given). */
static bool infer_scatter_add(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  char sg[96], si[96], st[96];
  const Type *g = &args[0], *i = &args[1], *t = &n->type;
  if (i->dtype != DT_I32) FAIL("scatter_add needs i32 indices, found %s", type_str(i, si, sizeof si));
  bool fits = t->rank >= 1 && g->rank == i->rank + t->rank - 1;
  for (int k = 0; fits && k < i->rank; k++) fits = g->dims[k] == i->dims[k];
  for (int k = 1; fits && k < t->rank; k++) fits = g->dims[i->rank + k - 1] == t->dims[k];
  if (!fits)
    FAIL("scatter_add: %s is not a gather of %s by indices %s", shape_str(g, sg, sizeof sg), shape_str(t, st, sizeof st),
         shape_str(i, si, sizeof si));
  *out = *t;
  out->dtype = g->dtype;
  out->batched = g->batched || i->batched;
  return true;
}

/* i: i32[L...] -> f32[L..., n] (the result type gives n). */
static bool infer_onehot(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  char sa[96];
  const Type *i = &args[0];
  if (i->dtype != DT_I32) FAIL("onehot needs i32 indices, found %s", type_str(i, sa, sizeof sa));
  if (n->type.rank != i->rank + 1) FAIL("onehot adds one axis to its indices' shape");
  for (int k = 0; k < i->rank; k++)
    if (n->type.dims[k] != i->dims[k]) FAIL("onehot adds one axis to its indices' shape");
  *out = n->type;
  out->dtype = DT_F32;
  out->batched = i->batched;
  return true;
}

static bool infer_batch_sum(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  (void)n;
  if (!args[0].batched) FAIL("batch_sum needs a batched operand");
  *out = args[0];
  out->batched = false;
  return true;
}

/* ---- windows: convolutions, unfold and fold ---------------------------------------------------- */

int64_t window_positions(int64_t n, int size, int stride, int pad) {
  if (size < 1 || stride < 1 || pad < 0 || n + 2 * (int64_t)pad < size) return 0;
  return (n + 2 * (int64_t)pad - size) / stride + 1;
}

/* The window attributes, and the positions of the last two axes h, w of t. */
static bool window(const Node *n, const Type *t, int64_t *ph, int64_t *pw, char *err, size_t errlen) {
  int k = n->attr.win.size, s = n->attr.win.stride, p = n->attr.win.pad;
  if (k < 1 || s < 1) FAIL("%s needs a window size and stride of at least 1, found %d and %d", opname(n), k, s);
  if (p >= k) FAIL("%s: padding %d leaves windows of padding only (the window is %d)", opname(n), p, k);
  int64_t h = t->dims[t->rank - 2], w = t->dims[t->rank - 1];
  *ph = window_positions(h, k, s, p);
  *pw = window_positions(w, k, s, p);
  if (!*ph || !*pw)
    FAIL("%s: a %dx%d window does not fit a %lldx%lld input padded by %d", opname(n), k, k, (long long)h, (long long)w,
         p);
  return true;
}

static bool float_args(const Node *n, const Type *args, int nargs, char *err, size_t errlen) {
  for (int i = 0; i < nargs; i++)
    if (args[i].dtype != DT_F32) FAIL("%s needs f32 operands, found %s", opname(n), dtype_name(args[i].dtype));
  return true;
}

/* x[c,h,w] and w[f,c,k,k] with k the window; false (err set) otherwise. */
static bool conv_operands(const Node *n, const Type *x, const Type *w, char *err, size_t errlen) {
  char sx[96], sw[96];
  if (x->rank != 3 || w->rank != 4)
    FAIL("%s needs an input [c,h,w] and a filter [f,c,k,k], found %s and %s", opname(n), shape_str(x, sx, sizeof sx),
         shape_str(w, sw, sizeof sw));
  if (w->dims[1] != x->dims[0] || w->dims[2] != w->dims[3] || w->dims[2] != n->attr.win.size)
    FAIL("%s: filter %s does not fit input %s with a %dx%d window", opname(n), shape_str(w, sw, sizeof sw),
         shape_str(x, sx, sizeof sx), n->attr.win.size, n->attr.win.size);
  return true;
}

static bool infer_conv2d(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  const Type *x = &args[0], *w = &args[1];
  int64_t ph, pw;
  if (!float_args(n, args, 2, err, errlen) || !conv_operands(n, x, w, err, errlen) ||
      !window(n, x, &ph, &pw, err, errlen))
    return false;
  int64_t dims[3] = {w->dims[0], ph, pw};
  *out = type_make(DT_F32, 3, dims, x->batched || w->batched);
  return true;
}

/* The input's gradient: the result type (given) is the input's. */
static bool infer_conv2d_data_grad(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  const Type *g = &args[0], *w = &args[1];
  int64_t ph, pw;
  char sg[96], sx[96];
  if (!float_args(n, args, 2, err, errlen) || !conv_operands(n, &n->type, w, err, errlen) ||
      !window(n, &n->type, &ph, &pw, err, errlen))
    return false;
  if (g->rank != 3 || g->dims[0] != w->dims[0] || g->dims[1] != ph || g->dims[2] != pw)
    FAIL("%s: gradient %s does not fit input %s", opname(n), shape_str(g, sg, sizeof sg),
         shape_str(&n->type, sx, sizeof sx));
  *out = n->type;
  out->dtype = DT_F32;
  out->batched = g->batched || w->batched;
  return true;
}

/* One sample's filter gradient: the result type (given) is the filter's. */
static bool infer_conv2d_filter_grad(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  const Type *x = &args[0], *g = &args[1];
  int64_t ph, pw;
  char sg[96], sx[96];
  if (!float_args(n, args, 2, err, errlen) || !conv_operands(n, x, &n->type, err, errlen) ||
      !window(n, x, &ph, &pw, err, errlen))
    return false;
  if (g->rank != 3 || g->dims[0] != n->type.dims[0] || g->dims[1] != ph || g->dims[2] != pw)
    FAIL("%s: gradient %s does not fit input %s", opname(n), shape_str(g, sg, sizeof sg), shape_str(x, sx, sizeof sx));
  *out = n->type;
  out->dtype = DT_F32;
  out->batched = x->batched || g->batched;
  return true;
}

/* x[..., h, w] -> [..., k, k, h', w'] */
static bool infer_unfold(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  const Type *x = &args[0];
  int64_t ph, pw;
  char sx[96];
  if (x->rank < 2 || x->rank + 2 > NNC_MAX_RANK)
    FAIL("%s needs an input of rank 2 to %d ([..., h, w]), found %s", opname(n), NNC_MAX_RANK - 2,
         shape_str(x, sx, sizeof sx));
  if (!window(n, x, &ph, &pw, err, errlen)) return false;
  *out = *x;
  int lead = x->rank - 2;
  out->rank = (uint8_t)(x->rank + 2);
  out->dims[lead] = out->dims[lead + 1] = n->attr.win.size;
  out->dims[lead + 2] = ph;
  out->dims[lead + 3] = pw;
  return true;
}

/* g[..., k, k, h', w'] -> [..., h, w], the result type given. */
static bool infer_fold(const Node *n, const Type *args, Type *out, char *err, size_t errlen) {
  Type u;
  char sg[96], sx[96];
  Node probe = *n;
  if (!infer_unfold(&probe, &n->type, &u, err, errlen)) return false;
  if (!type_same_shape(&u, &args[0]))
    FAIL("%s: %s is not the unfolding of %s", opname(n), shape_str(&args[0], sg, sizeof sg),
         shape_str(&n->type, sx, sizeof sx));
  *out = n->type;
  out->dtype = args[0].dtype;
  out->batched = args[0].batched;
  return true;
}

const OpInfo ir_ops[OP_COUNT] = {
#define EW(nnc_op, nn, value, infix, c_math, llvm, libdevice, nvvm) nnc_op, nn, infix, c_math, llvm, libdevice, nvvm
#define NO_EW 0, NULL, NULL, NULL, NULL, NULL, NULL
#define OP(id, name, arity, flags, shape, synopsis, ew) {name, arity, flags, shape, synopsis, ew},
#include "ir/ops.def"
#undef OP
#undef NO_EW
#undef EW
};
