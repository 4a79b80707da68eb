/* support/diag.c - printing, counting and verifying diagnostics (diag.h). */
#include "support/diag.h"

#include "support/arena.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

DiagEngine nnc_diag;

/* Files bigger than this are refused: .nn sources are small. */
enum { MAX_SOURCE_BYTES = 64 << 20 };

void diag_init(DiagEngine *d) {
  memset(d, 0, sizeof *d);
  d->error_limit = 20;
  diag_add_file(d, "<none>", "", 0);
}

void diag_free(DiagEngine *d) {
  for (uint32_t i = 0; i < d->nfiles; i++) {
    free(d->files[i].path);
    free(d->files[i].text);
  }
  for (uint32_t i = 0; i < d->ncollected; i++) free(d->collected[i].msg);
  free(d->files);
  free(d->collected);
  memset(d, 0, sizeof *d);
}

uint32_t diag_add_file(DiagEngine *d, const char *path, const char *text, size_t len) {
  SourceFile f;
  memset(&f, 0, sizeof f);
  f.path = nnc_xstrdup(path);
  f.text = nnc_xmalloc(len + 1);
  memcpy(f.text, text, len);
  f.text[len] = 0;
  f.len = len;
  VEC_PUSH(d->files, d->nfiles, d->capfiles, f);
  return d->nfiles - 1;
}

/* What a path names when it is not a regular file, for messages. */
static const char *not_regular(mode_t mode) {
  if (S_ISDIR(mode)) return "is a directory";
  if (S_ISFIFO(mode)) return "is a FIFO, not a regular file";
  if (S_ISSOCK(mode)) return "is a socket, not a regular file";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "is a device, not a regular file";
  return "is not a regular file";
}

/* Opened without blocking (a FIFO would wait for a writer forever) and
 * refused unless it is a regular file; its device and inode are kept so
 * that an output can be told apart from every file read (diag_is_input). */
uint32_t diag_load_file(DiagEngine *d, const char *path, const char **err_out) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *err_out = strerror(errno);
    return 0;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    *err_out = strerror(errno);
    close(fd);
    return 0;
  }
  if (!S_ISREG(st.st_mode)) {
    *err_out = not_regular(st.st_mode);
    close(fd);
    return 0;
  }
  size_t cap = 4096, len = 0;
  char *buf = nnc_xmalloc(cap);
  for (;;) {
    if (len == cap) {
      if (cap >= MAX_SOURCE_BYTES) {
        free(buf);
        close(fd);
        *err_out = "file is larger than 64 MiB";
        return 0;
      }
      cap *= 2;
      buf = nnc_xrealloc(buf, cap);
    }
    ssize_t got = read(fd, buf + len, cap - len);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      free(buf);
      close(fd);
      *err_out = "read error";
      return 0;
    }
    if (got == 0) break;
    len += (size_t)got;
  }
  close(fd);
  uint32_t id = diag_add_file(d, path, buf, len);
  free(buf);
  d->files[id].on_disk = true;
  d->files[id].dev = (uint64_t)st.st_dev;
  d->files[id].ino = (uint64_t)st.st_ino;
  return id;
}

const SourceFile *diag_is_input(const DiagEngine *d, const char *path) {
  struct stat st;
  if (!path || stat(path, &st) != 0) return NULL;
  for (uint32_t i = 1; i < d->nfiles; i++) {
    const SourceFile *f = &d->files[i];
    if (f->on_disk && f->dev == (uint64_t)st.st_dev && f->ino == (uint64_t)st.st_ino) return f;
  }
  return NULL;
}

const SourceFile *diag_file(const DiagEngine *d, uint32_t id) {
  return id < d->nfiles ? &d->files[id] : NULL;
}

/* ---- quoting ------------------------------------------------------------ */

