/* passes/lower_internal.h - what the two halves of lowering share.
 *
 * passes/lower.c emits one kernel per materialized graph value, in graph
 * order; passes/lower_step.c arranges those kernels into the training
 * step: optimizer updates in place, update kernels fused, the grad part
 * before the update part.  lower_program (lower.c) calls, in this order:
 * lower_updates_begin, then per update output lower_place_update (or a
 * copy kernel it makes itself, then lower_note_kernel), lower_updates_end,
 * lower_fuse_updates, and after the prediction's copy lower_order_step.
 */
#ifndef NNC_LOWER_INTERNAL_H
#define NNC_LOWER_INTERNAL_H

#include "ir/kernel.h"

/* Where each buffer is first written and last read over the kernels made
 * so far, and the buffer each temp becomes: lower_place_update asks these
 * instead of scanning every kernel for every update (which is quadratic
 * in the size of the model). */
typedef struct UpdatePlacement {
  KProgram *p;
  int32_t *first_writer, *last_reader; /* per buffer: kernel index, -1 = none */
  int32_t *rename;                     /* per buffer: the buffer it becomes */
} UpdatePlacement;

/* Notes every kernel of p; no buffer may be added to p until
 * lower_updates_end. */
void lower_updates_begin(UpdatePlacement *u, KProgram *p);
/* Notes kernel k (a copy kernel appended after lower_updates_begin). */
void lower_note_kernel(UpdatePlacement *u, uint32_t k);
/* Moves update temp `tmp` into its symbol's buffer `dst` when that is
 * safe, and returns true; else returns false and the caller appends a copy
 * kernel (and notes it).  The move is a rename, applied to every kernel
 * by lower_updates_end. */
bool lower_place_update(UpdatePlacement *u, int32_t tmp, int32_t dst);
/* Applies the renames to every kernel and frees u's tables. */
void lower_updates_end(UpdatePlacement *u);

/* Fuses consecutive update kernels from kernel `first` on that loop over
 * the same unbatched domain (Adam: m, v and p of one parameter). */
void lower_fuse_updates(KProgram *p, uint32_t first);

/* Orders the step: the grad part, then the update part
 * (kprog_mark_update), then the prediction's copy. */
void lower_order_step(KProgram *p);

#endif
