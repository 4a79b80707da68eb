/* runtime/idx.c - the IDX (MNIST format) loader, raw or gzipped.
 *
 * A split is two files in one directory: <split>-images-idx3-ubyte and
 * <split>-labels-idx1-ubyte (split = train or t10k), each raw or with a .gz
 * suffix; the raw file wins when both exist.  An IDX file is
 *
 *   0x00 0x00 <type> <ndims> <dim0 ... dim(ndims-1) as big-endian u32> <data>
 *
 * with type 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64 (data
 * big-endian) and dim0 the sample count.  Images need ndims >= 2, labels
 * ndims == 1.
 *
 * Safety: the data size the header claims is computed with overflow checks
 * and, before anything is allocated, compared with the real file size (raw
 * files) or a 4 GiB cap (gzip, whose real size is only known by reading).
 * Data is then read in chunks into a buffer that grows only as bytes really
 * arrive, so a lying header cannot cause a large allocation.  Short data,
 * trailing bytes and corrupt gzip streams are all errors.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data.h"

#define GZ_CAP (UINT64_C(4) << 30) /* most bytes of data read from one .gz file */
#define CHUNK ((size_t)1 << 20)

/* One open IDX file and its parsed header. */
typedef struct IdxFile {
  char *path;
  const char *what;     /* "pixels" or "labels", for messages */
  FILE *f;              /* raw file, or */
  gzFile g;             /* gzipped file */
  uint64_t file_size;   /* raw: bytes on disk */
  int type;             /* type byte */
  size_t elem;          /* bytes per element */
  int ndims;
  uint32_t dims[255];
  uint64_t count;       /* dims[0] */
  uint64_t per_sample;  /* product of dims[1..] */
  uint64_t bytes;       /* data bytes the header claims */
  unsigned char *data;  /* the data, once read */
  char errbuf[128];
} IdxFile;

static size_t type_size(int t) {
  switch (t) {
  case 0x08: case 0x09: return 1;
  case 0x0B: return 2;
  case 0x0C: case 0x0D: return 4;
  case 0x0E: return 8;
  }
  return 0;
}

static bool mul_ok(uint64_t a, uint64_t b, uint64_t *r) {
  if (a != 0 && b > UINT64_MAX / a) return false;
  *r = a * b;
  return true;
}

/* Finds dir/base or dir/base.gz; sets *path (malloc'd) and *gz. */
static int find_file(const char *dir, const char *base, char **path, bool *gz, RtError *err) {
  struct stat st;
  if (stat(dir, &st) != 0) return rt_error_set(err, "%s: %s", dir, rt_strerror(errno, (char[128]){0}, 128));
  if (!S_ISDIR(st.st_mode)) return rt_error_set(err, "%s: not a directory", dir);
  size_t dl = strlen(dir);
  const char *sep = dl > 0 && dir[dl - 1] == '/' ? "" : "/";
  size_t len = dl + strlen(base) + 8;
  char *p = malloc(len);
  if (!p) return rt_error_set(err, "%s: out of memory", dir);
  for (int z = 0; z < 2; z++) {
    snprintf(p, len, "%s%s%s%s", dir, sep, base, z ? ".gz" : "");
    if (stat(p, &st) == 0) {
      if (!S_ISREG(st.st_mode)) {
        rt_error_set(err, "%s: not a regular file", p);
        free(p);
        return -1;
      }
      *path = p;
      *gz = z;
      return 0;
    }
  }
  free(p);
  return rt_error_set(err, "%s%s%s: not found (tried %s and %s.gz)", dir, sep, base, base, base);
}

/* zlib's message for the last error, without the "path: " it puts first. */
static const char *gz_message(IdxFile *f) {
  int code;
  const char *m = gzerror(f->g, &code);
  size_t n = strlen(f->path);
  if (strncmp(m, f->path, n) == 0 && m[n] == ':' && m[n + 1] == ' ') m += n + 2;
  return code == Z_ERRNO ? rt_strerror(errno, f->errbuf, sizeof f->errbuf) : m;
}

