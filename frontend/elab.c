/* frontend/elab.c - elaboration entry: files, imports, definitions, model.
 *
 * The prelude (stdlib/nn.nn) is loaded first, then the root file and its
 * imports depth-first; a file is loaded once however often it is imported.
 * Definitions share one namespace; a user definition replaces a prelude one
 * of the same name, and two user definitions of one name are an error.
 * The model's statements then run in order: inputs and labels become
 * batched symbols, bindings are elaborated expressions, `loss` and each
 * `metric` become outputs.  The train block (elab_train.c) adds the
 * optimizer update of every parameter.
 */
#include "frontend/elab_internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- diagnostics with call context -------------------------------------- */

/* The last error reported, to report one cause reached twice (a bad
 * argument used by two params of a layer) once.  Reset by elaborate(), so
 * that one elaboration cannot hide an error of the next. */
static SrcLoc last_loc;
static char last_msg[1024];

/* An error inside an imported or stdlib body is reported at the innermost
 * call site in the user's file (that is where the user can fix it), with a
 * note pointing into the callee. */
void elab_error(Elab *e, SrcLoc loc, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  SrcLoc at = loc;
  if (loc.file != e->root_file)
    for (int i = e->depth - 1; i >= 0; i--)
      if (e->stack[i].call_loc.file == e->root_file) {
        at = e->stack[i].call_loc;
        break;
      }
  if (at.file == last_loc.file && at.line == last_loc.line && at.col == last_loc.col && !strcmp(msg, last_msg))
    return;
  last_loc = at;
  memcpy(last_msg, msg, sizeof msg);
  if (loc.file != e->root_file && e->depth > 0) {
    for (int i = e->depth - 1; i >= 0; i--) {
      if (e->stack[i].call_loc.file == e->root_file) {
        diag_error(e->stack[i].call_loc, "%s", msg);
        diag_note(loc, "in '%s', called here", e->stack[e->depth - 1].def->name);
        return;
      }
    }
  }
  diag_error(loc, "%s", msg);
  if (e->depth > 0 && loc.file == e->root_file)
    diag_note(e->stack[e->depth - 1].call_loc, "in this call to '%s'", e->stack[e->depth - 1].def->name);
}

uint32_t elab_irloc(Elab *e, SrcLoc loc) {
  if (loc.file == 0) return e->inline_parent;
  const SourceFile *f = diag_file(&nnc_diag, loc.file);
  return ir_loc(e->m, ir_file(e->m, f->path), loc.line, loc.col, e->inline_parent);
}

/* ---- scopes ------------------------------------------------------------------ */

/* Small scopes (a call's arguments) are scanned; a large one (a model
 * with thousands of bindings) is indexed, catching up with bindings
 * pushed since the last lookup, so that elaboration stays linear. */
Binding *scope_find(Scope *s, const char *name) {
  if (s->n <= 16) {
    for (uint32_t i = s->n; i > 0; i--)
      if (!strcmp(s->b[i - 1].name, name)) return &s->b[i - 1];
    return NULL;
  }
  for (; s->nidx < s->n; s->nidx++) strmap_set(&s->idx, s->b[s->nidx].name, 0, s->nidx);
  uint32_t i;
  return strmap_get(&s->idx, name, 0, &i) ? &s->b[i] : NULL;
}

void scope_free(Scope *s) {
  free(s->b);
  strmap_free(&s->idx);
}

bool scope_bind(Elab *e, Scope *s, const char *name, Value v, SrcLoc loc) {
  Binding *old = scope_find(s, name);
  if (old) {
    elab_error(e, loc, "'%s' is already bound; a name is bound once", name);
    diag_note(old->loc, "'%s' was bound here", name);
    return false;
  }
  Binding b = {name, v, loc, false};
  VEC_PUSH(s->b, s->n, s->cap, b);
  return true;
}

/* The closest name in scope, definition or built-in (frontend/suggest.c),
 * or NULL. */
