/* passes/lower_step.c - the training step from the lowered kernels.
 *
 * passes/lower.c emits one kernel per materialized graph value, in graph
 * order; this file arranges them into the step (passes/lower_internal.h
 * lists the calls, in lower_program's order):
 *
 * Optimizer updates are written in place into the parameter and state
 * buffers when that is safe (no later kernel reads the old value, and the
 * updating kernel reads it only at the index it writes); otherwise into a
 * temporary that a copy kernel moves back at the end of the step.  The
 * elementwise update kernels of one parameter then fuse into one kernel.
 *
 * For data-parallel training the step has two parts: the grad part (the
 * loss and every parameter's gradient, into buffers marked
 * kbuf_is_gradient) and the update part (every kernel kprog_mark_update
 * marks: clip's factor and the optimizer).  The kernels are put in that
 * order, the prediction's copy last, so that N ranks can run the grad
 * part, all-reduce the gradients and run the update part (docs/ir.md,
 * "The two parts of a step").  A kernel that writes a gradient joins no
 * update, so it stays in the grad part.
 *
 * Last, temps made unused are dropped and the train and eval plans are
 * written (the fuse pass, passes/fuse.c, does both again after fusing).
 */
#include "passes/lower.h"

#include "passes/lower_internal.h"
#include "passes/pass.h"

#include <stdlib.h>
#include <string.h>

/* ---- in-place updates ------------------------------------------------------------------ */

typedef struct Reads {
  KVisit v;
  int32_t buf;
  const KStmt *st;
  bool *other_index, any;
} Reads;

static bool note_read(KVisit *v, KExpr *e) {
  Reads *r = (Reads *)v;
  if (e->kind != KE_LOAD || e->buf != r->buf) return false;
  r->any = true;
  const KStmt *st = r->st;
  if (!st || e->nidx != st->nidx) *r->other_index = true;
  for (int i = 0; st && i < e->nidx && i < st->nidx; i++) {
    const KExpr *a = e->idx[i], *b = st->idx[i];
    if (!(a->kind == KE_VAR && b->kind == KE_VAR && a->var == b->var)) *r->other_index = true;
  }
  return false;
}

/* Does kernel k read buf?  Sets *other_index when a read uses another
 * index than the store `st` (which writes at its loop variables). */
static bool kernel_reads(const Kernel *k, int32_t buf, const KStmt *st, bool *other_index) {
  Reads r = {{NULL, note_read}, buf, st, other_index, false};
  kvisit_kernel(&r.v, k);
  return r.any;
}

/* Records kernel k's stores and loads in u's first writers and last
 * readers. */
typedef struct NoteAccess {
  KVisit v;
  UpdatePlacement *u;
  int32_t k;
} NoteAccess;
static bool note_store(KVisit *v, KStmt *s) {
  NoteAccess *n = (NoteAccess *)v;
  if (kstmt_is_store(s) && n->u->first_writer[s->buf] < 0) n->u->first_writer[s->buf] = n->k;
  return false;
}
static bool note_load(KVisit *v, KExpr *e) {
  NoteAccess *n = (NoteAccess *)v;
  if (e->kind == KE_LOAD && n->u->last_reader[e->buf] < n->k) n->u->last_reader[e->buf] = n->k;
  return false;
}
void lower_note_kernel(UpdatePlacement *u, uint32_t k) {
  NoteAccess n = {{note_store, note_load}, u, (int32_t)k};
  kvisit_kernel(&n.v, &u->p->kernels[k]);
}

void lower_updates_begin(UpdatePlacement *u, KProgram *p) {
  size_t nb = p->nbufs ? p->nbufs : 1;
  u->p = p;
  u->first_writer = nnc_xmalloc(nb * sizeof(int32_t));
  u->last_reader = nnc_xmalloc(nb * sizeof(int32_t));
  u->rename = nnc_xmalloc(nb * sizeof(int32_t));
  for (uint32_t b = 0; b < nb; b++) u->first_writer[b] = u->last_reader[b] = -1, u->rename[b] = (int32_t)b;
  for (uint32_t k = 0; k < p->nkernels; k++) lower_note_kernel(u, k);
}

