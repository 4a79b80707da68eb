/* passes/pipeline.c - the graph passes in default order, and --stats counters.
 *
 * ORDER: stable-lse first, so that autodiff differentiates the overflow-safe
 * form (the gradient of a naive log-sum-exp overflows even where its value
 * would not); it runs at -O0 too because it is about correct numbers, not
 * speed.  Then autodiff turns the model graph into the training step, the
 * simplifications clean up what it built, and dead-code elimination runs
 * last.
 */
#include "passes/pass.h"

#include <stdlib.h>
#include <string.h>

const Pass nnc_graph_passes[] = {
    {"stable-lse", "rewrite log(sum(exp(x))) into the overflow-safe max + log(sum(exp(x - max)))", pass_stable_lse, 0},
    {"autodiff", "replace grad placeholders by reverse-mode gradients of the mean loss", pass_autodiff, 0},
    {"fold", "fold ops on scalar constants into constants", pass_fold, 1},
    {"algebra", "drop exact identities: x+0, x*1, x/1, neg(neg(x)), no-op reshapes and casts", pass_algebra, 1},
    {"cse", "merge nodes with the same op, attributes, type and operands", pass_cse, 1},
    {"dce", "remove nodes no output depends on", pass_dce, 0},
    {NULL, NULL, NULL, 0},
};

const Pass *pass_find(const char *name) {
  for (const Pass *p = nnc_graph_passes; p->name; p++)
    if (!strcmp(p->name, name)) return p;
  return NULL;
}

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
