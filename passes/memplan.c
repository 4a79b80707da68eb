/* passes/memplan.c - memory slots for temporaries.
 *
 * A temporary lives from the first kernel of the train plan that stores it
 * to the last kernel that reads it.  Temporaries whose lifetimes do not
 * overlap share a slot (one allocation, sized by the runtime for the largest
 * member); batched and unbatched temporaries use separate slots since their
 * sizes scale differently.  Greedy: each temporary, in order of birth,
 * takes the free slot whose current size is closest to its own (growing it
 * as little as possible), else a new slot.  The eval plan runs a subset of
 * the same kernels in the same order, so its lifetimes nest in these; a
 * kernel only it runs (the prediction's copy) counts as running with the
 * eval kernel before it.
 *
 * The free slots of each kind are kept ordered by (size, index) in a treap
 * and the busy ones in a heap by the kernel after which they are free, so
 * a plan of T temporaries takes O(T log T), however many are alive at once.
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
    if (m->k > m->last[e->buf]) m->last[e->buf] = m->k; /* an eval-only kernel counts earlier: keep the latest */
  }
  return false;
}

/* ---- free slots by (size, index): a treap over slot indices --------------------------- */

typedef struct Slots {
  int64_t *size;      /* elements per sample (batched) or in all (fixed) */
  int32_t *free_at;   /* the last kernel of its current owner */
  bool *batched;
  int32_t *left, *right;
  uint32_t *prio;
  int32_t n, cap;
} Slots;

static bool before(const Slots *sl, int32_t a, int64_t size, int32_t idx) {
  return sl->size[a] < size || (sl->size[a] == size && a < idx);
}

/* Splits tree t into the slots before (size, idx) and the rest. */
static void split(Slots *sl, int32_t t, int64_t size, int32_t idx, int32_t *lo, int32_t *hi) {
  if (t < 0) {
    *lo = *hi = -1;
  } else if (before(sl, t, size, idx)) {
    split(sl, sl->right[t], size, idx, &sl->right[t], hi);
    *lo = t;
  } else {
    split(sl, sl->left[t], size, idx, lo, &sl->left[t]);
    *hi = t;
  }
}

static int32_t merge(Slots *sl, int32_t a, int32_t b) {
  if (a < 0) return b;
  if (b < 0) return a;
  if (sl->prio[a] > sl->prio[b]) {
    sl->right[a] = merge(sl, sl->right[a], b);
    return a;
  }
  sl->left[b] = merge(sl, a, sl->left[b]);
  return b;
}

static void treap_insert(Slots *sl, int32_t *root, int32_t s) {
  int32_t lo, hi;
  sl->left[s] = sl->right[s] = -1;
  split(sl, *root, sl->size[s], s, &lo, &hi);
  *root = merge(sl, merge(sl, lo, s), hi);
}

static void treap_remove(Slots *sl, int32_t *root, int32_t s) {
  int32_t lo, mid, hi;
  split(sl, *root, sl->size[s], s, &lo, &hi);
  split(sl, hi, sl->size[s], s + 1, &mid, &hi); /* mid is s alone */
  *root = merge(sl, lo, hi);
}

/* The free slot the greedy takes for `size`: the smallest at least as big
 * (the lowest index among equals), else the biggest (lowest index); -1 if
 * there is none. */
static int32_t best_fit(const Slots *sl, int32_t root, int64_t size) {
  int32_t fit = -1, biggest = -1;
  for (int32_t t = root; t >= 0;) {
    if (before(sl, t, size, -1)) {
      t = sl->right[t];
    } else {
      fit = t;
      t = sl->left[t];
    }
  }
  if (fit >= 0 || root < 0) return fit;
  for (int32_t t = root; t >= 0; t = sl->right[t]) biggest = t;
  for (int32_t t = root; t >= 0;) { /* the lowest index of that size */
    if (before(sl, t, sl->size[biggest], -1)) {
      t = sl->right[t];
    } else {
      fit = t;
      t = sl->left[t];
    }
  }
  return fit;
}

/* ---- busy slots: a min-heap by free_at --------------------------------------------------- */

typedef struct Busy {
  int32_t *h;
  uint32_t n, cap;
} Busy;

static void busy_push(Busy *b, const Slots *sl, int32_t s) {
  VEC_PUSH(b->h, b->n, b->cap, s);
  for (uint32_t i = b->n - 1; i > 0 && sl->free_at[b->h[(i - 1) / 2]] > sl->free_at[b->h[i]]; i = (i - 1) / 2) {
    int32_t t = b->h[i];
    b->h[i] = b->h[(i - 1) / 2];
    b->h[(i - 1) / 2] = t;
  }
}

static int32_t busy_pop(Busy *b, const Slots *sl) {
  int32_t top = b->h[0];
  b->h[0] = b->h[--b->n];
  for (uint32_t i = 0;;) {
    uint32_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < b->n && sl->free_at[b->h[l]] < sl->free_at[b->h[m]]) m = l;
    if (r < b->n && sl->free_at[b->h[r]] < sl->free_at[b->h[m]]) m = r;
    if (m == i) break;
    int32_t t = b->h[i];
    b->h[i] = b->h[m];
    b->h[m] = t;
    i = m;
  }
  return top;
}

