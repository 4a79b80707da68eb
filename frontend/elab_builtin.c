/* frontend/elab_builtin.c - the built-in primitives of the language.
 *
 * A call whose name is not bound in scope is looked up here before the
 * fn and layer definitions, in two tables:
 *   builtins[]   the primitives with rules of their own, one row each: the
 *                name, the positional and named arguments it takes, the
 *                function that builds it (f32, i32, max, min, sum, mean,
 *                where, argmax, reshape, transpose, onehot, conv, unfold,
 *                training, rank, and the layer batch_norm, which crosses the
 *                batch and keeps running statistics);
 *   ir/ops.def   every elementwise op with a .nn name (exp, log, sqrt,
 *                ...): op(x) on tensors, with x made f32 for the ops defined
 *                on f32 only; on numbers, the op's value (op_eval) folds at
 *                compile time.
 * Built-in names cannot be redefined (elab.c asks elab_is_builtin).
 */
#include "frontend/elab_internal.h"

#include <string.h>

static bool expect_args(Elab *e, const Expr *call, CallArgs *ca, uint32_t min, uint32_t max,
                        const char *const *named_ok) {
  const char *name = call->u.call.callee;
  if (ca->npos < min || ca->npos > max) {
    if (min == max)
      elab_error(e, call->loc, "'%s' takes %u argument%s, found %u", name, min, min == 1 ? "" : "s", ca->npos);
    else
      elab_error(e, call->loc, "'%s' takes %u to %u arguments, found %u", name, min, max, ca->npos);
    return false;
  }
  for (uint32_t k = 0; k < ca->nnamed; k++) {
    bool known = false;
    for (int j = 0; named_ok && named_ok[j]; j++) known |= !strcmp(named_ok[j], ca->names[k]);
    if (!known) {
      Suggest sg;
      suggest_init(&sg, ca->names[k]);
      suggest_offer_list(&sg, named_ok);
      elab_error(e, ca->name_locs[k], "'%s' has no parameter named '%s'%s", name, ca->names[k],
                 elab_did_you_mean(e, suggest_best(&sg)));
      return false;
    }
  }
  return true;
}

static Value *named_arg(CallArgs *ca, const char *name) {
  for (uint32_t k = 0; k < ca->nnamed; k++)
    if (!strcmp(ca->names[k], name)) return &ca->named[k];
  return NULL;
}

/* A tensor operand for a primitive (numbers become constants). */
static bool tensor_arg(Elab *e, Value *v, DType want) {
  *v = elab_to_tensor(e, *v, want);
  return v->kind == V_TENSOR;
}

/* Axis list from `axis = k` or `axis = [a, b]`, negative counting from the end. */
static bool axes_arg(Elab *e, Value *axis, int rank, uint32_t *mask) {
  if (!axis) {
    *mask = rank ? (1u << rank) - 1 : 0;
    return true;
  }
  Value *items = axis->kind == V_LIST ? axis->items : axis;
  uint32_t n = axis->kind == V_LIST ? axis->nitems : 1;
  *mask = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (items[i].kind != V_NUM || !elab_integral(items[i].num)) {
      elab_error(e, items[i].loc, "an axis must be an integer, found %s", elab_kind_text(items[i].kind));
      return false;
    }
    double a = items[i].num < 0 ? items[i].num + rank : items[i].num;
    if (a < 0 || a >= rank) {
      elab_error(e, items[i].loc, "axis %g is out of range for a value of rank %d", items[i].num, rank);
      return false;
    }
    *mask |= 1u << (int)a;
  }
  return true;
}

static Value retype(Elab *e, Op op, Value x, Type t, SrcLoc loc) {
  Node attrs;
  memset(&attrs, 0, sizeof attrs);
  attrs.type = t;
  return elab_build(e, op, &x.id, 1, &attrs, loc);
}

/* `keepdims = true|false` (the numbers 1 and 0) of a reduction; false when
 * absent. */
static bool keepdims_arg(Elab *e, CallArgs *ca, bool *keep) {
  Value *k = named_arg(ca, "keepdims");
  *keep = false;
  if (!k) return true;
  if (k->kind != V_NUM || (k->num != 0 && k->num != 1)) {
    if (k->kind != V_ERROR) elab_error(e, k->loc, "keepdims must be true or false");
    return false;
  }
  *keep = k->num == 1;
  return true;
}

/* With keepdims, the reduced axes of `in` come back as axes of extent 1:
 * a reshape of the reduction, so the graph IR needs no second form. */
static Value keep_axes(Elab *e, Value r, const Type *in, uint32_t mask, bool keep, SrcLoc loc) {
  if (!keep || mask == 0 || r.kind != V_TENSOR) return r;
  Type t = *in;
  t.dtype = elab_vtype(e, r)->dtype;
  for (int i = 0; i < t.rank; i++)
    if (mask >> i & 1) t.dims[i] = 1;
  return retype(e, OP_RESHAPE, r, t, loc);
}

static Value reduce(Elab *e, Op op, Value x, uint32_t mask, SrcLoc loc) {
  if (mask == 0) return x; /* a scalar reduces to itself */
  Node attrs;
  memset(&attrs, 0, sizeof attrs);
  attrs.attr.axes = mask;
  return elab_build(e, op, &x.id, 1, &attrs, loc);
}