/* Renames buffers through map (temps that became their update's parameter
 * or state buffer) in every load and store.  No buffer is renamed to one
 * that is renamed again, so a load node shared by two parents may be
 * visited twice. */
typedef struct RenameBufs {
  KVisit v;
  const int32_t *map;
} RenameBufs;
static bool rename_store(KVisit *v, KStmt *s) {
  if (kstmt_is_store(s)) s->buf = ((RenameBufs *)v)->map[s->buf];
  return false;
}
static bool rename_load(KVisit *v, KExpr *e) {
  if (e->kind == KE_LOAD) e->buf = ((RenameBufs *)v)->map[e->buf];
  return false;
}

static void rename_kernel(Kernel *k, const int32_t *map) {
  RenameBufs r = {{rename_store, rename_load}, map};
  kvisit_kernel(&r.v, k);
  /* The same buffer may now be listed twice: drop the repeat. */
  uint32_t o = 0;
  for (uint32_t i = 0; i < k->nargs; i++) {
    int32_t b = map[k->args[i]];
    bool dup = false;
    for (uint32_t j = 0; j < o; j++) dup |= k->args[j] == b;
    if (!dup) k->args[o++] = b;
  }
  k->nargs = o;
}

/* Moves update `tmp` into its symbol's buffer `dst` when that is safe;
 * otherwise the caller appends a copy kernel.  See the file comment.  The
 * move is a rename recorded in u->rename, applied to every kernel once all
 * updates are placed: no later check asks about a renamed buffer (each
 * update has its own temp and its own destination). */
bool lower_place_update(UpdatePlacement *u, int32_t tmp, int32_t dst) {
  KProgram *p = u->p;
  const KStmt *st = NULL;
  int32_t kw = u->first_writer[tmp];
  for (uint32_t i = 0; kw >= 0 && !st && i < p->kernels[kw].nbody; i++) st = kstmt_find_store(p->kernels[kw].body[i], tmp);
  bool safe = kw >= 0 && p->kernels[kw].nbody == 1 && u->last_reader[dst] <= kw;
  if (safe) {
    bool other = false;
    kernel_reads(&p->kernels[kw], dst, st, &other);
    safe = !other;
  }
  /* The writer may read tmp only where it stores it: renamed to dst, a read
   * of another element would see the new value of that element. */
  if (safe) {
    bool other = false;
    kernel_reads(&p->kernels[kw], tmp, st, &other);
    safe = !other;
  }
  if (safe) {
    u->rename[tmp] = dst;
    p->bufs[tmp].kind = KB_TEMP;
    p->bufs[tmp].slot = -2; /* unused: memplan skips it */
    nnc_stat_add("lower", "inplace_updates", 1);
    return true;
  }
  nnc_stat_add("lower", "update_copies", 1);
  return false;
}

void lower_updates_end(UpdatePlacement *u) {
  for (uint32_t k = 0; k < u->p->nkernels; k++) rename_kernel(&u->p->kernels[k], u->rename);
  free(u->first_writer);
  free(u->last_reader);
  free(u->rename);
}

/* ---- update fusion --------------------------------------------------------------------- */

/* Renames loop variables (binders and uses) through map. */
typedef struct RenameVars {
  KVisit v;
  const int32_t *map;
  int32_t nmap;
} RenameVars;
static bool rename_loop_var(KVisit *v, KStmt *s) {
  RenameVars *r = (RenameVars *)v;
  int32_t *vars[NNC_MAX_CONTRACT_AXES];
  for (int i = kstmt_binds(s, vars) - 1; i >= 0; i--)
    if (*vars[i] < r->nmap) *vars[i] = r->map[*vars[i]];
  return false;
}
static bool rename_var(KVisit *v, KExpr *e) {
  RenameVars *r = (RenameVars *)v;
  if (e->kind == KE_VAR && e->var < r->nmap) e->var = r->map[e->var];
  return false;
}
static void rename_vars_stmt(KStmt *s, const int32_t *map, int32_t nmap) {
  RenameVars r = {{rename_loop_var, rename_var}, map, nmap};
  kvisit_stmt(&r.v, s);
}

