/* frontend/elab_train.c - the train block and the optimizer.
 *
 * The train block's settings become Module.train.  They do not depend on
 * the model, so they are checked even when the model has errors (every
 * independent error shows in one run); the model's inputs and labels are
 * then checked against what the data source feeds, and the optimizer is
 * applied once the model is free of errors.  Its optimizer, a .nn
 * `optimizer` definition, is applied to every parameter: its own parameters
 * become hyper-parameter symbols (f32 scalars the trainer may override at
 * run time, like --lr), `p`, `g` and `step` are the parameter, the
 * placeholder for its gradient (filled in by autodiff) and the step
 * counter, each `state` becomes a state symbol named `PARAM/NAME`, and the
 * final values of `p` and of every state become update outputs.
 */
#include "frontend/elab_internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const train_keys[] = {"data",  "optimizer",  "batch", "epochs",   "seed", "shuffle",
                                         "scale", "validation", "steps", "schedule", "clip", NULL};

static bool int_setting(Elab *e, Scope *s, const Stmt *st, int64_t min, int64_t max, int64_t *out) {
  Value v = elab_expr(e, s, st->value);
  if (v.kind == V_ERROR) return false;
  if (v.kind != V_NUM || v.num != floor(v.num) || v.num < (double)min || v.num > (double)max) {
    elab_error(e, st->value->loc, "'%s' must be an integer from %lld to %lld", st->name, (long long)min,
               (long long)max);
    return false;
  }
  *out = (int64_t)v.num;
  return true;
}

static const char *str_arg(Elab *e, Scope *s, const Expr *x, const char *what) {
  Value v = elab_expr(e, s, x);
  if (v.kind == V_STR) return v.str;
  if (v.kind != V_ERROR) elab_error(e, x->loc, "%s must be a string", what);
  return NULL;
}

/* Paths in the train block are relative to the .nn file that names them. */
static const char *resolve_path(Elab *e, const char *path, SrcLoc loc) {
  if (!path || path[0] == '/') return path;
  const char *file = diag_file(&nnc_diag, loc.file)->path;
  const char *slash = strrchr(file, '/');
  if (!slash) return path;
  return arena_printf(&e->m->arena, "%.*s/%s", (int)(slash - file), file, path);
}

/* text(path, context = T, test = path): T is a whole number of bytes. */
static void context_arg(Elab *e, Scope *s, const Arg *a, int64_t *out) {
  Value v = elab_expr(e, s, a->value);
  if (v.kind == V_ERROR) return;
  if (v.kind != V_NUM || v.num != floor(v.num) || v.num < 1 || v.num > (1 << 20)) {
    elab_error(e, a->value->loc, "context must be a whole number of bytes from 1 to %d", 1 << 20);
    return;
  }
  *out = (int64_t)v.num;
}

