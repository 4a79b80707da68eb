/* test/unit/test_opencl_codegen.c - the opencl, fpga and asic targets on
 * the OpenCL device (PoCL's CPU device in CI) against the interpreter.
 *
 * Each model is compiled in-process (parse, elaborate, graph passes, lower,
 * memory plan), rendered in a dialect, built on the device through
 * runtime/device.h and trained for a few steps on random batches with the
 * trainer's launch rule (NDRange: ceil(range / 256) groups of 256; fpga:
 * one work-item).  The interpreter (f32) trains on the same batches;
 * losses, metrics and every parameter and state must agree within 1e-4
 * relative (per tensor: max |difference| / max |reference|).
 *
 * Also: the fpga source has only single-work-item kernels, the asic source
 * no double or 64-bit integer in its kernels, the schedule really tiled a
 * matmul, and a kernel that fails to build reports the build log.  Without
 * an OpenCL device the text checks run and the test ends as skipped.
 */
#include "codegen/interp/interp.h"
#include "codegen/opencl/opencl.h"
#include "codegen/descriptor.h"
#include "frontend/ast.h"
#include "support/diag.h"
#include "frontend/elab.h"
#include "passes/lower.h"
#include "runtime/device.h"
#include "runtime/rng.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "test_models.h"

#include "check.h"

static RtDevice *dev; /* NULL: no OpenCL device, device checks skipped */

enum { GROUP = 256 };
#define TOL 1e-4

/* ---- compiling ------------------------------------------------------------------------------ */

/* ---- running a program on the device ---------------------------------------------------------- */

typedef struct Run {
  const KProgram *p;
  const OclCode *c;
  RtKernel **kernels;
  RtMem **mem;
} Run;

static bool run_open(Run *r, const KProgram *p, const OclCode *c, int64_t batch, const char *what) {
  memset(r, 0, sizeof *r);
  r->p = p;
  r->c = c;
  RtError err;
  RtCode code = {RT_CODE_CL_SOURCE, c->text, c->len, c->dialect.build_options, NULL, NULL, 0};
  RtModule *mod = rt_module_load(dev, &code, &err);
  CHECK(mod != NULL, "%s: build: %s", what, err.msg);
  if (!mod) return false;
  r->kernels = calloc(p->nkernels + 1, sizeof *r->kernels);
  for (uint32_t i = 0; i < p->nkernels; i++) {
    r->kernels[i] = rt_kernel_get(dev, mod, p->kernels[i].name, &err);
    CHECK(r->kernels[i] != NULL, "%s: kernel %s: %s", what, p->kernels[i].name, err.msg);
    if (!r->kernels[i]) return false;
  }
  /* One allocation per buffer, temps of one slot sharing the largest. */
  r->mem = calloc(p->nbufs + 1, sizeof *r->mem);
  for (uint32_t i = 0; i < p->nbufs; i++) {
    const KBuffer *b = &p->bufs[i];
    if (r->mem[i]) continue;
    int64_t n = kbuf_elems(b, batch);
    bool shared = b->kind == KB_TEMP && b->slot >= 0;
    for (uint32_t j = i + 1; shared && j < p->nbufs; j++)
      if (p->bufs[j].kind == KB_TEMP && p->bufs[j].slot == b->slot && kbuf_elems(&p->bufs[j], batch) > n)
        n = kbuf_elems(&p->bufs[j], batch);
    r->mem[i] = rt_mem_alloc(dev, (size_t)(n > 0 ? n : 1) * 4, &err);
    CHECK(r->mem[i] != NULL, "%s: alloc: %s", what, err.msg);
    if (!r->mem[i]) return false;
    for (uint32_t j = i + 1; shared && j < p->nbufs; j++)
      if (p->bufs[j].kind == KB_TEMP && p->bufs[j].slot == b->slot) r->mem[j] = r->mem[i];
  }
  return true;
}

