/* frontend/elab_expr.c - expressions: operators, fn/layer calls (the
 * built-in primitives are elab_builtin.c's).
 *
 * Numbers fold at compile time (op_eval: ir/ops.def's values), so `1/255`
 * or `2*units` stay numbers and can be used as dimensions; a number meeting
 * a tensor becomes a constant of the tensor's dtype (i32 only when it is
 * integral).  `/`, `^` and `@` compute in f32, as does any operator mixing
 * i32 and f32.  fn and layer calls are inlined: arguments are checked
 * against the declared types, dimension names bind at the call, and a
 * layer's `param`s are created under the current path (the model binding,
 * then nested bindings: `h.w`, `blk.a.w`).
 * Left-leaning chains of binary operators are walked with an explicit stack
 * so that very long sums do not recurse.
 */
#include "frontend/elab_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Value value_error(SrcLoc loc) {
  Value v;
  memset(&v, 0, sizeof v);
  v.kind = V_ERROR;
  v.loc = loc;
  v.id = NO_VALUE;
  return v;
}

Value value_tensor(ValueId id, SrcLoc loc) {
  Value v = value_error(loc);
  if (id == NO_VALUE) return v;
  v.kind = V_TENSOR;
  v.id = id;
  return v;
}

Value value_num(double x, bool is_int, SrcLoc loc) {
  Value v = value_error(loc);
  v.kind = V_NUM;
  v.num = x;
  v.is_int = is_int;
  return v;
}

const char *elab_kind_text(ValKind k) {
  switch (k) {
  case V_TENSOR: return "a tensor";
  case V_NUM: return "a number";
  case V_STR: return "a string";
  case V_LIST: return "a list";
  default: return "an invalid value";
  }
}

const Type *elab_vtype(Elab *e, Value v) { return &e->m->nodes[v.id].type; }

bool elab_integral(double x) { return isfinite(x) && x == floor(x) && fabs(x) < 9.0e15; }

/* Stops a runaway graph (exponential inlining) before memory runs out. */
static bool graph_too_big(Elab *e, SrcLoc loc) {
  if (e->m->nnodes <= ELAB_MAX_NODES && e->inlined <= ELAB_MAX_INLINED) return false;
  if (!e->too_big) {
    e->too_big = true;
    if (e->inlined > ELAB_MAX_INLINED)
      elab_error(e, loc, "the model expands to more than %d inlined calls", ELAB_MAX_INLINED);
    else
      elab_error(e, loc, "the model's graph grows past %d nodes", ELAB_MAX_NODES);
  }
  return true;
}

Value elab_to_tensor(Elab *e, Value v, DType want) {
  if (v.kind == V_TENSOR || v.kind == V_ERROR) return v;
  if (v.kind == V_NUM) {
    DType dt = want == DT_I32 && elab_integral(v.num) ? DT_I32 : DT_F32;
    return value_tensor(ir_const(e->m, dt, v.num, elab_irloc(e, v.loc)), v.loc);
  }
  elab_error(e, v.loc, "expected a number or tensor, found %s", elab_kind_text(v.kind));
  return value_error(v.loc);
}

/* Converts a tensor to dtype dt (no-op when it already is). */
Value elab_cast(Elab *e, Value v, DType dt) {
  if (v.kind != V_TENSOR || elab_vtype(e, v)->dtype == dt) return v;
  Type t = *elab_vtype(e, v);
  t.dtype = dt;
  return value_tensor(ir_retype(e->m, OP_CAST, v.id, t, elab_irloc(e, v.loc)), v.loc);
}

bool elab_check_size(Elab *e, const Type *t, SrcLoc loc) {
  double numel = 1;
  for (int i = 0; i < t->rank; i++) {
    if (t->dims[i] < 1) {
      elab_error(e, loc, "dimension %lld must be positive", (long long)t->dims[i]);
      return false;
    }
    if (t->dims[i] > NNC_MAX_DIM) {
      elab_error(e, loc, "dimension %lld is too large (limit %lld)", (long long)t->dims[i], NNC_MAX_DIM);
      return false;
    }
    numel *= (double)t->dims[i];
  }
  if (numel > (double)NNC_MAX_ELEMS) {
    char buf[128];
    elab_error(e, loc, "a tensor of shape %s has %.3g elements, more than the limit of 2^40",
               shape_str(t, buf, sizeof buf), numel);
    return false;
  }
  return true;
}

/* Builds one node; on a shape error reports `msg` (or the rule's text) at loc. */
Value elab_build(Elab *e, Op op, const ValueId *args, int nargs, const Node *attrs, SrcLoc loc) {
  if (graph_too_big(e, loc)) return value_error(loc);
  char err[512];
  ValueId id = ir_build(e->m, op, args, nargs, attrs, elab_irloc(e, loc), err, sizeof err);
  if (id == NO_VALUE) {
    elab_error(e, loc, "%s", err);
    return value_error(loc);
  }
  if (!elab_check_size(e, &e->m->nodes[id].type, loc)) return value_error(loc);
  return value_tensor(id, loc);
}

