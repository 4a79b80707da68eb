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
 * The parser works on files in memory (rt_idx_parse_mem, which the fuzz
 * target calls directly); rt_idx_load finds the two files and reads them
 * into memory (their real size: nothing a header says), a raw file's data
 * only once its header has been checked against the file's size.
 * A gzipped file is decoded from memory with zlib's inflate (MemGz below):
 * gzip members one after another, as concatenated .gz files are; bytes
 * after the last member that do not start another are ignored, as gzip
 * ignores them; a .gz file that is not gzip is an error.  Every member
 * must end with its trailer, where inflate checks the CRC-32 and the
 * length: a stream cut anywhere, even just before the trailer, is a
 * truncated one, and a wrong CRC or length is corrupt data.
 *
 * Safety: the data size the header claims is computed with overflow checks
 * and, before anything is allocated, compared with the real data size (raw
 * files) or a 4 GiB cap (gzip, whose real size is only known by decoding).
 * Gzip data is then decoded in chunks into a buffer that grows only as
 * bytes really arrive, so a lying header cannot cause a large allocation.
 * Short data, trailing bytes and corrupt gzip streams are all errors.
 */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data.h"
#include "files.h"
#include "memlimit.h"

#define GZ_CAP (UINT64_C(4) << 30) /* most bytes of data read from one .gz file */
#define CHUNK ((size_t)1 << 20)

/* A gzipped file in memory, decoded by inflate as it is read. */
typedef struct MemGz {
  const unsigned char *in;
  size_t in_size, used;    /* used: bytes of in consumed */
  bool started;            /* the gzip magic checked and z set up */
  bool member_end;         /* a member ended: another may follow */
  bool done;               /* no more data */
  int err;                 /* GZ_OK, or what went wrong */
  const char *msg;         /* zlib's words for GZ_CORRUPT */
  z_stream z;
} MemGz;

enum { GZ_OK, GZ_NOT_GZIP, GZ_TRUNCATED, GZ_CORRUPT, GZ_NOMEM };

static bool gz_magic(const MemGz *g) {
  return g->in_size - g->used >= 2 && g->in[g->used] == 0x1f && g->in[g->used + 1] == 0x8b;
}

static int64_t gz_fail(MemGz *g, int err, const char *msg) {
  g->err = err;
  g->msg = msg;
  return -1;
}

/* Up to len decoded bytes into buf: the count (short only at the end of
 * the last member), or -1 with g->err set. */
static int64_t gz_read(MemGz *g, unsigned char *buf, size_t len) {
  if (g->err) return -1;
  if (!g->started) {
    if (!gz_magic(g)) return gz_fail(g, GZ_NOT_GZIP, NULL);
    memset(&g->z, 0, sizeof g->z);
    if (inflateInit2(&g->z, 15 + 16) != Z_OK) return gz_fail(g, GZ_NOMEM, NULL);
    g->started = true;
  }
  size_t got = 0;
  while (got < len && !g->done) {
    if (g->member_end) { /* another member, or the end (trailing bytes ignored) */
      if (!gz_magic(g)) {
        g->done = true;
        break;
      }
      inflateReset(&g->z);
      g->member_end = false;
    }
    size_t left = g->in_size - g->used, room = len - got;
    g->z.next_in = (Bytef *)(uintptr_t)(g->in + g->used);
    g->z.avail_in = left < UINT_MAX ? (uInt)left : UINT_MAX;
    g->z.next_out = buf + got;
    g->z.avail_out = room < UINT_MAX ? (uInt)room : UINT_MAX;
    uInt in0 = g->z.avail_in, out0 = g->z.avail_out;
    int ret = inflate(&g->z, Z_NO_FLUSH);
    g->used += in0 - g->z.avail_in;
    got += out0 - g->z.avail_out;
    if (ret == Z_STREAM_END) /* the trailer read: CRC-32 and length checked */
      g->member_end = true;
    else if (ret == Z_BUF_ERROR || (ret == Z_OK && g->used == g->in_size && g->z.avail_out > 0))
      return gz_fail(g, GZ_TRUNCATED, NULL); /* the input ended inside a member */
    else if (ret == Z_MEM_ERROR)
      return gz_fail(g, GZ_NOMEM, NULL);
    else if (ret != Z_OK)
      return gz_fail(g, GZ_CORRUPT, g->z.msg ? g->z.msg : "compressed data error");
  }
  return (int64_t)got;
}

