/* ir/verify.c - the graph IR verifier: every invariant of a Module, checked.
 *
 * Run after the frontend, after every pass (in debug builds) and after the
 * reader.  It trusts nothing: every index is range-checked before it is
 * followed, every type is checked for sanity before a shape rule sees it, so
 * a broken module produces messages, never a crash.  Each problem is
 * reported once, as
 *
 *     nnc: error: verifier (after autodiff): %7 = matmul: matmul shapes do not match: [3] @ [4,3]
 *
 * (symbols, outputs, locations and the train line use `symbol @x:`,
 * `output loss %9:`, `loc #4:`, `train:` in place of `%N = OP:`), and the
 * verifier returns false if there was any.  docs/ir.md lists the invariants.
 */
#include "support/diag.h"
#include "ir/ir.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Verifier {
  const Module *m;
  const char *what;
  bool ok;
} Verifier;

static void report(Verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(Verifier *v, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  diag_error_plain("verifier (%s): %s", v->what, msg);
  v->ok = false;
}

static const char *name_or(const char *s) { return s ? s : "<null>"; }

/* A type the rest of the compiler can trust: known dtype, rank <= 6, every
 * extent in 1..NNC_MAX_DIM, at most NNC_MAX_ELEMS elements. */
static bool type_valid(const Type *t, char *err, size_t len) {
  if ((unsigned)t->dtype > DT_I32) return snprintf(err, len, "invalid dtype %d", (int)t->dtype), false;
  if (t->rank > NNC_MAX_RANK) return snprintf(err, len, "rank %d is larger than %d", t->rank, NNC_MAX_RANK), false;
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) {
    int64_t d = t->dims[i];
    if (d < 1 || d > NNC_MAX_DIM)
      return snprintf(err, len, "extent %lld of axis %d is out of range", (long long)d, i), false;
    if (n > NNC_MAX_ELEMS / d) return snprintf(err, len, "more than %lld elements", (long long)NNC_MAX_ELEMS), false;
    n *= d;
  }
  return true;
}

static bool is_f32_scalar(const Type *t) { return t->dtype == DT_F32 && t->rank == 0 && !t->batched; }

/* ---- symbols -------------------------------------------------------------- */

typedef struct NameKey {
  int group; /* input+label, param+state, hyper: what one reference can mean */
  const char *name;
  uint32_t index;
} NameKey;

static int cmp_key(const void *a, const void *b) {
  const NameKey *x = a, *y = b;
  if (x->group != y->group) return x->group - y->group;
  int c = strcmp(x->name, y->name);
  return c ? c : (x->index > y->index) - (x->index < y->index);
}