const char *elab_suggest(const Elab *e, const Scope *s, const char *name) {
  Suggest sg;
  suggest_init(&sg, name);
  for (uint32_t i = 0; s && i < s->n; i++) suggest_offer(&sg, s->b[i].name);
  for (uint32_t i = 0; i < e->ndefs; i++) suggest_offer(&sg, e->defs[i].name);
  elab_offer_builtins(&sg);
  return suggest_best(&sg);
}

/* The closest definition of one kind (an optimizer, a model), or NULL. */
const char *elab_suggest_def(const Elab *e, ItemKind kind, const char *name) {
  Suggest sg;
  suggest_init(&sg, name);
  for (uint32_t i = 0; i < e->ndefs; i++)
    if (e->defs[i].kind == kind) suggest_offer(&sg, e->defs[i].name);
  return suggest_best(&sg);
}

const char *elab_did_you_mean(Elab *e, const char *hint) {
  return hint ? arena_printf(e->arena, "; did you mean '%s'?", hint) : "";
}

/* ---- definitions and imports --------------------------------------------------- */

const Def *elab_find_def(const Elab *e, const char *name) {
  uint32_t i;
  return strmap_get(&e->defidx, name, 0, &i) ? &e->defs[i] : NULL;
}

static void add_def(Elab *e, const Item *it, bool prelude) {
  if (it->kind == I_IMPORT || it->kind == I_TRAIN) return;
  if (elab_is_builtin(it->name)) {
    elab_error(e, it->name_loc, "'%s' is a built-in primitive and cannot be redefined", it->name);
    return;
  }
  uint32_t i;
  if (strmap_get(&e->defidx, it->name, 0, &i)) {
    Def *d = &e->defs[i];
    if (d->prelude && !prelude) { /* the user's definition replaces the stdlib's */
      d->kind = it->kind;
      d->item = it;
      d->prelude = false;
      return;
    }
    elab_error(e, it->name_loc, "redefinition of '%s'", it->name);
    diag_note(d->item->name_loc, "'%s' was first defined here", it->name);
    return;
  }
  Def d = {it->kind, it->name, it, prelude};
  VEC_PUSH(e->defs, e->ndefs, e->capdefs, d);
  strmap_add(&e->defidx, it->name, 0, e->ndefs - 1);
}

typedef struct Loaded {
  char **paths; /* canonical paths of loaded files */
  uint32_t n, cap;
  Program **programs;
  uint32_t np, capp;
} Loaded;

static bool already_loaded(Loaded *l, const char *canon) {
  for (uint32_t i = 0; i < l->n; i++)
    if (!strcmp(l->paths[i], canon)) return true;
  char *c = nnc_xstrdup(canon);
  VEC_PUSH(l->paths, l->n, l->cap, c);
  return false;
}

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return nnc_xstrdup(".");
  size_t n = (size_t)(slash - path);
  char *d = nnc_xmalloc(n + 2);
  memcpy(d, path, n ? n : 1);
  d[n ? n : 1] = 0;
  return d;
}

static void load_imports(Elab *e, const Program *p, bool prelude, Loaded *l, int depth);