static void data_setting(Elab *e, Scope *s, const Stmt *st) {
  static const char *const sources[] = {"idx", "csv", "text", NULL};
  const Expr *x = st->value;
  TrainSpec *t = &e->m->train;
  int kind = 0;
  while (x->kind == E_CALL && sources[kind] && strcmp(x->u.call.callee, sources[kind])) kind++;
  if (x->kind != E_CALL || !sources[kind]) {
    Suggest sg;
    suggest_init(&sg, x->kind == E_CALL ? x->u.call.callee : "");
    suggest_offer_list(&sg, sources);
    if (suggest_best(&sg))
      elab_error(e, x->u.call.callee_loc, "unknown data source '%s'%s", x->u.call.callee,
                 elab_did_you_mean(e, suggest_best(&sg)));
    else
      elab_error(e, x->loc, "data must be idx(\"directory\"), csv(\"file\", test = \"file\", label = column) or "
                 "text(\"file\", context = bytes, test = \"file\")");
    return;
  }
  DataKind dk = kind == 0 ? DATA_IDX : kind == 1 ? DATA_CSV : DATA_TEXT;
  /* The named arguments each source takes. */
  static const char *const csv_args[] = {"test", "label", NULL};
  static const char *const text_args[] = {"context", "test", NULL};
  const char *const *named = dk == DATA_CSV ? csv_args : dk == DATA_TEXT ? text_args : NULL;
  uint32_t npos = 0;
  bool has_context = false;
  for (uint32_t i = 0; i < x->u.call.nargs; i++) {
    const Arg *a = &x->u.call.args[i];
    if (!a->name) {
      if (npos++ > 0) {
        elab_error(e, a->value->loc, "'%s' takes one positional argument, the path", x->u.call.callee);
        return;
      }
      const char *p = str_arg(e, s, a->value, "the data path");
      t->data_path = p ? arena_strdup(&e->m->arena, resolve_path(e, p, a->value->loc)) : NULL;
    } else if (dk != DATA_IDX && !strcmp(a->name, "test")) {
      const char *p = str_arg(e, s, a->value, "the test path");
      t->test_path = p ? arena_strdup(&e->m->arena, resolve_path(e, p, a->value->loc)) : NULL;
    } else if (dk == DATA_CSV && !strcmp(a->name, "label")) {
      Value v = elab_expr(e, s, a->value);
      if (v.kind == V_STR)
        t->label = arena_strdup(&e->m->arena, v.str);
      else if (v.kind == V_NUM && v.num == floor(v.num) && v.num >= 0 && v.num < 1e9)
        t->label = arena_printf(&e->m->arena, "%lld", (long long)v.num);
      else if (v.kind != V_ERROR)
        elab_error(e, a->value->loc, "label must be a column name or a 0-based column index");
    } else if (dk == DATA_TEXT && !strcmp(a->name, "context")) {
      context_arg(e, s, a, &t->context);
      has_context = true;
    } else {
      Suggest sg;
      suggest_init(&sg, a->name);
      if (named) suggest_offer_list(&sg, named);
      elab_error(e, a->name_loc, "'%s' has no parameter named '%s'%s", x->u.call.callee, a->name,
                 suggest_best(&sg) ? elab_did_you_mean(e, suggest_best(&sg))
                 : dk == DATA_IDX  ? ""
                 : dk == DATA_CSV  ? " (it takes test and label)"
                                   : " (it takes context and test)");
    }
  }
  if (npos == 0) {
    elab_error(e, x->loc, "'%s' needs a path", x->u.call.callee);
    return;
  }
  if (dk == DATA_TEXT && t->context == 0) {
    if (!has_context) elab_error(e, x->loc, "'text' needs the window's length in bytes: text(\"file\", context = 64)");
    return;
  }
  t->data = dk;
}

/* A number the trainer keeps as an f32: finite there too (1e39 is inf). */
static bool f32_range(double v) { return isfinite(v) && fabs(v) <= FLT_MAX; }

/* A setting whose value is a number: false after an error. */
static bool num_setting(Elab *e, Scope *s, const Stmt *st, double *out) {
  Value v = elab_expr(e, s, st->value);
  if (v.kind == V_ERROR) return false;
  if (v.kind != V_NUM) {
    elab_error(e, st->value->loc, "%s must be a number, found %s", st->name,
               v.kind == V_STR ? "a string" : v.kind == V_LIST ? "a list" : "a tensor");
    return false;
  }
  *out = v.num;
  return true;
}

static void scale_setting(Elab *e, Scope *s, const Stmt *st) {
  double v;
  if (!num_setting(e, s, st, &v)) return;
  if (!f32_range(v) || (float)v == 0) {
    elab_error(e, st->value->loc, "scale must be a non-zero number within the f32 range, found %g%s", v,
               v != 0 && (float)v == 0 ? " (0 in f32)" : "");
    return;
  }
  e->m->train.scale = v;
}

/* validation = F: the fraction of the training data held out, in (0, 1). */
static void validation_setting(Elab *e, Scope *s, const Stmt *st) {
  double v;
  if (!num_setting(e, s, st, &v)) return;
  if (!(v > 0 && v < 1)) {
    elab_error(e, st->value->loc, "validation must be a fraction between 0 and 1 (the share of the training data "
               "held out), found %g", v);
    return;
  }
  e->m->train.validation = v;
}