/* ---- operators ------------------------------------------------------------------ */

static const Op binop_ir[] = {
    [B_ADD] = OP_ADD, [B_SUB] = OP_SUB, [B_MUL] = OP_MUL, [B_DIV] = OP_DIV, [B_POW] = OP_POW,
    [B_MATMUL] = OP_MATMUL, [B_EQ] = OP_EQ, [B_NE] = OP_NE, [B_LT] = OP_LT, [B_LE] = OP_LE,
    [B_GT] = OP_GT, [B_GE] = OP_GE,
};

/* Two numbers: op's value (op_eval) in double; an integer result stays an
 * integer where both were and the op keeps integers exact. */
static Value fold(Elab *e, BinOp op, double a, double b, bool ints, SrcLoc loc) {
  if (op == B_MATMUL) {
    elab_error(e, loc, "'@' needs tensors, found two numbers");
    return value_error(loc);
  }
  if (op == B_DIV && b == 0) {
    elab_error(e, loc, "division by zero in a constant expression");
    return value_error(loc);
  }
  Op o = binop_ir[op];
  double r = op_eval(o, DT_F32, a, b, 0);
  bool keeps_ints = o == OP_ADD || o == OP_SUB || o == OP_MUL || (o == OP_POW && b >= 0);
  return value_num(r, ints && keeps_ints, loc);
}

/* Applies an elementwise or matmul op to two values, with dtype promotion. */
Value elab_apply_binary(Elab *e, Op op, const char *optext, Value a, Value b, SrcLoc loc) {
  if (a.kind == V_ERROR || b.kind == V_ERROR) return value_error(loc);
  if ((a.kind != V_TENSOR && a.kind != V_NUM) || (b.kind != V_TENSOR && b.kind != V_NUM)) {
    elab_error(e, loc, "'%s' needs numbers or tensors, found %s and %s", optext, elab_kind_text(a.kind),
               elab_kind_text(b.kind));
    return value_error(loc);
  }
  /* The dtype both sides meet at. */
  bool want_f32 = op == OP_DIV || op == OP_MATMUL || (ir_ops[op].flags & OPF_FLOAT);
  DType dt = DT_I32;
  if (want_f32) dt = DT_F32;
  if (a.kind == V_TENSOR && elab_vtype(e, a)->dtype == DT_F32) dt = DT_F32;
  if (b.kind == V_TENSOR && elab_vtype(e, b)->dtype == DT_F32) dt = DT_F32;
  if (a.kind == V_NUM && !elab_integral(a.num)) dt = DT_F32;
  if (b.kind == V_NUM && !elab_integral(b.num)) dt = DT_F32;
  if (a.kind == V_NUM && b.kind == V_TENSOR && elab_vtype(e, b)->dtype == DT_F32) dt = DT_F32;
  a = elab_cast(e, elab_to_tensor(e, a, dt), dt);
  b = elab_cast(e, elab_to_tensor(e, b, dt), dt);
  if (a.kind == V_ERROR || b.kind == V_ERROR) return value_error(loc);
  if (op != OP_MATMUL) {
    Type t;
    if (!shape_broadcast(elab_vtype(e, a), elab_vtype(e, b), &t)) {
      char sa[96], sb[96];
      elab_error(e, loc, "shapes do not broadcast: %s %s %s", shape_str(elab_vtype(e, a), sa, sizeof sa),
                 optext, shape_str(elab_vtype(e, b), sb, sizeof sb));
      return value_error(loc);
    }
  }
  ValueId args[2] = {a.id, b.id};
  return elab_build(e, op, args, 2, NULL, loc);
}

static Value binary(Elab *e, BinOp op, Value a, Value b, SrcLoc loc) {
  if (a.kind == V_ERROR || b.kind == V_ERROR) return value_error(loc);
  if (a.kind == V_NUM && b.kind == V_NUM) return fold(e, op, a.num, b.num, a.is_int && b.is_int, loc);
  return elab_apply_binary(e, binop_ir[op], binop_text(op), a, b, loc);
}

static Value negate(Elab *e, Value a, SrcLoc loc) {
  if (a.kind == V_NUM) return value_num(-a.num, a.is_int, loc);
  if (a.kind == V_ERROR) return a;
  if (a.kind != V_TENSOR) {
    elab_error(e, loc, "unary '-' needs a number or tensor, found %s", elab_kind_text(a.kind));
    return value_error(loc);
  }
  return elab_build(e, OP_NEG, &a.id, 1, NULL, loc);
}

/* Records that an i32 input is used as an index into an axis of extent n,
 * so the data loader can reject labels outside [0, n) and --gradcheck can
 * draw valid values.  The index may be an element of the input (x[2]) or
 * the input moved around: its values are the input's. */