/* Loads one imported file: relative to the importing file, then the stdlib. */
static void load_import(Elab *e, const Item *it, const char *from_path, bool prelude, Loaded *l,
                        int depth) {
  if (depth > 64) {
    elab_error(e, it->loc, "imports are nested too deeply (limit 64)");
    return;
  }
  if (!it->name[0]) { /* it would name the importing file's directory */
    elab_error(e, it->loc, "empty import path; expected a file name such as \"layers.nn\"");
    return;
  }
  char path[PATH_MAX * 2];
  const char *tried[2];
  int ntried = 0;
  char *dir = dir_of(from_path);
  if (it->name[0] == '/')
    snprintf(path, sizeof path, "%s", it->name);
  else
    snprintf(path, sizeof path, "%s/%s", dir, it->name);
  free(dir);
  char canon[PATH_MAX];
  char display[PATH_MAX * 2];
  snprintf(display, sizeof display, "%s", path);
  tried[ntried++] = "beside the importing file";
  if (!realpath(path, canon) && e->stdlib_dir) {
    snprintf(path, sizeof path, "%s/%s", e->stdlib_dir, it->name);
    snprintf(display, sizeof display, "stdlib/%s", it->name);
    tried[ntried++] = "in the stdlib";
  }
  if (!realpath(path, canon)) {
    elab_error(e, it->loc, "cannot find imported file '%s' (looked %s%s%s)", it->name, tried[0],
               ntried > 1 ? " and " : "", ntried > 1 ? tried[1] : "");
    return;
  }
  if (already_loaded(l, canon)) return;
  const char *err = NULL;
  uint32_t text_file = diag_load_file(&nnc_diag, canon, &err);
  if (!text_file) {
    elab_error(e, it->loc, "cannot read imported file '%s': %s", it->name, err);
    return;
  }
  /* Show the path as the user wrote it (relative paths stay relative). */
  SourceFile *sf = &nnc_diag.files[text_file];
  free(sf->path);
  sf->path = nnc_xstrdup(display);
  Program *p = parse_file(e->arena, text_file);
  VEC_PUSH(l->programs, l->np, l->capp, p);
  load_imports(e, p, prelude, l, depth + 1);
  for (uint32_t i = 0; i < p->nitems; i++) {
    if (p->items[i].kind == I_MODEL || p->items[i].kind == I_TRAIN) {
      if (p->items[i].kind == I_MODEL) add_def(e, &p->items[i], prelude);
      continue; /* train blocks of imported files are not ours to run */
    }
    add_def(e, &p->items[i], prelude);
  }
}

static void load_imports(Elab *e, const Program *p, bool prelude, Loaded *l, int depth) {
  const SourceFile *f = diag_file(&nnc_diag, p->file);
  char canon[PATH_MAX];
  const char *from = realpath(f->path, canon) ? canon : f->path;
  for (uint32_t i = 0; i < p->nitems; i++)
    if (p->items[i].kind == I_IMPORT) load_import(e, &p->items[i], from, prelude, l, depth);
}

/* Reads and parses stdlib_dir/nn.nn; canon receives its canonical path
 * (checked by the caller first: already loaded means nothing to read). */
static bool prelude_path(const char *stdlib_dir, char *path, size_t len, char *canon) {
  snprintf(path, len, "%s/nn.nn", stdlib_dir);
  if (!realpath(path, canon)) {
    diag_error_plain("cannot find the stdlib at '%s' (set NNC_STDLIB to its directory)", path);
    return false;
  }
  return true;
}

static Program *prelude_parse(const char *path, const char *canon, Arena *arena) {
  const char *err = NULL;
  uint32_t fid = diag_load_file(&nnc_diag, canon, &err);
  if (!fid) {
    diag_error_plain("cannot read the stdlib '%s': %s", path, err);
    return NULL;
  }
  free(nnc_diag.files[fid].path);
  nnc_diag.files[fid].path = nnc_xstrdup("stdlib/nn.nn");
  return parse_file(arena, fid);
}

bool elab_parse_prelude(const char *stdlib_dir, Arena *arena, ElabPrelude *out) {
  char path[PATH_MAX * 2];
  memset(out, 0, sizeof *out);
  int errors = diag_error_count();
  if (!prelude_path(stdlib_dir, path, sizeof path, out->canon)) return false;
  out->program = prelude_parse(path, out->canon, arena);
  return out->program && diag_error_count() == errors;
}

static void load_prelude(Elab *e, Loaded *l, const ElabPrelude *pre) {
  const Program *p;
  if (pre) { /* parsed already (elab_parse_prelude) */
    if (already_loaded(l, pre->canon)) return;
    p = pre->program;
  } else {
    if (!e->stdlib_dir) return;
    char path[PATH_MAX * 2], canon[PATH_MAX];
    if (!prelude_path(e->stdlib_dir, path, sizeof path, canon)) return;
    if (already_loaded(l, canon)) return;
    p = prelude_parse(path, canon, e->arena);
    if (!p) return;
  }
  load_imports(e, p, true, l, 1);
  for (uint32_t i = 0; i < p->nitems; i++) add_def(e, &p->items[i], true);
}