/* schedule = constant() | step(every = N, factor = F) | cosine(warmup = N, min = F). */
static void schedule_setting(Elab *e, Scope *s, const Stmt *st) {
  static const char *const kinds[] = {"constant", "step", "cosine", NULL};
  static const char *const step_args[] = {"every", "factor", NULL};
  static const char *const cosine_args[] = {"warmup", "min", NULL};
  const Expr *x = st->value;
  const char *name = x->kind == E_CALL ? x->u.call.callee : x->kind == E_NAME ? x->u.str : NULL;
  int k = 0;
  while (name && kinds[k] && strcmp(name, kinds[k])) k++;
  if (!name || !kinds[k]) {
    Suggest sg;
    suggest_init(&sg, name ? name : "");
    suggest_offer_list(&sg, kinds);
    elab_error(e, x->kind == E_CALL ? x->u.call.callee_loc : x->loc,
               "schedule must be constant(), step(every = N, factor = F) or cosine(warmup = N, min = F)%s",
               name ? elab_did_you_mean(e, suggest_best(&sg)) : "");
    return;
  }
  LrSchedule sc = {(ScheduleKind)k, 0, 0.1, 0, 0};
  const char *const *named = k == 1 ? step_args : k == 2 ? cosine_args : NULL;
  uint32_t nargs = x->kind == E_CALL ? x->u.call.nargs : 0;
  bool ok = true;
  for (uint32_t i = 0; i < nargs; i++) {
    const Arg *a = &x->u.call.args[i];
    int which = -1;
    for (int j = 0; a->name && named && named[j]; j++)
      if (!strcmp(a->name, named[j])) which = j;
    if (which < 0) {
      Suggest sg;
      suggest_init(&sg, a->name ? a->name : "");
      if (named) suggest_offer_list(&sg, named);
      elab_error(e, a->name ? a->name_loc : a->value->loc, "%s", !a->name ?
                 "schedule settings are named: step(every = N, factor = F), cosine(warmup = N, min = F)" :
                 arena_printf(e->arena, "'%s' has no parameter named '%s'%s", kinds[k], a->name,
                              suggest_best(&sg) ? elab_did_you_mean(e, suggest_best(&sg)) :
                              k == 0 ? " (it takes none)" : ""));
      ok = false;
      continue;
    }
    Value v = elab_expr(e, s, a->value);
    if (v.kind == V_ERROR) {
      ok = false;
      continue;
    }
    bool steps_arg = (k == 1 && which == 0) || (k == 2 && which == 0);
    if (steps_arg) {
      if (v.kind != V_NUM || v.num != floor(v.num) || v.num < (k == 1 ? 1 : 0) || v.num > 1e15) {
        elab_error(e, a->value->loc, "'%s' must be a whole number of steps%s", a->name, k == 1 ? " from 1" : "");
        ok = false;
      } else if (k == 1) {
        sc.every = (int64_t)v.num;
      } else {
        sc.warmup = (int64_t)v.num;
      }
    } else if (v.kind != V_NUM || !(v.num >= 0 && v.num <= 1) || (k == 1 && v.num == 0)) {
      elab_error(e, a->value->loc, "'%s' must be a fraction %s 0 and 1", a->name, k == 1 ? "above" : "from");
      ok = false;
    } else if (k == 1) {
      sc.factor = v.num;
    } else {
      sc.min = v.num;
    }
  }
  if (ok && k == 1 && sc.every == 0) {
    elab_error(e, x->loc, "step() needs 'every': the steps between two decays of the learning rate");
    ok = false;
  }
  if (ok) e->m->train.schedule = sc;
}

static bool check_optimizer(Elab *e, const Expr *x, const Def **def, double *values);
static bool apply_optimizer(Elab *e, const Expr *x, const Def *d, const double *values);

