/* test/unit/test_lower.c - lowering checked against the reference interpreter.
 *
 * Each model is compiled in-process (parse, elaborate, graph passes,
 * lower, memory plan), then trained for a few steps twice on the same
 * random batches: by the graph interpreter (f64) and by a small evaluator
 * of the kernel IR written here (f64, temporaries placed in their memory
 * slots, so a slot shared by overlapping lifetimes shows up as a wrong
 * number).  Losses, metrics and every parameter and state must agree.
 */
#include "codegen/interp/interp.h"
#include "frontend/ast.h"
#include "support/diag.h"
#include "frontend/elab.h"
#include "ir/kernel.h"
#include "passes/lower.h"
#include "runtime/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "test_models.h"

#include "check.h"

/* ---- a kernel IR evaluator (f64) ---------------------------------------------- */

typedef struct Eval {
  const KProgram *p;
  double **mem;      /* per buffer: its storage (temps alias their slot) */
  int64_t n;         /* batch size of this step */
  int64_t *vars;
  double *temps;
} Eval;

static double ev(Eval *e, const KExpr *x);

static int64_t offset(Eval *e, int32_t buf, KExpr *const *idx, int nidx, bool *inside) {
  const KBuffer *b = &e->p->bufs[buf];
  int64_t off = 0;
  int k = 0;
  *inside = true;
  if (b->type.batched) {
    int64_t i = (int64_t)ev(e, idx[k++]);
    if (i < 0 || i >= e->n) *inside = false;
    off = i;
  }
  for (int d = 0; d < b->type.rank; d++) {
    int64_t i = (int64_t)ev(e, idx[k++]);
    if (i < 0 || i >= b->type.dims[d]) *inside = false;
    off = off * b->type.dims[d] + i;
  }
  NNC_ASSERT(k == nidx);
  return off;
}

static double ev(Eval *e, const KExpr *x) {
  switch (x->kind) {
  case KE_CONST: return x->value;
  case KE_VAR: return (double)e->vars[x->var];
  case KE_TEMP: return e->temps[x->temp];
  case KE_BATCH: return (double)e->n;
  case KE_SCALAR: return e->mem[e->p->scalars][x->scalar];
  case KE_LOAD: {
    bool inside;
    int64_t off = offset(e, x->buf, x->idx, x->nidx, &inside);
    if (!inside) {
      NNC_ASSERT(x->guarded);
      return 0;
    }
    return e->mem[x->buf][off];
  }
  case KE_OP: break;
  }
  double a = x->a ? ev(e, x->a) : 0, b = x->b ? ev(e, x->b) : 0, c = x->c ? ev(e, x->c) : 0;
  return x->index ? op_eval_index(x->op, a, b, c) : op_eval(x->op, x->dtype, a, b, c);
}

static void run_stmt(Eval *e, const KStmt *s, bool outermost);

/* A contraction, straight from its definition (ir/kernel.h): axes [i, n)
 * of the reduction are left to loop over; at i == n, one step. */
static void contract_reduce(Eval *e, const KStmt *s, int i, double *t) {
  if (i == s->nfree + s->nred) {
    double term = ev(e, s->a) * (s->b ? ev(e, s->b) : 1.0);
    *t = s->combine == OP_ADD ? *t + term : s->combine == OP_MAX ? fmax(*t, term) : fmin(*t, term);
    return;
  }
  int64_t n = s->axes[i].extent * (s->axes[i].batched ? e->n : 1);
  for (int64_t v = 0; v < n; v++) {
    e->vars[s->axes[i].var] = v;
    contract_reduce(e, s, i + 1, t);
  }
}

static void contract_free(Eval *e, const KStmt *s, int i) {
  if (i == s->nfree) {
    double t = kcombine_identity(s->combine);
    contract_reduce(e, s, s->nfree, &t);
    e->temps[s->temp] = t;
    KStmt store = *s;
    store.kind = KS_STORE;
    if (s->buf >= 0) run_stmt(e, &store, false);
    return;
  }
  int64_t n = s->axes[i].extent * (s->axes[i].batched ? e->n : 1);
  for (int64_t v = 0; v < n; v++) {
    e->vars[s->axes[i].var] = v;
    contract_free(e, s, i + 1);
  }
}

static void run_stmt(Eval *e, const KStmt *s, bool outermost) {
  switch (s->kind) {
  case KS_LOOP: {
    int64_t n = s->extent * (s->batched ? e->n : 1);
    (void)outermost;
    for (int64_t i = 0; i < n; i++) {
      e->vars[s->var] = i;
      for (uint32_t k = 0; k < s->nbody; k++) run_stmt(e, s->body[k], false);
    }
    return;
  }
  case KS_LET:
  case KS_ASSIGN: e->temps[s->temp] = ev(e, s->value); return;
  case KS_STORE: {
    bool inside;
    int64_t off = offset(e, s->buf, s->idx, s->nidx, &inside);
    NNC_ASSERT(inside);
    double v = ev(e, s->value);
    if (e->p->bufs[s->buf].type.dtype == DT_I32) v = trunc(v);
    e->mem[s->buf][off] = v;
    return;
  }
  case KS_CONTRACT: contract_free(e, s, 0); return;
  }
}

