/* frontend/elab.h - elaboration: from the syntax tree to the graph IR.
 *
 * Loads imports (and the stdlib prelude), collects definitions, picks the
 * model, inlines every fn and layer call (binding dimension names at each
 * call), creates parameters per call site with path names (`h.w`), checks
 * shapes with NumPy broadcasting over the implicit batch axis, applies the
 * optimizer to every parameter, and records the train settings.
 */
#ifndef NNC_ELAB_H
#define NNC_ELAB_H

#include "frontend/ast.h"
#include "ir/ir.h"

#include <limits.h>

/* The stdlib prelude (nn.nn) read and parsed once, for elaborating many root
 * files without reading and parsing it again for each (the fuzz target
 * does).  Elaboration only reads the syntax tree, so one prelude serves any
 * number of elaborate() calls, as long as its file stays registered with
 * nnc_diag under the same id (program->file). */
typedef struct ElabPrelude {
  Program *program;
  char canon[PATH_MAX]; /* its canonical path: importing it again is a no-op */
} ElabPrelude;

typedef struct ElabOptions {
  const char *model;      /* --model=NAME: which model (NULL: the train block's, or the only one) */
  const char *stdlib_dir; /* directory holding nn.nn (NULL: no prelude) */
} ElabOptions;

/* Elaborates the parsed root file.  Returns NULL after reporting errors. */
Module *elaborate(Program *root, Arena *ast_arena, const ElabOptions *opts);

/* The same with opts->stdlib_dir's nn.nn already parsed (prelude, from
 * elab_parse_prelude) instead of reading and parsing it again.  The result
 * is the same as elaborate()'s. */
Module *elaborate_with_prelude(Program *root, Arena *ast_arena, const ElabOptions *opts, const ElabPrelude *prelude);

/* Reads stdlib_dir/nn.nn, registers it with nnc_diag (shown as
 * stdlib/nn.nn) and parses it into arena, as elaborate() does without
 * a prelude.  Returns false after reporting an error (no such file, a
 * read error, syntax errors). */
bool elab_parse_prelude(const char *stdlib_dir, Arena *arena, ElabPrelude *out);

#endif
