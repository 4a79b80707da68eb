/* driver/options.h - the nnc command line. */
#ifndef NNC_OPTIONS_H
#define NNC_OPTIONS_H

#include "nnc/backend.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum { EMIT_NONE, EMIT_AST, EMIT_IR, EMIT_DOT, EMIT_KERNELS,
               EMIT_ONNX,   /* the prediction as an ONNX model (driver/onnx.c) */
               EMIT_BACKEND /* a kind the target's backend writes (emit_name; NncBackend.emits) */ } EmitKind;
typedef enum { COLOR_AUTO, COLOR_ALWAYS, COLOR_NEVER } ColorMode;

enum { MAX_PRINT_AFTER = 32, MAX_HYPERS = 32, MAX_PLUGINS = 32, MAX_BACKEND_OPTS = 32 };

typedef struct Options {
  const char *input;
  const char *output;          /* -o; NULL = default */
  const char *target;          /* --target, else implied (--emit, --run), else the default */
  const NncBackend *backend;   /* the target's backend, once options_parse has found it */
  EmitKind emit;
  const char *emit_name;       /* --emit's value as given (NULL = none) */
  const char *print_after[MAX_PRINT_AFTER];
  int nprint_after;
  bool print_after_all;
  const char *stop_after;
  const char *passes;          /* --passes=a,b: run exactly these */
  const char *kernel_passes;   /* --kernel-passes=a,b: run exactly these kernel passes */
  const char *model;           /* --model */
  const char *weights;         /* --weights FILE: the parameters --emit=onnx writes */
  int opt_level;               /* -O0..-O3 */
  bool verbose, stats, verify;
  ColorMode color;
  /* Training in the interpreter (driver/run.c): --run, --gradcheck and
   * their settings.  Unset numbers are -1 (the train block decides). */
  bool run;                    /* --run: train with the interpreter */
  bool gradcheck;              /* --gradcheck: compare gradients with finite differences */
  double gradcheck_tol;        /* --gradcheck-tol (default 1e-4) */
  bool gradcheck_allow_zero;   /* --gradcheck-allow-zero: a parameter no gradient reaches passes */
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
  double validation;           /* --validation=F: the held-out fraction, 0 = none; -1 = the train block's */
  int64_t early_stop;          /* --early-stop=N epochs without a lower val_loss; 0 = never */
  const char *plot;            /* --plot=FILE.svg: the run's curves */
  /* Backends and plugins (codegen/backend.h, include/nnc/backend.h). */
  const char *plugins[MAX_PLUGINS]; /* --plugin=PATH.so, loaded in order */
  int nplugins;
  /* Backend options, KEY=VALUE, in order: --backend-opt's, and nnc's own
   * shorthands --cpu, --schedule, --gpu-arch, --local-mem (keys "cpu",
   * "schedule", "gpu-arch", "local-mem"), which the target must declare
   * (NncBackend.options) as for --backend-opt. */
  const char *backend_opts[MAX_BACKEND_OPTS];
  const char *backend_opt_flags[MAX_BACKEND_OPTS]; /* the shorthand that gave it, NULL = --backend-opt */
  int nbackend_opts;
  bool list_targets;           /* --list-targets */
  const char *check_backend;   /* --check-backend=NAME: the conformance check (driver/check.c) */
  double check_tol;            /* --check-tol (default 1e-4) */
} Options;

/* Parses argv and loads the --plugin libraries (then the plugin search path
 * when the target is not built in).  Returns -1 to continue, else an exit
 * code (0 after --help, --version or --list-targets; 1 on a bad command
 * line or a plugin that does not load).  With --check-backend no input file
 * is needed. */
int options_parse(int argc, char **argv, Options *o);

/* A backend option's text: the last KEY=VALUE given (--backend-opt or a
 * shorthand), else NULL. */
const char *options_backend_value(const Options *o, const char *key);

#endif