void elab_note_index_bound(Elab *e, ValueId idx, int64_t n) {
  const Node *nd = &e->m->nodes[idx];
  while (nd->op == OP_STOP_GRAD || nd->op == OP_BROADCAST || nd->op == OP_INDEX || nd->op == OP_GATHER ||
         nd->op == OP_RESHAPE || nd->op == OP_TRANSPOSE)
    nd = &e->m->nodes[nd->args[0]];
  if (nd->op != OP_INPUT) return;
  Symbol *s = &e->m->syms[nd->attr.sym];
  if (s->bound == 0 || n < s->bound) s->bound = n;
}

/* v[i]: along v's first axis.  An integer or an i32 scalar selects one
 * element or row (`index`); an i32 tensor of any shape selects a row for
 * each of its elements, NumPy's fancy indexing (`gather`: an index outside
 * the axis gives 0). */
static Value index_value(Elab *e, Value base, Value idx, SrcLoc loc) {
  if (base.kind == V_ERROR || idx.kind == V_ERROR) return value_error(loc);
  if (base.kind != V_TENSOR) {
    elab_error(e, loc, "only tensors can be indexed, found %s", elab_kind_text(base.kind));
    return value_error(loc);
  }
  const Type *bt = elab_vtype(e, base);
  if (bt->rank == 0) {
    elab_error(e, loc, "cannot index a scalar");
    return value_error(loc);
  }
  int64_t extent = bt->dims[0]; /* bt points into the node array, which the next node may move */
  if (idx.kind == V_NUM) {
    if (!elab_integral(idx.num) || idx.num < 0 || idx.num >= (double)extent) {
      elab_error(e, idx.loc, "index %g is out of range for an axis of %lld", idx.num, (long long)extent);
      return value_error(loc);
    }
    idx = elab_to_tensor(e, idx, DT_I32);
  }
  if (idx.kind != V_TENSOR || elab_vtype(e, idx)->dtype != DT_I32) {
    char buf[96];
    Type it = idx.kind == V_TENSOR ? *elab_vtype(e, idx) : type_scalar(DT_F32);
    it.batched = false; /* the per-sample type, as written */
    elab_error(e, idx.loc, "an index must be i32, found %s",
               idx.kind == V_TENSOR ? type_str(&it, buf, sizeof buf) : elab_kind_text(idx.kind));
    return value_error(loc);
  }
  elab_note_index_bound(e, idx.id, extent);
  ValueId args[2] = {base.id, idx.id};
  return elab_build(e, elab_vtype(e, idx)->rank ? OP_GATHER : OP_INDEX, args, 2, NULL, loc);
}

/* ---- declarations: types and initializers ----------------------------------------- */

/* A dimension from a declaration: a number or a name bound to a positive integer. */
static bool eval_dim(Elab *e, Scope *s, const DimExpr *d, int64_t *out) {
  if (!d->name) {
    *out = d->value;
    return true;
  }
  Binding *b = scope_find(s, d->name);
  if (!b) {
    elab_error(e, d->loc, "unknown dimension '%s'%s", d->name, elab_did_you_mean(e, elab_suggest(e, s, d->name)));
    return false;
  }
  if (b->val.kind == V_ERROR) return false;
  if (b->val.kind != V_NUM || !elab_integral(b->val.num) || b->val.num < 1) {
    if (b->val.kind == V_NUM)
      elab_error(e, d->loc, "dimension '%s' must be a positive integer, found %g", d->name, b->val.num);
    else
      elab_error(e, d->loc, "dimension '%s' must be a positive integer, found %s", d->name,
                 elab_kind_text(b->val.kind));
    diag_note(b->loc, "'%s' is bound here", d->name);
    return false;
  }
  *out = (int64_t)b->val.num;
  return true;
}

bool elab_type_from_expr(Elab *e, Scope *s, const TypeExpr *te, bool batched, Type *out) {
  if (te->ellipsis) {
    elab_error(e, te->ellipsis_loc, "'...' (any leading axes) is only allowed in the type of a fn or layer parameter");
    return false;
  }
  if (te->rank > NNC_MAX_RANK) {
    elab_error(e, te->loc, "rank %u is too large (limit %d)", te->rank, NNC_MAX_RANK);
    return false;
  }
  Type t = type_scalar((DType)te->dtype);
  t.batched = batched;
  t.rank = (uint8_t)te->rank;
  for (uint32_t i = 0; i < te->rank; i++)
    if (!eval_dim(e, s, &te->dims[i], &t.dims[i])) return false;
  if (!elab_check_size(e, &t, te->loc)) return false;
  *out = t;
  return true;
}

static double num_arg(Elab *e, Scope *s, const Expr *x, bool *ok) {
  Value v = elab_expr(e, s, x);
  if (v.kind == V_NUM) return v.num;
  if (v.kind != V_ERROR) elab_error(e, x->loc, "expected a number, found %s", elab_kind_text(v.kind));
  *ok = false;
  return 0;
}

