/* codegen/descriptor.h - the trainer descriptor: the C source of one constant
 * RtModelDesc (runtime/model.h) and a main() that hands it to
 * rt_trainer_main.  The same writer serves every target; only the code
 * differs (a table of native functions, or PTX or OpenCL C text), and the
 * descriptor says which it is (RtModelDesc.code_kind), so the trainer
 * never reads the target's name.  driver/link.c compiles the file with cc against the nnrt
 * headers and links it with the kernels and libnnrt.
 */
#ifndef NNC_DESCRIPTOR_H
#define NNC_DESCRIPTOR_H

#include "ir/kernel.h"
#include "nnc/backend.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* The code a trainer holds: what the runtime reads to choose its device. */
typedef struct DescriptorCode {
  NncCodeKind kind;      /* NNC_CODE_NATIVE: the kernels are native functions (text NULL) */
  const char *text;      /* PTX or OpenCL C, embedded byte for byte */
  uint64_t size;         /* bytes of text */
  const char *options;   /* its build options (NULL = none) */
  bool single_work_item; /* OpenCL: each kernel runs as one work-item (RtModelDesc.single_work_item) */
  bool batch_i32;        /* OpenCL: B is passed as an int32 (RtModelDesc.batch_arg_i32) */
  bool library;          /* no main(): an inference library's wrappers use nnc_model (driver/library.c) */
} DescriptorCode;

/* Writes the descriptor of p to out; `target` is the name the trainer
 * reports.  Native code: the kernels are functions linked into the
 * program, declared `extern void NAME(void **, int64_t, int64_t);` and
 * tabled in RtModelDesc.native.  Otherwise the code's text is the device
 * code.  Returns false when writing failed. */
bool descriptor_write(const KProgram *p, const char *target, const DescriptorCode *code, FILE *out);

/* The kind of the code a backend hands the host (write_descriptor,
 * link_trainer): native when there is none, else what backend b declares
 * (NncBackend.code), else API 1's rule on the device name ("gpu" is PTX,
 * any other OpenCL C). */
NncCodeKind descriptor_code_kind(const NncBackend *b, const char *device, bool has_code);

/* A kernel's launch range: its outermost loop's extent (*batched: times B),
 * or 1 for a body that is not a single loop (it runs once). */
int64_t descriptor_launch_range(const Kernel *k, bool *batched);

/* Writes s[0 .. n) as C string literals (adjacent ones, split after each
 * newline and every ~100 bytes), escaping quotes, backslashes, '?'
 * (trigraphs) and every byte that is not printable ASCII. */
void descriptor_write_string(FILE *out, const char *s, size_t n);

#endif
