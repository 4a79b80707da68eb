/* runtime/files.c - opening the files a run reads and checking the paths it
 * will write (see files.h).
 *
 * Inputs are opened with O_NONBLOCK and checked with fstat before anything
 * is read, so a FIFO, a device or a socket is refused at once instead of
 * blocking the run; the flag is cleared again for reading.  Outputs are
 * checked before training starts (a run that trained for hours must not
 * fail on its --save path), and no two of them, nor an output and an
 * input the run must keep, may be one file: compared by device and inode
 * when both exist, else by their resolved names.
 */
#include "files.h"

#include "checkpoint.h"
#include "memlimit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void rt_std_fds_open(void) {
  for (int fd = 0; fd <= 2; fd++)
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      int got = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY); /* the lowest free fd: this one */
      if (got >= 0 && got != fd) close(got);
    }
}

const char *rt_not_regular(mode_t mode, char *buf, size_t len) {
  const char *kind = S_ISFIFO(mode) ? "a fifo" : S_ISSOCK(mode) ? "a socket" : S_ISCHR(mode) ? "a character device"
                     : S_ISBLK(mode) ? "a block device" : "not a file";
  if (S_ISDIR(mode))
    snprintf(buf, len, "is a directory");
  else
    snprintf(buf, len, "not a regular file (%s)", kind);
  return buf;
}

FILE *rt_open_regular(const char *path, struct stat *st, RtError *err) {
  char buf[128];
  if (!path || !*path) {
    rt_error_set(err, "%s: an empty file name", path ? path : "<null>");
    return NULL;
  }
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    rt_error_set(err, "%s: %s", path, rt_strerror(errno, buf, sizeof buf));
    return NULL;
  }
  struct stat s;
  bool ok = fstat(fd, &s) == 0;
  if (!ok || !S_ISREG(s.st_mode)) {
    char why[64];
    rt_error_set(err, "%s: %s", path, ok ? rt_not_regular(s.st_mode, why, sizeof why) : rt_strerror(errno, buf, sizeof buf));
    close(fd);
    return NULL;
  }
  int flags = fcntl(fd, F_GETFL);
  FILE *f = flags != -1 && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0 ? fdopen(fd, "rb") : NULL;
  if (!f) {
    rt_error_set(err, "%s: %s", path, rt_strerror(errno, buf, sizeof buf));
    close(fd);
    return NULL;
  }
  if (st) *st = s;
  return f;
}

/* ---- output paths --------------------------------------------------------------------- */

/* The directory part of path ("." when it has none) into buf. */
static void dir_of(const char *path, char *buf, size_t len) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    snprintf(buf, len, ".");
  else
    snprintf(buf, len, "%.*s", slash == path ? 1 : (int)(slash - path), path);
}

/* path with its directory resolved (symlinks, "..", relative to the
 * working directory), for comparing names that do not exist yet; the
 * name as given when its directory does not resolve. */
static void resolve(const char *path, char *out, size_t len) {
  char dir[PATH_MAX], real[PATH_MAX];
  if (realpath(path, real)) {
    snprintf(out, len, "%s", real);
    return;
  }
  dir_of(path, dir, sizeof dir);
  const char *slash = strrchr(path, '/');
  if (realpath(dir, real))
    snprintf(out, len, "%s/%s", strcmp(real, "/") ? real : "", slash ? slash + 1 : path);
  else
    snprintf(out, len, "%s", path);
}

/* Checks one output on its own: a file name, not a directory, a writable
 * place. */