/* ---- the primitives ------------------------------------------------------------------- */

typedef struct Builtin Builtin;
typedef Value (*BuiltinFn)(Elab *e, const Expr *call, CallArgs *ca);
struct Builtin {
  const char *name;
  uint32_t min, max;            /* positional arguments */
  const char *const *named;     /* the named arguments it takes, NULL-terminated; NULL = none */
  BuiltinFn build;              /* called once the arguments are checked */
};

static const char *const axis_only[] = {"axis", "keepdims", NULL};

/* An elementwise op of ir/ops.def by its .nn name: op(x) or op(x, y). */
static Value elementwise(Elab *e, const Expr *call, CallArgs *ca, Op op) {
  const char *name = call->u.call.callee;
  SrcLoc loc = call->loc;
  int arity = ir_ops[op].arity;
  NNC_ASSERT(arity == 1 || arity == 2); /* three operands need rules of their own (where) */
  if (!expect_args(e, call, ca, (uint32_t)arity, (uint32_t)arity, NULL)) return value_error(loc);
  Value x = ca->pos[0];
  if (arity == 2) {
    Value y = ca->pos[1];
    if (x.kind == V_NUM && y.kind == V_NUM) return value_num(op_eval(op, DT_F32, x.num, y.num, 0), false, loc);
    return elab_apply_binary(e, op, name, x, y, loc);
  }
  if (x.kind == V_NUM) return value_num(op_eval(op, DT_F32, x.num, 0, 0), false, loc);
  bool flt = ir_ops[op].flags & OPF_FLOAT;
  if (!tensor_arg(e, &x, flt ? DT_F32 : DT_I32)) return value_error(loc);
  if (flt) x = elab_cast(e, x, DT_F32);
  return elab_build(e, op, &x.id, 1, NULL, loc);
}

/* f32(x), i32(x): a conversion (a number converts as op_eval's cast). */
static Value convert(Elab *e, const Expr *call, CallArgs *ca, DType dt) {
  Value x = ca->pos[0];
  if (x.kind == V_NUM) return value_num(op_eval(OP_CAST, dt, x.num, 0, 0), dt == DT_I32, call->loc);
  if (!tensor_arg(e, &x, DT_F32)) return value_error(call->loc);
  return elab_cast(e, x, dt);
}
static Value b_f32(Elab *e, const Expr *call, CallArgs *ca) { return convert(e, call, ca, DT_F32); }
static Value b_i32(Elab *e, const Expr *call, CallArgs *ca) { return convert(e, call, ca, DT_I32); }

/* max(a, b), min(a, b): elementwise; max(x, axis =, keepdims =), min(x, ...):
 * a reduction (min(x) = -max(-x)). */
static Value max_min(Elab *e, const Expr *call, CallArgs *ca, bool is_max) {
  SrcLoc loc = call->loc;
  if (ca->npos == 2) {
    if (!expect_args(e, call, ca, 2, 2, NULL)) return value_error(loc);
    Value a = ca->pos[0], b = ca->pos[1];
    Op op = is_max ? OP_MAX : OP_MIN;
    if (a.kind == V_NUM && b.kind == V_NUM) return value_num(op_eval(op, DT_F32, a.num, b.num, 0), a.is_int && b.is_int, loc);
    return elab_apply_binary(e, op, call->u.call.callee, a, b, loc);
  }
  Value x = ca->pos[0];
  bool keep;
  if (!keepdims_arg(e, ca, &keep) || !tensor_arg(e, &x, DT_F32)) return value_error(loc);
  Type in = *elab_vtype(e, x);
  uint32_t mask;
  if (!axes_arg(e, named_arg(ca, "axis"), in.rank, &mask)) return value_error(loc);
  Value r;
  if (is_max) {
    r = reduce(e, OP_REDUCE_MAX, x, mask, loc);
  } else {
    Value neg = elab_build(e, OP_NEG, &x.id, 1, NULL, loc);
    r = neg.kind == V_ERROR ? neg : reduce(e, OP_REDUCE_MAX, neg, mask, loc);
    if (r.kind != V_ERROR) r = elab_build(e, OP_NEG, &r.id, 1, NULL, loc);
  }
  return keep_axes(e, r, &in, mask, keep, loc);
}
static Value b_max(Elab *e, const Expr *call, CallArgs *ca) { return max_min(e, call, ca, true); }
static Value b_min(Elab *e, const Expr *call, CallArgs *ca) { return max_min(e, call, ca, false); }

