/* driver/main.c - nnc: the pipeline as a straight list of steps.
 *
 *   read FILE -> parse -> elaborate -> graph passes -> lower -> kernel passes -> emit / target
 *
 * A .nnir file skips the frontend: its graph IR is read back and goes
 * through the same passes, so each pass can be tested alone on IR text.
 * A .kir file skips the graph too: its kernel IR is read back and goes
 * through the kernel passes --kernel-passes names (none by default: the
 * text is taken as it was printed) to the target.
 */
#include "codegen/backend.h"
#include "driver/check.h"
#include "driver/host.h"
#include "driver/memory.h"
#include "driver/onnx.h"
#include "driver/options.h"
#include "driver/run.h"
#include "frontend/ast.h"
#include "support/diag.h"
#include "support/stats.h"
#include "frontend/elab.h"
#include "ir/ir.h"
#include "passes/lower.h"
#include "passes/pass.h"
#include "runtime/files.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static Options opts;

/* What main() holds, also freed at exit: the early `return finish()`
 * paths then leave nothing behind for LeakSanitizer (NNC_SANITIZE). */
static Module *held_module;
static KProgram *held_program;
static Arena ast_arena;
static void free_held(void) {
  kprog_free(held_program); /* before its module */
  held_program = NULL;
  if (held_module) ir_module_free(held_module);
  held_module = NULL;
  arena_free(&ast_arena);
}

static bool is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The stdlib: $NNC_STDLIB, else beside the binary (build tree), else
 * ../share/nnc/stdlib relative to it (installed). */
static const char *find_stdlib(void) {
  static char buf[PATH_MAX + 64];
  const char *env = getenv("NNC_STDLIB");
  if (env && *env) return env;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return NULL;
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (!slash) return NULL;
  *slash = 0;
  snprintf(buf, sizeof buf, "%s/stdlib", exe);
  if (is_dir(buf)) return buf;
  snprintf(buf, sizeof buf, "%s/../share/nnc/stdlib", exe);
  if (is_dir(buf)) return buf;
  return NULL;
}

static bool should_print_after(const char *stage) {
  if (opts.print_after_all) return true;
  for (int i = 0; i < opts.nprint_after; i++)
    if (!strcmp(opts.print_after[i], stage)) return true;
  return false;
}

static void after_stage(const char *stage, const Module *m, const Program *p, double t0) {
  if (opts.verbose) fprintf(stderr, "nnc: %-10s %8.3f ms\n", stage, (nnc_now() - t0) * 1e3);
  if (!should_print_after(stage)) return;
  fprintf(stderr, "; *** IR after %s ***\n", stage);
  if (m)
    ir_print(m, stderr);
  else if (p)
    ast_print(p, stderr);
}

static void after_kernel_stage(const char *stage, const KProgram *kp, double t0) {
  if (opts.verbose) fprintf(stderr, "nnc: %-10s %8.3f ms\n", stage, (nnc_now() - t0) * 1e3);
  if (!should_print_after(stage)) return;
  fprintf(stderr, "; *** IR after %s ***\n", stage);
  kprog_print(kp, stderr);
}

static FILE *open_output(void) {
  if (!opts.output || !strcmp(opts.output, "-")) return stdout;
  FILE *f = fopen(opts.output, "w");
  if (!f) {
    diag_error_plain("cannot write '%s'", opts.output);
    return NULL;
  }
  return f;
}

/* Where the run writes its output: -o, else the trainer's default "train"
 * when one is built; NULL for stdout or no output. */
static const char *output_path(void) {
  if (opts.output) return strcmp(opts.output, "-") ? opts.output : NULL;
  if (opts.emit != EMIT_NONE || opts.verify) return NULL;
  return !(opts.backend->flags & NNC_BACKEND_NO_KERNELS) ? "train" : NULL;
}

/* An output onto a file that was read (the .nn file, an import, the
 * stdlib, the .nnir file) would destroy it: refused before anything is
 * written.  Called once the files are read. */
static bool output_clobbers_input(void) {
  const struct { const char *path, *option; } outs[] = {
      {output_path(), "-o"}, {opts.save, "--save"}, {opts.metrics, "--metrics"}};
  bool clobbers = false;
  for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
    const SourceFile *f = diag_is_input(&nnc_diag, outs[i].path);
    if (f)
      diag_error_plain("the output '%s' is the input file '%s'; refusing to overwrite it (give another %s)",
                       outs[i].path, f->path, outs[i].option);
    clobbers |= f != NULL;
  }
  return clobbers;
}