/* Reads up to n bytes; returns the count (short only at end of data) or -1. */
static int64_t file_read(IdxFile *f, void *buf, size_t n, RtError *err) {
  if (!f->g) {
    size_t got = fread(buf, 1, n, f->f);
    if (got < n && ferror(f->f)) return rt_error_set(err, "%s: read error: %s", f->path, rt_strerror(errno, (char[128]){0}, 128));
    return (int64_t)got;
  }
  size_t total = 0;
  while (total < n) {
    size_t want = n - total < ((size_t)1 << 30) ? n - total : ((size_t)1 << 30);
    int got = gzread(f->g, (char *)buf + total, (unsigned)want);
    if (got < 0) return rt_error_set(err, "%s: corrupt gzip data: %s", f->path, gz_message(f));
    if (got == 0) break;
    total += (size_t)got;
  }
  if (total < n) { /* end of stream: was it a clean one? */
    int code;
    gzerror(f->g, &code);
    if (code == Z_BUF_ERROR) return rt_error_set(err, "%s: truncated gzip stream", f->path);
    if (code != Z_OK) return rt_error_set(err, "%s: corrupt gzip data: %s", f->path, gz_message(f));
  }
  return (int64_t)total;
}

static int open_file(IdxFile *f, const char *dir, const char *base, const char *what, RtError *err) {
  bool gz = false;
  f->what = what;
  if (find_file(dir, base, &f->path, &gz, err)) return -1;
  if (gz) {
    f->g = gzopen(f->path, "rb");
    if (!f->g) return rt_error_set(err, "%s: %s", f->path, errno ? rt_strerror(errno, (char[128]){0}, 128) : "cannot open");
    gzbuffer(f->g, 1 << 17);
  } else {
    f->f = fopen(f->path, "rb");
    if (!f->f) return rt_error_set(err, "%s: %s", f->path, rt_strerror(errno, (char[128]){0}, 128));
    struct stat st;
    if (fstat(fileno(f->f), &st) != 0) return rt_error_set(err, "%s: %s", f->path, rt_strerror(errno, (char[128]){0}, 128));
    f->file_size = (uint64_t)st.st_size;
  }
  return 0;
}

static void close_file(IdxFile *f) {
  if (f->f) fclose(f->f);
  if (f->g) gzclose(f->g);
  free(f->path);
  free(f->data);
  memset(f, 0, sizeof *f);
}

/* Reads and checks the header; computes count, per_sample and bytes, and
 * checks bytes against the file size or the gzip cap. */
