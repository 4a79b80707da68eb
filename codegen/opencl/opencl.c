/* codegen/opencl/opencl.c - the opencl, fpga and asic targets (see opencl.h).
 *
 * The target entry: pick the dialect, apply --local-mem, check what the
 * dialect cannot express (asic indexes with 32-bit int), schedule and
 * render (emit_c.c), then write what was asked for: the .cl source with
 * its launch plan (--emit=cl), or the trainer descriptor that the driver
 * links (driver/link.c) into an executable.
 */
#include "codegen/opencl/opencl.h"

#include "codegen/descriptor.h"
#include "support/diag.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifndef NNC_VERSION
#define NNC_VERSION "unknown"
#endif

enum { DEFAULT_BATCH = 32 };

/* ---- checks ------------------------------------------------------------------------------- */

/* asic: every index is an int, so every buffer (at the batch size the
 * program is built for) must have fewer than 2^31 elements.  The trainer
 * checks again at run time for the batch it is given.  Reports the first
 * buffer that does not fit. */
static bool check_int32(const KProgram *p, int64_t batch) {
  for (uint32_t i = 0; i < p->nbufs; i++) {
    const KBuffer *b = &p->bufs[i];
    int64_t per = type_numel(&b->type);
    int64_t n = b->type.batched ? (per <= INT64_MAX / batch ? per * batch : INT64_MAX) : per;
    if (n <= INT32_MAX) continue;
    if (b->type.batched)
      diag_error_plain("the asic target indexes with 32-bit int, but buffer '%s' has %lld elements at batch %lld "
                       "(at most 2147483647); use a smaller batch, or --target=opencl",
                       b->name, (long long)n, (long long)batch);
    else
      diag_error_plain("the asic target indexes with 32-bit int, but buffer '%s' has %lld elements (at most "
                       "2147483647); use --target=opencl",
                       b->name, (long long)n);
    return false;
  }
  return true;
}

/* ---- generating ---------------------------------------------------------------------------- */

void ocl_schedule(KProgram *p, const CDialect *d, int64_t batch, NdSchedule *s) {
  if (d->launch == CL_LAUNCH_NDRANGE) {
    NdrangeOptions o = {.batch = batch, .local_mem = d->local_qual ? d->local_mem : 0, .tile_k = d->tile_k,
                        .igemm = true};
    ndrange_schedule(p, &o, s);
    return;
  }
  /* single work-item: the kernels as lowered, a loop nest for a pipeline */
  memset(s, 0, sizeof *s);
  s->n = p->nkernels;
  s->k = nnc_xcalloc(p->nkernels ? p->nkernels : 1, sizeof *s->k);
  for (uint32_t i = 0; i < p->nkernels; i++) s->k[i].ncollapsed = 1;
}

bool ocl_generate(KProgram *p, const OclOptions *o, OclCode *c) {
  memset(c, 0, sizeof *c);
  const CDialect *d = c_dialect_find(o->target);
  if (!d) {
    diag_error_plain("no OpenCL C dialect for target '%s'", o->target);
    return false;
  }
  c->dialect = *d;
  if (o->local_mem > 0) c->dialect.local_mem = o->local_mem;
  c->batch = o->batch > 0 ? o->batch : p->module && p->module->train.batch > 0 ? p->module->train.batch : DEFAULT_BATCH;
  if (!c->dialect.has_long && !check_int32(p, c->batch)) return false;
  ocl_schedule(p, &c->dialect, c->batch, &c->sched);
  c->text = c_emit_program(p, &c->dialect, &c->sched, &c->len);
  return true;
}

void ocl_code_free(OclCode *c) {
  ndrange_schedule_free(&c->sched);
  free(c->text);
  memset(c, 0, sizeof *c);
}

/* ---- --emit=cl -------------------------------------------------------------------------------- */

char *ocl_plan_path(const char *cl_path) {
  size_t n = strlen(cl_path);
  if (n > 3 && !strcmp(cl_path + n - 3, ".cl")) n -= 3;
  char *s = nnc_xmalloc(n + 11);
  memcpy(s, cl_path, n);
  memcpy(s + n, ".plan.json", 11);
  return s;
}

static void json_str(FILE *out, const char *s) {
  fputc('"', out);
  for (; s && *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') fprintf(out, "\\%c", ch);
    else if (ch < 0x20) fprintf(out, "\\u%04x", ch);
    else fputc(ch, out);
  }
  fputc('"', out);
}

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static void json_launches(FILE *out, const KProgram *p, const OclCode *c, const uint32_t *plan, uint32_t n) {
  const CDialect *d = &c->dialect;
  fputs("[", out);
  for (uint32_t i = 0; i < n; i++) {
    const Kernel *k = &p->kernels[plan[i]];
    bool batched;
    int64_t range = descriptor_launch_range(k, &batched), at = range * (batched ? c->batch : 1);
    fprintf(out, "%s\n    {\"kernel\": ", i ? "," : "");
    json_str(out, k->name);
    if (d->single_work_item) {
      fputs(", \"global_size\": 1, \"local_size\": 1}", out);
    } else {
      int64_t gs = d->group_size, global = (at + gs - 1) / gs * gs;
      fprintf(out, ", \"global_size\": \"ceil(%lld%s / %lld) * %lld\", \"global_size_at_batch\": %lld, "
                   "\"local_size\": %lld}",
              (long long)range, batched ? " * B" : "", (long long)gs, (long long)gs, (long long)global, (long long)gs);
    }
  }
  fputs("\n  ]", out);
}