/* The trainer's launch rule (runtime/trainer.c). */
static bool run_plan(Run *r, const uint32_t *plan, uint32_t n, int64_t batch, const char *what) {
  RtError err;
  for (uint32_t i = 0; i < n; i++) {
    const Kernel *k = &r->p->kernels[plan[i]];
    RtArg args[RT_MAX_ARGS];
    for (uint32_t a = 0; a < k->nargs; a++) args[a] = rt_arg_mem(r->mem[k->args[a]]);
    args[k->nargs] = r->c->dialect.batch_i32 ? rt_arg_i32((int32_t)batch) : rt_arg_i64(batch);
    bool batched;
    int64_t range = descriptor_launch_range(k, &batched) * (batched ? batch : 1);
    uint32_t grid[3] = {1, 1, 1}, block[3] = {1, 1, 1};
    if (!r->c->dialect.single_work_item) {
      grid[0] = (uint32_t)((range + GROUP - 1) / GROUP);
      block[0] = GROUP;
    }
    if (rt_launch(dev, r->kernels[plan[i]], args, (int)k->nargs + 1, grid, block, &err)) {
      CHECK(false, "%s: launch %s: %s", what, k->name, err.msg);
      return false;
    }
  }
  return true;
}

static void write_f32(Run *r, int32_t buf, const double *v, int64_t n) {
  float *f = malloc((size_t)(n > 0 ? n : 1) * sizeof *f);
  for (int64_t i = 0; i < n; i++) f[i] = (float)v[i];
  RtError err;
  CHECK(rt_mem_write(dev, r->mem[buf], 0, f, (size_t)n * 4, &err) == 0, "write: %s", err.msg);
  free(f);
}

static double read_sum(Run *r, int32_t buf, int64_t n) {
  float *f = malloc((size_t)n * sizeof *f);
  RtError err;
  CHECK(rt_mem_read(dev, r->mem[buf], 0, f, (size_t)n * 4, &err) == 0, "read: %s", err.msg);
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += f[i];
  free(f);
  return s;
}

/* max |ref - dev| / max |ref| over a parameter or state. */
static double tensor_rel(Run *r, int32_t buf, const double *ref, int64_t n) {
  float *f = malloc((size_t)(n > 0 ? n : 1) * sizeof *f);
  RtError err;
  CHECK(rt_mem_read(dev, r->mem[buf], 0, f, (size_t)n * 4, &err) == 0, "read: %s", err.msg);
  double diff = 0, scale = 1e-30;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs(ref[i] - f[i]);
    diff = d > diff || isnan(d) ? d : diff;
    scale = fmax(scale, fabs(ref[i]));
  }
  free(f);
  return diff / scale;
}

static double rel(double a, double b) { return fabs(a - b) / fmax(1e-6, fmax(fabs(a), fabs(b))); }

/* Trains `steps` steps of `batch` (the last one a sample short) on the
 * device and in the interpreter; everything must agree. */
