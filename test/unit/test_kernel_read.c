/* test/unit/test_kernel_read.c - the kernel IR text reads back to the same program.
 *
 * For each small model of test_models.h, at several points of the kernel
 * pipeline (lowering's unfused program; fused and planned for the cpu;
 * fused for NDRange targets and shaped by the NDRange schedule; with every
 * contraction expanded into loops), prints the program, reads the text
 * back (ir/kernel_read.c) and compares the two programs field by field:
 * what the text spells out and what the reader infers (dtypes, index flags,
 * variable and temporary counts, the module's symbols and locations).  The
 * lit tests compare texts; this compares the data structures.  Exits
 * non-zero on failure.
 */
#include "check.h"
#include "test_models.h"

#include "ir/kernel.h"
#include "passes/lower.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *memstream_buf;
static size_t memstream_len;

static char *print_str(const KProgram *p, size_t *len) {
  FILE *f = open_memstream(&memstream_buf, &memstream_len);
  kprog_print(p, f);
  fclose(f);
  char *s = memstream_buf;
  *len = memstream_len;
  memstream_buf = NULL;
  return s;
}

/* ---- comparing ----------------------------------------------------------------------- */

typedef struct Cmp {
  const KProgram *a, *b;
  const char *what; /* model and stage, for messages */
} Cmp;

/* Locations compare by what they say (file, line, column, the chain). */
static bool same_loc(const Module *ma, uint32_t la, const Module *mb, uint32_t lb) {
  for (int guard = 0; guard < 64; guard++) {
    if (!la || !lb) return la == lb;
    if (la >= ma->nlocs || lb >= mb->nlocs) return false;
    const IrLoc *x = &ma->locs[la], *y = &mb->locs[lb];
    if (strcmp(ma->files[x->file], mb->files[y->file]) || x->line != y->line || x->col != y->col) return false;
    la = x->parent;
    lb = y->parent;
  }
  return false;
}

static void same_stmts(const Cmp *c, const char *kernel, KStmt *const *a, uint32_t na, KStmt *const *b, uint32_t nb);

static void same_stmt(const Cmp *c, const char *kernel, const KStmt *a, const KStmt *b) {
  CHECK(a->kind == b->kind, "%s: %s: statement kinds %d and %d", c->what, kernel, a->kind, b->kind);
  if (a->kind != b->kind) return;
  switch (a->kind) {
  case KS_LOOP:
    CHECK(a->var == b->var && a->extent == b->extent && a->batched == b->batched && a->flags == b->flags,
          "%s: %s: loop v%d", c->what, kernel, a->var);
    CHECK(a->sched.vector == b->sched.vector && a->sched.unroll == b->sched.unroll && a->sched.tile == b->sched.tile,
          "%s: %s: schedule of the loop over v%d", c->what, kernel, a->var);
    same_stmts(c, kernel, a->body, a->nbody, b->body, b->nbody);
    return;
  case KS_LET:
  case KS_ASSIGN:
    CHECK(a->temp == b->temp && kexpr_equal(a->value, b->value), "%s: %s: let or assignment of t%d", c->what, kernel,
          a->temp);
    return;
  case KS_CONTRACT:
    CHECK(a->temp == b->temp && a->nfree == b->nfree && a->nred == b->nred && a->combine == b->combine &&
              a->sched.rows == b->sched.rows && kexpr_equal(a->a, b->a) && kexpr_equal(a->b, b->b),
          "%s: %s: contraction into t%d", c->what, kernel, a->temp);
    for (int i = 0; i < a->nfree + a->nred && i < NNC_MAX_CONTRACT_AXES; i++)
      CHECK(a->axes[i].var == b->axes[i].var && a->axes[i].extent == b->axes[i].extent &&
                a->axes[i].batched == b->axes[i].batched,
            "%s: %s: axis %d of the contraction into t%d", c->what, kernel, i, a->temp);
    break; /* and its store, below */
  case KS_STORE: break;
  }
  CHECK(a->buf == b->buf && a->nidx == b->nidx && kexpr_equal(a->value, b->value), "%s: %s: store into %%%d",
        c->what, kernel, a->buf);
  for (int i = 0; i < a->nidx && i < b->nidx; i++)
    CHECK(kexpr_equal(a->idx[i], b->idx[i]), "%s: %s: index %d of the store into %%%d", c->what, kernel, i, a->buf);
}

static void same_stmts(const Cmp *c, const char *kernel, KStmt *const *a, uint32_t na, KStmt *const *b, uint32_t nb) {
  CHECK(na == nb, "%s: %s: %u statements, read back %u", c->what, kernel, na, nb);
  for (uint32_t i = 0; i < na && i < nb; i++) same_stmt(c, kernel, a[i], b[i]);
}