static void run_plan(Eval *e, const uint32_t *plan, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    const Kernel *k = &e->p->kernels[plan[i]];
    e->vars = calloc((size_t)k->nvars + 1, sizeof(int64_t));
    e->temps = calloc((size_t)k->ntemps + 1, sizeof(double));
    for (uint32_t s = 0; s < k->nbody; s++) run_stmt(e, k->body[s], true);
    free(e->vars);
    free(e->temps);
  }
}

/* ---- models ------------------------------------------------------------------------------ */

static double rel(double a, double b) { return fabs(a - b) / fmax(1e-9, fmax(fabs(a), fabs(b))); }

/* How contractions run: as the statements mean (FORM_CONTRACT), or
 * written as loops by kernel_expand_contractions, one reduction per output
 * (FORM_DOT) or accumulating rows wherever that order applies (FORM_ROWS). */
enum { FORM_CONTRACT, FORM_DOT, FORM_ROWS };

typedef struct AllRows {
  KVisit v;
} AllRows;
static bool all_rows(KVisit *v, KStmt *s) {
  (void)v;
  if (s->kind == KS_CONTRACT)
    s->sched.rows = s->nfree > 0 && s->buf >= 0 && !kexpr_reads(s->a, s->buf) && !kexpr_reads(s->b, s->buf);
  return false;
}

