/* codegen/descriptor.c - writes the trainer descriptor as C (see descriptor.h).
 *
 * The output is plain C11 data: static const arrays for the buffers, the
 * argument lists, the train and eval launches, metric and hyper-parameter
 * names, the kernel names and code, then one RtModelDesc with designated
 * initialisers (so fields appended to the ABI later default to zero) and
 * main().  Nothing in it depends on the compiler's headers: it includes
 * only <nnrt/model.h> and <nnrt/init.h>.
 */
#include "codegen/descriptor.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef NNC_VERSION
#define NNC_VERSION "unknown"
#endif

/* ORDER KBufKind */
static const char *const buf_kind_names[] = {"RT_BUF_INPUT", "RT_BUF_LABEL", "RT_BUF_PARAM", "RT_BUF_STATE",
                                             "RT_BUF_TEMP", "RT_BUF_LOSS", "RT_BUF_METRIC", "RT_BUF_SCALARS",
                                             "RT_BUF_OUTPUT"};
/* ORDER INIT */
static const char *const init_kind_names[] = {"RT_INIT_NONE",    "RT_INIT_ZEROS",          "RT_INIT_ONES",
                                              "RT_INIT_FULL",    "RT_INIT_UNIFORM",        "RT_INIT_NORMAL",
                                              "RT_INIT_GLOROT_UNIFORM", "RT_INIT_HE_NORMAL"};

/* ORDER NncCodeKind (RtModelCode) */
static const char *const code_kind_names[] = {"0", "RT_MODEL_CODE_NATIVE", "RT_MODEL_CODE_PTX",
                                              "RT_MODEL_CODE_OPENCL_C"};

NncCodeKind descriptor_code_kind(const NncBackend *b, const char *device, bool has_code) {
  if (!has_code) return NNC_CODE_NATIVE;
  NncCodeKind k = b && NNC_BACKEND_HAS(b, code) ? b->code : NNC_CODE_UNSET;
  if (k == NNC_CODE_PTX || k == NNC_CODE_OPENCL_C) return k;
  return device && !strcmp(device, "gpu") ? NNC_CODE_PTX : NNC_CODE_OPENCL_C; /* API 1 */
}

int64_t descriptor_launch_range(const Kernel *k, bool *batched) {
  if (k->nbody == 1 && k->body[0]->kind == KS_LOOP) {
    *batched = k->body[0]->batched;
    return k->body[0]->extent;
  }
  *batched = false;
  return 1;
}

void descriptor_write_string(FILE *out, const char *s, size_t n) {
  size_t col = 0;
  fputc('"', out);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
    case '"': fputs("\\\"", out); break;
    case '\\': fputs("\\\\", out); break;
    case '?': fputs("\\?", out); break;
    case '\n': fputs("\\n", out); break;
    case '\t': fputs("\\t", out); break;
    case '\r': fputs("\\r", out); break;
    default:
      if (c >= 0x20 && c < 0x7f)
        fputc(c, out);
      else
        fprintf(out, "\\%03o", c); /* always three digits: the next character cannot extend it */
    }
    col++;
    if (i + 1 < n && (c == '\n' || col >= 100)) {
      fputs("\"\n    \"", out);
      col = 0;
    }
  }
  fputc('"', out);
}

static void write_cstr(FILE *out, const char *s) {
  if (s)
    descriptor_write_string(out, s, strlen(s));
  else
    fputs("NULL", out);
}

/* A data path as the trainer must see it: absolute.  The train block's
 * paths are relative to the .nn file, which elaboration has resolved
 * against the working directory of this compile; a trainer runs from
 * anywhere, so that directory is written in (`cd / && ./train` finds the
 * same files as `nnc m.nn --run` here).  Lexical only: the files need not
 * exist yet. */
static void write_data_path(FILE *out, const char *p) {
  char cwd[4096];
  if (!p || p[0] == '/' || !getcwd(cwd, sizeof cwd)) {
    write_cstr(out, p);
    return;
  }
  while (p[0] == '.' && p[1] == '/') /* "./data" */
    for (p += 2; *p == '/';) p++;
  size_t n = strlen(cwd);
  char *abs = nnc_xmalloc(n + strlen(p) + 2);
  sprintf(abs, "%s%s%s", cwd, n > 0 && cwd[n - 1] == '/' ? "" : "/", p);
  write_cstr(out, abs);
  free(abs);
}

