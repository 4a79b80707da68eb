/* A shared library that is not an nnc plugin: no nnc_backend_plugin. */
int plain_library(void);
int plain_library(void) { return 42; }