static void check_symbols(Verifier *v) {
  const Module *m = v->m;
  char err[256], tb[192];
  NameKey *keys = nnc_xmalloc(sizeof *keys * (m->nsyms + 1));
  uint32_t nkeys = 0;
  for (uint32_t i = 0; i < m->nsyms; i++) {
    const Symbol *s = &m->syms[i];
    const char *nm = name_or(s->name);
    if ((unsigned)s->kind > SYM_HYPER) {
      report(v, "symbol @%s: invalid kind %d", nm, (int)s->kind);
      continue;
    }
    const char *kn = sym_kind_name(s->kind);
    if (!s->name) report(v, "symbol #%u: %s without a name", i, kn);
    else keys[nkeys++] = (NameKey){s->kind <= SYM_LABEL ? 0 : s->kind <= SYM_STATE ? 1 : 2, s->name, i};
    if (s->loc >= m->nlocs) report(v, "%s @%s: loc %u out of range", kn, nm, s->loc);
    if (!type_valid(&s->type, err, sizeof err)) {
      report(v, "%s @%s: invalid type: %s", kn, nm, err);
      continue;
    }
    type_str(&s->type, tb, sizeof tb);
    bool batched_kind = s->kind == SYM_INPUT || s->kind == SYM_LABEL;
    if (s->kind == SYM_HYPER && !is_f32_scalar(&s->type))
      report(v, "hyper @%s: type %s, expected f32", nm, tb);
    else if (batched_kind != s->type.batched)
      report(v, "%s @%s: type %s %s the batch axis", kn, nm, tb, batched_kind ? "lacks" : "has");
    if ((unsigned)s->init.kind > INIT_HE_NORMAL)
      report(v, "%s @%s: invalid initializer %d", kn, nm, (int)s->init.kind);
    else if (s->init.kind != INIT_NONE && s->kind != SYM_PARAM && s->kind != SYM_STATE)
      report(v, "%s @%s: only params and states have an initializer", kn, nm);
    if (s->bound != 0 && (!batched_kind || s->type.dtype != DT_I32))
      report(v, "%s @%s: only i32 inputs and labels have a bound", kn, nm);
    else if (s->bound < 0 || s->bound > ((int64_t)1 << 31))
      report(v, "%s @%s: bound %lld out of range", kn, nm, (long long)s->bound);
    if (s->no_grad && s->kind != SYM_PARAM) report(v, "%s @%s: only params can be nograd", kn, nm);
    if (s->kind == SYM_STATE && (s->owner >= m->nsyms || m->syms[s->owner].kind != SYM_PARAM))
      report(v, "state @%s: owner #%u is not a param", nm, s->owner);
  }
  /* Names unique per group: sort and compare neighbours. */
  qsort(keys, nkeys, sizeof *keys, cmp_key);
  for (uint32_t i = 1; i < nkeys; i++)
    if (keys[i].group == keys[i - 1].group && !strcmp(keys[i].name, keys[i - 1].name)) {
      const Symbol *a = &m->syms[keys[i - 1].index], *b = &m->syms[keys[i].index];
      report(v, "%s @%s: name already used by %s #%u", sym_kind_name(b->kind), b->name, sym_kind_name(a->kind),
             keys[i - 1].index);
    }
  free(keys);
}

/* ---- nodes ---------------------------------------------------------------- */

/* The symbol kind an OPF_SYM leaf names (input also takes labels). */
static bool sym_kind_ok(Op op, SymKind k) {
  switch (op) {
  case OP_INPUT: return k == SYM_INPUT || k == SYM_LABEL;
  case OP_PARAM:
  case OP_GRAD: return k == SYM_PARAM;
  case OP_STATE: return k == SYM_STATE;
  case OP_HYPER: return k == SYM_HYPER;
  default: return false;
  }
}

