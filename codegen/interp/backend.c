/* codegen/interp/backend.c - the interp target as an NncBackend.  The
 * reference interpreter runs the graph IR itself (nnc --run, driver/run.c),
 * so it needs no kernel IR and compiles nothing: NNC_BACKEND_NO_KERNELS. */
#include "codegen/backend.h"

const NncBackend nnc_backend_interp = {
    .api_version = NNC_BACKEND_API_VERSION,
    .struct_size = sizeof(NncBackend),
    .name = "interp",
    .description = "the reference interpreter (slow, simple: the oracle for every backend)",
    .flags = NNC_BACKEND_NO_KERNELS,
};