static int check_one(const RtPathCheck *p, RtError *err) {
  char buf[128], dir[PATH_MAX];
  size_t n = strlen(p->path);
  if (n == 0) return rt_error_set(err, "%s: an empty file name", p->what);
  if (p->path[n - 1] == '/') return rt_error_set(err, "%s %s: names a directory, not a file", p->what, p->path);
  struct stat st;
  bool exists = stat(p->path, &st) == 0;
  if (!exists && errno != ENOENT)
    return rt_error_set(err, "%s %s: %s", p->what, p->path, rt_strerror(errno, buf, sizeof buf));
  if (exists && S_ISDIR(st.st_mode)) return rt_error_set(err, "%s %s: is a directory", p->what, p->path);
  if (exists && p->kind == RT_PATH_REPLACE && !S_ISREG(st.st_mode))
    return rt_error_set(err, "%s %s: %s; only a regular file can be replaced", p->what, p->path,
                        rt_not_regular(st.st_mode, buf, sizeof buf));
  if (exists && p->kind == RT_PATH_WRITE && access(p->path, W_OK) != 0)
    return rt_error_set(err, "%s %s: %s", p->what, p->path, rt_strerror(errno, buf, sizeof buf));
  if (exists && p->kind == RT_PATH_WRITE) return 0; /* written in place: its directory does not matter */
  dir_of(p->path, dir, sizeof dir);
  if (access(dir, W_OK | X_OK) != 0)
    return rt_error_set(err, "%s %s: cannot write in '%s': %s", p->what, p->path, dir,
                        rt_strerror(errno, buf, sizeof buf));
  return 0;
}

