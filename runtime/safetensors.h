/* runtime/safetensors.h - trained parameters and checkpoints as safetensors.
 *
 * File layout (https://github.com/huggingface/safetensors):
 *   u64 little-endian N | N bytes of JSON header | data section
 * The header is one JSON object {"name": {"dtype": "F32", "shape": [..],
 * "data_offsets": [begin, end]}, ..., "__metadata__": {"key": "value"}},
 * offsets relative to the data section, which the tensors cover exactly.
 *
 * Writing is atomic (temporary file, fsync, rename, fsync of the directory),
 * so a crash mid-write leaves the previous file intact.  Reading validates
 * the whole header with a strict JSON parser before any tensor is used.
 * Only F32 tensors are supported for now.
 */
#ifndef NNRT_SAFETENSORS_H
#define NNRT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "data.h" /* RtError */

#define RT_ST_MAX_RANK 8

/* One tensor to write: f32, row-major, little-endian on disk. */
typedef struct RtTensorRef {
  const char *name;
  const float *data;            /* product(dims) values; may be NULL when that is 0 */
  int rank;                     /* 0 .. RT_ST_MAX_RANK */
  int64_t dims[RT_ST_MAX_RANK];
} RtTensorRef;

/* Writes tensors in the given order (data offsets contiguous in that order).
 * metadata_json may be NULL, or a JSON object of string values - with or
 * without its braces ("\"epoch\": \"3\"") - stored under "__metadata__".
 * The header is padded with spaces to a multiple of 8 bytes.  Returns 0, or
 * -1 with err set (the previous file at path, if any, is then untouched). */
int rt_safetensors_write(const char *path, const RtTensorRef *tensors, int n, const char *metadata_json,
                         RtError *err);

/* The same file built in memory: *data (malloc'd, *size bytes) receives
 * exactly what rt_safetensors_write would write; name stands for the file
 * in messages.  Returns 0, or -1 with err set (*data NULL). */
int rt_safetensors_write_mem(const char *name, const RtTensorRef *tensors, int n, const char *metadata_json,
                             void **data, size_t *size, RtError *err);

/* One tensor of a loaded file. */
typedef struct RtStTensor {
  char *name;
  char dtype[8];                /* "F32" */
  int rank;
  int64_t dims[RT_ST_MAX_RANK];
  uint64_t begin, end;          /* byte offsets in the data section */
  const float *data;            /* points into RtSafetensors.blob */
} RtStTensor;

/* A loaded file: tensors in header order, metadata, and the data section. */
typedef struct RtSafetensors {
  int n;
  RtStTensor *tensors;
  int n_meta;
  char **meta_keys, **meta_values;
  void *blob;                   /* the data section, native-endian floats */
  uint64_t blob_size;
} RtSafetensors;

/* Reads and validates a whole file: header length <= 100 MB and within the
 * file, strict JSON, each entry with exactly dtype/shape/data_offsets,
 * offsets non-overlapping and covering the data section exactly, byte sizes
 * equal to numel * 4.  Returns 0, or -1 with err set and *out empty. */
int rt_safetensors_read(const char *path, RtSafetensors *out, RtError *err);

/* The same checks on a file already in memory (data, size bytes; only
 * read), named name in messages; out gets a copy of the data section.
 * rt_safetensors_read does the same steps, reading the file as it goes. */
int rt_safetensors_read_mem(const char *name, const void *data, size_t size, RtSafetensors *out, RtError *err);

/* The tensor called name, or NULL; rank and dims (may be NULL) receive its
 * shape. */
const float *rt_safetensors_find(const RtSafetensors *s, const char *name, int *rank, const int64_t **dims);

/* The metadata value for key, or NULL. */
const char *rt_safetensors_metadata(const RtSafetensors *s, const char *key);

void rt_safetensors_free(RtSafetensors *s);

#endif