/* ---- the model ----------------------------------------------------------------- */

static void declare_input(Elab *e, Scope *s, const Stmt *st) {
  Type t;
  if (!elab_type_from_expr(e, s, st->type, true, &t)) {
    scope_bind(e, s, st->name, value_error(st->name_loc), st->name_loc);
    return;
  }
  Symbol sym;
  memset(&sym, 0, sizeof sym);
  sym.kind = st->kind == S_LABEL ? SYM_LABEL : SYM_INPUT;
  sym.name = st->name;
  sym.type = t;
  sym.loc = elab_irloc(e, st->name_loc);
  if (ir_find_symbol(e->m, SYM_INPUT, st->name) >= 0 || ir_find_symbol(e->m, SYM_LABEL, st->name) >= 0) {
    Binding *b = scope_find(s, st->name);
    elab_error(e, st->name_loc, "'%s' is already declared", st->name);
    if (b) diag_note(b->loc, "'%s' was declared here", st->name);
    return;
  }
  uint32_t id = ir_add_symbol(e->m, sym);
  ValueId v = ir_leaf(e->m, OP_INPUT, id, sym.loc);
  scope_bind(e, s, st->name, value_tensor(v, st->name_loc), st->name_loc);
}

/* A per-sample scalar for the loss and metrics: f32, rank 0, batched. */
static ValueId per_sample_scalar(Elab *e, Value v, const char *what, SrcLoc loc) {
  if (v.kind == V_ERROR) return NO_VALUE;
  if (v.kind != V_TENSOR && v.kind != V_NUM) {
    elab_error(e, loc, "%s must be a tensor", what);
    return NO_VALUE;
  }
  Value t = elab_to_tensor(e, v, DT_F32);
  if (t.kind == V_ERROR) return NO_VALUE;
  Node *n = &e->m->nodes[t.id];
  char buf[128];
  if (n->type.rank != 0) {
    elab_error(e, loc, "%s must be a scalar per sample, found %s", what, type_str(&n->type, buf, sizeof buf));
    return NO_VALUE;
  }
  ValueId id = t.id;
  uint32_t l = elab_irloc(e, loc);
  if (n->type.dtype != DT_F32) id = ir_retype(e->m, OP_CAST, id, (Type){.dtype = DT_F32, .batched = n->type.batched}, l);
  if (!e->m->nodes[id].type.batched) {
    Type bt = type_scalar(DT_F32);
    bt.batched = true;
    id = ir_retype(e->m, OP_BROADCAST, id, bt, l);
  }
  return id;
}

/* The label v is computed from, if any (NULL for none). */
static const char *label_of(const Module *m, ValueId v) {
  bool *seen = nnc_xcalloc(v + 1, 1);
  const char *label = NULL;
  seen[v] = true;
  for (ValueId id = v + 1; id-- > 0 && !label;) { /* arguments come before their users */
    if (!seen[id]) continue;
    const Node *n = &m->nodes[id];
    if (n->op == OP_INPUT && m->syms[n->attr.sym].kind == SYM_LABEL) label = m->syms[n->attr.sym].name;
    for (int k = 0; k < n->nargs; k++) seen[n->args[k]] = true;
  }
  free(seen);
  return label;
}

/* The prediction: a batched tensor computed from the input alone, as f32.
 * NO_VALUE (after an error when `report`) for anything else. */
static ValueId prediction(Elab *e, Value v, const char *name, SrcLoc loc, bool report) {
  if (v.kind != V_TENSOR) {
    if (report && v.kind != V_ERROR) elab_error(e, loc, "the output '%s' must be a tensor computed from the input", name);
    return NO_VALUE;
  }
  const Node *n = &e->m->nodes[v.id];
  char buf[128];
  if (!n->type.batched) {
    if (report)
      elab_error(e, loc, "the output '%s' does not depend on the input (it is %s for every sample)", name,
                 type_str(&n->type, buf, sizeof buf));
    return NO_VALUE;
  }
  const char *label = label_of(e->m, v.id);
  if (label) {
    if (report)
      elab_error(e, loc, "the output '%s' is computed from the label '%s'; a prediction needs the input alone", name,
                 label);
    return NO_VALUE;
  }
  if (n->type.dtype == DT_F32) return v.id;
  Type t = n->type;
  t.dtype = DT_F32;
  return ir_retype(e->m, OP_CAST, v.id, t, elab_irloc(e, loc));
}