/* Length of a valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (k == 0 || k > n) return 0;
  if (k == 2 && c < 0xC2) return 0;
  for (size_t i = 1; i < k; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  return k;
}

const char *diag_quote(const char *s, size_t len) {
  static char bufs[4][256];
  static int next;
  char *out = bufs[next++ & 3];
  size_t o = 0, limit = len > 60 ? 40 : len;
  for (size_t i = 0; i < limit && o < 200;) {
    unsigned char c = (unsigned char)s[i];
    size_t k = utf8_len((const unsigned char *)s + i, len - i);
    if (c >= 0x20 && c < 0x7f) {
      out[o++] = (char)c;
      i++;
    } else if (k > 1) {
      memcpy(out + o, s + i, k);
      o += k;
      i += k;
    } else {
      o += (size_t)snprintf(out + o, 8, "\\x%02x", c);
      i++;
    }
  }
  if (limit < len) o += (size_t)snprintf(out + o, 64, "... (%zu bytes)", len);
  out[o] = 0;
  return out;
}

/* ---- printing ----------------------------------------------------------- */

static const char *level_name[] = {"error", "warning", "note"};
static const char *level_color[] = {"\033[1;31m", "\033[1;35m", "\033[1;36m"};

/* Prints the source line of loc and a caret under its column. */
static void print_source_line(const DiagEngine *d, SrcLoc loc) {
  const SourceFile *f = diag_file(d, loc.file);
  if (!f || loc.line == 0) return;
  const char *p = f->text, *end = f->text + f->len;
  for (uint32_t l = 1; l < loc.line && p < end; p++)
    if (*p == '\n') l++;
  const char *eol = p;
  while (eol < end && *eol != '\n') eol++;
  size_t n = (size_t)(eol - p);
  if (n > 200) return; /* a huge line helps nobody */
  fputs("    ", stderr);
  /* Print bytes as they are but make control bytes visible as spaces so the
   * caret stays aligned. */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    fputc(c == '\t' ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : c, stderr);
  }
  fputs("\n    ", stderr);
  size_t col = loc.col ? loc.col - 1 : 0;
  for (size_t i = 0; i < col && i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if ((c & 0xC0) != 0x80) fputc(' ', stderr); /* one column per code point */
  }
  fputs(d->color ? "\033[1;32m^\033[0m\n" : "^\n", stderr);
}

static void report(DiagLevel level, SrcLoc loc, const char *fmt, va_list ap) {
  DiagEngine *d = &nnc_diag;
  if (level == DIAG_NOTE && d->suppress_notes) return;
  if (level != DIAG_NOTE) d->suppress_notes = false;
  if (level == DIAG_ERROR) {
    if (d->error_limit && d->errors >= d->error_limit) {
      d->suppress_notes = true;
      return;
    }
    d->errors++;
  }
  char msg[2048];
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (d->verify) {
    Diagnostic dg = {level, loc, nnc_xstrdup(msg)};
    VEC_PUSH(d->collected, d->ncollected, d->capcollected, dg);
    return;
  }
  const SourceFile *f = diag_file(d, loc.file);
  if (d->color) fputs("\033[1m", stderr);
  if (f && loc.file)
    fprintf(stderr, "%s:%u:%u: ", f->path, loc.line, loc.col);
  else
    fputs("nnc: ", stderr);
  if (d->color) fputs(level_color[level], stderr);
  fprintf(stderr, "%s: ", level_name[level]);
  if (d->color) fputs("\033[0;1m", stderr);
  fputs(msg, stderr);
  if (d->color) fputs("\033[0m", stderr);
  fputc('\n', stderr);
  if (loc.file) print_source_line(d, loc);
  if (level == DIAG_ERROR && d->error_limit && d->errors == d->error_limit) {
    fprintf(stderr, "nnc: error: too many errors (%d), stopping\n", d->error_limit);
    fflush(stderr);
    exit(1);
  }
}

#define REPORT(level)                                                          \
  va_list ap;                                                                  \
  va_start(ap, fmt);                                                           \
  report(level, loc, fmt, ap);                                                 \
  va_end(ap)