/* sum(x, axis =, keepdims =), mean(x, ...): a number sums to itself. */
static Value sum_mean(Elab *e, const Expr *call, CallArgs *ca, bool mean) {
  SrcLoc loc = call->loc;
  Value x = ca->pos[0];
  bool keep;
  if (!keepdims_arg(e, ca, &keep)) return value_error(loc);
  if (x.kind == V_NUM) return x;
  if (!tensor_arg(e, &x, DT_F32)) return value_error(loc);
  if (mean) x = elab_cast(e, x, DT_F32);
  Type in = *elab_vtype(e, x);
  uint32_t mask;
  if (!axes_arg(e, named_arg(ca, "axis"), in.rank, &mask)) return value_error(loc);
  double count = 1;
  for (int i = 0; i < in.rank; i++)
    if (mask >> i & 1) count *= (double)in.dims[i];
  Value r = reduce(e, OP_REDUCE_SUM, x, mask, loc);
  if (mean && r.kind != V_ERROR && count != 1)
    r = elab_apply_binary(e, OP_MUL, "*", r, value_num(1.0 / count, false, loc), loc);
  return keep_axes(e, r, &in, mask, keep, loc);
}
static Value b_sum(Elab *e, const Expr *call, CallArgs *ca) { return sum_mean(e, call, ca, false); }
static Value b_mean(Elab *e, const Expr *call, CallArgs *ca) { return sum_mean(e, call, ca, true); }

/* where(c, a, b): c made f32; a and b meet at a common dtype. */
static Value b_where(Elab *e, const Expr *call, CallArgs *ca) {
  SrcLoc loc = call->loc;
  Value c = ca->pos[0], a = ca->pos[1], b = ca->pos[2];
  if (c.kind == V_ERROR || a.kind == V_ERROR || b.kind == V_ERROR) return value_error(loc);
  if (!tensor_arg(e, &c, DT_F32)) return value_error(loc);
  c = elab_cast(e, c, DT_F32);
  DType dt = DT_I32;
  if ((a.kind == V_TENSOR && elab_vtype(e, a)->dtype == DT_F32) || (a.kind == V_NUM && !elab_integral(a.num))) dt = DT_F32;
  if ((b.kind == V_TENSOR && elab_vtype(e, b)->dtype == DT_F32) || (b.kind == V_NUM && !elab_integral(b.num))) dt = DT_F32;
  if (!tensor_arg(e, &a, dt) || !tensor_arg(e, &b, dt)) return value_error(loc);
  a = elab_cast(e, a, dt);
  b = elab_cast(e, b, dt);
  ValueId args[3] = {c.id, a.id, b.id};
  return elab_build(e, OP_WHERE, args, 3, NULL, loc);
}

/* argmax(x, axis = -1, keepdims =): along the last axis only. */
static Value b_argmax(Elab *e, const Expr *call, CallArgs *ca) {
  SrcLoc loc = call->loc;
  Value x = ca->pos[0];
  bool keep;
  if (!keepdims_arg(e, ca, &keep) || !tensor_arg(e, &x, DT_F32)) return value_error(loc);
  Type in = *elab_vtype(e, x);
  Value *axis = named_arg(ca, "axis");
  uint32_t mask = in.rank ? 1u << (in.rank - 1) : 0, given;
  if (axis && !axes_arg(e, axis, in.rank, &given)) return value_error(loc);
  if (axis && given != mask) {
    elab_error(e, axis->loc, "argmax supports only the last axis");
    return value_error(loc);
  }
  return keep_axes(e, elab_build(e, OP_ARGMAX, &x.id, 1, NULL, loc), &in, mask, keep, loc);
}

/* reshape(x, [d, ...]): one dimension may be -1. */
static Value b_reshape(Elab *e, const Expr *call, CallArgs *ca) {
  SrcLoc loc = call->loc;
  Value x = ca->pos[0], shape = ca->pos[1];
  if (!tensor_arg(e, &x, DT_F32)) return value_error(loc);
  if (shape.kind != V_LIST) {
    elab_error(e, shape.loc, "reshape needs a list of dimensions such as [28, 28], found %s", elab_kind_text(shape.kind));
    return value_error(loc);
  }
  if (shape.nitems > NNC_MAX_RANK) {
    elab_error(e, shape.loc, "rank %u is too large (limit %d)", shape.nitems, NNC_MAX_RANK);
    return value_error(loc);
  }
  Type t = *elab_vtype(e, x);
  t.rank = (uint8_t)shape.nitems;
  int infer = -1;
  int64_t known = 1;
  for (uint32_t i = 0; i < shape.nitems; i++) {
    Value d = shape.items[i];
    if (d.kind != V_NUM || !elab_integral(d.num) || (d.num < 1 && d.num != -1) || d.num > (double)NNC_MAX_DIM) {
      if (d.kind == V_NUM)
        elab_error(e, d.loc, "a dimension must be a positive integer or -1, found %g", d.num);
      else
        elab_error(e, d.loc, "a dimension must be a positive integer or -1, found %s", elab_kind_text(d.kind));
      return value_error(loc);
    }
    if (d.num == -1) {
      if (infer >= 0) {
        elab_error(e, d.loc, "only one dimension can be -1");
        return value_error(loc);
      }
      infer = (int)i;
      t.dims[i] = 1;
      continue;
    }
    t.dims[i] = (int64_t)d.num;
    known *= t.dims[i];
    if (known > NNC_MAX_ELEMS) break;
  }
  if (infer >= 0) {
    int64_t total = type_numel(elab_vtype(e, x));
    if (known == 0 || total % known) {
      char buf[96];
      elab_error(e, shape.loc, "cannot reshape %s (%lld elements) with a -1 dimension here",
                 shape_str(elab_vtype(e, x), buf, sizeof buf), (long long)total);
      return value_error(loc);
    }
    t.dims[infer] = total / known;
  }
  return retype(e, OP_RESHAPE, x, t, loc);
}

