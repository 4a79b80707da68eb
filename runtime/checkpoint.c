/* runtime/checkpoint.c - checkpoints, resume and the signal flag (see
 * checkpoint.h; the format is in docs/hardening.md).
 *
 * The metadata is a flat JSON object of strings (safetensors allows no
 * other values): integers in decimal, doubles with 17 significant digits
 * (they read back to the same bits), hyper-parameters as "hyper.NAME".
 */
#include "checkpoint.h"

#include "comm.h"
#include "files.h"
#include "model.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

bool rt_checkpoint_path(const char *dir, char *buf, size_t len) {
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/') n--; /* "ckpt/" and "ckpt" name the same file */
  int w = snprintf(buf, len, "%.*s/%s", (int)n, dir, RT_CKPT_FILE);
  return w > 0 && (size_t)w < len;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* Removes DIR/checkpoint.safetensors.tmp.PID files whose writer is gone:
 * what a kill during rt_safetensors_write leaves. */
static void remove_stale_temps(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  const char *prefix = RT_CKPT_FILE ".tmp.";
  size_t plen = strlen(prefix);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, prefix, plen) != 0) continue;
    char *end;
    long pid = strtol(e->d_name + plen, &end, 10);
    if (*end || pid <= 0 || (pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno != ESRCH))) continue;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path) unlink(path);
  }
  closedir(d);
}

/* Takes the directory's lock: DIR/checkpoint.lock, flock'd for as long as
 * the run lives, holding the owner's process id for the message another
 * run gets.  The file stays (removing it would race with a new owner). */
static int lock_dir(const char *dir, int *lock_fd, RtError *err) {
  char path[4096], buf[128];
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/') n--;
  if (snprintf(path, sizeof path, "%.*s/%s", (int)n, dir, RT_CKPT_LOCK) >= (int)sizeof path)
    return rt_error_set(err, "%s: the path is too long", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0666);
  if (fd < 0) return rt_error_set(err, "%s: cannot create the lock file: %s", path, rt_strerror(errno, buf, sizeof buf));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    char owner[32] = "";
    ssize_t got = e == EWOULDBLOCK ? pread(fd, owner, sizeof owner - 1, 0) : -1;
    long pid = got > 0 ? (owner[got] = 0, strtol(owner, NULL, 10)) : 0;
    close(fd);
    if (e != EWOULDBLOCK)
      return rt_error_set(err, "%s: cannot lock the checkpoint directory: %s", path, rt_strerror(e, buf, sizeof buf));
    if (pid > 0) snprintf(owner, sizeof owner, " (process %ld)", pid);
    return rt_error_set(err, "%.*s: another run%s holds this checkpoint directory; give this run another "
                        "--checkpoint DIR, or wait for that one to end", (int)n, dir, pid > 0 ? owner : "");
  }
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  bool noted = ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)len, 0) == len;
  (void)noted; /* the id is only for messages */
  *lock_fd = fd;
  return 0;
}

int rt_checkpoint_prepare(const char *dir, const char *resume_dir, bool overwrite, int *lock_fd, RtError *err) {
  char buf[128], path[4096];
  *lock_fd = -1;
  if (!*dir) return rt_error_set(err, "--checkpoint: an empty directory name");
  if (!rt_checkpoint_path(dir, path, sizeof path)) return rt_error_set(err, "%s: the path is too long", dir);
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    return rt_error_set(err, "%s: cannot create the checkpoint directory: %s", dir, rt_strerror(errno, buf, sizeof buf));
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return rt_error_set(err, "%s: not a directory", dir);
  if (access(dir, W_OK | X_OK) != 0)
    return rt_error_set(err, "%s: cannot write in the checkpoint directory: %s", dir, rt_strerror(errno, buf, sizeof buf));
  if (lock_dir(dir, lock_fd, err) != 0) return -1;
  /* A checkpoint there is another run's work: replaced only when resumed
   * from or when asked to. */
  if (lstat(path, &st) == 0 && !overwrite && !rt_same_file(dir, resume_dir)) {
    rt_checkpoint_unlock(*lock_fd);
    *lock_fd = -1;
    return rt_error_set(err, "%s: a checkpoint is there already; continue it with --resume %s --checkpoint %s, or "
                        "replace it with --overwrite-checkpoint", path, dir, dir);
  }
  remove_stale_temps(dir);
  return 0;
}