static void check_node(Verifier *v, ValueId id) {
  const Module *m = v->m;
  const Node *n = &m->nodes[id];
  char err[512], ta[192], tb[192];
  if ((unsigned)n->op >= OP_COUNT) {
    report(v, "%%%u = <op %d>: unknown op", id, (int)n->op);
    return;
  }
  const OpInfo *info = &ir_ops[n->op];
#define NODE_FAIL(...)                                                         \
  do {                                                                         \
    char msg_[768];                                                            \
    snprintf(msg_, sizeof msg_, __VA_ARGS__);                                  \
    report(v, "%%%u = %s: %s", id, info->name, msg_);                          \
  } while (0)
  if (n->loc >= m->nlocs) NODE_FAIL("loc %u out of range", n->loc);
  if (n->nargs != info->arity) {
    NODE_FAIL("%d operands, expected %d", n->nargs, info->arity);
    return;
  }
  for (int i = 0; i < n->nargs; i++)
    if (n->args[i] >= id) {
      NODE_FAIL("operand %%%u is not defined before its use", n->args[i]);
      return;
    }
  if (!type_valid(&n->type, err, sizeof err)) {
    NODE_FAIL("invalid type: %s", err);
    return;
  }
  type_str(&n->type, ta, sizeof ta);
  if (info->flags & OPF_LEAF) {
    if (info->flags & OPF_SYM) {
      if (n->attr.sym >= m->nsyms) {
        NODE_FAIL("symbol #%u out of range", n->attr.sym);
        return;
      }
      const Symbol *s = &m->syms[n->attr.sym];
      if ((unsigned)s->kind > SYM_HYPER || !sym_kind_ok(n->op, s->kind)) {
        NODE_FAIL("@%s is %s, not what %s needs", name_or(s->name),
                  (unsigned)s->kind > SYM_HYPER ? "invalid" : sym_kind_name(s->kind), info->name);
        return;
      }
      if (n->op == OP_GRAD && s->no_grad) {
        NODE_FAIL("@%s is nograd: it has no gradient", name_or(s->name));
        return;
      }
      if (n->op == OP_HYPER) {
        if (!is_f32_scalar(&n->type)) NODE_FAIL("type %s, expected f32", ta);
      } else if (!type_equal(&n->type, &s->type)) {
        NODE_FAIL("type %s, but @%s is %s", ta, name_or(s->name), type_str(&s->type, tb, sizeof tb));
      }
    } else if (n->op == OP_CONST) {
      double c = n->attr.value;
      if (n->type.rank != 0 || n->type.batched) NODE_FAIL("type %s, expected a scalar", ta);
      else if (n->type.dtype == DT_I32 && !(c == trunc(c) && c >= -2147483648.0 && c <= 2147483647.0))
        NODE_FAIL("i32 constant is not an integer in the i32 range");
    } else if (n->op == OP_ELEMENT) {
      if (n->type.dtype != DT_I32) NODE_FAIL("type %s, expected i32", ta);
    } else if (!is_f32_scalar(&n->type)) {
      NODE_FAIL("type %s, expected f32", ta);
    }
    return;
  }
  Type at[NNC_MAX_ARGS], res;
  for (int i = 0; i < n->nargs; i++) {
    at[i] = m->nodes[n->args[i]].type;
    if (!type_valid(&at[i], err, sizeof err)) return; /* reported at the operand */
  }
  if (!info->shape(n, at, &res, err, sizeof err)) NODE_FAIL("%s", err);
  else if (!type_equal(&res, &n->type))
    NODE_FAIL("type %s, but the shape rule gives %s", ta, type_str(&res, tb, sizeof tb));
#undef NODE_FAIL
}

/* ---- outputs, locations, train ------------------------------------------------ */

static void check_outputs(Verifier *v) {
  const Module *m = v->m;
  char ta[192], tb[192];
  int losses = 0, predictions = 0;
  StrMap metrics = {0};                                    /* names seen */
  bool *updated = nnc_xcalloc(m->nsyms, sizeof *updated); /* by symbol */
  for (uint32_t i = 0; i < m->noutputs; i++) {
    const Output *o = &m->outputs[i];
    char head[300];
    switch (o->kind) {
    case OUT_LOSS: snprintf(head, sizeof head, "output loss %%%u", o->value); break;
    case OUT_METRIC: snprintf(head, sizeof head, "output metric @%s %%%u", name_or(o->name), o->value); break;
    case OUT_UPDATE:
      snprintf(head, sizeof head, "output update @%s %%%u", o->sym < m->nsyms ? name_or(m->syms[o->sym].name) : "?",
               o->value);
      break;
    case OUT_PREDICT: snprintf(head, sizeof head, "output predict @%s %%%u", name_or(o->name), o->value); break;
    default: report(v, "output #%u: invalid kind %d", i, (int)o->kind); continue;
    }
    if (o->value >= m->nnodes) {
      report(v, "%s: undefined value", head);
      continue;
    }
    const Type *t = &m->nodes[o->value].type;
    type_str(t, ta, sizeof ta);
    if (o->kind == OUT_LOSS && ++losses == 2) report(v, "%s: more than one loss", head);
    if (o->kind == OUT_METRIC) {
      if (!o->name || !*o->name) report(v, "%s: a metric needs a name", head);
      if (o->name && !strmap_add(&metrics, o->name, 0, i)) report(v, "%s: duplicate metric", head);
    }
    if (o->kind == OUT_PREDICT) {
      if (++predictions == 2) report(v, "%s: more than one prediction", head);
      if (!o->name || !*o->name) report(v, "%s: a prediction needs a name", head);
      if (t->dtype != DT_F32 || !t->batched) report(v, "%s: type %s, expected a batched f32 tensor", head, ta);
      continue;
    }
    if (o->kind != OUT_UPDATE) {
      if (t->dtype != DT_F32 || t->rank != 0 || !t->batched) report(v, "%s: type %s, expected f32[B]", head, ta);
      continue;
    }
    if (o->sym >= m->nsyms) {
      report(v, "%s: symbol #%u out of range", head, o->sym);
      continue;
    }
    const Symbol *s = &m->syms[o->sym];
    if (s->kind != SYM_PARAM && s->kind != SYM_STATE) report(v, "%s: not a param or state", head);
    else if (!type_equal(t, &s->type))
      report(v, "%s: type %s, but the %s is %s", head, ta, sym_kind_name(s->kind), type_str(&s->type, tb, sizeof tb));
    if (updated[o->sym]) report(v, "%s: duplicate update", head);
    updated[o->sym] = true;
  }
  strmap_free(&metrics);
  free(updated);
}

