/* ir/module.c - creating modules, symbols, locations and nodes, and the
 * check of a model's inputs and labels against its data source.
 *
 * ir_build runs the op's shape rule, so every node built through it is
 * well-typed; ir_append trusts its caller (the reader checks types later
 * through the verifier).
 */
#include "ir/ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Module *ir_module_new(void) {
  Module *m = nnc_xcalloc(1, sizeof *m);
  VEC_PUSH(m->files, m->nfiles, m->capfiles, "");
  IrLoc unknown = {0, 0, 0, 0};
  VEC_PUSH(m->locs, m->nlocs, m->caplocs, unknown);
  m->name = "";
  return m;
}

void ir_module_free(Module *m) {
  if (!m) return;
  free(m->files);
  free(m->locs);
  free(m->syms);
  strmap_free(&m->symidx);
  free(m->nodes);
  free(m->outputs);
  arena_free(&m->arena);
  free(m);
}

uint32_t ir_file(Module *m, const char *path) {
  for (uint32_t i = 1; i < m->nfiles; i++)
    if (!strcmp(m->files[i], path)) return i;
  const char *copy = arena_strdup(&m->arena, path);
  VEC_PUSH(m->files, m->nfiles, m->capfiles, copy);
  return m->nfiles - 1;
}

uint32_t ir_loc(Module *m, uint32_t file, uint32_t line, uint32_t col, uint32_t parent) {
  if (file == 0 && line == 0 && parent == 0) return 0;
  /* Consecutive nodes usually share a location: reuse the last entries. */
  for (uint32_t i = m->nlocs, k = 0; i > 1 && k < 8; i--, k++) {
    IrLoc *l = &m->locs[i - 1];
    if (l->file == file && l->line == line && l->col == col && l->parent == parent) return i - 1;
  }
  IrLoc l = {file, line, col, parent};
  VEC_PUSH(m->locs, m->nlocs, m->caplocs, l);
  return m->nlocs - 1;
}

uint32_t ir_add_symbol(Module *m, Symbol s) {
  s.name = arena_strdup(&m->arena, s.name);
  VEC_PUSH(m->syms, m->nsyms, m->capsyms, s);
  strmap_add(&m->symidx, s.name, s.kind, m->nsyms - 1);
  return m->nsyms - 1;
}

int64_t ir_find_symbol(const Module *m, SymKind kind, const char *name) {
  uint32_t i;
  return strmap_get(&m->symidx, name, kind, &i) ? (int64_t)i : -1;
}

const char *sym_kind_name(SymKind k) {
  static const char *names[] = {"input", "label", "param", "state", "hyper"};
  return names[k];
}

const char *init_kind_name(InitKind k) {
  static const char *names[] = {"none",    "zeros",  "ones",           "full",
                                "uniform", "normal", "glorot_uniform", "he_normal"};
  return names[k];
}

ValueId ir_append(Module *m, const Node *n) {
  VEC_PUSH(m->nodes, m->nnodes, m->capnodes, *n);
  return m->nnodes - 1;
}

ValueId ir_build(Module *m, Op op, const ValueId *args, int nargs, const Node *attrs,
                 uint32_t loc, char *err, size_t errlen) {
  NNC_ASSERT(op < OP_COUNT && nargs == ir_ops[op].arity);
  Node n;
  if (attrs)
    n = *attrs;
  else
    memset(&n, 0, sizeof n);
  n.op = op;
  n.loc = loc;
  n.nargs = (uint8_t)nargs;
  Type at[NNC_MAX_ARGS];
  for (int i = 0; i < nargs; i++) {
    NNC_ASSERT(args[i] < m->nnodes);
    n.args[i] = args[i];
    at[i] = m->nodes[args[i]].type;
  }
  Type out;
  if (!ir_ops[op].shape(&n, at, &out, err, errlen)) return NO_VALUE;
  n.type = out;
  return ir_append(m, &n);
}

static ValueId build_or_die(Module *m, Op op, const ValueId *args, int nargs, const Node *attrs,
                            uint32_t loc) {
  char err[256];
  ValueId v = ir_build(m, op, args, nargs, attrs, loc, err, sizeof err);
  if (v == NO_VALUE) nnc_internal_error(__FILE__, __LINE__, "building %s: %s", ir_ops[op].name, err);
  return v;
}

ValueId ir_const(Module *m, DType dt, double value, uint32_t loc) {
  Node n;
  memset(&n, 0, sizeof n);
  n.type = type_scalar(dt);
  n.attr.value = value;
  return build_or_die(m, OP_CONST, NULL, 0, &n, loc);
}

ValueId ir_op1(Module *m, Op op, ValueId a, uint32_t loc) { return build_or_die(m, op, &a, 1, NULL, loc); }

ValueId ir_op2(Module *m, Op op, ValueId a, ValueId b, uint32_t loc) {
  ValueId args[2] = {a, b};
  return build_or_die(m, op, args, 2, NULL, loc);
}

ValueId ir_op3(Module *m, Op op, ValueId a, ValueId b, ValueId c, uint32_t loc) {
  ValueId args[3] = {a, b, c};
  return build_or_die(m, op, args, 3, NULL, loc);
}

ValueId ir_reduce(Module *m, Op op, ValueId a, uint32_t axes, uint32_t loc) {
  Node n;
  memset(&n, 0, sizeof n);
  n.attr.axes = axes;
  return build_or_die(m, op, &a, 1, &n, loc);
}

ValueId ir_transpose(Module *m, ValueId a, const uint8_t *perm, uint32_t loc) {
  Node n;
  memset(&n, 0, sizeof n);
  memcpy(n.attr.perm, perm, NNC_MAX_RANK);
  return build_or_die(m, OP_TRANSPOSE, &a, 1, &n, loc);
}

