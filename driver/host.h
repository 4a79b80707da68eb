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
 * -v, --batch, the backend options); the call's temporary files are
 * removed afterwards.  Returns false after an error. */
bool host_compile(const NncBackend *b, KProgram *kp, const Options *o);

/* --emit=kernels: runs b->schedule on kp (NncBackend.schedule; nothing
 * when b has none), so the kernel IR prints as b would compile it.
 * Returns false after an error. */
bool host_schedule(const NncBackend *b, KProgram *kp, const Options *o);

#endif
