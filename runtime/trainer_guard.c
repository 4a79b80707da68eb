/* runtime/trainer_guard.c - checkpoints, --check-numerics and the memory
 * limit of the trained program (see trainer_guard.h, checkpoint.h and
 * docs/hardening.md).
 *
 * Checkpoints hold every parameter and state buffer of the descriptor,
 * keyed by its name (the parameter path, "h.w/m" for states): exactly the
 * tensors the training step updates.  Everything else (temps, the loss) is
 * recomputed by the next step.
 */
#include "trainer_guard.h"

#include "memlimit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int64_t numel(const RtBufDesc *b) {
  int64_t n = 1;
  for (int d = 0; d < b->rank; d++) n *= b->dims[d];
  return n;
}

/* ---- the memory limit --------------------------------------------------------------------- */

/* Bytes of buffer b at batch bcap (at least 4, as the trainer allocates). */
static double buf_bytes(const RtBufDesc *b, int64_t bcap) {
  double n = (double)numel(b) * (b->batched ? (double)bcap : 1);
  return n > 0 ? n * 4 : 4;
}

bool rt_guard_memory(const RtModelDesc *m, int64_t bcap, int nscalars, const RtTrainerOptions *o, const char *prog,
                     int64_t *data_budget) {
  double params = 0, states = 0, acts = 0;
  int nslots = 0;
  *data_budget = 0;
  for (int i = 0; i < m->nbufs; i++)
    if (m->bufs[i].kind == RT_BUF_TEMP && m->bufs[i].slot >= nslots) nslots = m->bufs[i].slot + 1;
  double *slot = calloc((size_t)nslots + 1, sizeof *slot);
  if (!slot) {
    rt_trainer_error(prog, "out of memory");
    return false;
  }
  for (int i = 0; i < m->nbufs; i++) {
    const RtBufDesc *b = &m->bufs[i];
    double bytes = buf_bytes(b, bcap);
    if (b->kind == RT_BUF_PARAM)
      params += bytes;
    else if (b->kind == RT_BUF_STATE)
      states += bytes;
    else if (b->kind == RT_BUF_TEMP && b->slot >= 0)
      slot[b->slot] = bytes > slot[b->slot] ? bytes : slot[b->slot];
    else if (b->kind == RT_BUF_SCALARS)
      acts += bytes > 4.0 * nscalars ? bytes : 4.0 * nscalars;
    else
      acts += bytes;
  }
  for (int s = 0; s < nslots; s++) acts += slot[s];
  free(slot);
  /* On the host: a batch of inputs and labels staged for the device and its
   * losses read back (RT_HOST_STAGING), with checkpoints a copy of the
   * parameters and states (the one read, or the one to write), and with
   * early stopping the best epoch's parameters. */
  double host = RT_HOST_STAGING(bcap, numel(&m->bufs[m->input_buf])) +
                (o->checkpoint || o->resume ? params + states : 0) + (o->early_stop ? params : 0);
  double total = params + states + acts + host;
  int64_t limit = o->max_memory > 0 ? o->max_memory : rt_phys_memory();
  if (limit <= 0) return true; /* unknown: no limit, for the data either */
  if (total <= (double)limit) {
    *data_budget = (int64_t)((double)limit - total);
    if (*data_budget == 0) *data_budget = 1;
    return true;
  }
  char a[32], p[32], s[32], c[32], h[32], l[32];
  rt_trainer_error(prog, "model '%s' needs about %s (parameters %s, optimizer state %s, activations %s, host buffers "
                   "%s at batch %lld) but the limit is %s; use --max-memory to change it",
                   m->name, rt_format_bytes(total, a, sizeof a), rt_format_bytes(params, p, sizeof p),
                   rt_format_bytes(states, s, sizeof s), rt_format_bytes(acts, c, sizeof c),
                   rt_format_bytes(host, h, sizeof h), (long long)bcap, rt_format_bytes((double)limit, l, sizeof l));
  return false;
}

/* ---- the tensors of a checkpoint ---------------------------------------------------------- */

bool rt_guard_init(RtGuardState *g, const RtModelDesc *m, const char *prog) {
  memset(g, 0, sizeof *g);
  g->m = m;
  g->prog = prog;
  size_t cap = (size_t)m->nbufs + 1;
  g->tensors = calloc(cap, sizeof *g->tensors);
  g->bufs = calloc(cap, sizeof *g->bufs);
  g->host = calloc(cap, sizeof *g->host);
  if (!g->tensors || !g->bufs || !g->host) {
    rt_trainer_error(prog, "out of memory");
    return false;
  }
  g->n = rt_model_tensors(m, g->tensors, g->bufs);
  return true;
}

void rt_guard_free(RtGuardState *g) {
  for (int i = 0; g->host && i < g->n; i++) free(g->host[i]);
  free(g->host);
  free(g->tensors);
  free(g->bufs);
  free(g->probe);
  memset(g, 0, sizeof *g);
}

int rt_guard_gather(void *self, RtCkptTensor *t, int n, RtError *err) {
  RtGuardState *g = self;
  for (int i = 0; i < n && i < g->n; i++) {
    int64_t k = numel(&g->m->bufs[g->bufs[i]]);
    if (!g->host[i] && !(g->host[i] = malloc((size_t)(k > 0 ? k : 1) * sizeof(float))))
      return rt_error_set(err, "out of memory saving '%s'", t[i].ref.name);
    if (k > 0 && rt_mem_read(g->dev, g->mem[g->bufs[i]], 0, g->host[i], (size_t)k * sizeof(float), err) != 0)
      return -1;
    t[i].ref.data = g->host[i];
  }
  return 0;
}