void elab_train(Elab *e, const Item *train, const Item *model) {
  TrainSpec *t = &e->m->train;
  int errors = diag_error_count();
  const Def *od = NULL;
  double values[64];
  bool opt_ok = false;
  Scope s = {0};
  bool seen[16] = {false};
  const Stmt *opt = NULL, *sched = NULL;
  t->batch = 32;
  t->epochs = 0;
  t->seed = 0;
  t->shuffle = true;
  t->scale = 1;
  for (uint32_t i = 0; i < train->nbody; i++) {
    const Stmt *st = &train->body[i];
    if (st->kind != S_BIND) {
      elab_error(e, st->loc, "a train block holds only settings such as 'epochs = 5'");
      continue;
    }
    int k = 0;
    while (train_keys[k] && strcmp(train_keys[k], st->name)) k++;
    if (!train_keys[k]) {
      Suggest sg;
      suggest_init(&sg, st->name);
      suggest_offer_list(&sg, train_keys);
      const char *best = suggest_best(&sg);
      if (best)
        elab_error(e, st->name_loc, "unknown train setting '%s'; did you mean '%s'?", st->name, best);
      else
        elab_error(e, st->name_loc,
                   "unknown train setting '%s'; expected data, optimizer, batch, epochs, steps, seed, shuffle, "
                   "scale, validation, schedule or clip",
                   st->name);
      continue;
    }
    if (seen[k]) {
      elab_error(e, st->name_loc, "'%s' is set twice", st->name);
      continue;
    }
    seen[k] = true;
    if (!strcmp(st->name, "data")) {
      data_setting(e, &s, st);
    } else if (!strcmp(st->name, "optimizer")) {
      opt = st;
      opt_ok = check_optimizer(e, opt->value, &od, values);
    } else if (!strcmp(st->name, "batch")) {
      int_setting(e, &s, st, 1, 1 << 24, &t->batch);
    } else if (!strcmp(st->name, "epochs")) {
      int_setting(e, &s, st, 1, 1 << 30, &t->epochs);
    } else if (!strcmp(st->name, "seed")) {
      int_setting(e, &s, st, 0, INT64_C(1) << 53, &t->seed);
    } else if (!strcmp(st->name, "shuffle")) {
      const Expr *x = st->value;
      if (x->kind == E_NAME && (!strcmp(x->u.str, "true") || !strcmp(x->u.str, "false")))
        t->shuffle = x->u.str[0] == 't';
      else if (x->kind == E_NUM && (x->u.num.value == 0 || x->u.num.value == 1))
        t->shuffle = x->u.num.value == 1;
      else
        elab_error(e, x->loc, "shuffle must be true or false");
    } else if (!strcmp(st->name, "scale")) {
      scale_setting(e, &s, st);
    } else if (!strcmp(st->name, "validation")) {
      validation_setting(e, &s, st);
    } else if (!strcmp(st->name, "steps")) {
      int_setting(e, &s, st, 1, INT64_C(1) << 40, &t->steps);
    } else if (!strcmp(st->name, "schedule")) {
      schedule_setting(e, &s, st);
      sched = st;
    } else if (!strcmp(st->name, "clip")) {
      double v;
      if (num_setting(e, &s, st, &v) && !(v > 0 && f32_range(v)))
        elab_error(e, st->value->loc, "clip must be a positive number (the largest global norm of the gradients), "
                   "found %g", v);
      else if (v > 0)
        e->clip_value = v, e->clip_loc = st->value->loc;
    }
  }
  if (t->epochs == 0 && t->steps == 0) t->epochs = 1; /* without either: one epoch */
  if (sched && opt_ok && t->schedule.kind != SCHEDULE_CONSTANT) { /* the schedule multiplies the optimizer's lr */
    bool has_lr = false;
    for (uint32_t i = 0; i < od->item->nparams; i++) has_lr |= !strcmp(od->item->params[i].name, "lr");
    if (!has_lr) {
      elab_error(e, sched->value->loc, "a schedule multiplies the optimizer's 'lr', but optimizer '%s' has none",
                 od->name);
      diag_note(od->item->name_loc, "'%s' is defined here", od->name);
    }
  }
  if (!seen[0]) elab_error(e, train->name_loc, "the train block has no 'data' setting");
  if (!opt) elab_error(e, train->name_loc, "the train block has no 'optimizer' setting");
  scope_free(&s);
  t->present = true;
  /* What depends on the elaborated model: only for one free of errors. */
  if (!model) return;
  int64_t input, label;
  if (diag_error_count() == errors) ir_check_feeds(e->m, model->name_loc, &input, &label);
  if (opt_ok && diag_error_count() == 0) apply_optimizer(e, opt->value, od, values);
}

/* ---- the optimizer ------------------------------------------------------------------ */

