/* runtime/trainer_guard.h - the trained program's guards (trainer_guard.c):
 * checkpoints and resume, --check-numerics and the memory limit, kept out
 * of trainer.c, which calls them.  Internal to libnnrt.
 */
#ifndef NNRT_TRAINER_GUARD_H
#define NNRT_TRAINER_GUARD_H

#include "checkpoint.h"
#include "device.h"
#include "model.h"
#include "trainer_options.h"

/* The bytes the trainer allocates for m at batch capacity bcap (temps of
 * one slot once, at their largest; the host's staging buffers and, with
 * --checkpoint, its copy of the tensors), split as the message shows them.
 * Returns false after "PROG: error: model 'M' needs about ..." when that is
 * over the limit (--max-memory, else the physical memory); else
 * *data_budget is what the limit leaves for the data (0: no limit known). */
bool rt_guard_memory(const RtModelDesc *m, int64_t bcap, int nscalars, const RtTrainerOptions *o, const char *prog,
                     int64_t *data_budget);

/* The parameters and states of m, in buffer order, with their buffers. */
typedef struct RtGuardState {
  const RtModelDesc *m;
  const char *prog;
  RtDevice *dev;
  RtMem **mem;              /* the trainer's buffers (set once allocated) */
  RtCkptTensor *tensors;    /* [n] */
  int *bufs;                /* [n]: their buffer indices */
  float **host;             /* [n]: host copies for saving */
  int n;
  float *probe;             /* --check-numerics: a buffer read back */
  size_t nprobe;            /* its capacity in floats */
} RtGuardState;

bool rt_guard_init(RtGuardState *g, const RtModelDesc *m, const char *prog);
void rt_guard_free(RtGuardState *g);

/* An RtCkptGather over the trainer's buffers (self: RtGuardState). */
int rt_guard_gather(void *self, RtCkptTensor *t, int n, RtError *err);

/* The RtCheckpointer's scatter (self: RtGuardState): tensors named as
 * g->tensors are, from the host into their buffers. */
int rt_guard_scatter(void *self, const RtCkptTensor *t, int n, RtError *err);

/* --resume: the checkpoint's settings under the command line's (seed and
 * shuffle must agree; batch, epochs, steps and hyper-parameters given on
 * the command line win), then its tensors checked against the model.
 * hypers[nhypers] holds the model's defaults and receives the checkpoint's
 * values.  false after a message. */
bool rt_guard_resume_settings(RtGuardState *g, const RtCheckpoint *c, const RtTrainerOptions *o, double *hypers);

/* Copies the checkpoint's tensors into the device buffers; with weights
 * (--load, checked by rt_weights_match), only the parameters and the
 * states the file has that are not optimizer states ("NAME/SLOT"): batch
 * norm's running statistics. */
bool rt_guard_restore(RtGuardState *g, const RtCheckpoint *c, bool weights);

/* --load PATH: reads and checks the weights (a message on error). */
bool rt_guard_load_weights(RtGuardState *g, const char *path, RtCheckpoint *c);

/* --check-numerics, after launch l of the train plan on a batch of n: the
 * first non-finite element of any buffer it touched (inputs, labels and
 * scalars aside).  Returns 0, or -1 with err saying which buffer (its
 * source, from m->buf_sources), which element, at which step, after which
 * kernel, and the last good checkpoint. */
int rt_guard_check_launch(RtGuardState *g, const RtLaunchDesc *l, int64_t n, int64_t step, const char *last_good,
                          RtError *err);

#endif
