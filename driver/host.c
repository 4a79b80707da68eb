/* driver/host.c - the NncHost table every backend, built in or plugin,
 * calls (include/nnc/backend.h), and host_compile, which runs one backend.
 *
 * The opaque handles are nnc's own structures: an NncProgram is a KProgram,
 * an NncKernel a Kernel, an NncStmt a KStmt, an NncExpr a KExpr.  The
 * accessors below are read-only views of ir/kernel.h.
 */
#include "driver/host.h"

#include "codegen/descriptor.h"
#include "driver/library.h"
#include "driver/link.h"
#include "driver/process.h"
#include "support/diag.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef NNC_VERSION
#define NNC_VERSION "unknown"
#endif

struct NncCompile {
  const NncBackend *b;
  KProgram *kp;
  const Options *o;
  LinkTemp tmp;
  bool tmp_open;
  LinkRuntime rt;
  bool have_rt;
  char batch[32];
};

#define KP(p) ((const KProgram *)(p))
#define KK(k) ((const Kernel *)(k))
#define KS(s) ((const KStmt *)(s))
#define KE(e) ((const KExpr *)(e))

/* ---- the compile call ------------------------------------------------------------------- */

static const NncProgram *h_program(NncCompile *c) { return (const NncProgram *)c->kp; }
static const char *h_target(NncCompile *c) { return c->b->name; }
static void *h_backend_user(NncCompile *c) { return c->b->user; }
static const char *h_output(NncCompile *c) { return c->o->output; }
static const char *h_emit(NncCompile *c) { return c->o->emit == EMIT_BACKEND ? c->o->emit_name : NULL; }
static int h_opt_level(NncCompile *c) { return c->o->opt_level; }
static int h_verbose(NncCompile *c) { return c->o->verbose; }

static const char *h_option(NncCompile *c, const char *key) {
  const Options *o = c->o;
  const char *v = options_backend_value(o, key);
  if (v) return v;
  if (!strcmp(key, "batch") && o->batch > 0) { /* nnc's --batch, which --run reads too */
    snprintf(c->batch, sizeof c->batch, "%lld", (long long)o->batch);
    return c->batch;
  }
  return NULL;
}

static bool open_temp(NncCompile *c) {
  if (!c->tmp_open) c->tmp_open = link_temp_open(&c->tmp, c->o->verbose);
  return c->tmp_open;
}

static const char *h_temp_file(NncCompile *c, const char *name) {
  if (!open_temp(c)) return NULL;
  if (strchr(name, '/') || !*name) {
    diag_error_plain("a temporary file name must not be empty or contain '/': '%s'", name);
    return NULL;
  }
  return link_temp_file(&c->tmp, name);
}

/* ---- diagnostics ------------------------------------------------------------------------ */

static void h_diag(NncCompile *c, NncDiagLevel level, const NncKernel *k, const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const Module *m = c && c->kp ? c->kp->module : NULL;
  uint32_t inner = k ? KK(k)->loc : 0, loc = inner;
  /* At the user's line (the outermost call), like nnc's own errors, with a
   * note at the line in the callee (a stdlib layer, say) it computes. */
  while (m && loc && loc < m->nlocs && m->locs[loc].parent && m->locs[loc].parent < m->nlocs) loc = m->locs[loc].parent;
  SrcLoc s = ir_diag_loc(m, loc);
  if (!s.file) {
    if (level == NNC_DIAG_ERROR) diag_error_plain("%s", msg);
    else fprintf(stderr, "nnc: %s: %s\n", level == NNC_DIAG_WARNING ? "warning" : "note", msg);
    return;
  }
  if (level == NNC_DIAG_ERROR) diag_error(s, "%s", msg);
  else if (level == NNC_DIAG_WARNING) diag_warning(s, "%s", msg);
  else diag_note(s, "%s", msg);
  SrcLoc in = inner != loc ? ir_diag_loc(m, inner) : (SrcLoc){0, 0, 0};
  if (in.file) diag_note(in, "in the code of kernel %s, inlined from here", KK(k)->name);
}

static int h_error_count(void) { return diag_error_count(); }

/* ---- the program -------------------------------------------------------------------------- */