static void same_module(const Cmp *c, const Module *a, const Module *b) {
  CHECK(!strcmp(a->name, b->name), "%s: module name %s, read back %s", c->what, a->name, b->name);
  CHECK(a->nsyms == b->nsyms, "%s: %u symbols, read back %u", c->what, a->nsyms, b->nsyms);
  for (uint32_t i = 0; i < a->nsyms && i < b->nsyms; i++) {
    const Symbol *x = &a->syms[i], *y = &b->syms[i];
    CHECK(x->kind == y->kind && !strcmp(x->name, y->name) && type_equal(&x->type, &y->type) &&
              x->init.kind == y->init.kind && x->init.a == y->init.a && x->init.b == y->init.b &&
              x->value == y->value && x->owner == y->owner && x->bound == y->bound && x->no_grad == y->no_grad &&
              same_loc(a, x->loc, b, y->loc),
          "%s: symbol @%s", c->what, x->name);
  }
  const TrainSpec *s = &a->train, *t = &b->train;
  CHECK(s->present == t->present && s->data == t->data && s->scale == t->scale && s->batch == t->batch &&
            s->epochs == t->epochs && s->seed == t->seed && s->shuffle == t->shuffle &&
            !strcmp(s->optimizer ? s->optimizer : "", t->optimizer ? t->optimizer : "") &&
            !strcmp(s->data_path ? s->data_path : "", t->data_path ? t->data_path : ""),
        "%s: train settings", c->what);
}

static void same_program(const Cmp *c) {
  const KProgram *a = c->a, *b = c->b;
  same_module(c, a->module, b->module);
  CHECK(a->nbufs == b->nbufs, "%s: %u buffers, read back %u", c->what, a->nbufs, b->nbufs);
  for (uint32_t i = 0; i < a->nbufs && i < b->nbufs; i++) {
    const KBuffer *x = &a->bufs[i], *y = &b->bufs[i];
    CHECK(x->kind == y->kind && !strcmp(x->name, y->name) && type_equal(&x->type, &y->type) && x->slot == y->slot &&
              x->op == y->op && same_loc(a->module, x->loc, b->module, y->loc) &&
              (x->kind > KB_STATE || x->sym == y->sym),
          "%s: buffer %%%u %s", c->what, i, x->name);
  }
  CHECK(a->input == b->input && a->label == b->label && a->loss == b->loss && a->scalars == b->scalars &&
            a->nmetrics == b->nmetrics && a->nslots == b->nslots,
        "%s: the program's buffers or slot count", c->what);
  for (uint32_t i = 0; i < a->nmetrics && i < b->nmetrics; i++)
    CHECK(a->metrics[i] == b->metrics[i], "%s: metric %u", c->what, i);
  CHECK(a->nkernels == b->nkernels, "%s: %u kernels, read back %u", c->what, a->nkernels, b->nkernels);
  for (uint32_t k = 0; k < a->nkernels && k < b->nkernels; k++) {
    const Kernel *x = &a->kernels[k], *y = &b->kernels[k];
    CHECK(!strcmp(x->name, y->name) && !strcmp(x->what ? x->what : "", y->what ? y->what : "") &&
              same_loc(a->module, x->loc, b->module, y->loc),
          "%s: kernel %s", c->what, x->name);
    CHECK(x->nvars == y->nvars && x->ntemps == y->ntemps, "%s: %s: %d vars and %d temps, read back %d and %d",
          c->what, x->name, x->nvars, x->ntemps, y->nvars, y->ntemps);
    for (int32_t t = 0; t < x->ntemps && t < y->ntemps; t++)
      CHECK(x->temp_types[t] == y->temp_types[t], "%s: %s: the dtype of t%d", c->what, x->name, t);
    CHECK(x->nargs == y->nargs && !memcmp(x->args, y->args, sizeof(int32_t) * x->nargs), "%s: %s: arguments",
          c->what, x->name);
    same_stmts(c, x->name, x->body, x->nbody, y->body, y->nbody);
  }
  CHECK(a->ntrain == b->ntrain && !memcmp(a->train, b->train, sizeof(uint32_t) * a->ntrain), "%s: train plan",
        c->what);
  CHECK(a->neval == b->neval && !memcmp(a->eval, b->eval, sizeof(uint32_t) * a->neval), "%s: eval plan", c->what);
}

/* ---- the round trip ------------------------------------------------------------------------- */

static void round_trip(const KProgram *p, const char *what) {
  size_t len = 0;
  char *text = print_str(p, &len);
  uint32_t f = diag_add_file(&nnc_diag, "round-trip.kir", text, len);
  Module *m = NULL;
  KProgram *q = kprog_read(f, &m);
  CHECK(q != NULL, "%s: the text does not read back:\n%s", what, text);
  if (q) {
    Cmp c = {p, q, what};
    same_program(&c);
    size_t len2 = 0;
    char *again = print_str(q, &len2);
    CHECK(len == len2 && !memcmp(text, again, len), "%s: the text read back prints differently", what);
    free(again);
    kprog_free(q);
    ir_module_free(m);
  }
  free(text);
}

/* Convolutions with padding and stride (guarded, strided window loads),
 * pooling, and batch norm: the training flag ($training, the scalar after
 * the hypers') and the running statistics (nograd params). */
