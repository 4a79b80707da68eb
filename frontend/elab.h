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

typedef struct ElabOptions {
  const char *model;      /* --model=NAME: which model (NULL: the train block's, or the only one) */
  const char *stdlib_dir; /* directory holding nn.nn (NULL: no prelude) */
} ElabOptions;

/* Elaborates the parsed root file.  Returns NULL after reporting errors. */
Module *elaborate(Program *root, Arena *ast_arena, const ElabOptions *opts);

#endif