Init elab_initializer(Elab *e, Scope *s, const Expr *x, const char *what) {
  Init init = {INIT_NONE, 0, 0};
  if (x->kind == E_NUM || (x->kind == E_UNARY && x->u.unary.operand->kind == E_NUM)) {
    bool ok = true;
    init.a = num_arg(e, s, x, &ok);
    init.kind = ok ? INIT_FULL : INIT_NONE;
    return init;
  }
  static const struct { const char *name; InitKind kind; int nargs; } inits[] = {
      {"zeros", INIT_ZEROS, 0},   {"ones", INIT_ONES, 0},
      {"full", INIT_FULL, 1},     {"uniform", INIT_UNIFORM, 2},
      {"normal", INIT_NORMAL, 1}, {"glorot_uniform", INIT_GLOROT_UNIFORM, 0},
      {"he_normal", INIT_HE_NORMAL, 0},
  };
  if (x->kind != E_CALL) {
    elab_error(e, x->loc, "%s needs an initializer such as zeros(), glorot_uniform() or uniform(a, b)", what);
    return init;
  }
  for (size_t i = 0; i < sizeof inits / sizeof inits[0]; i++) {
    if (strcmp(x->u.call.callee, inits[i].name)) continue;
    if (x->u.call.nargs != (uint32_t)inits[i].nargs) {
      elab_error(e, x->loc, "'%s' takes %d argument%s, found %u", inits[i].name, inits[i].nargs,
                 inits[i].nargs == 1 ? "" : "s", x->u.call.nargs);
      return init;
    }
    bool ok = true;
    double v[2] = {0, 0};
    for (uint32_t k = 0; k < x->u.call.nargs; k++) {
      if (x->u.call.args[k].name) {
        elab_error(e, x->u.call.args[k].name_loc, "'%s' takes positional arguments only", inits[i].name);
        return init;
      }
      v[k] = num_arg(e, s, x->u.call.args[k].value, &ok);
    }
    if (!ok) return init;
    if (inits[i].kind == INIT_UNIFORM && !(v[0] < v[1])) {
      elab_error(e, x->loc, "uniform(a, b) needs a < b, found %g and %g", v[0], v[1]);
      return init;
    }
    if (inits[i].kind == INIT_NORMAL && !(v[0] >= 0)) {
      elab_error(e, x->loc, "normal(std) needs std >= 0, found %g", v[0]);
      return init;
    }
    init.kind = inits[i].kind;
    init.a = v[0];
    init.b = v[1];
    return init;
  }
  Suggest sg;
  suggest_init(&sg, x->u.call.callee);
  for (size_t i = 0; i < sizeof inits / sizeof inits[0]; i++) suggest_offer(&sg, inits[i].name);
  if (suggest_best(&sg))
    elab_error(e, x->u.call.callee_loc, "unknown initializer '%s'%s", x->u.call.callee,
               elab_did_you_mean(e, suggest_best(&sg)));
  else
    elab_error(e, x->u.call.callee_loc,
               "unknown initializer '%s'; expected zeros, ones, full, uniform, normal, glorot_uniform or he_normal",
               x->u.call.callee);
  return init;
}

/* `param w: f32[n, units] = glorot_uniform()` in a layer or model. */
static void param_stmt(Elab *e, Scope *s, const Stmt *st) {
  if (!e->allow_params) {
    elab_error(e, st->loc, "'param' is only allowed in a layer or model");
    return;
  }
  Type t;
  bool ok = elab_type_from_expr(e, s, st->type, false, &t);
  Init init = elab_initializer(e, s, st->value, "a param");
  if (!ok || init.kind == INIT_NONE) {
    scope_bind(e, s, st->name, value_error(st->name_loc), st->name_loc);
    return;
  }
  int64_t id = elab_new_param(e, st->name, t, init, false, st->name_loc);
  if (id < 0) {
    scope_bind(e, s, st->name, value_error(st->name_loc), st->name_loc);
    return;
  }
  ValueId v = ir_leaf(e->m, OP_PARAM, (uint32_t)id, e->m->syms[id].loc);
  scope_bind(e, s, st->name, value_tensor(v, st->name_loc), st->name_loc);
}

int64_t elab_new_param(Elab *e, const char *name, Type t, Init init, bool no_grad, SrcLoc loc) {
  const char *path = e->path[0] ? arena_printf(e->arena, "%s.%s", e->path, name) : name;
  if (ir_find_symbol(e->m, SYM_PARAM, path) >= 0) {
    elab_error(e, loc, "parameter '%s' is created twice", path);
    diag_note((SrcLoc){0, 0, 0}, "bind each layer call to its own name so its parameters get their own path");
    return -1;
  }
  Symbol sym;
  memset(&sym, 0, sizeof sym);
  sym.kind = SYM_PARAM;
  sym.name = path;
  sym.type = t;
  sym.init = init;
  sym.no_grad = no_grad;
  sym.loc = elab_irloc(e, loc);
  return ir_add_symbol(e->m, sym);
}

