/* passes/dce.c - dead code elimination.
 *
 * Requires: a verified module.  Guarantees: every node is reachable from an
 * output (loss, metric or update); the rest are removed and the survivors
 * renumbered in their old order (still topological).  Symbols are never
 * removed, even when no node names them any more: they are the model's
 * interface (inputs, checkpoint keys).
 *
 * Liveness is one backward sweep: operands have smaller ids than their
 * users, so walking ids downwards sees every user before its operands.
 * Linear time.
 *
 * Statistics: dce.removed (nodes removed).
 */
#include "passes/pass.h"
#include "passes/rewrite.h"

#include <stdlib.h>

static ValueId dce_one(Rewrite *rw, ValueId id, Node *n, void *ctx) {
  const uint8_t *live = ctx;
  return live[id] ? rewrite_keep(rw, n) : NO_VALUE;
}

bool pass_dce(Module *m) {
  uint8_t *live = nnc_xcalloc(m->nnodes ? m->nnodes : 1, 1);
  for (uint32_t i = 0; i < m->noutputs; i++)
    if (m->outputs[i].value < m->nnodes) live[m->outputs[i].value] = 1;
  long removed = 0;
  for (ValueId id = m->nnodes; id-- > 0;) {
    const Node *n = &m->nodes[id];
    if (!live[id]) {
      removed++;
      continue;
    }
    for (int i = 0; i < n->nargs; i++) live[n->args[i]] = 1;
  }
  if (removed) rewrite_graph(m, dce_one, live);
  free(live);
  nnc_stat_add("dce", "removed", removed);
  return true;
}