static void agree(const char *name, const char *src, const char *target, int64_t local_mem, int64_t batch, int steps,
                  int min_tiled) {
  char what[96];
  snprintf(what, sizeof what, "%s/%s%s", name, target, local_mem ? " (small local memory)" : "");
  Module *m = compile(name, src);
  CHECK(m != NULL, "%s does not compile", what);
  if (!m) return;
  KProgram *p = lower_program(m, &(LowerOptions){.opt_level = 2, .separate_contractions = true});
  memplan(p, batch);
  OclOptions oo = {target, local_mem, batch};
  OclCode c;
  bool ok = ocl_generate(p, &oo, &c);
  CHECK(ok, "%s: no code", what);
  CHECK(kprog_verify(p), "%s: the scheduled kernels do not verify", what);
  int tiled = 0;
  for (uint32_t i = 0; ok && i < c.sched.n; i++) tiled += c.sched.k[i].tiled;
  CHECK(tiled >= min_tiled, "%s: %d matmuls tiled, expected at least %d", what, tiled, min_tiled);
  Run r;
  if (!ok || !dev || !run_open(&r, p, &c, batch, what)) {
    if (ok) ocl_code_free(&c);
    kprog_free(p);
    ir_module_free(m);
    return;
  }
  Interp *it = interp_new(m, false);
  interp_init(it, 5);
  for (uint32_t b = 0; b < p->nbufs; b++)
    if (p->bufs[b].kind == KB_PARAM || p->bufs[b].kind == KB_STATE)
      write_f32(&r, (int32_t)b, interp_symbol(it, p->bufs[b].sym), type_numel(&p->bufs[b].type));
  int nscalars = (int)type_numel(&p->bufs[p->scalars].type);
  double *scalars = calloc((size_t)nscalars, sizeof *scalars);
  for (uint32_t s = 0, h = 0; s < m->nsyms; s++)
    if (m->syms[s].kind == SYM_HYPER) scalars[KSCALAR_HYPER0 + h++] = m->syms[s].value;

  const KBuffer *xb = &p->bufs[p->input], *yb = p->label >= 0 ? &p->bufs[p->label] : NULL;
  int64_t feat = type_numel(&xb->type);
  int64_t bound = yb && yb->type.dtype == DT_I32 ? m->syms[yb->sym].bound : 0;
  bool f32_label = yb && yb->type.dtype == DT_F32;
  RtRng rng;
  rt_rng_seed(&rng, 11);
  float *x = calloc((size_t)(batch * feat), sizeof *x);
  int32_t *yi = calloc((size_t)batch, sizeof *yi);
  float *yf = calloc((size_t)batch, sizeof *yf);
  double worst_loss = 0, worst_param = 0, worst_metric = 0;
  RtError err;
  for (int step = 1; step <= steps; step++) {
    int64_t n = step == steps ? batch - 1 : batch;
    for (int64_t i = 0; i < n * feat; i++) x[i] = (float)rt_rng_normal(&rng);
    for (int64_t i = 0; i < n; i++) {
      yi[i] = bound ? (int32_t)rt_rng_below(&rng, (uint64_t)bound) : 0;
      yf[i] = (float)rt_rng_normal(&rng);
    }
    double loss = 0, metrics[8] = {0};
    CHECK(interp_step(it, x, f32_label ? (void *)yf : (void *)yi, n, &loss, metrics) == 0, "%s: interp: %s", what,
          interp_error(it));
    CHECK(rt_mem_write(dev, r.mem[p->input], 0, x, (size_t)(n * feat) * 4, &err) == 0, "%s", err.msg);
    if (yb) CHECK(rt_mem_write(dev, r.mem[p->label], 0, f32_label ? (void *)yf : (void *)yi, (size_t)n * 4, &err) == 0, "%s", err.msg);
    scalars[KSCALAR_STEP] = step;
    scalars[KSCALAR_BATCH] = (double)n;
    write_f32(&r, p->scalars, scalars, nscalars);
    if (!run_plan(&r, p->train, p->ntrain, n, what)) break;
    double kloss = read_sum(&r, p->loss, n);
    worst_loss = fmax(worst_loss, rel(loss, kloss));
    CHECK(rel(loss, kloss) < TOL, "%s step %d: loss %.9g, device %.9g", what, step, loss, kloss);
    for (uint32_t b = 0; b < p->nbufs; b++) {
      const KBuffer *kb = &p->bufs[b];
      if (kb->kind != KB_PARAM && kb->kind != KB_STATE) continue;
      double d = tensor_rel(&r, (int32_t)b, interp_symbol(it, kb->sym), type_numel(&kb->type));
      worst_param = d > worst_param || isnan(d) ? d : worst_param;
      CHECK(d < TOL, "%s step %d: %s differs by %.3g (relative to its largest element)", what, step, kb->name, d);
    }
  }
  /* The eval plan: the same loss and metrics as the interpreter's eval. */
  double loss = 0, metrics[8] = {0};
  CHECK(interp_eval(it, x, f32_label ? (void *)yf : (void *)yi, batch, &loss, metrics) == 0, "%s", interp_error(it));
  CHECK(rt_mem_write(dev, r.mem[p->input], 0, x, (size_t)(batch * feat) * 4, &err) == 0, "%s", err.msg);
  if (yb) CHECK(rt_mem_write(dev, r.mem[p->label], 0, f32_label ? (void *)yf : (void *)yi, (size_t)batch * 4, &err) == 0, "%s", err.msg);
  scalars[KSCALAR_BATCH] = (double)batch;
  write_f32(&r, p->scalars, scalars, nscalars);
  if (run_plan(&r, p->eval, p->neval, batch, what)) {
    double kloss = read_sum(&r, p->loss, batch);
    worst_loss = fmax(worst_loss, rel(loss, kloss));
    CHECK(rel(loss, kloss) < TOL, "%s eval: loss %.9g, device %.9g", what, loss, kloss);
    for (uint32_t k = 0; k < p->nmetrics; k++) {
      double km = read_sum(&r, p->metrics[k], batch);
      /* a metric such as accuracy may flip on a near tie: allow one sample */
      double d = fabs(metrics[k] - km) / fmax(1.0, fabs(metrics[k]));
      worst_metric = fmax(worst_metric, d);
      CHECK(d < TOL || fabs(metrics[k] - km) <= 1.0, "%s eval: metric %u %.9g, device %.9g", what, k, metrics[k], km);
    }
  }
  printf("%-28s kernels=%-3u tiled=%d worst: loss %.2g, param %.2g, metric %.2g\n", what, p->ntrain, tiled,
         worst_loss, worst_param, worst_metric);
  free(x);
  free(yi);
  free(yf);
  free(scalars);
  free(r.kernels);
  free(r.mem); /* the device frees the buffers when it closes */
  interp_free(it);
  ocl_code_free(&c);
  kprog_free(p);
  ir_module_free(m);
}