void rt_checkpoint_unlock(int lock_fd) {
  if (lock_fd < 0) return;
  bool cleared = ftruncate(lock_fd, 0) == 0; /* no stale process id for the next run's messages */
  (void)cleared;
  close(lock_fd); /* closing the last descriptor releases the flock */
}

/* The metadata text being built, and the checksum of what it holds so far. */
typedef struct MetaText {
  char *buf;
  size_t len, at;
  uint32_t crc;
} MetaText;

/* ---- the checksum ------------------------------------------------------------------------ */

/* CRC-32 (zlib's, IEEE 802.3, reflected) of what a checkpoint holds: every
 * metadata pair but the checksum itself, in file order, then each tensor's
 * name and shape, then the data section as the little-endian bytes of the
 * file.  A flipped bit anywhere in those changes it.  Computed here, a
 * nibble at a time, so that reading weights needs no zlib (an inference
 * library links with libc, libm and pthreads only: docs/library.md). */
static uint32_t crc_bytes(uint32_t crc, const void *p, size_t n) {
  static const uint32_t nibble[16] = {0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
                                      0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
                                      0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C};
  const unsigned char *b = p;
  uint32_t c = ~crc;
  for (size_t i = 0; i < n; i++) {
    c ^= b[i];
    c = (c >> 4) ^ nibble[c & 15];
    c = (c >> 4) ^ nibble[c & 15];
  }
  return ~c;
}

static uint32_t crc_str(uint32_t crc, const char *s) { return crc_bytes(crc, s, strlen(s) + 1); /* with its NUL */ }

static uint32_t crc_shape(uint32_t crc, const char *name, int rank, const int64_t *dims) {
  crc = crc_str(crc, name);
  unsigned char b[8 * (RT_ST_MAX_RANK + 1)];
  int64_t v[RT_ST_MAX_RANK + 1] = {rank};
  for (int d = 0; d < rank && d < RT_ST_MAX_RANK; d++) v[d + 1] = dims[d];
  for (int i = 0; i <= rank && i <= RT_ST_MAX_RANK; i++)
    for (int k = 0; k < 8; k++) b[8 * i + k] = (unsigned char)((uint64_t)v[i] >> (8 * k));
  return crc_bytes(crc, b, 8 * (size_t)(rank + 1));
}

static uint32_t crc_floats(uint32_t crc, const float *v, uint64_t n) {
  const uint16_t one = 1;
  unsigned char le;
  memcpy(&le, &one, 1);
  if (le) return crc_bytes(crc, v, (size_t)n * 4);
  unsigned char b[4096];
  for (uint64_t i = 0; i < n;) { /* a big-endian host: the file's byte order, a chunk at a time */
    size_t k = 0;
    for (; k + 4 <= sizeof b && i < n; i++, k += 4) {
      uint32_t u;
      memcpy(&u, &v[i], 4);
      for (int j = 0; j < 4; j++) b[k + (size_t)j] = (unsigned char)(u >> (8 * j));
    }
    crc = crc_bytes(crc, b, k);
  }
  return crc;
}

/* Appends "key": "value" to the metadata text and its checksum (keys and
 * values are plain: names are checked by the caller to hold no quote or
 * backslash). */
