/* runtime/checkpoint.h - crash-safe training checkpoints and resume (see
 * docs/hardening.md for the file format).
 *
 * A checkpoint is one safetensors file, DIR/checkpoint.safetensors, written
 * atomically by rt_safetensors_write (temporary file, fsync, rename, fsync
 * of the directory), so DIR always holds the last complete checkpoint and
 * never a partial one.  It holds every parameter and optimizer state, keyed
 * by path ("h.w", "h.w/m"), and in its metadata the run's position (steps
 * done, the epoch in progress and the samples of it trained on, with their
 * summed loss), the settings that fix the data order (seed, shuffle, the
 * training-set size: the order of any epoch is regenerated from (seed,
 * epoch) by rt_shuffle_order), the batch size, epochs, step limit and every
 * optimizer hyper-parameter, and the model's name.
 *
 * The compiled trainer (trainer.c) and the interpreter (driver/run.c) use
 * the same code: an RtCheckpointer is rt_train's hook (train.h); it saves
 * every N steps or at the end of every epoch, and turns SIGINT and SIGTERM
 * into "finish the step, save, print one line, exit 128 + signal".
 * Resuming reads the file back (rt_checkpoint_load), checks it against the
 * model (name, then every tensor's presence and shape, naming the first
 * difference) and continues at the saved position, so the final
 * parameters are bit-identical to an uninterrupted run's.
 */
#ifndef NNRT_CHECKPOINT_H
#define NNRT_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "safetensors.h"
#include "train.h"

#define RT_CKPT_FILE "checkpoint.safetensors"
#define RT_CKPT_LOCK "checkpoint.lock"
#define RT_CKPT_FORMAT "nnc-checkpoint-2"
#define RT_CKPT_CHECKSUM "checksum"           /* metadata key: "crc32:" and 8 hex digits */
#define RT_CKPT_MAX_STEPS (INT64_C(1) << 53)   /* steps are counted exactly in doubles below this */
#define RT_CKPT_MAX_SAMPLES (INT64_C(1) << 40) /* far beyond any training set in memory */

enum { RT_CKPT_MAX_HYPERS = 64 };

/* What a checkpoint records besides its tensors. */
typedef struct RtCkptMeta {
  const char *model;        /* the model's name (NULL = "") */
  const char *nnc_version;  /* the compiler that built the program (NULL = unknown) */
  RtTrainPos pos;           /* where the run stands */
  int64_t train_samples;    /* samples in the training set (the order depends on it) */
  int64_t batch, epochs, max_steps;
  uint64_t seed;
  bool shuffle;
  int nhypers;
  const char *const *hyper_names; /* [nhypers] */
  const double *hyper_values;     /* [nhypers] */
  double validation;        /* the held-out fraction (0 = none): the split depends on it */
  const RtEarlyStop *early; /* early stopping's state; NULL = none */
} RtCkptMeta;

/* One tensor to save or restore: f32 or i32 (saved bit for bit under the
 * F32 dtype, since the format holds only F32 for now). */
typedef struct RtCkptTensor {
  RtTensorRef ref;          /* name, shape and (when saving) the host data */
  bool i32;                 /* an i32 state: not checked for finiteness */
  bool state;               /* an optimizer state (else a parameter): for messages */
} RtCkptTensor;

/* DIR/checkpoint.safetensors into buf; false when it does not fit. */
bool rt_checkpoint_path(const char *dir, char *buf, size_t len);

/* Creates DIR when missing (one level), checks that it is writable and
 * takes its lock (DIR/checkpoint.lock, flock'd: a second run on DIR is
 * refused, naming the process that holds it); refuses to replace a
 * checkpoint already in DIR unless DIR is resume_dir (NULL: none) or
 * overwrite is set (--overwrite-checkpoint); removes temporary files that
 * a killed writer left behind.  *lock_fd receives the lock (release it with
 * rt_checkpoint_unlock, or let the process end); -1 on error. */
int rt_checkpoint_prepare(const char *dir, const char *resume_dir, bool overwrite, int *lock_fd, RtError *err);
void rt_checkpoint_unlock(int lock_fd);

/* 0 when every element of t is finite, else -1 with err "WHAT 'NAME' holds
 * nan at element I after step S" (checkpoints and --save). */
int rt_tensor_finite(const RtTensorRef *t, const char *what, int64_t step, RtError *err);

/* Writes the checkpoint atomically.  Fails, leaving the previous one in
 * place, when a f32 tensor holds a non-finite value (err names it). */
int rt_checkpoint_write(const char *dir, const RtCkptMeta *meta, const RtCkptTensor *t, int n, RtError *err);

/* A checkpoint read back: the file, and its metadata parsed. */
typedef struct RtCheckpoint {
  char path[4096];
  RtSafetensors st;         /* the tensors (and the raw metadata) */
  RtTrainPos pos;
  int64_t train_samples, batch, epochs, max_steps;
  uint64_t seed;
  bool shuffle;
  const char *model;        /* points into st */
  double validation;        /* 0 when the file has none */
  RtEarlyStop early;        /* all 0 when the file has none */
} RtCheckpoint;