/* transpose(x) reverses the axes; transpose(x, [p, ...]) or
 * transpose(x, perm = [p, ...]) permutes them: result axis i is x's axis
 * p_i (negative entries count from the end). */
static Value b_transpose(Elab *e, const Expr *call, CallArgs *ca) {
  SrcLoc loc = call->loc;
  Value x = ca->pos[0], *perm = named_arg(ca, "perm");
  if (ca->npos == 2) {
    if (perm) {
      elab_error(e, perm->loc, "transpose's permutation is given twice");
      return value_error(loc);
    }
    perm = &ca->pos[1];
  }
  if (!tensor_arg(e, &x, DT_F32)) return value_error(loc);
  int rank = elab_vtype(e, x)->rank;
  Node attrs;
  memset(&attrs, 0, sizeof attrs);
  if (perm) {
    Value p = *perm;
    if (p.kind != V_LIST || p.nitems != (uint32_t)rank) {
      char buf[96];
      elab_error(e, p.loc, "transpose needs a permutation of the %d axes of %s, found %s", rank,
                 shape_str(elab_vtype(e, x), buf, sizeof buf),
                 p.kind == V_LIST ? arena_printf(e->arena, "a list of %u axes", p.nitems) : elab_kind_text(p.kind));
      return value_error(loc);
    }
    unsigned seen = 0;
    for (int i = 0; i < rank; i++) {
      Value a = p.items[i];
      double ax = a.kind == V_NUM && a.num < 0 ? a.num + rank : a.num;
      if (a.kind != V_NUM || !elab_integral(a.num) || ax < 0 || ax >= rank) {
        elab_error(e, a.loc, "a permutation entry must be an axis in [0, %d) (or negative, from the end)", rank);
        return value_error(loc);
      }
      if (seen >> (int)ax & 1) {
        elab_error(e, a.loc, "axis %d appears twice in the permutation", (int)ax);
        return value_error(loc);
      }
      seen |= 1u << (int)ax;
      attrs.attr.perm[i] = (uint8_t)ax;
    }
  } else {
    for (int i = 0; i < rank; i++) attrs.attr.perm[i] = (uint8_t)(rank - 1 - i);
  }
  return elab_build(e, OP_TRANSPOSE, &x.id, 1, &attrs, loc);
}
static const char *const transpose_args[] = {"perm", NULL};

/* onehot(i, n): f32[n], 1 at the i32 index i; for i32 indices of any
 * shape, f32[i's shape..., n]. */
static Value b_onehot(Elab *e, const Expr *call, CallArgs *ca) {
  SrcLoc loc = call->loc;
  Value i = ca->pos[0], n = ca->pos[1];
  if (n.kind != V_NUM || !elab_integral(n.num) || n.num < 1 || n.num > (double)NNC_MAX_DIM) {
    elab_error(e, n.loc, "onehot needs a positive integer size");
    return value_error(loc);
  }
  if (!tensor_arg(e, &i, DT_I32)) return value_error(loc);
  if (elab_vtype(e, i)->dtype != DT_I32) {
    elab_error(e, i.loc, "onehot needs an i32 index");
    return value_error(loc);
  }
  if (elab_vtype(e, i)->rank == NNC_MAX_RANK) {
    elab_error(e, i.loc, "onehot of an index of rank %d has rank %d (limit %d)", NNC_MAX_RANK, NNC_MAX_RANK + 1,
               NNC_MAX_RANK);
    return value_error(loc);
  }
  elab_note_index_bound(e, i.id, (int64_t)n.num);
  Type t = *elab_vtype(e, i);
  t.dtype = DT_F32;
  t.dims[t.rank++] = (int64_t)n.num;
  return retype(e, OP_ONEHOT, i, t, loc);
}

/* An i32 tensor argument (an index): false after reporting anything else. */
static bool index_arg(Elab *e, Value *v, const char *fn, const char *what) {
  if (v->kind == V_NUM && elab_integral(v->num)) *v = elab_to_tensor(e, *v, DT_I32);
  if (v->kind == V_TENSOR && elab_vtype(e, *v)->dtype == DT_I32) return true;
  if (v->kind == V_ERROR) return false;
  char buf[96];
  Type t = v->kind == V_TENSOR ? *elab_vtype(e, *v) : type_scalar(DT_F32);
  t.batched = false; /* the per-sample type, as written */
  elab_error(e, v->loc, "%s needs %s of type i32, found %s", fn, what,
             v->kind == V_TENSOR ? type_str(&t, buf, sizeof buf) : elab_kind_text(v->kind));
  return false;
}

/* gather(table, i): table's rows at the i32 indices i, of any shape:
 * [n, r...] and i [s...] -> [s..., r...] (table[i]); an index outside
 * [0, n) gives a row of 0.  The gradient sums into the rows read, in
 * order (scatter_add). */
