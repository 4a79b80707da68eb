/* ir/kernel.c - building kernel IR programs (see kernel.h).
 *
 * Everything a KProgram holds lives in its arena, except the growable
 * arrays of buffers, kernels and plans, freed with the program.  Index
 * arithmetic folds constants as it is built, so lowering can write
 * `b * 784 + k` without leaving `0 * ...` debris behind.
 */
#include "ir/kernel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

KProgram *kprog_new(Module *m) {
  KProgram *p = nnc_xcalloc(1, sizeof *p);
  p->module = m;
  p->input = p->label = p->loss = p->scalars = p->output = -1;
  return p;
}

/* Statement bodies grow on the heap (kstmt_append); everything else is in
 * the arena. */
static void free_stmt(KStmt *s) {
  for (uint32_t i = 0; i < s->nbody; i++) free_stmt(s->body[i]);
  free(s->body);
}

void kernel_free_body(Kernel *k) {
  for (uint32_t i = 0; i < k->nbody; i++) free_stmt(k->body[i]);
  free(k->body);
  k->body = NULL;
  k->nbody = k->capbody = 0;
}

void kprog_free(KProgram *p) {
  if (!p) return;
  for (uint32_t k = 0; k < p->nkernels; k++) kernel_free_body(&p->kernels[k]);
  free(p->bufs);
  free(p->kernels);
  free(p->train);
  free(p->eval);
  free(p->metrics);
  arena_free(&p->arena);
  free(p);
}

int32_t kprog_add_buffer(KProgram *p, KBuffer b) {
  b.name = arena_strdup(&p->arena, b.name);
  VEC_PUSH(p->bufs, p->nbufs, p->capbufs, b);
  return (int32_t)p->nbufs - 1;
}

Kernel *kprog_add_kernel(KProgram *p, const char *name) {
  Kernel k;
  memset(&k, 0, sizeof k);
  k.name = arena_printf(&p->arena, "k%u_%s", p->nkernels, name);
  VEC_PUSH(p->kernels, p->nkernels, p->capkernels, k);
  return &p->kernels[p->nkernels - 1];
}

int32_t kernel_new_var(Kernel *k) { return k->nvars++; }

int32_t kernel_new_temp(KProgram *p, Kernel *k, DType dt) {
  DType *types = arena_alloc(&p->arena, sizeof(DType) * (size_t)(k->ntemps + 1));
  if (k->ntemps) memcpy(types, k->temp_types, sizeof(DType) * (size_t)k->ntemps);
  types[k->ntemps] = dt;
  k->temp_types = types;
  return k->ntemps++;
}

void kernel_use_buffer(KProgram *p, Kernel *k, int32_t buf) {
  for (uint32_t i = 0; i < k->nargs; i++)
    if (k->args[i] == buf) return;
  int32_t *args = arena_alloc(&p->arena, sizeof(int32_t) * (k->nargs + 1));
  if (k->nargs) memcpy(args, k->args, sizeof(int32_t) * k->nargs);
  args[k->nargs++] = buf;
  k->args = args;
}

static KStmt *stmt(KProgram *p, KStmtKind kind) {
  KStmt *s = arena_alloc(&p->arena, sizeof *s);
  s->kind = kind;
  s->var = s->temp = s->buf = -1;
  return s;
}

KStmt *kstmt_loop(KProgram *p, int32_t var, int64_t extent, bool batched, unsigned flags) {
  KStmt *s = stmt(p, KS_LOOP);
  s->var = var;
  s->extent = extent;
  s->batched = batched;
  s->flags = flags;
  return s;
}

KStmt *kstmt_let(KProgram *p, int32_t temp, KExpr *value) {
  KStmt *s = stmt(p, KS_LET);
  s->temp = temp;
  s->value = value;
  return s;
}

KStmt *kstmt_assign(KProgram *p, int32_t temp, KExpr *value) {
  KStmt *s = stmt(p, KS_ASSIGN);
  s->temp = temp;
  s->value = value;
  return s;
}

KStmt *kstmt_store(KProgram *p, int32_t buf, KExpr *const *idx, int nidx, KExpr *value) {
  NNC_ASSERT(nidx >= 0 && nidx <= NNC_MAX_RANK + 1);
  KStmt *s = stmt(p, KS_STORE);
  s->buf = buf;
  s->nidx = (uint8_t)nidx;
  for (int i = 0; i < nidx; i++) s->idx[i] = idx[i];
  s->value = value;
  return s;
}

KStmt *kstmt_contract(KProgram *p, int32_t buf, KExpr *const *idx, int nidx, const KAxis *axes, int nfree, int nred,
                      Op combine, int32_t temp, KExpr *a, KExpr *b, KExpr *value) {
  NNC_ASSERT(nfree >= 0 && nred >= 1 && nfree + nred <= NNC_MAX_CONTRACT_AXES);
  KStmt *s = kstmt_store(p, buf, idx, nidx, value);
  s->kind = KS_CONTRACT;
  for (int i = 0; i < nfree + nred; i++) s->axes[i] = axes[i];
  s->nfree = (uint8_t)nfree;
  s->nred = (uint8_t)nred;
  s->combine = combine;
  s->temp = temp;
  s->a = a;
  s->b = b;
  return s;
}