/* One IDX file in memory and its parsed header. */
typedef struct IdxFile {
  const char *name;     /* for messages */
  const char *what;     /* "pixels" or "labels", for messages */
  const unsigned char *in; /* the file's bytes */
  size_t in_size, pos;  /* pos: the next byte of in to read */
  size_t loaded;        /* bytes of in present: in_size, but for a raw file being read */
  unsigned char *owned; /* in, when read from a file (freed at the end) */
  FILE *fp;             /* a raw file whose data is still to be read (rt_idx_load) */
  bool gz;              /* gzipped: decoded with zlib */
  MemGz g;              /* the gzip decoder */
  int type;             /* type byte */
  size_t elem;          /* bytes per element */
  int ndims;
  uint32_t dims[255];
  uint64_t count;       /* dims[0] */
  uint64_t per_sample;  /* product of dims[1..] */
  uint64_t bytes;       /* data bytes the header claims */
  const unsigned char *data; /* the data, once read (into in, or data_buf) */
  unsigned char *data_buf;   /* decoded gzip data */
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

/* Reads up to n bytes; returns the count (short only at end of data) or -1. */
static int64_t file_read(IdxFile *f, void *buf, size_t n, RtError *err) {
  if (!f->gz) {
    size_t left = f->loaded - f->pos, k = left < n ? left : n;
    if (k) memcpy(buf, f->in + f->pos, k);
    f->pos += k;
    return (int64_t)k;
  }
  int64_t got = gz_read(&f->g, buf, n);
  switch (got < 0 ? f->g.err : GZ_OK) {
  case GZ_NOT_GZIP: return rt_error_set(err, "%s: not in gzip format (the .gz suffix says it should be)", f->name);
  case GZ_TRUNCATED: return rt_error_set(err, "%s: truncated gzip stream", f->name);
  case GZ_CORRUPT: return rt_error_set(err, "%s: corrupt gzip data: %s", f->name, f->g.msg);
  case GZ_NOMEM: return rt_error_set(err, "%s: out of memory", f->name);
  }
  return got;
}

static void open_mem(IdxFile *f, const RtMemFile *m, const char *what) {
  f->name = m->name ? m->name : "<memory>";
  f->what = what;
  f->in = m->data ? m->data : (const void *)"";
  f->in_size = f->loaded = m->data ? m->size : 0;
  f->gz = m->gz;
  f->g.in = f->in;
  f->g.in_size = f->in_size;
}

static void close_file(IdxFile *f) {
  if (f->g.started) inflateEnd(&f->g.z);
  if (f->fp) fclose(f->fp);
  free(f->owned);
  free(f->data_buf);
  memset(f, 0, sizeof *f);
}

/* Reads and checks the header; computes count, per_sample and bytes, and
 * checks bytes against the data present or the gzip cap. */
static int read_header(IdxFile *f, int min_dims, int max_dims, RtError *err) {
  unsigned char h[4];
  int64_t got = file_read(f, h, 4, err);
  if (got < 0) return -1;
  if (got < 4) return rt_error_set(err, "%s: truncated header: expected 4 bytes, found %d", f->name, (int)got);
  if (h[0] != 0 || h[1] != 0) {
    if (h[0] == 0x1f && h[1] == 0x8b)
      return rt_error_set(err, "%s: bad magic: this is a gzip file without the .gz suffix", f->name);
    return rt_error_set(err, "%s: bad magic: expected 0x00 0x00, found 0x%02x 0x%02x", f->name, h[0], h[1]);
  }
  f->type = h[2];
  f->elem = type_size(h[2]);
  if (!f->elem)
    return rt_error_set(err, "%s: unknown type byte 0x%02x (expected 0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e)",
                        f->name, h[2]);
  f->ndims = h[3];
  if (f->ndims < min_dims || f->ndims > max_dims) {
    if (min_dims == max_dims)
      return rt_error_set(err, "%s: expected %d dimension%s, found %d", f->name, min_dims,
                          min_dims == 1 ? "" : "s", f->ndims);
    return rt_error_set(err, "%s: expected at least %d dimensions (count and sample shape), found %d",
                        f->name, min_dims, f->ndims);
  }
  unsigned char d[255 * 4];
  size_t want = (size_t)f->ndims * 4;
  got = file_read(f, d, want, err);
  if (got < 0) return -1;
  if ((size_t)got < want)
    return rt_error_set(err, "%s: truncated header: expected %zu bytes, found %d", f->name, 4 + want,
                        4 + (int)got);
  f->per_sample = 1;
  bool ok = true;
  for (int i = 0; i < f->ndims; i++) {
    const unsigned char *p = d + 4 * i;
    f->dims[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (f->dims[i] == 0) return rt_error_set(err, "%s: dimension %d is zero", f->name, i);
    if (i > 0) ok = ok && mul_ok(f->per_sample, f->dims[i], &f->per_sample);
  }
  f->count = f->dims[0];
  ok = ok && mul_ok(f->count, f->per_sample, &f->bytes) && mul_ok(f->bytes, f->elem, &f->bytes);
  if (!ok) return rt_error_set(err, "%s: header dimensions overflow 64 bits", f->name);
  if (!f->gz) {
    uint64_t avail = f->in_size - f->pos; /* the header was read whole: pos = 4 + want */
    if (f->bytes > avail)
      return rt_error_set(err, "%s: truncated: expected %llu bytes of %s, found %llu", f->name,
                          (unsigned long long)f->bytes, f->what, (unsigned long long)avail);
    if (f->bytes < avail)
      return rt_error_set(err, "%s: trailing garbage: expected %llu bytes of %s, found %llu", f->name,
                          (unsigned long long)f->bytes, f->what, (unsigned long long)avail);
  } else if (f->bytes > GZ_CAP) {
    return rt_error_set(err, "%s: header claims %llu bytes of %s, over the 4 GiB limit for gzipped files",
                        f->name, (unsigned long long)f->bytes, f->what);
  }
  return 0;
}

static int load_rest(IdxFile *f, RtError *err);

/* Points f->data at exactly f->bytes of data: the rest of a raw file (its
 * size was checked with the header), or the decoded gzip data, into a
 * buffer that grows only as data arrives; then checks that nothing follows. */
static int read_data(IdxFile *f, RtError *err) {
  if (!f->gz) {
    if (f->loaded < f->in_size && load_rest(f, err)) return -1;
    f->data = f->in + f->pos;
    f->pos += (size_t)f->bytes;
    return 0;
  }
  size_t need = (size_t)f->bytes, have = 0, cap = need < CHUNK ? need : CHUNK;
  f->data_buf = malloc(cap ? cap : 1);
  if (!f->data_buf) return rt_error_set(err, "%s: out of memory", f->name);
  while (have < need) {
    if (have == cap) {
      size_t ncap = cap > need / 2 ? need : cap * 2;
      unsigned char *p = realloc(f->data_buf, ncap);
      if (!p) return rt_error_set(err, "%s: out of memory reading %zu bytes", f->name, need);
      f->data_buf = p;
      cap = ncap;
    }
    int64_t got = file_read(f, f->data_buf + have, cap - have, err);
    if (got < 0) return -1;
    if (got == 0) break;
    have += (size_t)got;
  }
  if (have < need)
    return rt_error_set(err, "%s: truncated: expected %zu bytes of %s, found %zu", f->name, need, f->what, have);
  unsigned char extra;
  int64_t got = file_read(f, &extra, 1, err);
  if (got < 0) return -1;
  if (got > 0) return rt_error_set(err, "%s: trailing garbage after %zu bytes of %s", f->name, need, f->what);
  f->data = f->data_buf;
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

/* Both headers read: checks them against each other and the model, reads
 * the data and converts it into out. */
static int idx_finish(IdxFile *im, IdxFile *lb, double scale, const RtDataExpect *expect, RtDataset *out,
                      RtError *err) {
  RtLabelType lt = !lb ? RT_LABEL_NONE : expect ? expect->label_type : RT_LABEL_I32;
  int64_t bound = expect && lt == RT_LABEL_I32 ? expect->label_bound : 0;
  if (lb && im->count != lb->count)
    return rt_error_set(err, "%s: mismatched counts: %llu images but %llu labels", lb->name,
                        (unsigned long long)im->count, (unsigned long long)lb->count);
  if (expect && expect->features > 0 && im->per_sample != (uint64_t)expect->features) {
    char shape[256];
    shape_str(im, shape, sizeof shape);
    return rt_error_set(err, "%s: images are %s (%llu values) but the model's input has %lld", im->name, shape,
                        (unsigned long long)im->per_sample, (long long)expect->features);
  }
  /* All of it in memory at once: the files (a gzipped one also decoded)
   * and the f32 dataset; checked from the headers, before inflating. */
  double files = (double)im->in_size + (im->gz ? (double)im->bytes : 0) +
                 (lb ? (double)lb->in_size + (lb->gz ? (double)lb->bytes : 0) : 0);
  double need = files + RT_DATA_BYTES(im->count, im->per_sample);
  char what[160], fb[32];
  snprintf(what, sizeof what, "%llu samples of %llu values as f32, and the files, %s%s", (unsigned long long)im->count,
           (unsigned long long)im->per_sample, rt_format_bytes(files, fb, sizeof fb),
           im->gz || (lb && lb->gz) ? " with the decoded data" : "");
  if (rt_data_budget(im->name, need, what, expect ? expect->max_bytes : 0, err)) return -1;
  if (read_data(im, err) || (lb && read_data(lb, err))) return -1;

  size_t n = (size_t)im->count, nx = n * (size_t)im->per_sample;
  out->n = (int64_t)n;
  out->features = (int64_t)im->per_sample;
  out->label_type = lt;
  out->x = malloc(nx * sizeof(float));
  out->source = strdup(im->name);
  if (lt == RT_LABEL_I32) out->yi = malloc(n * sizeof(int32_t));
  else if (lt == RT_LABEL_F32) out->yf = malloc(n * sizeof(float));
  if (!out->x || !out->source || (lt != RT_LABEL_NONE && !out->yi && !out->yf))
    return rt_error_set(err, "%s: out of memory", im->name);
  if (im->type == 0x08 && isfinite((float)(255 * scale))) { /* the common case, kept fast: no u8 can overflow */
    for (size_t i = 0; i < nx; i++) out->x[i] = (float)(im->data[i] * scale);
  } else {
    /* Checked as stored, in f32: an f64 1e300 is finite only as a double. */
    for (size_t i = 0; i < nx; i++) {
      double v = elem_at(im, i);
      float f = (float)(v * scale);
      if (!isfinite(v)) return rt_error_set(err, "%s: value %g at element %zu is not finite", im->name, v, i);
      if (!isfinite(f)) {
        char scaled[48] = "";
        if (scale != 1) snprintf(scaled, sizeof scaled, " times scale %.6g", scale);
        return rt_error_set(err, "%s: value %g%s at element %zu is out of range for f32 (at most %.6g)", im->name, v,
                            scaled, i, FLT_MAX);
      }
      out->x[i] = f;
    }
  }
  for (size_t i = 0; lb && i < n; i++) {
    double v = elem_at(lb, i);
    if (lt == RT_LABEL_F32) {
      if (!isfinite(v)) return rt_error_set(err, "%s: label %g at index %zu is not finite", lb->name, v, i);
      if (!isfinite((float)v))
        return rt_error_set(err, "%s: label %g at index %zu is out of range for f32 (at most %.6g)", lb->name, v, i,
                            FLT_MAX);
      out->yf[i] = (float)v;
      continue;
    }
    if (v != floor(v) || !isfinite(v))
      return rt_error_set(err, "%s: label %g at index %zu is not an integer class index", lb->name, v, i);
    if (v < 0 || (bound > 0 && v >= (double)bound) || v > INT32_MAX) {
      if (bound > 0)
        return rt_error_set(err, "%s: label %.0f at index %zu is out of range for %lld classes", lb->name, v, i,
                            (long long)bound);
      return rt_error_set(err, "%s: label %.0f at index %zu is not a valid class index", lb->name, v, i);
    }
    out->yi[i] = (int32_t)v;
  }
  return 0;
}

int rt_idx_parse_mem(const RtMemFile *images, const RtMemFile *labels, double scale, const RtDataExpect *expect,
                     RtDataset *out, RtError *err) {
  memset(out, 0, sizeof *out);
  IdxFile im = {0}, lb = {0};
  open_mem(&im, images, "pixels");
  open_mem(&lb, labels, "labels");
  int rc = read_header(&im, 2, 255, err) || read_header(&lb, 1, 1, err) ||
                   idx_finish(&im, &lb, scale, expect, out, err)
               ? -1
               : 0;
  if (rc) rt_data_free(out);
  close_file(&im);
  close_file(&lb);
  return rc;
}

/* ---- files ---------------------------------------------------------------------- */

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
        rt_error_set(err, "%s: %s", p, rt_not_regular(st.st_mode, (char[64]){0}, 64));
        free(p);
        return -1;
      }
      *path = p;
      *gz = z;
      return 0;
    }
    if (errno != ENOENT) { /* there but out of reach (a directory without search permission): say why */
      rt_error_set(err, "%s: %s", p, rt_strerror(errno, (char[128]){0}, 128));
      free(p);
      return -1;
    }
  }
  free(p);
  return rt_error_set(err, "%s%s%s: not found (tried %s and %s.gz)", dir, sep, base, base, base);
}

