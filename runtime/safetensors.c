/* runtime/safetensors.c - safetensors writer and reader; see safetensors.h.
 *
 * The reader parses the header with a small strict JSON parser (RFC 8259:
 * no trailing commas, no comments, valid escapes and UTF-8, nothing after
 * the object but whitespace) specialised to the safetensors schema: the
 * top-level object's values are either tensor entries or "__metadata__"
 * (string values only).  It allocates in proportion to the header text and
 * reads the data section into one buffer whose size is the file's, never a
 * size the header claims.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "safetensors.h"

#define HEADER_CAP (UINT64_C(100) * 1000 * 1000) /* 100 MB, as the reference reader */

/* Files are little-endian; big-endian hosts swap on the way in and out. */
static bool host_is_le(void) {
  const uint16_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

static void swap32(void *p, size_t n) {
  unsigned char *b = p;
  for (size_t i = 0; i + 4 <= n; i += 4) {
    unsigned char t0 = b[i], t1 = b[i + 1];
    b[i] = b[i + 3];
    b[i + 1] = b[i + 2];
    b[i + 2] = t1;
    b[i + 3] = t0;
  }
}

static bool mul_ok(uint64_t a, uint64_t b, uint64_t *r) {
  if (a != 0 && b > UINT64_MAX / a) return false;
  *r = a * b;
  return true;
}

/* ---- a strict JSON reader, specialised to the safetensors header ---------- */

typedef struct Json {
  const char *s, *p, *end;
  char msg[200];              /* what is wrong, set once */
  bool bad;
} Json;

static bool jfail(Json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool jfail(Json *j, const char *fmt, ...) {
  if (j->bad) return false;
  j->bad = true;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(j->msg, sizeof j->msg, fmt, ap);
  va_end(ap);
  return false;
}

static bool jsyntax(Json *j, const char *expected) {
  if (j->p >= j->end) return jfail(j, "header is not valid json: expected %s at byte %td, found the end", expected, j->p - j->s);
  return jfail(j, "header is not valid json: expected %s at byte %td", expected, j->p - j->s);
}

/* Skips JSON whitespace (the writer pads headers with spaces). */
static void ws(Json *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

/* Consumes c after optional whitespace; false (and nothing consumed) if absent. */
static bool eat(Json *j, char c) {
  ws(j);
  if (j->p < j->end && *j->p == c) {
    j->p++;
    return true;
  }
  return false;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool hex4(Json *j, const char *q, unsigned *u) {
  *u = 0;
  for (int i = 0; i < 4; i++) {
    int h = q + i < j->end ? hexval(q[i]) : -1;
    if (h < 0) return false;
    *u = *u << 4 | (unsigned)h;
  }
  return true;
}

static char *put_utf8(char *w, unsigned c) {
  if (c < 0x80) {
    *w++ = (char)c;
  } else if (c < 0x800) {
    *w++ = (char)(0xC0 | c >> 6);
    *w++ = (char)(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    *w++ = (char)(0xE0 | c >> 12);
    *w++ = (char)(0x80 | (c >> 6 & 0x3F));
    *w++ = (char)(0x80 | (c & 0x3F));
  } else {
    *w++ = (char)(0xF0 | c >> 18);
    *w++ = (char)(0x80 | (c >> 12 & 0x3F));
    *w++ = (char)(0x80 | (c >> 6 & 0x3F));
    *w++ = (char)(0x80 | (c & 0x3F));
  }
  return w;
}

/* Length of the valid UTF-8 sequence at q (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *q, size_t n) {
  unsigned c = q[0];
  size_t len;
  unsigned min, cp;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) len = 2, min = 0x80, cp = c & 0x1F;
  else if ((c & 0xF0) == 0xE0) len = 3, min = 0x800, cp = c & 0x0F;
  else if ((c & 0xF8) == 0xF0) len = 4, min = 0x10000, cp = c & 0x07;
  else return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((q[i] & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (q[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

/* string = '"' chars '"'; *out (malloc'd, decoded) unless out is NULL. */
static bool jstring(Json *j, char **out) {
  ws(j);
  if (j->p >= j->end || *j->p != '"') return jsyntax(j, "a string");
  const char *q = ++j->p;
  char *buf = NULL, *w = NULL;
  /* Decoded text is never longer than the raw text, so one pass sizes it. */
  const char *close = q;
  while (close < j->end && *close != '"') close += *close == '\\' && close + 1 < j->end ? 2 : 1;
  if (close >= j->end) return jsyntax(j, "the end of a string");
  if (out) {
    buf = w = malloc((size_t)(close - q) + 1);
    if (!buf) return jfail(j, "out of memory");
  }
  while (q < close) {
    unsigned char c = (unsigned char)*q;
    if (c < 0x20) {
      j->p = q;
      free(buf);
      return jsyntax(j, "no control character in a string");
    }
    if (c >= 0x80) {
      size_t len = utf8_len((const unsigned char *)q, (size_t)(close - q));
      if (!len) {
        j->p = q;
        free(buf);
        return jfail(j, "header is not valid json: invalid utf-8 at byte %td", q - j->s);
      }
      if (w) memcpy(w, q, len), w += len;
      q += len;
      continue;
    }
    if (c != '\\') {
      if (w) *w++ = (char)c;
      q++;
      continue;
    }
    char e = q[1];
    const char *simple = "\"\\/bfnrt", *map = "\"\\/\b\f\n\r\t";
    const char *k = e ? strchr(simple, e) : NULL;
    if (k) {
      if (w) *w++ = map[k - simple];
      q += 2;
      continue;
    }
    unsigned u, u2;
    if (e != 'u' || !hex4(j, q + 2, &u)) {
      j->p = q;
      free(buf);
      return jsyntax(j, "a valid escape");
    }
    q += 6;
    if (u >= 0xD800 && u <= 0xDBFF) { /* a surrogate pair */
      if (q + 6 > close || q[0] != '\\' || q[1] != 'u' || !hex4(j, q + 2, &u2) || u2 < 0xDC00 || u2 > 0xDFFF) {
        j->p = q;
        free(buf);
        return jsyntax(j, "a low surrogate");
      }
      u = 0x10000 + ((u - 0xD800) << 10) + (u2 - 0xDC00);
      q += 6;
    } else if (u >= 0xDC00 && u <= 0xDFFF) {
      j->p = q;
      free(buf);
      return jsyntax(j, "no lone low surrogate");
    }
    if (w) w = put_utf8(w, u);
  }
  j->p = close + 1;
  if (out) {
    *w = 0;
    *out = buf;
  }
  return true;
}

/* number = -? int frac? exp?; *is_uint and *u for plain non-negative
 * integers that fit in 63 bits. */
static bool jnumber(Json *j, bool *is_uint, uint64_t *u) {
  ws(j);
  const char *q = j->p;
  bool neg = false, plain = true, big = false;
  uint64_t v = 0;
  if (q < j->end && *q == '-') neg = true, q++;
  if (q >= j->end || *q < '0' || *q > '9') return jsyntax(j, "a value");
  if (*q == '0') {
    q++;
  } else {
    for (; q < j->end && *q >= '0' && *q <= '9'; q++) {
      if (v > (uint64_t)INT64_MAX / 10) big = true;
      v = v * 10 + (uint64_t)(*q - '0');
      if (v > (uint64_t)INT64_MAX) big = true;
    }
  }
  if (q < j->end && *q == '.') {
    plain = false;
    q++;
    if (q >= j->end || *q < '0' || *q > '9') return j->p = q, jsyntax(j, "a digit");
    while (q < j->end && *q >= '0' && *q <= '9') q++;
  }
  if (q < j->end && (*q == 'e' || *q == 'E')) {
    plain = false;
    q++;
    if (q < j->end && (*q == '+' || *q == '-')) q++;
    if (q >= j->end || *q < '0' || *q > '9') return j->p = q, jsyntax(j, "a digit");
    while (q < j->end && *q >= '0' && *q <= '9') q++;
  }
  j->p = q;
  *is_uint = plain && !neg && !big;
  *u = v;
  return true;
}

/* A non-negative integer (shape dimension, data offset). */
static bool juint(Json *j, const char *what, const char *name, uint64_t *u) {
  ws(j);
  const char *at = j->p;
  bool is_uint = false;
  if (!jnumber(j, &is_uint, u)) return false;
  if (!is_uint)
    return jfail(j, "tensor '%.100s': %s must be a non-negative integer below 2^63, found '%.*s'", name, what,
                 (int)(j->p - at > 40 ? 40 : j->p - at), at);
  return true;
}

/* ---- reading -------------------------------------------------------------- */

static const char *const known_dtypes[] = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
                                           "BF16", "I32", "U32", "F32", "F64", "I64", "U64", NULL};

/* {"dtype": "F32", "shape": [..], "data_offsets": [b, e]} */
static bool parse_entry(Json *j, RtStTensor *t) {
  bool have_dtype = false, have_shape = false, have_offsets = false;
  if (!eat(j, '{')) return jsyntax(j, "'{' (a tensor entry)");
  if (eat(j, '}')) return jfail(j, "tensor '%.100s': missing dtype, shape and data_offsets", t->name);
  do {
    char *key;
    if (!jstring(j, &key)) return false;
    if (!eat(j, ':')) {
      free(key);
      return jsyntax(j, "':'");
    }
    bool *seen = strcmp(key, "dtype") == 0 ? &have_dtype : strcmp(key, "shape") == 0 ? &have_shape
                 : strcmp(key, "data_offsets") == 0 ? &have_offsets : NULL;
    if (!seen || *seen) {
      jfail(j, "tensor '%.100s': %s key '%.60s'", t->name, seen ? "duplicate" : "unknown", key);
      free(key);
      return false;
    }
    *seen = true;
    if (seen == &have_dtype) {
      char *d;
      free(key);
      if (!jstring(j, &d)) return false;
      bool known = false;
      for (int i = 0; known_dtypes[i]; i++) known = known || strcmp(d, known_dtypes[i]) == 0;
      if (!known || strcmp(d, "F32") != 0) {
        jfail(j, "tensor '%.100s': %s dtype '%.20s'%s", t->name, known ? "unsupported" : "unknown", d,
              known ? " (only F32 is supported)" : "");
        free(d);
        return false;
      }
      strcpy(t->dtype, d);
      free(d);
    } else if (seen == &have_shape) {
      free(key);
      if (!eat(j, '[')) return jsyntax(j, "'[' (a shape)");
      if (!eat(j, ']')) {
        do {
          uint64_t d;
          if (t->rank == RT_ST_MAX_RANK)
            return jfail(j, "tensor '%.100s': more than %d dimensions", t->name, RT_ST_MAX_RANK);
          if (!juint(j, "a dimension", t->name, &d)) return false;
          t->dims[t->rank++] = (int64_t)d;
        } while (eat(j, ','));
        if (!eat(j, ']')) return jsyntax(j, "',' or ']'");
      }
    } else {
      free(key);
      if (!eat(j, '[')) return jsyntax(j, "'[' (data_offsets)");
      if (!juint(j, "a data offset", t->name, &t->begin)) return false;
      if (!eat(j, ',')) return jsyntax(j, "',' (data_offsets has two values)");
      if (!juint(j, "a data offset", t->name, &t->end)) return false;
      if (!eat(j, ']')) return jsyntax(j, "']' (data_offsets has two values)");
    }
  } while (eat(j, ','));
  if (!eat(j, '}')) return jsyntax(j, "',' or '}'");
  if (!have_dtype || !have_shape || !have_offsets)
    return jfail(j, "tensor '%.100s': missing %s", t->name,
                 !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
  return true;
}

/* {"key": "value", ...}: appends to *keys / *values. */
static bool parse_meta(Json *j, char ***keys, char ***values, int *n) {
  int cap = *n;
  if (!eat(j, '{')) return jsyntax(j, "'{' (__metadata__)");
  if (eat(j, '}')) return true;
  do {
    char *k, *v;
    if (!jstring(j, &k)) return false;
    if (!eat(j, ':')) {
      free(k);
      return jsyntax(j, "':'");
    }
    ws(j);
    if (j->p < j->end && *j->p != '"') {
      jfail(j, "__metadata__ value for '%.60s' is not a string", k);
      free(k);
      return false;
    }
    if (!jstring(j, &v)) {
      free(k);
      return false;
    }
    for (int i = 0; i < *n; i++)
      if (strcmp((*keys)[i], k) == 0) {
        jfail(j, "duplicate __metadata__ key '%.60s'", k);
        free(k);
        free(v);
        return false;
      }
    if (*n == cap) {
      cap = cap ? cap * 2 : 8;
      char **nk = realloc(*keys, (size_t)cap * sizeof *nk);
      if (nk) *keys = nk;
      char **nv = nk ? realloc(*values, (size_t)cap * sizeof *nv) : NULL;
      if (nv) *values = nv;
      if (!nk || !nv) {
        free(k);
        free(v);
        return jfail(j, "out of memory");
      }
    }
    (*keys)[*n] = k;
    (*values)[*n] = v;
    (*n)++;
  } while (eat(j, ','));
  return eat(j, '}') || jsyntax(j, "',' or '}'");
}

/* header = '{' (string ':' (entry | metadata)) % ',' '}' whitespace*
 * Tensors are kept in header order; names are checked for duplicates later,
 * after sorting, so a header with many tensors costs n log n, not n^2. */
static bool parse_header(Json *j, RtSafetensors *out) {
  bool have_meta = false;
  int cap = 0;
  if (!eat(j, '{')) return jsyntax(j, "'{'");
  if (!eat(j, '}')) {
    do {
      char *key;
      if (!jstring(j, &key)) return false;
      if (!eat(j, ':')) {
        free(key);
        return jsyntax(j, "':'");
      }
      if (strcmp(key, "__metadata__") == 0) {
        free(key);
        if (have_meta) return jfail(j, "duplicate key '__metadata__'");
        have_meta = true;
        if (!parse_meta(j, &out->meta_keys, &out->meta_values, &out->n_meta)) return false;
        continue;
      }
      if (out->n == cap) {
        cap = cap ? cap * 2 : 16;
        RtStTensor *t = cap > (1 << 28) ? NULL : realloc(out->tensors, (size_t)cap * sizeof *t);
        if (!t) {
          free(key);
          return jfail(j, "out of memory");
        }
        out->tensors = t;
      }
      RtStTensor *t = &out->tensors[out->n++];
      memset(t, 0, sizeof *t);
      t->name = key;
      if (!parse_entry(j, t)) return false;
    } while (eat(j, ','));
    if (!eat(j, '}')) return jsyntax(j, "',' or '}'");
  }
  ws(j);
  if (j->p != j->end) return jsyntax(j, "nothing after the header object");
  return true;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp((*(const RtStTensor *const *)a)->name, (*(const RtStTensor *const *)b)->name);
}

static int cmp_offset(const void *a, const void *b) {
  const RtStTensor *x = *(const RtStTensor *const *)a, *y = *(const RtStTensor *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

/* Sizes, unique names, and offsets that tile [0, data_size) exactly. */
static int check_layout(const char *path, RtSafetensors *s, uint64_t data_size, RtError *err) {
  for (int i = 0; i < s->n; i++) {
    RtStTensor *t = &s->tensors[i];
    uint64_t bytes = 4;
    bool ok = true;
    for (int d = 0; d < t->rank; d++) ok = ok && mul_ok(bytes, (uint64_t)t->dims[d], &bytes);
    if (!ok) return rt_error_set(err, "%s: tensor '%.100s': shape overflows 64 bits", path, t->name);
    if (t->begin > t->end)
      return rt_error_set(err, "%s: tensor '%.100s': data_offsets [%llu, %llu] are reversed", path, t->name,
                          (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end - t->begin != bytes)
      return rt_error_set(err, "%s: tensor '%.100s': data_offsets [%llu, %llu] hold %llu bytes but its shape needs %llu",
                          path, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                          (unsigned long long)(t->end - t->begin), (unsigned long long)bytes);
    if (t->end > data_size)
      return rt_error_set(err, "%s: tensor '%.100s': data_offsets [%llu, %llu] run past the data section (%llu bytes)",
                          path, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                          (unsigned long long)data_size);
  }
  int rc = 0;
  RtStTensor **order = malloc((s->n > 0 ? (size_t)s->n : 1) * sizeof *order);
  if (!order) return rt_error_set(err, "%s: out of memory", path);
  for (int i = 0; i < s->n; i++) order[i] = &s->tensors[i];
  qsort(order, (size_t)s->n, sizeof *order, cmp_name);
  for (int i = 1; i < s->n && !rc; i++)
    if (strcmp(order[i - 1]->name, order[i]->name) == 0)
      rc = rt_error_set(err, "%s: duplicate tensor name '%.100s'", path, order[i]->name);
  qsort(order, (size_t)s->n, sizeof *order, cmp_offset);
  uint64_t at = 0;
  for (int i = 0; i < s->n && !rc; i++) {
    RtStTensor *t = order[i];
    if (t->begin < at)
      rc = rt_error_set(err, "%s: tensors '%.100s' and '%.100s' overlap in the data section", path,
                        order[i - 1]->name, t->name);
    else if (t->begin > at)
      rc = rt_error_set(err, "%s: no tensor covers bytes [%llu, %llu) of the data section", path,
                        (unsigned long long)at, (unsigned long long)t->begin);
    at = t->end;
  }
  if (!rc && at != data_size)
    rc = rt_error_set(err, "%s: the data section has %llu bytes but the tensors cover %llu", path,
                      (unsigned long long)data_size, (unsigned long long)at);
  free(order);
  return rc;
}

/* The 8-byte header length of a file of size bytes (first8: its first 8
 * bytes, when it has them), checked against the cap and the size. */
static int check_hlen(const char *path, const unsigned char *first8, uint64_t size, uint64_t *hlen, RtError *err) {
  if (size < 8 || !first8)
    return rt_error_set(err, "%s: truncated: %llu bytes, too short for the 8-byte header length", path,
                        (unsigned long long)size);
  uint64_t h = 0;
  for (int i = 7; i >= 0; i--) h = h << 8 | first8[i];
  if (h > HEADER_CAP)
    return rt_error_set(err, "%s: header length %llu is over the 100 MB limit", path, (unsigned long long)h);
  if (h > size - 8)
    return rt_error_set(err, "%s: truncated: header length %llu runs past the end of the file (%llu bytes)", path,
                        (unsigned long long)h, (unsigned long long)size);
  *hlen = h;
  return 0;
}

/* Parses the header text and checks the tensors' layout against a data
 * section of blob_size bytes (nothing is allocated for the data yet). */
static int parse_checked(const char *path, const char *header, uint64_t hlen, uint64_t blob_size, RtSafetensors *out,
                         RtError *err) {
  Json j = {.s = header, .p = header, .end = header + hlen};
  if (!parse_header(&j, out)) return rt_error_set(err, "%s: %s", path, j.msg);
  out->blob_size = blob_size;
  return check_layout(path, out, out->blob_size, err);
}

/* out->blob holds the data section: native byte order, tensor pointers. */
static void attach_blob(RtSafetensors *out) {
  if (!host_is_le()) swap32(out->blob, out->blob_size);
  for (int i = 0; i < out->n; i++)
    out->tensors[i].data = (const float *)(const void *)((const char *)out->blob + out->tensors[i].begin);
}

int rt_safetensors_read_mem(const char *name, const void *data, size_t size, RtSafetensors *out, RtError *err) {
  memset(out, 0, sizeof *out);
  const unsigned char *p = data;
  if (!p) size = 0;
  uint64_t hlen;
  if (check_hlen(name, size >= 8 ? p : NULL, size, &hlen, err) ||
      parse_checked(name, (const char *)p + 8, hlen, size - 8 - hlen, out, err))
    goto fail;
  out->blob = malloc(out->blob_size ? out->blob_size : 1);
  if (!out->blob) {
    rt_error_set(err, "%s: out of memory reading %llu bytes", name, (unsigned long long)out->blob_size);
    goto fail;
  }
  if (out->blob_size) memcpy(out->blob, p + 8 + hlen, out->blob_size);
  attach_blob(out);
  return 0;
fail:
  rt_safetensors_free(out);
  return -1;
}

int rt_safetensors_read(const char *path, RtSafetensors *out, RtError *err) {
  memset(out, 0, sizeof *out);
  char *header = NULL;
  int rc = -1;
  struct stat st;
  FILE *f = rt_open_regular(path, &st, err); /* a FIFO would block */
  if (!f) return -1;
  /* The same steps as rt_safetensors_read_mem, reading only what each needs:
   * the length, the header, then (all checked) the data section. */
  uint64_t size = (uint64_t)st.st_size, hlen;
  unsigned char lenb[8];
  bool have8 = size >= 8 && fread(lenb, 1, 8, f) == 8;
  if (check_hlen(path, have8 ? lenb : NULL, size, &hlen, err)) goto done;
  header = malloc(hlen + 1);
  if (!header || fread(header, 1, hlen, f) != hlen) {
    rt_error_set(err, "%s: %s", path, header ? "read error in the header" : "out of memory");
    goto done;
  }
  if (parse_checked(path, header, hlen, size - 8 - hlen, out, err)) goto done;
  out->blob = malloc(out->blob_size ? out->blob_size : 1);
  if (!out->blob) {
    rt_error_set(err, "%s: out of memory reading %llu bytes", path, (unsigned long long)out->blob_size);
    goto done;
  }
  if (fread(out->blob, 1, out->blob_size, f) != out->blob_size) {
    rt_error_set(err, "%s: truncated: the data section ended early", path);
    goto done;
  }
  attach_blob(out);
  rc = 0;
done:
  fclose(f);
  free(header);
  if (rc) rt_safetensors_free(out);
  return rc;
}

const float *rt_safetensors_find(const RtSafetensors *s, const char *name, int *rank, const int64_t **dims) {
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->tensors[i].name, name) == 0) {
      if (rank) *rank = s->tensors[i].rank;
      if (dims) *dims = s->tensors[i].dims;
      return s->tensors[i].data;
    }
  return NULL;
}

const char *rt_safetensors_metadata(const RtSafetensors *s, const char *key) {
  for (int i = 0; i < s->n_meta; i++)
    if (strcmp(s->meta_keys[i], key) == 0) return s->meta_values[i];
  return NULL;
}

void rt_safetensors_free(RtSafetensors *s) {
  if (!s) return;
  for (int i = 0; i < s->n; i++) free(s->tensors[i].name);
  for (int i = 0; i < s->n_meta; i++) {
    free(s->meta_keys[i]);
    free(s->meta_values[i]);
  }
  free(s->tensors);
  free(s->meta_keys);
  free(s->meta_values);
  free(s->blob);
  memset(s, 0, sizeof *s);
}

/* ---- writing -------------------------------------------------------------- */

/* A growing string for the header; oom is sticky and checked once at the end. */
typedef struct Buf {
  char *p;
  size_t n, cap;
  bool oom;
} Buf;

static void put(Buf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

static void puts_(Buf *b, const char *s) { put(b, s, strlen(s)); }

/* A JSON string literal: quote and backslash escaped, control characters as
 * \u00XX, other bytes (UTF-8, checked by the caller) as they are. */
static void put_json_string(Buf *b, const char *s) {
  puts_(b, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\', esc[1] = (char)c, esc[2] = 0;
      puts_(b, esc);
    } else if (c < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      puts_(b, esc);
    } else {
      put(b, (const char *)&c, 1);
    }
  }
  puts_(b, "\"");
}

static bool valid_utf8(const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0; i < n;) {
    size_t len = utf8_len((const unsigned char *)s + i, n - i);
    if (!len) return false;
    i += len;
  }
  return true;
}

/* The header JSON, padded with spaces to a multiple of 8; NULL on error. */
static char *build_header(const char *path, const RtTensorRef *ts, int n, const char *meta, uint64_t *data_size,
                          size_t *hlen, RtError *err) {
  Buf b = {0};
  char num[64];
  puts_(&b, "{");
  if (meta) {
    Json j = {0};
    char *wrapped = NULL;
    const char *m = meta;
    while (*m == ' ' || *m == '\t' || *m == '\n' || *m == '\r') m++;
    if (*m != '{') {
      size_t len = strlen(meta);
      wrapped = malloc(len + 3);
      if (!wrapped) {
        rt_error_set(err, "%s: out of memory", path);
        free(b.p);
        return NULL;
      }
      wrapped[0] = '{';
      memcpy(wrapped + 1, meta, len);
      strcpy(wrapped + 1 + len, "}");
      m = wrapped;
    }
    j.s = j.p = m;
    j.end = m + strlen(m);
    char **keys = NULL, **values = NULL;
    int nm = 0;
    bool ok = parse_meta(&j, &keys, &values, &nm);
    ws(&j);
    if (ok && j.p != j.end) ok = jsyntax(&j, "nothing after the metadata object");
    if (!ok) rt_error_set(err, "%s: bad metadata: %s", path, j.msg);
    if (ok) {
      puts_(&b, "\"__metadata__\":{");
      for (int i = 0; i < nm; i++) {
        if (i) puts_(&b, ",");
        put_json_string(&b, keys[i]);
        puts_(&b, ":");
        put_json_string(&b, values[i]);
      }
      puts_(&b, "}");
    }
    for (int i = 0; i < nm; i++) free(keys[i]), free(values[i]);
    free(keys);
    free(values);
    free(wrapped);
    if (!ok) {
      free(b.p);
      return NULL;
    }
  }
  uint64_t at = 0;
  for (int i = 0; i < n; i++) {
    const RtTensorRef *t = &ts[i];
    const char *bad = NULL;
    uint64_t bytes = 4;
    if (!t->name || !*t->name) bad = "has no name";
    else if (strcmp(t->name, "__metadata__") == 0) bad = "uses the reserved name '__metadata__'";
    else if (!valid_utf8(t->name)) bad = "has a name that is not valid utf-8";
    else if (t->rank < 0 || t->rank > RT_ST_MAX_RANK) bad = "has an unsupported rank";
    for (int d = 0; !bad && d < t->rank; d++)
      if (t->dims[d] < 0 || !mul_ok(bytes, (uint64_t)t->dims[d], &bytes)) bad = "has a bad shape";
    if (!bad && bytes > 0 && !t->data) bad = "has no data";
    for (int k = 0; !bad && k < i; k++)
      if (strcmp(ts[k].name, t->name) == 0) bad = "is written twice";
    if (!bad && at + bytes < at) bad = "makes the file too large";
    if (bad) {
      rt_error_set(err, "%s: tensor %d ('%.100s') %s", path, i, t->name ? t->name : "", bad);
      free(b.p);
      return NULL;
    }
    if (b.n > 1) puts_(&b, ",");
    put_json_string(&b, t->name);
    puts_(&b, ":{\"dtype\":\"F32\",\"shape\":[");
    for (int d = 0; d < t->rank; d++) {
      snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t->dims[d]);
      puts_(&b, num);
    }
    snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)at,
             (unsigned long long)(at + bytes));
    puts_(&b, num);
    at += bytes;
  }
  puts_(&b, "}");
  while (b.n % 8) puts_(&b, " ");
  if (b.oom) {
    free(b.p);
    rt_error_set(err, "%s: out of memory", path);
    return NULL;
  }
  *data_size = at;
  *hlen = b.n;
  return b.p;
}

/* The whole file in one malloc'd buffer (the fuzz target's round trip). */
int rt_safetensors_write_mem(const char *name, const RtTensorRef *tensors, int n, const char *metadata_json,
                             void **data, size_t *size, RtError *err) {
  uint64_t data_size;
  size_t hlen;
  *data = NULL;
  *size = 0;
  if (n < 0) return rt_error_set(err, "%s: negative tensor count", name);
  char *header = build_header(name, tensors, n, metadata_json, &data_size, &hlen, err);
  if (!header) return -1;
  uint64_t total = 8 + (uint64_t)hlen + data_size;
  unsigned char *buf = total >= 8 + (uint64_t)hlen && total <= SIZE_MAX ? malloc((size_t)total) : NULL;
  if (!buf) {
    free(header);
    return rt_error_set(err, "%s: out of memory", name);
  }
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
  memcpy(buf + 8, header, hlen);
  size_t at = 8 + hlen;
  bool le = host_is_le();
  for (int i = 0; i < n; i++) {
    const RtTensorRef *t = &tensors[i];
    size_t count = 1;
    for (int d = 0; d < t->rank; d++) count *= (size_t)t->dims[d];
    if (count) memcpy(buf + at, t->data, count * 4);
    if (!le) swap32(buf + at, count * 4);
    at += count * 4;
  }
  free(header);
  *data = buf;
  *size = (size_t)total;
  return 0;
}

static bool write_all(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n; }

int rt_safetensors_write(const char *path, const RtTensorRef *tensors, int n, const char *metadata_json,
                         RtError *err) {
  uint64_t data_size;
  size_t hlen;
  if (n < 0) return rt_error_set(err, "%s: negative tensor count", path);
  char *header = build_header(path, tensors, n, metadata_json, &data_size, &hlen, err);
  if (!header) return -1;

  /* Written to path.tmp.<pid>, made durable, then renamed over path:
   * readers see the old file or the new one, never a partial one. */
  RtReplace out;
  if (rt_replace_open(&out, path, err)) {
    free(header);
    return -1;
  }
  FILE *f = out.f;
  unsigned char lenb[8];
  for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
  bool ok = write_all(f, lenb, 8) && write_all(f, header, hlen);
  bool le = host_is_le();
  for (int i = 0; ok && i < n; i++) {
    const RtTensorRef *t = &tensors[i];
    size_t count = 1;
    for (int d = 0; d < t->rank; d++) count *= (size_t)t->dims[d];
    if (le) {
      ok = write_all(f, t->data, count * 4);
      continue;
    }
    for (size_t k = 0; ok && k < count; k++) {
      float v = t->data[k];
      swap32(&v, 4);
      ok = write_all(f, &v, 4);
    }
  }
  if (!ok) rt_error_set(err, "%s: write failed: %s", path, rt_strerror(errno, (char[128]){0}, 128));
  ok = rt_replace_commit(&out, ok, err) == 0 && ok;
  free(header);
  return ok ? 0 : -1;
}