static void agree_as(const char *name, const char *src, int64_t batch, int steps, int form) {
  Module *m = compile(name, src);
  CHECK(m != NULL, "%s does not compile", name);
  if (!m) return;
  KProgram *p = lower_program(m, &(LowerOptions){.opt_level = 2});
  memplan(p, batch);
  if (form != FORM_CONTRACT)
    for (uint32_t k = 0; k < p->nkernels; k++) {
      AllRows r = {{all_rows, NULL}};
      if (form == FORM_ROWS) kvisit_kernel(&r.v, &p->kernels[k]);
      kernel_expand_contractions(p, &p->kernels[k], NULL, NULL);
    }
  CHECK(kprog_verify(p), "%s: kernel IR does not verify", name);
  Interp *it = interp_new(m, true);
  interp_init(it, 5);

  /* Memory: one block per slot, others their own. */
  Eval e = {p, calloc(p->nbufs, sizeof(double *)), 0, NULL, NULL};
  double **slots = calloc((size_t)p->nslots + 1, sizeof(double *));
  int64_t *slot_size = calloc((size_t)p->nslots + 1, sizeof(int64_t));
  for (uint32_t b = 0; b < p->nbufs; b++)
    if (p->bufs[b].kind == KB_TEMP) {
      int64_t sz = kbuf_elems(&p->bufs[b], batch);
      if (sz > slot_size[p->bufs[b].slot]) slot_size[p->bufs[b].slot] = sz;
    }
  for (int32_t s = 0; s < p->nslots; s++) slots[s] = calloc((size_t)slot_size[s], sizeof(double));
  for (uint32_t b = 0; b < p->nbufs; b++) {
    const KBuffer *kb = &p->bufs[b];
    e.mem[b] = kb->kind == KB_TEMP ? slots[kb->slot] : calloc((size_t)kbuf_elems(kb, batch), sizeof(double));
    if (kb->kind == KB_PARAM || kb->kind == KB_STATE)
      memcpy(e.mem[b], interp_symbol(it, kb->sym), sizeof(double) * (size_t)type_numel(&kb->type));
  }
  int nhyper = 0;
  for (uint32_t s = 0; s < m->nsyms; s++)
    if (m->syms[s].kind == SYM_HYPER) e.mem[p->scalars][KSCALAR_HYPER0 + nhyper++] = m->syms[s].value;

  const KBuffer *xb = p->input >= 0 ? &p->bufs[p->input] : NULL, *yb = p->label >= 0 ? &p->bufs[p->label] : NULL;
  int64_t feat = xb ? type_numel(&xb->type) : 0;
  int64_t bound = yb && yb->type.dtype == DT_I32 ? m->syms[yb->sym].bound : 0;
  RtRng rng;
  rt_rng_seed(&rng, 11);
  float *x = calloc((size_t)(batch * feat + 1), sizeof(float));
  int32_t *yi = calloc((size_t)batch + 1, sizeof(int32_t));
  float *yf = calloc((size_t)batch + 1, sizeof(float));
  double worst = 0;
  for (int step = 1; step <= steps; step++) {
    int64_t n = step == steps ? batch - 1 : batch; /* a partial last batch too */
    e.n = n;
    for (int64_t i = 0; i < n * feat; i++) x[i] = (float)rt_rng_normal(&rng);
    for (int64_t i = 0; i < n; i++) {
      yi[i] = bound ? (int32_t)rt_rng_below(&rng, (uint64_t)bound) : 0;
      yf[i] = (float)rt_rng_normal(&rng);
    }
    bool f32_label = yb && yb->type.dtype == DT_F32;
    double loss = 0, metrics[8] = {0};
    interp_step(it, x, f32_label ? (void *)yf : (void *)yi, n, &loss, metrics);
    if (xb) for (int64_t i = 0; i < n * feat; i++) e.mem[p->input][i] = x[i];
    if (yb) for (int64_t i = 0; i < n; i++) e.mem[p->label][i] = f32_label ? yf[i] : yi[i];
    e.mem[p->scalars][KSCALAR_STEP] = step;
    e.mem[p->scalars][KSCALAR_BATCH] = (double)n;
    run_plan(&e, p->train, p->ntrain);
    double kloss = 0;
    for (int64_t i = 0; i < n; i++) kloss += e.mem[p->loss][i];
    CHECK(rel(loss, kloss) < 1e-9, "%s step %d: loss %.17g vs kernels %.17g", name, step, loss, kloss);
    for (uint32_t k = 0; k < p->nmetrics; k++) {
      double km = 0;
      for (int64_t i = 0; i < n; i++) km += e.mem[p->metrics[k]][i];
      CHECK(rel(metrics[k], km) < 1e-9, "%s step %d: metric %u %.17g vs %.17g", name, step, k, metrics[k], km);
    }
    for (uint32_t b = 0; b < p->nbufs; b++) {
      const KBuffer *kb = &p->bufs[b];
      if (kb->kind != KB_PARAM && kb->kind != KB_STATE) continue;
      const double *ref = interp_symbol(it, kb->sym);
      for (int64_t i = 0; i < type_numel(&kb->type); i++) {
        double r = fabs(ref[i] - e.mem[b][i]) / fmax(1e-6, fabs(ref[i]));
        if (r > worst) worst = r;
        if (r > 1e-9) {
          CHECK(false, "%s step %d: %s[%lld] = %.17g, kernels %.17g", name, step, kb->name, (long long)i, ref[i],
                e.mem[b][i]);
          break;
        }
      }
    }
  }
  /* The eval plan computes the same loss as the interpreter's eval. */
  double loss = 0, metrics[8] = {0};
  interp_eval(it, x, bound || !yb || yb->type.dtype == DT_I32 ? (void *)yi : (void *)yf, batch, &loss, metrics);
  e.n = batch;
  run_plan(&e, p->eval, p->neval);
  double kloss = 0;
  for (int64_t i = 0; i < batch; i++) kloss += e.mem[p->loss][i];
  CHECK(rel(loss, kloss) < 1e-9, "%s eval: loss %.17g vs kernels %.17g", name, loss, kloss);
  CHECK(p->neval < p->ntrain, "%s: eval plan should be smaller than the train plan", name);
  static const char *forms[] = {"contract", "dot", "rows"};
  printf("%-12s %-8s kernels=%u eval=%u slots=%d worst_param_rel=%.2g\n", name, forms[form], p->ntrain, p->neval,
         p->nslots, worst);

  for (int32_t s = 0; s < p->nslots; s++) free(slots[s]);
  for (uint32_t b = 0; b < p->nbufs; b++)
    if (p->bufs[b].kind != KB_TEMP) free(e.mem[b]);
  free(slots);
  free(slot_size);
  free(e.mem);
  free(x);
  free(yi);
  free(yf);
  interp_free(it);
  kprog_free(p);
  ir_module_free(m);
}

static const char *mnist_like =
    "model m {\n input x: f32[12]\n label y: i32\n h = relu(dense(x, 8))\n logits = dense(h, 3)\n"
    " loss = cross_entropy(logits, y)\n metric accuracy = argmax(logits) == y\n}\n"
    "train m { data = idx(\"d\")\n optimizer = adam(lr = 0.01)\n batch = 5 }\n";

static void agree(const char *name, const char *src, int64_t batch, int steps) {
  for (int form = FORM_CONTRACT; form <= FORM_ROWS; form++) agree_as(name, src, batch, steps, form);
}

int main(void) {
  agree("mnist-like", mnist_like, 5, 3);
  agree("custom", custom, 4, 3);
  agree("regression", regression, 6, 3);
  agree("shapes", shapes, 3, 3);
  return check_done();
}
