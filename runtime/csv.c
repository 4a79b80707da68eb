/* runtime/csv.c - the CSV loader.
 *
 * Format: comma-separated fields, optionally in double quotes ("" is a quote
 * inside a quoted field; a quoted field does not span lines), LF or CRLF line
 * ends.  Lines that are blank or start with '#' are skipped.  The first row
 * is a header when one of its fields is not a number.  The label column is
 * chosen by name (needs a header), by 0-based index written as digits, or is
 * the last column; every other column is a feature, in file order (inputs
 * to predict have no label: every column is a feature).  Every
 * row has the same number of fields and every field is a finite number;
 * i32 labels are integers in [0, bound).  Column numbers in messages are
 * 0-based, like the label index.
 *
 * The file (a regular file of at most 2 GiB) is read into memory and split in place; values
 * are appended to arrays that grow with the rows really present.
 * rt_csv_parse_mem parses a file already in memory (a copy of it);
 * rt_csv_load reads the file and parses that.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data.h"
#include "files.h"
#include "memlimit.h"

#define CSV_CAP ((size_t)2 << 30)

typedef struct Csv {
  const char *path;   /* the file's name, for messages */
  char *buf;          /* the whole file, NUL-terminated, split in place */
  size_t len;
  char **fields;      /* the current row's fields */
  size_t nfields, capfields;
  char **names;       /* header names (copies), or NULL without a header */
  size_t ncols;
  int64_t max_bytes;  /* RtDataExpect.max_bytes: the file and the rows together; 0 = no limit */
} Csv;

static int too_large(const char *path, RtError *err) {
  return rt_error_set(err, "%s: file is larger than the 2 GiB limit for csv data", path);
}

/* The whole file into c->buf (rt_read_whole). */
static int read_all(Csv *c, RtError *err) {
  return rt_read_whole(c->path, CSV_CAP, "csv data", "the file's bytes, before any row", c->max_bytes, &c->buf,
                       &c->len, err);
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
  return s;
}

/* Splits one line (NUL-terminated, no line end) into c->fields, in place. */
static int split(Csv *c, char *line, long lineno, RtError *err) {
  c->nfields = 0;
  char *p = line;
  for (;;) {
    if (c->nfields == c->capfields) {
      size_t n = c->capfields ? c->capfields * 2 : 16;
      char **q = realloc(c->fields, n * sizeof *q);
      if (!q) return rt_error_set(err, "%s: out of memory", c->path);
      c->fields = q;
      c->capfields = n;
    }
    while (*p == ' ' || *p == '\t') p++;
    char *start = p, *end;
    if (*p == '"') {
      char *w = start;
      p++;
      for (;;) {
        if (*p == 0) return rt_error_set(err, "%s: line %ld: unterminated quoted field", c->path, lineno);
        if (*p == '"') {
          if (p[1] != '"') break;
          p++;
        }
        *w++ = *p++;
      }
      p++; /* the closing quote */
      *w = 0;
      while (*p == ' ' || *p == '\t') p++;
      if (*p != ',' && *p != 0)
        return rt_error_set(err, "%s: line %ld: unexpected text after a closing quote", c->path, lineno);
      c->fields[c->nfields++] = start;
      end = p;
    } else {
      end = p + strcspn(p, ",");
      c->fields[c->nfields++] = start;
    }
    char sep = *end;
    *end = 0;
    if (sep == 0) break;
    p = end + 1;
  }
  for (size_t i = 0; i < c->nfields; i++) c->fields[i] = trim(c->fields[i]);
  return 0;
}

/* Parses a whole field as a number; false if any of it is not. */
static bool parse_num(const char *s, double *v) {
  if (!*s) return false;
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  return *end == 0;
}

static bool all_digits(const char *s) {
  if (!*s) return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return false;
  return true;
}