/* ---- the plan ------------------------------------------------------------------------------ */

/* Temps in order of birth: (first kernel << 32 | buffer), sorted. */
static int by_key(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int32_t new_slot(Slots *sl, bool batched) {
  if (sl->n == sl->cap) {
    sl->cap = sl->cap ? 2 * sl->cap : 16;
    size_t c = (size_t)sl->cap;
    sl->size = nnc_xrealloc(sl->size, sizeof(int64_t) * c);
    sl->free_at = nnc_xrealloc(sl->free_at, sizeof(int32_t) * c);
    sl->batched = nnc_xrealloc(sl->batched, sizeof(bool) * c);
    sl->left = nnc_xrealloc(sl->left, sizeof(int32_t) * c);
    sl->right = nnc_xrealloc(sl->right, sizeof(int32_t) * c);
    sl->prio = nnc_xrealloc(sl->prio, sizeof(uint32_t) * c);
  }
  int32_t s = sl->n++;
  sl->size[s] = 0;
  sl->batched[s] = batched;
  uint32_t h = (uint32_t)s; /* a fixed pseudo-random priority (murmur3's finalizer): plans are reproducible */
  h ^= h >> 16, h *= 0x85ebca6bu, h ^= h >> 13, h *= 0xc2b2ae35u, h ^= h >> 16;
  sl->prio[s] = h;
  return s;
}

void memplan(KProgram *p, int64_t batch) {
  size_t nb = p->nbufs ? p->nbufs : 1;
  int32_t *first = nnc_xmalloc(sizeof(int32_t) * nb);
  int32_t *last = nnc_xmalloc(sizeof(int32_t) * nb);
  uint64_t *order = nnc_xmalloc(sizeof(uint64_t) * nb);
  for (uint32_t b = 0; b < p->nbufs; b++) first[b] = last[b] = -1;
  int32_t *train_pos = nnc_xmalloc(sizeof(int32_t) * (p->nkernels ? p->nkernels : 1));
  for (uint32_t k = 0; k < p->nkernels; k++) train_pos[k] = -1;
  for (uint32_t i = 0; i < p->ntrain; i++) {
    Mark m = {{mark_store, mark_load}, (int32_t)i, first, last};
    kvisit_kernel(&m.v, &p->kernels[p->train[i]]);
    train_pos[p->train[i]] = (int32_t)i;
  }
  /* A kernel only evaluation runs (the prediction's copy) runs right after
   * the eval kernel before it, so it counts as running at that kernel's
   * position: no temp born later in the step shares a slot with what it
   * touches, and evaluation runs no kernel between the two. */
  int32_t at = 0;
  for (uint32_t i = 0; i < p->neval; i++) {
    if (train_pos[p->eval[i]] >= 0) {
      at = train_pos[p->eval[i]];
      continue;
    }
    Mark m = {{mark_store, mark_load}, at, first, last};
    kvisit_kernel(&m.v, &p->kernels[p->eval[i]]);
  }
  free(train_pos);
  uint32_t ntemps = 0;
  for (uint32_t b = 0; b < p->nbufs; b++) {
    if (p->bufs[b].kind != KB_TEMP) continue;
    if (first[b] < 0) first[b] = last[b] = 0; /* never used: its own tiny slot keeps the runtime simple */
    order[ntemps++] = (uint64_t)first[b] << 32 | b;
  }
  qsort(order, ntemps, sizeof *order, by_key);
  Slots sl;
  memset(&sl, 0, sizeof sl);
  Busy busy = {NULL, 0, 0};
  int32_t root[2] = {-1, -1}; /* free slots: fixed, batched */
  int64_t naive = 0, planned = 0;
  for (uint32_t i = 0; i < ntemps; i++) {
    int32_t b = (int32_t)(order[i] & 0xffffffffu);
    KBuffer *kb = &p->bufs[b];
    int64_t size = type_numel(&kb->type);
    naive += size * (kb->type.batched ? batch : 1);
    while (busy.n && sl.free_at[busy.h[0]] < first[b]) {
      int32_t s = busy_pop(&busy, &sl);
      treap_insert(&sl, &root[sl.batched[s]], s);
    }
    int32_t best = best_fit(&sl, root[kb->type.batched], size);
    if (best >= 0)
      treap_remove(&sl, &root[kb->type.batched], best);
    else
      best = new_slot(&sl, kb->type.batched);
    if (size > sl.size[best]) sl.size[best] = size;
    sl.free_at[best] = last[b];
    busy_push(&busy, &sl, best);
    kb->slot = best;
  }
  for (int32_t s = 0; s < sl.n; s++) planned += sl.size[s] * (sl.batched[s] ? batch : 1);
  p->nslots = sl.n;
  nnc_stat_add("memplan", "slots", sl.n);
  nnc_stat_add("memplan", "temp_bytes", planned * 4);
  nnc_stat_add("memplan", "unshared_temp_bytes", naive * 4);
  free(first);
  free(last);
  free(order);
  free(busy.h);
  free(sl.size);
  free(sl.free_at);
  free(sl.batched);
  free(sl.left);
  free(sl.right);
  free(sl.prio);
}