ValueId ir_window(Module *m, Op op, const ValueId *args, int nargs, int size, int stride, int pad, const Type *t,
                  uint32_t loc) {
  Node n;
  memset(&n, 0, sizeof n);
  if (t) n.type = *t;
  n.attr.win.size = (uint16_t)size, n.attr.win.stride = (uint16_t)stride, n.attr.win.pad = (uint16_t)pad;
  return build_or_die(m, op, args, nargs, &n, loc);
}

ValueId ir_build_typed(Module *m, Op op, const ValueId *args, int nargs, Type t, uint32_t loc) {
  Node n;
  memset(&n, 0, sizeof n);
  n.type = t;
  return build_or_die(m, op, args, nargs, &n, loc);
}

ValueId ir_retype(Module *m, Op op, ValueId a, Type t, uint32_t loc) {
  Node n;
  memset(&n, 0, sizeof n);
  n.type = t;
  return build_or_die(m, op, &a, 1, &n, loc);
}

ValueId ir_leaf(Module *m, Op op, uint32_t sym, uint32_t loc) {
  Node n;
  memset(&n, 0, sizeof n);
  if (op == OP_STEP || op == OP_BATCH_SIZE || op == OP_TRAINING || op == OP_SEED) {
    n.type = type_scalar(DT_F32);
  } else {
    NNC_ASSERT(sym < m->nsyms);
    n.attr.sym = sym;
    n.type = op == OP_HYPER ? type_scalar(DT_F32) : m->syms[sym].type;
  }
  return build_or_die(m, op, NULL, 0, &n, loc);
}

ValueId ir_element(Module *m, Type shape, uint32_t loc) {
  Node n;
  memset(&n, 0, sizeof n);
  n.type = shape;
  n.type.dtype = DT_I32;
  return build_or_die(m, OP_ELEMENT, NULL, 0, &n, loc);
}

void ir_add_output(Module *m, OutKind kind, const char *name, uint32_t sym, ValueId v) {
  Output o = {kind, name ? arena_strdup(&m->arena, name) : NULL, sym, v};
  VEC_PUSH(m->outputs, m->noutputs, m->capoutputs, o);
}

SrcLoc ir_diag_loc(const Module *m, uint32_t loc) {
  SrcLoc s = {0, 0, 0};
  if (!m || loc == 0 || loc >= m->nlocs) return s;
  const IrLoc *l = &m->locs[loc];
  if (l->file == 0 || l->file >= m->nfiles) return s;
  for (uint32_t i = 1; i < nnc_diag.nfiles; i++)
    if (!strcmp(nnc_diag.files[i].path, m->files[l->file])) {
      s.file = i, s.line = l->line, s.col = l->col;
      break;
    }
  return s;
}

/* ---- what the data loaders feed ------------------------------------------ */

static const char *feeds_text(const TrainSpec *t, char *buf, size_t len) {
  if (t->data == DATA_TEXT) {
    snprintf(buf, len, "text data feeds one i32 input of %lld bytes (the window, context = %lld, in any shape of "
             "that size) and at most one i32 label of the input's shape (the byte after each)",
             (long long)t->context, (long long)t->context);
    return buf;
  }
  return t->data == DATA_IDX ? "idx data feeds one f32 input (the images, in any shape of their size) and at most "
                               "one scalar label (i32 or f32)"
                             : "csv data feeds one f32 input (the feature columns, in any shape of their count) and "
                               "at most one scalar label (i32 or f32)";
}

/* Whether the data source can feed symbol s (an input or a label) of type t. */
static bool feedable(const TrainSpec *tr, const Symbol *s, const Type *t, const Symbol *input) {
  if (tr->data == DATA_TEXT) {
    if (t->dtype != DT_I32 || type_numel(t) != tr->context) return false;
    return s->kind == SYM_INPUT || !input || type_same_shape(t, &input->type);
  }
  return s->kind == SYM_INPUT ? t->dtype == DT_F32 : type_numel(t) == 1;
}

bool ir_check_feeds(const Module *m, SrcLoc at, int64_t *input, int64_t *label) {
  *input = *label = -1;
  if (!m->train.present || m->train.data == DATA_NONE) return true;
  char fbuf[256];
  const char *feeds = feeds_text(&m->train, fbuf, sizeof fbuf);
  bool ok = true;
  char buf[128];
  for (int pass = 0; pass < 2; pass++) /* inputs first: a text label must have the input's shape */
    for (uint32_t i = 0; i < m->nsyms; i++) {
      const Symbol *s = &m->syms[i];
      if (s->kind != (pass == 0 ? SYM_INPUT : SYM_LABEL)) continue;
      Type t = s->type;
      t.batched = false;
      type_str(&t, buf, sizeof buf);
      SrcLoc loc = ir_diag_loc(m, s->loc);
      bool is_input = s->kind == SYM_INPUT;
      int64_t *first = is_input ? input : label;
      if (*first >= 0) {
        diag_error(loc, "a second %s '%s' cannot be fed: %s", sym_kind_name(s->kind), s->name, feeds);
        diag_note(ir_diag_loc(m, m->syms[*first].loc), "the first one is '%s'", m->syms[*first].name);
        ok = false;
      } else if (!feedable(&m->train, s, &t, *input >= 0 ? &m->syms[*input] : NULL)) {
        diag_error(loc, "%s '%s' is %s and cannot be fed: %s", sym_kind_name(s->kind), s->name, buf, feeds);
        ok = false;
      }
      if (*first < 0) *first = i;
    }
  if (*input < 0) {
    diag_error(at, "model '%s' has no input: %s", m->name ? m->name : "?", feeds);
    ok = false;
  }
  return ok;
}