/* ---- text checks ------------------------------------------------------------------------------------ */

/* The source with comments and the prelude's helper functions removed:
 * what the kernels themselves contain. */
static char *kernels_only(const char *text) {
  const char *first = strstr(text, "\n__kernel");
  char *s = nnc_xstrdup(first ? first : "");
  for (char *q = s; *q; q++) {
    if (q[0] == '/' && q[1] == '*') {
      char *end = strstr(q + 2, "*/");
      for (char *z = q; z < (end ? end + 2 : q + strlen(q)); z++) *z = ' ';
    }
  }
  return s;
}

static int count(const char *s, const char *needle) {
  int n = 0;
  for (const char *q = strstr(s, needle); q; q = strstr(q + 1, needle)) n++;
  return n;
}

/* An identifier token equal to word. */
static bool has_word(const char *s, const char *word) {
  size_t n = strlen(word);
  for (const char *q = strstr(s, word); q; q = strstr(q + 1, word)) {
    bool left = q == s || !(isalnum((unsigned char)q[-1]) || q[-1] == '_');
    bool right = !(isalnum((unsigned char)q[n]) || q[n] == '_');
    if (left && right) return true;
  }
  return false;
}

/* A number with an l/L suffix (a 64-bit literal). */
static bool has_long_literal(const char *s) {
  for (const char *q = s; *q; q++) {
    if (!isdigit((unsigned char)*q) || (q > s && (isalnum((unsigned char)q[-1]) || q[-1] == '_' || q[-1] == '.')))
      continue;
    const char *e = q;
    while (isalnum((unsigned char)*e) || *e == '.') e++;
    for (const char *z = q; z < e; z++)
      if (*z == 'l' || *z == 'L') return true;
    q = e - 1;
  }
  return false;
}

static OclCode *generate(const char *name, const char *src, const char *target, int64_t local_mem, Module **mp,
                         KProgram **pp) {
  static OclCode c;
  *mp = compile(name, src);
  CHECK(*mp != NULL, "%s does not compile", name);
  if (!*mp) return NULL;
  *pp = lower_program(*mp, &(LowerOptions){.opt_level = 2, .separate_contractions = true});
  memplan(*pp, 32);
  OclOptions oo = {target, local_mem, 0};
  bool ok = ocl_generate(*pp, &oo, &c);
  CHECK(ok, "%s/%s: no code", name, target);
  return ok ? &c : NULL;
}

static void release(OclCode *c, Module *m, KProgram *p) {
  if (c) ocl_code_free(c);
  kprog_free(p);
  ir_module_free(m);
}

static void check_texts(const char *name, const char *src) {
  Module *m;
  KProgram *p;
  OclCode *c = generate(name, src, "fpga", 0, &m, &p);
  if (c) {
    char *k = kernels_only(c->text);
    int n = count(k, "__kernel");
    CHECK(n == (int)p->nkernels, "fpga: %d kernels for %u", n, p->nkernels);
    CHECK(count(k, "__kernel __attribute__((reqd_work_group_size(1, 1, 1)))") == n, "fpga: a kernel is not single work-item");
    CHECK(!strstr(k, "get_global_id") && !strstr(k, "get_local_id") && !strstr(k, "barrier"), "fpga: NDRange builtins");
    CHECK(strstr(c->text, "#pragma unroll") && strstr(c->text, "NNC_PIPELINE"), "fpga: no loop hints");
    free(k);
  }
  release(c, m, p);
  c = generate(name, src, "asic", 0, &m, &p);
  if (c) {
    char *k = kernels_only(c->text);
    static const char *const banned[] = {"double", "long", "ulong", "size_t", "int64_t", "uint64_t", NULL};
    for (int i = 0; banned[i]; i++) CHECK(!has_word(k, banned[i]), "asic: '%s' in a kernel", banned[i]);
    CHECK(!has_long_literal(k), "asic: a 64-bit literal in a kernel");
    CHECK(has_word(k, "int") && strstr(k, ", int B)"), "asic: B is not an int");
    free(k);
  }
  release(c, m, p);
  c = generate(name, src, "opencl", 0, &m, &p);
  if (c) {
    CHECK(strstr(c->text, "get_global_id(0)") && strstr(c->text, "return;"), "opencl: no guarded NDRange kernels");
    CHECK(!has_word(c->text, "double"), "opencl: double in the source");
  }
  release(c, m, p);
}