static const char *const conv_bn =
    "model cb {\n input x: f32[2, 7, 7]\n label y: i32\n"
    " c = relu(batch_norm(conv2d(x, 3, kernel = 3, stride = 2, padding = 1)))\n"
    " p = max_pool(conv2d(c, 2, kernel = 2, padding = 1), 2)\n"
    " logits = dense(batch_norm(flatten(p)), 3)\n loss = cross_entropy(logits, y)\n"
    " metric accuracy = argmax(logits) == y\n}\n"
    "train cb { data = idx(\"d\")\n optimizer = sgd(lr = 0.1, momentum = 0.9) }\n";

/* The program reads the training flag and has nograd params: what conv_bn
 * is here for. */
static bool reads_training(KVisit *v, KExpr *e) {
  (void)v;
  return e->kind == KE_SCALAR && e->scalar == kscalar_training(2); /* lr, momentum */
}

static void check_conv_bn(const KProgram *p, const char *what) {
  bool training = false, nograd = false;
  KVisit v = {NULL, reads_training};
  for (uint32_t k = 0; k < p->nkernels; k++) training |= kvisit_kernel(&v, &p->kernels[k]);
  for (uint32_t i = 0; i < p->module->nsyms; i++) nograd |= p->module->syms[i].no_grad;
  CHECK(training && nograd, "%s: no $training (%d) or no nograd param (%d)", what, training, nograd);
}

enum { STAGE_LOWERED, STAGE_CPU, STAGE_NDRANGE, STAGE_EXPANDED, NSTAGES };
static const char *const stage_names[] = {"lowered", "cpu", "ndrange", "expanded"};

static void model(const char *name, const char *src) {
  for (int stage = 0; stage < NSTAGES; stage++) {
    Module *m = compile(name, src);
    CHECK(m != NULL, "%s does not compile", name);
    if (!m) return;
    LowerOptions lo = {.opt_level = stage == STAGE_LOWERED ? 0 : 2, .separate_contractions = stage == STAGE_NDRANGE};
    KProgram *p = lower_program(m, &lo);
    if (stage != STAGE_LOWERED) memplan(p, 32);
    if (stage == STAGE_NDRANGE) {
      NdSchedule s;
      ndrange_schedule(p, &(NdrangeOptions){.batch = 32, .local_mem = 32768, .tile_k = 16}, &s);
      ndrange_schedule_free(&s);
    }
    if (stage == STAGE_EXPANDED)
      for (uint32_t k = 0; k < p->nkernels; k++) kernel_expand_contractions(p, &p->kernels[k], NULL, NULL);
    CHECK(kprog_verify(p), "%s: the program does not verify", name);
    char what[96];
    snprintf(what, sizeof what, "%s (%s)", name, stage_names[stage]);
    round_trip(p, what);
    if (src == conv_bn) check_conv_bn(p, what);
    kprog_free(p);
    ir_module_free(m);
  }
}

/* Index marks: i64(e) makes e an index expression where its context does
 * not, i32(e) the other way; the text reads back to the same flags and
 * prints the marks again (lowering writes none, so this builds its own). */
static void test_marks(void) {
  static const char text[] =
      "; kernel IR for @m\n"
      "module @m\n"
      "\n"
      "input @x : f32[B,4]\n"
      "label @y : i32[B]\n"
      "\n"
      "buffer %0 input  @x        : f32[B,4]\n"
      "buffer %1 label  @y        : i32[B]\n"
      "buffer %2 loss   loss      : f32[B]\n"
      "; slots: 0 (0 batched, 0 fixed)\n"
      "\n"
      "kernel k0_a(%0, %1, %2)\n"
      "  for v0 in 0..B parallel {\n"
      "    %2[v0] = cast<f32>(i64(%1[v0])) + %0[v0, %1[v0] - i32(1)]\n"
      "  }\n"
      "\n"
      "train: k0_a\n"
      "eval: k0_a\n";
  diag_free(&nnc_diag);
  diag_init(&nnc_diag);
  Module *m = NULL;
  KProgram *p = kprog_read(diag_add_file(&nnc_diag, "marks.kir", text, sizeof text - 1), &m);
  CHECK(p != NULL, "the marked text does not read");
  if (!p) return;
  const KExpr *v = p->kernels[0].body[0]->body[0]->value; /* cast + load */
  const KExpr *marked = v->a->a, *idx = v->b->idx[1];
  CHECK(marked->kind == KE_LOAD && marked->index, "i64(%%1[v0]) is not an index expression");
  CHECK(!v->a->index && !v->index, "the cast and the sum are index expressions");
  CHECK(idx->index && idx->a->index && idx->a->kind == KE_LOAD, "the gathered index is not one");
  CHECK(idx->b->kind == KE_CONST && !idx->b->index, "i32(1) is an index expression");
  size_t len = 0;
  char *again = print_str(p, &len);
  CHECK(len == sizeof text - 1 && !memcmp(again, text, len), "the marks do not print back:\n%s", again);
  free(again);
  kprog_free(p);
  ir_module_free(m);
}

int main(void) {
  test_marks();
  model("custom.nn", custom);
  model("regression.nn", regression);
  model("shapes.nn", shapes);
  model("conv-bn.nn", conv_bn);
  return check_done();
}