static int finish(void) {
  if (opts.stats && strmap_lookups) {
    nnc_stat_add("names", "lookups", strmap_lookups);
    nnc_stat_add("names", "probes", strmap_probes);
  }
  if (opts.stats) nnc_stats_print(stderr);
  if (opts.verify) return diag_verify(&nnc_diag) ? 0 : 1;
  return diag_error_count() ? 1 : 0;
}

/* Closes what open_output opened; false (reported) when writing failed. */
static bool close_output(FILE *out) {
  bool ok = !ferror(out);
  if (out != stdout) ok &= fclose(out) == 0;
  else fflush(out);
  if (!ok) diag_error_plain("error writing '%s'", opts.output ? opts.output : "stdout");
  return ok;
}

static bool emit_text(const Module *m, const Program *p) {
  FILE *out = open_output();
  if (!out) return false;
  if (opts.emit == EMIT_AST || (!m && p))
    ast_print(p, out);
  else if (opts.emit == EMIT_DOT)
    ir_print_dot(m, out);
  else
    ir_print(m, out);
  return close_output(out);
}

/* Runs one graph pass with the verifier after it; false on error. */
static bool run_pass(const Pass *pass, Module *m) {
  double t0 = nnc_now();
  if (!pass->run(m)) return false;
  if (!ir_verify(m, pass->name)) nnc_internal_error(__FILE__, __LINE__, "the IR is invalid after %s", pass->name);
  after_stage(pass->name, m, NULL, t0);
  return true;
}

/* The graph pipeline: --passes, or the default table at this -O level.
 * Returns false on error; *stopped when --stop-after was reached. */
static bool run_graph_passes(Module *m, bool *stopped) {
  if (opts.passes) {
    char *copy = nnc_xstrdup(opts.passes);
    bool ok = true;
    for (char *tok = strtok(copy, ","); tok && ok; tok = strtok(NULL, ",")) {
      ok = run_pass(pass_find(tok), m);
      if (opts.stop_after && !strcmp(tok, opts.stop_after)) *stopped = true;
      if (*stopped) break;
    }
    free(copy);
    return ok;
  }
  for (const Pass *p = nnc_graph_passes; p->name; p++) {
    if (p->min_opt > opts.opt_level) continue;
    if (!run_pass(p, m)) return false;
    if (opts.stop_after && !strcmp(p->name, opts.stop_after)) {
      *stopped = true;
      return true;
    }
  }
  return true;
}

/* What the kernel passes take from the target and the module. */
static KPassOptions kernel_pass_options(const Module *m, const NncBackend *b) {
  KPassOptions ko;
  memset(&ko, 0, sizeof ko);
  ko.separate_contractions = b && (b->flags & NNC_BACKEND_SEPARATE_CONTRACTIONS);
  ko.batch = m->train.batch > 0 ? m->train.batch : 0;
  /* schedule-ndrange alone assumes the opencl dialect's tiles (codegen/opencl/dialects.c) */
  const char *lm = options_backend_value(&opts, "local-mem");
  ko.ndrange = (NdrangeOptions){
      .batch = ko.batch > 0 ? ko.batch : 32, .local_mem = lm ? strtoll(lm, NULL, 10) : 32768, .tile_k = 16};
  return ko;
}

/* Runs one kernel pass with the verifier after it; false on error.  A
 * pass a backend's schedule is (KPass.backend: schedule-cpu, which needs
 * the target machine) runs through that backend's hook. */
static bool run_kernel_pass(const KPass *pass, KProgram *kp, const KPassOptions *ko) {
  double t0 = nnc_now();
  if (pass->backend ? !host_schedule(backend_find(pass->backend, true), kp, &opts) : !pass->run(kp, ko)) return false;
  if (!kprog_verify(kp)) nnc_internal_error(__FILE__, __LINE__, "the kernel IR is invalid after %s", pass->name);
  after_kernel_stage(pass->name, kp, t0);
  return true;
}

/* The kernel pipeline: --kernel-passes, or the default table at this -O
 * level (none for a .kir file, which is taken as it is).  Returns false on
 * error; *stopped when --stop-after was reached. */