static Value b_gather(Elab *e, const Expr *call, CallArgs *ca) {
  SrcLoc loc = call->loc;
  Value t = ca->pos[0], i = ca->pos[1];
  if (!tensor_arg(e, &t, DT_F32) || !index_arg(e, &i, "gather", "indices")) return value_error(loc);
  if (elab_vtype(e, t)->rank == 0) {
    elab_error(e, t.loc, "gather needs a table with at least one axis, found a scalar");
    return value_error(loc);
  }
  elab_note_index_bound(e, i.id, elab_vtype(e, t)->dims[0]);
  ValueId args[2] = {t.id, i.id};
  return elab_build(e, OP_GATHER, args, 2, NULL, loc);
}

/* pick(x, i): along x's last axis, the element at index i for each row:
 * x [..., k] and i i32[...] -> [...] (x[..., i[...]]; with x a vector
 * and i a scalar, x[i]).  cross_entropy's label. */
static Value b_pick(Elab *e, const Expr *call, CallArgs *ca) {
  SrcLoc loc = call->loc;
  Value x = ca->pos[0], i = ca->pos[1];
  if (!tensor_arg(e, &x, DT_F32) || !index_arg(e, &i, "pick", "an index")) return value_error(loc);
  Type xt = *elab_vtype(e, x), it = *elab_vtype(e, i);
  bool fits = xt.rank == it.rank + 1;
  for (int k = 0; fits && k < it.rank; k++) fits = xt.dims[k] == it.dims[k];
  if (!fits) {
    char sx[96], sl[96], si[96];
    Type lead = xt;
    lead.rank = xt.rank ? (uint8_t)(xt.rank - 1) : 0;
    it.batched = false; /* per-sample shapes, as the user wrote them */
    elab_error(e, i.loc, "pick needs an index of x's shape without its last axis: x is %s, so i32%s, found %s",
               shape_str(&xt, sx, sizeof sx), xt.rank ? shape_str(&lead, sl, sizeof sl) : " (none fits a scalar)",
               type_str(&it, si, sizeof si));
    return value_error(loc);
  }
  elab_note_index_bound(e, i.id, xt.dims[xt.rank - 1]);
  ValueId args[2] = {x.id, i.id};
  return elab_build(e, OP_INDEX, args, 2, NULL, loc);
}

/* causal_mask(t): f32[t, t], 1 on and below the diagonal (position j is
 * visible from position i when j <= i), 0 above: computed from element
 * positions where it is used, never stored. */
static Value b_causal_mask(Elab *e, const Expr *call, CallArgs *ca) {
  SrcLoc loc = call->loc;
  Value t = ca->pos[0];
  if (t.kind != V_NUM || !elab_integral(t.num) || t.num < 1 || t.num > 46340) {
    if (t.kind != V_ERROR) elab_error(e, t.loc, "causal_mask needs a size from 1 to 46340 (t * t positions fit in i32)");
    return value_error(loc);
  }
  int64_t dims[2] = {(int64_t)t.num, (int64_t)t.num};
  uint32_t il = elab_irloc(e, loc);
  ValueId pos = ir_element(e->m, type_make(DT_I32, 2, dims, false), il), n = ir_const(e->m, DT_I32, t.num, il);
  ValueId row = ir_op2(e->m, OP_DIV, pos, n, il); /* i32: toward zero */
  ValueId col = ir_op2(e->m, OP_SUB, pos, ir_op2(e->m, OP_MUL, row, n, il), il);
  return value_tensor(ir_op2(e->m, OP_GE, row, col, il), loc);
}

/* An integer argument in [lo, hi] (named or default), for window sizes,
 * strides and padding. */
static bool int_arg(Elab *e, Value *v, const char *what, int lo, int hi, int def, int *out) {
  if (!v) {
    *out = def;
    return true;
  }
  if (v->kind != V_NUM || !elab_integral(v->num) || v->num < lo || v->num > hi) {
    if (v->kind != V_ERROR) elab_error(e, v->loc, "%s must be an integer from %d to %d", what, lo, hi);
    return false;
  }
  *out = (int)v->num;
  return true;
}

static Value window(Elab *e, Op op, const ValueId *args, int nargs, int size, int stride, int pad, SrcLoc loc) {
  Node attrs;
  memset(&attrs, 0, sizeof attrs);
  attrs.attr.win.size = (uint16_t)size, attrs.attr.win.stride = (uint16_t)stride, attrs.attr.win.pad = (uint16_t)pad;
  return elab_build(e, op, args, nargs, &attrs, loc);
}

/* conv(x[c,h,w], w[f,c,k,k], stride = 1, padding = 0) -> [f,h',w']: PyTorch's
 * conv2d without the bias (the conv2d layer in stdlib adds it). */
static Value b_conv(Elab *e, const Expr *call, CallArgs *ca) {
  SrcLoc loc = call->loc;
  Value x = ca->pos[0], w = ca->pos[1];
  int stride, pad;
  if (!tensor_arg(e, &x, DT_F32) || !tensor_arg(e, &w, DT_F32)) return value_error(loc);
  if (!int_arg(e, named_arg(ca, "stride"), "stride", 1, 65535, 1, &stride) ||
      !int_arg(e, named_arg(ca, "padding"), "padding", 0, 65535, 0, &pad))
    return value_error(loc);
  const Type *wt = elab_vtype(e, w);
  x = elab_cast(e, x, DT_F32);
  w = elab_cast(e, w, DT_F32);
  ValueId args[2] = {x.id, w.id};
  return window(e, OP_CONV2D, args, 2, wt->rank == 4 ? (int)wt->dims[2] : 0, stride, pad, loc);
}