static const char *h_program_name(const NncProgram *p) {
  const Module *m = KP(p)->module;
  return m && m->name ? m->name : "model";
}
static int h_num_buffers(const NncProgram *p) { return (int)KP(p)->nbufs; }
static const KBuffer *buf_of(const NncProgram *p, int i) {
  if (i < 0 || (uint32_t)i >= KP(p)->nbufs) nnc_internal_error(__FILE__, __LINE__, "backend asked for buffer %d", i);
  return &KP(p)->bufs[i];
}
static const char *h_buffer_name(const NncProgram *p, int i) { return buf_of(p, i)->name; }
static NncBufKind h_buffer_kind(const NncProgram *p, int i) { return (NncBufKind)buf_of(p, i)->kind; }
static NncDType h_buffer_dtype(const NncProgram *p, int i) {
  return buf_of(p, i)->type.dtype == DT_F32 ? NNC_F32 : NNC_I32;
}
static int h_buffer_rank(const NncProgram *p, int i) { return buf_of(p, i)->type.rank; }
static int64_t h_buffer_dim(const NncProgram *p, int i, int axis) {
  const KBuffer *b = buf_of(p, i);
  return axis >= 0 && axis < b->type.rank ? b->type.dims[axis] : 0;
}
static int h_buffer_batched(const NncProgram *p, int i) { return buf_of(p, i)->type.batched; }
static int h_buffer_slot(const NncProgram *p, int i) {
  const KBuffer *b = buf_of(p, i);
  return b->kind == KB_TEMP ? b->slot : -1;
}
static int64_t h_buffer_elems(const NncProgram *p, int i, int64_t batch) { return kbuf_elems(buf_of(p, i), batch); }
static int h_num_kernels(const NncProgram *p) { return (int)KP(p)->nkernels; }
static const NncKernel *h_kernel(const NncProgram *p, int i) {
  if (i < 0 || (uint32_t)i >= KP(p)->nkernels) nnc_internal_error(__FILE__, __LINE__, "backend asked for kernel %d", i);
  return (const NncKernel *)&KP(p)->kernels[i];
}
static int h_plan_length(const NncProgram *p, NncPlan plan) {
  return (int)(plan == NNC_PLAN_TRAIN ? KP(p)->ntrain : KP(p)->neval);
}
static int h_plan_kernel(const NncProgram *p, NncPlan plan, int i) {
  return (int)(plan == NNC_PLAN_TRAIN ? KP(p)->train[i] : KP(p)->eval[i]);
}

/* ---- kernels, statements, expressions ------------------------------------------------------- */

static const char *h_kernel_name(const NncKernel *k) { return KK(k)->name; }
static const char *h_kernel_what(const NncKernel *k) { return KK(k)->what ? KK(k)->what : ""; }
static int h_kernel_num_args(const NncKernel *k) { return (int)KK(k)->nargs; }
static int h_kernel_arg(const NncKernel *k, int i) { return KK(k)->args[i]; }
static int h_kernel_num_vars(const NncKernel *k) { return KK(k)->nvars; }
static int h_kernel_num_temps(const NncKernel *k) { return KK(k)->ntemps; }
static NncDType h_kernel_temp_dtype(const NncKernel *k, int t) {
  return KK(k)->temp_types[t] == DT_F32 ? NNC_F32 : NNC_I32;
}
static int h_kernel_num_stmts(const NncKernel *k) { return (int)KK(k)->nbody; }
static const NncStmt *h_kernel_stmt(const NncKernel *k, int i) { return (const NncStmt *)KK(k)->body[i]; }
static int64_t h_kernel_range(const NncKernel *k, int *batched) {
  bool b = false;
  int64_t r = descriptor_launch_range(KK(k), &b);
  if (batched) *batched = b;
  return r;
}
static NncLoc h_kernel_loc(const NncProgram *p, const NncKernel *k) {
  NncLoc r = {NULL, 0, 0};
  const Module *m = KP(p)->module;
  uint32_t loc = KK(k)->loc;
  if (!m || !loc || loc >= m->nlocs) return r;
  while (m->locs[loc].parent && m->locs[loc].parent < m->nlocs) loc = m->locs[loc].parent; /* the user's line */
  const IrLoc *l = &m->locs[loc];
  if (l->file && l->file < m->nfiles) r.file = m->files[l->file];
  r.line = (int)l->line, r.col = (int)l->col;
  return r;
}

