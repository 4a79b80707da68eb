/* driver/run.h - `nnc --run` and `nnc --gradcheck`: training and gradient
 * checks in the reference interpreter (codegen/interp). */
#ifndef NNC_RUN_H
#define NNC_RUN_H

#include "driver/options.h"
#include "ir/ir.h"

/* Trains m (after the graph passes: the training step) as its train block
 * says, with the command line's overrides: loads the data, initialises the
 * parameters, runs rt_train, writes --save.  Returns the exit status. */
int run_training(Module *m, const Options *o);

/* Checks the gradients of m, the elaborated module BEFORE the graph passes
 * (it is turned into a gradient probe in place, then differentiated):
 * prints one line per parameter and a verdict.  Returns the exit status. */
int run_gradcheck(Module *m, const Options *o);

#endif