/* A broken kernel: the build fails and the message carries the build log. */
static void check_build_error(const char *src) {
  if (!dev) return;
  Module *m;
  KProgram *p;
  OclCode *c = generate("broken", src, "opencl", 0, &m, &p);
  if (!c) return;
  char *bad = nnc_xmalloc(c->len + 64);
  const char *at = strstr(c->text, "\n__kernel");
  size_t head = at ? (size_t)(at - c->text) + 1 : 0;
  memcpy(bad, c->text, head);
  strcpy(bad + head, "__kernel void nnc_broken( { }\n");
  strcat(bad, c->text + head);
  RtError err;
  RtCode code = {RT_CODE_CL_SOURCE, bad, 0, c->dialect.build_options, NULL, NULL, 0};
  RtModule *mod = rt_module_load(dev, &code, &err);
  CHECK(mod == NULL, "a syntax error built");
  CHECK(strstr(err.msg, "build log") && strstr(err.msg, "error"), "no build log in: %s", err.msg);
  CHECK(strstr(rt_device_log(dev), "error"), "no log: %s", rt_device_log(dev));
  free(bad);
  release(c, m, p);
}

/* asic refuses buffers past 32-bit indexing. */
static void check_asic_limit(void) {
  static const char src[] =
      "model big {\n input x: f32[70000]\n label y: i32\n h = dense(x, 40000)\n loss = cross_entropy(h, y)\n}\n"
      "train big { data = idx(\"d\")\n optimizer = sgd(lr = 0.1)\n batch = 8 }\n";
  Module *m = compile("big", src);
  CHECK(m != NULL, "big does not compile");
  if (!m) return;
  KProgram *p = lower_program(m, &(LowerOptions){.opt_level = 2, .separate_contractions = true});
  int before = diag_error_count();
  OclCode c;
  OclOptions oo = {"asic", 0, 0};
  CHECK(!ocl_generate(p, &oo, &c), "asic accepted a [70000, 40000] weight");
  CHECK(diag_error_count() > before, "no error reported");
  oo.target = "opencl";
  bool ok = ocl_generate(p, &oo, &c);
  CHECK(ok, "opencl refused a [70000, 40000] weight");
  if (ok) ocl_code_free(&c);
  kprog_free(p);
  ir_module_free(m);
}

/* ---- op semantics on a hand-built kernel ----------------------------------------------------------- */

/* One kernel (no module: the verifier wants symbols, so it is not run)
 * that stores a column per op, on inputs with NaN, infinities, -0, INT_MIN,
 * zero and -1 divisors; each column must match the interpreter's rule. */

enum { NV = 10, NOPS = 12 };

/* What ir/ops.def's semantics (op_eval) give for op column c at element i,
 * f32 results rounded to float. */
static double expect(int c, int i, const float *a, const float *b, const int32_t *ia, const int32_t *ib) {
  double x = a[i], y = b[i], p = ia[i], q = ib[i];
  switch (c) {
  case 0: return op_eval(OP_MAX, DT_F32, x, y, 0);                     /* max propagates NaN */
  case 1: return op_eval(OP_MIN, DT_F32, x, y, 0);                     /* min */
  case 2: return op_eval(OP_CAST, DT_I32, (float)(x * 1e9f), 0, 0);     /* f32 -> i32 saturates, NaN -> 0 */
  case 3: return op_eval(OP_DIV, DT_I32, p, q, 0);                     /* i32 division, x / 0 = 0 */
  case 4: return op_eval(OP_WHERE, DT_F32, x, y, 7);                   /* where: NaN counts as nonzero */
  case 5: return op_eval(OP_LT, DT_F32, x, y, 0);                      /* comparisons give 1 or 0 */
  case 6: return i > 0 ? a[i - 1] : 0;                                  /* guarded load */
  case 7: return op_eval(OP_SIGN, DT_F32, x, 0, 0);                    /* sign keeps NaN */
  case 8: return op_eval(OP_ADD, DT_I32, p, q, 0);                     /* i32 wraps */
  case 9: return op_eval(OP_MUL, DT_I32, p, q, 0);
  case 10: return op_eval(OP_ABS, DT_I32, p, 0, 0);                    /* abs(INT_MIN) wraps */
  case 11: return (float)((float)op_eval(OP_POW, DT_F32, (float)fabs(x), 0.5, 0) + (float)op_eval(OP_TANH, DT_F32, y, 0, 0));
  }
  return 0;
}