static void check_locs(Verifier *v) {
  const Module *m = v->m;
  for (uint32_t i = 0; i < m->nfiles; i++)
    if (!m->files[i]) report(v, "file #%u: no name", i);
  for (uint32_t i = 1; i < m->nlocs; i++) {
    const IrLoc *l = &m->locs[i];
    if (l->file >= m->nfiles) report(v, "loc #%u: file #%u out of range", i, l->file);
    if (l->parent >= i) report(v, "loc #%u: parent #%u is not an earlier loc", i, l->parent);
    if (l->line == 0) report(v, "loc #%u: line 0 (lines start at 1)", i);
  }
}

static void check_train(Verifier *v) {
  const TrainSpec *t = &v->m->train;
  if (!t->present) return;
  if ((unsigned)t->data > DATA_TEXT) report(v, "train: invalid data kind %d", (int)t->data);
  else if (t->data != DATA_NONE && !t->data_path) report(v, "train: data without a path");
  if (t->data != DATA_CSV && t->label) report(v, "train: label is a csv option");
  if (t->data != DATA_CSV && t->data != DATA_TEXT && t->test_path) report(v, "train: test is a csv and text option");
  if ((t->data == DATA_TEXT) != (t->context > 0)) report(v, "train: context is text's option, and text needs one");
  if (t->steps < 0) report(v, "train: steps %lld out of range", (long long)t->steps);
  if ((unsigned)t->schedule.kind > SCHEDULE_COSINE) report(v, "train: invalid schedule kind %d", (int)t->schedule.kind);
  if (t->schedule.kind == SCHEDULE_STEP && (t->schedule.every < 1 || !(t->schedule.factor > 0 && t->schedule.factor <= 1)))
    report(v, "train: step() needs every >= 1 and a factor in (0, 1]");
  if (t->schedule.kind == SCHEDULE_COSINE && (t->schedule.warmup < 0 || !(t->schedule.min >= 0 && t->schedule.min <= 1)))
    report(v, "train: cosine() needs warmup >= 0 and a min in [0, 1]");
  if (t->batch < 0 || t->batch > INT32_MAX) report(v, "train: batch %lld out of range", (long long)t->batch);
  if (t->epochs < 0 || t->epochs > INT32_MAX) report(v, "train: epochs %lld out of range", (long long)t->epochs);
}

bool ir_verify(const Module *m, const char *what) {
  Verifier v = {m, what ? what : "", true};
  if (!m->name) report(&v, "module without a name (use \"\")");
  check_locs(&v);
  check_symbols(&v);
  for (ValueId i = 0; i < m->nnodes; i++) check_node(&v, i);
  check_outputs(&v);
  check_train(&v);
  return v.ok;
}