/* A map kernel: nested unbatched loops (no reductions, no temps) whose
 * innermost body is only stores. */
static bool map_shape(const Kernel *k, int64_t *ext, int *depth, const KStmt **leaf) {
  if (k->nbody != 1 || k->ntemps || k->body[0]->kind != KS_LOOP) return false;
  const KStmt *s = k->body[0];
  int d = 0;
  for (;;) {
    if (s->batched || d == NNC_MAX_RANK + 1) return false;
    ext[d++] = s->extent;
    if (s->nbody == 1 && s->body[0]->kind == KS_LOOP) {
      s = s->body[0];
      continue;
    }
    break;
  }
  for (uint32_t i = 0; i < s->nbody; i++)
    if (s->body[i]->kind != KS_STORE) return false;
  *depth = d;
  *leaf = s;
  return true;
}

/* Does `next` read what `prev` stores only at the index prev stores it?
 * (Loop variables correspond by depth; both are map kernels.) */
static bool reads_only_same_index(const Kernel *prev, const Kernel *next) {
  const KStmt *inner = prev->body[0];
  while (inner->body[0]->kind == KS_LOOP) inner = inner->body[0];
  /* Map next's vars onto prev's by nesting depth for the comparison. */
  int32_t pv[NNC_MAX_RANK + 1], nv[NNC_MAX_RANK + 1];
  int d = 0;
  for (const KStmt *a = prev->body[0], *b = next->body[0]; a->kind == KS_LOOP; a = a->body[0], b = b->body[0], d++)
    pv[d] = a->var, nv[d] = b->var;
  for (uint32_t i = 0; i < inner->nbody; i++) {
    const KStmt *st = inner->body[i];
    if (st->kind != KS_STORE) return false;
    bool other = false;
    /* A store in prev indexed by its vars equals a read in next indexed by
     * the vars at the same depths. */
    KStmt probe = *st;
    KExpr idx[NNC_MAX_RANK + 1];
    for (int k = 0; k < st->nidx; k++) {
      if (st->idx[k]->kind != KE_VAR) return false;
      int depth = -1;
      for (int j = 0; j < d; j++)
        if (pv[j] == st->idx[k]->var) depth = j;
      if (depth < 0) return false;
      idx[k] = *st->idx[k];
      idx[k].var = nv[depth];
      probe.idx[k] = &idx[k];
    }
    kernel_reads(next, st->buf, &probe, &other);
    if (other) return false;
  }
  return true;
}

uint32_t lower_union_args(const Kernel *a, const Kernel *b) {
  uint32_t n = a->nargs;
  for (uint32_t i = 0; i < b->nargs; i++) {
    bool have = false;
    for (uint32_t j = 0; j < a->nargs && !have; j++) have = a->args[j] == b->args[i];
    n += !have;
  }
  return n;
}

/* Does k store a parameter's gradient?  Such a kernel (a conv bias's
 * gradient, reduced over positions after the batch sum, can come among
 * the updates in graph order) belongs to the grad part of the step and
 * joins no update. */
static bool writes_gradient(const KProgram *p, const Kernel *k) {
  for (uint32_t a = 0; a < k->nargs; a++)
    if (kbuf_is_gradient(&p->bufs[k->args[a]]) && kernel_writes(k, k->args[a])) return true;
  return false;
}

/* Fuses consecutive update kernels that loop over the same unbatched
 * domain into one (Adam: m, v and p of one parameter), up to
 * LOWER_MAX_FUSED_ARGS buffers.  Each later body's loop variables are
 * renamed to the first kernel's.  Whole-step fusion (passes/fuse.c) runs
 * after this, on every kernel. */
