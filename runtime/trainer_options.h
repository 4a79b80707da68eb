/* runtime/trainer_options.h - the command line of a trained program (the
 * `train` executable nnc builds), see docs/trainer.md.
 *
 * The training options have the names and the checks of `nnc --run`
 * (driver/options.c), so the interpreter and a built trainer take the same
 * overrides; the trainer adds the device, --threads, --test and
 * --list-devices.  Messages go to stderr as one line,
 *   train: error: option '--batch' needs a whole number from 1 to 16777216
 * with the program's name first.
 */
#ifndef NNRT_TRAINER_OPTIONS_H
#define NNRT_TRAINER_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "device.h"
#include "model.h"

enum { RT_TRAINER_MAX_HYPERS = 32 };

typedef struct RtTrainerOptions {
  const char *prog;            /* the program's name, for messages */
  int64_t epochs, batch, seed; /* -1 = the train block's value */
  int64_t steps;               /* --steps; 0 = no limit */
  int threads;                 /* --threads: CPU device threads, 0 = one per CPU */
  const char *device;          /* --device; NULL = from the model's target */
  const char *data, *test;     /* --data, --test; NULL = the train block's */
  const char *metrics, *save;  /* --metrics FILE, --save FILE; NULL = none */
  bool no_shuffle, list_devices;
  bool has_lr;
  double lr;                   /* --lr */
  const char *hypers[RT_TRAINER_MAX_HYPERS]; /* --hyper NAME=VALUE, as given (checked) */
  int nhypers;
  const char *cl_binary;       /* --cl-binary FILE: a prebuilt OpenCL program */
  const char *save_cl_binary;  /* --save-cl-binary FILE: write the built program */
  const char *checkpoint;      /* --checkpoint DIR: save checkpoints there; NULL = none */
  int64_t checkpoint_every;    /* --checkpoint-every N steps; 0 = at the end of every epoch */
  const char *resume;          /* --resume DIR: continue from DIR's checkpoint */
  bool overwrite_checkpoint;   /* --overwrite-checkpoint: replace a checkpoint in the --checkpoint DIR */
  bool check_numerics;         /* --check-numerics: check every buffer a kernel touches */
  bool check_ranks;            /* --check-ranks: compare the ranks' parameters after every epoch (MPI) */
  const char *load;            /* --load FILE: the weights to start from (a --save file or a checkpoint); NULL = none */
  bool eval;                   /* --eval: evaluate the --load weights on the test data, no training */
  const char *predict;         /* --predict PATH: the inputs to predict with the --load weights; NULL = none */
  const char *output;          /* --output FILE.csv: where --predict writes one row per sample */
  int64_t max_memory;          /* --max-memory BYTES; 0 = the machine's physical memory */
  double validation;           /* --validation F: the held-out fraction, 0 = none; -1 = the train block's */
  int64_t early_stop;          /* --early-stop N: epochs without a better val_loss; 0 = never */
  const char *plot;            /* --plot FILE.svg; NULL = none */
  const char *generate;        /* --generate PROMPT: text from the --load weights; NULL = none */
  int64_t tokens;              /* --tokens N: bytes --generate writes (-1 = 256) */
  double temperature;          /* --temperature T (-1 = 1) */
} RtTrainerOptions;

/* Parses argv for the model m (prog names the program in messages).  Returns -1 to go on training, else the exit
 * status: 0 after --help or --version (printed on stdout), 1 after a bad
 * command line (a message on stderr). */
int rt_trainer_parse(int argc, char **argv, const RtModelDesc *m, const char *prog, RtTrainerOptions *o);

/* The usage text, with the model's defaults (data, batch, epochs, seed,
 * device, every optimizer hyper-parameter and its value). */
void rt_trainer_usage(FILE *f, const RtModelDesc *m, const char *prog);

/* hypers[0 .. m->nhypers) = base (NULL: the model's defaults), then --lr,
 * then each --hyper in order.  Returns false after a message when the
 * optimizer has no such hyper-parameter. */
bool rt_trainer_hypers(const RtTrainerOptions *o, const RtModelDesc *m, const double *base, double *hypers);

/* What the descriptor's code is (RtModelDesc.code_kind, checked when the
 * trainer starts), as the device layer names it. */
RtCodeKind rt_trainer_code(const RtModelDesc *m);

/* The device a model runs on by default: the first device of the first
 * kind that runs its code ("cpu", "cuda:0", "opencl:0"). */
const char *rt_trainer_default_device(const RtModelDesc *m);

/* Prints "PROG: error: MESSAGE" on stderr. */
void rt_trainer_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
