/* passes/rewrite.c - the rebuild loop shared by the simplification passes.
 *
 * One pass over the old nodes in id order; since operands have smaller ids,
 * each node's operands are already mapped when it is reached.  The old
 * array is detached from the module first and freed at the end, so the
 * whole rebuild is O(nodes) in time and holds two node arrays at most.
 */
#include "passes/rewrite.h"

#include <stdlib.h>

ValueId rewrite_keep(Rewrite *rw, const Node *n) {
  Module *m = rw->m;
  for (int i = 0; i < n->nargs; i++)
    if (n->args[i] >= m->nnodes)
      nnc_internal_error(__FILE__, __LINE__, "rewrite: a kept %s uses a dropped value", ir_ops[n->op].name);
  return ir_append(m, n);
}

void rewrite_graph(Module *m, RewriteFn fn, void *ctx) {
  Rewrite rw;
  rw.m = m;
  rw.old = m->nodes;
  rw.nold = m->nnodes;
  rw.map = nnc_xmalloc(sizeof *rw.map * (rw.nold ? rw.nold : 1));
  m->capnodes = rw.nold ? rw.nold : 8;
  m->nodes = nnc_xmalloc(sizeof *m->nodes * m->capnodes);
  m->nnodes = 0;

  for (ValueId id = 0; id < rw.nold; id++) {
    Node n = rw.old[id];
    for (int i = 0; i < n.nargs; i++) n.args[i] = n.args[i] < id ? rw.map[n.args[i]] : NO_VALUE;
    ValueId r = fn(&rw, id, &n, ctx);
    rw.map[id] = r;
    if (r == NO_VALUE) continue;
    if (r >= m->nnodes || !type_equal(&m->nodes[r].type, &rw.old[id].type)) {
      char ta[192], tb[192];
      nnc_internal_error(__FILE__, __LINE__, "rewrite: %%%u = %s (%s) replaced by a value of type %s", id,
                         ir_ops[rw.old[id].op].name, type_str(&rw.old[id].type, ta, sizeof ta),
                         r < m->nnodes ? type_str(&m->nodes[r].type, tb, sizeof tb) : "<none>");
    }
  }

  for (uint32_t i = 0; i < m->noutputs; i++) {
    Output *o = &m->outputs[i];
    ValueId v = o->value < rw.nold ? rw.map[o->value] : NO_VALUE;
    if (v == NO_VALUE) nnc_internal_error(__FILE__, __LINE__, "rewrite: output %u uses a dropped value", i);
    o->value = v;
  }
  free((void *)rw.old);
  free(rw.map);
}