/* unfold(x[..., h, w], size, stride = 1, padding = 0) -> [..., size, size, h', w']:
 * each window's elements (0 in the padding); pooling reduces over them. */
static Value b_unfold(Elab *e, const Expr *call, CallArgs *ca) {
  SrcLoc loc = call->loc;
  Value x = ca->pos[0];
  int size, stride, pad;
  if (!int_arg(e, &ca->pos[1], "a window size", 1, 65535, 1, &size) ||
      !int_arg(e, named_arg(ca, "stride"), "stride", 1, 65535, 1, &stride) ||
      !int_arg(e, named_arg(ca, "padding"), "padding", 0, 65535, 0, &pad) || !tensor_arg(e, &x, DT_F32))
    return value_error(loc);
  x = elab_cast(e, x, DT_F32);
  return window(e, OP_UNFOLD, &x.id, 1, size, stride, pad, loc);
}

static const char *const window_args[] = {"stride", "padding", NULL};

/* rank(x): the number of per-sample axes of x (0 for a number), a number
 * known at compile time (adamw decays only parameters of rank 2 and more). */
static Value b_rank(Elab *e, const Expr *call, CallArgs *ca) {
  Value v = ca->pos[0];
  if (v.kind == V_ERROR) return v;
  if (v.kind == V_NUM) return value_num(0, false, call->loc);
  if (v.kind != V_TENSOR) {
    elab_error(e, call->loc, "'rank' takes a tensor or a number");
    return value_error(call->loc);
  }
  return value_num(e->m->nodes[v.id].type.rank, false, call->loc);
}

/* training(): 1 in a training step, 0 in evaluation (an f32 scalar read at
 * run time). */
static Value b_training(Elab *e, const Expr *call, CallArgs *ca) {
  (void)ca;
  return value_tensor(ir_leaf(e->m, OP_TRAINING, 0, elab_irloc(e, call->loc)), call->loc);
}

/* A number argument in [lo, hi] (named or default); hi_open excludes hi. */
static bool number_arg(Elab *e, Value *v, const char *what, double lo, double hi, bool lo_open, double def,
                       double *out) {
  if (!v) {
    *out = def;
    return true;
  }
  if (v->kind != V_NUM || !(lo_open ? v->num > lo : v->num >= lo) || !(v->num <= hi)) {
    if (v->kind != V_ERROR)
      elab_error(e, v->loc, "%s must be a number %s %g and at most %g", what, lo_open ? "above" : "from", lo, hi);
    return false;
  }
  *out = v->num;
  return true;
}

static Value num(double x, SrcLoc loc) { return value_num(x, false, loc); }
static Value bin(Elab *e, Op op, Value a, Value b, SrcLoc loc) { return elab_apply_binary(e, op, ir_ops[op].name, a, b, loc); }
static Value op3(Elab *e, Op op, Value a, Value b, Value c, SrcLoc loc) {
  if (a.kind != V_TENSOR || b.kind != V_TENSOR || c.kind != V_TENSOR) return value_error(loc);
  ValueId args[3] = {a.id, b.id, c.id};
  return elab_build(e, op, args, 3, NULL, loc);
}
static Value op1(Elab *e, Op op, Value a, SrcLoc loc) {
  if (a.kind != V_TENSOR) return value_error(loc);
  return elab_build(e, op, &a.id, 1, NULL, loc);
}
static Value shaped(Elab *e, Value x, int rank, const int64_t *dims, SrcLoc loc) {
  if (x.kind != V_TENSOR) return value_error(loc);
  Type t = *elab_vtype(e, x);
  t.rank = rank;
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  return retype(e, OP_RESHAPE, x, t, loc);
}

/* batch_norm(x, momentum = 0.1, eps = 1e-5): PyTorch's BatchNorm1d on
 * x: f32[c] and BatchNorm2d on x: f32[c, h, w] (any rank, channels first):
 * per channel, the statistics over the batch and every axis after the
 * first.  Training normalizes with the batch's mean and biased variance and
 * moves the running mean and (unbiased) variance towards them; evaluation
 * normalizes with the running ones.  Params gamma (ones) and beta (zeros);
 * running_mean (zeros) and running_var (ones) are nograd params, updated by
 * the training step (docs/language.md). */