static bool run_kernel_passes(KProgram *kp, const KPassOptions *ko, bool from_text, bool *stopped) {
  bool ok = true;
  size_t cap = 8 + (opts.kernel_passes ? strlen(opts.kernel_passes) : 0); /* more than the names */
  const KPass **list = nnc_xmalloc(sizeof *list * cap);
  int n = 0;
  char *copy = opts.kernel_passes ? nnc_xstrdup(opts.kernel_passes) : NULL;
  for (char *tok = copy ? strtok(copy, ",") : NULL; tok; tok = strtok(NULL, ",")) list[n++] = kpass_find(tok);
  free(copy);
  for (const KPass *p = nnc_kernel_passes; !opts.kernel_passes && !from_text && p->name; p++)
    if (p->min_opt >= 0 && p->min_opt <= opts.opt_level) list[n++] = p;
  for (int i = 0; i < n && ok && !*stopped; i++) {
    ok = run_kernel_pass(list[i], kp, ko);
    *stopped = ok && opts.stop_after && !strcmp(list[i]->name, opts.stop_after);
  }
  free(list);
  return ok;
}

/* --emit=kernels, or --stop-after a kernel stage: the kernel IR as text. */
static bool emit_kernels(const KProgram *kp) {
  if (kprog_planned(kp) && !memory_check_program(kp, &opts)) return false; /* driver/memory.c */
  FILE *out = open_output();
  if (!out) return false;
  kprog_print(kp, out);
  return close_output(out);
}

/* Code generation needs the memory plan (a program read from text before
 * memplan has none) and a program that fits (driver/memory.c). */
