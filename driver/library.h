/* driver/library.h - nnc --emit=lib: a model's forward pass as a C library
 * (docs/library.md).
 */
#ifndef NNC_LIBRARY_H
#define NNC_LIBRARY_H

#include "driver/link.h"
#include "ir/kernel.h"

#include <stdbool.h>

/* Writes DIR/NAME.h and DIR/libNAME.a for model p (NAME: its name): the
 * descriptor without main() and the NAME_* wrappers, compiled with cc and
 * combined with the kernel `objects` into one object whose only globals
 * are NAME_* (so several models link into one program), archived with
 * every member of libnnrt, so a program links with -lNAME -lm -lpthread
 * alone.  DIR is created when
 * missing; each file is replaced whole.  Intermediate files go to tmp.
 * Returns false after reporting an error. */
bool library_write(const LinkRuntime *rt, const KProgram *p, LinkTemp *tmp, const char *const *objects, int nobjects,
                   const char *dir, bool verbose);

#endif
