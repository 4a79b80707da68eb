/* driver/memory.h - refusing models that cannot fit in memory. */
#ifndef NNC_MEMORY_H
#define NNC_MEMORY_H

#include "driver/options.h"
#include "ir/kernel.h"

/* Estimates the memory a trainer of kp needs at the batch it will use
 * (--batch, else the train block's) with memplan_estimate, prints it with
 * -v, counts it for --stats (memory.*_bytes), and compares it with
 * --max-memory (default: physical memory).  Returns false after
 *   nnc: error: model 'm' needs about 1.17 TiB (parameters 400 GiB, optimizer
 *   state 800 GiB, activations 3 GiB, host buffers 3.1 MiB at batch 32) but
 *   the limit is 23.4 GiB; use --max-memory to change it */
bool memory_check_program(const KProgram *kp, const Options *o);

/* The same for --run: the interpreter keeps every value as a double, one
 * buffer per graph node at the batch size.  *data_budget receives what the
 * limit leaves for the data (0: no limit known). */
bool memory_check_interp(const Module *m, const Options *o, int64_t *data_budget);

#endif
