/* test/unit/test_rt_data.c - dataset loading (runtime/idx.c, csv.c,
 * dataset.c): the committed Fashion-MNIST subset and regression CSVs, the
 * real Fashion-MNIST when installed, and malformed IDX and CSV files written
 * to a temporary directory, each of which must fail with -1 and a message
 * that names the file; then the parsers on files in memory
 * (rt_idx_parse_mem, rt_csv_parse_mem), which must agree with the loaders.  Run from test/ (reads Inputs/...).  Prints one line
 * per failed check; exits 1 if any failed.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "ir/ir.h" /* only for the enum below: this test links nnrt alone */
#include "runtime/data.h"
#include "runtime/safetensors.h"

#include "check.h"

/* ORDER DataKind: the runtime's values must match the IR's. */
_Static_assert((int)RT_DATA_IDX == (int)DATA_IDX, "ORDER DataKind");
_Static_assert((int)RT_DATA_CSV == (int)DATA_CSV, "ORDER DataKind");

static bool verbose; /* VERBOSE=1 in the environment: print every error message checked */
static char tmpdir[256];

/* ---- helpers ---------------------------------------------------------------- */

static char *path_in(const char *dir, const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static void write_file(const char *path, const void *data, size_t n, bool gz) {
  if (gz) {
    gzFile g = gzopen(path, "wb");
    if (!g || (n && gzwrite(g, data, (unsigned)n) != (int)n) || gzclose(g) != Z_OK) {
      printf("cannot write %s\n", path);
      exit(2);
    }
    return;
  }
  FILE *f = fopen(path, "wb");
  if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
    printf("cannot write %s\n", path);
    exit(2);
  }
}

/* An IDX file: header for (type, dims) then payload bytes. */
typedef struct Blob {
  unsigned char *p;
  size_t n;
} Blob;