bool ocl_write_plan(const KProgram *p, const OclCode *c, const char *code_file, FILE *out) {
  const CDialect *d = &c->dialect;
  const char *model = p->module && p->module->name ? p->module->name : "model";
  fputs("{\n  \"nnc\": ", out);
  json_str(out, NNC_VERSION);
  fputs(",\n  \"model\": ", out);
  json_str(out, model);
  fputs(",\n  \"target\": ", out);
  json_str(out, d->name);
  fputs(",\n  \"code\": ", out);
  json_str(out, code_file ? code_file : "");
  fputs(",\n  \"build_options\": ", out);
  json_str(out, d->build_options);
  fprintf(out, ",\n  \"launch\": \"%s\",\n  \"work_group_size\": %d,\n  \"batch_arg\": \"%s\",\n",
          d->single_work_item ? "single_work_item" : "ndrange", d->single_work_item ? 1 : d->group_size,
          d->batch_i32 ? "int32" : "int64");
  fprintf(out, "  \"batch\": %lld,\n  \"local_mem_bytes\": %lld,\n", (long long)c->batch,
          (long long)(d->launch == CL_LAUNCH_NDRANGE ? d->local_mem : 0));
  fputs("  \"buffers\": [", out);
  for (uint32_t i = 0; i < p->nbufs; i++) {
    const KBuffer *b = &p->bufs[i];
    fprintf(out, "%s\n    {\"id\": %u, \"name\": ", i ? "," : "", i);
    json_str(out, b->name);
    fprintf(out, ", \"kind\": \"%s\", \"dtype\": \"%s\", \"shape\": [", kbuf_kind_name(b->kind), dtype_name(b->type.dtype));
    for (int k = 0; k < b->type.rank; k++) fprintf(out, "%s%lld", k ? ", " : "", (long long)b->type.dims[k]);
    fprintf(out, "], \"batched\": %s, \"slot\": %d}", b->type.batched ? "true" : "false",
            b->kind == KB_TEMP ? b->slot : -1);
  }
  fputs("\n  ],\n  \"kernels\": [", out);
  for (uint32_t i = 0; i < p->nkernels; i++) {
    const Kernel *k = &p->kernels[i];
    bool batched;
    int64_t range = descriptor_launch_range(k, &batched);
    fprintf(out, "%s\n    {\"id\": %u, \"name\": ", i ? "," : "", i);
    json_str(out, k->name);
    fputs(", \"what\": ", out);
    json_str(out, k->what ? k->what : "");
    fputs(", \"args\": [", out);
    for (uint32_t a = 0; a < k->nargs; a++) fprintf(out, "%s%d", a ? ", " : "", k->args[a]);
    fprintf(out, "], \"range\": %lld, \"range_batched\": %s, \"tiled\": %s}", (long long)range,
            batched ? "true" : "false", i < c->sched.n && c->sched.k[i].tiled ? "true" : "false");
  }
  fputs("\n  ],\n  \"train\": ", out);
  json_launches(out, p, c, p->train, p->ntrain);
  fputs(",\n  \"eval\": ", out);
  json_launches(out, p, c, p->eval, p->neval);
  fputs("\n}\n", out);
  return !ferror(out);
}

static bool write_file(const char *path, const char *what, bool (*fn)(const void *, FILE *), const void *ctx) {
  FILE *f = fopen(path, "w");
  if (!f) {
    diag_error_plain("cannot write %s '%s': %s", what, path, strerror(errno));
    return false;
  }
  bool ok = fn(ctx, f);
  ok &= fclose(f) == 0;
  if (!ok) diag_error_plain("error writing %s '%s'", what, path);
  return ok;
}

typedef struct PlanCtx {
  const KProgram *p;
  const OclCode *c;
  const char *code_file;
} PlanCtx;

static bool put_text(const void *ctx, FILE *f) {
  const OclCode *c = ctx;
  return fwrite(c->text, 1, c->len, f) == c->len;
}

static bool put_plan(const void *ctx, FILE *f) {
  const PlanCtx *pc = ctx;
  return ocl_write_plan(pc->p, pc->c, pc->code_file, f);
}

bool ocl_emit_files(const KProgram *p, const OclCode *c, const char *path) {
  if (!path || !strcmp(path, "-")) {
    bool ok = fwrite(c->text, 1, c->len, stdout) == c->len && fflush(stdout) == 0;
    if (!ok) diag_error_plain("error writing stdout");
    return ok;
  }
  if (!write_file(path, "OpenCL C", put_text, c)) return false;
  char *plan = ocl_plan_path(path);
  PlanCtx pc = {p, c, base_name(path)};
  bool ok = write_file(plan, "launch plan", put_plan, &pc);
  free(plan);
  return ok;
}

/* ---- the trainer descriptor ------------------------------------------------------------------ */

/* The descriptor: the OpenCL C with its build options and the dialect's
 * launch settings. */
static bool put_descriptor(const void *ctx, FILE *f) {
  const PlanCtx *pc = ctx;
  const CDialect *d = &pc->c->dialect;
  DescriptorCode code = {NNC_CODE_OPENCL_C, pc->c->text, pc->c->len, d->build_options,
                         d->single_work_item, d->batch_i32, false};
  return descriptor_write(pc->p, d->name, &code, f);
}

bool ocl_write_descriptor(const KProgram *p, const OclCode *c, const char *path) {
  PlanCtx pc = {p, c, NULL};
  return write_file(path, "the trainer description", put_descriptor, &pc);
}
