/* driver/main.c - nnc: the pipeline as a straight list of steps.
 *
 *   read FILE  ->  parse  ->  elaborate  ->  graph passes  ->  emit / target
 *
 * A .nnir file skips the frontend: its graph IR is read back and goes
 * through the same passes, so each pass can be tested alone on IR text.
 */
#include "codegen/backend.h"
#include "driver/check.h"
#include "driver/host.h"
#include "driver/memory.h"
#include "driver/options.h"
#include "driver/run.h"
#include "frontend/ast.h"
#include "support/diag.h"
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
static Arena ast_arena;
static void free_held(void) {
  if (held_module) ir_module_free(held_module);
  held_module = NULL;
  arena_free(&ast_arena);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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
  if (opts.verbose) fprintf(stderr, "nnc: %-10s %8.3f ms\n", stage, (now() - t0) * 1e3);
  if (!should_print_after(stage)) return;
  fprintf(stderr, "; *** IR after %s ***\n", stage);
  if (m)
    ir_print(m, stderr);
  else if (p)
    ast_print(p, stderr);
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

static bool emit_text(const Module *m, const Program *p) {
  FILE *out = open_output();
  if (!out) return false;
  if (opts.emit == EMIT_AST || (!m && p))
    ast_print(p, out);
  else if (opts.emit == EMIT_DOT)
    ir_print_dot(m, out);
  else
    ir_print(m, out);
  bool ok = !ferror(out);
  if (out != stdout) ok &= fclose(out) == 0;
  else fflush(out);
  if (!ok) diag_error_plain("error writing '%s'", opts.output ? opts.output : "stdout");
  return ok;
}

/* Runs one graph pass with the verifier after it; false on error. */
static bool run_pass(const Pass *pass, Module *m) {
  double t0 = now();
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

/* The graph -> kernel IR step every compiling target starts with:
 * lowering (fusion, in-place updates), the memory plan, the verifier. */
static KProgram *lower_for_codegen(Module *m, const NncBackend *b) {
  double t0 = now();
  LowerOptions lo = {.opt_level = opts.opt_level,
                     .separate_contractions = b && (b->flags & NNC_BACKEND_SEPARATE_CONTRACTIONS)};
  KProgram *kp = lower_program(m, &lo);
  if (!kp) return NULL;
  memplan(kp, m->train.batch > 0 ? m->train.batch : 1);
  if (!kprog_verify(kp)) nnc_internal_error(__FILE__, __LINE__, "the kernel IR is invalid after lowering");
  if (opts.verbose) fprintf(stderr, "nnc: %-10s %8.3f ms\n", "lower", (now() - t0) * 1e3);
  if (!memory_check_program(kp, &opts)) { /* driver/memory.c: refuse what cannot fit */
    kprog_free(kp);
    return NULL;
  }
  return kp;
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
  atexit(free_held);
  double t0 = now();
  if (ends_with(opts.input, ".nnir")) {
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
    t0 = now();
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

  bool stopped = false;
  if (!run_graph_passes(m, &stopped)) return finish();
  if (opts.verify) return finish();
  if (stopped || opts.emit == EMIT_IR || opts.emit == EMIT_DOT) {
    emit_text(m, NULL);
    return finish();
  }
  if (opts.emit == EMIT_KERNELS) { /* the kernel IR as lowered, with the schedule the target would choose */
    KProgram *kp = lower_for_codegen(m, opts.backend);
    if (kp && !host_schedule(opts.backend, kp, &opts)) {
      kprog_free(kp);
      return finish();
    }
    FILE *out = kp ? open_output() : NULL;
    if (out) {
      kprog_print(kp, out);
      if (out != stdout) fclose(out);
    }
    kprog_free(kp);
    return finish();
  }

  /* The target's backend (codegen/backend.h): built in or a plugin's, found
   * by options_parse.  Each one but interp compiles the kernel IR. */
  const NncBackend *backend = opts.backend;
  int status = 0;
  if (opts.run) status = run_training(m, &opts); /* --run: train in the interpreter (driver/run.c) */
  if (!(backend->flags & NNC_BACKEND_NO_KERNELS)) {
    KProgram *kp = lower_for_codegen(m, backend);
    if (kp) host_compile(backend, kp, &opts); /* errors are counted by finish() */
    kprog_free(kp);
  }
  int code = finish();
  free_held();
  return status ? status : code;
}
