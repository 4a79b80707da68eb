/* ir/dot.c - the graph IR as a Graphviz digraph (`nnc --emit=dot`).
 *
 * One DOT node per value, `v<N>`, labelled with the value, its op, its
 * symbol or constant and its type ("%2 matmul\nf32[B,64]"); leaves are
 * filled grey boxes with rounded corners, ops plain ellipses.  Edges run
 * from operand to user.  Every output is a bold box of its own (`o<K>`:
 * "loss", "metric accuracy", "update h.w") fed by its value.  All labels
 * are double-quoted strings with '"' and '\' escaped and control or
 * non-ASCII bytes written as \xHH, so the file is valid DOT for any name.
 */
#include "ir/ir.h"

#include <stdio.h>

/* Writes s inside a DOT double-quoted string. */
static void dot_text(const char *s, FILE *out) {
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
    else if (*p < 0x20 || *p >= 0x7f) fprintf(out, "\\\\x%02x", *p);
    else fputc(*p, out);
  }
}

static void dot_sym(const Module *m, uint32_t sym, FILE *out) {
  if (sym < m->nsyms) dot_text(m->syms[sym].name, out);
  else fprintf(out, "#%u", sym);
}

void ir_print_dot(const Module *m, FILE *out) {
  char tb[192];
  fputs("digraph \"", out);
  dot_text(m->name && *m->name ? m->name : "module", out);
  fputs("\" {\n", out);
  fputs("  node [fontname=\"monospace\", fontsize=10];\n", out);
  fputs("  edge [arrowsize=0.6];\n", out);
  for (ValueId v = 0; v < m->nnodes; v++) {
    const Node *n = &m->nodes[v];
    bool known = (unsigned)n->op < OP_COUNT;
    unsigned flags = known ? ir_ops[n->op].flags : 0;
    fprintf(out, "  v%u [label=\"%%%u %s", v, v, known ? ir_ops[n->op].name : "?");
    if (flags & OPF_SYM) {
      fputs(" @", out);
      dot_sym(m, n->attr.sym, out);
    }
    if (flags & OPF_VALUE) {
      fputc(' ', out);
      ir_print_number(n->attr.value, out); /* digits, '.', 'e', '-', inf, nan: nothing to escape */
    }
    fputs("\\n", out);
    dot_text(type_str(&n->type, tb, sizeof tb), out);
    fputs((flags & OPF_LEAF) ? "\", shape=box, style=\"rounded,filled\", fillcolor=\"#e8e8e8\"];\n" : "\"];\n", out);
  }
  for (ValueId v = 0; v < m->nnodes; v++) {
    const Node *n = &m->nodes[v];
    for (int i = 0; i < n->nargs && i < NNC_MAX_ARGS; i++)
      if (n->args[i] < m->nnodes) fprintf(out, "  v%u -> v%u;\n", n->args[i], v);
  }
  for (uint32_t k = 0; k < m->noutputs; k++) {
    const Output *o = &m->outputs[k];
    fprintf(out, "  o%u [label=\"", k);
    switch (o->kind) {
    case OUT_LOSS: fputs("loss", out); break;
    case OUT_METRIC:
      fputs("metric ", out);
      dot_text(o->name, out);
      break;
    case OUT_UPDATE:
      fputs("update ", out);
      if (o->sym < m->nsyms) dot_sym(m, o->sym, out);
      else dot_text(o->name, out);
      break;
    case OUT_PREDICT:
      fputs("predict ", out);
      dot_text(o->name, out);
      break;
    default: fputs("?", out); break;
    }
    fputs("\", shape=box, style=bold];\n", out);
    if (o->value < m->nnodes) fprintf(out, "  v%u -> o%u;\n", o->value, k);
  }
  fputs("}\n", out);
}
