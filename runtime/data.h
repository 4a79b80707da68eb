/* runtime/data.h - datasets for training: IDX (MNIST format) and CSV loaders,
 * and batch gathering.
 *
 * A dataset is held in memory as one float matrix x[n][features] (inputs
 * already multiplied by the train block's `scale`) and one label vector,
 * int32 class indices or float targets.  Loaders validate everything they
 * read against the file and against what the model expects, and report
 * problems as "<path>: <what is wrong>" in an RtError; they never abort and
 * never let a header's counts drive an allocation larger than the data that
 * is really there.
 *
 *   idx.c      IDX files, raw or gzipped (zlib)
 *   csv.c      CSV files with an optional header row
 *   text.c     any file as bytes: windows of `context` byte tokens
 * Each parses from memory (rt_*_parse_mem); the file loaders read a file
 * whole and hand it over.
 *   dataset.c  rt_data_load (dispatch), rt_data_free, rt_batch_gather
 */
#ifndef NNRT_DATA_H
#define NNRT_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every fallible runtime function fills one of these: the path, then what is
 * wrong, lower-case, no final period. */
typedef struct RtError {
  char msg[512];
} RtError;

/* RT_LABEL_NONE: inputs only (--predict): IDX images without a labels
 * file, CSV rows whose every column is a feature. */
typedef enum { RT_LABEL_I32, RT_LABEL_F32, RT_LABEL_NONE } RtLabelType;

typedef struct RtDataset {
  int64_t n;              /* samples */
  int64_t features;       /* values per sample */
  float *x;               /* [n][features], already multiplied by scale (NULL for text) */
  RtLabelType label_type;
  int32_t *yi;            /* [n] class indices (RT_LABEL_I32), else NULL */
  float *yf;              /* [n] targets (RT_LABEL_F32), else NULL */
  char *source;           /* the file the inputs came from */
  int64_t label_size;     /* values per label: 1, or the window for text (0 is taken as 1) */
  /* Text: samples are windows of a byte string, not rows in memory.
   * Sample i (or order[i] when a batch is gathered in an order) starts at
   * byte i * stride: its inputs are the `features` bytes there, its labels
   * the byte after each.  tokens is NULL for other data. */
  uint8_t *tokens;
  int64_t ntokens;
  int64_t stride;         /* 1 (training: every window) or the window (evaluation: no overlap) */
} RtDataset;

/* ORDER DataKind: same values as DATA_IDX / DATA_CSV in ir/ir.h
 * (test/unit/test_rt_data.c asserts it at compile time). */
typedef enum { RT_DATA_IDX = 1, RT_DATA_CSV = 2, RT_DATA_TEXT = 3 } RtDataKind;

typedef struct RtDataSpec {
  RtDataKind kind;
  const char *path;      /* idx: directory; csv: training file */
  const char *test_path; /* csv: test file, or NULL */
  const char *label;     /* csv: label column name, or a 0-based index written
                            as digits; NULL = last column */
  double scale;          /* input multiplier (0 is taken as 1) */
  int64_t context;       /* text: bytes per window */
} RtDataSpec;

typedef struct RtDataExpect {
  int64_t features;       /* elements per sample of the model's input; 0 = unchecked */
  RtLabelType label_type;
  int64_t label_bound;    /* i32 labels must be in [0, bound); 0 = unchecked */
  int64_t max_bytes;      /* memory loading may take (the files read, the decoded data, the f32
                             dataset): what the memory limit leaves; 0 = no limit.  Checked
                             before it is taken: IDX from the headers, before any inflating;
                             CSV from the file's size, then as the rows arrive */
} RtDataExpect;

/* Loads the training split, or the test split when test_split is set (IDX:
 * the t10k-* files; CSV: spec->test_path).  Returns 0 on success and -1 with
 * err->msg set on failure (*out is then empty).  A CSV spec without a
 * test_path has no test split: asking for it returns 1 with out->n == 0.
 * expect may be NULL: nothing is checked, labels are i32 for IDX and f32
 * for CSV. */
int rt_data_load(const RtDataSpec *spec, bool test_split, const RtDataExpect *expect,
                 RtDataset *out, RtError *err);
void rt_data_free(RtDataset *d);

/* The training split, then the test split (n == 0 when there is none)
 * within what the training split leaves of expect->max_bytes (its
 * RT_DATA_BYTES).  Returns 0, or -1 with err set (both empty). */