static void check_semantics(const char *target) {
  if (!dev) return;
  KProgram *p = kprog_new(NULL);
  int64_t n[1] = {NV}, nk[2] = {NV, NOPS};
  KBuffer kb = {"a", KB_PARAM, type_make(DT_F32, 1, n, false), 0, -1, 0, -1};
  int32_t A = kprog_add_buffer(p, kb);
  kb.name = "b";
  int32_t Bb = kprog_add_buffer(p, kb);
  kb.name = "ia", kb.type = type_make(DT_I32, 1, n, false);
  int32_t IA = kprog_add_buffer(p, kb);
  kb.name = "ib";
  int32_t IB = kprog_add_buffer(p, kb);
  kb.name = "out", kb.type = type_make(DT_F32, 2, nk, false);
  int32_t OUT = kprog_add_buffer(p, kb);
  Kernel *k = kprog_add_kernel(p, "ops");
  int32_t v = kernel_new_var(k);
  KStmt *loop = kstmt_loop(p, v, NV, false, KL_PARALLEL);
  kstmt_append(&k->body, &k->nbody, &k->capbody, loop);
  int32_t bufs[] = {A, Bb, IA, IB, OUT};
  for (int i = 0; i < 5; i++) kernel_use_buffer(p, k, bufs[i]);
  KExpr *i1[1] = {kexpr_var(p, v)};
  KExpr *x = kexpr_load(p, A, i1, 1), *y = kexpr_load(p, Bb, i1, 1);
  KExpr *ix = kexpr_load(p, IA, i1, 1), *iy = kexpr_load(p, IB, i1, 1);
  KExpr *prev[1] = {kexpr_iadd(p, kexpr_var(p, v), kexpr_index_const(p, -1))};
  KExpr *guarded = kexpr_load(p, A, prev, 1);
  guarded->guarded = true;
  KExpr *vals[NOPS] = {
      kexpr_op(p, OP_MAX, DT_F32, x, y, NULL),
      kexpr_op(p, OP_MIN, DT_F32, x, y, NULL),
      kexpr_op(p, OP_CAST, DT_I32, kexpr_op(p, OP_MUL, DT_F32, x, kexpr_const(p, DT_F32, 1e9), NULL), NULL, NULL),
      kexpr_op(p, OP_DIV, DT_I32, ix, iy, NULL),
      kexpr_op(p, OP_WHERE, DT_F32, x, y, kexpr_const(p, DT_F32, 7)),
      kexpr_op(p, OP_LT, DT_F32, x, y, NULL),
      guarded,
      kexpr_op(p, OP_SIGN, DT_F32, x, NULL, NULL),
      kexpr_op(p, OP_ADD, DT_I32, ix, iy, NULL),
      kexpr_op(p, OP_MUL, DT_I32, ix, iy, NULL),
      kexpr_op(p, OP_ABS, DT_I32, ix, NULL, NULL),
      kexpr_op(p, OP_ADD, DT_F32, kexpr_op(p, OP_POW, DT_F32, kexpr_op(p, OP_ABS, DT_F32, x, NULL, NULL),
                                           kexpr_const(p, DT_F32, 0.5), NULL),
               kexpr_op(p, OP_TANH, DT_F32, y, NULL, NULL), NULL),
  };
  for (int c = 0; c < NOPS; c++) {
    KExpr *oi[2] = {kexpr_var(p, v), kexpr_index_const(p, c)};
    KExpr *val = vals[c]->dtype == DT_F32 ? vals[c] : kexpr_op(p, OP_CAST, DT_F32, vals[c], NULL, NULL);
    kstmt_append(&loop->body, &loop->nbody, &loop->capbody, kstmt_store(p, OUT, oi, 2, val));
  }
  NdSchedule sched;
  const CDialect *d = c_dialect_find(target);
  ocl_schedule(p, d, 1, &sched);
  OclCode c;
  memset(&c, 0, sizeof c);
  c.dialect = *d;
  c.sched = sched;
  c.text = c_emit_program(p, d, &sched, &c.len);
  float a[NV] = {1.5f, -2, NAN, 0, INFINITY, -INFINITY, 3.5f, -0.0f, 5, -7.25f};
  float b[NV] = {NAN, 3, 1, -1, 2, 0, 3.5f, 4, -INFINITY, 1e-3f};
  int32_t ia[NV] = {7, INT32_MIN, 5, -9, INT32_MAX, 100000, -7, 0, 65536, INT32_MIN};
  int32_t ib[NV] = {2, -1, 0, 4, 1, 100000, 2, -3, 65536, 1};
  Run r;
  if (run_open(&r, p, &c, 1, target)) {
    RtError err;
    CHECK(rt_mem_write(dev, r.mem[A], 0, a, sizeof a, &err) == 0, "%s", err.msg);
    CHECK(rt_mem_write(dev, r.mem[Bb], 0, b, sizeof b, &err) == 0, "%s", err.msg);
    CHECK(rt_mem_write(dev, r.mem[IA], 0, ia, sizeof ia, &err) == 0, "%s", err.msg);
    CHECK(rt_mem_write(dev, r.mem[IB], 0, ib, sizeof ib, &err) == 0, "%s", err.msg);
    uint32_t plan[1] = {0};
    float out[NV * NOPS];
    if (run_plan(&r, plan, 1, 1, target) && rt_mem_read(dev, r.mem[OUT], 0, out, sizeof out, &err) == 0) {
      for (int i = 0; i < NV; i++)
        for (int col = 0; col < NOPS; col++) {
          double want = expect(col, i, a, b, ia, ib), got = out[i * NOPS + col];
          bool same = want == got || (isnan(want) && isnan(got)) || fabs(want - got) <= 1e-6 * fmax(1, fabs(want));
          CHECK(same, "%s: op column %d, element %d: %.9g, expected %.9g", target, col, i, got, want);
        }
    }
    free(r.kernels);
    free(r.mem);
  }
  ocl_code_free(&c);
  kprog_free(p);
}