static Value b_batch_norm(Elab *e, const Expr *call, CallArgs *ca) {
  SrcLoc loc = call->loc;
  if (!e->allow_params) {
    elab_error(e, loc, "'batch_norm' has parameters: call it in a layer or a model, not in a fn");
    return value_error(loc);
  }
  Value x = ca->pos[0];
  double momentum, eps;
  if (!number_arg(e, named_arg(ca, "momentum"), "momentum", 0, 1, false, 0.1, &momentum) ||
      !number_arg(e, named_arg(ca, "eps"), "eps", 0, 1, true, 1e-5, &eps) || !tensor_arg(e, &x, DT_F32))
    return value_error(loc);
  x = elab_cast(e, x, DT_F32);
  Type t = *elab_vtype(e, x);
  if (t.rank < 1 || !t.batched) {
    char tb[160];
    elab_error(e, loc, "batch_norm needs a per-sample value with a channel axis first (f32[c] or f32[c, h, w]), "
               "found %s%s", type_str(&t, tb, sizeof tb), t.batched ? "" : ", which does not depend on the input");
    return value_error(loc);
  }
  int64_t c = t.dims[0], per = type_numel(&t) / c, cs[2] = {c, per}, c1[2] = {c, 1};
  Type tc = type_make(DT_F32, 1, &c, false);
  int64_t g = elab_new_param(e, "gamma", tc, (Init){INIT_ONES, 0, 0}, false, loc);
  int64_t bt = g < 0 ? -1 : elab_new_param(e, "beta", tc, (Init){INIT_ZEROS, 0, 0}, false, loc);
  int64_t rm = bt < 0 ? -1 : elab_new_param(e, "running_mean", tc, (Init){INIT_ZEROS, 0, 0}, true, loc);
  int64_t rv = rm < 0 ? -1 : elab_new_param(e, "running_var", tc, (Init){INIT_ONES, 0, 0}, true, loc);
  if (rv < 0) return value_error(loc);
  uint32_t il = elab_irloc(e, loc);
  Value gamma = value_tensor(ir_leaf(e->m, OP_PARAM, (uint32_t)g, il), loc);
  Value beta = value_tensor(ir_leaf(e->m, OP_PARAM, (uint32_t)bt, il), loc);
  Value rmean = value_tensor(ir_leaf(e->m, OP_PARAM, (uint32_t)rm, il), loc);
  Value rvar = value_tensor(ir_leaf(e->m, OP_PARAM, (uint32_t)rv, il), loc);
  Value training = value_tensor(ir_leaf(e->m, OP_TRAINING, 0, il), loc);
  Value bsize = value_tensor(ir_leaf(e->m, OP_BATCH_SIZE, 0, il), loc);

  /* The batch's statistics: n values per channel, two passes. */
  Value xr = shaped(e, x, 2, cs, loc);
  Value n = bin(e, OP_MUL, bsize, num((double)per, loc), loc);
  Value mean = bin(e, OP_DIV, op1(e, OP_BATCH_SUM, reduce(e, OP_REDUCE_SUM, xr, 2, loc), loc), n, loc);
  Value d = bin(e, OP_SUB, xr, shaped(e, mean, 2, c1, loc), loc);
  Value sq = reduce(e, OP_REDUCE_SUM, bin(e, OP_MUL, d, d, loc), 2, loc);
  Value var = bin(e, OP_DIV, op1(e, OP_BATCH_SUM, sq, loc), n, loc);

  /* y = (x - mean) * gamma / sqrt(var + eps) + beta, with the batch's or the running statistics. */
  Value m_used = op3(e, OP_WHERE, training, mean, rmean, loc);
  Value v_used = op3(e, OP_WHERE, training, var, rvar, loc);
  Value scale = bin(e, OP_DIV, gamma, op1(e, OP_SQRT, bin(e, OP_ADD, v_used, num(eps, loc), loc), loc), loc);
  Value y = bin(e, OP_SUB, xr, shaped(e, m_used, 2, c1, loc), loc);
  y = bin(e, OP_ADD, bin(e, OP_MUL, y, shaped(e, scale, 2, c1, loc), loc), shaped(e, beta, 2, c1, loc), loc);
  y = shaped(e, y, t.rank, t.dims, loc);

  /* The running statistics move by momentum; the variance unbiased (n / (n - 1), 1 for n = 1). */
  Value keep = num(1 - momentum, loc), mom = num(momentum, loc);
  Value unbias = bin(e, OP_DIV, n, bin(e, OP_MAX, bin(e, OP_SUB, n, num(1, loc), loc), num(1, loc), loc), loc);
  Value new_mean = bin(e, OP_ADD, bin(e, OP_MUL, keep, rmean, loc), bin(e, OP_MUL, mom, mean, loc), loc);
  Value new_var = bin(e, OP_ADD, bin(e, OP_MUL, keep, rvar, loc),
                      bin(e, OP_MUL, mom, bin(e, OP_MUL, var, unbias, loc), loc), loc);
  if (y.kind != V_TENSOR || new_mean.kind != V_TENSOR || new_var.kind != V_TENSOR) return value_error(loc);
  ir_add_output(e->m, OUT_UPDATE, e->m->syms[rm].name, (uint32_t)rm, new_mean.id);
  ir_add_output(e->m, OUT_UPDATE, e->m->syms[rv].name, (uint32_t)rv, new_var.id);
  return y;
}
static const char *const batch_norm_args[] = {"momentum", "eps", NULL};

/* dropout(x, rate = 0.5): in a training step each element is zeroed with
 * probability rate and the others scaled by 1 / (1 - rate) (PyTorch's
 * inverted dropout); the identity in evaluation.  The mask is a function
 * of (seed, call number, step, element position) through Philox, so every
 * target draws the same one and the backward pass recomputes it instead
 * of storing it (docs/language.md). */