static NncStmtKind h_stmt_kind(const NncStmt *s) { return (NncStmtKind)KS(s)->kind; }
static int h_loop_var(const NncStmt *s) { return KS(s)->var; }
static int64_t h_loop_extent(const NncStmt *s, int *batched) {
  if (batched) *batched = KS(s)->batched;
  return KS(s)->extent;
}
static unsigned h_loop_flags(const NncStmt *s) { return KS(s)->flags; }
static int64_t h_loop_sched(const NncStmt *s, NncSched w) {
  return w == NNC_SCHED_VECTOR ? KS(s)->sched.vector : w == NNC_SCHED_UNROLL ? KS(s)->sched.unroll : KS(s)->sched.tile;
}
static int h_stmt_num_body(const NncStmt *s) { return KS(s)->kind == KS_LOOP ? (int)KS(s)->nbody : 0; }
static const NncStmt *h_stmt_body(const NncStmt *s, int i) { return (const NncStmt *)KS(s)->body[i]; }
static int h_stmt_temp(const NncStmt *s) { return KS(s)->temp; }
static int h_stmt_buffer(const NncStmt *s) { return KS(s)->buf; }
static int h_stmt_num_indices(const NncStmt *s) { return kstmt_is_store(KS(s)) ? KS(s)->nidx : 0; }
static const NncExpr *h_stmt_index(const NncStmt *s, int i) { return (const NncExpr *)KS(s)->idx[i]; }
static const NncExpr *h_stmt_value(const NncStmt *s) { return (const NncExpr *)KS(s)->value; }

static int h_contract_num_axes(const NncStmt *s, int *nfree) {
  if (nfree) *nfree = KS(s)->kind == KS_CONTRACT ? KS(s)->nfree : 0;
  return KS(s)->kind == KS_CONTRACT ? KS(s)->nfree + KS(s)->nred : 0;
}
static int h_contract_axis(const NncStmt *s, int i, int64_t *extent, int *batched) {
  const KAxis *x = &KS(s)->axes[i];
  if (extent) *extent = x->extent;
  if (batched) *batched = x->batched;
  return x->var;
}
static NncOp h_op(Op op);
static NncOp h_contract_combine(const NncStmt *s) { return h_op(KS(s)->combine); }
static const NncExpr *h_contract_factor(const NncStmt *s, int i) {
  return (const NncExpr *)(i == 0 ? KS(s)->a : i == 1 ? KS(s)->b : NULL);
}

static NncExprKind h_expr_kind(const NncExpr *e) { return (NncExprKind)KE(e)->kind; }
static NncDType h_expr_dtype(const NncExpr *e) { return KE(e)->dtype == DT_F32 ? NNC_F32 : NNC_I32; }
static int h_expr_is_index(const NncExpr *e) { return KE(e)->index; }
static double h_expr_const(const NncExpr *e) { return KE(e)->value; }
static int h_expr_var(const NncExpr *e) { return KE(e)->var; }
static int h_expr_temp(const NncExpr *e) { return KE(e)->temp; }
static int h_expr_buffer(const NncExpr *e) { return KE(e)->buf; }
static int h_expr_guarded(const NncExpr *e) { return KE(e)->guarded; }
static int h_expr_num_indices(const NncExpr *e) { return KE(e)->kind == KE_LOAD ? KE(e)->nidx : 0; }
static const NncExpr *h_expr_index(const NncExpr *e, int i) { return (const NncExpr *)KE(e)->idx[i]; }
static int h_expr_scalar(const NncExpr *e) { return KE(e)->scalar; }
static NncOp h_expr_op(const NncExpr *e) { return KE(e)->kind == KE_OP ? h_op(KE(e)->op) : NNC_OP_UNKNOWN; }
/* ir/ops.def's public numbers; test_ir checks they are the header's. */
static NncOp h_op(Op op) { return (unsigned)op < OP_COUNT ? (NncOp)ir_ops[op].nnc_op : NNC_OP_UNKNOWN; }
static const char *h_expr_op_name(const NncExpr *e) {
  return KE(e)->kind == KE_OP && KE(e)->op < OP_COUNT ? ir_ops[KE(e)->op].name : "";
}
static int h_expr_num_operands(const NncExpr *e) {
  if (KE(e)->kind != KE_OP) return 0;
  return KE(e)->c ? 3 : KE(e)->b ? 2 : KE(e)->a ? 1 : 0;
}
static const NncExpr *h_expr_operand(const NncExpr *e, int i) {
  return (const NncExpr *)(i == 0 ? KE(e)->a : i == 1 ? KE(e)->b : KE(e)->c);
}