static bool meta_add(MetaText *t, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool meta_add(MetaText *t, const char *key, const char *fmt, ...) {
  char value[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(value, sizeof value, fmt, ap);
  va_end(ap);
  int w = snprintf(t->buf + t->at, t->len - t->at, "%s\"%s\": \"%s\"", t->at ? ", " : "", key, value);
  if (w < 0 || (size_t)w >= t->len - t->at) return false;
  t->at += (size_t)w;
  t->crc = crc_str(crc_str(t->crc, key), value);
  return true;
}

/* s without the characters a metadata string must not hold (quotes,
 * backslashes, controls), cut to fit. */
static const char *plain(char *out, size_t len, const char *s) {
  size_t o = 0;
  for (; s && *s && o + 1 < len; s++)
    if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20) out[o++] = *s;
  out[o] = 0;
  return out;
}

static int64_t ref_numel(const RtTensorRef *r) {
  int64_t n = 1;
  for (int d = 0; d < r->rank; d++) n *= r->dims[d];
  return n;
}

int rt_tensor_finite(const RtTensorRef *t, const char *what, int64_t step, RtError *err) {
  for (int64_t i = 0, n = ref_numel(t); i < n; i++)
    if (!isfinite(t->data[i]))
      return rt_error_set(err, "%s '%s' holds %s at element %lld after step %lld", what, t->name,
                          isnan(t->data[i]) ? "nan" : t->data[i] > 0 ? "inf" : "-inf", (long long)i, (long long)step);
  return 0;
}

int rt_checkpoint_write(const char *dir, const RtCkptMeta *meta, const RtCkptTensor *t, int n, RtError *err) {
  char path[4096];
  if (!rt_checkpoint_path(dir, path, sizeof path)) return rt_error_set(err, "%s: the path is too long", dir);
  for (int i = 0; i < n; i++) /* the hook adds which checkpoint is left, if any */
    if (!t[i].i32 && rt_tensor_finite(&t[i].ref, t[i].state ? "optimizer state" : "parameter", meta->pos.steps, err))
      return -1;
  size_t cap = 1536 + (size_t)meta->nhypers * 320; /* with the early-stop fields */
  MetaText mt = {malloc(cap), cap, 0, 0};
  char name[128], version[64];
  if (!mt.buf) return rt_error_set(err, "%s: out of memory", path);
  mt.buf[0] = 0;
  bool ok = meta_add(&mt, "format", "%s", RT_CKPT_FORMAT) &&
            meta_add(&mt, "model", "%s", plain(name, sizeof name, meta->model)) &&
            meta_add(&mt, "nnc", "%s", plain(version, sizeof version, meta->nnc_version ? meta->nnc_version : "")) &&
            meta_add(&mt, "step", "%lld", (long long)meta->pos.steps) &&
            meta_add(&mt, "epoch", "%lld", (long long)meta->pos.epoch) &&
            meta_add(&mt, "epoch_sample", "%lld", (long long)meta->pos.sample) &&
            meta_add(&mt, "epoch_loss_sum", "%.17g", meta->pos.loss_sum) &&
            meta_add(&mt, "train_samples", "%lld", (long long)meta->train_samples) &&
            meta_add(&mt, "batch", "%lld", (long long)meta->batch) &&
            meta_add(&mt, "epochs", "%lld", (long long)meta->epochs) &&
            meta_add(&mt, "max_steps", "%lld", (long long)meta->max_steps) &&
            meta_add(&mt, "seed", "%llu", (unsigned long long)meta->seed) &&
            meta_add(&mt, "shuffle", "%d", meta->shuffle ? 1 : 0);
  if (ok && meta->validation > 0) ok = meta_add(&mt, "validation", "%.17g", meta->validation);
  if (ok && meta->early)
    ok = meta_add(&mt, "early_stop", "%lld", (long long)meta->early->patience) &&
         meta_add(&mt, "best_epoch", "%lld", (long long)meta->early->best_epoch) &&
         meta_add(&mt, "best_val_loss", "%.17g", meta->early->best_loss) &&
         meta_add(&mt, "best_step", "%lld", (long long)meta->early->best_step) &&
         meta_add(&mt, "bad_epochs", "%lld", (long long)meta->early->bad_epochs);
  for (int i = 0; ok && i < meta->nhypers; i++) {
    char key[160];
    snprintf(key, sizeof key, "hyper.%s", plain(name, sizeof name, meta->hyper_names[i]));
    ok = meta_add(&mt, key, "%.17g", meta->hyper_values[i]);
  }
  RtTensorRef *refs = malloc((size_t)(n > 0 ? n : 1) * sizeof *refs);
  uint32_t crc = mt.crc;
  for (int i = 0; ok && refs && i < n; i++) crc = crc_shape(crc, t[i].ref.name, t[i].ref.rank, t[i].ref.dims);
  for (int i = 0; ok && refs && i < n; i++) crc = crc_floats(crc, t[i].ref.data, (uint64_t)ref_numel(&t[i].ref));
  ok = ok && meta_add(&mt, RT_CKPT_CHECKSUM, "crc32:%08lx", (unsigned long)crc);
  if (!ok || !refs) {
    free(mt.buf);
    free(refs);
    return rt_error_set(err, "%s: %s", path, ok ? "out of memory" : "the metadata is too long");
  }
  for (int i = 0; i < n; i++) refs[i] = t[i].ref;
  int rc = rt_safetensors_write(path, refs, n, mt.buf, err);
  free(refs);
  free(mt.buf);
  return rc;
}

/* ---- reading ----------------------------------------------------------------------------- */

/* An integer field in [min, max]. */
static int meta_int(const RtCheckpoint *c, const char *key, int64_t min, int64_t max, int64_t *out, RtError *err) {
  const char *v = rt_safetensors_metadata(&c->st, key);
  if (!v) return rt_error_set(err, "%s: not an nnc checkpoint: no '%s' in its metadata", c->path, key);
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (!*v || *end || errno || x < min || x > max)
    return rt_error_set(err, "%s: bad '%s' in its metadata: '%.40s'", c->path, key, v);
  *out = x;
  return 0;
}

static int meta_double(const RtCheckpoint *c, const char *key, double *out, RtError *err) {
  const char *v = rt_safetensors_metadata(&c->st, key);
  if (!v) return rt_error_set(err, "%s: not an nnc checkpoint: no '%s' in its metadata", c->path, key);
  char *end;
  double x = strtod(v, &end);
  if (!*v || *end || !isfinite(x)) return rt_error_set(err, "%s: bad '%s' in its metadata: '%.40s'", c->path, key, v);
  *out = x;
  return 0;
}

/* The stored checksum against the one of what was read. */
static int check_sum(const RtCheckpoint *c, RtError *err) {
  const char *v = rt_safetensors_metadata(&c->st, RT_CKPT_CHECKSUM);
  if (!v) return rt_error_set(err, "%s: not an nnc checkpoint: no '%s' in its metadata", c->path, RT_CKPT_CHECKSUM);
  char *end;
  errno = 0;
  unsigned long stored = strncmp(v, "crc32:", 6) == 0 ? strtoul(v + 6, &end, 16) : 0;
  if (strncmp(v, "crc32:", 6) != 0 || strlen(v) != 14 || *end || errno)
    return rt_error_set(err, "%s: bad '%s' in its metadata: '%.40s' (expected crc32: and 8 hex digits)", c->path,
                        RT_CKPT_CHECKSUM, v);
  uint32_t crc = 0;
  for (int i = 0; i < c->st.n_meta; i++)
    if (strcmp(c->st.meta_keys[i], RT_CKPT_CHECKSUM) != 0)
      crc = crc_str(crc_str(crc, c->st.meta_keys[i]), c->st.meta_values[i]);
  for (int i = 0; i < c->st.n; i++) crc = crc_shape(crc, c->st.tensors[i].name, c->st.tensors[i].rank, c->st.tensors[i].dims);
  crc = crc_floats(crc, c->st.blob, c->st.blob_size / 4);
  if (crc != stored)
    return rt_error_set(err, "%s: the checkpoint is damaged: its checksum is crc32:%08lx but its contents give "
                        "crc32:%08lx", c->path, stored, (unsigned long)crc);
  return 0;
}

/* The position and settings against each other: a crafted or damaged file
 * with a checksum to match must still not drive the run past its ranges. */
static int check_position(const RtCheckpoint *c, RtError *err) {
  const RtTrainPos *p = &c->pos;
  if (p->sample > c->train_samples)
    return rt_error_set(err, "%s: bad 'epoch_sample' in its metadata: %lld is past the %lld training samples", c->path,
                        (long long)p->sample, (long long)c->train_samples);
  /* every step trains at least one sample */
  if ((double)p->steps > (double)(p->epoch - 1) * (double)c->train_samples + (double)p->sample)
    return rt_error_set(err, "%s: bad 'step' in its metadata: %lld steps cannot have been taken by epoch %lld, "
                        "sample %lld of %lld", c->path, (long long)p->steps, (long long)p->epoch,
                        (long long)p->sample, (long long)c->train_samples);
  if (p->epoch > c->epochs + 1)
    return rt_error_set(err, "%s: bad 'epoch' in its metadata: %lld is past the run's %lld epochs", c->path,
                        (long long)p->epoch, (long long)c->epochs);
  if (c->max_steps > 0 && p->steps > c->max_steps)
    return rt_error_set(err, "%s: bad 'step' in its metadata: %lld is past the run's step limit %lld", c->path,
                        (long long)p->steps, (long long)c->max_steps);
  for (int i = 0; i < c->st.n_meta; i++) { /* hyper-parameters: as the f32 the kernels get */
    const char *k = c->st.meta_keys[i], *v = c->st.meta_values[i];
    if (strncmp(k, "hyper.", 6) != 0) continue;
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !isfinite((float)x))
      return rt_error_set(err, "%s: bad '%.60s' in its metadata: '%.40s' (expected a number that is finite in f32)",
                          c->path, k, v);
  }
  return 0;
}

