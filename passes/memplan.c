/* passes/memplan.c - memory slots for temporaries.
 *
 * A temporary lives from the first kernel of the train plan that stores it
 * to the last kernel that reads it.  Temporaries whose lifetimes do not
 * overlap share a slot (one allocation, sized by the runtime for the largest
 * member); batched and unbatched temporaries use separate slots since their
 * sizes scale differently.  Greedy: each temporary, in order of birth,
 * takes the free slot whose current size is closest to its own (growing it
 * as little as possible), else a new slot.  The eval plan runs a subset of
 * the same kernels in the same order, so its lifetimes nest in these.
 */
#include "passes/lower.h"

#include "passes/pass.h"

#include <stdlib.h>
#include <string.h>

/* Lifetimes: first[b] and last[b] are the plan positions of the first and
 * last kernels touching buffer b. */
typedef struct Mark {
  KVisit v;
  int32_t k, *first, *last;
} Mark;

static bool mark_store(KVisit *v, KStmt *s) {
  Mark *m = (Mark *)v;
  if (kstmt_is_store(s)) {
    if (m->first[s->buf] < 0) m->first[s->buf] = m->k;
    if (m->k > m->last[s->buf]) m->last[s->buf] = m->k;
  }
  return false;
}
static bool mark_load(KVisit *v, KExpr *e) {
  Mark *m = (Mark *)v;
  if (e->kind == KE_LOAD) {
    if (m->first[e->buf] < 0) m->first[e->buf] = m->k; /* read before written: live from here */
    m->last[e->buf] = m->k;
  }
  return false;
}

void memplan(KProgram *p, int64_t batch) {
  int32_t *first = nnc_xmalloc(sizeof(int32_t) * (p->nbufs ? p->nbufs : 1));
  int32_t *last = nnc_xmalloc(sizeof(int32_t) * (p->nbufs ? p->nbufs : 1));
  for (uint32_t b = 0; b < p->nbufs; b++) first[b] = last[b] = -1;
  for (uint32_t i = 0; i < p->ntrain; i++) {
    Mark m = {{mark_store, mark_load}, (int32_t)i, first, last};
    kvisit_kernel(&m.v, &p->kernels[p->train[i]]);
  }
  /* Slots: owner's last use and current size (elements per sample or fixed). */
  int32_t *slot_free_at = NULL, cap = 0, nslots = 0;
  int64_t *slot_size = NULL;
  bool *slot_batched = NULL;
  int64_t naive = 0, planned = 0;
  for (uint32_t b = 0; b < p->nbufs; b++) {
    KBuffer *kb = &p->bufs[b];
    if (kb->kind != KB_TEMP) continue;
    int64_t size = type_numel(&kb->type);
    naive += size * (kb->type.batched ? batch : 1);
    if (first[b] < 0) { /* never used: its own tiny slot keeps the runtime simple */
      first[b] = last[b] = 0;
    }
    int32_t best = -1;
    for (int32_t s = 0; s < nslots; s++) {
      if (slot_batched[s] != kb->type.batched || slot_free_at[s] >= first[b]) continue;
      int64_t grow = size > slot_size[s] ? size - slot_size[s] : 0;
      int64_t waste = slot_size[s] > size ? slot_size[s] - size : 0;
      if (best < 0) {
        best = s;
        continue;
      }
      int64_t bgrow = size > slot_size[best] ? size - slot_size[best] : 0;
      int64_t bwaste = slot_size[best] > size ? slot_size[best] - size : 0;
      if (grow < bgrow || (grow == bgrow && waste < bwaste)) best = s;
    }
    if (best < 0) {
      if (nslots == cap) {
        cap = cap ? 2 * cap : 16;
        slot_free_at = nnc_xrealloc(slot_free_at, sizeof(int32_t) * (size_t)cap);
        slot_size = nnc_xrealloc(slot_size, sizeof(int64_t) * (size_t)cap);
        slot_batched = nnc_xrealloc(slot_batched, sizeof(bool) * (size_t)cap);
      }
      best = nslots++;
      slot_size[best] = 0;
      slot_batched[best] = kb->type.batched;
    }
    if (size > slot_size[best]) slot_size[best] = size;
    slot_free_at[best] = last[b];
    kb->slot = best;
  }
  for (int32_t s = 0; s < nslots; s++) planned += slot_size[s] * (slot_batched[s] ? batch : 1);
  p->nslots = nslots;
  nnc_stat_add("memplan", "slots", nslots);
  nnc_stat_add("memplan", "temp_bytes", planned * 4);
  nnc_stat_add("memplan", "unshared_temp_bytes", naive * 4);
  free(first);
  free(last);
  free(slot_free_at);
  free(slot_size);
  free(slot_batched);
}