/* Makes an update the exact type of its parameter (numbers and scalars broadcast). */
static ValueId fit_update(Elab *e, Value v, const Type *want, const char *what, SrcLoc loc) {
  v = elab_to_tensor(e, v, DT_F32);
  if (v.kind != V_TENSOR) return NO_VALUE;
  ValueId id = v.id;
  const Type *t = &e->m->nodes[id].type;
  char a[96], b[96];
  if (t->batched) {
    elab_error(e, loc, "the new value of '%s' depends on the batch; updates must be per parameter", what);
    return NO_VALUE;
  }
  if (t->dtype != want->dtype) {
    Type ct = *t;
    ct.dtype = want->dtype;
    id = ir_retype(e->m, OP_CAST, id, ct, elab_irloc(e, loc));
  }
  t = &e->m->nodes[id].type;
  if (type_same_shape(t, want)) return id;
  Type bt;
  if (!shape_broadcast(t, want, &bt) || !type_same_shape(&bt, want)) {
    elab_error(e, loc, "the new value of '%s' has shape %s but the parameter has %s", what,
               shape_str(t, a, sizeof a), shape_str(want, b, sizeof b));
    return NO_VALUE;
  }
  return ir_retype(e->m, OP_BROADCAST, id, *want, elab_irloc(e, loc));
}

typedef struct OptEnv {
  const Def *def;
  uint32_t *hyper_syms;
  ValueId *hyper_nodes;
  ValueId step;
  ValueId clip;          /* the gradients' factor from `clip`, or NO_VALUE */
} OptEnv;

/* Applies the optimizer body to parameter symbol `psym`. */
static bool apply_to_param(Elab *e, const OptEnv *env, uint32_t psym) {
  const Item *it = env->def->item;
  Symbol param = e->m->syms[psym];
  Scope s = {0};
  uint32_t l = elab_irloc(e, it->name_loc);
  int errors = diag_error_count();

  Binding p = {"p", value_tensor(ir_leaf(e->m, OP_PARAM, psym, l), it->name_loc), it->name_loc, true};
  Value gv = value_tensor(ir_op1(e->m, OP_GRADIENT, ir_leaf(e->m, OP_GRAD, psym, l), l), it->name_loc);
  if (env->clip != NO_VALUE) gv = elab_apply_binary(e, OP_MUL, "*", gv, value_tensor(env->clip, it->name_loc), it->name_loc);
  Binding g = {"g", gv, it->name_loc, false};
  Binding st = {"step", value_tensor(env->step, it->name_loc), it->name_loc, false};
  VEC_PUSH(s.b, s.n, s.cap, p);
  VEC_PUSH(s.b, s.n, s.cap, g);
  VEC_PUSH(s.b, s.n, s.cap, st);
  for (uint32_t i = 0; i < it->nparams; i++) {
    Binding h = {it->params[i].name, value_tensor(env->hyper_nodes[i], it->params[i].loc), it->params[i].loc, false};
    VEC_PUSH(s.b, s.n, s.cap, h);
  }
  /* The states and p, with the symbol each one updates. */
  const char *names[64];
  uint32_t syms[64];
  bool assigned[64];
  uint32_t nvars = 0;
  names[nvars] = "p", syms[nvars] = psym, assigned[nvars++] = false;

  for (uint32_t i = 0; i < it->nbody; i++) {
    const Stmt *stmt = &it->body[i];
    if (stmt->kind == S_STATE) {
      if (scope_find(&s, stmt->name)) {
        elab_error(e, stmt->name_loc, "'%s' is already bound", stmt->name);
        continue;
      }
      if (nvars == 64) {
        elab_error(e, stmt->loc, "too many states (limit 63)");
        continue;
      }
      Init init = elab_initializer(e, &s, stmt->value, "a state");
      if (init.kind == INIT_NONE) continue;
      Symbol sym;
      memset(&sym, 0, sizeof sym);
      sym.kind = SYM_STATE;
      sym.name = arena_printf(e->arena, "%s/%s", param.name, stmt->name);
      sym.type = param.type;
      sym.init = init;
      sym.owner = psym;
      sym.loc = elab_irloc(e, stmt->name_loc);
      uint32_t id = ir_add_symbol(e->m, sym);
      Binding b = {stmt->name, value_tensor(ir_leaf(e->m, OP_STATE, id, sym.loc), stmt->name_loc), stmt->name_loc,
                   true};
      VEC_PUSH(s.b, s.n, s.cap, b);
      names[nvars] = stmt->name, syms[nvars] = id, assigned[nvars++] = false;
    } else if (stmt->kind == S_BIND) {
      Value v = elab_expr(e, &s, stmt->value);
      Binding *b = scope_find(&s, stmt->name);
      if (!b) {
        Binding nb = {stmt->name, v, stmt->name_loc, false};
        VEC_PUSH(s.b, s.n, s.cap, nb);
        continue;
      }
      if (!b->mutable_) {
        if (!strcmp(b->name, "g") || !strcmp(b->name, "step") || b->val.kind == V_TENSOR) {
          bool predefined = b->loc.line == it->name_loc.line && b->loc.col == it->name_loc.col;
          elab_error(e, stmt->name_loc, "cannot assign to '%s'; an optimizer assigns only 'p' and its states",
                     stmt->name);
          if (!predefined) diag_note(b->loc, "'%s' is bound here", stmt->name);
        } else {
          elab_error(e, stmt->name_loc, "'%s' is already bound", stmt->name);
        }
        continue;
      }
      for (uint32_t k = 0; k < nvars; k++) {
        if (strcmp(names[k], stmt->name)) continue;
        ValueId id = fit_update(e, v, &e->m->syms[syms[k]].type, stmt->name, stmt->value->loc);
        if (id != NO_VALUE) b->val = value_tensor(id, stmt->name_loc);
        assigned[k] = true;
      }
    } else {
      elab_error(e, stmt->loc, "an optimizer body holds 'state' declarations and assignments only");
    }
  }
  if (!assigned[0]) elab_error(e, it->name_loc, "optimizer '%s' never assigns 'p'", it->name);
  if (diag_error_count() == errors) {
    for (uint32_t k = 0; k < nvars; k++) {
      if (!assigned[k]) continue;
      Binding *b = scope_find(&s, names[k]);
      ir_add_output(e->m, OUT_UPDATE, e->m->syms[syms[k]].name, syms[k], b->val.id);
    }
  }
  scope_free(&s);
  return diag_error_count() == errors;
}