static int parse_checkpoint(RtCheckpoint *c, RtError *err);

/* The validation fraction and early stopping's state: absent in a run
 * without them. */
static int parse_validation(RtCheckpoint *c, RtError *err) {
  RtEarlyStop *e = &c->early;
  if (rt_safetensors_metadata(&c->st, "validation") &&
      (meta_double(c, "validation", &c->validation, err) != 0 || !(c->validation > 0 && c->validation < 1)))
    return rt_error_set(err, "%s: bad 'validation' in its metadata (expected a fraction between 0 and 1)", c->path);
  if (!rt_safetensors_metadata(&c->st, "early_stop")) return 0;
  if (meta_int(c, "early_stop", 1, INT64_C(1) << 30, &e->patience, err) ||
      meta_int(c, "best_epoch", 0, c->pos.epoch - 1, &e->best_epoch, err) ||
      meta_double(c, "best_val_loss", &e->best_loss, err) ||
      meta_int(c, "best_step", 0, c->pos.steps, &e->best_step, err) ||
      meta_int(c, "bad_epochs", 0, e->patience, &e->bad_epochs, err))
    return -1;
  return 0;
}

int rt_checkpoint_load(const char *dir, RtCheckpoint *c, RtError *err) {
  memset(c, 0, sizeof *c);
  if (!rt_checkpoint_path(dir, c->path, sizeof c->path)) return rt_error_set(err, "%s: the path is too long", dir);
  if (access(c->path, F_OK) != 0) {
    char buf[128];
    return rt_error_set(err, "%s: no checkpoint to resume from: %s", c->path, rt_strerror(errno, buf, sizeof buf));
  }
  if (rt_safetensors_read(c->path, &c->st, err) != 0) return -1;
  return parse_checkpoint(c, err);
}