/* Chooses the label column; lists the columns when a name is not found. */
static int label_column(Csv *c, const char *label, size_t *col, RtError *err) {
  if (!label) {
    *col = c->ncols - 1;
    return 0;
  }
  if (c->names)
    for (size_t i = 0; i < c->ncols; i++)
      if (strcmp(c->names[i], label) == 0) {
        *col = i;
        return 0;
      }
  if (all_digits(label)) {
    unsigned long long k = strlen(label) > 9 ? ~0ULL : strtoull(label, NULL, 10);
    if (k >= c->ncols)
      return rt_error_set(err, "%s: label column %s is out of range: the file has %zu columns", c->path, label,
                          c->ncols);
    *col = (size_t)k;
    return 0;
  }
  if (!c->names)
    return rt_error_set(err, "%s: label column '%s' is given by name but the file has no header row", c->path,
                        label);
  char list[300];
  size_t k = 0;
  list[0] = 0;
  for (size_t i = 0; i < c->ncols && k < sizeof list; i++)
    k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", c->names[i]);
  return rt_error_set(err, "%s: no column named '%s' (columns: %s)", c->path, label, list);
}

/* Column i for messages: 'name' with a header, else its 0-based index. */
static void col_name(const Csv *c, size_t i, char *buf, size_t len) {
  if (c->names)
    snprintf(buf, len, "'%.60s'", c->names[i]);
  else
    snprintf(buf, len, "%zu", i);
}

static void csv_free(Csv *c) {
  free(c->buf);
  free(c->fields);
  if (c->names)
    for (size_t i = 0; i < c->ncols; i++) free(c->names[i]);
  free(c->names);
}

/* Makes room for element n of a growing array (*cap elements of elem bytes). */
static bool push(void **arr, size_t *cap, size_t n, size_t elem) {
  if (n < *cap) return true;
  size_t ncap = *cap ? *cap * 2 : 1024;
  void *p = realloc(*arr, ncap * elem);
  if (!p) return false;
  *arr = p;
  *cap = ncap;
  return true;
}