/* The longest IDX header: the header of a raw file is read first, and the
 * rest only once the header has been checked against the file's size. */
#define HEAD_MAX (4 + 255 * 4)

/* Opens path as f's input: a gzipped file is read whole (its size on disk,
 * nothing a header says); of a raw file only the longest possible header,
 * the rest being read by load_rest when the header has passed. */
static int open_file(IdxFile *f, const char *path, bool gz, const char *what, RtError *err) {
  f->name = path;
  f->what = what;
  f->gz = gz;
  struct stat st;
  FILE *fp = rt_open_regular(path, &st, err); /* a file swapped for a FIFO since find_file must not block */
  if (!fp) return -1;
  f->fp = fp;
  size_t size = st.st_size > 0 ? (size_t)st.st_size : 0, want = gz || size < HEAD_MAX ? size : HEAD_MAX;
  f->owned = malloc(want ? want : 1);
  if (!f->owned) return rt_error_set(err, "%s: out of memory reading %zu bytes", path, want);
  size_t got = want ? fread(f->owned, 1, want, fp) : 0;
  if (got < want && ferror(fp)) return rt_error_set(err, "%s: read error: %s", path, rt_strerror(errno, (char[128]){0}, 128));
  f->in = f->g.in = f->owned;
  f->loaded = got;
  f->in_size = got < want ? got : size; /* a file that shrank ends where reading did */
  f->g.in_size = f->in_size;
  if (gz || f->loaded == f->in_size) {
    fclose(fp);
    f->fp = NULL;
  }
  return 0;
}