/* The metadata of the checkpoint read into c->st: format, checksum, position
 * and settings.  Frees c on error. */
static int parse_checkpoint(RtCheckpoint *c, RtError *err) {
  const char *format = rt_safetensors_metadata(&c->st, "format");
  int64_t seed = 0, shuffle = 0;
  int rc = 0;
  if (format && !strcmp(format, "nnc-checkpoint-1")) /* before checksums: refused, not trusted unchecked */
    rc = rt_error_set(err, "%s: a checkpoint of format 'nnc-checkpoint-1', written by an older nnc without a checksum; "
                      "this program reads '%s': resume it with the nnc that wrote it, or train again", c->path,
                      RT_CKPT_FORMAT);
  else if (!format || strcmp(format, RT_CKPT_FORMAT) != 0)
    rc = rt_error_set(err, "%s: not an nnc checkpoint (its metadata has format '%.40s', not '%s')", c->path,
                      format ? format : "", RT_CKPT_FORMAT);
  if (rc == 0) rc = check_sum(c, err);
  if (rc == 0 && !(c->model = rt_safetensors_metadata(&c->st, "model")))
    rc = rt_error_set(err, "%s: not an nnc checkpoint: no 'model' in its metadata", c->path);
  if (rc == 0)
    rc = meta_int(c, "step", 0, RT_CKPT_MAX_STEPS, &c->pos.steps, err) ||
                 meta_int(c, "epoch", 1, (INT64_C(1) << 30) + 1, &c->pos.epoch, err) ||
                 meta_int(c, "epoch_sample", 0, RT_CKPT_MAX_SAMPLES, &c->pos.sample, err) ||
                 meta_double(c, "epoch_loss_sum", &c->pos.loss_sum, err) ||
                 meta_int(c, "train_samples", 1, RT_CKPT_MAX_SAMPLES, &c->train_samples, err) ||
                 meta_int(c, "batch", 1, INT64_C(1) << 24, &c->batch, err) || /* the limits of --batch, --epochs */
                 meta_int(c, "epochs", 0, INT64_C(1) << 30, &c->epochs, err) ||
                 meta_int(c, "max_steps", 0, RT_CKPT_MAX_STEPS, &c->max_steps, err) ||
                 meta_int(c, "seed", 0, INT64_C(1) << 53, &seed, err) || meta_int(c, "shuffle", 0, 1, &shuffle, err)
             ? -1
             : 0;
  if (rc == 0) rc = check_position(c, err);
  if (rc == 0) rc = parse_validation(c, err);
  c->seed = (uint64_t)seed;
  c->shuffle = shuffle != 0;
  if (rc) rt_checkpoint_free(c);
  return rc;
}

