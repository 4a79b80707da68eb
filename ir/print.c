/* ir/print.c - the graph IR's text form: module -> text (docs/ir.md).
 *
 * The printer is the definition of the canonical text: ir/read.c accepts
 * exactly what is printed here (plus comments and free horizontal space and
 * blank lines), and print -> read -> print gives identical bytes.  A module
 * prints as up to four sections separated by one blank line each:
 *
 *     module @mnist                               the module line
 *     param @h.w : f32[784,64] = zeros()          symbols, then the train line
 *     %2 = matmul %0, %1 : f32[B,64] loc(...)     nodes, numbered 0, 1, 2, ...
 *     output loss %9                              outputs
 *
 * Numbers print as the shortest decimal that reads back as the same double;
 * names print bare when they look like identifiers (h.w/m) and quoted
 * otherwise.  Nothing here assumes the module is valid: a broken module
 * still prints (for debugging), it just does not read back.
 */
#include "ir/ir.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- lexical pieces ------------------------------------------------------ */

/* Shortest decimal for a finite double that strtod reads back bit for bit,
 * with the exponent written compactly (1e-8, 1e300).  ir_print_number
 * prints integers below 10^15 as plain digits instead (100, not 1e2). */
static void format_finite(double v, char *buf, size_t len) {
  char tmp[64];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, v);
    double back = strtod(tmp, NULL);
    if (memcmp(&back, &v, sizeof v) == 0) break;
  }
  /* "1e+300" -> "1e300", "1e-08" -> "1e-8" */
  size_t o = 0;
  for (const char *p = tmp; *p && o + 1 < len; p++) {
    buf[o++] = *p;
    if (*p == 'e') {
      p++;
      if (*p == '-') buf[o++] = *p++;
      else if (*p == '+') p++;
      while (*p == '0' && p[1]) p++;
      p--;
    }
  }
  buf[o] = 0;
}

void ir_print_number(double v, FILE *out) {
  if (isnan(v)) {
    fputs("nan", out);
  } else if (isinf(v)) {
    fputs(v < 0 ? "-inf" : "inf", out);
  } else if (v == trunc(v) && fabs(v) < 1e15) {
    fprintf(out, "%.0f", v); /* integers as plain digits: 100, not 1e2 */
  } else {
    char buf[64];
    format_finite(v, buf, sizeof buf);
    fputs(buf, out);
  }
}

/* [A-Za-z_][A-Za-z0-9_./]*: printed bare after '@'. */
static bool bare_name(const char *s, bool allow_path) {
  if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return false;
  for (s++; *s; s++) {
    char c = *s;
    bool ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (allow_path && (c == '.' || c == '/'));
    if (!ok) return false;
  }
  return true;
}

/* "..." with \" \\ \n \t \r and \xHH for other control bytes; bytes >= 0x80
 * are copied as they are (UTF-8 file names stay readable). */
void ir_print_string(const char *s, FILE *out) {
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"': fputs("\\\"", out); break;
    case '\\': fputs("\\\\", out); break;
    case '\n': fputs("\\n", out); break;
    case '\t': fputs("\\t", out); break;
    case '\r': fputs("\\r", out); break;
    default:
      if (*p < 0x20 || *p == 0x7f) fprintf(out, "\\x%02x", *p);
      else fputc(*p, out);
    }
  }
  fputc('"', out);
}

/* @name or @"quoted name". */
static void print_sym_name(const char *s, FILE *out) {
  fputc('@', out);
  if (!s) s = "";
  if (bare_name(s, true)) fputs(s, out);
  else ir_print_string(s, out);
}

static void print_sym_ref(const Module *m, uint32_t sym, FILE *out) {
  if (sym < m->nsyms) {
    print_sym_name(m->syms[sym].name, out);
  } else {
    char buf[48];
    snprintf(buf, sizeof buf, "<bad symbol %u>", sym);
    print_sym_name(buf, out);
  }
}

static void print_type(const Type *t, FILE *out) {
  char buf[192];
  fputs(type_str(t, buf, sizeof buf), out);
}

/* ` loc("inner":l:c at "outer":l:c ...)`; nothing for loc 0.  Follows
 * parents only while they decrease, so a broken chain cannot loop. */