int rt_guard_scatter(void *self, const RtCkptTensor *t, int n, RtError *err) {
  RtGuardState *g = self;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < g->n; j++) {
      int64_t k = numel(&g->m->bufs[g->bufs[j]]);
      if (strcmp(t[i].ref.name, g->tensors[j].ref.name) != 0 || k <= 0) continue;
      if (rt_mem_write(g->dev, g->mem[g->bufs[j]], 0, t[i].ref.data, (size_t)k * sizeof(float), err) != 0) return -1;
    }
  return 0;
}

bool rt_guard_resume_settings(RtGuardState *g, const RtCheckpoint *c, const RtTrainerOptions *o, double *hypers) {
  const RtModelDesc *m = g->m;
  RtError err;
  if (rt_checkpoint_match(c, m->name, g->tensors, g->n, &err) != 0) {
    rt_trainer_error(g->prog, "%s", err.msg);
    return false;
  }
  if (o->seed >= 0 && (uint64_t)o->seed != c->seed) {
    rt_trainer_error(g->prog, "%s: the checkpoint was trained with --seed %llu (it fixes the data order); "
                     "--seed %lld cannot resume it", c->path, (unsigned long long)c->seed, (long long)o->seed);
    return false;
  }
  if (o->no_shuffle && c->shuffle) {
    rt_trainer_error(g->prog, "%s: the checkpoint was trained with shuffled data; --no-shuffle cannot resume it",
                     c->path);
    return false;
  }
  for (int i = 0; i < m->nhypers; i++)
    if (!rt_checkpoint_hyper(c, m->hyper_names[i], &hypers[i])) {
      rt_trainer_error(g->prog, "%s: the checkpoint has no value for hyper-parameter '%s' (the optimizer differs)",
                       c->path, m->hyper_names[i]);
      return false;
    }
  return true;
}

bool rt_guard_load_weights(RtGuardState *g, const char *path, RtCheckpoint *c) {
  RtError err;
  if (rt_weights_load(path, c, &err) != 0 || rt_weights_match(c, g->m->name, g->tensors, g->n, &err) != 0) {
    rt_trainer_error(g->prog, "%s", err.msg);
    return false;
  }
  return true;
}

bool rt_guard_restore(RtGuardState *g, const RtCheckpoint *c, bool weights) {
  for (int i = 0; i < g->n; i++) {
    RtError err;
    int64_t k = numel(&g->m->bufs[g->bufs[i]]);
    const char *name = g->tensors[i].ref.name;
    const float *v = rt_checkpoint_tensor(c, name);
    if (weights && g->tensors[i].state && (!v || strchr(name, '/'))) continue; /* initialized instead */
    if (k > 0 && (!v || rt_mem_write(g->dev, g->mem[g->bufs[i]], 0, v, (size_t)k * sizeof(float), &err) != 0)) {
      rt_trainer_error(g->prog, "%s", v ? err.msg : "a checkpoint tensor vanished");
      return false;
    }
  }
  return true;
}

/* ---- --check-numerics --------------------------------------------------------------------- */

/* "parameter 'h.w'", "optimizer state 'h.w/m'", "'t12' (exp at m.nn:7:12)". */
static void describe(const RtModelDesc *m, int buf, char *out, size_t len) {
  const RtBufDesc *b = &m->bufs[buf];
  const char *src = m->buf_sources ? m->buf_sources[buf] : NULL;
  if (b->kind == RT_BUF_PARAM)
    snprintf(out, len, "parameter '%s'", b->name);
  else if (b->kind == RT_BUF_STATE)
    snprintf(out, len, "optimizer state '%s'", b->name);
  else
    snprintf(out, len, "%s '%s'%s%s%s", b->kind == RT_BUF_LOSS ? "the loss" : b->kind == RT_BUF_METRIC ? "metric" : "temp",
             b->name, src ? " (" : "", src ? src : "", src ? ")" : "");
}

int rt_guard_check_launch(RtGuardState *g, const RtLaunchDesc *l, int64_t n, int64_t step, const char *last_good,
                          RtError *err) {
  const RtModelDesc *m = g->m;
  for (int a = 0; a < l->nargs; a++) {
    int buf = l->args[a];
    const RtBufDesc *b = &m->bufs[buf];
    if (b->dtype != 0 || b->kind == RT_BUF_INPUT || b->kind == RT_BUF_LABEL || b->kind == RT_BUF_SCALARS) continue;
    bool seen = false;
    for (int k = 0; k < a && !seen; k++) seen = l->args[k] == buf;
    if (seen) continue;
    int64_t count = numel(b) * (b->batched ? n : 1);
    if (count <= 0) continue;
    if ((size_t)count > g->nprobe) {
      float *p = realloc(g->probe, (size_t)count * sizeof(float));
      if (!p) return rt_error_set(err, "out of memory checking '%s'", b->name);
      g->probe = p, g->nprobe = (size_t)count;
    }
    if (rt_mem_read(g->dev, g->mem[buf], 0, g->probe, (size_t)count * sizeof(float), err) != 0) return -1;
    for (int64_t i = 0; i < count; i++) {
      float v = g->probe[i];
      if (isfinite(v)) continue;
      char what[384];
      describe(m, buf, what, sizeof what);
      return rt_error_set(err, "non-finite value at step %lld: %s is %s at element %lld of %lld after kernel %s%s%s",
                          (long long)step, what, isnan(v) ? "nan" : v > 0 ? "inf" : "-inf", (long long)i,
                          (long long)count, m->kernel_names[l->kernel], last_good ? "; last good checkpoint: " : "",
                          last_good ? last_good : "");
    }
  }
  return 0;
}
