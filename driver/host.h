/* driver/host.h - nnc's side of the backend interface: the NncHost table
 * (include/nnc/backend.h) and one compile call of a backend. */
#ifndef NNC_HOST_H
#define NNC_HOST_H

#include "codegen/backend.h"
#include "driver/options.h"
#include "ir/kernel.h"

#include <stdbool.h>

extern const NncHost nnc_host;

/* Runs b->compile on kp with the command line's settings (-o, --emit, -O,
 * -v, --cpu, --schedule, --gpu-arch, --local-mem, --batch, --backend-opt); the call's
 * temporary files are removed afterwards.  Returns false after an error. */
bool host_compile(const NncBackend *b, KProgram *kp, const Options *o);

#endif