double kcombine_identity(Op combine) {
  switch (combine) {
  case OP_MAX: return -INFINITY;
  case OP_MIN: return INFINITY;
  default: return 0;
  }
}

void kstmt_append(KStmt ***body, uint32_t *n, uint32_t *cap, KStmt *s) { VEC_PUSH(*body, *n, *cap, s); }

static KExpr *expr(KProgram *p, KExprKind kind, DType dt) {
  KExpr *e = arena_alloc(&p->arena, sizeof *e);
  e->kind = kind;
  e->dtype = dt;
  e->var = e->temp = e->buf = e->scalar = -1;
  return e;
}

KExpr *kexpr_const(KProgram *p, DType dt, double v) {
  KExpr *e = expr(p, KE_CONST, dt);
  e->value = v;
  return e;
}

KExpr *kexpr_index_const(KProgram *p, int64_t v) {
  KExpr *e = kexpr_const(p, DT_I32, (double)v);
  e->index = true;
  return e;
}

KExpr *kexpr_var(KProgram *p, int32_t var) {
  KExpr *e = expr(p, KE_VAR, DT_I32);
  e->var = var;
  e->index = true;
  return e;
}

KExpr *kexpr_temp(KProgram *p, int32_t temp, DType dt) {
  KExpr *e = expr(p, KE_TEMP, dt);
  e->temp = temp;
  return e;
}

KExpr *kexpr_load(KProgram *p, int32_t buf, KExpr *const *idx, int nidx) {
  NNC_ASSERT(buf >= 0 && (uint32_t)buf < p->nbufs && nidx <= NNC_MAX_RANK + 1);
  KExpr *e = expr(p, KE_LOAD, p->bufs[buf].type.dtype);
  e->buf = buf;
  e->nidx = (uint8_t)nidx;
  for (int i = 0; i < nidx; i++) e->idx[i] = idx[i];
  return e;
}

KExpr *kexpr_scalar(KProgram *p, int32_t which) {
  KExpr *e = expr(p, KE_SCALAR, DT_F32);
  e->scalar = which;
  return e;
}

KExpr *kexpr_batch(KProgram *p) {
  KExpr *e = expr(p, KE_BATCH, DT_I32);
  e->index = true;
  return e;
}

KExpr *kexpr_op(KProgram *p, Op op, DType dt, KExpr *a, KExpr *b, KExpr *c) {
  KExpr *e = expr(p, KE_OP, dt);
  e->op = op;
  e->a = a;
  e->b = b;
  e->c = c;
  return e;
}

static bool is_iconst(const KExpr *e, double v) { return e->kind == KE_CONST && e->index && e->value == v; }

KExpr *kexpr_iadd(KProgram *p, KExpr *a, KExpr *b) {
  if (is_iconst(a, 0)) return b;
  if (is_iconst(b, 0)) return a;
  if (a->kind == KE_CONST && b->kind == KE_CONST) return kexpr_index_const(p, (int64_t)(a->value + b->value));
  /* (x + c1) + c2 = x + (c1 + c2): a window's -pad and its padded copy's +pad cancel */
  if (b->kind == KE_CONST && b->index && a->kind == KE_OP && a->index && a->op == OP_ADD && a->b->kind == KE_CONST &&
      a->b->index)
    return kexpr_iadd(p, a->a, kexpr_index_const(p, (int64_t)(a->b->value + b->value)));
  KExpr *e = kexpr_op(p, OP_ADD, DT_I32, a, b, NULL);
  e->index = true;
  return e;
}

KExpr *kexpr_imul(KProgram *p, KExpr *a, int64_t k) {
  if (k == 1) return a;
  if (k == 0 || is_iconst(a, 0)) return kexpr_index_const(p, 0);
  if (a->kind == KE_CONST) return kexpr_index_const(p, (int64_t)a->value * k);
  KExpr *e = kexpr_op(p, OP_MUL, DT_I32, a, kexpr_index_const(p, k), NULL);
  e->index = true;
  return e;
}

int64_t kbuf_elems(const KBuffer *b, int64_t batch) {
  return type_numel(&b->type) * (b->type.batched ? batch : 1);
}

const char *kbuf_kind_name(KBufKind k) {
  static const char *names[] = {"input", "label", "param", "state", "temp", "loss", "metric", "scalars", "output"};
  return names[k];
}

KExpr *kexpr_clone(KProgram *p, const KExpr *e) {
  if (!e) return NULL;
  KExpr *c = arena_alloc(&p->arena, sizeof *c);
  *c = *e;
  for (int d = 0; d < e->nidx; d++) c->idx[d] = kexpr_clone(p, e->idx[d]);
  c->a = kexpr_clone(p, e->a);
  c->b = kexpr_clone(p, e->b);
  c->c = kexpr_clone(p, e->c);
  return c;
}