void diag_error(SrcLoc loc, const char *fmt, ...) { REPORT(DIAG_ERROR); }
void diag_warning(SrcLoc loc, const char *fmt, ...) { REPORT(DIAG_WARNING); }
void diag_note(SrcLoc loc, const char *fmt, ...) { REPORT(DIAG_NOTE); }

void diag_error_plain(const char *fmt, ...) {
  SrcLoc loc = {0, 0, 0};
  REPORT(DIAG_ERROR);
}

int diag_error_count(void) { return nnc_diag.errors; }

/* ---- verify mode -------------------------------------------------------- */

typedef struct Expected {
  DiagLevel level;
  uint32_t file, line;
  char *text;
  bool matched;
  uint32_t comment_line;
} Expected;

/* Scans a file for `expected-LEVEL[@+N|@-N] {{text}}` comments. */
static void scan_expected(const DiagEngine *d, uint32_t fid, Expected **out, uint32_t *n,
                          uint32_t *cap) {
  const SourceFile *f = &d->files[fid];
  const char *p = f->text, *end = f->text + f->len;
  uint32_t line = 1;
  for (const char *q = p; q < end; q++) {
    if (*q == '\n') {
      line++;
      continue;
    }
    if (*q != 'e' || (size_t)(end - q) < 9 || strncmp(q, "expected-", 9) != 0) continue;
    const char *s = q + 9;
    DiagLevel level;
    if (!strncmp(s, "error", 5)) level = DIAG_ERROR, s += 5;
    else if (!strncmp(s, "warning", 7)) level = DIAG_WARNING, s += 7;
    else if (!strncmp(s, "note", 4)) level = DIAG_NOTE, s += 4;
    else continue;
    long offset = 0;
    if (*s == '@') {
      char *e;
      offset = strtol(s + 1, &e, 10);
      s = e;
    }
    while (s < end && *s == ' ') s++;
    if (end - s < 2 || s[0] != '{' || s[1] != '{') continue;
    const char *t = s + 2, *close = t;
    while (close + 1 < end && !(close[0] == '}' && close[1] == '}') && *close != '\n') close++;
    if (close + 1 >= end || close[0] != '}') continue;
    Expected e = {level, fid, (uint32_t)((long)line + offset),
                  nnc_xmalloc((size_t)(close - t) + 1), false, line};
    memcpy(e.text, t, (size_t)(close - t));
    e.text[close - t] = 0;
    VEC_PUSH(*out, *n, *cap, e);
    q = close;
  }
}

bool diag_verify(DiagEngine *d) {
  Expected *exp = NULL;
  uint32_t nexp = 0, capexp = 0;
  for (uint32_t f = 1; f < d->nfiles; f++) scan_expected(d, f, &exp, &nexp, &capexp);
  bool ok = true;
  for (uint32_t i = 0; i < d->ncollected; i++) {
    Diagnostic *dg = &d->collected[i];
    bool found = false;
    for (uint32_t j = 0; j < nexp && !found; j++) {
      Expected *e = &exp[j];
      if (!e->matched && e->level == dg->level && e->file == dg->loc.file &&
          e->line == dg->loc.line && strstr(dg->msg, e->text)) {
        e->matched = found = true;
      }
    }
    /* Notes are checked only where a test expects them. */
    if (!found && dg->level != DIAG_NOTE) {
      const SourceFile *f = diag_file(d, dg->loc.file);
      fprintf(stderr, "verify: unexpected %s at %s:%u:%u: %s\n", level_name[dg->level],
              f && dg->loc.file ? f->path : "<none>", dg->loc.line, dg->loc.col, dg->msg);
      ok = false;
    }
  }
  for (uint32_t j = 0; j < nexp; j++) {
    if (!exp[j].matched) {
      fprintf(stderr, "verify: expected %s on %s:%u not seen: %s\n", level_name[exp[j].level],
              d->files[exp[j].file].path, exp[j].line, exp[j].text);
      ok = false;
    }
    free(exp[j].text);
  }
  free(exp);
  return ok;
}