/* `output NAME`: the named binding is the prediction. */
static void declare_output(Elab *e, Scope *s, const Stmt *st, SrcLoc *first) {
  if (first->line) {
    elab_error(e, st->loc, "the model already has an output");
    diag_note(*first, "the first output is here");
    return;
  }
  *first = st->loc;
  Binding *b = scope_find(s, st->name);
  if (!b) {
    elab_error(e, st->name_loc, "unknown name '%s'%s", st->name, elab_did_you_mean(e, elab_suggest(e, s, st->name)));
    return;
  }
  ValueId id = prediction(e, b->val, st->name, st->name_loc, true);
  if (id != NO_VALUE) ir_add_output(e->m, OUT_PREDICT, st->name, 0, id);
}

static bool elab_model(Elab *e, const Def *model) {
  const Item *it = model->item;
  Scope s = {0};
  StrMap metrics = {0}; /* the metric names seen */
  e->m->name = arena_strdup(&e->m->arena, it->name);
  e->allow_params = true;
  bool have_loss = false;
  SrcLoc output_at = {0};          /* the `output` statement, if any */
  Value loss_arg0 = value_error(it->loc); /* the loss call's first argument */
  const char *loss_arg0_name = "output";
  for (uint32_t i = 0; i < it->nbody && !e->too_big; i++) {
    const Stmt *st = &it->body[i];
    switch (st->kind) {
    case S_INPUT:
    case S_LABEL:
      declare_input(e, &s, st);
      break;
    case S_OUTPUT:
      declare_output(e, &s, st, &output_at);
      break;
    case S_BIND:
    case S_METRIC: {
      e->path = st->name;
      bool is_loss = st->kind == S_BIND && !strcmp(st->name, "loss") && st->value->kind == E_CALL;
      e->loss_call = is_loss ? st->value : NULL;
      e->loss_arg0 = value_error(st->loc);
      Value v = elab_expr(e, &s, st->value);
      if (is_loss && !have_loss) {
        loss_arg0 = e->loss_arg0;
        const Arg *a0 = st->value->u.call.nargs ? &st->value->u.call.args[0] : NULL;
        if (a0 && !a0->name && a0->value->kind == E_NAME) loss_arg0_name = a0->value->u.str;
      }
      e->loss_call = NULL;
      e->path = "";
      if (st->kind == S_METRIC) {
        ValueId id = per_sample_scalar(e, v, "a metric", st->value->loc);
        uint32_t seen;
        if (strmap_get(&metrics, st->name, 0, &seen)) {
          elab_error(e, st->name_loc, "metric '%s' is defined twice", st->name);
          id = NO_VALUE;
        }
        if (id != NO_VALUE) {
          strmap_add(&metrics, st->name, 0, 0);
          ir_add_output(e->m, OUT_METRIC, st->name, 0, id);
        }
        break;
      }
      if (!scope_bind(e, &s, st->name, v, st->name_loc)) break;
      if (!strcmp(st->name, "loss")) {
        have_loss = true;
        ValueId id = per_sample_scalar(e, v, "the loss", st->value->loc);
        if (id != NO_VALUE) ir_add_output(e->m, OUT_LOSS, "loss", 0, id);
      }
      break;
    }
    case S_PARAM: /* declared directly in the model: its path is its name */
      elab_param_stmt(e, &s, st);
      break;
    case S_STATE:
      elab_error(e, st->loc, "'state' is only allowed in an optimizer");
      break;
    case S_RETURN:
      elab_error(e, st->loc, "'return' is only allowed in a fn or layer");
      break;
    }
  }
  /* Without `output`, the loss call's first argument is the prediction
   * when it is one (`cross_entropy(logits, y)`: logits). */
  if (!output_at.line && have_loss) {
    ValueId id = prediction(e, loss_arg0, loss_arg0_name, it->loc, false);
    if (id != NO_VALUE) ir_add_output(e->m, OUT_PREDICT, loss_arg0_name, 0, id);
  }
  e->allow_params = false;
  scope_free(&s);
  strmap_free(&metrics);
  return have_loss;
}

