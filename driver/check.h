/* driver/check.h - `nnc --check-backend=NAME`: the conformance check. */
#ifndef NNC_CHECK_H
#define NNC_CHECK_H

#include "driver/options.h"

/* Compiles each model of a small built-in set with the target o->check_backend
 * into a trainer, trains it for two epochs on generated data, and compares
 * the trained parameters and the losses with the reference interpreter
 * (nnc --run).  Prints one PASS/FAIL line per model; returns the exit
 * status (0 all passed, 1 otherwise).  argv0 is used only when
 * /proc/self/exe cannot be read. */
int check_backend(const Options *o, const char *argv0);

#endif
