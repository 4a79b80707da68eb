/* runtime/infer.h - a compiled model's forward pass as a library call
 * (nnc --emit=lib; docs/library.md).
 *
 * The library nnc writes holds one RtModelDesc and NAME_* wrappers around
 * these functions.  A loaded model owns its weights and its buffers and
 * runs the eval plan's native kernels on the calling thread, so models
 * used by one thread each need no locks.  Errors leave a message in a
 * thread-local buffer that rt_infer_error returns.
 */
#ifndef NNRT_INFER_H
#define NNRT_INFER_H

#include "model.h"

typedef struct RtInfer RtInfer;

/* Reads the weights at path (a --save file, or a checkpoint file or
 * directory), checked against m as the trainer's --load checks them.
 * NULL on error. */
RtInfer *rt_infer_load(const RtModelDesc *m, const char *weights_path);

/* Why the last call on this thread failed ("" when none has). */
const char *rt_infer_error(void);

/* Floats per sample of the input, and per prediction of the output (0 when
 * the model has none). */
long rt_infer_input_size(const RtModelDesc *m);
long rt_infer_output_size(const RtModelDesc *m);

/* y[n * output_size] = the predictions of x[n * input_size] (row-major,
 * already scaled as the train block's `scale` says).  0 on success. */
int rt_infer_predict(RtInfer *s, const float *x, long n, float *y);

void rt_infer_free(RtInfer *s);

#endif
