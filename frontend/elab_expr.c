/* frontend/elab_expr.c - expressions: operators, built-ins, fn/layer calls.
 *
 * Numbers fold at compile time, so `1/255` or `2*units` stay numbers and can
 * be used as dimensions; a number meeting a tensor becomes a constant of the
 * tensor's dtype (i32 only when it is integral).  `/`, `^` and `@` compute in
 * f32, as does any operator mixing i32 and f32.  fn and layer calls are
 * inlined: arguments are checked against the declared types, dimension
 * names bind at the call, and a layer's `param`s are created under the
 * current path (the model binding, then nested bindings: `h.w`, `blk.a.w`).
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

static const char *kind_text(ValKind k) {
  switch (k) {
  case V_TENSOR: return "a tensor";
  case V_NUM: return "a number";
  case V_STR: return "a string";
  case V_LIST: return "a list";
  default: return "an invalid value";
  }
}

static const Type *vtype(Elab *e, Value v) { return &e->m->nodes[v.id].type; }

static bool integral(double x) { return isfinite(x) && x == floor(x) && fabs(x) < 9.0e15; }

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
    DType dt = want == DT_I32 && integral(v.num) ? DT_I32 : DT_F32;
    return value_tensor(ir_const(e->m, dt, v.num, elab_irloc(e, v.loc)), v.loc);
  }
  elab_error(e, v.loc, "expected a number or tensor, found %s", kind_text(v.kind));
  return value_error(v.loc);
}

/* Converts a tensor to dtype dt (no-op when it already is). */
static Value cast_to(Elab *e, Value v, DType dt) {
  if (v.kind != V_TENSOR || vtype(e, v)->dtype == dt) return v;
  Type t = *vtype(e, v);
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
static Value build(Elab *e, Op op, const ValueId *args, int nargs, const Node *attrs, SrcLoc loc) {
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

static Value fold(Elab *e, BinOp op, double a, double b, bool ints, SrcLoc loc) {
  switch (op) {
  case B_ADD: return value_num(a + b, ints, loc);
  case B_SUB: return value_num(a - b, ints, loc);
  case B_MUL: return value_num(a * b, ints, loc);
  case B_DIV:
    if (b == 0) {
      elab_error(e, loc, "division by zero in a constant expression");
      return value_error(loc);
    }
    return value_num(a / b, false, loc);
  case B_POW: return value_num(pow(a, b), ints && b >= 0, loc);
  case B_EQ: return value_num(a == b, false, loc);
  case B_NE: return value_num(a != b, false, loc);
  case B_LT: return value_num(a < b, false, loc);
  case B_LE: return value_num(a <= b, false, loc);
  case B_GT: return value_num(a > b, false, loc);
  case B_GE: return value_num(a >= b, false, loc);
  case B_MATMUL: break;
  }
  elab_error(e, loc, "'@' needs tensors, found two numbers");
  return value_error(loc);
}

/* Applies an elementwise or matmul op to two values, with dtype promotion. */
static Value apply_binary(Elab *e, Op op, const char *optext, Value a, Value b, SrcLoc loc) {
  if (a.kind == V_ERROR || b.kind == V_ERROR) return value_error(loc);
  if ((a.kind != V_TENSOR && a.kind != V_NUM) || (b.kind != V_TENSOR && b.kind != V_NUM)) {
    elab_error(e, loc, "'%s' needs numbers or tensors, found %s and %s", optext, kind_text(a.kind),
               kind_text(b.kind));
    return value_error(loc);
  }
  /* The dtype both sides meet at. */
  bool want_f32 = op == OP_DIV || op == OP_POW || op == OP_MATMUL;
  DType dt = DT_I32;
  if (want_f32) dt = DT_F32;
  if (a.kind == V_TENSOR && vtype(e, a)->dtype == DT_F32) dt = DT_F32;
  if (b.kind == V_TENSOR && vtype(e, b)->dtype == DT_F32) dt = DT_F32;
  if (a.kind == V_NUM && !integral(a.num)) dt = DT_F32;
  if (b.kind == V_NUM && !integral(b.num)) dt = DT_F32;
  if (a.kind == V_NUM && b.kind == V_TENSOR && vtype(e, b)->dtype == DT_F32) dt = DT_F32;
  a = cast_to(e, elab_to_tensor(e, a, dt), dt);
  b = cast_to(e, elab_to_tensor(e, b, dt), dt);
  if (a.kind == V_ERROR || b.kind == V_ERROR) return value_error(loc);
  if (op != OP_MATMUL) {
    Type t;
    if (!shape_broadcast(vtype(e, a), vtype(e, b), &t)) {
      char sa[96], sb[96];
      elab_error(e, loc, "shapes do not broadcast: %s %s %s", shape_str(vtype(e, a), sa, sizeof sa),
                 optext, shape_str(vtype(e, b), sb, sizeof sb));
      return value_error(loc);
    }
  }
  ValueId args[2] = {a.id, b.id};
  return build(e, op, args, 2, NULL, loc);
}

static Value binary(Elab *e, BinOp op, Value a, Value b, SrcLoc loc) {
  if (a.kind == V_ERROR || b.kind == V_ERROR) return value_error(loc);
  if (a.kind == V_NUM && b.kind == V_NUM) return fold(e, op, a.num, b.num, a.is_int && b.is_int, loc);
  return apply_binary(e, binop_ir[op], binop_text(op), a, b, loc);
}

static Value negate(Elab *e, Value a, SrcLoc loc) {
  if (a.kind == V_NUM) return value_num(-a.num, a.is_int, loc);
  if (a.kind == V_ERROR) return a;
  if (a.kind != V_TENSOR) {
    elab_error(e, loc, "unary '-' needs a number or tensor, found %s", kind_text(a.kind));
    return value_error(loc);
  }
  return build(e, OP_NEG, &a.id, 1, NULL, loc);
}

/* Records that an i32 input is used as an index into an axis of extent n,
 * so the data loader can reject labels outside [0, n). */
static void note_index_bound(Elab *e, ValueId idx, int64_t n) {
  const Node *nd = &e->m->nodes[idx];
  while (nd->op == OP_STOP_GRAD || nd->op == OP_BROADCAST) nd = &e->m->nodes[nd->args[0]];
  if (nd->op != OP_INPUT) return;
  Symbol *s = &e->m->syms[nd->attr.sym];
  if (s->bound == 0 || n < s->bound) s->bound = n;
}

static Value index_value(Elab *e, Value base, Value idx, SrcLoc loc) {
  if (base.kind == V_ERROR || idx.kind == V_ERROR) return value_error(loc);
  if (base.kind != V_TENSOR) {
    elab_error(e, loc, "only tensors can be indexed, found %s", kind_text(base.kind));
    return value_error(loc);
  }
  const Type *bt = vtype(e, base);
  if (bt->rank == 0) {
    elab_error(e, loc, "cannot index a scalar");
    return value_error(loc);
  }
  int64_t extent = bt->dims[0]; /* bt points into the node array, which the next node may move */
  if (idx.kind == V_NUM) {
    if (!integral(idx.num) || idx.num < 0 || idx.num >= (double)extent) {
      elab_error(e, idx.loc, "index %g is out of range for an axis of %lld", idx.num, (long long)extent);
      return value_error(loc);
    }
    idx = elab_to_tensor(e, idx, DT_I32);
  }
  if (idx.kind != V_TENSOR || vtype(e, idx)->dtype != DT_I32 || vtype(e, idx)->rank != 0) {
    char buf[96];
    elab_error(e, idx.loc, "an index must be an i32 scalar, found %s",
               idx.kind == V_TENSOR ? type_str(vtype(e, idx), buf, sizeof buf) : kind_text(idx.kind));
    return value_error(loc);
  }
  note_index_bound(e, idx.id, extent);
  ValueId args[2] = {base.id, idx.id};
  return build(e, OP_INDEX, args, 2, NULL, loc);
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
  if (b->val.kind != V_NUM || !integral(b->val.num) || b->val.num < 1) {
    if (b->val.kind == V_NUM)
      elab_error(e, d->loc, "dimension '%s' must be a positive integer, found %g", d->name, b->val.num);
    else
      elab_error(e, d->loc, "dimension '%s' must be a positive integer, found %s", d->name,
                 kind_text(b->val.kind));
    diag_note(b->loc, "'%s' is bound here", d->name);
    return false;
  }
  *out = (int64_t)b->val.num;
  return true;
}

bool elab_type_from_expr(Elab *e, Scope *s, const TypeExpr *te, bool batched, Type *out) {
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
  if (v.kind != V_ERROR) elab_error(e, x->loc, "expected a number, found %s", kind_text(v.kind));
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
  const char *path = e->path[0] ? arena_printf(e->arena, "%s.%s", e->path, st->name) : st->name;
  int64_t old = ir_find_symbol(e->m, SYM_PARAM, path);
  if (old >= 0) {
    elab_error(e, st->name_loc, "parameter '%s' is created twice", path);
    diag_note((SrcLoc){0, 0, 0}, "bind each layer call to its own name so its parameters get their own path");
    scope_bind(e, s, st->name, value_error(st->name_loc), st->name_loc);
    return;
  }
  Symbol sym;
  memset(&sym, 0, sizeof sym);
  sym.kind = SYM_PARAM;
  sym.name = path;
  sym.type = t;
  sym.init = init;
  sym.loc = elab_irloc(e, st->name_loc);
  uint32_t id = ir_add_symbol(e->m, sym);
  ValueId v = ir_leaf(e->m, OP_PARAM, id, sym.loc);
  scope_bind(e, s, st->name, value_tensor(v, st->name_loc), st->name_loc);
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

enum { MAX_CALL_ARGS = 16 };

typedef struct CallArgs {
  Value pos[MAX_CALL_ARGS];
  uint32_t npos;
  Value named[MAX_CALL_ARGS];
  const char *names[MAX_CALL_ARGS];
  SrcLoc name_locs[MAX_CALL_ARGS];
  uint32_t nnamed;
} CallArgs;

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

/* Checks a value against a declared parameter type; binds dimension names. */
static bool check_arg_type(Elab *e, Scope *callee, const Def *d, const Param *p, Value v, SrcLoc loc) {
  const TypeExpr *te = p->type;
  if (!te || v.kind == V_ERROR) return v.kind != V_ERROR;
  char want[128], got[128];
  size_t o = (size_t)snprintf(want, sizeof want, "%s", te->dtype == DT_F32 ? "f32" : "i32");
  if (te->has_shape) {
    o += (size_t)snprintf(want + o, sizeof want - o, "[");
    for (uint32_t i = 0; i < te->rank && o < sizeof want; i++) {
      if (te->dims[i].name)
        o += (size_t)snprintf(want + o, sizeof want - o, i ? ",%s" : "%s", te->dims[i].name);
      else
        o += (size_t)snprintf(want + o, sizeof want - o, i ? ",%lld" : "%lld", (long long)te->dims[i].value);
    }
    if (o < sizeof want) snprintf(want + o, sizeof want - o, "]");
  }
  if (v.kind == V_NUM) {
    if (te->rank > 0) {
      elab_error(e, loc, "argument '%s' of '%s' must be %s, found a number", p->name, d->name, want);
      return false;
    }
    if (te->dtype == DT_I32 && !integral(v.num)) {
      elab_error(e, loc, "argument '%s' of '%s' must be i32, found %g", p->name, d->name, v.num);
      return false;
    }
    return true;
  }
  if (v.kind != V_TENSOR) {
    elab_error(e, loc, "argument '%s' of '%s' must be %s, found %s", p->name, d->name, want, kind_text(v.kind));
    return false;
  }
  const Type *t = vtype(e, v);
  Type per_sample = *t;
  per_sample.batched = false;
  type_str(&per_sample, got, sizeof got);
  if ((int)t->dtype != te->dtype || t->rank != te->rank) {
    elab_error(e, loc, "argument '%s' of '%s' must be %s, found %s", p->name, d->name, want, got);
    diag_note(p->loc, "'%s' is declared here", p->name);
    return false;
  }
  for (uint32_t i = 0; i < te->rank; i++) {
    const DimExpr *dim = &te->dims[i];
    if (!dim->name) {
      if (dim->value != t->dims[i]) {
        elab_error(e, loc, "argument '%s' of '%s' must be %s, found %s", p->name, d->name, want, got);
        diag_note(p->loc, "'%s' is declared here", p->name);
        return false;
      }
      continue;
    }
    Binding *b = scope_find(callee, dim->name);
    if (!b) {
      Value dv = value_num((double)t->dims[i], true, dim->loc);
      scope_bind(e, callee, dim->name, dv, dim->loc);
    } else if (b->val.kind != V_NUM || b->val.num != (double)t->dims[i]) {
      elab_error(e, loc, "argument '%s' of '%s' must be %s with %s = %g, found %s", p->name, d->name, want,
                 dim->name, b->val.kind == V_NUM ? b->val.num : 0.0, got);
      diag_note(p->loc, "'%s' is declared here", p->name);
      return false;
    }
  }
  return true;
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
    free(callee.b);
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
  free(callee.b);
  if (r.kind != V_ERROR) r.loc = loc;
  return r;
}

/* ---- built-in primitives --------------------------------------------------------------- */

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
    if (items[i].kind != V_NUM || !integral(items[i].num)) {
      elab_error(e, items[i].loc, "an axis must be an integer, found %s", kind_text(items[i].kind));
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
  return build(e, op, &x.id, 1, &attrs, loc);
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
  t.dtype = vtype(e, r)->dtype;
  for (int i = 0; i < t.rank; i++)
    if (mask >> i & 1) t.dims[i] = 1;
  return retype(e, OP_RESHAPE, r, t, loc);
}

static Value reduce(Elab *e, Op op, Value x, uint32_t mask, SrcLoc loc) {
  if (mask == 0) return x; /* a scalar reduces to itself */
  Node attrs;
  memset(&attrs, 0, sizeof attrs);
  attrs.attr.axes = mask;
  return build(e, op, &x.id, 1, &attrs, loc);
}

static double fold_unary(const char *name, double x) {
  if (!strcmp(name, "exp")) return exp(x);
  if (!strcmp(name, "log")) return log(x);
  if (!strcmp(name, "sqrt")) return sqrt(x);
  if (!strcmp(name, "tanh")) return tanh(x);
  if (!strcmp(name, "abs")) return fabs(x);
  if (!strcmp(name, "sign")) return (x > 0) - (x < 0);
  return x; /* stop_gradient */
}

static Value builtin(Elab *e, const Expr *call, CallArgs *ca, bool *handled) {
  const char *name = call->u.call.callee;
  SrcLoc loc = call->loc;
  static const char *const axis_only[] = {"axis", "keepdims", NULL};
  static const struct { const char *name; Op op; } unary[] = {
      {"exp", OP_EXP},   {"log", OP_LOG},   {"sqrt", OP_SQRT},           {"tanh", OP_TANH},
      {"abs", OP_ABS},   {"sign", OP_SIGN}, {"stop_gradient", OP_STOP_GRAD},
  };
  *handled = true;
  for (size_t i = 0; i < sizeof unary / sizeof unary[0]; i++) {
    if (strcmp(name, unary[i].name)) continue;
    if (!expect_args(e, call, ca, 1, 1, NULL)) return value_error(loc);
    Value x = ca->pos[0];
    if (x.kind == V_NUM) return value_num(fold_unary(name, x.num), false, loc);
    bool flt = ir_ops[unary[i].op].flags & OPF_FLOAT;
    if (!tensor_arg(e, &x, flt ? DT_F32 : DT_I32)) return value_error(loc);
    if (flt) x = cast_to(e, x, DT_F32);
    return build(e, unary[i].op, &x.id, 1, NULL, loc);
  }
  if (!strcmp(name, "f32") || !strcmp(name, "i32")) {
    if (!expect_args(e, call, ca, 1, 1, NULL)) return value_error(loc);
    Value x = ca->pos[0];
    bool to_f32 = name[0] == 'f';
    if (x.kind == V_NUM) return value_num(to_f32 ? x.num : trunc(x.num), !to_f32, loc);
    if (!tensor_arg(e, &x, DT_F32)) return value_error(loc);
    return cast_to(e, x, to_f32 ? DT_F32 : DT_I32);
  }
  if (!strcmp(name, "max") || !strcmp(name, "min")) {
    bool is_max = name[1] == 'a';
    if (ca->npos == 2) {
      if (!expect_args(e, call, ca, 2, 2, NULL)) return value_error(loc);
      Value a = ca->pos[0], b = ca->pos[1];
      if (a.kind == V_NUM && b.kind == V_NUM)
        return value_num(is_max ? fmax(a.num, b.num) : fmin(a.num, b.num), a.is_int && b.is_int, loc);
      return apply_binary(e, is_max ? OP_MAX : OP_MIN, name, a, b, loc);
    }
    if (!expect_args(e, call, ca, 1, 1, axis_only)) return value_error(loc);
    Value x = ca->pos[0];
    bool keep;
    if (!keepdims_arg(e, ca, &keep) || !tensor_arg(e, &x, DT_F32)) return value_error(loc);
    Type in = *vtype(e, x);
    uint32_t mask;
    if (!axes_arg(e, named_arg(ca, "axis"), in.rank, &mask)) return value_error(loc);
    Value r;
    if (is_max) {
      r = reduce(e, OP_REDUCE_MAX, x, mask, loc);
    } else { /* min(x) = -max(-x) */
      Value neg = build(e, OP_NEG, &x.id, 1, NULL, loc);
      r = neg.kind == V_ERROR ? neg : reduce(e, OP_REDUCE_MAX, neg, mask, loc);
      if (r.kind != V_ERROR) r = build(e, OP_NEG, &r.id, 1, NULL, loc);
    }
    return keep_axes(e, r, &in, mask, keep, loc);
  }
  if (!strcmp(name, "sum") || !strcmp(name, "mean")) {
    if (!expect_args(e, call, ca, 1, 1, axis_only)) return value_error(loc);
    Value x = ca->pos[0];
    bool keep;
    if (!keepdims_arg(e, ca, &keep)) return value_error(loc);
    if (x.kind == V_NUM) return x;
    if (!tensor_arg(e, &x, DT_F32)) return value_error(loc);
    bool mean = name[0] == 'm';
    if (mean) x = cast_to(e, x, DT_F32);
    Type in = *vtype(e, x);
    uint32_t mask;
    if (!axes_arg(e, named_arg(ca, "axis"), in.rank, &mask)) return value_error(loc);
    double count = 1;
    for (int i = 0; i < in.rank; i++)
      if (mask >> i & 1) count *= (double)in.dims[i];
    Value r = reduce(e, OP_REDUCE_SUM, x, mask, loc);
    if (mean && r.kind != V_ERROR && count != 1)
      r = apply_binary(e, OP_MUL, "*", r, value_num(1.0 / count, false, loc), loc);
    return keep_axes(e, r, &in, mask, keep, loc);
  }
  if (!strcmp(name, "where")) {
    if (!expect_args(e, call, ca, 3, 3, NULL)) return value_error(loc);
    Value c = ca->pos[0], a = ca->pos[1], b = ca->pos[2];
    if (c.kind == V_ERROR || a.kind == V_ERROR || b.kind == V_ERROR) return value_error(loc);
    if (!tensor_arg(e, &c, DT_F32)) return value_error(loc);
    c = cast_to(e, c, DT_F32);
    DType dt = DT_I32;
    if ((a.kind == V_TENSOR && vtype(e, a)->dtype == DT_F32) || (a.kind == V_NUM && !integral(a.num))) dt = DT_F32;
    if ((b.kind == V_TENSOR && vtype(e, b)->dtype == DT_F32) || (b.kind == V_NUM && !integral(b.num))) dt = DT_F32;
    if (!tensor_arg(e, &a, dt) || !tensor_arg(e, &b, dt)) return value_error(loc);
    a = cast_to(e, a, dt);
    b = cast_to(e, b, dt);
    ValueId args[3] = {c.id, a.id, b.id};
    return build(e, OP_WHERE, args, 3, NULL, loc);
  }
  if (!strcmp(name, "argmax")) {
    if (!expect_args(e, call, ca, 1, 1, axis_only)) return value_error(loc);
    Value x = ca->pos[0];
    bool keep;
    if (!keepdims_arg(e, ca, &keep) || !tensor_arg(e, &x, DT_F32)) return value_error(loc);
    Type in = *vtype(e, x);
    Value *axis = named_arg(ca, "axis");
    uint32_t mask = in.rank ? 1u << (in.rank - 1) : 0, given;
    if (axis && !axes_arg(e, axis, in.rank, &given)) return value_error(loc);
    if (axis && given != mask) {
      elab_error(e, axis->loc, "argmax supports only the last axis");
      return value_error(loc);
    }
    return keep_axes(e, build(e, OP_ARGMAX, &x.id, 1, NULL, loc), &in, mask, keep, loc);
  }
  if (!strcmp(name, "reshape")) {
    if (!expect_args(e, call, ca, 2, 2, NULL)) return value_error(loc);
    Value x = ca->pos[0], shape = ca->pos[1];
    if (!tensor_arg(e, &x, DT_F32)) return value_error(loc);
    if (shape.kind != V_LIST) {
      elab_error(e, shape.loc, "reshape needs a list of dimensions such as [28, 28], found %s", kind_text(shape.kind));
      return value_error(loc);
    }
    if (shape.nitems > NNC_MAX_RANK) {
      elab_error(e, shape.loc, "rank %u is too large (limit %d)", shape.nitems, NNC_MAX_RANK);
      return value_error(loc);
    }
    Type t = *vtype(e, x);
    t.rank = (uint8_t)shape.nitems;
    int infer = -1;
    int64_t known = 1;
    for (uint32_t i = 0; i < shape.nitems; i++) {
      Value d = shape.items[i];
      if (d.kind != V_NUM || !integral(d.num) || (d.num < 1 && d.num != -1) || d.num > (double)NNC_MAX_DIM) {
        elab_error(e, d.loc, "a dimension must be a positive integer or -1");
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
      int64_t total = type_numel(vtype(e, x));
      if (known == 0 || total % known) {
        char buf[96];
        elab_error(e, shape.loc, "cannot reshape %s (%lld elements) with a -1 dimension here",
                   shape_str(vtype(e, x), buf, sizeof buf), (long long)total);
        return value_error(loc);
      }
      t.dims[infer] = total / known;
    }
    return retype(e, OP_RESHAPE, x, t, loc);
  }
  if (!strcmp(name, "transpose")) {
    if (!expect_args(e, call, ca, 1, 2, NULL)) return value_error(loc);
    Value x = ca->pos[0];
    if (!tensor_arg(e, &x, DT_F32)) return value_error(loc);
    int rank = vtype(e, x)->rank;
    Node attrs;
    memset(&attrs, 0, sizeof attrs);
    if (ca->npos == 2) {
      Value p = ca->pos[1];
      if (p.kind != V_LIST || p.nitems != (uint32_t)rank) {
        elab_error(e, p.loc, "transpose needs a permutation of %d axes", rank);
        return value_error(loc);
      }
      for (int i = 0; i < rank; i++) {
        if (p.items[i].kind != V_NUM || !integral(p.items[i].num) || p.items[i].num < 0 || p.items[i].num >= rank) {
          elab_error(e, p.items[i].loc, "a permutation entry must be an axis in [0, %d)", rank);
          return value_error(loc);
        }
        attrs.attr.perm[i] = (uint8_t)p.items[i].num;
      }
    } else {
      for (int i = 0; i < rank; i++) attrs.attr.perm[i] = (uint8_t)(rank - 1 - i);
    }
    return build(e, OP_TRANSPOSE, &x.id, 1, &attrs, loc);
  }
  if (!strcmp(name, "onehot")) {
    if (!expect_args(e, call, ca, 2, 2, NULL)) return value_error(loc);
    Value i = ca->pos[0], n = ca->pos[1];
    if (n.kind != V_NUM || !integral(n.num) || n.num < 1 || n.num > (double)NNC_MAX_DIM) {
      elab_error(e, n.loc, "onehot needs a positive integer size");
      return value_error(loc);
    }
    if (!tensor_arg(e, &i, DT_I32)) return value_error(loc);
    if (vtype(e, i)->dtype != DT_I32) {
      elab_error(e, i.loc, "onehot needs an i32 index");
      return value_error(loc);
    }
    note_index_bound(e, i.id, (int64_t)n.num);
    Type t = type_scalar(DT_F32);
    t.rank = 1;
    t.dims[0] = (int64_t)n.num;
    return retype(e, OP_ONEHOT, i, t, loc);
  }
  *handled = false;
  return value_error(loc);
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
  bool handled;
  Value r = builtin(e, x, &ca, &handled);
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
