/* driver/memory.c - the memory estimate and limit of nnc (see memory.h and
 * passes/memest.c).  Sizes print through the runtime's rt_format_bytes, so
 * nnc and a trainer word them alike. */
#include "driver/memory.h"

#include "support/diag.h"
#include "passes/lower.h"
#include "support/stats.h"
#include "runtime/memlimit.h"

#include <stdio.h>

static long clamp_long(double v) { return v >= 9.2e18 ? 9200000000000000000L : (long)v; }

/* Compares e with the limit; -v and --stats as memory.h says. */
static bool check(const char *model, const MemEstimate *e, const Options *o, const char *what, int64_t *data_budget) {
  double total = e->params + e->states + e->activations + e->host;
  int64_t limit = o->max_memory > 0 ? o->max_memory : rt_phys_memory();
  char t[32], p[32], s[32], a[32], h[32], l[32];
  rt_format_bytes(total, t, sizeof t);
  rt_format_bytes(e->params, p, sizeof p);
  rt_format_bytes(e->states, s, sizeof s);
  rt_format_bytes(e->activations, a, sizeof a);
  rt_format_bytes(e->host, h, sizeof h);
  rt_format_bytes((double)limit, l, sizeof l);
  nnc_stat_add("memory", "parameter_bytes", clamp_long(e->params));
  nnc_stat_add("memory", "state_bytes", clamp_long(e->states));
  nnc_stat_add("memory", "activation_bytes", clamp_long(e->activations));
  nnc_stat_add("memory", "host_bytes", clamp_long(e->host));
  nnc_stat_add("memory", "total_bytes", clamp_long(total));
  if (o->verbose)
    fprintf(stderr, "nnc: memory     about %s%s (parameters %s, optimizer state %s, activations %s, host buffers %s "
            "at batch %lld); limit %s\n", t, what, p, s, a, h, (long long)e->batch, limit > 0 ? l : "unknown");
  if (data_budget) *data_budget = limit > 0 && total < (double)limit ? (int64_t)((double)limit - total) : 0;
  if (limit <= 0 || total <= (double)limit) return true;
  diag_error_plain("model '%s' needs about %s%s (parameters %s, optimizer state %s, activations %s, host buffers %s "
                   "at batch %lld) but the limit is %s; use --max-memory to change it",
                   model, t, what, p, s, a, h, (long long)e->batch, l);
  return false;
}

static int64_t run_batch(const Module *m, const Options *o) {
  return o->batch > 0 ? o->batch : m->train.batch > 0 ? m->train.batch : 1;
}

bool memory_check_program(const KProgram *kp, const Options *o) {
  MemEstimate e;
  memplan_estimate(kp, run_batch(kp->module, o), &e);
  return check(kp->module && kp->module->name ? kp->module->name : "model", &e, o, "", NULL);
}

bool memory_check_interp(const Module *m, const Options *o, int64_t *data_budget) {
  MemEstimate e = {.batch = run_batch(m, o)};
  for (uint32_t i = 0; i < m->nsyms; i++) {
    double bytes = 8.0 * (double)type_numel(&m->syms[i].type);
    if (m->syms[i].kind == SYM_PARAM) e.params += bytes;
    if (m->syms[i].kind == SYM_STATE) e.states += bytes;
    if (m->syms[i].kind == SYM_INPUT && e.host == 0) e.host = RT_HOST_STAGING(e.batch, type_numel(&m->syms[i].type));
  }
  for (uint32_t v = 0; v < m->nnodes; v++)
    e.activations += 8.0 * (double)type_numel(&m->nodes[v].type) * (m->nodes[v].type.batched ? (double)e.batch : 1);
  return check(m->name ? m->name : "model", &e, o, " in the interpreter", data_budget);
}
