/* support/arena.c - the allocator hook and bump arenas (see arena.h). */
#include "support/arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void (*nnc_exit_hook)(int status);

static noreturn void out_of_memory(size_t size) {
  fprintf(stderr, "nnc: error: out of memory (asked for %zu bytes)\n", size);
  if (nnc_exit_hook) nnc_exit_hook(1);
  exit(1);
}

void *nnc_xmalloc(size_t size) {
  void *p = malloc(size ? size : 1);
  if (!p) out_of_memory(size);
  return p;
}

void *nnc_xcalloc(size_t count, size_t size) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p) out_of_memory(count * size);
  return p;
}

void *nnc_xrealloc(void *p, size_t size) {
  void *q = realloc(p, size ? size : 1);
  if (!q) out_of_memory(size);
  return q;
}

char *nnc_xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(nnc_xmalloc(n), s, n);
}

noreturn void nnc_internal_error(const char *file, int line, const char *fmt, ...) {
  const char *base = strrchr(file, '/');
  fprintf(stderr, "nnc: internal error: %s:%d: ", base ? base + 1 : file, line);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  if (nnc_exit_hook) nnc_exit_hook(70);
  exit(70);
}

struct ArenaChunk {
  ArenaChunk *next;
  size_t size;
  _Alignas(16) unsigned char data[];
};

enum { ARENA_CHUNK = 64 * 1024 };

void *arena_alloc(Arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  if (!a->head || a->used + size > a->head->size) {
    size_t chunk = size > ARENA_CHUNK ? size : ARENA_CHUNK;
    ArenaChunk *c = nnc_xmalloc(sizeof(ArenaChunk) + chunk);
    c->next = a->head;
    c->size = chunk;
    a->head = c;
    a->used = 0;
  }
  void *p = a->head->data + a->used;
  a->used += size;
  a->total += size;
  memset(p, 0, size);
  return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(Arena *a, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = arena_alloc(a, (size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return p;
}

void arena_free(Arena *a) {
  for (ArenaChunk *c = a->head, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  a->head = NULL;
  a->used = a->total = 0;
}
