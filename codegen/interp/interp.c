/* codegen/interp/interp.c - the reference interpreter (see interp.h).
 *
 * How it works: interp_new marks, for each node, which outputs need it
 * (NEED_EVAL: the loss and the metrics; NEED_ALL: every output).  A run
 * walks the nodes in order and evaluates the marked ones into per-node
 * buffers of doubles; eval_node is the one switch over the ops.
 *
 * Indexing: an Iter walks a value of shape [n?, d0, d1, ...] (the batch
 * axis first when the value is batched) in row-major order and keeps, for
 * each operand, the offset of the element that lines up with the current
 * position.  Broadcasting is a stride of 0: on an axis an operand lacks or
 * has extent 1, and on the batch axis for an unbatched operand.  Reductions,
 * transposes and broadcasts are the same walk with other strides.
 */
#include "codegen/interp/interp.h"

#include "runtime/init.h"
#include "runtime/rng.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXR (NNC_MAX_RANK + 1) /* per-sample axes plus the batch axis */
#define MAXOPS 4                /* operands of one walk (3 args + the result) */

enum { NEED_EVAL = 1, NEED_ALL = 2 };

struct Interp {
  const Module *m;
  bool f64;               /* false: round every f32 result to float */
  double **sym;           /* [nsyms] storage of params, states, hypers; else NULL */
  double **val;           /* [nnodes] the node's value for the current batch */
  int64_t *cap;           /* [nnodes] capacity of val[v], in doubles */
  uint8_t *need;          /* [nnodes] NEED_* bits */
  uint8_t ran;            /* the NEED_* bit of the last successful run, 0 = none */
  int64_t step;           /* OP_STEP */
  bool training;          /* OP_TRAINING: this run is (part of) a training step */
  uint32_t seed_key;      /* OP_SEED: rt_rng_key16 of interp_init's seed */
  int64_t n;              /* samples in the current batch */
  const float *x;         /* the batch being evaluated */
  const void *y;
  int64_t xsym, ysym;     /* the fed input and label symbols; -1 = none */
  int64_t loss_out;       /* index of the loss output; -1 = none */
  uint32_t *metric_outs;  /* output indices of the metrics */
  int nmetrics;
  char err[640];
};

/* ---- helpers -------------------------------------------------------------------- */

/* Elements of a value of type t in the current batch. */
static int64_t count_of(const Interp *it, const Type *t) {
  return type_numel(t) * (t->batched ? it->n : 1);
}

/* An int64 wrapped to int32, the way two's-complement hardware does it. */
static double wrap32(int64_t v) {
  uint32_t u = (uint32_t)(uint64_t)v;
  return u >= 0x80000000u ? (double)u - 4294967296.0 : (double)u;
}

/* "file:line:col" of a location; an inlined one also names the outermost
 * call site (the user's line) first: "model.nn:7:10 (inside nn.nn:40:5)". */
static void loc_text(const Module *m, uint32_t loc, char *buf, size_t len) {
  if (loc == 0 || loc >= m->nlocs) {
    snprintf(buf, len, "an unknown location");
    return;
  }
  uint32_t outer = loc;
  for (int guard = 0; m->locs[outer].parent && m->locs[outer].parent < m->nlocs && guard < 1000; guard++)
    outer = m->locs[outer].parent;
  const IrLoc *o = &m->locs[outer], *in = &m->locs[loc];
  const char *of = o->file < m->nfiles ? m->files[o->file] : "?";
  const char *inf = in->file < m->nfiles ? m->files[in->file] : "?";
  if (outer == loc)
    snprintf(buf, len, "%s:%u:%u", of, o->line, o->col);
  else
    snprintf(buf, len, "%s:%u:%u (inside %s:%u:%u)", of, o->line, o->col, inf, in->line, in->col);
}

/* Records a runtime error of node v: "<what> in <op> at <location>", and
 * " (sample N)" when sample >= 0. */