/* ---- entry ------------------------------------------------------------------------ */

static const Item *find_train(Elab *e, Program *root, const char *model) {
  const Item *found = NULL;
  for (uint32_t i = 0; i < root->nitems; i++) {
    const Item *it = &root->items[i];
    if (it->kind != I_TRAIN) continue;
    if (model && strcmp(it->name, model)) continue;
    if (found) {
      elab_error(e, it->loc, "more than one train block; choose one with --model=NAME");
      diag_note(found->loc, "the first train block is here");
      return NULL;
    }
    found = it;
  }
  return found;
}

Module *elaborate(Program *root, Arena *ast_arena, const ElabOptions *opts) {
  return elaborate_with_prelude(root, ast_arena, opts, NULL);
}

Module *elaborate_with_prelude(Program *root, Arena *ast_arena, const ElabOptions *opts, const ElabPrelude *prelude) {
  Elab e;
  memset(&e, 0, sizeof e);
  memset(&last_loc, 0, sizeof last_loc);
  last_msg[0] = 0;
  e.m = ir_module_new();
  e.arena = ast_arena;
  e.root_file = root->file;
  e.path = "";
  e.stdlib_dir = opts->stdlib_dir;
  Loaded loaded = {0};

  load_prelude(&e, &loaded, prelude);
  char canon[PATH_MAX];
  const SourceFile *rf = diag_file(&nnc_diag, root->file);
  if (realpath(rf->path, canon)) already_loaded(&loaded, canon);
  load_imports(&e, root, false, &loaded, 1);
  for (uint32_t i = 0; i < root->nitems; i++) add_def(&e, &root->items[i], false);

  /* Which model: --model, else the train block's, else the only one in the root file. */
  const Item *train = find_train(&e, root, opts->model);
  const char *model_name = opts->model ? opts->model : train ? train->name : NULL;
  const Def *model = NULL;
  if (model_name) {
    model = elab_find_def(&e, model_name);
    if (!model || model->kind != I_MODEL) {
      const char *hint = elab_suggest_def(&e, I_MODEL, model_name);
      SrcLoc at = train ? train->name_loc : (SrcLoc){0, 0, 0};
      elab_error(&e, at, "no model named '%s'%s", model_name, elab_did_you_mean(&e, hint));
      model = NULL;
    }
  } else {
    for (uint32_t i = 0; i < root->nitems; i++) {
      if (root->items[i].kind != I_MODEL) continue;
      if (model) {
        elab_error(&e, root->items[i].loc, "more than one model; choose one with --model=NAME");
        model = NULL;
        break;
      }
      model = elab_find_def(&e, root->items[i].name);
    }
    if (!model && diag_error_count() == 0) diag_error((SrcLoc){root->file, 1, 1}, "no model to compile");
  }

  bool model_ok = false;
  if (model && diag_error_count() == 0) {
    bool have_loss = elab_model(&e, model);
    if (train && !have_loss && diag_error_count() == 0) {
      elab_error(&e, model->item->name_loc, "model '%s' has no loss; a trained model binds 'loss'", model->name);
      diag_note(train->loc, "it is trained here");
    }
    model_ok = !e.too_big && diag_error_count() == 0;
  }
  /* The train block's own settings are checked whatever became of the model. */
  if (train && !e.too_big) elab_train(&e, train, model_ok ? model->item : NULL);
  for (uint32_t i = 0; i < loaded.n; i++) free(loaded.paths[i]);
  free(loaded.paths);
  free(loaded.programs);
  free(e.defs);
  strmap_free(&e.defidx);
  strmap_free(&e.layer_calls);
  if (diag_error_count() > 0) {
    ir_module_free(e.m);
    return NULL;
  }
  return e.m;
}