/* A double that reads back as the same value. */
static void write_double(FILE *out, double v) {
  if (isnan(v))
    fputs("__builtin_nan(\"\")", out);
  else if (isinf(v))
    fputs(v > 0 ? "__builtin_inf()" : "-__builtin_inf()", out);
  else
    fprintf(out, "%.17g", v);
}

static bool is_identifier(const char *s) {
  if (!s || !(isalpha((unsigned char)*s) || *s == '_')) return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_') return false;
  return true;
}

static void write_buffers(const KProgram *p, FILE *out) {
  const Module *m = p->module;
  fprintf(out, "/* name, kind, dtype (0 f32, 1 i32), rank, dims, batched, init kind, init a, b, slot */\n");
  fprintf(out, "static const RtBufDesc nnc_bufs[] = {\n");
  for (uint32_t i = 0; i < p->nbufs; i++) {
    const KBuffer *b = &p->bufs[i];
    Init init = {INIT_NONE, 0, 0};
    if ((b->kind == KB_PARAM || b->kind == KB_STATE) && m && b->sym < m->nsyms) init = m->syms[b->sym].init;
    fprintf(out, "    {");
    write_cstr(out, b->name);
    fprintf(out, ", %s, %d, %d, {", buf_kind_names[b->kind], b->type.dtype == DT_I32 ? 1 : 0, b->type.rank);
    for (int d = 0; d < b->type.rank; d++) fprintf(out, "%s%lld", d ? ", " : "", (long long)b->type.dims[d]);
    if (!b->type.rank) fputc('0', out);
    fprintf(out, "}, %d, %s, ", b->type.batched ? 1 : 0, init_kind_names[init.kind]);
    write_double(out, init.a);
    fputs(", ", out);
    write_double(out, init.b);
    fprintf(out, ", %d}, /* %u */\n", b->kind == KB_TEMP ? b->slot : -1, i);
  }
  fprintf(out, "};\n\n");
}

/* What computes buffer b, for the runtime's --check-numerics messages:
 * "exp at model.nn:7:12", or for code inlined from a definition
 * "exp at stdlib/nn.nn:3:10, called from model.nn:7:12"; false when
 * unknown. */
static bool buf_source(const KProgram *p, const KBuffer *b, char *out, size_t len) {
  const Module *m = p->module;
  if (!m || b->op < 0 || b->op >= OP_COUNT || (b->kind != KB_TEMP && b->kind != KB_LOSS && b->kind != KB_METRIC && b->kind != KB_OUTPUT))
    return false;
  uint32_t loc = b->loc < m->nlocs ? b->loc : 0, top = loc;
  for (int guard = 0; top && m->locs[top].parent && m->locs[top].parent < m->nlocs && guard < 64; guard++)
    top = m->locs[top].parent;
  int w = snprintf(out, len, "%s", ir_ops[b->op].name);
  const IrLoc *a = &m->locs[loc], *c = &m->locs[top];
  if (loc && a->file < m->nfiles && w >= 0 && (size_t)w < len)
    w += snprintf(out + w, len - (size_t)w, " at %s:%u:%u", m->files[a->file], a->line, a->col);
  if (top != loc && c->file < m->nfiles && w >= 0 && (size_t)w < len)
    snprintf(out + w, len - (size_t)w, ", called from %s:%u:%u", m->files[c->file], c->line, c->col);
  return true;
}

static void write_sources(const KProgram *p, FILE *out) {
  fprintf(out, "/* what computes each buffer, for --check-numerics */\n");
  fprintf(out, "static const char *const nnc_buf_sources[] = {\n");
  for (uint32_t i = 0; i < p->nbufs; i++) {
    char text[1024];
    fputs("    ", out);
    write_cstr(out, buf_source(p, &p->bufs[i], text, sizeof text) ? text : NULL);
    fprintf(out, ", /* %u */\n", i);
  }
  fprintf(out, "};\n\n");
}