void ir_print_loc(const Module *m, uint32_t loc, FILE *out) {
  if (loc == 0) return;
  fputs(" loc(", out);
  for (uint32_t l = loc, first = 1;; first = 0) {
    if (l >= m->nlocs) {
      fprintf(out, "%s<bad loc %u>", first ? "" : " at ", l);
      break;
    }
    const IrLoc *il = &m->locs[l];
    if (!first) fputs(" at ", out);
    ir_print_string(il->file < m->nfiles && m->files[il->file] ? m->files[il->file] : "<bad file>", out);
    fprintf(out, ":%u:%u", il->line, il->col);
    if (il->parent == 0 || il->parent >= l) break;
    l = il->parent;
  }
  fputc(')', out);
}

/* ---- lines ---------------------------------------------------------------- */

static void print_init(const Init *in, FILE *out) {
  switch (in->kind) {
  case INIT_NONE: return;
  case INIT_ZEROS: fputs(" = zeros()", out); return;
  case INIT_ONES: fputs(" = ones()", out); return;
  case INIT_FULL:
    fputs(" = full(", out);
    ir_print_number(in->a, out);
    break;
  case INIT_UNIFORM:
    fputs(" = uniform(", out);
    ir_print_number(in->a, out);
    fputs(", ", out);
    ir_print_number(in->b, out);
    break;
  case INIT_NORMAL:
    fputs(" = normal(", out);
    ir_print_number(in->a, out);
    break;
  case INIT_GLOROT_UNIFORM: fputs(" = glorot_uniform()", out); return;
  case INIT_HE_NORMAL: fputs(" = he_normal()", out); return;
  default: fprintf(out, " = <bad init %d>(", (int)in->kind); break;
  }
  fputc(')', out);
}

/* input @x : f32[B,784] bound 10 | param @w : T = init [nograd] | state @s : T = init for @w
 * | hyper @lr = 0.001, each with an optional loc(...). */
static void print_symbol(const Module *m, const Symbol *s, FILE *out) {
  if ((unsigned)s->kind > SYM_HYPER) fprintf(out, "<bad symbol kind %d> ", (int)s->kind);
  else fprintf(out, "%s ", sym_kind_name(s->kind));
  print_sym_name(s->name, out);
  if (s->kind == SYM_HYPER) {
    fputs(" = ", out);
    ir_print_number(s->value, out);
  } else {
    fputs(" : ", out);
    print_type(&s->type, out);
    if (s->bound != 0) fprintf(out, " bound %lld", (long long)s->bound);
    if (s->kind == SYM_PARAM || s->kind == SYM_STATE) print_init(&s->init, out);
    if (s->no_grad) fputs(" nograd", out);
    if (s->kind == SYM_STATE) {
      fputs(" for ", out);
      print_sym_ref(m, s->owner, out);
    }
  }
  ir_print_loc(m, s->loc, out);
  fputc('\n', out);
}

/* train data = idx("dir"), scale = S, batch = N, ..., optimizer = NAME.
 * Unset fields are omitted: data DATA_NONE, scale/batch/epochs/steps/seed/validation 0,
 * the constant schedule, optimizer NULL.  shuffle is always printed. */
static void print_train(const TrainSpec *t, FILE *out) {
  const char *sep = " ";
  fputs("train", out);
  if (t->data == DATA_IDX || t->data == DATA_CSV || t->data == DATA_TEXT) {
    fprintf(out, "%sdata = %s(", sep, t->data == DATA_IDX ? "idx" : t->data == DATA_CSV ? "csv" : "text");
    ir_print_string(t->data_path ? t->data_path : "", out);
    if (t->data == DATA_TEXT) fprintf(out, ", context = %lld", (long long)t->context);
    if (t->data != DATA_IDX && t->test_path) {
      fputs(", test = ", out);
      ir_print_string(t->test_path, out);
    }
    if (t->data == DATA_CSV && t->label) {
      fputs(", label = ", out);
      ir_print_string(t->label, out);
    }
    fputc(')', out);
    sep = ", ";
  }
  if (t->scale != 0) {
    fprintf(out, "%sscale = ", sep);
    ir_print_number(t->scale, out);
    sep = ", ";
  }
  if (t->batch != 0) fprintf(out, "%sbatch = %lld", sep, (long long)t->batch), sep = ", ";
  if (t->epochs != 0) fprintf(out, "%sepochs = %lld", sep, (long long)t->epochs), sep = ", ";
  if (t->steps != 0) fprintf(out, "%ssteps = %lld", sep, (long long)t->steps), sep = ", ";
  if (t->seed != 0) fprintf(out, "%sseed = %lld", sep, (long long)t->seed), sep = ", ";
  fprintf(out, "%sshuffle = %s", sep, t->shuffle ? "true" : "false");
  if (t->validation != 0) {
    fputs(", validation = ", out);
    ir_print_number(t->validation, out);
  }
  if (t->schedule.kind == SCHEDULE_STEP) {
    fprintf(out, ", schedule = step(every = %lld, factor = ", (long long)t->schedule.every);
    ir_print_number(t->schedule.factor, out);
    fputc(')', out);
  } else if (t->schedule.kind == SCHEDULE_COSINE) {
    fprintf(out, ", schedule = cosine(warmup = %lld, min = ", (long long)t->schedule.warmup);
    ir_print_number(t->schedule.min, out);
    fputc(')', out);
  }
  if (t->optimizer) {
    fputs(", optimizer = ", out);
    if (bare_name(t->optimizer, false)) fputs(t->optimizer, out);
    else ir_print_string(t->optimizer, out);
  }
  fputc('\n', out);
}

