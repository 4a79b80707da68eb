/* driver/options.c - parsing and documenting the nnc command line.
 *
 * Options take `--name=value` or `--name value`.  An unknown option or value
 * is an error (with a suggestion), never ignored.
 */
#include "driver/options.h"

#include "codegen/gpu/gpu.h"
#include "codegen/backend.h"
#include "support/diag.h"
#include "passes/pass.h"
#include "runtime/memlimit.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: nnc FILE [options]\n"
    "\n"
    "Compiles a .nn model (or a .nnir graph IR or .kir kernel IR file) into a\n"
    "training program.\n"
    "\n"
    "Output:\n"
    "  -o FILE                  write the output to FILE ('-' = stdout)\n"
    "  --target=NAME            cpu (default), gpu, opencl, fpga, asic, interp, or\n"
    "                           a plugin's target (see --list-targets)\n"
    "  --emit=KIND              ast: the syntax tree; ir: the graph IR (text);\n"
    "                           dot: the graph IR for Graphviz; kernels: the\n"
    "                           kernel IR after lowering; llvm, asm, obj:\n"
    "                           the cpu target's LLVM IR, assembly or object file;\n"
    "                           cl: the OpenCL C of --target=opencl (implied), fpga\n"
    "                           or asic, and beside -o FILE.cl its launch plan\n"
    "                           FILE.plan.json; ptx: the PTX of --target=gpu\n"
    "                           (implied; --target=gpu --emit=llvm: its LLVM IR)\n"
    "                           (without --emit: a trainer executable, -o\n"
    "                           default 'train')\n"
    "  --cpu=NAME               the CPU to generate code for (an LLVM CPU name such\n"
    "                           as x86-64-v3 or skylake-avx512; default: this host)\n"
    "  --schedule=SPEC          the cpu target's matmul tiles: [KERNEL:]mr=N,nr=N,kc=N,\n"
    "                           mc=N,nc=N or [KERNEL:]off, items separated by ';',\n"
    "                           or @FILE (docs/codegen-cpu.md); --emit=kernels\n"
    "                           shows the schedule\n"
    "  --local-mem=BYTES        local memory a kernel may use for matmul tiles\n"
    "                           (--target=asic or opencl; default 32768)\n"
    "  --gpu-arch=sm_XY         the NVIDIA GPU generation to generate PTX for\n"
    "                           (--target=gpu): sm_75 .. sm_90a, default sm_90\n"
    "  --model=NAME             the model to compile when a file has several\n"
    "\n"
    "Pipeline:\n"
    "  -O0 .. -O3               optimisation level (default -O2)\n"
    "  --print-after=PASS       print the IR after PASS to stderr (repeatable,\n"
    "                           or a comma list); passes: parse, elaborate, the\n"
    "                           graph passes, lower and the kernel passes\n"
    "                           (see --list-passes)\n"
    "  --print-after-all        print the IR after every pass\n"
    "  --stop-after=PASS        stop after PASS and emit its IR\n"
    "  --passes=A,B,...         run exactly these graph passes, in order\n"
    "  --kernel-passes=A,B,...  run exactly these kernel passes, in order (after\n"
    "                           lowering, or on a .kir file's kernel IR)\n"
    "  --list-passes            list the graph and kernel passes\n"
    "  --stats                  print pass statistics to stderr\n"
    "\n"
    "Diagnostics:\n"
    "  --color=WHEN             auto (default), always or never\n"
    "  --verify                 check diagnostics against '# expected-error {{...}}'\n"
    "                           comments instead of printing them (for tests)\n"
    "  -v                       print the stages and their times\n"
    "\n"
    "Training in the interpreter:\n"
    "  --run                    train the model as its train block says (implies\n"
    "                           --target=interp); prints one line per epoch\n"
    "  --gradcheck              check the gradients against central differences\n"
    "                           of the mean loss (f64, a random batch of 4)\n"
    "  --gradcheck-tol=X        largest relative error accepted (default 1e-4)\n"
    "  --epochs=N, --batch=N    override the train block\n"
    "  --steps=N                stop after N training steps\n"
    "  --lr=X                   set the optimizer's 'lr'\n"
    "  --hyper NAME=VALUE       set any optimizer hyper-parameter (repeatable)\n"
    "  --seed=N                 initialisation and shuffling seed\n"
    "  --data=PATH              train on PATH instead of the train block's data\n"
    "  --no-shuffle             keep the data in file order\n"
    "  --save=FILE              write the trained parameters as safetensors\n"
    "  --metrics=FILE           write one CSV row per epoch\n"
    "  --f64                    run the interpreter in double precision\n"
    "  --checkpoint=DIR         save DIR/checkpoint.safetensors every epoch (atomically)\n"
    "  --checkpoint-every=N     ... every N steps instead\n"
    "  --resume=DIR             continue from DIR's checkpoint, bit for bit\n"
    "  --overwrite-checkpoint   replace a checkpoint already in --checkpoint's DIR\n"
    "  --max-memory=BYTES       refuse models needing more memory (K, M, G, T\n"
    "                           suffixes; default: this machine's physical memory)\n"
    "\n"
    "Backends and plugins (docs/backends.md):\n"
    "  --plugin=PATH.so         load a backend plugin (repeatable); plugins are also\n"
    "                           found in $NNC_PLUGIN_PATH and PREFIX/lib/nnc/plugins\n"
    "  --backend-opt=KEY=VALUE  an option for the target's backend (repeatable)\n"
    "  --list-targets           list the built-in and plugin targets\n"
    "  --check-backend=NAME     the conformance check: train small models with the\n"
    "                           target NAME and compare with the interpreter\n"
    "  --check-tol=X            its largest relative difference (default 1e-4)\n"
    "\n"
    "  --version, --help\n"
    "\n"
    "Exit status: 0 on success, 1 on an error in the input, 70 on an internal error.\n";

