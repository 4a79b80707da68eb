/* driver/main.c - nnc: the pipeline as a straight list of steps.
 *
 *   read FILE  ->  parse  ->  elaborate  ->  graph passes  ->  emit / target
 *
 * A .nnir file skips the frontend: its graph IR is read back and goes
 * through the same passes, so each pass can be tested alone on IR text.
 */
#include "codegen/cpu/cpu.h"
#include "codegen/gpu/gpu.h"
#include "codegen/opencl/opencl.h"
#include "codegen/target.h"
#include "driver/link.h"
#include "driver/memory.h"
#include "driver/options.h"
#include "driver/run.h"
#include "frontend/ast.h"
#include "frontend/diag.h"
#include "frontend/elab.h"
#include "ir/ir.h"
#include "passes/lower.h"
#include "passes/pass.h"

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

static int finish(void) {
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
static KProgram *lower_for_codegen(Module *m) {
  double t0 = now();
  /* NDRange targets schedule a contraction only when it is alone in its kernel */
  bool ndrange = strcmp(opts.target, "cpu") && strcmp(opts.target, "interp");
  LowerOptions lo = {.opt_level = opts.opt_level, .separate_contractions = ndrange};
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

/* --target=cpu: lower to kernels, compile them with LLVM, and write what
 * --emit asked for (llvm, asm, obj) or link a trainer executable (-o,
 * default 'train') with the descriptor and libnnrt. */
static bool build_cpu(Module *m) {
  bool emit = opts.emit == EMIT_LLVM || opts.emit == EMIT_ASM || opts.emit == EMIT_OBJ;
  const char *out = opts.output ? opts.output : "train";
  if (!emit && !strcmp(out, "-")) {
    diag_error_plain("a trainer executable cannot be written to stdout; give -o FILE");
    return false;
  }
  KProgram *kp = lower_for_codegen(m);
  if (!kp) return false;
  CpuOptions co = {opts.opt_level, opts.cpu, opts.verbose, opts.schedule};
  bool ok;
  if (emit) {
    CpuOutKind kind = opts.emit == EMIT_LLVM ? CPU_OUT_LLVM : opts.emit == EMIT_ASM ? CPU_OUT_ASM : CPU_OUT_OBJ;
    ok = cpu_compile(kp, &co, kind, opts.output);
  } else {
    LinkTemp tmp;
    ok = link_temp_open(&tmp, opts.verbose);
    const char *obj = ok ? link_temp_file(&tmp, "kernels.o") : NULL;
    ok = obj && cpu_compile(kp, &co, CPU_OUT_OBJ, obj);
    ok = ok && link_trainer(kp, &tmp, "cpu", NULL, 0, NULL, &obj, 1, out, opts.verbose);
    link_temp_close(&tmp);
  }
  kprog_free(kp);
  return ok;
}

/* --target=opencl|fpga|asic: lower, render OpenCL C (codegen/opencl), then
 * --emit=cl writes it (and its launch plan), or the descriptor with the
 * source embedded is linked into a trainer executable. */
static bool build_opencl(Module *m) {
  const char *out = opts.output ? opts.output : "train";
  if (opts.emit != EMIT_NONE && opts.emit != EMIT_CL) {
    diag_error_plain("--target=%s writes OpenCL C: use --emit=cl (llvm, asm and obj are the cpu target's)", opts.target);
    return false;
  }
  if (opts.emit != EMIT_CL && !strcmp(out, "-")) {
    diag_error_plain("a trainer executable cannot be written to stdout; give -o FILE");
    return false;
  }
  KProgram *kp = lower_for_codegen(m);
  if (!kp) return false;
  OclOptions oo = {opts.target, opts.local_mem, opts.batch > 0 ? opts.batch : 0};
  OclCode code;
  bool ok = ocl_generate(kp, &oo, &code);
  if (ok && opts.emit == EMIT_CL) {
    ok = ocl_emit_files(kp, &code, opts.output);
  } else if (ok) {
    LinkTemp tmp;
    LinkRuntime rt;
    ok = link_temp_open(&tmp, opts.verbose);
    const char *desc = ok ? link_temp_file(&tmp, "model.c") : NULL;
    ok = desc && link_find_runtime(NULL, &rt) && ocl_write_descriptor(kp, &code, desc) &&
         link_executable(&rt, &desc, 1, out, opts.verbose);
    link_temp_close(&tmp);
  }
  ocl_code_free(&code);
  kprog_free(kp);
  return ok;
}

/* --target=gpu: lower, schedule and compile the kernels to PTX through
 * LLVM's NVPTX backend (codegen/gpu), then --emit=ptx (or llvm) writes it,
 * or the descriptor with the PTX embedded is linked into a trainer
 * executable, which opens the CUDA driver when it runs. */
static bool build_gpu(Module *m) {
  const char *out = opts.output ? opts.output : "train";
  bool emit = opts.emit == EMIT_PTX || opts.emit == EMIT_LLVM;
  if (opts.emit != EMIT_NONE && !emit) {
    diag_error_plain("--target=gpu writes PTX: use --emit=ptx or --emit=llvm (asm, obj and cl are other targets')");
    return false;
  }
  if (!emit && !strcmp(out, "-")) {
    diag_error_plain("a trainer executable cannot be written to stdout; give -o FILE");
    return false;
  }
  KProgram *kp = lower_for_codegen(m);
  if (!kp) return false;
  GpuOptions go = {opts.opt_level, opts.gpu_arch, opts.verbose, NULL, opts.batch > 0 ? opts.batch : 0};
  char *code = NULL;
  size_t len = 0;
  bool ok = gpu_compile(kp, &go, opts.emit == EMIT_LLVM ? GPU_OUT_LLVM : GPU_OUT_PTX, &code, &len);
  if (ok && emit) {
    FILE *f = open_output();
    ok = f && fwrite(code, 1, len, f) == len;
    if (f) ok &= f == stdout ? fflush(f) == 0 : fclose(f) == 0;
    if (f && !ok) diag_error_plain("error writing '%s'", opts.output ? opts.output : "stdout");
  } else if (ok) {
    LinkTemp tmp;
    ok = link_temp_open(&tmp, opts.verbose);
    ok = ok && link_trainer(kp, &tmp, "gpu", code, len, NULL, NULL, 0, out, opts.verbose);
    link_temp_close(&tmp);
  }
  free(code);
  kprog_free(kp);
  return ok;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

int main(int argc, char **argv) {
  diag_init(&nnc_diag);
  int rc = options_parse(argc, argv, &opts);
  if (rc >= 0) return rc;
  nnc_diag.color = opts.color == COLOR_ALWAYS || (opts.color == COLOR_AUTO && isatty(2));
  if (opts.verify) {
    nnc_diag.verify = true;
    nnc_diag.error_limit = 1000;
  }

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
    if (!m) return finish();
    after_stage("read", m, NULL, t0);
  } else {
    prog = parse_file(&ast_arena, fid);
    after_stage("parse", NULL, prog, t0);
    if (diag_error_count()) return finish();
    if (opts.emit == EMIT_AST || (opts.stop_after && !strcmp(opts.stop_after, "parse"))) {
      if (!opts.verify && opts.emit == EMIT_AST) emit_text(NULL, prog);
      return finish();
    }
    t0 = now();
    ElabOptions eo = {opts.model, find_stdlib()};
    held_module = m = elaborate(prog, &ast_arena, &eo);
    if (!m) return finish();
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
  if (opts.emit == EMIT_KERNELS) { /* the kernel IR, as every compiling target starts from it */
    KProgram *kp = lower_for_codegen(m);
    if (kp && !strcmp(opts.target, "cpu")) { /* with the cpu schedule's tiles (passes/schedule_cpu.c) */
      CpuOptions co = {.opt_level = opts.opt_level, .cpu = opts.cpu, .schedule = opts.schedule};
      if (!cpu_schedule(kp, &co)) {
        kprog_free(kp);
        return finish();
      }
    }
    FILE *out = kp ? open_output() : NULL;
    if (out) {
      kprog_print(kp, out);
      if (out != stdout) fclose(out);
    }
    kprog_free(kp);
    return finish();
  }

  const TargetInfo *t = target_find(opts.target);
  if (!t->available)
    diag_error_plain("the '%s' target is not built into this nnc yet; use --emit=ir, --emit=dot or --emit=ast",
                     t->name);
  int status = 0;
  if (t->available && opts.run) status = run_training(m, &opts); /* --run: train in the interpreter (driver/run.c) */
  if (t->available && !strcmp(t->name, "cpu")) build_cpu(m);      /* errors are counted by finish() */
  if (t->available && !strcmp(t->name, "gpu")) build_gpu(m);
  if (t->available && (!strcmp(t->name, "opencl") || !strcmp(t->name, "fpga") || !strcmp(t->name, "asic")))
    build_opencl(m);
  int code = finish();
  free_held();
  return status ? status : code;
}
