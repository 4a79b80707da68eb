/* support/strmap.h - a hash table from names to indices.
 *
 * Keys are (string, tag) pairs: the tag keeps apart names of different
 * kinds (a symbol's kind, say) in one table.  The table does not copy the
 * strings; they must outlive it (arena names, AST strings).  Open
 * addressing with linear probing, at most half full, so a lookup costs a
 * few string comparisons however many names there are: compiling a model
 * with N bindings stays linear in N.
 *
 * strmap_lookups counts the lookups and insertions of every table and
 * strmap_probes the slots they visited, for `--stats` (names.lookups,
 * names.probes): tests bound the work done per name with them.
 */
#ifndef NNC_STRMAP_H
#define NNC_STRMAP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct StrMapSlot {
  const char *key;   /* NULL = empty */
  uint32_t tag;
  uint32_t hash;
  uint32_t value;
} StrMapSlot;

typedef struct StrMap {
  StrMapSlot *slots;
  uint32_t n, cap;   /* cap: 0 or a power of two */
} StrMap;

extern long strmap_lookups, strmap_probes;

/* The value of (key, tag) into *value; false when absent. */
bool strmap_get(const StrMap *m, const char *key, uint32_t tag, uint32_t *value);
/* Maps (key, tag) to value, replacing an earlier value. */
void strmap_set(StrMap *m, const char *key, uint32_t tag, uint32_t value);
/* Maps (key, tag) to value unless it is present; false (and the map
 * unchanged) when it was. */
bool strmap_add(StrMap *m, const char *key, uint32_t tag, uint32_t value);
void strmap_free(StrMap *m);

#endif