static const char *const option_names[] = {
    "-o", "--target", "--emit", "--model", "--print-after", "--print-after-all", "--stop-after",
    "--passes", "--kernel-passes", "--list-passes", "--stats", "--color", "--verify", "--list-targets", "--version",
    "--help", "-O0", "-O1", "-O2", "-O3", "-v", "--run", "--gradcheck", "--gradcheck-tol", "--epochs",
    "--batch", "--steps", "--lr", "--hyper", "--seed", "--data", "--no-shuffle", "--save", "--metrics", "--f64", "--cpu", "--schedule",
    "--local-mem", "--checkpoint", "--checkpoint-every", "--resume", "--overwrite-checkpoint", "--max-memory", "--gpu-arch", "--plugin", "--backend-opt", "--check-backend", "--check-tol", NULL};

static void bad(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "nnc: error: ");
  fprintf(stderr, fmt, a, b);
  fprintf(stderr, "\n");
}

/* The known option sharing the longest prefix with s, for suggestions. */
static const char *closest_option(const char *s) {
  const char *best = NULL;
  size_t bestn = 3;
  for (int i = 0; option_names[i]; i++) {
    size_t n = 0;
    while (s[n] && s[n] == option_names[i][n]) n++;
    if (n > bestn) best = option_names[i], bestn = n;
  }
  return best;
}

/* A whole number in [min, max] from an option's value. */
static bool int_value(const char *name, const char *value, int64_t min, int64_t max, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(value, &end, 10);
  if (!*value || *end || errno || v < min || v > max) {
    char range[96];
    snprintf(range, sizeof range, "%lld to %lld", (long long)min, (long long)max);
    bad("option '%s' needs a whole number from %s", name, range);
    return false;
  }
  *out = v;
  return true;
}

/* A finite number from an option's value. */
static bool real_value(const char *name, const char *value, double *out) {
  char *end;
  double v = strtod(value, &end);
  if (!*value || *end || !isfinite(v)) {
    bad("option '%s' needs a number, found '%s'", name, value);
    return false;
  }
  *out = v;
  return true;
}

/* A hyper-parameter's value (--lr, --hyper NAME=VALUE): an f32 in the
 * trainer, so within its range (1e39 would be inf); a learning rate is
 * positive, as in the train block. */
static bool hyper_value(const char *name, const char *hyper, const char *value, double *out) {
  if (!real_value(name, value, out)) return false;
  if (!isfinite((float)*out)) {
    bad("option '%s' needs a number within the f32 range, found '%s'", name, value);
    return false;
  }
  if (!strcmp(hyper, "lr") && !((float)*out > 0)) { /* 1e-50 is 0 in f32 */
    bad("option '%s' needs a positive learning rate, found '%s'", name, value);
    return false;
  }
  return true;
}