/* ---- bodies ---------------------------------------------------------------------------- */

/* Runs the statements of a fn, layer (want_return) or model-like body. */
Value elab_body(Elab *e, Scope *s, const Item *it, bool want_return) {
  Value result = value_error(it->loc);
  bool returned = false;
  const char *outer_path = e->path;
  for (uint32_t i = 0; i < it->nbody; i++) {
    const Stmt *st = &it->body[i];
    if (returned) {
      elab_error(e, st->loc, "statement after 'return' is never reached");
      break;
    }
    switch (st->kind) {
    case S_BIND: {
      /* Nested layer calls take the binding's name into their path. */
      e->path = outer_path[0] ? arena_printf(e->arena, "%s.%s", outer_path, st->name) : st->name;
      Value v = elab_expr(e, s, st->value);
      e->path = outer_path;
      scope_bind(e, s, st->name, v, st->name_loc);
      break;
    }
    case S_PARAM:
      param_stmt(e, s, st);
      break;
    case S_RETURN:
      result = elab_expr(e, s, st->value);
      returned = true;
      break;
    case S_STATE:
      elab_error(e, st->loc, "'state' is only allowed in an optimizer");
      break;
    case S_INPUT:
    case S_LABEL:
    case S_METRIC:
    case S_OUTPUT:
      elab_error(e, st->loc, "'%s' is only allowed in a model", stmt_kind_name(st->kind));
      break;
    }
  }
  if (want_return && !returned) {
    elab_error(e, it->name_loc, "'%s' has no return statement", it->name);
    return value_error(it->loc);
  }
  return result;
}

/* ---- calls ----------------------------------------------------------------------------- */

static bool eval_args(Elab *e, Scope *s, const Expr *call, CallArgs *ca) {
  memset(ca, 0, sizeof *ca);
  if (call->u.call.nargs > MAX_CALL_ARGS) {
    elab_error(e, call->loc, "too many arguments (%u; the limit is %d)", call->u.call.nargs, MAX_CALL_ARGS);
    return false;
  }
  bool ok = true;
  for (uint32_t i = 0; i < call->u.call.nargs; i++) {
    const Arg *a = &call->u.call.args[i];
    Value v = elab_expr(e, s, a->value);
    if (v.kind == V_ERROR) ok = false;
    if (a->name) {
      for (uint32_t k = 0; k < ca->nnamed; k++)
        if (!strcmp(ca->names[k], a->name)) {
          elab_error(e, a->name_loc, "argument '%s' is given twice", a->name);
          ok = false;
        }
      ca->names[ca->nnamed] = a->name;
      ca->name_locs[ca->nnamed] = a->name_loc;
      ca->named[ca->nnamed++] = v;
    } else {
      ca->pos[ca->npos++] = v;
    }
  }
  return ok;
}

/* The declared type as written, "f32[..., n, 64]", into want. */
static void type_text(const TypeExpr *te, char *want, size_t len) {
  size_t o = (size_t)snprintf(want, len, "%s", te->dtype == DT_F32 ? "f32" : "i32");
  if (!te->has_shape) return;
  o += (size_t)snprintf(want + o, len - o, "[%s", te->ellipsis ? (te->rank ? "..., " : "...") : "");
  for (uint32_t i = 0; i < te->rank && o < len; i++) {
    if (te->dims[i].name)
      o += (size_t)snprintf(want + o, len - o, i ? ",%s" : "%s", te->dims[i].name);
    else
      o += (size_t)snprintf(want + o, len - o, i ? ",%lld" : "%lld", (long long)te->dims[i].value);
  }
  if (o < len) snprintf(want + o, len - o, "]");
}

/* The leading axes an ellipsis matched, bound in the callee under the
 * name "..." (which no .nn name can be) as a list of numbers, so that a
 * second `...` in the signature (cross_entropy(logits: f32[..., k], y:
 * i32[...])) must match the same axes. */
