/* support/strmap.c - the name hash table (see strmap.h). */
#include "support/strmap.h"

#include "support/arena.h"

#include <stdlib.h>
#include <string.h>

long strmap_lookups, strmap_probes;

static uint32_t hash_key(const char *s, uint32_t tag) {
  uint32_t h = 2166136261u ^ tag; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* The slot holding (key, tag), or the empty slot where it would go. */
static StrMapSlot *slot_of(const StrMap *m, const char *key, uint32_t tag, uint32_t h) {
  uint32_t mask = m->cap - 1;
  for (uint32_t i = h & mask;; i = (i + 1) & mask) {
    StrMapSlot *s = &m->slots[i];
    strmap_probes++;
    if (!s->key || (s->hash == h && s->tag == tag && !strcmp(s->key, key))) return s;
  }
}

bool strmap_get(const StrMap *m, const char *key, uint32_t tag, uint32_t *value) {
  strmap_lookups++;
  if (!m->cap) return false;
  const StrMapSlot *s = slot_of(m, key, tag, hash_key(key, tag));
  if (!s->key) return false;
  *value = s->value;
  return true;
}

static void grow(StrMap *m) {
  StrMap bigger = {NULL, m->n, m->cap ? 2 * m->cap : 16};
  NNC_ASSERT(bigger.cap > m->cap); /* no wrap-around past 2^31 slots */
  bigger.slots = nnc_xcalloc(bigger.cap, sizeof *bigger.slots);
  for (uint32_t i = 0; i < m->cap; i++) {
    const StrMapSlot *s = &m->slots[i];
    if (!s->key) continue;
    uint32_t mask = bigger.cap - 1, j = s->hash & mask;
    while (bigger.slots[j].key) j = (j + 1) & mask;
    bigger.slots[j] = *s;
  }
  free(m->slots);
  *m = bigger;
}

/* The slot for (key, tag), made (with key set, value unset) when absent;
 * *added says which. */
static StrMapSlot *insert(StrMap *m, const char *key, uint32_t tag, bool *added) {
  if (2 * ((uint64_t)m->n + 1) > m->cap) grow(m);
  uint32_t h = hash_key(key, tag);
  StrMapSlot *s = slot_of(m, key, tag, h);
  *added = !s->key;
  if (*added) {
    s->key = key, s->tag = tag, s->hash = h;
    m->n++;
  }
  return s;
}

void strmap_set(StrMap *m, const char *key, uint32_t tag, uint32_t value) {
  bool added;
  strmap_lookups++;
  insert(m, key, tag, &added)->value = value;
}

bool strmap_add(StrMap *m, const char *key, uint32_t tag, uint32_t value) {
  bool added;
  strmap_lookups++;
  StrMapSlot *s = insert(m, key, tag, &added);
  if (added) s->value = value;
  return added;
}

void strmap_free(StrMap *m) {
  free(m->slots);
  m->slots = NULL;
  m->n = m->cap = 0;
}