/* One RtLaunchDesc per entry of a plan; NULL when the plan is empty. */
static void write_plan(const KProgram *p, const uint32_t *plan, uint32_t n, const char *name, FILE *out) {
  if (!n) return;
  fprintf(out, "static const RtLaunchDesc %s[] = {\n", name);
  for (uint32_t i = 0; i < n; i++) {
    NNC_ASSERT(plan[i] < p->nkernels);
    const Kernel *k = &p->kernels[plan[i]];
    bool batched;
    int64_t range = descriptor_launch_range(k, &batched);
    fprintf(out, "    {%u, %u, ", plan[i], k->nargs);
    if (k->nargs)
      fprintf(out, "nnc_args_%u", plan[i]);
    else
      fputs("NULL", out);
    fprintf(out, ", %lld, %d}, /* %s */\n", (long long)range, batched ? 1 : 0, k->name);
  }
  fprintf(out, "};\n\n");
}

static void write_code(const KProgram *p, const DescriptorCode *code, FILE *out) {
  if (code->kind == NNC_CODE_NATIVE) {
    for (uint32_t i = 0; i < p->nkernels; i++) {
      const char *name = p->kernels[i].name;
      if (!is_identifier(name)) nnc_internal_error(__FILE__, __LINE__, "kernel name '%s' is not a C identifier", name);
      fprintf(out, "extern void %s(void **, int64_t, int64_t);\n", name);
    }
    if (p->nkernels) {
      fprintf(out, "\nstatic const RtModelKernel nnc_native[] = {\n");
      for (uint32_t i = 0; i < p->nkernels; i++) fprintf(out, "    %s,\n", p->kernels[i].name);
      fprintf(out, "};\n");
    }
  } else {
    fprintf(out, "static const char nnc_code[] =\n    ");
    descriptor_write_string(out, code->text, (size_t)code->size);
    fprintf(out, ";\n");
  }
  fputc('\n', out);
}

/* The metric names, from the Module's metric outputs in order; a program
 * read from kernel IR text has no outputs: its buffers are named
 * metric.NAME (lowering names them so). */
static void write_metric_names(const KProgram *p, FILE *out) {
  const Module *m = p->module;
  uint32_t i = 0;
  for (uint32_t o = 0; m && o < m->noutputs && i < p->nmetrics; o++)
    if (m->outputs[o].kind == OUT_METRIC) {
      fputs(i ? ", " : "", out);
      write_cstr(out, m->outputs[o].name);
      i++;
    }
  for (; i < p->nmetrics; i++) {
    const char *name = p->bufs[p->metrics[i]].name;
    fputs(i ? ", " : "", out);
    write_cstr(out, strncmp(name, "metric.", 7) || !name[7] ? name : name + 7);
  }
}

/* Where the train plan splits into its grad and update parts: the number
 * of launches before the first update-side kernel (kprog_mark_update), or
 * -1 when the update side is not the plan's tail or computes a gradient
 * (a hand-written plan): the trainer then runs in one process only. */
static int split_point(const KProgram *p) {
  bool *upd = nnc_xcalloc(p->nkernels ? p->nkernels : 1, 1);
  kprog_mark_update(p, upd);
  int split = (int)p->ntrain;
  for (uint32_t i = 0; i < p->ntrain; i++) {
    const Kernel *k = &p->kernels[p->train[i]];
    if (upd[p->train[i]] && split == (int)p->ntrain) split = (int)i;
    if (!upd[p->train[i]] && split < (int)p->ntrain) split = -1;
    for (uint32_t a = 0; a < k->nargs && upd[p->train[i]]; a++) /* a gradient the update part computes */
      if (kbuf_is_gradient(&p->bufs[k->args[a]]) && kernel_writes(k, k->args[a])) split = -1;
    if (split < 0) break;
  }
  free(upd);
  return split;
}