static bool bind_ellipsis(Elab *e, Scope *callee, const Def *d, const Param *p, const Type *t, int lead,
                          const char *want, const char *got, SrcLoc loc) {
  Binding *b = scope_find(callee, "...");
  if (!b) {
    Value v = value_error(p->type->ellipsis_loc);
    v.kind = V_LIST;
    v.nitems = (uint32_t)lead;
    v.items = arena_alloc(e->arena, sizeof(Value) * (lead ? (size_t)lead : 1));
    for (int i = 0; i < lead; i++) v.items[i] = value_num((double)t->dims[i], true, p->type->ellipsis_loc);
    Binding nb = {"...", v, p->type->ellipsis_loc, false};
    VEC_PUSH(callee->b, callee->n, callee->cap, nb);
    return true;
  }
  bool same = b->val.kind == V_LIST && b->val.nitems == (uint32_t)lead;
  for (int i = 0; same && i < lead; i++) same = b->val.items[i].num == (double)t->dims[i];
  if (same) return true;
  char axes[128];
  size_t o = (size_t)snprintf(axes, sizeof axes, "[");
  for (uint32_t i = 0; b->val.kind == V_LIST && i < b->val.nitems && o < sizeof axes; i++)
    o += (size_t)snprintf(axes + o, sizeof axes - o, i ? ",%g" : "%g", b->val.items[i].num);
  if (o < sizeof axes) snprintf(axes + o, sizeof axes - o, "]");
  elab_error(e, loc, "argument '%s' of '%s' must be %s with ... = %s (the leading axes of an earlier argument), found %s",
             p->name, d->name, want, axes, got);
  diag_note(p->loc, "'%s' is declared here", p->name);
  return false;
}

/* Checks a value against a declared parameter type; binds dimension names
 * (and `...`, the leading axes). */
static bool check_arg_type(Elab *e, Scope *callee, const Def *d, const Param *p, Value v, SrcLoc loc) {
  const TypeExpr *te = p->type;
  if (!te || v.kind == V_ERROR) return v.kind != V_ERROR;
  char want[128], got[128];
  type_text(te, want, sizeof want);
  if (v.kind == V_NUM) {
    if (te->rank > 0) {
      elab_error(e, loc, "argument '%s' of '%s' must be %s, found a number", p->name, d->name, want);
      return false;
    }
    if (te->dtype == DT_I32 && !elab_integral(v.num)) {
      elab_error(e, loc, "argument '%s' of '%s' must be i32, found %g", p->name, d->name, v.num);
      return false;
    }
    if (te->ellipsis) { /* a number is a scalar: no leading axes */
      Type scalar = type_scalar((DType)te->dtype);
      return bind_ellipsis(e, callee, d, p, &scalar, 0, want, "a number", loc);
    }
    return true;
  }
  if (v.kind != V_TENSOR) {
    elab_error(e, loc, "argument '%s' of '%s' must be %s, found %s", p->name, d->name, want, elab_kind_text(v.kind));
    return false;
  }
  const Type *t = elab_vtype(e, v);
  Type per_sample = *t;
  per_sample.batched = false;
  type_str(&per_sample, got, sizeof got);
  int lead = t->rank - (int)te->rank; /* the axes an ellipsis stands for */
  if ((int)t->dtype != te->dtype || (te->ellipsis ? lead < 0 : lead != 0)) {
    elab_error(e, loc, "argument '%s' of '%s' must be %s, found %s", p->name, d->name, want, got);
    diag_note(p->loc, "'%s' is declared here", p->name);
    return false;
  }
  for (uint32_t i = 0; i < te->rank; i++) {
    const DimExpr *dim = &te->dims[i];
    int64_t have = t->dims[lead + (int)i];
    if (!dim->name) {
      if (dim->value != have) {
        elab_error(e, loc, "argument '%s' of '%s' must be %s, found %s", p->name, d->name, want, got);
        diag_note(p->loc, "'%s' is declared here", p->name);
        return false;
      }
      continue;
    }
    Binding *b = scope_find(callee, dim->name);
    if (!b) {
      Value dv = value_num((double)have, true, dim->loc);
      scope_bind(e, callee, dim->name, dv, dim->loc);
    } else if (b->val.kind != V_NUM || b->val.num != (double)have) {
      elab_error(e, loc, "argument '%s' of '%s' must be %s with %s = %g, found %s", p->name, d->name, want,
                 dim->name, b->val.kind == V_NUM ? b->val.num : 0.0, got);
      diag_note(p->loc, "'%s' is declared here", p->name);
      return false;
    }
  }
  return !te->ellipsis || bind_ellipsis(e, callee, d, p, t, lead, want, got, loc);
}