/* The optimizer a train block names and the values of its hyper-parameters
 * (call arguments, else the declared defaults), checked: each one a number
 * within the f32 range, lr positive.  Needs nothing from the model. */
static bool check_optimizer(Elab *e, const Expr *x, const Def **def, double *values) {
  const char *name = x->kind == E_CALL ? x->u.call.callee : x->kind == E_NAME ? x->u.str : NULL;
  SrcLoc nloc = x->kind == E_CALL ? x->u.call.callee_loc : x->loc;
  if (!name) {
    elab_error(e, x->loc, "optimizer must name an optimizer, such as adam(lr = 0.001)");
    return false;
  }
  const Def *d = elab_find_def(e, name);
  if (!d || d->kind != I_OPTIMIZER) {
    if (d)
      elab_error(e, nloc, "'%s' is a %s, not an optimizer", name, item_kind_name(d->kind));
    else
      elab_error(e, nloc, "unknown optimizer '%s'%s", name,
                 elab_did_you_mean(e, elab_suggest_def(e, I_OPTIMIZER, name)));
    return false;
  }
  const Item *it = d->item;
  *def = d;

  Scope s = {0};
  uint32_t nargs = x->kind == E_CALL ? x->u.call.nargs : 0;
  const Arg *args = x->kind == E_CALL ? x->u.call.args : NULL;
  if (it->nparams > 64) {
    elab_error(e, it->name_loc, "too many optimizer parameters");
    return false;
  }
  bool ok = true;
  for (uint32_t i = 0; i < it->nparams; i++) {
    const Param *p = &it->params[i];
    const Expr *vx = NULL;
    for (uint32_t k = 0; k < nargs; k++) {
      if (args[k].name ? !strcmp(args[k].name, p->name) : k == i) vx = args[k].value;
    }
    if (!vx) vx = p->init;
    if (!vx) {
      elab_error(e, x->loc, "missing argument '%s' in optimizer '%s'", p->name, name);
      diag_note(p->loc, "'%s' is declared here", p->name);
      ok = false;
      continue;
    }
    Value v = elab_expr(e, &s, vx);
    if (v.kind != V_NUM) {
      if (v.kind != V_ERROR) elab_error(e, vx->loc, "optimizer setting '%s' must be a number", p->name);
      ok = false;
      continue;
    }
    if (!f32_range(v.num)) {
      elab_error(e, vx->loc, "optimizer setting '%s' must be within the f32 range, found %g", p->name, v.num);
      ok = false;
    } else if (!strcmp(p->name, "lr") && !(v.num > 0)) {
      elab_error(e, vx->loc, "the learning rate 'lr' must be positive, found %g", v.num);
      ok = false;
    }
    values[i] = v.num;
  }
  for (uint32_t k = 0; k < nargs; k++) {
    if (!args[k].name) {
      if (k >= it->nparams) {
        elab_error(e, args[k].value->loc, "too many arguments to optimizer '%s'", name);
        ok = false;
      }
      continue;
    }
    bool found = false;
    for (uint32_t i = 0; i < it->nparams; i++) found |= !strcmp(args[k].name, it->params[i].name);
    if (!found) {
      Suggest sg;
      suggest_init(&sg, args[k].name);
      for (uint32_t i = 0; i < it->nparams; i++) suggest_offer(&sg, it->params[i].name);
      elab_error(e, args[k].name_loc, "optimizer '%s' has no parameter named '%s'%s", name, args[k].name,
                 elab_did_you_mean(e, suggest_best(&sg)));
      diag_note(it->name_loc, "'%s' is defined here", name);
      ok = false;
    }
  }
  scope_free(&s);
  return ok;
}

