/* A plugin built for a backend API this nnc does not have (test/Plugins). */
#include <nnc/backend.h>

static const NncPlugin plugin = {NNC_BACKEND_API_VERSION + 998, sizeof(NncPlugin), "future", 0, 0};

NNC_PLUGIN_EXPORT const NncPlugin *nnc_backend_plugin(void) { return &plugin; }