bool descriptor_write(const KProgram *p, const char *target, const DescriptorCode *code, FILE *out) {
  const Module *m = p->module;
  bool native = code->kind == NNC_CODE_NATIVE;
  if ((unsigned)code->kind >= sizeof code_kind_names / sizeof *code_kind_names || code->kind == NNC_CODE_UNSET ||
      native != !code->text)
    nnc_internal_error(__FILE__, __LINE__, "descriptor code of kind %d %s text", code->kind,
                       code->text ? "with" : "without");
  const char *model = m && m->name ? m->name : "model";
  fprintf(out, "/* The model description of '%s' for target %s, written by nnc %s.\n", model, target, NNC_VERSION);
  fprintf(out, " * Compile with -I<nnc include dir> and link with the kernels and libnnrt. */\n");
  fprintf(out, "#include <stddef.h>\n#include <stdint.h>\n\n#include <nnrt/init.h>\n#include <nnrt/model.h>\n\n");

  write_buffers(p, out);
  if (p->nbufs) write_sources(p, out);
  for (uint32_t i = 0; i < p->nkernels; i++) {
    const Kernel *k = &p->kernels[i];
    if (!k->nargs) continue;
    fprintf(out, "static const int nnc_args_%u[] = {", i);
    for (uint32_t a = 0; a < k->nargs; a++) fprintf(out, "%s%d", a ? ", " : "", k->args[a]);
    fprintf(out, "}; /* %s */\n", k->name);
  }
  fputc('\n', out);
  write_plan(p, p->train, p->ntrain, "nnc_train", out);
  write_plan(p, p->eval, p->neval, "nnc_eval", out);
  int ngrad = split_point(p);
  uint32_t ngbufs = 0;
  for (uint32_t b = 0; b < p->nbufs && ngrad >= 0; b++)
    if (kbuf_is_gradient(&p->bufs[b])) fprintf(out, "%s%u", ngbufs++ ? ", " : "static const int nnc_grad_bufs[] = {", b);
  if (ngbufs) fputs("};\n\n", out);

  if (p->nmetrics) {
    fprintf(out, "static const char *const nnc_metric_names[] = {");
    write_metric_names(p, out);
    fprintf(out, "};\nstatic const int nnc_metric_bufs[] = {");
    for (uint32_t i = 0; i < p->nmetrics; i++) fprintf(out, "%s%d", i ? ", " : "", p->metrics[i]);
    fprintf(out, "};\n\n");
  }

  int nhypers = 0;
  for (uint32_t s = 0; m && s < m->nsyms; s++) nhypers += m->syms[s].kind == SYM_HYPER;
  if (nhypers) {
    fprintf(out, "static const char *const nnc_hyper_names[] = {");
    for (uint32_t s = 0, i = 0; s < m->nsyms; s++)
      if (m->syms[s].kind == SYM_HYPER) {
        fputs(i++ ? ", " : "", out);
        write_cstr(out, m->syms[s].name);
      }
    fprintf(out, "};\nstatic const double nnc_hyper_values[] = {");
    for (uint32_t s = 0, i = 0; s < m->nsyms; s++)
      if (m->syms[s].kind == SYM_HYPER) {
        fputs(i++ ? ", " : "", out);
        write_double(out, m->syms[s].value);
      }
    fprintf(out, "};\n\n");
  }

  if (p->nkernels) {
    fprintf(out, "static const char *const nnc_kernel_names[] = {\n");
    for (uint32_t i = 0; i < p->nkernels; i++) {
      fputs("    ", out);
      write_cstr(out, p->kernels[i].name);
      fputs(",\n", out);
    }
    fprintf(out, "};\n");
  }
  write_code(p, code, out);

  const TrainSpec *t = m ? &m->train : NULL;
  int64_t label_bound = 0;
  if (p->label >= 0 && m && p->bufs[p->label].sym < m->nsyms) label_bound = m->syms[p->bufs[p->label].sym].bound;
  fprintf(out, "static const RtModelDesc nnc_model = {\n");
  fprintf(out, "    .abi = RT_MODEL_ABI,\n    .name = ");
  write_cstr(out, model);
  fprintf(out, ",\n    .target = ");
  write_cstr(out, target);
  fprintf(out, ",\n    .nnc_version = ");
  write_cstr(out, NNC_VERSION);
  fprintf(out, ",\n    .nbufs = %u,\n    .bufs = %s,\n", p->nbufs, p->nbufs ? "nnc_bufs" : "NULL");
  fprintf(out, "    .input_buf = %d,\n    .label_buf = %d,\n    .loss_buf = %d,\n    .scalars_buf = %d,\n", p->input,
          p->label, p->loss, p->scalars);
  fprintf(out, "    .nmetrics = %u,\n", p->nmetrics);
  fprintf(out, "    .metric_names = %s,\n", p->nmetrics ? "nnc_metric_names" : "NULL");
  fprintf(out, "    .metric_bufs = %s,\n", p->nmetrics ? "nnc_metric_bufs" : "NULL");
  fprintf(out, "    .nhypers = %d,\n", nhypers);
  fprintf(out, "    .hyper_names = %s,\n", nhypers ? "nnc_hyper_names" : "NULL");
  fprintf(out, "    .hyper_values = %s,\n", nhypers ? "nnc_hyper_values" : "NULL");
  fprintf(out, "    .data_kind = %d, /* 0 none, 1 idx, 2 csv, 3 text */\n", t ? (int)t->data : 0);
  fprintf(out, "    .data_path = ");
  write_data_path(out, t ? t->data_path : NULL);
  fprintf(out, ",\n    .test_path = ");
  write_data_path(out, t ? t->test_path : NULL);
  fprintf(out, ",\n    .label_column = ");
  write_cstr(out, t ? t->label : NULL);
  fprintf(out, ",\n    .scale = ");
  write_double(out, t ? t->scale : 0);
  fprintf(out, ",\n    .batch = %lld,\n    .epochs = %lld,\n    .seed = %lld,\n    .shuffle = %d,\n",
          (long long)(t ? t->batch : 0), (long long)(!t ? 0 : t->epochs || t->steps ? t->epochs : 1),
          (long long)(t ? t->seed : 0),
          t && t->shuffle ? 1 : 0);
  fprintf(out, "    .label_bound = %lld,\n    .validation = ", (long long)label_bound);
  write_double(out, t ? t->validation : 0);
  const LrSchedule *sc = t ? &t->schedule : &(LrSchedule){SCHEDULE_CONSTANT, 0, 0, 0, 0};
  fprintf(out, ",\n    .steps = %lld,\n    .schedule = {%d, %lld, ", (long long)(t ? t->steps : 0), (int)sc->kind,
          (long long)sc->every);
  write_double(out, sc->factor);
  fprintf(out, ", %lld, ", (long long)sc->warmup);
  write_double(out, sc->min);
  fprintf(out, "}, /* kind (0 constant, 1 step, 2 cosine), every, factor, warmup, min */\n");
  fprintf(out, "    .context = %lld,\n", (long long)(t ? t->context : 0));
  fprintf(out, "    .nkernels = %u,\n", p->nkernels);
  fprintf(out, "    .kernel_names = %s,\n", p->nkernels ? "nnc_kernel_names" : "NULL");
  fprintf(out, "    .code_kind = %s,\n", code_kind_names[code->kind]);
  fprintf(out, "    .native = %s,\n", native && p->nkernels ? "nnc_native" : "NULL");
  fprintf(out, "    .code = %s,\n", native ? "NULL" : "nnc_code");
  fprintf(out, "    .code_size = %llu,\n", (unsigned long long)(native ? 0 : code->size));
  fprintf(out, "    .code_options = ");
  write_cstr(out, code->options);
  fprintf(out, ",\n    .ntrain = %u,\n    .train = %s,\n", p->ntrain, p->ntrain ? "nnc_train" : "NULL");
  fprintf(out, "    .neval = %u,\n    .eval = %s,\n", p->neval, p->neval ? "nnc_eval" : "NULL");
  fprintf(out, "    .ntrain_grad = %d,\n    .ngrad_bufs = %u,\n    .grad_bufs = %s,\n", ngbufs ? ngrad : -1, ngbufs,
          ngbufs ? "nnc_grad_bufs" : "NULL");
  if (code->single_work_item || code->batch_i32)
    fprintf(out, "    .single_work_item = %d,\n    .batch_arg_i32 = %d,\n", code->single_work_item ? 1 : 0,
            code->batch_i32 ? 1 : 0);
  fprintf(out, "    .buf_sources = %s,\n", p->nbufs ? "nnc_buf_sources" : "NULL");
  const char *output_name = NULL;
  for (uint32_t o = 0; m && o < m->noutputs; o++)
    if (m->outputs[o].kind == OUT_PREDICT) output_name = m->outputs[o].name;
  fprintf(out, "    .output_buf = %d,\n    .output_name = ", p->output);
  write_cstr(out, p->output >= 0 ? output_name : NULL);
  fprintf(out, ",\n};\n\n");
  if (!code->library)
    fprintf(out, "int main(int argc, char **argv) { return rt_trainer_main(argc, argv, &nnc_model); }\n");
  return !ferror(out);
}