/* ---- building the trainer --------------------------------------------------------------------- */

/* The code a backend hands over: its kind from what the backend declares. */
static DescriptorCode code_of(NncCompile *c, const char *device, const char *code, uint64_t size,
                              const char *options) {
  DescriptorCode d = {descriptor_code_kind(c->b, device, code != NULL), code, size, options, false, false, false};
  return d;
}

static int h_write_descriptor(NncCompile *c, const char *path, const char *device, const char *code,
                              uint64_t code_size, const char *code_options) {
  FILE *f = fopen(path, "w");
  if (!f) {
    diag_error_plain("cannot write '%s': %s", path, strerror(errno));
    return 1;
  }
  DescriptorCode dc = code_of(c, device, code, code_size, code_options);
  bool ok = descriptor_write(c->kp, device ? device : c->b->name, &dc, f);
  ok &= fclose(f) == 0;
  if (!ok) diag_error_plain("error writing '%s'", path);
  return ok ? 0 : 1;
}

static bool need_runtime(NncCompile *c) {
  if (!c->have_rt) c->have_rt = link_find_runtime(NULL, &c->rt);
  return c->have_rt;
}
static const char *h_runtime_include_dir(NncCompile *c) { return need_runtime(c) ? c->rt.include_dir : NULL; }
static const char *h_runtime_library(NncCompile *c) { return need_runtime(c) ? c->rt.lib : NULL; }

static int h_run_command(NncCompile *c, const char *const *argv) {
  if (!argv || !argv[0]) return -1;
  if (c->o->verbose) {
    fputs("nnc:", stderr);
    for (int i = 0; argv[i]; i++) fprintf(stderr, " %s", argv[i]);
    fputc('\n', stderr);
  }
  int rc = process_run(argv, NULL);
  if (rc < 0) diag_error_plain("cannot run '%s': %s", argv[0], strerror(errno));
  return rc;
}

static int h_link_executable(NncCompile *c, const char *const *inputs, int ninputs, const char *output) {
  if (!need_runtime(c)) return 1;
  return link_executable(&c->rt, inputs, ninputs, output, c->o->verbose) ? 0 : 1;
}

static int h_link_trainer(NncCompile *c, const char *device, const char *code, uint64_t code_size,
                          const char *code_options, const char *const *objects, int nobjects, const char *output) {
  if (!open_temp(c)) return 1;
  DescriptorCode dc = code_of(c, device, code, code_size, code_options);
  return link_trainer(c->kp, &c->tmp, device ? device : c->b->name, &dc, objects, nobjects, output, c->o->verbose)
             ? 0
             : 1;
}

static int h_link_library(NncCompile *c, const char *const *objects, int nobjects, const char *dir) {
  if (!open_temp(c) || !need_runtime(c)) return 1;
  return library_write(&c->rt, c->kp, &c->tmp, objects, nobjects, dir, c->o->verbose) ? 0 : 1;
}

