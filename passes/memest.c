/* passes/memest.c - how much memory a compiled trainer will need.
 *
 * Requires a KProgram after memplan.  Counts what the runtime allocates
 * (runtime/trainer.c, alloc_buffers): each parameter and optimizer state
 * once; each memory slot of temporaries once, at the size of its largest
 * member; inputs, labels, loss, metrics and temps without a slot on their
 * own; batched buffers times the batch size; 4 bytes per element (f32 and
 * i32); and on the host, the batch of inputs and labels the trainer stages
 * and the losses it reads back (RT_HOST_STAGING, runtime/memlimit.h, as
 * the trainer counts them).  The driver compares the total with
 * --max-memory (default: the machine's physical memory) before generating
 * any code, so a model that cannot fit is refused at once with the parts
 * named.
 */
#include "passes/lower.h"

#include "passes/pass.h"
#include "runtime/memlimit.h"

#include <stdlib.h>

void memplan_estimate(const KProgram *p, int64_t batch, MemEstimate *e) {
  e->params = e->states = e->activations = e->host = 0;
  e->batch = batch > 0 ? batch : 1;
  double *slot = nnc_xcalloc((size_t)(p->nslots > 0 ? p->nslots : 0) + 1, sizeof *slot);
  for (uint32_t i = 0; i < p->nbufs; i++) {
    const KBuffer *b = &p->bufs[i];
    double bytes = 4.0 * (double)type_numel(&b->type) * (b->type.batched ? (double)e->batch : 1);
    if (bytes < 4) bytes = 4; /* the runtime never allocates 0 bytes */
    if (b->kind == KB_PARAM)
      e->params += bytes;
    else if (b->kind == KB_STATE)
      e->states += bytes;
    else if (b->kind == KB_TEMP && b->slot >= 0 && b->slot < p->nslots)
      slot[b->slot] = bytes > slot[b->slot] ? bytes : slot[b->slot];
    else
      e->activations += bytes;
    if (b->kind == KB_INPUT && e->host == 0) e->host = RT_HOST_STAGING(e->batch, type_numel(&b->type));
  }
  for (int32_t s = 0; s < p->nslots; s++) e->activations += slot[s];
  free(slot);
}
