/* driver/onnx.h - nnc --emit=onnx: a model's prediction as an ONNX file
 * (docs/onnx.md).
 */
#ifndef NNC_ONNX_H
#define NNC_ONNX_H

#include "ir/ir.h"

#include <stdbool.h>

/* NULL when this nnc was built with the ONNX messages, else the one line
 * that says why --emit=onnx is not available. */
const char *onnx_unavailable(void);

/* Writes the forward pass of m (after the graph passes) from its inputs to
 * its prediction (OUT_PREDICT), evaluated as --predict evaluates it
 * (training flag 0, step 1), as an ONNX model (opset 17) at path, replaced
 * whole: the inputs and the prediction with a symbolic batch axis "N", and
 * the parameters that weights_path holds (a --save file or a checkpoint,
 * checked as the trainer's --load checks it, once the graph is built) as
 * initializers.  Returns false after reporting an error (nothing is
 * written then): no prediction, an op with no ONNX form (at its source
 * line), weights that do not fit. */
bool onnx_write(const Module *m, const char *weights_path, const char *path);

#endif
