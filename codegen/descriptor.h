/* codegen/descriptor.h - the trainer descriptor: the C source of one constant
 * RtModelDesc (runtime/model.h) and a main() that hands it to
 * rt_trainer_main.  The same writer serves every target; only the code
 * differs (a table of native functions for cpu, PTX or OpenCL C text for
 * the others).  driver/link.c compiles the file with cc against the nnrt
 * headers and links it with the kernels and libnnrt.
 */
#ifndef NNC_DESCRIPTOR_H
#define NNC_DESCRIPTOR_H

#include "ir/kernel.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Writes the descriptor of p for `target` ("cpu", "gpu", ...) to out.
 * code == NULL: the kernels are native functions linked into the program,
 * declared `extern void NAME(void **, int64_t, int64_t);` and tabled in
 * RtModelDesc.native.  Otherwise code[0 .. code_size) is the device code
 * (PTX, OpenCL C), embedded byte for byte, with code_options (NULL = none)
 * as its build options.  Returns false when writing failed. */
bool descriptor_write(const KProgram *p, const char *target, const char *code, uint64_t code_size,
                  const char *code_options, FILE *out);

/* A kernel's launch range: its outermost loop's extent (*batched: times B),
 * or 1 for a body that is not a single loop (it runs once). */
int64_t descriptor_launch_range(const Kernel *k, bool *batched);

/* Writes s[0 .. n) as C string literals (adjacent ones, split after each
 * newline and every ~100 bytes), escaping quotes, backslashes, '?'
 * (trigraphs) and every byte that is not printable ASCII. */
void descriptor_write_string(FILE *out, const char *s, size_t n);

#endif