void rt_checkpoint_free(RtCheckpoint *c) {
  rt_safetensors_free(&c->st);
  c->model = NULL;
}

int rt_weights_load(const char *path, RtCheckpoint *c, RtError *err) {
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return rt_checkpoint_load(path, c, err);
  memset(c, 0, sizeof *c);
  if (snprintf(c->path, sizeof c->path, "%s", path) >= (int)sizeof c->path)
    return rt_error_set(err, "%s: the path is too long", path);
  if (rt_safetensors_read(c->path, &c->st, err) != 0) return -1;
  const char *format = rt_safetensors_metadata(&c->st, "format");
  if (format && !strncmp(format, "nnc-checkpoint-", 15)) return parse_checkpoint(c, err); /* checksum and all */
  c->model = rt_safetensors_metadata(&c->st, "model"); /* a --save file: its tensors are checked on use */
  if (!c->model) c->model = "";
  return 0;
}

/* "[784, 64]" into buf. */
static const char *shape_text(int rank, const int64_t *dims, char *buf, size_t len) {
  size_t o = (size_t)snprintf(buf, len, "[");
  for (int d = 0; d < rank && o < len; d++) o += (size_t)snprintf(buf + o, len - o, "%s%lld", d ? ", " : "", (long long)dims[d]);
  if (o < len) snprintf(buf + o, len - o, "]");
  return buf;
}

/* The tensors of c against t[0 .. n): with `weights` (--load), states are
 * optional and the file's optimizer states ("NAME/SLOT") are ignored; else
 * the sets are equal.  `noun` names the file in messages. */
static int match_tensors(const RtCheckpoint *c, const char *noun, const char *model, const RtCkptTensor *t, int n,
                         bool weights, RtError *err) {
  for (int i = 0; i < n; i++) {
    int rank;
    const int64_t *dims;
    const char *what = t[i].state ? (weights ? "state" : "optimizer state") : "parameter";
    if (!rt_safetensors_find(&c->st, t[i].ref.name, &rank, &dims)) {
      if (weights && t[i].state) continue;
      return rt_error_set(err, "%s: %s has no %s '%.100s' (model '%.100s' has)", c->path, noun, what, t[i].ref.name,
                          model);
    }
    bool same = rank == t[i].ref.rank;
    for (int d = 0; same && d < rank; d++) same = dims[d] == t[i].ref.dims[d];
    if (!same) {
      char a[160], b[160];
      return rt_error_set(err, "%s: %s '%.100s' is %s in %s but %s in model '%.100s'", c->path, what, t[i].ref.name,
                          shape_text(rank, dims, a, sizeof a), noun,
                          shape_text(t[i].ref.rank, t[i].ref.dims, b, sizeof b), model);
    }
    /* A nan or inf was never saved (rt_checkpoint_write), so such a file is not a good one. */
    RtTensorRef r = t[i].ref;
    RtError why;
    r.data = rt_safetensors_find(&c->st, r.name, NULL, NULL);
    if (!t[i].i32 && rt_tensor_finite(&r, what, c->pos.steps, &why) != 0)
      return rt_error_set(err, "%s: %s", c->path, why.msg);
  }
  for (int k = 0; k < c->st.n; k++) {
    const char *name = c->st.tensors[k].name;
    bool known = weights && strchr(name, '/');
    if (!strncmp(name, "best/", 5) && !strchr(name + 5, '/')) name += 5; /* early stopping's copy of a tensor */
    for (int i = 0; i < n && !known; i++) known = strcmp(name, t[i].ref.name) == 0;
    if (!known)
      return rt_error_set(err, "%s: %s has a tensor '%.100s' that model '%.100s' does not have", c->path, noun,
                          c->st.tensors[k].name, model);
  }
  return 0;
}