static Value call_def(Elab *e, Scope *caller, const Def *d, const Expr *call, CallArgs *ca) {
  const Item *it = d->item;
  SrcLoc loc = call->loc;
  for (int i = 0; i < e->depth; i++) {
    if (e->stack[i].def == d) {
      elab_error(e, call->u.call.callee_loc, "recursive call to '%s': calls are inlined, so recursion is not allowed",
                 d->name);
      diag_note(it->name_loc, "'%s' is defined here", d->name);
      return value_error(loc);
    }
  }
  if (e->depth >= ELAB_MAX_CALL_DEPTH) {
    elab_error(e, loc, "calls are nested too deeply (limit %d)", ELAB_MAX_CALL_DEPTH);
    return value_error(loc);
  }
  if (d->kind == I_LAYER && !e->allow_params) {
    const char *from = e->depth > 0 ? e->stack[e->depth - 1].def->name : "?";
    elab_error(e, call->u.call.callee_loc, "fn '%s' cannot call layer '%s': only layers and models own parameters",
               from, d->name);
    return value_error(loc);
  }
  if (++e->inlined > ELAB_MAX_INLINED && graph_too_big(e, loc)) return value_error(loc);
  (void)caller;

  /* Match arguments to parameters. */
  Value bound[MAX_CALL_ARGS];
  bool set[MAX_CALL_ARGS] = {false};
  SrcLoc arg_loc[MAX_CALL_ARGS];
  if (it->nparams > MAX_CALL_ARGS) {
    elab_error(e, it->name_loc, "'%s' has too many parameters (limit %d)", d->name, MAX_CALL_ARGS);
    return value_error(loc);
  }
  if (ca->npos > it->nparams) {
    elab_error(e, ca->pos[it->nparams].loc, "too many arguments to '%s' (it takes %u)", d->name, it->nparams);
    diag_note(it->name_loc, "'%s' is defined here", d->name);
    return value_error(loc);
  }
  for (uint32_t i = 0; i < ca->npos; i++) {
    bound[i] = ca->pos[i];
    set[i] = true;
    arg_loc[i] = ca->pos[i].loc;
  }
  bool ok = true;
  for (uint32_t k = 0; k < ca->nnamed; k++) {
    uint32_t i = 0;
    while (i < it->nparams && strcmp(it->params[i].name, ca->names[k])) i++;
    if (i == it->nparams) {
      Suggest sg;
      suggest_init(&sg, ca->names[k]);
      for (uint32_t j = 0; j < it->nparams; j++) suggest_offer(&sg, it->params[j].name);
      elab_error(e, ca->name_locs[k], "'%s' has no parameter named '%s'%s", d->name, ca->names[k],
                 elab_did_you_mean(e, suggest_best(&sg)));
      diag_note(it->name_loc, "'%s' is defined here", d->name);
      ok = false;
      continue;
    }
    if (set[i]) {
      elab_error(e, ca->name_locs[k], "argument '%s' is given twice", ca->names[k]);
      ok = false;
      continue;
    }
    bound[i] = ca->named[k];
    set[i] = true;
    arg_loc[i] = ca->named[k].loc;
  }
  if (!ok) return value_error(loc);

  /* A layer called again under the same path (`m = dense(gelu(dense(x,
   * 4 * d)), d)`: calls in one binding share its path) takes the path
   * PATH.2, PATH.3, ... for its parameters: m.w, then m.2.w. */
  const char *saved_path = e->path;
  if (d->kind == I_LAYER) {
    uint32_t tag = (uint32_t)(d - e->defs), calls = 0;
    strmap_get(&e->layer_calls, e->path, tag, &calls);
    strmap_set(&e->layer_calls, e->path, tag, calls + 1);
    if (calls) e->path = e->path[0] ? arena_printf(e->arena, "%s.%u", e->path, calls + 1) : arena_printf(e->arena, "%u", calls + 1);
  }
  Scope callee = {0};
  uint32_t saved_parent = e->inline_parent;
  uint32_t call_irloc = elab_irloc(e, loc);
  for (uint32_t i = 0; i < it->nparams && ok; i++) {
    const Param *p = &it->params[i];
    if (!set[i]) {
      if (!p->init) {
        elab_error(e, loc, "missing argument '%s' in call to '%s'", p->name, d->name);
        diag_note(p->loc, "'%s' is declared here", p->name);
        ok = false;
        break;
      }
      /* Defaults are evaluated in the callee, after the earlier parameters. */
      e->stack[e->depth++] = (Frame){d, loc};
      e->inline_parent = call_irloc;
      bound[i] = elab_expr(e, &callee, p->init);
      e->inline_parent = saved_parent;
      e->depth--;
      arg_loc[i] = loc;
      if (bound[i].kind == V_ERROR) ok = false;
    }
    if (ok && !check_arg_type(e, &callee, d, p, bound[i], arg_loc[i])) ok = false;
    if (ok) {
      Binding b = {p->name, bound[i], p->loc, false};
      VEC_PUSH(callee.b, callee.n, callee.cap, b);
    }
  }
  if (!ok) {
    scope_free(&callee);
    e->path = saved_path;
    return value_error(loc);
  }

  bool saved_allow = e->allow_params;
  e->allow_params = d->kind == I_LAYER;
  e->stack[e->depth++] = (Frame){d, loc};
  e->inline_parent = call_irloc;
  Value r = it->expr_body ? elab_expr(e, &callee, it->expr_body) : elab_body(e, &callee, it, true);
  e->depth--;
  e->inline_parent = saved_parent;
  e->allow_params = saved_allow;
  e->path = saved_path;
  scope_free(&callee);
  if (r.kind != V_ERROR) r.loc = loc;
  return r;
}