static bool ready_for_codegen(KProgram *kp, const KPassOptions *ko) {
  if (!kprog_planned(kp)) {
    memplan(kp, ko->batch > 0 ? ko->batch : 1);
    if (!kprog_verify(kp)) nnc_internal_error(__FILE__, __LINE__, "the kernel IR is invalid after memplan");
  }
  return memory_check_program(kp, &opts);
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

int main(int argc, char **argv) {
  rt_std_fds_open(); /* an output opened while fd 1 is closed would get what nnc prints */
  diag_init(&nnc_diag);
  int rc = options_parse(argc, argv, &opts);
  if (rc >= 0) return rc;
  nnc_diag.color = opts.color == COLOR_ALWAYS || (opts.color == COLOR_AUTO && isatty(2));
  if (opts.verify) {
    nnc_diag.verify = true;
    nnc_diag.error_limit = 1000;
  }

  if (opts.check_backend) return check_backend(&opts, argv[0]); /* driver/check.c */

  const char *err = NULL;
  uint32_t fid = diag_load_file(&nnc_diag, opts.input, &err);
  if (!fid) {
    diag_error_plain("cannot read '%s': %s", opts.input, err);
    return finish();
  }

  Module *m = NULL;
  Program *prog = NULL;
  KProgram *kp = NULL;
  atexit(free_held);
  double t0 = nnc_now();
  bool from_kir = ends_with(opts.input, ".kir");
  if (from_kir) { /* what needs the graph IR */
    char what[96] = "";
    if (opts.gradcheck || opts.run) snprintf(what, sizeof what, "%s", opts.gradcheck ? "--gradcheck" : "--run");
    else if (opts.emit == EMIT_AST || opts.emit == EMIT_IR || opts.emit == EMIT_DOT || opts.emit == EMIT_ONNX)
      snprintf(what, sizeof what, "--emit=%s", opts.emit_name);
    else if (opts.stop_after && !kpass_find(opts.stop_after))
      snprintf(what, sizeof what, "--stop-after=%s", opts.stop_after);
    const NncBackend *b = opts.backend;
    if (!*what && opts.emit != EMIT_KERNELS && b && (b->flags & NNC_BACKEND_NO_KERNELS))
      snprintf(what, sizeof what, "--target=%s", opts.target);
    if (*what) {
      diag_error_plain("%s needs the graph IR (a .nn or .nnir file); '%s' holds kernel IR", what, opts.input);
      return finish();
    }
    held_program = kp = kprog_read(fid, &m);
    held_module = m;
    if (!kp || output_clobbers_input()) return finish();
    int64_t x, y; /* what the train line's data cannot feed, refused as for a .nn file */
    if (!ir_check_feeds(m, (SrcLoc){0, 0, 0}, &x, &y) || opts.verify) return finish();
    if (opts.verbose) fprintf(stderr, "nnc: %-10s %8.3f ms\n", "read", (nnc_now() - t0) * 1e3);
  } else if (ends_with(opts.input, ".nnir")) {
    if (opts.emit == EMIT_AST) {
      diag_error_plain("--emit=ast needs a .nn file, not graph IR");
      return finish();
    }
    held_module = m = ir_read(fid);
    if (!m || output_clobbers_input()) return finish();
    int64_t x, y; /* what the train line's data cannot feed, refused as for a .nn file */
    if (!ir_check_feeds(m, (SrcLoc){0, 0, 0}, &x, &y)) return finish();
    after_stage("read", m, NULL, t0);
  } else {
    prog = parse_file(&ast_arena, fid);
    after_stage("parse", NULL, prog, t0);
    if (diag_error_count() || output_clobbers_input()) return finish();
    if (opts.emit == EMIT_AST || (opts.stop_after && !strcmp(opts.stop_after, "parse"))) {
      if (!opts.verify && opts.emit == EMIT_AST) emit_text(NULL, prog);
      return finish();
    }
    t0 = nnc_now();
    ElabOptions eo = {opts.model, find_stdlib()};
    held_module = m = elaborate(prog, &ast_arena, &eo);
    if (!m || output_clobbers_input()) return finish(); /* the imports are read now */
    if (!ir_verify(m, "elaborate"))
      nnc_internal_error(__FILE__, __LINE__, "the IR is invalid after elaborate");
    after_stage("elaborate", m, NULL, t0);
    if (opts.stop_after && !strcmp(opts.stop_after, "elaborate")) {
      if (!opts.verify) emit_text(m, NULL);
      return finish();
    }
  }

  /* --gradcheck differentiates its own probe of the elaborated module
   * (driver/run.c), so it branches off before the graph passes. */
  if (opts.gradcheck) {
    int status = run_gradcheck(m, &opts);
    int code = finish();
    free_held();
    return status ? status : code;
  }

  /* The target's backend (codegen/backend.h): built in or a plugin's, found
   * by options_parse.  Each one but interp compiles the kernel IR. */
  const NncBackend *backend = opts.backend;
  int status = 0;
  if (!from_kir) {
    bool stopped = false;
    if (!run_graph_passes(m, &stopped)) return finish();
    if (opts.verify) return finish();
    if (stopped || opts.emit == EMIT_IR || opts.emit == EMIT_DOT) {
      emit_text(m, NULL);
      return finish();
    }
    if (opts.emit == EMIT_ONNX) { /* the prediction with the trained weights (driver/onnx.c) */
      onnx_write(m, opts.weights, opts.output);
      return finish();
    }
    if (opts.run) status = run_training(m, &opts); /* --run: train in the interpreter (driver/run.c) */
    if (opts.emit != EMIT_KERNELS && (!backend || (backend->flags & NNC_BACKEND_NO_KERNELS))) {
      int code = finish();
      free_held();
      return status ? status : code;
    }
    /* lowering: one kernel per materialized value, fused by the kernel pipeline */
    t0 = nnc_now();
    held_program = kp = lower_program(m, &(LowerOptions){.opt_level = 0});
    if (!kprog_verify(kp)) nnc_internal_error(__FILE__, __LINE__, "the kernel IR is invalid after lowering");
    after_kernel_stage("lower", kp, t0);
    if (opts.stop_after && !strcmp(opts.stop_after, "lower")) {
      emit_kernels(kp);
      return finish();
    }
  }

  KPassOptions ko = kernel_pass_options(m, backend);
  bool stopped = false;
  if (!run_kernel_passes(kp, &ko, from_kir, &stopped)) return finish();
  /* --emit=kernels without --kernel-passes: with the schedule the target would choose */
  if (!stopped && opts.emit == EMIT_KERNELS && !opts.kernel_passes && !host_schedule(backend, kp, &opts))
    return finish();
  if (stopped || opts.emit == EMIT_KERNELS) {
    emit_kernels(kp);
    return finish();
  }
  if (backend && !(backend->flags & NNC_BACKEND_NO_KERNELS) && ready_for_codegen(kp, &ko))
    host_compile(backend, kp, &opts); /* errors are counted by finish() */
  int code = finish();
  free_held();
  return status ? status : code;
}
