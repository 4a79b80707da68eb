/* support/arena.h - memory for the compiler: one allocator hook, bump arenas, vectors.
 *
 * Compiler data (AST, symbols, names, IR nodes) lives in arenas that are freed
 * all at once; nothing is freed one by one.  Every heap allocation goes through
 * nnc_xmalloc/nnc_xrealloc so that running out of memory is one clear message
 * and never a crash.  Growable arrays use VEC_PUSH over (ptr, n, cap).
 */
#ifndef NNC_ARENA_H
#define NNC_ARENA_H

#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

void *nnc_xmalloc(size_t size);
void *nnc_xcalloc(size_t count, size_t size);
void *nnc_xrealloc(void *p, size_t size);
char *nnc_xstrdup(const char *s);

/* Called, when set, just before the compiler exits on running out of
 * memory (status 1) or on a broken invariant (70).  Fuzz harnesses set it
 * to abort(), so libFuzzer reports the input instead of losing it to
 * exit(); everyone else leaves it NULL. */
extern void (*nnc_exit_hook)(int status);

/* Broken invariants: "nnc: internal error: file.c:123: message", exit 70. */
noreturn void nnc_internal_error(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define NNC_ASSERT(cond)                                                       \
  do {                                                                         \
    if (!(cond)) nnc_internal_error(__FILE__, __LINE__, "assertion '%s' failed", #cond); \
  } while (0)
#define NNC_UNREACHABLE(msg) nnc_internal_error(__FILE__, __LINE__, "%s", msg)

typedef struct ArenaChunk ArenaChunk;
typedef struct Arena {
  ArenaChunk *head; /* newest chunk first */
  size_t used;      /* bytes used in head */
  size_t total;     /* bytes handed out, for --stats */
} Arena;

void *arena_alloc(Arena *a, size_t size); /* zeroed, 16-byte aligned */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(Arena *a);

/* Growable array over a (ptr, count, capacity) triple of lvalues. */
#define VEC_PUSH(ptr, n, cap, item)                                            \
  do {                                                                         \
    if ((n) == (cap)) {                                                        \
      (cap) = (cap) ? 2 * (cap) : 8;                                           \
      (ptr) = nnc_xrealloc((ptr), (size_t)(cap) * sizeof(*(ptr)));             \
    }                                                                          \
    (ptr)[(n)++] = (item);                                                     \
  } while (0)

#endif