/* %N = op [@sym] [NUMBER] [%a, %b] [axes [..]] [perm [..]] : TYPE [loc(..)] */
void ir_print_node(const Module *m, ValueId v, FILE *out) {
  if (v >= m->nnodes) {
    fprintf(out, "%%%u = <undefined>\n", v);
    return;
  }
  const Node *n = &m->nodes[v];
  if ((unsigned)n->op >= OP_COUNT) {
    fprintf(out, "%%%u = <bad op %d> : ", v, (int)n->op);
    print_type(&n->type, out);
    fputc('\n', out);
    return;
  }
  const OpInfo *info = &ir_ops[n->op];
  fprintf(out, "%%%u = %s", v, info->name);
  if (info->flags & OPF_SYM) {
    fputc(' ', out);
    print_sym_ref(m, n->attr.sym, out);
  }
  if (info->flags & OPF_VALUE) {
    fputc(' ', out);
    ir_print_number(n->attr.value, out);
  }
  for (int i = 0; i < n->nargs && i < NNC_MAX_ARGS; i++) fprintf(out, "%s%%%u", i ? ", " : " ", n->args[i]);
  if (info->flags & OPF_AXES) {
    fputs(" axes [", out);
    const char *sep = "";
    for (int k = 0; k < 32; k++)
      if (n->attr.axes >> k & 1) fprintf(out, "%s%d", sep, k), sep = ",";
    fputc(']', out);
  }
  if (info->flags & OPF_WINDOW)
    fprintf(out, " window %u stride %u pad %u", n->attr.win.size, n->attr.win.stride, n->attr.win.pad);
  if (info->flags & OPF_PERM) {
    fputs(" perm [", out);
    for (int k = 0; k < n->type.rank && k < NNC_MAX_RANK; k++) fprintf(out, k ? ",%u" : "%u", n->attr.perm[k]);
    fputc(']', out);
  }
  fputs(" : ", out);
  print_type(&n->type, out);
  ir_print_loc(m, n->loc, out);
  fputc('\n', out);
}

static void print_output(const Module *m, const Output *o, FILE *out) {
  switch (o->kind) {
  case OUT_LOSS: fputs("output loss", out); break;
  case OUT_METRIC:
    fputs("output metric ", out);
    print_sym_name(o->name, out);
    break;
  case OUT_UPDATE:
    fputs("output update ", out);
    if (o->sym < m->nsyms) print_sym_ref(m, o->sym, out);
    else print_sym_name(o->name, out);
    break;
  case OUT_PREDICT:
    fputs("output predict ", out);
    print_sym_name(o->name, out);
    break;
  default: fprintf(out, "output <bad kind %d>", (int)o->kind); break;
  }
  fprintf(out, " %%%u\n", o->value);
}

bool ir_print_decls(const Module *m, FILE *out) {
  bool any = false; /* a section was printed: the next one needs a blank line */
  if (m->name && *m->name) {
    fputs("module ", out);
    print_sym_name(m->name, out);
    fputc('\n', out);
    any = true;
  }
  if (m->nsyms || m->train.present) {
    if (any) fputc('\n', out);
    for (uint32_t i = 0; i < m->nsyms; i++) print_symbol(m, &m->syms[i], out);
    if (m->train.present) print_train(&m->train, out);
    any = true;
  }
  return any;
}

void ir_print(const Module *m, FILE *out) {
  bool any = ir_print_decls(m, out);
  if (m->nnodes) {
    if (any) fputc('\n', out);
    for (uint32_t i = 0; i < m->nnodes; i++) ir_print_node(m, i, out);
    any = true;
  }
  if (m->noutputs) {
    if (any) fputc('\n', out);
    for (uint32_t i = 0; i < m->noutputs; i++) print_output(m, &m->outputs[i], out);
  }
}