bool rt_same_file(const char *a, const char *b) {
  struct stat sa, sb;
  if (!a || !b) return false;
  if (stat(a, &sa) == 0 && stat(b, &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  char ra[PATH_MAX + 256], rb[PATH_MAX + 256];
  resolve(a, ra, sizeof ra);
  resolve(b, rb, sizeof rb);
  return strcmp(ra, rb) == 0;
}

int rt_check_paths(const RtPathCheck *p, int n, RtError *err) {
  for (int i = 0; i < n; i++)
    if (p[i].path && p[i].kind != RT_PATH_KEEP && check_one(&p[i], err)) return -1;
  for (int i = 0; i < n; i++)
    for (int j = i + 1; p[i].path && j < n; j++) {
      if (!p[j].path || (p[i].kind == RT_PATH_KEEP && p[j].kind == RT_PATH_KEEP)) continue;
      if (rt_same_file(p[i].path, p[j].path))
        return rt_error_set(err, "%s %s and %s %s are the same file%s", p[i].what, p[i].path, p[j].what, p[j].path,
                            p[i].kind == RT_PATH_KEEP || p[j].kind == RT_PATH_KEEP ? "; it would be overwritten"
                                                                                   : "");
    }
  return 0;
}

int rt_check_run_paths(const RtRunPaths *r, RtError *err) {
  char ckpt[4096], resume[4096];
  if (r->checkpoint && !rt_checkpoint_path(r->checkpoint, ckpt, sizeof ckpt))
    return rt_error_set(err, "%s: the path is too long", r->checkpoint);
  if (r->resume && !rt_checkpoint_path(r->resume, resume, sizeof resume))
    return rt_error_set(err, "%s: the path is too long", r->resume);
  /* Resuming into the same directory replaces the checkpoint it read: that is what resuming means. */
  bool resume_kept = r->resume && !(r->checkpoint && rt_same_file(r->checkpoint, r->resume));
  RtPathCheck p[] = {
      {"--save", r->save, RT_PATH_REPLACE},
      {"--metrics", r->metrics, RT_PATH_WRITE},
      {"--plot", r->plot, RT_PATH_REPLACE},
      {r->other_what, r->other, RT_PATH_WRITE},
      {"the checkpoint of --checkpoint", r->checkpoint ? ckpt : NULL, RT_PATH_REPLACE},
      {"the checkpoint of --resume", resume_kept ? resume : NULL, RT_PATH_KEEP},
      {"the training data", r->data, RT_PATH_KEEP},
      {"the test data", r->test, RT_PATH_KEEP},
      {"--output", r->output, RT_PATH_REPLACE},
      {"the weights of --load", r->load, RT_PATH_KEEP},
      {"the inputs of --predict", r->predict, RT_PATH_KEEP},
  };
  return rt_check_paths(p, (int)(sizeof p / sizeof *p), err);
}

/* ---- files replaced whole ----------------------------------------------------------------- */

/* fsync the directory holding path, so the rename itself is durable.
 * Best effort: some filesystems refuse fsync on directories. */
static void sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

int rt_replace_open(RtReplace *r, const char *path, RtError *err) {
  memset(r, 0, sizeof *r);
  r->path = path;
  size_t plen = strlen(path) + 32;
  if (!(r->tmp = malloc(plen))) return rt_error_set(err, "%s: out of memory", path);
  snprintf(r->tmp, plen, "%s.tmp.%ld", path, (long)getpid());
  if (!(r->f = fopen(r->tmp, "wb"))) {
    rt_error_set(err, "%s: cannot create %s: %s", path, r->tmp, rt_strerror(errno, (char[128]){0}, 128));
    free(r->tmp);
    r->tmp = NULL;
    return -1;
  }
  return 0;
}

int rt_replace_commit(RtReplace *r, bool ok, RtError *err) {
  if (!r->f) return -1;
  bool written = ok;
  int saved = errno;
  written = written && !ferror(r->f) && fflush(r->f) == 0 && fsync(fileno(r->f)) == 0;
  if (ok && !written) saved = errno;
  if (fclose(r->f) != 0 && written) written = false, saved = errno;
  if (written && rename(r->tmp, r->path) != 0) written = false, saved = errno;
  if (!written) {
    unlink(r->tmp);
    if (ok) rt_error_set(err, "%s: write failed: %s", r->path, rt_strerror(saved, (char[128]){0}, 128));
  } else {
    sync_dir(r->path);
  }
  free(r->tmp);
  memset(r, 0, sizeof *r);
  return written ? 0 : -1;
}

/* Here, not in dataset.c, so that the inference library, which reads
 * files but no data sets, links without the loaders (and zlib). */
int rt_data_budget(const char *path, double need, const char *what, int64_t max_bytes, RtError *err) {
  if (max_bytes <= 0 || need <= (double)max_bytes) return 0;
  char n[32], m[32];
  return rt_error_set(err, "%s: loading it needs about %s (%s) but the memory limit leaves %s for data; use "
                      "--max-memory to change it", path, rt_format_bytes(need, n, sizeof n), what,
                      rt_format_bytes((double)max_bytes, m, sizeof m));
}

static int too_large(const char *path, size_t cap, const char *kind, RtError *err) {
  return rt_error_set(err, "%s: file is larger than the %llu %s limit for %s", path,
                      (unsigned long long)(cap % (1u << 30) ? cap : cap >> 30), cap % (1u << 30) ? "byte" : "GiB", kind);
}

int rt_read_whole(const char *path, size_t cap_max, const char *kind, const char *what, int64_t max_bytes, char **out,
                  size_t *len, RtError *err) {
  struct stat st;
  *out = NULL;
  *len = 0;
  FILE *f = rt_open_regular(path, &st, err);
  if (!f) return -1;
  if ((uint64_t)st.st_size > cap_max) {
    fclose(f);
    return too_large(path, cap_max, kind, err);
  }
  if (rt_data_budget(path, (double)st.st_size, what, max_bytes, err)) {
    fclose(f);
    return -1;
  }
  size_t cap = (size_t)st.st_size + 1 < ((size_t)1 << 16) ? (size_t)1 << 16 : (size_t)st.st_size + 1, have = 0;
  char *buf = malloc(cap);
  while (buf) {
    if (have + 1 >= cap) { /* the file grew while being read */
      if (have > cap_max) {
        free(buf);
        fclose(f);
        return too_large(path, cap_max, kind, err);
      }
      size_t ncap = cap > cap_max / 2 ? cap_max + 2 : cap * 2;
      char *p = realloc(buf, ncap);
      if (!p) break;
      buf = p;
      cap = ncap;
    }
    size_t got = fread(buf + have, 1, cap - 1 - have, f);
    have += got;
    if (got == 0) break;
  }
  int bad = !buf ? 1 : ferror(f) ? 2 : 0;
  fclose(f);
  if (bad || have > cap_max) {
    free(buf);
    return bad ? rt_error_set(err, "%s: %s", path, bad == 1 ? "out of memory" : "read error")
               : too_large(path, cap_max, kind, err);
  }
  buf[have] = 0;
  *out = buf;
  *len = have;
  return 0;
}