void lower_fuse_updates(KProgram *p, uint32_t first) {
  uint32_t out = first;
  for (uint32_t k = first; k < p->nkernels; k++) {
    Kernel *kk = &p->kernels[k];
    if (out > first) {
      Kernel *prev = &p->kernels[out - 1];
      int64_t e1[8], e2[8];
      int d1, d2;
      const KStmt *s1, *s2;
      if (map_shape(prev, e1, &d1, &s1) && map_shape(kk, e2, &d2, &s2) && d1 == d2 &&
          !memcmp(e1, e2, sizeof(int64_t) * (size_t)d1) && lower_union_args(prev, kk) <= LOWER_MAX_FUSED_ARGS &&
          reads_only_same_index(prev, kk) && !writes_gradient(p, prev) && !writes_gradient(p, kk)) {
        /* Rename kk's loop vars to prev's, then move its store into prev's innermost loop. */
        int32_t map[16];
        const KStmt *a = prev->body[0], *b = kk->body[0];
        for (int i = 0; i < 16; i++) map[i] = i + prev->nvars;
        for (int i = 0; i < d1; i++, a = a->body[0], b = b->body[0]) map[b->var] = a->var;
        rename_vars_stmt(kk->body[0], map, kk->nvars < 16 ? kk->nvars : 16);
        KStmt *inner = (KStmt *)s1;
        for (uint32_t i = 0; i < s2->nbody; i++) kstmt_append(&inner->body, &inner->nbody, &inner->capbody, s2->body[i]);
        for (uint32_t i = 0; i < kk->nargs; i++) kernel_use_buffer(p, prev, kk->args[i]);
        kernel_free_body(kk); /* its loops; the moved store lives in the arena */
        prev->what = "optimizer update (fused)";
        nnc_stat_add("lower", "update_kernels_fused", 1);
        continue;
      }
    }
    if (out != k) p->kernels[out] = p->kernels[k];
    out++;
  }
  p->nkernels = out;
}

/* ---- the two parts of the step --------------------------------------------------------- */

/* Puts the update side of the step (kprog_mark_update) after every other
 * kernel, each side in its order: the grad part of the train plan, then
 * the update part.  Safe: an update-side kernel reads what the kernels
 * before it wrote (one writer per buffer here), and writes parameters and
 * states that no later kernel reads the old value of (lower_place_update),
 * or temps that only the update side reads. */
void lower_order_step(KProgram *p) {
  if (!p->nkernels) return;
  bool *upd = nnc_xcalloc(p->nkernels, 1);
  kprog_mark_update(p, upd);
  Kernel *ks = nnc_xmalloc(p->nkernels * sizeof *ks);
  uint32_t n = 0;
  for (int side = 0; side < 3; side++) /* grad part, update part, the prediction's copy last */
    for (uint32_t k = 0; k < p->nkernels; k++) {
      int is = lower_predict_only(p, &p->kernels[k]) ? 2 : upd[k] ? 1 : 0;
      if (is == side) ks[n++] = p->kernels[k];
    }
  memcpy(p->kernels, ks, p->nkernels * sizeof *ks);
  free(ks);
  free(upd);
}

/* ---- dropped buffers ------------------------------------------------------------------- */

/* Renumbers buffer references.  Expression nodes may be shared within a
 * kernel (a loaded value used twice), so references first move out of the
 * way (buf + MOVED), then to their new numbers: a shared load is
 * renumbered once. */
typedef struct Remap {
  KVisit v;
  const int32_t *map;
  bool phase2;
} Remap;
enum { MOVED = 1 << 30 }; /* phase 1 moves numbers out of the way: buf + MOVED */
static int32_t remap_buf(const Remap *r, int32_t buf) {
  if (buf < 0) return buf; /* a contraction without a store */
  if (!r->phase2) return buf < MOVED ? buf + MOVED : buf;
  return buf >= MOVED ? r->map[buf - MOVED] : buf;
}
static bool remap_store(KVisit *v, KStmt *s) {
  if (s->kind == KS_STORE || s->kind == KS_CONTRACT) s->buf = remap_buf((Remap *)v, s->buf);
  return false;
}
static bool remap_load(KVisit *v, KExpr *e) {
  if (e->kind == KE_LOAD) e->buf = remap_buf((Remap *)v, e->buf);
  return false;
}
static void remap_stmt(KStmt *s, const int32_t *map, bool phase2) {
  Remap r = {{remap_store, remap_load}, map, phase2};
  kvisit_stmt(&r.v, s);
}

