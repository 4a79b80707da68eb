/* driver/options.h - the nnc command line. */
#ifndef NNC_OPTIONS_H
#define NNC_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { EMIT_NONE, EMIT_AST, EMIT_IR, EMIT_DOT, EMIT_LLVM, EMIT_ASM, EMIT_OBJ, EMIT_CL, EMIT_KERNELS, EMIT_PTX,
               EMIT_OTHER /* a kind only the target's backend knows (emit_name) */ } EmitKind;
typedef enum { COLOR_AUTO, COLOR_ALWAYS, COLOR_NEVER } ColorMode;

enum { MAX_PRINT_AFTER = 32, MAX_HYPERS = 32, MAX_PLUGINS = 32, MAX_BACKEND_OPTS = 32 };

typedef struct Options {
  const char *input;
  const char *output;          /* -o; NULL = default */
  const char *target;          /* --target */
  EmitKind emit;
  const char *emit_name;       /* --emit's value as given (NULL = none) */
  const char *print_after[MAX_PRINT_AFTER];
  int nprint_after;
  bool print_after_all;
  const char *stop_after;
  const char *passes;          /* --passes=a,b: run exactly these */
  const char *kernel_passes;   /* --kernel-passes=a,b: run exactly these kernel passes */
  const char *model;           /* --model */
  int opt_level;               /* -O0..-O3 */
  bool verbose, stats, verify;
  ColorMode color;
  /* Training in the interpreter (driver/run.c): --run, --gradcheck and
   * their settings.  Unset numbers are -1 (the train block decides). */
  bool run;                    /* --run: train with the interpreter */
  bool gradcheck;              /* --gradcheck: compare gradients with finite differences */
  double gradcheck_tol;        /* --gradcheck-tol (default 1e-4) */
  int64_t epochs, batch, steps;/* --epochs, --batch, --steps (max steps) */
  int64_t seed;                /* --seed */
  bool has_lr;
  double lr;                   /* --lr: the hyper-parameter 'lr' */
  const char *hypers[MAX_HYPERS]; /* --hyper NAME=VALUE, as given */
  int nhypers;
  const char *data;            /* --data: replaces the train block's data path */
  bool no_shuffle;             /* --no-shuffle */
  const char *save;            /* --save FILE: parameters as safetensors */
  const char *metrics;         /* --metrics FILE: one CSV row per epoch */
  bool f64;                    /* --f64: run the interpreter in double precision */
  const char *checkpoint;      /* --checkpoint=DIR: checkpoints of --run (runtime/checkpoint.h) */
  int64_t checkpoint_every;    /* --checkpoint-every=N steps; 0 = every epoch */
  const char *resume;          /* --resume=DIR: continue --run from DIR's checkpoint */
  bool overwrite_checkpoint;   /* --overwrite-checkpoint: replace a checkpoint in the --checkpoint DIR */
  int64_t max_memory;          /* --max-memory=BYTES: refuse larger models; 0 = physical memory */
  /* The cpu target (codegen/cpu): --emit=llvm|asm|obj and --cpu. */
  const char *cpu;             /* --cpu=NAME: LLVM CPU name; NULL = the host ("native") */
  const char *schedule;    /* --schedule=SPEC (cpu): tile overrides, passes/schedule_cpu.h */
  /* The OpenCL targets (codegen/opencl): --emit=cl and --local-mem. */
  int64_t local_mem;           /* --local-mem=BYTES: local memory for tiles (asic); 0 = the target's default */
  /* The gpu target (codegen/gpu): --emit=ptx and --gpu-arch. */
  const char *gpu_arch;        /* --gpu-arch=sm_XY: NULL = sm_90 */
  /* Backends and plugins (codegen/backend.h, include/nnc/backend.h). */
  const char *plugins[MAX_PLUGINS]; /* --plugin=PATH.so, loaded in order */
  int nplugins;
  const char *backend_opts[MAX_BACKEND_OPTS]; /* --backend-opt=KEY=VALUE, as given */
  int nbackend_opts;
  const char *check_backend;   /* --check-backend=NAME: the conformance check (driver/check.c) */
  double check_tol;            /* --check-tol (default 1e-4) */
} Options;

/* Parses argv and loads the --plugin libraries (then the plugin search path
 * when the target is not built in).  Returns -1 to continue, else an exit
 * code (0 after --help, --version or --list-targets; 1 on a bad command
 * line or a plugin that does not load).  With --check-backend no input file
 * is needed. */
int options_parse(int argc, char **argv, Options *o);

/* A backend option's text: the last --backend-opt=KEY=VALUE, else the
 * option nnc has for it (--cpu, --schedule, --gpu-arch), else NULL. */
const char *options_backend_value(const Options *o, const char *key);

#endif