static int read_header(IdxFile *f, int min_dims, int max_dims, RtError *err) {
  unsigned char h[4];
  int64_t got = file_read(f, h, 4, err);
  if (got < 0) return -1;
  if (got < 4) return rt_error_set(err, "%s: truncated header: expected 4 bytes, found %d", f->path, (int)got);
  if (f->g && gzdirect(f->g))
    return rt_error_set(err, "%s: not in gzip format (the .gz suffix says it should be)", f->path);
  if (h[0] != 0 || h[1] != 0) {
    if (h[0] == 0x1f && h[1] == 0x8b)
      return rt_error_set(err, "%s: bad magic: this is a gzip file without the .gz suffix", f->path);
    return rt_error_set(err, "%s: bad magic: expected 0x00 0x00, found 0x%02x 0x%02x", f->path, h[0], h[1]);
  }
  f->type = h[2];
  f->elem = type_size(h[2]);
  if (!f->elem)
    return rt_error_set(err, "%s: unknown type byte 0x%02x (expected 0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e)",
                        f->path, h[2]);
  f->ndims = h[3];
  if (f->ndims < min_dims || f->ndims > max_dims) {
    if (min_dims == max_dims)
      return rt_error_set(err, "%s: expected %d dimension%s, found %d", f->path, min_dims,
                          min_dims == 1 ? "" : "s", f->ndims);
    return rt_error_set(err, "%s: expected at least %d dimensions (count and sample shape), found %d",
                        f->path, min_dims, f->ndims);
  }
  unsigned char d[255 * 4];
  size_t want = (size_t)f->ndims * 4;
  got = file_read(f, d, want, err);
  if (got < 0) return -1;
  if ((size_t)got < want)
    return rt_error_set(err, "%s: truncated header: expected %zu bytes, found %d", f->path, 4 + want,
                        4 + (int)got);
  f->per_sample = 1;
  bool ok = true;
  for (int i = 0; i < f->ndims; i++) {
    const unsigned char *p = d + 4 * i;
    f->dims[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (f->dims[i] == 0) return rt_error_set(err, "%s: dimension %d is zero", f->path, i);
    if (i > 0) ok = ok && mul_ok(f->per_sample, f->dims[i], &f->per_sample);
  }
  f->count = f->dims[0];
  ok = ok && mul_ok(f->count, f->per_sample, &f->bytes) && mul_ok(f->bytes, f->elem, &f->bytes);
  if (!ok) return rt_error_set(err, "%s: header dimensions overflow 64 bits", f->path);
  if (!f->g) {
    uint64_t avail = f->file_size > 4 + want ? f->file_size - (4 + want) : 0;
    if (f->bytes > avail)
      return rt_error_set(err, "%s: truncated: expected %llu bytes of %s, found %llu", f->path,
                          (unsigned long long)f->bytes, f->what, (unsigned long long)avail);
    if (f->bytes < avail)
      return rt_error_set(err, "%s: trailing garbage: expected %llu bytes of %s, found %llu", f->path,
                          (unsigned long long)f->bytes, f->what, (unsigned long long)avail);
  } else if (f->bytes > GZ_CAP) {
    return rt_error_set(err, "%s: header claims %llu bytes of %s, over the 4 GiB limit for gzipped files",
                        f->path, (unsigned long long)f->bytes, f->what);
  }
  return 0;
}

/* Reads exactly f->bytes of data into f->data, growing the buffer only as
 * data arrives; then checks that nothing follows. */
static int read_data(IdxFile *f, RtError *err) {
  size_t need = (size_t)f->bytes, have = 0, cap = need < CHUNK ? need : CHUNK;
  f->data = malloc(cap ? cap : 1);
  if (!f->data) return rt_error_set(err, "%s: out of memory", f->path);
  while (have < need) {
    if (have == cap) {
      size_t ncap = cap > need / 2 ? need : cap * 2;
      unsigned char *p = realloc(f->data, ncap);
      if (!p) return rt_error_set(err, "%s: out of memory reading %zu bytes", f->path, need);
      f->data = p;
      cap = ncap;
    }
    int64_t got = file_read(f, f->data + have, cap - have, err);
    if (got < 0) return -1;
    if (got == 0) break;
    have += (size_t)got;
  }
  if (have < need)
    return rt_error_set(err, "%s: truncated: expected %zu bytes of %s, found %zu", f->path, need, f->what, have);
  unsigned char extra;
  int64_t got = file_read(f, &extra, 1, err);
  if (got < 0) return -1;
  if (got > 0) return rt_error_set(err, "%s: trailing garbage after %zu bytes of %s", f->path, need, f->what);
  return 0;
}

/* Element i of the data as a double (big-endian). */
static double elem_at(const IdxFile *f, size_t i) {
  const unsigned char *p = f->data + i * f->elem;
  uint64_t u = 0;
  for (size_t k = 0; k < f->elem; k++) u = u << 8 | p[k];
  switch (f->type) {
  case 0x08: return (double)(uint8_t)u;
  case 0x09: return (double)(int8_t)(uint8_t)u;
  case 0x0B: return (double)(int16_t)(uint16_t)u;
  case 0x0C: return (double)(int32_t)(uint32_t)u;
  case 0x0D: { uint32_t w = (uint32_t)u; float v; memcpy(&v, &w, 4); return v; }
  case 0x0E: { double v; memcpy(&v, &u, 8); return v; }
  }
  return 0;
}

/* "28x28" for dims[1..]. */
static void shape_str(const IdxFile *f, char *buf, size_t len) {
  size_t k = 0;
  buf[0] = 0;
  for (int i = 1; i < f->ndims && k < len; i++)
    k += (size_t)snprintf(buf + k, len - k, "%s%u", i > 1 ? "x" : "", f->dims[i]);
}

int rt_idx_load(const char *dir, bool test_split, double scale, const RtDataExpect *expect,
                RtDataset *out, RtError *err) {
  memset(out, 0, sizeof *out);
  const char *split = test_split ? "t10k" : "train";
  char ibase[64], lbase[64];
  snprintf(ibase, sizeof ibase, "%s-images-idx3-ubyte", split);
  snprintf(lbase, sizeof lbase, "%s-labels-idx1-ubyte", split);
  RtLabelType lt = expect ? expect->label_type : RT_LABEL_I32;
  int64_t bound = expect && lt == RT_LABEL_I32 ? expect->label_bound : 0;
  IdxFile im = {0}, lb = {0};
  int rc = -1;

  if (open_file(&im, dir, ibase, "pixels", err) || read_header(&im, 2, 255, err)) goto done;
  if (open_file(&lb, dir, lbase, "labels", err) || read_header(&lb, 1, 1, err)) goto done;
  if (im.count != lb.count) {
    rt_error_set(err, "%s: mismatched counts: %llu images but %llu labels", lb.path,
                 (unsigned long long)im.count, (unsigned long long)lb.count);
    goto done;
  }
  if (expect && expect->features > 0 && im.per_sample != (uint64_t)expect->features) {
    char shape[256];
    shape_str(&im, shape, sizeof shape);
    rt_error_set(err, "%s: images are %s (%llu values) but the model's input has %lld", im.path, shape,
                 (unsigned long long)im.per_sample, (long long)expect->features);
    goto done;
  }
  if (read_data(&im, err) || read_data(&lb, err)) goto done;

  size_t n = (size_t)im.count, nx = n * (size_t)im.per_sample;
  out->n = (int64_t)n;
  out->features = (int64_t)im.per_sample;
  out->label_type = lt;
  out->x = malloc(nx * sizeof(float));
  out->source = strdup(im.path);
  if (lt == RT_LABEL_I32) out->yi = malloc(n * sizeof(int32_t));
  else out->yf = malloc(n * sizeof(float));
  if (!out->x || !out->source || (!out->yi && !out->yf)) {
    rt_error_set(err, "%s: out of memory", im.path);
    goto done;
  }
  if (im.type == 0x08) { /* the common case, kept fast */
    for (size_t i = 0; i < nx; i++) out->x[i] = (float)(im.data[i] * scale);
  } else {
    for (size_t i = 0; i < nx; i++) {
      double v = elem_at(&im, i);
      if (!isfinite(v)) {
        rt_error_set(err, "%s: value %g at element %zu is not finite", im.path, v, i);
        goto done;
      }
      out->x[i] = (float)(v * scale);
    }
  }
  for (size_t i = 0; i < n; i++) {
    double v = elem_at(&lb, i);
    if (lt == RT_LABEL_F32) {
      if (!isfinite(v)) {
        rt_error_set(err, "%s: label %g at index %zu is not finite", lb.path, v, i);
        goto done;
      }
      out->yf[i] = (float)v;
      continue;
    }
    if (v != floor(v) || !isfinite(v)) {
      rt_error_set(err, "%s: label %g at index %zu is not an integer class index", lb.path, v, i);
      goto done;
    }
    if (v < 0 || (bound > 0 && v >= (double)bound) || v > INT32_MAX) {
      if (bound > 0)
        rt_error_set(err, "%s: label %.0f at index %zu is out of range for %lld classes", lb.path, v, i,
                     (long long)bound);
      else
        rt_error_set(err, "%s: label %.0f at index %zu is not a valid class index", lb.path, v, i);
      goto done;
    }
    out->yi[i] = (int32_t)v;
  }
  rc = 0;
done:
  if (rc) rt_data_free(out);
  close_file(&im);
  close_file(&lb);
  return rc;
}
