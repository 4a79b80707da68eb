/* codegen/backend.h - the backend registry: built-in targets and plugins.
 *
 * Every target is an NncBackend (include/nnc/backend.h, the public, versioned
 * interface): it declares what it writes (--emit kinds), the options it
 * reads, the kind of code its trainers hold and so their device, so that
 * nothing outside codegen/ needs a target's name.  The built-in ones (cpu,
 * gpu, the OpenCL dialects opencl, fpga and asic, interp) are registered
 * first, in that order, from their own small files
 * (codegen/<backend>/backend.c); plugins add theirs when loaded:
 *
 *   --plugin=PATH.so          loaded before the command line's target is looked up
 *   $NNC_PLUGIN_PATH          colon-separated directories whose *.so are loaded
 *   PREFIX/lib/nnc/plugins    (beside an installed nnc) likewise; both only when
 *                             a target is not found, or for --list-targets
 *
 * A plugin is a shared library exporting `nnc_backend_plugin` (NncPluginEntry).
 * It is opened RTLD_NOW | RTLD_LOCAL and never closed.  Loading refuses, with
 * an error naming the file: a library that cannot be opened, one without the
 * entry symbol, one built for another NNC_BACKEND_API_VERSION, malformed
 * structs, and a target name already registered.
 */
#ifndef NNC_CODEGEN_BACKEND_H
#define NNC_CODEGEN_BACKEND_H

#include "nnc/backend.h"

#include <stdbool.h>
#include <stddef.h>

/* The built-in backends (codegen/<dir>/backend.c): cpu, the default
 * target; gpu; one per OpenCL C dialect (NULL-terminated); interp, which
 * `nnc --run` trains with. */
extern const NncBackend nnc_backend_cpu, nnc_backend_gpu, nnc_backend_interp;
extern const NncBackend *const nnc_backends_opencl[];

/* Registers b (origin: the plugin's path, NULL for a built-in).  Returns
 * false after reporting an error (a duplicate name, a bad struct). */
bool backend_register(const NncBackend *b, const char *origin);

/* Loads the plugin at path and registers its backends.  Returns false after
 * reporting an error. */
bool backend_load_plugin(const char *path);

/* Loads every *.so of $NNC_PLUGIN_PATH and the default plugin directory
 * (once; later calls do nothing).  Returns false after reporting an error. */
bool backend_load_search_path(void);

/* The backend named name, or NULL.  Built-ins and loaded plugins only; with
 * search, the search path is loaded first when the name is not found. */
const NncBackend *backend_find(const char *name, bool search);

/* All registered backends in registration order: i < backend_count(). */
int backend_count(void);
const NncBackend *backend_at(int i, const char **origin);

/* Whether the comma-separated list has the word w. */
bool backend_list_has(const char *list, const char *w);

/* The target used when none is named: the first built-in (cpu). */
const NncBackend *backend_default(void);

/* The first registered backend whose --emit kinds (NncBackend.emits) have
 * kind, or NULL.  Built-ins and loaded plugins only. */
const NncBackend *backend_emitting(const char *kind);

/* Fills buf with the names of the targets that have `word` in their emits
 * (which = 'e') or options (which = 'o'), or of all targets (which = 0),
 * comma-separated as NncBackend lists are; returns how many. */
int backend_names(char *buf, size_t size, char which, const char *word);

/* The kind of device b's trainers run on, from its declared code kind:
 * "cpu", "cuda", "opencl", or "-" (none declared, or no kernels). */
const char *backend_device(const NncBackend *b);

#endif