/* Parses c->buf (c->len bytes and a NUL, split in place); frees c. */
static int csv_parse(Csv *cp, const char *label, double scale, const RtDataExpect *expect, RtDataset *out,
                     RtError *err) {
  Csv c = *cp;
  const char *path = c.path;
  RtLabelType lt = expect ? expect->label_type : RT_LABEL_F32;
  int64_t bound = expect && lt == RT_LABEL_I32 ? expect->label_bound : 0;
  size_t col = 0, nrows = 0, capx = 0, capy = 0, nf = 0;
  void *x = NULL, *y = NULL;
  bool first = true, anything = false;
  int rc = -1;

  long lineno = 0;
  char *end = c.buf + c.len;
  for (char *line = c.buf; line <= end;) {
    char *nl = memchr(line, '\n', (size_t)(end - line));
    char *stop = nl ? nl : end;
    *stop = 0;
    lineno++;
    size_t ll = (size_t)(stop - line);
    if (strlen(line) != ll) {
      rt_error_set(err, "%s: line %ld: contains a NUL byte (not a text file?)", path, lineno);
      goto done;
    }
    if (ll > 0 && line[ll - 1] == '\r') line[--ll] = 0;
    char *t = line;
    while (*t == ' ' || *t == '\t') t++;
    char *cur = line;
    line = stop + 1;
    if (*t == 0 || *t == '#') continue;
    anything = true;
    if (split(&c, cur, lineno, err)) goto done;

    if (first) { /* header or first data row: fixes the columns */
      first = false;
      c.ncols = c.nfields;
      double v;
      bool header = false;
      for (size_t i = 0; i < c.nfields; i++) header = header || !parse_num(c.fields[i], &v);
      if (c.ncols < 2 && lt != RT_LABEL_NONE) {
        rt_error_set(err, "%s: line %ld: expected at least 2 columns (features and a label), found %zu", path,
                     lineno, c.ncols);
        goto done;
      }
      if (header) {
        c.names = calloc(c.ncols, sizeof *c.names);
        if (!c.names) goto oom;
        for (size_t i = 0; i < c.ncols; i++)
          if (!(c.names[i] = strdup(c.fields[i]))) goto oom;
      }
      if (lt == RT_LABEL_NONE) /* inputs only: every column is a feature */
        col = c.ncols, nf = c.ncols;
      else if (label_column(&c, label, &col, err))
        goto done;
      else
        nf = c.ncols - 1;
      if (expect && expect->features > 0 && (int64_t)nf != expect->features) {
        rt_error_set(err, "%s: the file has %zu feature columns but the model's input has %lld", path, nf,
                     (long long)expect->features);
        goto done;
      }
      if (header) continue;
    }
    if (c.nfields != c.ncols) {
      rt_error_set(err, "%s: line %ld: expected %zu fields, found %zu", path, lineno, c.ncols, c.nfields);
      goto done;
    }
    if (!push(&x, &capx, nrows, nf * sizeof(float))) goto oom;
    if (nrows == 0 || capx == 2 * nrows) { /* just grown: the file and the rows so far against the limit */
      char what[96];
      snprintf(what, sizeof what, "the file and its rows as f32, at line %ld", lineno);
      if (rt_data_budget(path, (double)c.len + RT_DATA_BYTES(capx, nf), what, c.max_bytes, err)) goto done;
    }
    for (size_t i = 0, k = 0; i < c.ncols; i++) {
      double v;
      if (!parse_num(c.fields[i], &v) || !isfinite(v)) {
        char cname[80];
        col_name(&c, i, cname, sizeof cname);
        rt_error_set(err, "%s: line %ld, column %s: '%.60s' is not a %snumber", path, lineno, cname,
                     c.fields[i], parse_num(c.fields[i], &v) ? "finite " : "");
        goto done;
      }
      /* Values are checked as they are stored, in f32: 1e39 is finite only as a double. */
      float f = (float)(i != col ? v * scale : v);
      if (!isfinite(f) && (i != col || lt == RT_LABEL_F32)) {
        char cname[80];
        col_name(&c, i, cname, sizeof cname);
        char scaled[48] = "";
        if (i != col && scale != 1) snprintf(scaled, sizeof scaled, " times scale %.6g", scale);
        rt_error_set(err, "%s: line %ld, column %s: %.60s%s is out of range for f32 (at most %.6g)", path, lineno,
                     cname, c.fields[i], scaled, FLT_MAX);
        goto done;
      }
      if (i != col) {
        ((float *)x)[nrows * nf + k++] = f;
        continue;
      }
      if (!push(&y, &capy, nrows, 4)) goto oom;
      if (lt == RT_LABEL_F32) {
        ((float *)y)[nrows] = f;
        continue;
      }
      if (v != floor(v)) {
        rt_error_set(err, "%s: line %ld: label %g is not an integer class index", path, lineno, v);
        goto done;
      }
      if (v < 0 || (bound > 0 && v >= (double)bound) || v > INT32_MAX) {
        if (bound > 0)
          rt_error_set(err, "%s: line %ld: label %.0f is out of range for %lld classes", path, lineno, v,
                       (long long)bound);
        else
          rt_error_set(err, "%s: line %ld: label %.0f is not a valid class index", path, lineno, v);
        goto done;
      }
      ((int32_t *)y)[nrows] = (int32_t)v;
    }
    nrows++;
  }
  if (!anything) {
    rt_error_set(err, "%s: empty file", path);
    goto done;
  }
  if (nrows == 0) {
    rt_error_set(err, "%s: no data rows", path);
    goto done;
  }
  out->n = (int64_t)nrows;
  out->features = (int64_t)nf;
  out->x = x;
  out->label_type = lt;
  if (lt == RT_LABEL_I32) out->yi = y;
  else if (lt == RT_LABEL_F32) out->yf = y;
  x = y = NULL;
  if (!(out->source = strdup(path))) goto oom;
  rc = 0;
  goto done;
oom:
  rt_error_set(err, "%s: out of memory", path);
done:
  if (rc) rt_data_free(out);
  free(x);
  free(y);
  csv_free(&c);
  return rc;
}

int rt_csv_parse_mem(const RtMemFile *file, const char *label, double scale, const RtDataExpect *expect,
                     RtDataset *out, RtError *err) {
  memset(out, 0, sizeof *out);
  Csv c = {.path = file->name ? file->name : "<memory>"};
  size_t size = file->data ? file->size : 0;
  if (size > CSV_CAP) return too_large(c.path, err);
  if (!(c.buf = malloc(size + 1))) return rt_error_set(err, "%s: out of memory", c.path);
  if (size) memcpy(c.buf, file->data, size);
  c.buf[size] = 0;
  c.len = size;
  return csv_parse(&c, label, scale, expect, out, err);
}

int rt_csv_load(const char *path, const char *label, double scale, const RtDataExpect *expect,
                RtDataset *out, RtError *err) {
  memset(out, 0, sizeof *out);
  Csv c = {.path = path, .max_bytes = expect ? expect->max_bytes : 0};
  if (read_all(&c, err)) return -1;
  return csv_parse(&c, label, scale, expect, out, err);
}
