/* passes/rewrite.h - rebuilding the graph through a remap table.
 *
 * Every simplification pass has the same shape: walk the old nodes in order
 * (operands first), decide what each becomes in a new node array, and
 * remember old id -> new id so later operands and the outputs can be
 * remapped.  rewrite_graph() is that loop, written once; a pass supplies the
 * decision for one node.
 *
 * During the rebuild m->nodes IS the new array, so a pass can look at the
 * new operands (m->nodes[n->args[i]]) and build fresh nodes with ir_build,
 * ir_op2, ... : the shape rules then check them against the new graph.
 */
#ifndef NNC_REWRITE_H
#define NNC_REWRITE_H

#include "ir/ir.h"

typedef struct Rewrite {
  Module *m;         /* the module; m->nodes is the new array */
  const Node *old;   /* the old array, read-only during the rebuild */
  uint32_t nold;
  ValueId *map;      /* old id -> new id; NO_VALUE = dropped */
} Rewrite;

/* Decides what old node `id` becomes.  `n` is a copy of it whose operands
 * are already new ids.  Return:
 *   rewrite_keep(rw, n)  to emit it (possibly after editing n),
 *   an existing new id   to replace it (its type must equal n's),
 *   NO_VALUE             to drop it (only if nothing kept uses it). */
typedef ValueId (*RewriteFn)(Rewrite *rw, ValueId id, Node *n, void *ctx);

/* Rebuilds m->nodes through fn, then remaps the outputs.  Aborts with an
 * internal error if a replacement changes a type or a kept node or output
 * uses a dropped value.  Passes count what they changed themselves. */
void rewrite_graph(Module *m, RewriteFn fn, void *ctx);

/* Appends n (operands already new ids) to the new array. */
ValueId rewrite_keep(Rewrite *rw, const Node *n);

#endif