static Value call(Elab *e, Scope *s, const Expr *x) {
  const char *name = x->u.call.callee;
  SrcLoc nloc = x->u.call.callee_loc;
  if (scope_find(s, name)) {
    elab_error(e, nloc, "'%s' is a value, not a function", name);
    return value_error(x->loc);
  }
  CallArgs ca;
  if (!eval_args(e, s, x, &ca)) return value_error(x->loc);
  if (x == e->loss_call && ca.npos > 0) e->loss_arg0 = ca.pos[0];
  bool handled;
  Value r = elab_builtin(e, x, &ca, &handled);
  if (handled) return r;
  const Def *d = elab_find_def(e, name);
  if (d && (d->kind == I_FN || d->kind == I_LAYER)) return call_def(e, s, d, x, &ca);
  if (d) {
    elab_error(e, nloc, "'%s' is %s, not a function", name,
               d->kind == I_OPTIMIZER ? "an optimizer (use it as the train block's optimizer)" : "a model");
    return value_error(x->loc);
  }
  static const char *inits[] = {"zeros", "ones", "full", "uniform", "normal", "glorot_uniform", "he_normal", NULL};
  for (int i = 0; inits[i]; i++)
    if (!strcmp(name, inits[i])) {
      elab_error(e, nloc, "'%s' is an initializer: use it to initialise a param or state", name);
      return value_error(x->loc);
    }
  if (!strcmp(name, "idx") || !strcmp(name, "csv")) {
    elab_error(e, nloc, "'%s' is a data source: use it as the train block's data", name);
    return value_error(x->loc);
  }
  elab_error(e, nloc, "unknown function '%s'%s", name, elab_did_you_mean(e, elab_suggest(e, s, name)));
  return value_error(x->loc);
}

/* ---- expressions ------------------------------------------------------------------------ */

static Value name_value(Elab *e, Scope *s, const Expr *x) {
  Binding *b = scope_find(s, x->u.str);
  if (b) {
    Value v = b->val;
    v.loc = x->loc; /* errors about this use point here, not at the binding */
    return v;
  }
  /* `true` and `false` are the numbers 1 and 0 (as comparisons give), for
   * flags such as keepdims; a binding of that name hides them. */
  if (!strcmp(x->u.str, "true") || !strcmp(x->u.str, "false")) return value_num(x->u.str[0] == 't', true, x->loc);
  const Def *d = elab_find_def(e, x->u.str);
  if (d) {
    elab_error(e, x->loc, "'%s' is a %s; call it", x->u.str, item_kind_name(d->kind));
    return value_error(x->loc);
  }
  elab_error(e, x->loc, "unknown name '%s'%s", x->u.str, elab_did_you_mean(e, elab_suggest(e, s, x->u.str)));
  return value_error(x->loc);
}

Value elab_expr(Elab *e, Scope *s, const Expr *x) {
  if (e->too_big) return value_error(x->loc);
  switch (x->kind) {
  case E_NUM: return value_num(x->u.num.value, x->u.num.is_int, x->loc);
  case E_STR: {
    Value v = value_error(x->loc);
    v.kind = V_STR;
    v.str = x->u.str;
    return v;
  }
  case E_NAME: return name_value(e, s, x);
  case E_UNARY: return negate(e, elab_expr(e, s, x->u.unary.operand), x->loc);
  case E_BINARY: {
    /* Walk the left spine iteratively: `a + b + c + ...` may be very long. */
    uint32_t n = 0, cap = 16;
    const Expr **spine = nnc_xmalloc(cap * sizeof *spine);
    const Expr *p = x;
    while (p->kind == E_BINARY) {
      if (n == cap) spine = nnc_xrealloc(spine, (cap *= 2) * sizeof *spine);
      spine[n++] = p;
      p = p->u.binary.lhs;
    }
    Value acc = elab_expr(e, s, p);
    for (uint32_t i = n; i > 0 && !e->too_big; i--) {
      const Expr *b = spine[i - 1];
      Value rhs = elab_expr(e, s, b->u.binary.rhs);
      acc = binary(e, b->u.binary.op, acc, rhs, b->loc);
    }
    free(spine);
    return e->too_big ? value_error(x->loc) : acc;
  }
  case E_CALL: return call(e, s, x);
  case E_INDEX:
    return index_value(e, elab_expr(e, s, x->u.index.base), elab_expr(e, s, x->u.index.index), x->loc);
  case E_LIST: {
    Value v = value_error(x->loc);
    v.kind = V_LIST;
    v.nitems = x->u.list.nitems;
    v.items = arena_alloc(e->arena, sizeof(Value) * (v.nitems ? v.nitems : 1));
    for (uint32_t i = 0; i < v.nitems; i++) {
      v.items[i] = elab_expr(e, s, x->u.list.items[i]);
      if (v.items[i].kind == V_ERROR) return value_error(x->loc);
    }
    return v;
  }
  }
  NNC_UNREACHABLE("bad expression kind");
}

void elab_param_stmt(Elab *e, Scope *s, const Stmt *st) { param_stmt(e, s, st); }