static Value b_dropout(Elab *e, const Expr *call, CallArgs *ca) {
  SrcLoc loc = call->loc;
  Value x = ca->pos[0], *rate_v = named_arg(ca, "rate");
  if (ca->npos > 1) {
    if (rate_v) {
      elab_error(e, rate_v->loc, "dropout's rate is given twice");
      return value_error(loc);
    }
    rate_v = &ca->pos[1];
  }
  double rate;
  if (!number_arg(e, rate_v, "dropout's rate", 0, 1, false, 0.5, &rate) || !tensor_arg(e, &x, DT_F32))
    return value_error(loc);
  if (rate >= 1) {
    elab_error(e, rate_v->loc, "dropout's rate must be below 1 (1 drops everything), found %g", rate);
    return value_error(loc);
  }
  x = elab_cast(e, x, DT_F32);
  if (rate == 0) return x;
  if (e->ndropout == 65536) {
    elab_error(e, loc, "more than 65536 dropout calls in one model");
    return value_error(loc);
  }
  uint32_t site = e->ndropout++;
  uint32_t il = elab_irloc(e, loc);
  /* Philox key: the run's 16-bit key in the low half, this call's number in the high half. */
  Value seed = elab_cast(e, value_tensor(ir_leaf(e->m, OP_SEED, 0, il), loc), DT_I32);
  Value key = bin(e, OP_ADD, seed, value_num((double)(int32_t)(site << 16), true, loc), loc);
  Value step = elab_cast(e, value_tensor(ir_leaf(e->m, OP_STEP, 0, il), loc), DT_I32);
  Value pos = value_tensor(ir_element(e->m, *elab_vtype(e, x), il), loc);
  Value u = op3(e, OP_RANDOM, key, step, pos, loc);
  Value mask = op3(e, OP_WHERE, bin(e, OP_GE, u, num(rate, loc), loc), elab_to_tensor(e, num(1 / (1 - rate), loc), DT_F32),
                   elab_to_tensor(e, num(0, loc), DT_F32), loc);
  Value training = value_tensor(ir_leaf(e->m, OP_TRAINING, 0, il), loc);
  mask = op3(e, OP_WHERE, training, mask, elab_to_tensor(e, num(1, loc), DT_F32), loc);
  return bin(e, OP_MUL, x, mask, loc);
}
static const char *const dropout_args[] = {"rate", NULL};

static const Builtin builtins[] = {
    {"f32", 1, 1, NULL, b_f32},           {"i32", 1, 1, NULL, b_i32},
    {"max", 1, 2, axis_only, b_max},      {"min", 1, 2, axis_only, b_min},
    {"sum", 1, 1, axis_only, b_sum},      {"mean", 1, 1, axis_only, b_mean},
    {"where", 3, 3, NULL, b_where},       {"argmax", 1, 1, axis_only, b_argmax},
    {"reshape", 2, 2, NULL, b_reshape},   {"transpose", 1, 2, transpose_args, b_transpose},
    {"onehot", 2, 2, NULL, b_onehot},     {"gather", 2, 2, NULL, b_gather},
    {"pick", 2, 2, NULL, b_pick},         {"causal_mask", 1, 1, NULL, b_causal_mask},
    {"conv", 2, 2, window_args, b_conv},  {"unfold", 2, 2, window_args, b_unfold},
    {"training", 0, 0, NULL, b_training}, {"batch_norm", 1, 1, batch_norm_args, b_batch_norm},
    {"dropout", 1, 2, dropout_args, b_dropout},
    {"rank", 1, 1, NULL, b_rank},
};
enum { NBUILTINS = sizeof builtins / sizeof builtins[0] };

/* The elementwise op .nn calls `name`, or OP_COUNT. */
static Op elementwise_op(const char *name) {
  for (int op = 0; op < OP_COUNT; op++)
    if (ir_ops[op].nn && !strcmp(ir_ops[op].nn, name)) return (Op)op;
  return OP_COUNT;
}

Value elab_builtin(Elab *e, const Expr *call, CallArgs *ca, bool *handled) {
  const char *name = call->u.call.callee;
  *handled = true;
  for (int i = 0; i < NBUILTINS; i++) {
    const Builtin *b = &builtins[i];
    if (strcmp(name, b->name)) continue;
    if (!expect_args(e, call, ca, b->min, b->max, b->named)) return value_error(call->loc);
    return b->build(e, call, ca);
  }
  Op op = elementwise_op(name);
  if (op != OP_COUNT) return elementwise(e, call, ca, op);
  *handled = false;
  return value_error(call->loc);
}

bool elab_is_builtin(const char *name) {
  for (int i = 0; i < NBUILTINS; i++)
    if (!strcmp(builtins[i].name, name)) return true;
  return elementwise_op(name) != OP_COUNT;
}

void elab_offer_builtins(Suggest *sg) {
  for (int i = 0; i < NBUILTINS; i++) suggest_offer(sg, builtins[i].name);
  for (int op = 0; op < OP_COUNT; op++)
    if (ir_ops[op].nn) suggest_offer(sg, ir_ops[op].nn);
}