int rt_data_load_splits(const RtDataSpec *spec, const RtDataExpect *expect, RtDataset *train, RtDataset *test,
                        RtError *err);

/* Inputs to predict (labels RT_LABEL_NONE, whatever expect says): for
 * IDX, path is a directory (its t10k images) or an images file (raw, or
 * gzipped when it ends in .gz); for CSV, a file of feature columns only.
 * Returns 0, or -1 with err set (out empty). */
int rt_data_load_inputs(RtDataKind kind, const char *path, double scale, const RtDataExpect *expect, RtDataset *out,
                        RtError *err);
/* Validation: holds out the last ceil(fraction * n) samples of train, in
 * file order, as val, before any shuffling (as Keras' validation_split).
 * val is a view into train's memory: free train only, never val.
 * train->n becomes the samples left.  what names the setting in messages
 * ("option '--validation'").  Returns 0, or -1 with err set when the
 * fraction is outside (0, 1) or leaves either part empty. */
int rt_data_hold_out(RtDataset *train, double fraction, const char *what, RtDataset *val, RtError *err);

/* "PATH: loading it needs about N (WHAT) but the memory limit leaves M for
 * data; ..." when need > max_bytes > 0: -1 with err set, else 0. */
int rt_data_budget(const char *path, double need, const char *what, int64_t max_bytes, RtError *err);

/* Copies samples order[start .. start+count) (order NULL = identity) into
 * x_out[count][features] and y_out[count][label_size] (int32_t or float by
 * d->label_type).  The caller keeps start+count <= n and order[] within
 * [0, n). */
void rt_batch_gather(const RtDataset *d, const int64_t *order, int64_t start, int64_t count,
                     float *x_out, void *y_out);

/* The loaders behind rt_data_load; same contract.  scale is applied to x. */
int rt_idx_load(const char *dir, bool test_split, double scale, const RtDataExpect *expect,
                RtDataset *out, RtError *err);
int rt_idx_load_images(const char *path, double scale, const RtDataExpect *expect, RtDataset *out, RtError *err);
int rt_csv_load(const char *path, const char *label, double scale, const RtDataExpect *expect,
                RtDataset *out, RtError *err);
/* Text: the training split is every window of the file but its last 10%
 * (all of it when test_path is set), one sample per start byte; the test
 * split the non-overlapping windows of the last 10% (or of test_path).
 * expect->features must be the context; labels are i32, label_size the
 * context. */
int rt_text_load(const char *path, const char *test_path, bool test_split, int64_t context,
                 const RtDataExpect *expect, RtDataset *out, RtError *err);
/* Sample s of a text dataset: x[features] token values, y[features] the next bytes (either may be NULL). */
void rt_text_gather(const RtDataset *d, int64_t s, float *x, int32_t *y);
/* rt_data_hold_out for text: the last fraction of the bytes, as non-overlapping windows. */
int rt_text_hold_out(RtDataset *train, double fraction, const char *what, RtDataset *val, RtError *err);

/* A file's bytes already in memory.  name stands for the file in messages
 * ("<name>: <what is wrong>") and becomes RtDataset.source. */
typedef struct RtMemFile {
  const char *name;
  const void *data;       /* size bytes; may be NULL when size is 0 */
  size_t size;
  bool gz;                /* IDX: gzip-compressed (decoded with zlib) */
} RtMemFile;

/* The parsers behind rt_idx_load and rt_csv_load, on files in memory (the
 * loaders read the files whole and call these): same checks, limits and
 * messages.  The data is only read, never kept: out owns copies. */
int rt_idx_parse_mem(const RtMemFile *images, const RtMemFile *labels, double scale,
                     const RtDataExpect *expect, RtDataset *out, RtError *err);
int rt_csv_parse_mem(const RtMemFile *file, const char *label, double scale, const RtDataExpect *expect,
                     RtDataset *out, RtError *err);

/* Sets err->msg from a printf format (NULL err is allowed) and returns -1;
 * longer messages are cut to fit. */
int rt_error_set(RtError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "PROG: error: MESSAGE" on stderr ("error: MESSAGE" when prog is NULL). */
void rt_print_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* strerror(errnum) with a lower-case first letter, in buf. */
const char *rt_strerror(int errnum, char *buf, size_t size);

#endif