/* ---- models ------------------------------------------------------------------------------------------- */

/* Big enough for tiles: rows (the batch 33), columns 32, depth 40. */
static const char *mlp =
    "model m {\n input x: f32[40]\n label y: i32\n h = relu(dense(x, 32))\n logits = dense(h, 10)\n"
    " loss = cross_entropy(logits, y)\n metric accuracy = argmax(logits) == y\n}\n"
    "train m { data = idx(\"d\")\n optimizer = adam(lr = 0.01)\n batch = 33 }\n";

int main(void) {
  RtError err;
  dev = rt_device_open(RT_DEVICE_OPENCL, 0, 0, &err);
  if (!dev) check_skip("no OpenCL device for the device checks (%s); the text checks ran", err.msg);
  char *primitives = read_text(PRIMITIVES_NN);
  CHECK(primitives, "cannot read %s (run from test/)", PRIMITIVES_NN);
  /* every dialect (a new one is tested here without an edit); NDRange
   * dialects with local memory tile the mlp's matmuls */
  for (int t = 0; c_dialects[t]; t++) {
    const CDialect *d = c_dialects[t];
    int tiles = d->launch == CL_LAUNCH_NDRANGE && d->local_qual && d->local_mem > 0;
    if (primitives) agree("primitives", primitives, d->name, 0, 7, 3, 0);
    agree("mlp", mlp, d->name, 0, 33, 3, tiles);
    agree("custom", custom, d->name, 0, 5, 3, 0);
    agree("regression", regression, d->name, 0, 6, 3, 0);
  }
  free(primitives);
  agree("shapes", shapes, "opencl", 0, 4, 3, 0);
  agree("mlp", mlp, "asic", 1024, 33, 3, 1); /* tiles 8 deep */
  check_texts("mlp", mlp);
  check_texts("custom", custom);
  for (int t = 0; c_dialects[t]; t++) check_semantics(c_dialects[t]->name);
  check_build_error(mlp);
  check_asic_limit();
  rt_device_close(dev);
  return check_done();
}