static bool valid_stage(const char *name) {
  return !strcmp(name, "parse") || !strcmp(name, "elaborate") || pass_find(name) || !strcmp(name, "lower") ||
         kpass_find(name);
}

int options_parse(int argc, char **argv, Options *o) {
  memset(o, 0, sizeof *o);
  o->opt_level = 2;
  o->target = "cpu";
  o->epochs = o->batch = o->steps = o->seed = -1;
  o->gradcheck_tol = 1e-4;
  o->check_tol = 1e-4;
  bool target_given = false, list_targets = false;
  const char *color_env = getenv("NNC_COLOR");
  o->color = color_env && !strcmp(color_env, "never") ? COLOR_NEVER
             : color_env && !strcmp(color_env, "always") ? COLOR_ALWAYS
                                                          : COLOR_AUTO;
  for (int i = 1; i < argc; i++) {
    char *arg = argv[i];
    if (arg[0] != '-' || !strcmp(arg, "-")) {
      if (o->input) {
        bad("more than one input file ('%s' and '%s')", o->input, arg);
        return 1;
      }
      o->input = arg;
      continue;
    }
    /* Split --name=value; flags that take a value may also take the next argument. */
    char name[64];
    const char *value = NULL;
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    if (n >= sizeof name) n = sizeof name - 1;
    memcpy(name, arg, n);
    name[n] = 0;
    if (eq) value = eq + 1;
    static const char *const with_value[] = {"-o", "--target", "--emit", "--model", "--print-after",
                                             "--stop-after", "--passes", "--kernel-passes", "--color",
                                             "--gradcheck-tol",
                                             "--epochs", "--batch", "--steps", "--lr", "--hyper", "--seed",
                                             "--data", "--save", "--metrics", "--cpu", "--schedule",
                                             "--local-mem", "--checkpoint", "--checkpoint-every", "--resume",
                                             "--max-memory", "--gpu-arch", "--plugin", "--backend-opt",
                                             "--check-backend", "--check-tol", NULL};
    bool takes = false;
    for (int k = 0; with_value[k]; k++) takes |= !strcmp(name, with_value[k]);
    if (takes && !value) {
      if (i + 1 >= argc) {
        bad("option '%s' needs a value%s", name, "");
        return 1;
      }
      value = argv[++i];
    } else if (!takes && value) {
      bad("option '%s' does not take a value%s", name, "");
      return 1;
    }

    if (!strcmp(name, "--help")) {
      fputs(usage, stdout);
      return 0;
    } else if (!strcmp(name, "--version")) {
      printf("nnc %s (LLVM %s)\n", NNC_VERSION, NNC_LLVM_VERSION);
      return 0;
    } else if (!strcmp(name, "--list-targets")) {
      list_targets = true;
    } else if (!strcmp(name, "--list-passes")) {
      printf("Passes (default order):\n  parse\n  elaborate\n");
      for (const Pass *p = nnc_graph_passes; p->name; p++) printf("  %-12s %s\n", p->name, p->summary);
      printf("  lower        the training step as kernel IR, one kernel per materialized value\n");
      printf("\nKernel passes (--kernel-passes; the first two by default, the rest when named):\n");
      for (const KPass *p = nnc_kernel_passes; p->name; p++) printf("  %-19s %s\n", p->name, p->summary);
      return 0;
    } else if (!strcmp(name, "-o")) {
      o->output = value;
    } else if (!strcmp(name, "--target")) {
      o->target = value; /* checked once the plugins are loaded */
      target_given = true;
    } else if (!strcmp(name, "--emit")) {
      o->emit_name = value;
      if (!strcmp(value, "ast")) o->emit = EMIT_AST;
      else if (!strcmp(value, "ir")) o->emit = EMIT_IR;
      else if (!strcmp(value, "dot")) o->emit = EMIT_DOT;
      else if (!strcmp(value, "llvm")) o->emit = EMIT_LLVM;
      else if (!strcmp(value, "asm")) o->emit = EMIT_ASM;
      else if (!strcmp(value, "obj")) o->emit = EMIT_OBJ;
      else if (!strcmp(value, "kernels")) o->emit = EMIT_KERNELS;
      else if (!strcmp(value, "cl")) o->emit = EMIT_CL;
      else if (!strcmp(value, "ptx")) o->emit = EMIT_PTX;
      else o->emit = EMIT_OTHER; /* a backend's own kind: checked with the target */
    } else if (!strcmp(name, "--model")) {
      o->model = value;
    } else if (!strcmp(name, "--print-after")) {
      char *copy = strdup(value);
      for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
        if (!valid_stage(tok)) {
          bad("unknown pass '%s' in --print-after (see --list-passes)%s", tok, "");
          return 1;
        }
        if (o->nprint_after < MAX_PRINT_AFTER) o->print_after[o->nprint_after++] = tok;
      }
    } else if (!strcmp(name, "--print-after-all")) {
      o->print_after_all = true;
    } else if (!strcmp(name, "--stop-after")) {
      if (!valid_stage(value)) {
        bad("unknown pass '%s' in --stop-after (see --list-passes)%s", value, "");
        return 1;
      }
      o->stop_after = value;
    } else if (!strcmp(name, "--passes")) {
      char *copy = strdup(value);
      for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ","))
        if (!pass_find(tok)) {
          bad("unknown pass '%s' in --passes (see --list-passes)%s", tok, "");
          return 1;
        }
      free(copy);
      o->passes = value;
    } else if (!strcmp(name, "--kernel-passes")) {
      char *copy = nnc_xstrdup(value);
      for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ","))
        if (!kpass_find(tok)) {
          bad("unknown kernel pass '%s' in --kernel-passes (see --list-passes)%s", tok, "");
          free(copy);
          return 1;
        }
      free(copy);
      o->kernel_passes = value;
    } else if (!strcmp(name, "--stats")) {
      o->stats = true;
    } else if (!strcmp(name, "--color")) {
      if (!strcmp(value, "auto")) o->color = COLOR_AUTO;
      else if (!strcmp(value, "always")) o->color = COLOR_ALWAYS;
      else if (!strcmp(value, "never")) o->color = COLOR_NEVER;
      else {
        bad("unknown --color value '%s'; expected auto, always or never%s", value, "");
        return 1;
      }
    } else if (!strcmp(name, "--verify")) {
      o->verify = true;
    } else if (!strcmp(name, "-v")) {
      o->verbose = true;
    } else if (!strcmp(name, "--run")) {
      o->run = true;
    } else if (!strcmp(name, "--gradcheck")) {
      o->gradcheck = true;
    } else if (!strcmp(name, "--gradcheck-tol")) {
      if (!real_value(name, value, &o->gradcheck_tol)) return 1;
      if (o->gradcheck_tol <= 0) {
        bad("option '%s' needs a positive number, found '%s'", name, value);
        return 1;
      }
    } else if (!strcmp(name, "--epochs")) {
      if (!int_value(name, value, 1, INT64_C(1) << 30, &o->epochs)) return 1;
    } else if (!strcmp(name, "--batch")) {
      if (!int_value(name, value, 1, INT64_C(1) << 24, &o->batch)) return 1;
    } else if (!strcmp(name, "--steps")) {
      if (!int_value(name, value, 1, INT64_MAX, &o->steps)) return 1;
    } else if (!strcmp(name, "--seed")) {
      if (!int_value(name, value, 0, INT64_C(1) << 53, &o->seed)) return 1;
    } else if (!strcmp(name, "--lr")) {
      if (!hyper_value(name, "lr", value, &o->lr)) return 1;
      o->has_lr = true;
    } else if (!strcmp(name, "--hyper")) {
      const char *eqv = strchr(value, '=');
      double v;
      if (!eqv || eqv == value) {
        bad("option '%s' needs NAME=VALUE, found '%s'", name, value);
        return 1;
      }
      char hyper[64];
      snprintf(hyper, sizeof hyper, "%.*s", (int)(eqv - value), value);
      if (!hyper_value(name, hyper, eqv + 1, &v)) return 1;
      if (o->nhypers == MAX_HYPERS) {
        bad("too many '%s' options (limit %s)", name, "32");
        return 1;
      }
      o->hypers[o->nhypers++] = value;
    } else if (!strcmp(name, "--data")) {
      o->data = value;
    } else if (!strcmp(name, "--no-shuffle")) {
      o->no_shuffle = true;
    } else if (!strcmp(name, "--save")) {
      o->save = value;
    } else if (!strcmp(name, "--metrics")) {
      o->metrics = value;
    } else if (!strcmp(name, "--f64")) {
      o->f64 = true;
    } else if (!strcmp(name, "--checkpoint")) {
      o->checkpoint = value;
    } else if (!strcmp(name, "--checkpoint-every")) {
      if (!int_value(name, value, 1, INT64_MAX, &o->checkpoint_every)) return 1;
    } else if (!strcmp(name, "--resume")) {
      o->resume = value;
    } else if (!strcmp(name, "--overwrite-checkpoint")) {
      o->overwrite_checkpoint = true;
    } else if (!strcmp(name, "--max-memory")) {
      if (rt_parse_bytes(value, &o->max_memory) != 0) {
        bad("option '%s' needs a size in bytes, with an optional K, M, G or T suffix; found '%s'", name, value);
        return 1;
      }
    } else if (!strcmp(name, "--cpu")) {
      if (!*value) {
        bad("option '%s' needs a CPU name%s", name, "");
        return 1;
      }
      o->cpu = value;
    } else if (!strcmp(name, "--schedule")) {
      if (!*value) {
        bad("option '%s' needs a schedule (for example --schedule=kc=128,mc=96)%s", name, "");
        return 1;
      }
      o->schedule = value;
    } else if (!strcmp(name, "--local-mem")) {
      if (!int_value(name, value, 1, INT64_C(1) << 31, &o->local_mem)) return 1;
    } else if (!strcmp(name, "--gpu-arch")) {
      if (!gpu_arch_valid(value)) {
        bad("unknown GPU architecture '%s' in --gpu-arch; expected %s", value, gpu_arch_list);
        return 1;
      }
      o->gpu_arch = value;
    } else if (!strcmp(name, "--plugin")) {
      if (o->nplugins == MAX_PLUGINS) {
        bad("too many '%s' options (limit %s)", name, "32");
        return 1;
      }
      o->plugins[o->nplugins++] = value;
    } else if (!strcmp(name, "--backend-opt")) {
      const char *eqv = strchr(value, '=');
      if (!eqv || eqv == value) {
        bad("option '%s' needs KEY=VALUE, found '%s'", name, value);
        return 1;
      }
      if (o->nbackend_opts == MAX_BACKEND_OPTS) {
        bad("too many '%s' options (limit %s)", name, "32");
        return 1;
      }
      o->backend_opts[o->nbackend_opts++] = value;
    } else if (!strcmp(name, "--check-backend")) {
      o->check_backend = value;
    } else if (!strcmp(name, "--check-tol")) {
      if (!real_value(name, value, &o->check_tol)) return 1;
      if (o->check_tol <= 0) {
        bad("option '%s' needs a positive number, found '%s'", name, value);
        return 1;
      }
    } else if (name[0] == '-' && name[1] == 'O' && name[2] >= '0' && name[2] <= '3' && !name[3]) {
      o->opt_level = name[2] - '0';
    } else {
      const char *hint = closest_option(name);
      if (hint)
        bad("unknown option '%s'; did you mean '%s'?", name, hint);
      else
        bad("unknown option '%s'%s", name, "");
      return 1;
    }
  }
  /* Plugins, then the commands that need no input file. */
  for (int i = 0; i < o->nplugins; i++)
    if (!backend_load_plugin(o->plugins[i])) return 1;
  if (list_targets) {
    if (!backend_load_search_path()) return 1;
    printf("Targets:\n");
    for (int i = 0, n = backend_count(); i < n; i++) {
      const char *origin;
      const NncBackend *b = backend_at(i, &origin);
      printf("  %-8s %s", b->name, b->description ? b->description : "");
      if (origin) printf(" [plugin %s]", origin);
      putchar('\n');
    }
    return 0;
  }
  if (o->check_backend) {
    if (o->input) {
      bad("--check-backend=%s takes no input file ('%s'): it compiles its own models", o->check_backend, o->input);
      return 1;
    }
    if (!backend_find(o->check_backend, true)) {
      if (!diag_error_count())
        bad("unknown target '%s' in --check-backend (see --list-targets; load a plugin with --plugin=PATH)%s",
            o->check_backend, "");
      return 1;
    }
    return -1;
  }
  if (!o->input) {
    fputs("nnc: error: no input file (try 'nnc --help')\n", stderr);
    return 1;
  }
  const NncBackend *backend = backend_find(o->target, true);
  if (!backend) {
    if (!diag_error_count())
      bad("unknown target '%s'; expected cpu, gpu, opencl, fpga, asic, interp or a plugin's (see --list-targets)%s",
          o->target, "");
    return 1;
  }
  if (o->emit == EMIT_OTHER && !backend_list_has(backend->emits, o->emit_name)) {
    const char *origin = NULL;
    for (int i = 0, n = backend_count(); i < n; i++)
      if (backend_at(i, &origin) == backend) break;
    fprintf(stderr, "nnc: error: unknown --emit kind '%s'; expected ast, ir, dot, kernels, llvm, asm, obj, cl or ptx",
            o->emit_name);
    if (origin && backend->emits && *backend->emits)
      fprintf(stderr, " (--target=%s: %s)", o->target, backend->emits);
    fputc('\n', stderr);
    return 1;
  }
  if (o->emit == EMIT_OBJ && (!o->output || !strcmp(o->output, "-"))) {
    bad("--emit=obj writes a binary file: give it with -o FILE%s%s", "", "");
    return 1;
  }
  bool ocl = !strcmp(o->target, "opencl") || !strcmp(o->target, "fpga") || !strcmp(o->target, "asic");
  if (o->emit == EMIT_CL && !target_given) o->target = "opencl", ocl = true;
  if (o->emit == EMIT_CL && !ocl) {
    bad("--emit=cl writes OpenCL C: use it with --target=opencl, fpga or asic, not %s%s", o->target, "");
    return 1;
  }
  if (o->emit == EMIT_PTX && !target_given) o->target = "gpu";
  if (o->emit == EMIT_PTX && strcmp(o->target, "gpu")) {
    bad("--emit=ptx writes PTX: use it with --target=gpu, not %s%s", o->target, "");
    return 1;
  }
  if (o->gpu_arch && strcmp(o->target, "gpu")) {
    bad("--gpu-arch picks the GPU of --target=gpu; --target=%s has none%s", o->target, "");
    return 1;
  }
  if (o->local_mem && strcmp(o->target, "asic") && strcmp(o->target, "opencl")) {
    bad("--local-mem sizes the matmul tiles of --target=asic or opencl; --target=%s has none%s", o->target, "");
    return 1;
  }
  if ((o->checkpoint || o->resume) && !o->run) {
    bad("--checkpoint and --resume go with --run here; a built trainer takes them too (./train --checkpoint DIR)%s%s",
        "", "");
    return 1;
  }
  if ((o->checkpoint_every || o->overwrite_checkpoint) && !o->checkpoint) {
    bad("%s needs --checkpoint=DIR%s", o->checkpoint_every ? "--checkpoint-every" : "--overwrite-checkpoint", "");
    return 1;
  }
  if (o->run && o->gradcheck) {
    bad("--run and --gradcheck cannot be combined%s%s", "", "");
    return 1;
  }
  if (o->run) {
    if (target_given && strcmp(o->target, "interp")) {
      bad("--run trains with the interpreter; it cannot be combined with --target=%s%s", o->target, "");
      return 1;
    }
    o->target = "interp";
  }
  return -1;
}

const char *options_backend_value(const Options *o, const char *key) {
  size_t n = strlen(key);
  for (int i = o->nbackend_opts - 1; i >= 0; i--) /* the last one given wins */
    if (!strncmp(o->backend_opts[i], key, n) && o->backend_opts[i][n] == '=') return o->backend_opts[i] + n + 1;
  if (!strcmp(key, "cpu")) return o->cpu;
  if (!strcmp(key, "schedule")) return o->schedule;
  if (!strcmp(key, "gpu-arch")) return o->gpu_arch;
  return NULL;
}