/* The optimizer's hyper-parameter symbols, and its body applied to every
 * parameter of the elaborated model. */
/* clip = C: every gradient times min(1, C / (norm + 1e-6)), norm the
 * global L2 norm of all of them together (PyTorch's clip_grad_norm_).  One
 * scalar that every update reads, so no parameter is updated before every
 * gradient is known. */
static ValueId clip_factor(Elab *e, double clip, uint32_t loc) {
  ValueId sumsq = NO_VALUE;
  for (uint32_t i = 0; i < e->m->nsyms; i++) {
    const Symbol *sym = &e->m->syms[i];
    if (sym->kind != SYM_PARAM || sym->no_grad) continue;
    ValueId g = ir_op1(e->m, OP_GRADIENT, ir_leaf(e->m, OP_GRAD, i, loc), loc);
    ValueId sq = ir_op2(e->m, OP_MUL, g, g, loc);
    if (sym->type.rank > 0) sq = ir_reduce(e->m, OP_REDUCE_SUM, sq, (1u << sym->type.rank) - 1, loc);
    sumsq = sumsq == NO_VALUE ? sq : ir_op2(e->m, OP_ADD, sumsq, sq, loc);
  }
  if (sumsq == NO_VALUE) return NO_VALUE;
  ValueId norm = ir_op2(e->m, OP_ADD, ir_op1(e->m, OP_SQRT, sumsq, loc), ir_const(e->m, DT_F32, 1e-6, loc), loc);
  ValueId coef = ir_op2(e->m, OP_DIV, ir_const(e->m, DT_F32, clip, loc), norm, loc);
  return ir_op2(e->m, OP_MIN, ir_const(e->m, DT_F32, 1, loc), coef, loc);
}

static bool apply_optimizer(Elab *e, const Expr *x, const Def *d, const double *values) {
  const Item *it = d->item;
  e->m->train.optimizer = arena_strdup(&e->m->arena, d->name);
  uint32_t saved = e->inline_parent;
  e->inline_parent = elab_irloc(e, x->loc);
  uint32_t hyper_syms[64];
  ValueId hyper_nodes[64];
  for (uint32_t i = 0; i < it->nparams; i++) {
    Symbol sym;
    memset(&sym, 0, sizeof sym);
    sym.kind = SYM_HYPER;
    sym.name = it->params[i].name;
    sym.type = type_scalar(DT_F32);
    sym.value = values[i];
    sym.loc = elab_irloc(e, it->params[i].loc);
    hyper_syms[i] = ir_add_symbol(e->m, sym);
    hyper_nodes[i] = ir_leaf(e->m, OP_HYPER, hyper_syms[i], sym.loc);
  }
  OptEnv env = {d, hyper_syms, hyper_nodes, ir_leaf(e->m, OP_STEP, 0, elab_irloc(e, it->name_loc)), NO_VALUE};
  if (e->clip_value > 0) env.clip = clip_factor(e, e->clip_value, elab_irloc(e, e->clip_loc));
  e->stack[e->depth++] = (Frame){d, x->loc};
  bool ok = true;
  uint32_t nsyms = e->m->nsyms;
  for (uint32_t i = 0; i < nsyms && ok; i++)
    if (e->m->syms[i].kind == SYM_PARAM && !e->m->syms[i].no_grad) ok = apply_to_param(e, &env, i);
  e->depth--;
  e->inline_parent = saved;
  return ok;
}