const NncHost nnc_host = {
    .api_version = NNC_BACKEND_API_VERSION,
    .struct_size = sizeof(NncHost),
    .nnc_version = NNC_VERSION,
    .program = h_program,
    .target = h_target,
    .backend_user = h_backend_user,
    .output = h_output,
    .emit = h_emit,
    .opt_level = h_opt_level,
    .verbose = h_verbose,
    .option = h_option,
    .temp_file = h_temp_file,
    .diag = h_diag,
    .error_count = h_error_count,
    .program_name = h_program_name,
    .num_buffers = h_num_buffers,
    .buffer_name = h_buffer_name,
    .buffer_kind = h_buffer_kind,
    .buffer_dtype = h_buffer_dtype,
    .buffer_rank = h_buffer_rank,
    .buffer_dim = h_buffer_dim,
    .buffer_batched = h_buffer_batched,
    .buffer_slot = h_buffer_slot,
    .buffer_elems = h_buffer_elems,
    .num_kernels = h_num_kernels,
    .kernel = h_kernel,
    .plan_length = h_plan_length,
    .plan_kernel = h_plan_kernel,
    .kernel_name = h_kernel_name,
    .kernel_what = h_kernel_what,
    .kernel_num_args = h_kernel_num_args,
    .kernel_arg = h_kernel_arg,
    .kernel_num_vars = h_kernel_num_vars,
    .kernel_num_temps = h_kernel_num_temps,
    .kernel_temp_dtype = h_kernel_temp_dtype,
    .kernel_num_stmts = h_kernel_num_stmts,
    .kernel_stmt = h_kernel_stmt,
    .kernel_range = h_kernel_range,
    .kernel_loc = h_kernel_loc,
    .stmt_kind = h_stmt_kind,
    .loop_var = h_loop_var,
    .loop_extent = h_loop_extent,
    .loop_flags = h_loop_flags,
    .loop_sched = h_loop_sched,
    .stmt_num_body = h_stmt_num_body,
    .stmt_body = h_stmt_body,
    .stmt_temp = h_stmt_temp,
    .stmt_buffer = h_stmt_buffer,
    .stmt_num_indices = h_stmt_num_indices,
    .stmt_index = h_stmt_index,
    .stmt_value = h_stmt_value,
    .expr_kind = h_expr_kind,
    .expr_dtype = h_expr_dtype,
    .expr_is_index = h_expr_is_index,
    .expr_const = h_expr_const,
    .expr_var = h_expr_var,
    .expr_temp = h_expr_temp,
    .expr_buffer = h_expr_buffer,
    .expr_guarded = h_expr_guarded,
    .expr_num_indices = h_expr_num_indices,
    .expr_index = h_expr_index,
    .expr_scalar = h_expr_scalar,
    .expr_op = h_expr_op,
    .expr_op_name = h_expr_op_name,
    .expr_num_operands = h_expr_num_operands,
    .expr_operand = h_expr_operand,
    .write_descriptor = h_write_descriptor,
    .runtime_include_dir = h_runtime_include_dir,
    .runtime_library = h_runtime_library,
    .run_command = h_run_command,
    .link_executable = h_link_executable,
    .link_trainer = h_link_trainer,
    .contract_num_axes = h_contract_num_axes,
    .contract_axis = h_contract_axis,
    .contract_combine = h_contract_combine,
    .contract_factor = h_contract_factor,
    .link_library = h_link_library,
};

/* One call of a backend's function on kp; its temporary files are removed
 * afterwards.  A failure it did not report is reported for it. */
static bool call_backend(const NncBackend *b, int (*fn)(const NncHost *, NncCompile *), KProgram *kp,
                         const Options *o) {
  NncCompile c;
  memset(&c, 0, sizeof c);
  c.b = b, c.kp = kp, c.o = o;
  int errors = diag_error_count();
  int rc = fn(&nnc_host, &c);
  if (c.tmp_open) link_temp_close(&c.tmp);
  if (rc != 0 && diag_error_count() == errors) diag_error_plain("the '%s' backend failed (status %d)", b->name, rc);
  return rc == 0 && diag_error_count() == errors;
}

bool host_compile(const NncBackend *b, KProgram *kp, const Options *o) {
  /* --emit and the backend options were checked against b by options_parse.
   * A backend that does not read contraction statements gets their loops. */
  if (!(b->flags & NNC_BACKEND_CONTRACTIONS))
    for (uint32_t i = 0; i < kp->nkernels; i++) kernel_expand_contractions(kp, &kp->kernels[i], NULL, NULL);
  return call_backend(b, b->compile, kp, o);
}

bool host_schedule(const NncBackend *b, KProgram *kp, const Options *o) {
  return !NNC_BACKEND_HAS(b, schedule) || !b->schedule || call_backend(b, b->schedule, kp, o);
}