/* Removes temps marked slot -2 (made unused by in-place updates or
 * fusion), renumbering every buffer reference. */
void lower_drop_buffers(KProgram *p) {
  int32_t *map = nnc_xmalloc(sizeof(int32_t) * (p->nbufs ? p->nbufs : 1));
  uint32_t n = 0;
  for (uint32_t b = 0; b < p->nbufs; b++) {
    map[b] = p->bufs[b].slot == -2 ? -1 : (int32_t)n;
    if (map[b] >= 0) p->bufs[n++] = p->bufs[b];
  }
  p->nbufs = n;
  for (uint32_t k = 0; k < p->nkernels; k++) {
    Kernel *kk = &p->kernels[k];
    for (uint32_t i = 0; i < kk->nbody; i++) remap_stmt(kk->body[i], map, false);
    for (uint32_t i = 0; i < kk->nbody; i++) remap_stmt(kk->body[i], map, true);
    uint32_t o = 0; /* a dropped buffer leaves the arguments (a kernel read from text may list one it never touches) */
    for (uint32_t i = 0; i < kk->nargs; i++)
      if (map[kk->args[i]] >= 0) kk->args[o++] = map[kk->args[i]];
    kk->nargs = o;
  }
  int32_t *fixed[] = {&p->input, &p->label, &p->loss, &p->scalars, &p->output};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    if (*fixed[i] >= 0) *fixed[i] = map[*fixed[i]];
  for (uint32_t i = 0; i < p->nmetrics; i++) p->metrics[i] = map[p->metrics[i]];
  free(map);
}

/* ---- plans ----------------------------------------------------------------------------- */

void lower_mark_eval(const KProgram *p, bool *run) {
  bool *need = nnc_xcalloc(p->nbufs ? p->nbufs : 1, 1);
  memset(run, 0, p->nkernels);
  if (p->loss >= 0) need[p->loss] = true;
  if (p->output >= 0) need[p->output] = true;
  for (uint32_t i = 0; i < p->nmetrics; i++) need[p->metrics[i]] = true;
  for (uint32_t k = p->nkernels; k > 0; k--) {
    const Kernel *kk = &p->kernels[k - 1];
    bool needed = false;
    for (uint32_t a = 0; a < kk->nargs; a++)
      if (need[kk->args[a]] && kernel_writes(kk, kk->args[a])) needed = true;
    if (!needed) continue;
    run[k - 1] = true;
    for (uint32_t a = 0; a < kk->nargs; a++) {
      int32_t b = kk->args[a];
      if (p->bufs[b].kind == KB_PARAM || p->bufs[b].kind == KB_STATE) continue; /* read, not produced */
      need[b] = true;
    }
  }
  free(need);
}

bool lower_predict_only(const KProgram *p, const Kernel *k) {
  bool writes = false;
  for (uint32_t a = 0; a < k->nargs; a++) {
    if (!kernel_writes(k, k->args[a])) continue;
    if (p->bufs[k->args[a]].kind != KB_OUTPUT) return false;
    writes = true;
  }
  return writes;
}

void lower_build_plans(KProgram *p) {
  p->ntrain = p->neval = 0;
  for (uint32_t k = 0; k < p->nkernels; k++) {
    const char *name = p->kernels[k].name, *d = name + 1; /* k<N>_NAME -> NAME */
    while (*d >= '0' && *d <= '9') d++;
    if (name[0] == 'k' && d > name + 1 && *d == '_') name = d + 1;
    p->kernels[k].name = arena_printf(&p->arena, "k%u_%s", k, name);
    if (!lower_predict_only(p, &p->kernels[k])) VEC_PUSH(p->train, p->ntrain, p->captrain, k);
  }
  bool *run = nnc_xcalloc(p->nkernels ? p->nkernels : 1, 1);
  lower_mark_eval(p, run);
  for (uint32_t k = 0; k < p->nkernels; k++)
    if (run[k]) VEC_PUSH(p->eval, p->neval, p->capeval, k);
  free(run);
}