static Blob idx(int type, int ndims, const uint32_t *dims, const void *payload, size_t payload_n) {
  Blob b;
  b.n = 4 + 4 * (size_t)ndims + payload_n;
  b.p = malloc(b.n);
  b.p[0] = b.p[1] = 0;
  b.p[2] = (unsigned char)type;
  b.p[3] = (unsigned char)ndims;
  for (int i = 0; i < ndims; i++) {
    b.p[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
    b.p[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
    b.p[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
    b.p[7 + 4 * i] = (unsigned char)dims[i];
  }
  if (payload_n) memcpy(b.p + 4 + 4 * ndims, payload, payload_n);
  return b;
}

/* A fresh empty directory under tmpdir. */
static const char *fresh_dir(const char *name) {
  static char buf[512];
  snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
  mkdir(buf, 0700);
  return buf;
}

/* A good 3-sample 2x2 training split in dir (raw or gz). */
static void good_split(const char *dir, bool gz) {
  unsigned char px[12] = {0, 255, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  unsigned char lb[3] = {1, 0, 2};
  uint32_t di[3] = {3, 2, 2}, dl[1] = {3};
  Blob a = idx(0x08, 3, di, px, 12), b = idx(0x08, 1, dl, lb, 3);
  write_file(path_in(dir, gz ? "train-images-idx3-ubyte.gz" : "train-images-idx3-ubyte"), a.p, a.n, gz);
  write_file(path_in(dir, gz ? "train-labels-idx1-ubyte.gz" : "train-labels-idx1-ubyte"), b.p, b.n, gz);
  free(a.p);
  free(b.p);
}

static const RtDataExpect small_expect = {4, RT_LABEL_I32, 10, 0};

/* Loads dir and expects failure with a message containing both strings. */
static void expect_idx_error(const char *dir, const RtDataExpect *ex, const char *file, const char *what,
                             int line) {
  RtDataset d;
  RtError err = {{0}};
  RtDataSpec spec = {RT_DATA_IDX, dir, NULL, NULL, 1, 0};
  int rc = rt_data_load(&spec, false, ex, &d, &err);
  checks++;
  if (verbose) printf("  %s\n", err.msg);
  if (rc != -1 || !strstr(err.msg, file) || !strstr(err.msg, what) || d.x || d.n) {
    check_failed(__FILE__, line, dir, ": rc %d, message '%s' (wanted '%s' and '%s')", rc, err.msg, file, what);
  }
}
#define IDX_ERROR(dir, ex, file, what) expect_idx_error(dir, ex, file, what, __LINE__)

/* ---- IDX ------------------------------------------------------------------------ */

static void test_fashion_small(void) {
  RtDataSpec spec = {RT_DATA_IDX, "Inputs/fashion-small", NULL, NULL, 1.0 / 255, 0};
  RtDataExpect ex = {784, RT_LABEL_I32, 10, 0};
  RtDataset d;
  RtError err;
  int rc = rt_data_load(&spec, false, &ex, &d, &err);
  CHECK(rc == 0, "fashion-small train: %s", err.msg);
  if (rc == 0) {
    CHECK(d.n == 2000 && d.features == 784, "n %lld, features %lld", (long long)d.n, (long long)d.features);
    CHECK(d.yi && !d.yf && d.yi[0] == 9, "first label %d", d.yi ? d.yi[0] : -1);
    int counts[10] = {0};
    float lo = 1, hi = 0;
    for (int64_t i = 0; i < d.n; i++) counts[d.yi[i]]++;
    for (int64_t i = 0; i < d.n * d.features; i++) lo = fminf(lo, d.x[i]), hi = fmaxf(hi, d.x[i]);
    for (int k = 0; k < 10; k++) CHECK(counts[k] == 200, "class %d has %d samples", k, counts[k]);
    CHECK(lo == 0 && hi == 1, "scaled pixels in [%g, %g]", lo, hi);
    CHECK(d.source && strstr(d.source, "train-images-idx3-ubyte.gz"), "source %s", d.source);
    rt_data_free(&d);
    CHECK(d.x == NULL && d.n == 0, "free clears the dataset");
  }
  rc = rt_data_load(&spec, true, &ex, &d, &err);
  CHECK(rc == 0, "fashion-small test: %s", err.msg);
  if (rc == 0) {
    CHECK(d.n == 500 && d.yi[0] == 9, "test: n %lld, first label %d", (long long)d.n, d.yi[0]);
    rt_data_free(&d);
  }
}

static void test_fashion_full(void) {
  const char *dir = "/usr/share/datasets/fashion-mnist";
  struct stat st;
  if (stat(dir, &st) != 0) {
    check_note("%s not installed, skipping the full-size check", dir);
    return;
  }
  RtDataSpec spec = {RT_DATA_IDX, dir, NULL, NULL, 1.0 / 255, 0};
  RtDataExpect ex = {784, RT_LABEL_I32, 10, 0};
  RtDataset d;
  RtError err;
  int rc = rt_data_load(&spec, false, &ex, &d, &err);
  CHECK(rc == 0, "fashion-mnist train: %s", err.msg);
  if (rc == 0) {
    CHECK(d.n == 60000 && d.features == 784 && d.yi[0] == 9, "train: n %lld, first label %d", (long long)d.n,
          d.yi[0]);
    rt_data_free(&d);
  }
  rc = rt_data_load(&spec, true, &ex, &d, &err);
  CHECK(rc == 0, "fashion-mnist test: %s", err.msg);
  if (rc == 0) {
    CHECK(d.n == 10000 && d.yi[0] == 9, "test: n %lld, first label %d", (long long)d.n, d.yi[0]);
    rt_data_free(&d);
  }
}

static void test_idx_good_small(void) {
  const char *dir = fresh_dir("good");
  good_split(dir, false);
  RtDataSpec spec = {RT_DATA_IDX, dir, NULL, NULL, 0.5, 0};
  RtDataset d;
  RtError err;
  int rc = rt_data_load(&spec, false, &small_expect, &d, &err);
  CHECK(rc == 0, "small raw split: %s", err.msg);
  if (rc == 0) {
    CHECK(d.n == 3 && d.features == 4, "n %lld features %lld", (long long)d.n, (long long)d.features);
    CHECK(d.x[1] == 127.5f && d.x[11] == 6.0f, "scale applied: %g %g", d.x[1], d.x[11]);
    CHECK(d.yi[0] == 1 && d.yi[2] == 2, "labels");

    float xb[8];
    int32_t yb[2];
    int64_t order[3] = {2, 0, 1};
    rt_batch_gather(&d, order, 0, 2, xb, yb);
    CHECK(xb[0] == 4.5f && xb[4] == 0 && yb[0] == 2 && yb[1] == 1, "gather with order: %g %g %d %d", xb[0],
          xb[4], yb[0], yb[1]);
    rt_batch_gather(&d, NULL, 1, 2, xb, yb);
    CHECK(xb[0] == 2.5f && xb[7] == 6.0f && yb[0] == 0 && yb[1] == 2, "gather without order: %g %g %d %d",
          xb[0], xb[7], yb[0], yb[1]);
    rt_data_free(&d);
  }
  /* No expectations: accepted as it is, labels i32. */
  rc = rt_data_load(&spec, false, NULL, &d, &err);
  CHECK(rc == 0 && d.yi && d.features == 4, "NULL expect: %s", err.msg);
  if (rc == 0) rt_data_free(&d);
  /* f32 labels from an IDX file. */
  RtDataExpect fx = {4, RT_LABEL_F32, 0, 0};
  rc = rt_data_load(&spec, false, &fx, &d, &err);
  CHECK(rc == 0 && d.yf && !d.yi && d.yf[2] == 2.0f, "f32 labels: %s", err.msg);
  if (rc == 0) rt_data_free(&d);

  /* The raw file wins over a broken .gz beside it. */
  write_file(path_in(dir, "train-images-idx3-ubyte.gz"), "junk", 4, false);
  rc = rt_data_load(&spec, false, &small_expect, &d, &err);
  CHECK(rc == 0, "raw preferred over .gz: %s", err.msg);
  if (rc == 0) rt_data_free(&d);

  dir = fresh_dir("goodgz");
  good_split(dir, true);
  spec.path = dir;
  rc = rt_data_load(&spec, false, &small_expect, &d, &err);
  CHECK(rc == 0 && d.n == 3 && d.x[1] == 127.5f, "small gz split: %s", err.msg);
  if (rc == 0) rt_data_free(&d);

  /* Other element types: big-endian i16 and f32 images. */
  dir = fresh_dir("types");
  uint32_t di[2] = {1, 2}, dl[1] = {1};
  unsigned char lb[1] = {3};
  unsigned char i16[4] = {0xFF, 0xFE, 0x01, 0x00}; /* -2, 256 */
  unsigned char f32[8] = {0x3F, 0xC0, 0, 0, 0xC0, 0x20, 0, 0}; /* 1.5, -2.5 */
  Blob l = idx(0x08, 1, dl, lb, 1);
  write_file(path_in(dir, "train-labels-idx1-ubyte"), l.p, l.n, false);
  Blob a = idx(0x0B, 2, di, i16, 4);
  write_file(path_in(dir, "train-images-idx3-ubyte"), a.p, a.n, false);
  RtDataExpect ex2 = {2, RT_LABEL_I32, 10, 0};
  spec.path = dir;
  spec.scale = 1;
  rc = rt_data_load(&spec, false, &ex2, &d, &err);
  CHECK(rc == 0 && d.x[0] == -2 && d.x[1] == 256, "i16 images: %s", err.msg);
  if (rc == 0) rt_data_free(&d);
  free(a.p);
  a = idx(0x0D, 2, di, f32, 8);
  write_file(path_in(dir, "train-images-idx3-ubyte"), a.p, a.n, false);
  rc = rt_data_load(&spec, false, &ex2, &d, &err);
  CHECK(rc == 0 && d.x[0] == 1.5f && d.x[1] == -2.5f, "f32 images: %s", err.msg);
  if (rc == 0) rt_data_free(&d);
  free(a.p);
  free(l.p);
}

static void test_idx_errors(void) {
  unsigned char px[12] = {0}, lb[3] = {1, 0, 2};
  uint32_t di[3] = {3, 2, 2}, dl[1] = {3};
  const char *IM = "train-images-idx3-ubyte", *LB = "train-labels-idx1-ubyte";
  const char *dir;
  Blob b;

  dir = fresh_dir("magic");
  good_split(dir, false);
  b = idx(0x08, 3, di, px, 12);
  b.p[1] = 8;
  write_file(path_in(dir, IM), b.p, b.n, false);
  IDX_ERROR(dir, &small_expect, IM, "bad magic");
  free(b.p);

  dir = fresh_dir("gzmagic"); /* a gzip file without the suffix */
  good_split(dir, false);
  b = idx(0x08, 3, di, px, 12);
  write_file(path_in(dir, IM), b.p, b.n, true);
  IDX_ERROR(dir, &small_expect, IM, "gzip file without the .gz suffix");
  free(b.p);

  dir = fresh_dir("type");
  good_split(dir, false);
  b = idx(0x07, 3, di, px, 12);
  write_file(path_in(dir, IM), b.p, b.n, false);
  IDX_ERROR(dir, &small_expect, IM, "unknown type byte 0x07");
  free(b.p);

  dir = fresh_dir("header");
  good_split(dir, false);
  b = idx(0x08, 3, di, px, 12);
  write_file(path_in(dir, IM), b.p, 9, false);
  IDX_ERROR(dir, &small_expect, IM, "truncated header: expected 16 bytes, found 9");
  write_file(path_in(dir, IM), b.p, 2, false);
  IDX_ERROR(dir, &small_expect, IM, "truncated header: expected 4 bytes, found 2");
  write_file(path_in(dir, IM), b.p, 0, false);
  IDX_ERROR(dir, &small_expect, IM, "truncated header");
  free(b.p);

  dir = fresh_dir("data");
  good_split(dir, false);
  b = idx(0x08, 3, di, px, 12);
  write_file(path_in(dir, IM), b.p, b.n - 5, false);
  IDX_ERROR(dir, &small_expect, IM, "truncated: expected 12 bytes of pixels, found 7");
  free(b.p);
  b = idx(0x08, 1, dl, lb, 3);
  good_split(dir, false);
  write_file(path_in(dir, LB), b.p, b.n - 1, false);
  IDX_ERROR(dir, &small_expect, LB, "truncated: expected 3 bytes of labels, found 2");
  free(b.p);

  dir = fresh_dir("trailing");
  good_split(dir, false);
  unsigned char more[13] = {0};
  b = idx(0x08, 3, di, more, 13);
  write_file(path_in(dir, IM), b.p, b.n, false);
  IDX_ERROR(dir, &small_expect, IM, "trailing garbage");
  write_file(path_in(dir, IM), b.p, b.n, true);
  rename(path_in(dir, IM), path_in(dir, "train-images-idx3-ubyte.gz"));
  IDX_ERROR(dir, &small_expect, "train-images-idx3-ubyte.gz", "trailing garbage");
  free(b.p);

  dir = fresh_dir("counts");
  good_split(dir, false);
  uint32_t d2[1] = {2};
  b = idx(0x08, 1, d2, lb, 2);
  write_file(path_in(dir, LB), b.p, b.n, false);
  IDX_ERROR(dir, &small_expect, LB, "mismatched counts: 3 images but 2 labels");
  free(b.p);

  dir = fresh_dir("size");
  good_split(dir, false);
  RtDataExpect ex100 = {100, RT_LABEL_I32, 10, 0};
  IDX_ERROR(dir, &ex100, IM, "images are 2x2 (4 values) but the model's input has 100");

  dir = fresh_dir("range");
  good_split(dir, false);
  unsigned char bad[3] = {1, 12, 2};
  b = idx(0x08, 1, dl, bad, 3);
  write_file(path_in(dir, LB), b.p, b.n, false);
  IDX_ERROR(dir, &small_expect, LB, "label 12 at index 1 is out of range for 10 classes");
  free(b.p);

  dir = fresh_dir("labeldims");
  good_split(dir, false);
  uint32_t dl2[2] = {3, 1};
  b = idx(0x08, 2, dl2, lb, 3);
  write_file(path_in(dir, LB), b.p, b.n, false);
  IDX_ERROR(dir, &small_expect, LB, "expected 1 dimension, found 2");
  free(b.p);

  dir = fresh_dir("imagedims");
  good_split(dir, false);
  b = idx(0x08, 1, dl, px, 3);
  write_file(path_in(dir, IM), b.p, b.n, false);
  IDX_ERROR(dir, &small_expect, IM, "expected at least 2 dimensions");
  free(b.p);

  dir = fresh_dir("zerodim");
  good_split(dir, false);
  uint32_t dz[3] = {3, 0, 2};
  b = idx(0x08, 3, dz, px, 0);
  write_file(path_in(dir, IM), b.p, b.n, false);
  IDX_ERROR(dir, &small_expect, IM, "dimension 1 is zero");
  free(b.p);

  /* A header claiming 4e9 images of 28x28 in a file of a few bytes. */
  dir = fresh_dir("absurd");
  good_split(dir, false);
  uint32_t dh[3] = {4000000000u, 28, 28};
  b = idx(0x08, 3, dh, px, 12);
  write_file(path_in(dir, IM), b.p, b.n, false);
  IDX_ERROR(dir, NULL, IM, "truncated: expected 3136000000000 bytes of pixels, found 12");
  free(b.p);
  dir = fresh_dir("absurdgz");
  good_split(dir, true);
  b = idx(0x08, 3, dh, px, 12);
  write_file(path_in(dir, "train-images-idx3-ubyte.gz"), b.p, b.n, true);
  IDX_ERROR(dir, NULL, "train-images-idx3-ubyte.gz", "over the 4 GiB limit");
  free(b.p);
  /* Under the cap but still far more than the data: read, not allocated. */
  uint32_t dm[3] = {1000000, 28, 28};
  b = idx(0x08, 3, dm, px, 12);
  write_file(path_in(dir, "train-images-idx3-ubyte.gz"), b.p, b.n, true);
  free(b.p);
  b = idx(0x08, 1, dm, lb, 3);
  write_file(path_in(dir, "train-labels-idx1-ubyte.gz"), b.p, b.n, true);
  free(b.p);
  IDX_ERROR(dir, NULL, "train-images-idx3-ubyte.gz", "truncated: expected 784000000 bytes of pixels, found 12");
  /* Dimensions whose product overflows 64 bits. */
  uint32_t dov[4] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 2};
  b = idx(0x0E, 4, dov, px, 0);
  write_file(path_in(dir, "train-images-idx3-ubyte.gz"), b.p, b.n, true);
  IDX_ERROR(dir, NULL, "train-images-idx3-ubyte.gz", "overflow");
  free(b.p);

  dir = fresh_dir("missing");
  IDX_ERROR(dir, &small_expect, "train-images-idx3-ubyte", "tried train-images-idx3-ubyte and train-images-idx3-ubyte.gz");
  good_split(dir, false);
  unlink(path_in(dir, LB));
  IDX_ERROR(dir, &small_expect, LB, "not found");
  IDX_ERROR("/nonexistent/nnc-data", &small_expect, "/nonexistent/nnc-data", "no such file");
  {
    RtDataSpec spec = {RT_DATA_IDX, dir, NULL, NULL, 1, 0};
    RtDataset d;
    RtError err;
    int rc = rt_data_load(&spec, true, &small_expect, &d, &err);
    CHECK(rc == -1 && strstr(err.msg, "t10k-images-idx3-ubyte"), "missing test split: %s", err.msg);
  }

  /* Corrupt gzip: flipped bytes in the deflate data, a cut stream, and
   * plain data under a .gz name. */
  dir = fresh_dir("corrupt");
  good_split(dir, true);
  unsigned char big[4000];
  for (int i = 0; i < 4000; i++) big[i] = (unsigned char)(i * 7 + i / 13);
  uint32_t d1000[3] = {1000, 2, 2}, dl1000[1] = {1000};
  b = idx(0x08, 3, d1000, big, 4000);
  char *gzpath = path_in(dir, "train-images-idx3-ubyte.gz");
  write_file(gzpath, b.p, b.n, true);
  free(b.p);
  unsigned char lab[1000] = {0};
  b = idx(0x08, 1, dl1000, lab, 1000);
  write_file(path_in(dir, "train-labels-idx1-ubyte.gz"), b.p, b.n, true);
  free(b.p);
  FILE *f = fopen(gzpath, "rb");
  unsigned char gz[8192];
  size_t gzn = fread(gz, 1, sizeof gz, f);
  fclose(f);
  RtDataset d;
  RtError err;
  RtDataSpec spec = {RT_DATA_IDX, dir, NULL, NULL, 1, 0};
  int rc = rt_data_load(&spec, false, &small_expect, &d, &err);
  CHECK(rc == 0 && d.n == 1000, "corrupt-test baseline loads: %s", err.msg);
  if (rc == 0) rt_data_free(&d);
  unsigned char cgz[8192];
  memcpy(cgz, gz, gzn);
  for (size_t i = gzn / 3; i < gzn / 3 + 16; i++) cgz[i] ^= 0x5A;
  write_file(gzpath, cgz, gzn, false);
  IDX_ERROR(dir, &small_expect, "train-images-idx3-ubyte.gz", "gzip");
  memcpy(cgz, gz, gzn);
  cgz[gzn - 6] ^= 0xFF; /* the CRC in the trailer */
  write_file(gzpath, cgz, gzn, false);
  IDX_ERROR(dir, &small_expect, "train-images-idx3-ubyte.gz", "gzip");
  write_file(gzpath, gz, gzn / 2, false);
  IDX_ERROR(dir, &small_expect, "train-images-idx3-ubyte.gz", "truncated");
  write_file(gzpath, gz, 5, false);
  IDX_ERROR(dir, &small_expect, "train-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz: ");
  b = idx(0x08, 3, d1000, big, 4000);
  write_file(gzpath, b.p, b.n, false);
  IDX_ERROR(dir, &small_expect, "train-images-idx3-ubyte.gz", "not in gzip format");
  free(b.p);
}

/* ---- in memory ------------------------------------------------------------------ */

/* The whole file at path, malloc'd. */
static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  rewind(f);
  unsigned char *p = malloc(len > 0 ? (size_t)len : 1);
  *n = len > 0 && p ? fread(p, 1, (size_t)len, f) : 0;
  fclose(f);
  return p;
}

/* A gzip member of data (gzip's own format, as gzwrite writes it). */
static Blob gz_member(const void *data, size_t n) {
  Blob b = {malloc(n + 64 + n / 100), 0};
  z_stream z;
  memset(&z, 0, sizeof z);
  deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  z.next_in = (unsigned char *)(uintptr_t)data;
  z.avail_in = (uInt)n;
  z.next_out = b.p;
  z.avail_out = (uInt)(n + 64 + n / 100);
  deflate(&z, Z_FINISH);
  b.n = z.total_out;
  deflateEnd(&z);
  return b;
}

/* rt_idx_parse_mem and rt_csv_parse_mem: what the file loaders run on the
 * files' bytes; the same results and messages, named by the name given. */
static void test_mem(void) {
  unsigned char px[12] = {0, 255, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  unsigned char lb[3] = {1, 0, 2};
  uint32_t di[3] = {3, 2, 2}, dl[1] = {3};
  Blob a = idx(0x08, 3, di, px, 12), b = idx(0x08, 1, dl, lb, 3);
  RtDataset d;
  RtError err = {{0}};
  RtMemFile im = {"imgs", a.p, a.n, false}, lm = {"labs", b.p, b.n, false};
  int rc = rt_idx_parse_mem(&im, &lm, 0.5, &small_expect, &d, &err);
  CHECK(rc == 0 && d.n == 3 && d.features == 4 && d.x[1] == 127.5f && d.yi[2] == 2, "raw in memory: %s", err.msg);
  if (rc == 0) {
    CHECK(strcmp(d.source, "imgs") == 0, "source %s", d.source);
    rt_data_free(&d);
  }

  /* gzip: one member, two members (gzread reads on into the next), bytes
   * after the last member that start no other (ignored, as gzread does). */
  Blob ga = gz_member(a.p, a.n), g1 = gz_member(b.p, 5), g2 = gz_member(b.p + 5, b.n - 5);
  unsigned char two[512];
  memcpy(two, g1.p, g1.n);
  memcpy(two + g1.n, g2.p, g2.n);
  memcpy(two + g1.n + g2.n, "junk", 4);
  RtMemFile gim = {"imgs.gz", ga.p, ga.n, true}, glm = {"labs.gz", two, g1.n + g2.n, true};
  rc = rt_idx_parse_mem(&gim, &glm, 1, &small_expect, &d, &err);
  CHECK(rc == 0 && d.n == 3 && d.x[1] == 255 && d.yi[0] == 1, "two gzip members: %s", err.msg);
  if (rc == 0) rt_data_free(&d);
  glm.size += 4;
  rc = rt_idx_parse_mem(&gim, &glm, 1, &small_expect, &d, &err);
  CHECK(rc == 0 && d.n == 3, "garbage after the last member is ignored: %s", err.msg);
  if (rc == 0) rt_data_free(&d);

  /* Errors name the name given. */
  RtMemFile cut = {"imgs.gz", ga.p, ga.n - 9, true};
  rc = rt_idx_parse_mem(&cut, &lm, 1, &small_expect, &d, &err);
  CHECK(rc == -1 && strcmp(err.msg, "imgs.gz: truncated gzip stream") == 0 && !d.x, "cut gzip: %s", err.msg);
  /* A stream cut anywhere in its 8-byte trailer (CRC-32, length) is cut
   * too, also past 256 KiB of data (where the old decoder read straight
   * into the caller's buffer and never looked at the trailer). */
  {
    enum { N = 2000, PX = N * 784 };
    unsigned char *pix = malloc(PX), labs[N];
    for (size_t i = 0; i < PX; i++) pix[i] = (unsigned char)(i * 31 + i / 7);
    for (int i = 0; i < N; i++) labs[i] = (unsigned char)(i % 10);
    uint32_t dims_i[3] = {N, 28, 28}, dims_l[1] = {N};
    Blob bi = idx(0x08, 3, dims_i, pix, PX), bl = idx(0x08, 1, dims_l, labs, N);
    Blob gi = gz_member(bi.p, bi.n);
    RtMemFile lm2 = {"labs", bl.p, bl.n, false}, whole = {"big.gz", gi.p, gi.n, true};
    rc = rt_idx_parse_mem(&whole, &lm2, 1, NULL, &d, &err);
    CHECK(rc == 0 && d.n == N && gi.n > 8, "a big gzip member: %s", err.msg);
    if (rc == 0) rt_data_free(&d);
    for (size_t k = 1; k <= 8; k++) {
      RtMemFile c = {"big.gz", gi.p, gi.n - k, true};
      rc = rt_idx_parse_mem(&c, &lm2, 1, NULL, &d, &err);
      CHECK(rc == -1 && strcmp(err.msg, "big.gz: truncated gzip stream") == 0, "%zu trailer bytes cut: %s", k,
            rc ? err.msg : "accepted");
      if (rc == 0) rt_data_free(&d);
    }
    free(pix), free(bi.p), free(bl.p), free(gi.p);
  }
  RtMemFile plain = {"imgs.gz", a.p, a.n, true};
  rc = rt_idx_parse_mem(&plain, &lm, 1, &small_expect, &d, &err);
  CHECK(rc == -1 && strstr(err.msg, "imgs.gz: not in gzip format"), "plain under gz: %s", err.msg);
  RtMemFile empty = {"labs", NULL, 0, false};
  rc = rt_idx_parse_mem(&im, &empty, 1, &small_expect, &d, &err);
  CHECK(rc == -1 && strcmp(err.msg, "labs: truncated header: expected 4 bytes, found 0") == 0, "empty: %s", err.msg);
  RtMemFile longer = {"labs", b.p, b.n - 1, false};
  rc = rt_idx_parse_mem(&im, &longer, 1, &small_expect, &d, &err);
  CHECK(rc == -1 && strcmp(err.msg, "labs: truncated: expected 3 bytes of labels, found 2") == 0, "short: %s",
        err.msg);

  /* The loader and the parser agree, message for message, on every cut of
   * the gzipped images file (each a different place for zlib to stop). */
  const char *dir = fresh_dir("memcuts");
  write_file(path_in(dir, "train-labels-idx1-ubyte"), b.p, b.n, false);
  int agree = 0, tried = 0;
  for (size_t n = 0; n <= ga.n; n++, tried++) {
    write_file(path_in(dir, "train-images-idx3-ubyte.gz"), ga.p, n, false);
    RtDataSpec spec = {RT_DATA_IDX, dir, NULL, NULL, 1, 0};
    RtError e1 = {{0}}, e2 = {{0}};
    RtDataset d1, d2;
    int r1 = rt_data_load(&spec, false, &small_expect, &d1, &e1);
    RtMemFile c = {path_in(dir, "train-images-idx3-ubyte.gz"), ga.p, n, true};
    RtMemFile l = {path_in(dir, "train-labels-idx1-ubyte"), b.p, b.n, false};
    int r2 = rt_idx_parse_mem(&c, &l, 1, &small_expect, &d2, &e2);
    agree += r1 == r2 && strcmp(e1.msg, e2.msg) == 0;
    if (r1 == 0) rt_data_free(&d1);
    if (r2 == 0) rt_data_free(&d2);
  }
  CHECK(agree == tried, "loader and parser agree on %d of %d cuts", agree, tried);
  free(a.p), free(b.p), free(ga.p), free(g1.p), free(g2.p);

  /* CSV: the same parse from memory; the input is only read. */
  const char text[] = "a,y\n1,2\n3,x\n";
  RtMemFile cm = {"mem.csv", text, 8, false};
  RtDataExpect f1 = {1, RT_LABEL_F32, 0, 0};
  rc = rt_csv_parse_mem(&cm, "y", 1, &f1, &d, &err);
  CHECK(rc == 0 && d.n == 1 && d.x[0] == 1 && d.yf[0] == 2 && strcmp(d.source, "mem.csv") == 0, "csv in memory: %s",
        err.msg);
  if (rc == 0) rt_data_free(&d);
  cm.size = sizeof text - 1;
  rc = rt_csv_parse_mem(&cm, "y", 1, &f1, &d, &err);
  CHECK(rc == -1 && strcmp(err.msg, "mem.csv: line 3, column 'y': 'x' is not a number") == 0, "csv error: %s",
        err.msg);
  CHECK(strcmp(text, "a,y\n1,2\n3,x\n") == 0, "the csv text is unchanged");
  RtMemFile none = {"none.csv", NULL, 0, false};
  rc = rt_csv_parse_mem(&none, NULL, 1, NULL, &d, &err);
  CHECK(rc == -1 && strcmp(err.msg, "none.csv: empty file") == 0, "empty csv: %s", err.msg);

  /* The committed subset, read into memory: the same dataset as the loader's. */
  size_t ni = 0, nl = 0;
  unsigned char *fi = slurp("Inputs/fashion-small/train-images-idx3-ubyte.gz", &ni);
  unsigned char *fl = slurp("Inputs/fashion-small/train-labels-idx1-ubyte.gz", &nl);
  if (fi && fl) {
    RtMemFile mi = {"i.gz", fi, ni, true}, ml = {"l.gz", fl, nl, true};
    RtDataSpec spec = {RT_DATA_IDX, "Inputs/fashion-small", NULL, NULL, 1, 0};
    RtDataset d1;
    int r1 = rt_data_load(&spec, false, NULL, &d1, &err);
    rc = rt_idx_parse_mem(&mi, &ml, 1, NULL, &d, &err);
    CHECK(rc == 0 && r1 == 0 && d.n == d1.n && memcmp(d.x, d1.x, (size_t)(d.n * d.features) * 4) == 0 &&
              memcmp(d.yi, d1.yi, (size_t)d.n * 4) == 0,
          "fashion-small in memory: %s", err.msg);
    if (rc == 0) rt_data_free(&d);
    if (r1 == 0) rt_data_free(&d1);
  }
  free(fi);
  free(fl);

  /* safetensors: rt_safetensors_write_mem builds the bytes that
   * rt_safetensors_write writes; rt_safetensors_read_mem reads them as
   * rt_safetensors_read reads the file, errors included. */
  float w[6] = {1, 2, 3, 4, 5, -6}, s0 = 0.25f;
  RtTensorRef refs[2] = {{"h.w", w, 2, {2, 3}}, {"s", &s0, 0, {0}}};
  void *buf = NULL;
  size_t len = 0;
  rc = rt_safetensors_write_mem("m.safetensors", refs, 2, "\"k\": \"v\"", &buf, &len, &err);
  const char *sp = path_in(tmpdir, "m.safetensors");
  int wrc = rt_safetensors_write(sp, refs, 2, "\"k\": \"v\"", &err);
  size_t flen = 0;
  unsigned char *fbytes = slurp(sp, &flen);
  CHECK(rc == 0 && wrc == 0 && fbytes && flen == len && memcmp(fbytes, buf, len) == 0, "write_mem = write: %s",
        err.msg);
  RtSafetensors st;
  rc = rt_safetensors_read_mem("m.safetensors", buf, len, &st, &err);
  CHECK(rc == 0 && st.n == 2 && st.tensors[0].data[5] == -6 && st.tensors[1].data[0] == 0.25f &&
            strcmp(rt_safetensors_metadata(&st, "k"), "v") == 0,
        "read_mem: %s", err.msg);
  if (rc == 0) rt_safetensors_free(&st);
  for (size_t k = 0; buf && k < len; k += 7) {
    write_file(sp, buf, k, false);
    RtError e1 = {{0}}, e2 = {{0}};
    int r1 = rt_safetensors_read(sp, &st, &e1);
    if (r1 == 0) rt_safetensors_free(&st);
    int r2 = rt_safetensors_read_mem(sp, buf, k, &st, &e2);
    if (r2 == 0) rt_safetensors_free(&st);
    CHECK(r1 == -1 && r2 == -1 && strcmp(e1.msg, e2.msg) == 0, "cut at %zu: '%s' vs '%s'", k, e1.msg, e2.msg);
  }
  free(buf);
  free(fbytes);
}

/* ---- CSV ------------------------------------------------------------------------ */

static const char *csv_file(const char *name, const char *text) {
  const char *p = path_in(tmpdir, name);
  write_file(p, text, strlen(text), false);
  return p;
}

static int csv_load(const char *path, const char *label, const RtDataExpect *ex, RtDataset *d, RtError *err) {
  RtDataSpec spec = {RT_DATA_CSV, path, NULL, label, 1, 0};
  return rt_data_load(&spec, false, ex, d, err);
}

static void expect_csv_error(const char *name, const char *text, const char *label, const RtDataExpect *ex,
                             const char *what, int line) {
  const char *path = csv_file(name, text);
  RtDataset d;
  RtError err = {{0}};
  int rc = csv_load(path, label, ex, &d, &err);
  checks++;
  if (verbose) printf("  %s\n", err.msg);
  if (rc != -1 || !strstr(err.msg, path) || !strstr(err.msg, what) || d.x) {
    check_failed(__FILE__, line, name, ": rc %d, message '%s' (wanted '%s')", rc, err.msg, what);
  }
}
#define CSV_ERROR(name, text, label, ex, what) expect_csv_error(name, text, label, ex, what, __LINE__)

static void test_csv(void) {
  RtDataExpect f2 = {2, RT_LABEL_F32, 0, 0}, c2 = {2, RT_LABEL_I32, 3, 0};
  RtDataset d;
  RtError err;
  int rc;

  /* Header, label by name in the middle: features keep their order. */
  const char *p = csv_file("h.csv", "a,y,b\n1,0.5,2\n3,1.5,4\n");

  /* A scale that is inf or 0 as f32 (the inputs' type) is refused, naming it. */
  RtDataSpec big = {RT_DATA_CSV, p, NULL, "y", 1e39, 0}, tiny = {RT_DATA_CSV, p, NULL, "y", 1e-50, 0};
  rc = rt_data_load(&big, false, &f2, &d, &err);
  CHECK(rc == -1 && strstr(err.msg, "h.csv: scale 1e+39 is out of range for f32 (from 1.17549e-38 to 3.40282e+38 in "
                                    "magnitude)"),
        "scale 1e39: %s", err.msg);
  rc = rt_data_load(&tiny, false, &f2, &d, &err);
  CHECK(rc == -1 && strstr(err.msg, "h.csv: scale 1e-50 is out of range for f32"), "scale 1e-50: %s", err.msg);
  rc = csv_load(p, "y", &f2, &d, &err);
  CHECK(rc == 0, "header + name: %s", err.msg);
  if (rc == 0) {
    CHECK(d.n == 2 && d.features == 2 && d.x[0] == 1 && d.x[1] == 2 && d.x[3] == 4 && d.yf[1] == 1.5f,
          "values");
    CHECK(d.source && strcmp(d.source, p) == 0, "source %s", d.source);
    float xb[4], yb[2];
    int64_t order[2] = {1, 0};
    rt_batch_gather(&d, order, 0, 2, xb, yb);
    CHECK(xb[0] == 3 && xb[2] == 1 && yb[0] == 1.5f && yb[1] == 0.5f, "gather f32 labels");
    rt_data_free(&d);
  }
  rc = csv_load(p, "1", &f2, &d, &err);
  CHECK(rc == 0 && d.yf[0] == 0.5f, "label by index: %s", err.msg);
  if (rc == 0) rt_data_free(&d);

  /* No header, label = last column by default; comments, blank lines,
   * quotes, CRLF, spaces, scale. */
  p = csv_file("nh.csv", "# a comment\r\n1, \"2\" ,0\r\n\r\n  # another\r\n\"3\",4,2\r\n\r\n\n");
  RtDataSpec spec = {RT_DATA_CSV, p, NULL, NULL, 10, 0};
  rc = rt_data_load(&spec, false, &c2, &d, &err);
  CHECK(rc == 0, "no header: %s", err.msg);
  if (rc == 0) {
    CHECK(d.n == 2 && d.x[1] == 20 && d.x[2] == 30 && d.yi[0] == 0 && d.yi[1] == 2, "no header values");
    rt_data_free(&d);
  }
  RtDataExpect c4 = {2, RT_LABEL_I32, 4, 0};
  rc = csv_load(p, "0", &c4, &d, &err);
  CHECK(rc == 0 && d.yi[0] == 1 && d.yi[1] == 3 && d.x[0] == 2 && d.x[1] == 0, "index 0 without header: %s",
        err.msg);
  if (rc == 0) rt_data_free(&d);

  /* Quoted header names with commas and doubled quotes. */
  p = csv_file("q.csv", "\"a,1\",\"say \"\"hi\"\"\",lab\n1,2,3\n");
  rc = csv_load(p, "say \"hi\"", &f2, &d, &err);
  CHECK(rc == 0 && d.yf[0] == 2 && d.x[1] == 3, "quoted names: %s", err.msg);
  if (rc == 0) rt_data_free(&d);

  /* A file without a final newline. */
  p = csv_file("nonl.csv", "1,2,3");
  rc = csv_load(p, NULL, &f2, &d, &err);
  CHECK(rc == 0 && d.n == 1 && d.yf[0] == 3, "no final newline: %s", err.msg);
  if (rc == 0) rt_data_free(&d);

  CSV_ERROR("ragged.csv", "a,b,c\n1,2,3\n1,2,3\n1,2\n", NULL, &f2, "line 4: expected 3 fields, found 2");
  CSV_ERROR("nan.csv", "a,b,c\n1,abc,3\n", NULL, &f2, "line 2, column 'b': 'abc' is not a number");
  CSV_ERROR("inf.csv", "1,2,3\n1,inf,3\n", NULL, &f2, "line 2, column 1: 'inf' is not a finite number");
  CSV_ERROR("empty.csv", "", NULL, &f2, "empty file");
  CSV_ERROR("blank.csv", "\n\n# only a comment\n", NULL, &f2, "empty file");
  CSV_ERROR("hdronly.csv", "a,b,c\n", NULL, &f2, "no data rows");
  CSV_ERROR("nolabel.csv", "a,b,c\n1,2,3\n", "price", &f2, "no column named 'price' (columns: a, b, c)");
  CSV_ERROR("noheader.csv", "1,2,3\n", "price", &f2, "given by name but the file has no header row");
  CSV_ERROR("badindex.csv", "1,2,3\n", "7", &f2, "label column 7 is out of range: the file has 3 columns");
  CSV_ERROR("range.csv", "1,2,0\n1,2,3\n", NULL, &c2, "line 2: label 3 is out of range for 3 classes");
  CSV_ERROR("neg.csv", "1,2,-1\n", NULL, &c2, "line 1: label -1 is out of range for 3 classes");
  CSV_ERROR("frac.csv", "1,2,1.5\n", NULL, &c2, "line 1: label 1.5 is not an integer");
  CSV_ERROR("features.csv", "a,b,c,d\n1,2,3,4\n", NULL, &f2, "the file has 3 feature columns but the model's input has 2");
  CSV_ERROR("quote.csv", "1,\"2,3\n", NULL, &f2, "line 1: unterminated quoted field");
  CSV_ERROR("afterq.csv", "1,\"2\"x,3\n", NULL, &f2, "line 1: unexpected text after a closing quote");
  CSV_ERROR("onecol.csv", "1\n2\n", NULL, &f2, "expected at least 2 columns");
  {
    const char text[] = "1,2,3\n4,5\0,6\n";
    const char *np = path_in(tmpdir, "nul2.csv");
    write_file(np, text, sizeof text - 1, false);
    rc = csv_load(np, NULL, &f2, &d, &err);
    CHECK(rc == -1 && strstr(err.msg, "line 2: contains a NUL byte"), "NUL byte: %s", err.msg);
  }
  rc = csv_load("/nonexistent/x.csv", NULL, &f2, &d, &err);
  CHECK(rc == -1 && strstr(err.msg, "/nonexistent/x.csv: "), "missing csv: %s", err.msg);
  rc = csv_load(tmpdir, NULL, &f2, &d, &err);
  CHECK(rc == -1 && strstr(err.msg, tmpdir), "directory as csv: %s", err.msg);

  /* The committed regression set. */
  RtDataExpect r8 = {8, RT_LABEL_F32, 0, 0};
  RtDataSpec rs = {RT_DATA_CSV, "Inputs/regression/train.csv", "Inputs/regression/test.csv", "target", 1, 0};
  rc = rt_data_load(&rs, false, &r8, &d, &err);
  CHECK(rc == 0 && d.n == 1000 && d.features == 8 && d.yf, "regression train: %s", err.msg);
  if (rc == 0) {
    CHECK(fabsf(d.x[0] - -0.764007f) < 1e-6f && fabsf(d.yf[0] - 0.147885f) < 1e-6f, "first row %g .. %g",
          d.x[0], d.yf[0]);
    rt_data_free(&d);
  }
  rc = rt_data_load(&rs, true, &r8, &d, &err);
  CHECK(rc == 0 && d.n == 200, "regression test: %s", err.msg);
  if (rc == 0) rt_data_free(&d);
  rs.test_path = NULL;
  rc = rt_data_load(&rs, true, &r8, &d, &err);
  CHECK(rc == 1 && d.n == 0 && !d.x, "no test_path: rc %d", rc);
}

/* Text: windows and the bytes after them, the splits, the vocabulary bound. */
static void test_text(void) {
  RtDataExpect e4 = {4, RT_LABEL_I32, 0, 0};
  RtDataset d, v;
  RtError err;
  /* 20 bytes: 18 of training text (14 windows of 4), 2 of test text (none). */
  const char *p = csv_file("t.txt", "abcdefghijklmnopqrs\n");
  RtDataSpec spec = {RT_DATA_TEXT, p, NULL, NULL, 1, 4};
  int rc = rt_data_load(&spec, false, &e4, &d, &err);
  CHECK(rc == 0 && d.n == 14 && d.features == 4 && d.label_size == 4, "text train: %s n %lld", err.msg, (long long)d.n);
  if (rc == 0) {
    float x[8];
    int32_t y[8];
    int64_t order[2] = {13, 0};
    rt_batch_gather(&d, order, 0, 2, x, y);
    CHECK(x[0] == 'n' && x[3] == 'q' && y[0] == 'o' && y[3] == 'r' && x[4] == 'a' && y[7] == 'e', "text windows");
    /* Validation: the last 5 of 18 bytes, one window of 4 and the byte after it; 13 bytes (9 windows) stay. */
    rc = rt_data_hold_out(&d, 0.25, "validation", &v, &err);
    CHECK(rc == 0 && v.n == 1 && d.n == 9 && v.stride == 4, "text hold-out: %s", err.msg);
    rt_data_free(&d);
  }
  rc = rt_data_load(&spec, true, &e4, &d, &err);
  CHECK(rc == -1 && strstr(err.msg, "t.txt: its last 10% (the test text) has 2 bytes, too few for one window of "
                                    "context 4 and the byte after it"), "text test split: %s", err.msg);
  /* A byte at or above the model's vocabulary is refused as a label. */
  RtDataExpect bound = {4, RT_LABEL_I32, 'q', 0};
  rc = rt_data_load(&spec, false, &bound, &d, &err);
  CHECK(rc == -1 && strstr(err.msg, "t.txt: byte 113 at offset 16 is not a token of the model's 113"),
        "text bound: %s", err.msg);
  /* The input's size must be the context. */
  RtDataExpect e5 = {5, RT_LABEL_I32, 0, 0};
  rc = rt_data_load(&spec, false, &e5, &d, &err);
  CHECK(rc == -1 && strstr(err.msg, "the model's input has 5 values, but text windows have 4 bytes"), "text size: %s",
        err.msg);
}

int main(void) {
  verbose = getenv("VERBOSE") != NULL;
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/nnrt-data-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    printf("cannot create a temporary directory\n");
    return 2;
  }
  test_fashion_small();
  test_fashion_full();
  test_idx_good_small();
  test_idx_errors();
  test_csv();
  test_text();
  test_mem();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
  return check_done();
}
