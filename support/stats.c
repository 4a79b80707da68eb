/* support/stats.c - the --stats counters (stats.h).
 *
 * A few dozen counters at most, found by name: a linear list is enough.
 */
#include "support/stats.h"

#include <time.h>

#include "support/arena.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct Stat {
  char name[96];
  long value;
} Stat;

static Stat *stats;
static size_t nstats, capstats;

static Stat *stat_slot(const char *pass, const char *counter, bool create) {
  char name[96];
  snprintf(name, sizeof name, "%s.%s", pass, counter);
  for (size_t i = 0; i < nstats; i++)
    if (!strcmp(stats[i].name, name)) return &stats[i];
  if (!create) return NULL;
  Stat s;
  memset(&s, 0, sizeof s);
  memcpy(s.name, name, sizeof name);
  VEC_PUSH(stats, nstats, capstats, s);
  return &stats[nstats - 1];
}

void nnc_stat_add(const char *pass, const char *counter, long delta) {
  stat_slot(pass, counter, true)->value += delta;
}

long nnc_stat_get(const char *pass, const char *counter) {
  Stat *s = stat_slot(pass, counter, false);
  return s ? s->value : 0;
}

static int stat_cmp(const void *a, const void *b) {
  return strcmp(((const Stat *)a)->name, ((const Stat *)b)->name);
}

void nnc_stats_print(FILE *out) {
  qsort(stats, nstats, sizeof *stats, stat_cmp);
  fprintf(out, "; statistics\n");
  for (size_t i = 0; i < nstats; i++) fprintf(out, "%s = %ld\n", stats[i].name, stats[i].value);
}

double nnc_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