/* Reads DIR/checkpoint.safetensors and parses its metadata.  Returns 0, or
 * -1 with err set (a missing file, not a checkpoint, a bad field). */
int rt_checkpoint_load(const char *dir, RtCheckpoint *c, RtError *err);
void rt_checkpoint_free(RtCheckpoint *c);

/* Checks that c belongs to model `model` with exactly these tensors (names
 * and shapes); err names the first difference. */
int rt_checkpoint_match(const RtCheckpoint *c, const char *model, const RtCkptTensor *t, int n, RtError *err);

/* --load: PATH is a checkpoint directory, a checkpoint file (checked as
 * rt_checkpoint_load does, checksum included) or a --save file (only
 * read: its tensors are checked by rt_weights_match).  Returns 0, or -1
 * with err set. */
int rt_weights_load(const char *path, RtCheckpoint *c, RtError *err);

/* Checks that c has every parameter of t (names and shapes) and no tensor
 * the model lacks; states (batch norm's running statistics) may be absent,
 * and a checkpoint's optimizer states ("NAME/SLOT") are ignored.  err names
 * the first tensor that does not fit. */
int rt_weights_match(const RtCheckpoint *c, const char *model, const RtCkptTensor *t, int n, RtError *err);

/* The parameters and states of model m in buffer order, the tensors of its
 * checkpoints and weights files: t[] and bufs[] (their buffer indices) hold
 * m->nbufs entries.  Returns how many there are. */
struct RtModelDesc;
int rt_model_tensors(const struct RtModelDesc *m, RtCkptTensor *t, int *bufs);

/* The value of hyper-parameter name in c; false when it has none. */
bool rt_checkpoint_hyper(const RtCheckpoint *c, const char *name, double *value);

/* The data of tensor name in c (checked by rt_checkpoint_match first). */
const float *rt_checkpoint_tensor(const RtCheckpoint *c, const char *name);

/* ---- signals ----------------------------------------------------------------------------- */

/* SIGINT and SIGTERM set a flag instead of killing the process (a second
 * one kills it); rt_signal_pending returns that signal, or 0. */
void rt_signals_install(void);
void rt_signals_restore(void);
int rt_signal_pending(void);
/* Notes sig as if it had arrived (when none has): several MPI ranks stop
 * at the same step when one of them got the signal (runtime/train.c). */
void rt_signal_note(int sig);

/* ---- the hook rt_train calls --------------------------------------------------------- */

/* Fills t[0 .. n) with the current values (ref.data: host memory the
 * callback owns until the next call).  Returns 0, or -1 with err set. */
typedef int (*RtCkptGather)(void *self, RtCkptTensor *t, int n, RtError *err);

typedef struct RtCheckpointer {
  const char *prog;         /* names the program in messages: "PROG: error: ..." */
  const char *dir;          /* --checkpoint DIR; NULL = none */
  int64_t every;            /* save every this many steps; 0 = at the end of every epoch */
  RtCkptMeta meta;          /* pos is filled in at each save */
  RtCkptTensor *tensors;    /* [ntensors]: names and shapes */
  int ntensors;
  RtCkptGather gather;
  void *self;
  int64_t saved_step;       /* the step of the last save; -1 = none yet */
  const char *last_good;    /* the newest checkpoint (saved or resumed from); NULL = none */
  char path[4096];          /* DIR/checkpoint.safetensors */
  /* Early stopping (train.h): on RT_TRAIN_BEST the hook keeps a copy of
   * the parameters and model states (the tensors without a '/' in their
   * name: not the optimizer's), saved in every checkpoint as "best/NAME"
   * tensors; scatter puts them back into the model. */
  RtEarlyStop *early;       /* saved in the metadata; NULL = none */
  int (*scatter)(void *self, const RtCkptTensor *t, int n, RtError *err); /* t named as tensors[] are */
  RtCkptTensor *best;       /* [nbest], named "best/NAME", data owned here; NULL until the first best epoch */
  int nbest;
} RtCheckpointer;

/* An RtTrainHook (self: an RtCheckpointer): saves when due, and after a
 * signal saves (with a directory), prints one line and returns 128 + the
 * signal. */
int rt_checkpoint_hook(void *self, const RtTrainPos *pos, RtTrainEvent event);

/* --resume with early stopping: the best epoch's tensors of c into k
 * (c->early.best_epoch > 0); false with err set when c lacks one. */
bool rt_checkpoint_resume_best(RtCheckpointer *k, const RtCheckpoint *c, RtError *err);

/* The best epoch's weights back into the model (k->scatter), for --save
 * after early stopping (whose "step" is then k->early->best_step); true
 * when there are none to restore. */
bool rt_checkpoint_restore_best(RtCheckpointer *k, RtError *err);

void rt_checkpointer_free(RtCheckpointer *k);

#endif