/* Reads the rest of a raw file (its header has passed, so in_size is the
 * size the header claims plus the header). */
static int load_rest(IdxFile *f, RtError *err) {
  unsigned char *p = realloc(f->owned, f->in_size);
  if (!p) return rt_error_set(err, "%s: out of memory reading %zu bytes", f->name, f->in_size);
  f->owned = p;
  f->in = f->g.in = p;
  while (f->loaded < f->in_size) {
    size_t got = fread(p + f->loaded, 1, f->in_size - f->loaded, f->fp);
    if (got == 0) break;
    f->loaded += got;
  }
  if (f->loaded < f->in_size) {
    if (ferror(f->fp)) return rt_error_set(err, "%s: read error: %s", f->name, rt_strerror(errno, (char[128]){0}, 128));
    return rt_error_set(err, "%s: truncated: expected %llu bytes of %s, found %zu", f->name,
                        (unsigned long long)f->bytes, f->what, f->loaded - f->pos);
  }
  fclose(f->fp);
  f->fp = NULL;
  return 0;
}

int rt_idx_load_images(const char *path, double scale, const RtDataExpect *expect, RtDataset *out, RtError *err) {
  memset(out, 0, sizeof *out);
  IdxFile im = {0};
  char *ipath = NULL;
  bool gz = false;
  int rc = -1;
  struct stat st;
  if (stat(path, &st) != 0) {
    rt_error_set(err, "%s: %s", path, rt_strerror(errno, (char[128]){0}, 128));
    goto done;
  }
  if (S_ISDIR(st.st_mode)) { /* a data set's directory: its test images */
    if (find_file(path, "t10k-images-idx3-ubyte", &ipath, &gz, err)) goto done;
  } else {
    size_t len = strlen(path);
    gz = len > 3 && !strcmp(path + len - 3, ".gz");
    if (!(ipath = strdup(path))) {
      rt_error_set(err, "%s: out of memory", path);
      goto done;
    }
  }
  if (open_file(&im, ipath, gz, "pixels", err) || read_header(&im, 2, 255, err)) goto done;
  rc = idx_finish(&im, NULL, scale, expect, out, err);
done:
  if (rc) rt_data_free(out);
  close_file(&im);
  free(ipath);
  return rc;
}

int rt_idx_load(const char *dir, bool test_split, double scale, const RtDataExpect *expect,
                RtDataset *out, RtError *err) {
  memset(out, 0, sizeof *out);
  const char *split = test_split ? "t10k" : "train";
  char ibase[64], lbase[64];
  snprintf(ibase, sizeof ibase, "%s-images-idx3-ubyte", split);
  snprintf(lbase, sizeof lbase, "%s-labels-idx1-ubyte", split);
  IdxFile im = {0}, lb = {0};
  char *ipath = NULL, *lpath = NULL;
  bool igz = false, lgz = false;
  int rc = -1;
  /* One file after the other, each checked before the next is looked for. */
  if (find_file(dir, ibase, &ipath, &igz, err) || open_file(&im, ipath, igz, "pixels", err) ||
      read_header(&im, 2, 255, err))
    goto done;
  if (find_file(dir, lbase, &lpath, &lgz, err) || open_file(&lb, lpath, lgz, "labels", err) ||
      read_header(&lb, 1, 1, err))
    goto done;
  rc = idx_finish(&im, &lb, scale, expect, out, err);
done:
  if (rc) rt_data_free(out);
  close_file(&im);
  close_file(&lb);
  free(ipath);
  free(lpath);
  return rc;
}