int rt_checkpoint_match(const RtCheckpoint *c, const char *model, const RtCkptTensor *t, int n, RtError *err) {
  if (strcmp(c->model, model ? model : "") != 0)
    return rt_error_set(err, "%s: the checkpoint is of model '%.100s', not '%.100s'", c->path, c->model, model);
  return match_tensors(c, "the checkpoint", model, t, n, false, err);
}

int rt_weights_match(const RtCheckpoint *c, const char *model, const RtCkptTensor *t, int n, RtError *err) {
  return match_tensors(c, "the file", model, t, n, true, err);
}

bool rt_checkpoint_hyper(const RtCheckpoint *c, const char *name, double *value) {
  char key[160];
  snprintf(key, sizeof key, "hyper.%s", name);
  const char *v = rt_safetensors_metadata(&c->st, key);
  if (!v) return false;
  char *end;
  double x = strtod(v, &end);
  if (!*v || *end) return false;
  *value = x;
  return true;
}

const float *rt_checkpoint_tensor(const RtCheckpoint *c, const char *name) {
  return rt_safetensors_find(&c->st, name, NULL, NULL);
}

/* ---- signals ----------------------------------------------------------------------------- */

static volatile sig_atomic_t pending;

/* The first SIGINT or SIGTERM is noted; a second one kills as usual. */
static void on_signal(int sig) {
  if (pending) {
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  pending = sig;
}

void rt_signals_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

void rt_signals_restore(void) {
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
}

int rt_signal_pending(void) { return pending; }

void rt_signal_note(int sig) {
  if (!pending) pending = sig;
}

/* ---- the hook ---------------------------------------------------------------------------- */

/* The tensors a checkpoint holds: the model's, then the best epoch's. */
static RtCkptTensor *with_best(RtCheckpointer *k, int *n) {
  *n = k->ntensors + k->nbest;
  RtCkptTensor *all = malloc((size_t)(*n > 0 ? *n : 1) * sizeof *all);
  if (!all) return NULL;
  memcpy(all, k->tensors, (size_t)k->ntensors * sizeof *all);
  if (k->nbest) memcpy(all + k->ntensors, k->best, (size_t)k->nbest * sizeof *all);
  return all;
}

static bool save(RtCheckpointer *k, const RtTrainPos *pos) {
  RtError err;
  k->meta.pos = *pos;
  k->meta.early = k->early;
  int n = 0;
  RtCkptTensor *all = NULL;
  snprintf(err.msg, sizeof err.msg, "out of memory");
  bool ok = k->gather(k->self, k->tensors, k->ntensors, &err) == 0 && (all = with_best(k, &n)) != NULL &&
            rt_checkpoint_write(k->dir, &k->meta, all, n, &err) == 0;
  free(all);
  if (!ok) {
    fprintf(stderr, "%s: error: %s; the checkpoint was not written", k->prog, err.msg);
    if (k->last_good)
      fprintf(stderr, "; last good checkpoint: %s", k->last_good);
    else
      fprintf(stderr, " (there is no earlier one)");
    fprintf(stderr, "\n");
    return false;
  }
  k->saved_step = pos->steps;
  k->last_good = k->path;
  return true;
}

/* The tensors early stopping keeps (parameters and model states), named "best/NAME", without data yet. */
static bool best_alloc(RtCheckpointer *k, RtError *err) {
  if (k->best) return true;
  k->best = calloc((size_t)k->ntensors + 1, sizeof *k->best);
  if (!k->best) return rt_error_set(err, "out of memory keeping the best epoch's weights") == 0;
  for (int i = 0; i < k->ntensors; i++) {
    const RtCkptTensor *t = &k->tensors[i];
    if (strchr(t->ref.name, '/')) continue; /* an optimizer state */
    RtCkptTensor *b = &k->best[k->nbest++];
    *b = *t;
    size_t len = strlen(t->ref.name) + 6;
    char *name = malloc(len);
    float *data = malloc((size_t)(ref_numel(&t->ref) > 0 ? ref_numel(&t->ref) : 1) * sizeof(float));
    b->ref.name = name, b->ref.data = data;
    if (!name || !data) return rt_error_set(err, "out of memory keeping the best epoch's weights") == 0;
    snprintf(name, len, "best/%s", t->ref.name);
  }
  return true;
}

/* The model's current tensors as the best epoch's. */
static bool keep_best(RtCheckpointer *k, RtError *err) {
  if (!best_alloc(k, err) || k->gather(k->self, k->tensors, k->ntensors, err) != 0) return false;
  for (int i = 0; i < k->nbest; i++)
    for (int j = 0; j < k->ntensors; j++)
      if (!strcmp(k->best[i].ref.name + 5, k->tensors[j].ref.name))
        memcpy((float *)k->best[i].ref.data, k->tensors[j].ref.data, (size_t)ref_numel(&k->best[i].ref) * sizeof(float));
  return true;
}

bool rt_checkpoint_resume_best(RtCheckpointer *k, const RtCheckpoint *c, RtError *err) {
  if (c->early.best_epoch == 0) return true;
  if (!best_alloc(k, err)) return false;
  for (int i = 0; i < k->nbest; i++) {
    const float *v = rt_checkpoint_tensor(c, k->best[i].ref.name);
    if (!v)
      return rt_error_set(err, "%s: the checkpoint has early stopping's best epoch %lld but no tensor '%.100s'",
                          c->path, (long long)c->early.best_epoch, k->best[i].ref.name) == 0;
    memcpy((float *)k->best[i].ref.data, v, (size_t)ref_numel(&k->best[i].ref) * sizeof(float));
  }
  return true;
}

bool rt_checkpoint_restore_best(RtCheckpointer *k, RtError *err) {
  if (!k->best || !k->early || k->early->best_epoch == 0) return true;
  RtCkptTensor *t = malloc((size_t)(k->nbest > 0 ? k->nbest : 1) * sizeof *t);
  if (!t) return rt_error_set(err, "out of memory") == 0;
  memcpy(t, k->best, (size_t)k->nbest * sizeof *t);
  for (int i = 0; i < k->nbest; i++) t[i].ref.name += 5; /* "best/NAME": NAME */
  bool ok = k->scatter(k->self, t, k->nbest, err) == 0;
  free(t);
  return ok;
}

void rt_checkpointer_free(RtCheckpointer *k) {
  for (int i = 0; k->best && i < k->nbest; i++) {
    free((char *)k->best[i].ref.name);
    free((float *)k->best[i].ref.data);
  }
  free(k->best);
  k->best = NULL, k->nbest = 0;
}

int rt_checkpoint_hook(void *self, const RtTrainPos *pos, RtTrainEvent event) {
  RtCheckpointer *k = self;
  if (event == RT_TRAIN_BEST) {
    RtError err;
    if (keep_best(k, &err)) return 0;
    fprintf(stderr, "%s: error: %s\n", k->prog, err.msg);
    return 1;
  }
  int sig = rt_signal_pending();
  bool due = k->dir && pos->steps != k->saved_step &&
             (sig || event == RT_TRAIN_END || (event == RT_TRAIN_STEP && k->every > 0 && pos->steps % k->every == 0) ||
              (event == RT_TRAIN_EPOCH && k->every == 0));
  if (due && !save(k, pos)) return 1;
  if (!sig) return 0;
  fprintf(stderr, "%s: interrupted by %s after step %lld (epoch %lld, %lld samples into it); ", k->prog,
          sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal", (long long)pos->steps,
          (long long)pos->epoch, (long long)pos->sample);
  if (k->dir) /* the same directory again, so the resumed run goes on saving there */
    fprintf(stderr, "resume with --resume %s --checkpoint %s\n", k->dir, k->dir);
  else if (rt_comm_rank() > 0)
    fprintf(stderr, "rank 0 saves the checkpoint\n");
  else
    fprintf(stderr, "no --checkpoint given, nothing saved\n");
  fflush(stderr);
  return 128 + sig;
}

int rt_model_tensors(const RtModelDesc *m, RtCkptTensor *t, int *bufs) {
  int n = 0;
  for (int i = 0; i < m->nbufs; i++) {
    const RtBufDesc *b = &m->bufs[i];
    if (b->kind != RT_BUF_PARAM && b->kind != RT_BUF_STATE) continue;
    memset(&t[n], 0, sizeof t[n]);
    t[n].ref.name = b->name;
    t[n].ref.rank = b->rank;
    memcpy(t[n].ref.dims, b->dims, sizeof t[n].ref.dims);
    t[n].i32 = b->dtype == 1;
    t[n].state = b->kind == RT_BUF_STATE;
    bufs[n++] = i;
  }
  return n;
}