static bool fail(Interp *it, ValueId v, int64_t sample, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static bool fail(Interp *it, ValueId v, int64_t sample, const char *fmt, ...) {
  char what[200], where[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  const Node *nd = &it->m->nodes[v];
  loc_text(it->m, nd->loc, where, sizeof where);
  char smp[48] = "";
  if (sample >= 0) snprintf(smp, sizeof smp, " (sample %lld)", (long long)sample);
  snprintf(it->err, sizeof it->err, "%s in %s at %s%s", what, ir_ops[nd->op].name, where, smp);
  return false;
}

/* The buffer of node v, grown to hold its value for the current batch. */
static double *out_buf(Interp *it, ValueId v) {
  int64_t need = count_of(it, &it->m->nodes[v].type);
  if (need < 1) need = 1;
  if (need > it->cap[v]) {
    free(it->val[v]);
    it->val[v] = nnc_xmalloc((size_t)need * sizeof(double));
    it->cap[v] = need;
  }
  return it->val[v];
}

static const double *arg_val(const Interp *it, const Node *nd, int k) { return it->val[nd->args[k]]; }
static const Type *arg_type(const Interp *it, const Node *nd, int k) { return &it->m->nodes[nd->args[k]].type; }

/* Row-major strides of a per-sample shape. */
static void contiguous(const Type *t, int64_t *st) {
  int64_t s = 1;
  for (int k = t->rank - 1; k >= 0; k--) {
    st[k] = s;
    s *= t->dims[k];
  }
}

/* ---- the walk ------------------------------------------------------------------------ */

typedef struct Iter {
  int rank;                      /* axes walked, the batch axis first when present */
  int64_t dims[MAXR];
  int64_t total;                 /* product of dims */
  int nops;
  int64_t stride[MAXOPS][MAXR];  /* per operand and axis; 0 = broadcast */
  int64_t idx[MAXR];
  int64_t off[MAXOPS];           /* current offset into each operand */
} Iter;

/* Starts a walk over the shape of a value of type t (batch axis included). */
static void iter_start(Iter *w, const Interp *it, const Type *t) {
  memset(w, 0, sizeof *w);
  if (t->batched) w->dims[w->rank++] = it->n;
  for (int k = 0; k < t->rank; k++) w->dims[w->rank++] = t->dims[k];
  w->total = 1;
  for (int k = 0; k < w->rank; k++) w->total *= w->dims[k];
}

/* Operand j of type a, broadcast to the walk's type t (NumPy: trailing axes
 * line up; extent-1 and missing axes repeat; unbatched repeats per sample). */
static void iter_operand(Iter *w, int j, const Type *a, const Type *t) {
  int64_t st[NNC_MAX_RANK];
  contiguous(a, st);
  int q = 0;
  if (t->batched) w->stride[j][q++] = a->batched ? type_numel(a) : 0;
  for (int i = 0; i < t->rank; i++, q++) {
    int ia = i - (t->rank - a->rank);
    w->stride[j][q] = ia < 0 || a->dims[ia] == 1 ? 0 : st[ia];
  }
  if (j >= w->nops) w->nops = j + 1;
}

static void iter_next(Iter *w) {
  for (int k = w->rank - 1; k >= 0; k--) {
    if (++w->idx[k] < w->dims[k]) {
      for (int j = 0; j < w->nops; j++) w->off[j] += w->stride[j][k];
      return;
    }
    w->idx[k] = 0;
    for (int j = 0; j < w->nops; j++) w->off[j] -= w->stride[j][k] * (w->dims[k] - 1);
  }
}

/* ---- elementwise ops ------------------------------------------------------------------ */

/* One element of an elementwise op (ir/op_eval.c); dt is the result's
 * dtype.  False on an i32 division by zero, which compiled code defines as
 * 0 but the reference interpreter reports. */
static bool scalar_op(Op op, DType dt, double a, double b, double c, double *r) {
  if (op == OP_DIV && dt == DT_I32 && b == 0) return false;
  *r = op_eval(op, dt, a, b, c);
  return true;
}

/* An i32 division by zero at element i of node v. */
static bool div_by_zero(Interp *it, ValueId v, int64_t i) {
  const Node *nd = &it->m->nodes[v];
  return fail(it, v, nd->type.batched ? i / type_numel(&nd->type) : -1, "integer division by zero");
}

static bool eval_elementwise(Interp *it, ValueId v) {
  const Node *nd = &it->m->nodes[v];
  double *out = out_buf(it, v);
  const double *a[NNC_MAX_ARGS] = {NULL, NULL, NULL};
  for (int k = 0; k < nd->nargs; k++) a[k] = arg_val(it, nd, k);
  DType dt = nd->type.dtype;
  int64_t total = count_of(it, &nd->type);

  /* The common case without the walk: every operand either lines up with
   * the result element for element (same count: any broadcast axis has
   * extent 1) or is one value repeated (count 1).  step[k] is 1 or 0. */
  int64_t step[NNC_MAX_ARGS] = {0, 0, 0};
  bool simple = true;
  for (int k = 0; k < nd->nargs; k++) {
    int64_t c = count_of(it, arg_type(it, nd, k));
    if (c == total)
      step[k] = 1;
    else if (c != 1)
      simple = false;
  }
  if (simple) {
    for (int64_t i = 0; i < total; i++) {
      double x = a[0][i * step[0]];
      double y = nd->nargs > 1 ? a[1][i * step[1]] : 0;
      double z = nd->nargs > 2 ? a[2][i * step[2]] : 0;
      if (!scalar_op(nd->op, dt, x, y, z, &out[i])) return div_by_zero(it, v, i);
    }
    return true;
  }

  Iter w;
  iter_start(&w, it, &nd->type);
  for (int k = 0; k < nd->nargs; k++) iter_operand(&w, k, arg_type(it, nd, k), &nd->type);
  for (int64_t i = 0; i < w.total; i++) {
    double x = a[0][w.off[0]];
    double y = nd->nargs > 1 ? a[1][w.off[1]] : 0;
    double z = nd->nargs > 2 ? a[2][w.off[2]] : 0;
    if (!scalar_op(nd->op, dt, x, y, z, &out[i])) return div_by_zero(it, v, i);
    iter_next(&w);
  }
  return true;
}

/* broadcast: a copy through the walk. */
static void eval_broadcast(Interp *it, ValueId v) {
  const Node *nd = &it->m->nodes[v];
  double *out = out_buf(it, v);
  const double *a = arg_val(it, nd, 0);
  Iter w;
  iter_start(&w, it, &nd->type);
  iter_operand(&w, 0, arg_type(it, nd, 0), &nd->type);
  for (int64_t i = 0; i < w.total; i++, iter_next(&w)) out[i] = a[w.off[0]];
}

/* ---- reductions and shape ops ------------------------------------------------------- */

/* reduce_sum / reduce_max over the axes in attr.axes: walk the operand and
 * send each element to the result element its kept axes name. */
static void eval_reduce(Interp *it, ValueId v) {
  const Node *nd = &it->m->nodes[v];
  const Type *at = arg_type(it, nd, 0), *ot = &nd->type;
  const double *a = arg_val(it, nd, 0);
  double *out = out_buf(it, v);
  bool is_max = nd->op == OP_REDUCE_MAX;
  int64_t nout = count_of(it, ot);
  for (int64_t i = 0; i < nout; i++) out[i] = is_max ? -INFINITY : 0;

  Iter w;
  iter_start(&w, it, at);
  iter_operand(&w, 0, at, at);
  int64_t ost[NNC_MAX_RANK];
  contiguous(ot, ost);
  int q = 0, kept = 0;
  if (at->batched) w.stride[1][q++] = type_numel(ot);
  for (int k = 0; k < at->rank; k++, q++) w.stride[1][q] = (nd->attr.axes >> k & 1) ? 0 : ost[kept++];
  w.nops = 2;
  for (int64_t i = 0; i < w.total; i++, iter_next(&w)) {
    double x = a[w.off[0]], *o = &out[w.off[1]];
    if (!is_max)
      *o += x;
    else if (!isnan(*o) && (isnan(x) || x > *o))
      *o = x;
  }
  if (ot->dtype == DT_I32 && !is_max)
    for (int64_t i = 0; i < nout; i++) out[i] = wrap32((int64_t)out[i]);
}

/* argmax along the last axis: the first maximal index (a NaN counts as
 * maximal, as in NumPy). */
static void eval_argmax(Interp *it, ValueId v) {
  const Node *nd = &it->m->nodes[v];
  const Type *at = arg_type(it, nd, 0);
  const double *a = arg_val(it, nd, 0);
  double *out = out_buf(it, v);
  int64_t k = at->dims[at->rank - 1], rows = count_of(it, at) / k;
  for (int64_t r = 0; r < rows; r++) {
    const double *row = a + r * k;
    int64_t best = 0;
    for (int64_t j = 1; j < k && !isnan(row[best]); j++)
      if (isnan(row[j]) || row[j] > row[best]) best = j;
    out[r] = (double)best;
  }
}

/* One product C[K,M] = A[K,N] @ B[N,M], accumulated in double. */
static void product(const double *a, const double *b, double *c, int64_t K, int64_t N, int64_t M) {
  for (int64_t i = 0; i < K * M; i++) c[i] = 0;
  for (int64_t i = 0; i < K; i++)
    for (int64_t l = 0; l < N; l++) {
      double x = a[i * N + l];
      const double *brow = b + l * M;
      double *crow = c + i * M;
      for (int64_t j = 0; j < M; j++) crow[j] += x * brow[j];
    }
}

/* matmul, per sample: a is [K,N] (a vector [N] is one row), b is [N,M] (a
 * vector [N] is one column); the result [K,M] has the layout of every
 * rank case ([m], [k], [] included).  A batched product ([..., K, N] @
 * [..., N, M]) is one such product per element of the leading axes, walked
 * like an elementwise op over them (broadcast operands repeat). */
static void eval_matmul(Interp *it, ValueId v) {
  const Node *nd = &it->m->nodes[v];
  const Type *at = arg_type(it, nd, 0), *bt = arg_type(it, nd, 1);
  const double *a = arg_val(it, nd, 0), *b = arg_val(it, nd, 1);
  double *out = out_buf(it, v);
  if (at->rank > 2 || bt->rank > 2) {
    int64_t K = at->dims[at->rank - 2], N = at->dims[at->rank - 1], M = bt->dims[bt->rank - 1];
    Type lead = nd->type, la = *at, lb = *bt; /* the leading axes, each matrix one element */
    lead.rank -= 2, la.rank -= 2, lb.rank -= 2;
    Iter w;
    iter_start(&w, it, &lead);
    iter_operand(&w, 0, &la, &lead);
    iter_operand(&w, 1, &lb, &lead);
    for (int64_t i = 0; i < w.total; i++, iter_next(&w))
      product(a + w.off[0] * K * N, b + w.off[1] * N * M, out + i * K * M, K, N, M);
    return;
  }
  int64_t K = at->rank == 2 ? at->dims[0] : 1, N = at->dims[at->rank - 1];
  int64_t M = bt->rank == 2 ? bt->dims[1] : 1;
  int64_t samples = nd->type.batched ? it->n : 1;
  for (int64_t s = 0; s < samples; s++)
    product(a + (at->batched ? s * K * N : 0), b + (bt->batched ? s * N * M : 0), out + s * K * M, K, N, M);
}

/* transpose: result axis i walks operand axis perm[i]. */
static void eval_transpose(Interp *it, ValueId v) {
  const Node *nd = &it->m->nodes[v];
  const Type *at = arg_type(it, nd, 0);
  const double *a = arg_val(it, nd, 0);
  double *out = out_buf(it, v);
  int64_t st[NNC_MAX_RANK];
  contiguous(at, st);
  Iter w;
  iter_start(&w, it, &nd->type);
  int q = 0;
  if (nd->type.batched) w.stride[0][q++] = type_numel(at);
  for (int i = 0; i < nd->type.rank; i++, q++) w.stride[0][q] = st[nd->attr.perm[i]];
  w.nops = 1;
  for (int64_t i = 0; i < w.total; i++, iter_next(&w)) out[i] = a[w.off[0]];
}

/* index: a[L..., i, r...] for each position L of i (an i32 of a's first
 * ir axes; ir = 0: a scalar, a[i] along the first axis), per sample. */
static bool eval_index(Interp *it, ValueId v) {
  const Node *nd = &it->m->nodes[v];
  const Type *at = arg_type(it, nd, 0), *it_t = arg_type(it, nd, 1);
  const double *a = arg_val(it, nd, 0), *ix = arg_val(it, nd, 1);
  double *out = out_buf(it, v);
  int64_t rows = type_numel(it_t), d0 = at->dims[it_t->rank], inner = type_numel(at) / rows / d0;
  int64_t samples = nd->type.batched ? it->n : 1;
  for (int64_t s = 0; s < samples; s++)
    for (int64_t r = 0; r < rows; r++) {
      double i = ix[(it_t->batched ? s * rows : 0) + r];
      if (!(i >= 0 && i < (double)d0))
        return fail(it, v, nd->type.batched ? s : -1, "index %.0f is out of range [0, %lld)", i, (long long)d0);
      const double *src = a + (at->batched ? s * type_numel(at) : 0) + (r * d0 + (int64_t)i) * inner;
      memcpy(out + (s * rows + r) * inner, src, (size_t)inner * sizeof(double));
    }
  return true;
}

/* gather: table[i] for every element of i (rows of an [n, r...] table);
 * an index outside [0, n) gives a row of 0 (docs/ir.md). */
static void eval_gather(Interp *it, ValueId v) {
  const Node *nd = &it->m->nodes[v];
  const Type *at = arg_type(it, nd, 0), *it_t = arg_type(it, nd, 1);
  const double *a = arg_val(it, nd, 0), *ix = arg_val(it, nd, 1);
  double *out = out_buf(it, v);
  int64_t n = at->dims[0], inner = type_numel(at) / n, count = type_numel(it_t);
  int64_t samples = nd->type.batched ? it->n : 1;
  for (int64_t s = 0; s < samples; s++)
    for (int64_t r = 0; r < count; r++) {
      double i = ix[(it_t->batched ? s * count : 0) + r];
      double *dst = out + (s * count + r) * inner;
      if (!(i >= 0 && i < (double)n)) {
        for (int64_t j = 0; j < inner; j++) dst[j] = 0;
        continue;
      }
      memcpy(dst, a + (at->batched ? s * type_numel(at) : 0) + (int64_t)i * inner, (size_t)inner * sizeof(double));
    }
}

/* scatter_add: gather's adjoint.  Row v of the [n, r...] result is the sum,
 * in order, of g's rows whose index is v; indices outside [0, n) add
 * nothing. */
static void eval_scatter_add(Interp *it, ValueId v) {
  const Node *nd = &it->m->nodes[v];
  const Type *gt = arg_type(it, nd, 0), *it_t = arg_type(it, nd, 1);
  const double *g = arg_val(it, nd, 0), *ix = arg_val(it, nd, 1);
  double *out = out_buf(it, v);
  int64_t n = nd->type.dims[0], inner = type_numel(&nd->type) / n, count = type_numel(it_t);
  int64_t samples = nd->type.batched ? it->n : 1;
  for (int64_t j = 0; j < samples * n * inner; j++) out[j] = 0;
  for (int64_t s = 0; s < samples; s++)
    for (int64_t r = 0; r < count; r++) {
      double i = ix[(it_t->batched ? s * count : 0) + r];
      if (!(i >= 0 && i < (double)n)) continue;
      const double *src = g + (gt->batched ? s * type_numel(gt) : 0) + r * inner;
      double *dst = out + (s * n + (int64_t)i) * inner;
      for (int64_t j = 0; j < inner; j++) dst[j] += src[j];
    }
}

/* onehot: f32[L..., k] with 1 at each position's index and 0 elsewhere. */
static bool eval_onehot(Interp *it, ValueId v) {
  const Node *nd = &it->m->nodes[v];
  const Type *it_t = arg_type(it, nd, 0);
  const double *ix = arg_val(it, nd, 0);
  double *out = out_buf(it, v);
  int64_t k = nd->type.dims[nd->type.rank - 1], rows = type_numel(it_t), samples = nd->type.batched ? it->n : 1;
  for (int64_t s = 0; s < samples; s++)
    for (int64_t r = 0; r < rows; r++) {
      double i = ix[(it_t->batched ? s * rows : 0) + r];
      if (!(i >= 0 && i < (double)k)) {
        return fail(it, v, nd->type.batched ? s : -1, "index %.0f is out of range [0, %lld)", i, (long long)k);
      }
      double *row = out + (s * rows + r) * k;
      for (int64_t j = 0; j < k; j++) row[j] = 0;
      row[(int64_t)i] = 1;
    }
  return true;
}

static void eval_batch_sum(Interp *it, ValueId v) {
  const Node *nd = &it->m->nodes[v];
  const double *a = arg_val(it, nd, 0);
  double *out = out_buf(it, v);
  int64_t per = type_numel(&nd->type);
  for (int64_t j = 0; j < per; j++) out[j] = 0;
  for (int64_t s = 0; s < it->n; s++)
    for (int64_t j = 0; j < per; j++) out[j] += a[s * per + j];
  if (nd->type.dtype == DT_I32)
    for (int64_t j = 0; j < per; j++) out[j] = wrap32((int64_t)out[j]);
}

/* ---- windows: conv2d, its gradients, unfold, fold -------------------------------------
 * Straight from the definitions (ir/ops.def), per sample, in double; the
 * gradients scatter into their result in the forward pass's order. */

/* The operand's sample s (its only one when it is not batched). */
static const double *sample_of(const Interp *it, const Node *nd, int k, int64_t s) {
  const Type *t = arg_type(it, nd, k);
  return arg_val(it, nd, k) + (t->batched ? s * type_numel(t) : 0);
}

static void eval_window(Interp *it, ValueId v) {
  const Node *nd = &it->m->nodes[v];
  int64_t K = nd->attr.win.size, S = nd->attr.win.stride, P = nd->attr.win.pad;
  double *out = out_buf(it, v);
  int64_t per = type_numel(&nd->type), samples = nd->type.batched ? it->n : 1;
  for (int64_t s = 0; s < samples; s++) {
    double *o = out + s * per;
    for (int64_t i = 0; i < per; i++) o[i] = 0;
    /* the input side [C,H,W] (leading axes of unfold/fold folded into C) and the positions [OH,OW] */
    const Type *xt = nd->op == OP_CONV2D_DATA_GRAD || nd->op == OP_FOLD ? &nd->type : arg_type(it, nd, 0);
    int64_t H = xt->dims[xt->rank - 2], W = xt->dims[xt->rank - 1], C = type_numel(xt) / (H * W);
    int64_t OH = window_positions(H, (int)K, (int)S, (int)P), OW = window_positions(W, (int)K, (int)S, (int)P);
    int64_t F = nd->op == OP_CONV2D || nd->op == OP_CONV2D_FILTER_GRAD ? nd->type.dims[0]
                : nd->op == OP_CONV2D_DATA_GRAD                        ? arg_type(it, nd, 1)->dims[0]
                                                                       : 1; /* filters */
    const double *a = sample_of(it, nd, 0, s), *b = nd->nargs > 1 ? sample_of(it, nd, 1, s) : NULL;
    for (int64_t f = 0; f < F; f++)
      for (int64_t c = 0; c < C; c++)
        for (int64_t ky = 0; ky < K; ky++)
          for (int64_t kx = 0; kx < K; kx++)
            for (int64_t oy = 0; oy < OH; oy++)
              for (int64_t ox = 0; ox < OW; ox++) {
                int64_t y = oy * S + ky - P, x = ox * S + kx - P;
                if (y < 0 || y >= H || x < 0 || x >= W) continue;
                int64_t xi = (c * H + y) * W + x, wi = ((f * C + c) * K + ky) * K + kx, gi = (f * OH + oy) * OW + ox;
                int64_t ui = (((c * K + ky) * K + kx) * OH + oy) * OW + ox;
                switch (nd->op) {
                case OP_CONV2D: o[gi] += b[wi] * a[xi]; break;             /* a = x, b = w */
                case OP_CONV2D_DATA_GRAD: o[xi] += a[gi] * b[wi]; break;   /* a = g, b = w */
                case OP_CONV2D_FILTER_GRAD: o[wi] += b[gi] * a[xi]; break; /* a = x, b = g */
                case OP_UNFOLD: o[ui] = a[xi]; break;
                case OP_FOLD: o[xi] += a[ui]; break;
                default: NNC_UNREACHABLE("not a window op");
                }
              }
  }
}

/* ---- leaves -------------------------------------------------------------------------- */

static bool eval_input(Interp *it, ValueId v) {
  const Node *nd = &it->m->nodes[v];
  const Symbol *s = &it->m->syms[nd->attr.sym];
  double *out = out_buf(it, v);
  int64_t c = count_of(it, &nd->type);
  if ((int64_t)nd->attr.sym == it->xsym && it->x) {
    for (int64_t i = 0; i < c; i++) out[i] = it->x[i];
  } else if ((int64_t)nd->attr.sym == it->ysym && it->y) {
    if (s->type.dtype == DT_I32)
      for (int64_t i = 0; i < c; i++) out[i] = ((const int32_t *)it->y)[i];
    else
      for (int64_t i = 0; i < c; i++) out[i] = ((const float *)it->y)[i];
  } else {
    return fail(it, v, -1, "no data is fed to %s '%s'", sym_kind_name(s->kind), s->name);
  }
  return true;
}

/* ---- one node ------------------------------------------------------------------------ */

static bool eval_node(Interp *it, ValueId v) {
  const Node *nd = &it->m->nodes[v];
  bool ok = true;
  switch (nd->op) {
  case OP_CONST: {
    double *out = out_buf(it, v);
    for (int64_t i = 0, c = count_of(it, &nd->type); i < c; i++) out[i] = nd->attr.value;
    break;
  }
  case OP_INPUT: ok = eval_input(it, v); break;
  case OP_PARAM:
  case OP_STATE: memcpy(out_buf(it, v), it->sym[nd->attr.sym], (size_t)type_numel(&nd->type) * sizeof(double)); break;
  case OP_HYPER: out_buf(it, v)[0] = it->sym[nd->attr.sym][0]; break;
  case OP_GRAD:
    return fail(it, v, -1, "the gradient placeholder grad @%s was not replaced (the autodiff pass did not run)",
                it->m->syms[nd->attr.sym].name);
  case OP_STEP: out_buf(it, v)[0] = (double)it->step; break;
  case OP_BATCH_SIZE: out_buf(it, v)[0] = (double)it->n; break;
  case OP_TRAINING: out_buf(it, v)[0] = it->training ? 1 : 0; break;
  case OP_SEED: out_buf(it, v)[0] = it->seed_key; break;
  case OP_ELEMENT: { /* positions 0, 1, ... in row-major order, the batch axis first */
    double *o = out_buf(it, v);
    int64_t count = count_of(it, &nd->type);
    for (int64_t i = 0; i < count; i++) o[i] = (double)i;
    break;
  }
  case OP_REDUCE_SUM:
  case OP_REDUCE_MAX: eval_reduce(it, v); break;
  case OP_ARGMAX: eval_argmax(it, v); break;
  case OP_MATMUL: eval_matmul(it, v); break;
  case OP_TRANSPOSE: eval_transpose(it, v); break;
  case OP_GRADIENT:
  case OP_RESHAPE:
    memcpy(out_buf(it, v), arg_val(it, nd, 0), (size_t)count_of(it, &nd->type) * sizeof(double));
    break;
  case OP_BROADCAST: eval_broadcast(it, v); break;
  case OP_INDEX: ok = eval_index(it, v); break;
  case OP_ONEHOT: ok = eval_onehot(it, v); break;
  case OP_GATHER: eval_gather(it, v); break;
  case OP_SCATTER_ADD: eval_scatter_add(it, v); break;
  case OP_BATCH_SUM: eval_batch_sum(it, v); break;
  case OP_CONV2D:
  case OP_CONV2D_DATA_GRAD:
  case OP_CONV2D_FILTER_GRAD:
  case OP_UNFOLD:
  case OP_FOLD: eval_window(it, v); break;
  case OP_COUNT: NNC_UNREACHABLE("OP_COUNT is not an op");
  default: /* every elementwise op */
    NNC_ASSERT(ir_ops[nd->op].flags & OPF_ELEMWISE);
    ok = eval_elementwise(it, v);
    break;
  }
  if (ok && !it->f64 && nd->type.dtype == DT_F32) {
    double *out = it->val[v];
    for (int64_t i = 0, c = count_of(it, &nd->type); i < c; i++) out[i] = (float)out[i];
  }
  return ok;
}

/* ---- the API ------------------------------------------------------------------------- */

Interp *interp_new(const Module *m, bool f64) {
  Interp *it = nnc_xcalloc(1, sizeof *it);
  it->m = m;
  it->f64 = f64;
  it->sym = nnc_xcalloc(m->nsyms ? m->nsyms : 1, sizeof *it->sym);
  it->val = nnc_xcalloc(m->nnodes ? m->nnodes : 1, sizeof *it->val);
  it->cap = nnc_xcalloc(m->nnodes ? m->nnodes : 1, sizeof *it->cap);
  it->need = nnc_xcalloc(m->nnodes ? m->nnodes : 1, 1);
  it->metric_outs = nnc_xcalloc(m->noutputs ? m->noutputs : 1, sizeof *it->metric_outs);
  it->xsym = it->ysym = it->loss_out = -1;
  it->step = 1;
  for (uint32_t i = 0; i < m->nsyms; i++) {
    const Symbol *s = &m->syms[i];
    if (s->kind == SYM_INPUT && it->xsym < 0) it->xsym = i;
    if (s->kind == SYM_LABEL && it->ysym < 0) it->ysym = i;
    if (s->kind == SYM_PARAM || s->kind == SYM_STATE)
      it->sym[i] = nnc_xcalloc((size_t)(type_numel(&s->type) ? type_numel(&s->type) : 1), sizeof(double));
    if (s->kind == SYM_HYPER) {
      it->sym[i] = nnc_xcalloc(1, sizeof(double));
      it->sym[i][0] = s->value;
    }
  }
  for (uint32_t i = 0; i < m->noutputs; i++) {
    const Output *o = &m->outputs[i];
    it->need[o->value] |= NEED_ALL;
    if (o->kind != OUT_UPDATE) it->need[o->value] |= NEED_EVAL;
    if (o->kind == OUT_LOSS && it->loss_out < 0) it->loss_out = i;
    if (o->kind == OUT_METRIC) it->metric_outs[it->nmetrics++] = i;
  }
  /* Topological order: a user comes after its operands, so one backward
   * sweep propagates the marks. */
  for (uint32_t v = m->nnodes; v-- > 0;)
    for (int k = 0; k < m->nodes[v].nargs; k++) it->need[m->nodes[v].args[k]] |= it->need[v];
  return it;
}

void interp_free(Interp *it) {
  if (!it) return;
  for (uint32_t i = 0; i < it->m->nsyms; i++) free(it->sym[i]);
  for (uint32_t v = 0; v < it->m->nnodes; v++) free(it->val[v]);
  free(it->sym);
  free(it->val);
  free(it->cap);
  free(it->need);
  free(it->metric_outs);
  free(it);
}

void interp_init(Interp *it, uint64_t seed) {
  const Module *m = it->m;
  it->seed_key = rt_rng_key16(seed);
  for (uint32_t i = 0; i < m->nsyms; i++) {
    const Symbol *s = &m->syms[i];
    if (s->kind == SYM_HYPER) it->sym[i][0] = s->value;
    if (s->kind != SYM_PARAM && s->kind != SYM_STATE) continue;
    int64_t numel = type_numel(&s->type);
    float *tmp = nnc_xcalloc((size_t)(numel ? numel : 1), sizeof(float));
    rt_init_tensor((RtInitKind)s->init.kind, s->init.a, s->init.b, s->type.dims, s->type.rank, seed, s->name,
                   tmp);
    for (int64_t k = 0; k < numel; k++) it->sym[i][k] = tmp[k];
    free(tmp);
  }
  it->step = 1;
}

double *interp_symbol(Interp *it, uint32_t sym) { return sym < it->m->nsyms ? it->sym[sym] : NULL; }

bool interp_set_hyper(Interp *it, const char *name, double v) {
  bool found = false;
  for (uint32_t i = 0; i < it->m->nsyms; i++)
    if (it->m->syms[i].kind == SYM_HYPER && !strcmp(it->m->syms[i].name, name)) {
      it->sym[i][0] = v;
      found = true;
    }
  return found;
}

int64_t interp_get_step(const Interp *it) { return it->step; }
void interp_set_step(Interp *it, int64_t step) { it->step = step; }
int interp_metric_count(const Interp *it) { return it->nmetrics; }

const char *interp_metric_name(const Interp *it, int i) {
  return i >= 0 && i < it->nmetrics ? it->m->outputs[it->metric_outs[i]].name : NULL;
}

const char *interp_error(const Interp *it) { return it->err; }

static int run(Interp *it, const float *x, const void *y, int64_t n, bool updates, bool training) {
  uint8_t bit = updates ? NEED_ALL : NEED_EVAL;
  it->training = training;
  it->x = x;
  it->y = y;
  it->n = n;
  it->err[0] = 0;
  it->ran = 0;
  if (n < 1) {
    snprintf(it->err, sizeof it->err, "a batch needs at least one sample, found %lld", (long long)n);
    return -1;
  }
  for (uint32_t v = 0; v < it->m->nnodes; v++)
    if ((it->need[v] & bit) && !eval_node(it, v)) return -1;
  it->ran = bit;
  return 0;
}

int interp_run(Interp *it, const float *x, const void *y, int64_t n, bool updates) {
  return run(it, x, y, n, updates, updates);
}

const double *interp_output(const Interp *it, uint32_t i) {
  if (i >= it->m->noutputs || !(it->need[it->m->outputs[i].value] & it->ran)) return NULL;
  return it->val[it->m->outputs[i].value];
}

/* The sum over the batch of a per-sample scalar output. */
static double output_sum(const Interp *it, uint32_t i) {
  const Type *t = &it->m->nodes[it->m->outputs[i].value].type;
  const double *v = interp_output(it, i);
  double s = 0;
  for (int64_t k = 0, c = count_of(it, t); k < c; k++) s += v[k];
  return t->batched ? s : s * (double)it->n;
}

static void add_sums(const Interp *it, double *loss_sum, double *metric_sums) {
  if (loss_sum && it->loss_out >= 0) *loss_sum += output_sum(it, (uint32_t)it->loss_out);
  if (metric_sums)
    for (int i = 0; i < it->nmetrics; i++) metric_sums[i] += output_sum(it, it->metric_outs[i]);
}

int interp_eval(Interp *it, const float *x, const void *y, int64_t n, double *loss_sum, double *metric_sums) {
  if (run(it, x, y, n, false, false)) return -1;
  add_sums(it, loss_sum, metric_sums);
  return 0;
}

int interp_train_loss(Interp *it, const float *x, const void *y, int64_t n, double *loss_sum) {
  if (run(it, x, y, n, false, true)) return -1;
  add_sums(it, loss_sum, NULL);
  return 0;
}

int interp_step(Interp *it, const float *x, const void *y, int64_t n, double *loss_sum, double *metric_sums) {
  if (interp_run(it, x, y, n, true)) return -1;
  const Module *m = it->m;
  for (uint32_t i = 0; i < m->noutputs; i++) {
    const Output *o = &m->outputs[i];
    const Node *nd = &m->nodes[o->value];
    if (o->kind == OUT_UPDATE && (nd->type.batched || type_numel(&nd->type) != type_numel(&m->syms[o->sym].type))) {
      fail(it, o->value, -1, "the update of '%s' does not have the symbol's shape", m->syms[o->sym].name);
      return -1;
    }
  }
  add_sums(it, loss_sum, metric_sums);
  /* All values are computed: writing them back now updates every symbol
   * "at once" (no update sees another's new value). */
  for (uint32_t i = 0; i < m->noutputs; i++) {
    const Output *o = &m->outputs[i];
    if (o->kind == OUT_UPDATE)
      memcpy(it->sym[o->sym], it->val[o->value], (size_t)type_numel(&m->syms[o->sym].type) * sizeof(double));
  }
  it->step++;
  return 0;
}
