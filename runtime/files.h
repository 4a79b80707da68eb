/* runtime/files.h - the files a run reads and writes (files.c): inputs
 * opened without ever blocking, output paths checked before training, and
 * the standard descriptors kept open.  Internal to libnnrt (nnc's --run
 * uses it too).
 */
#ifndef NNRT_FILES_H
#define NNRT_FILES_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>

#include "data.h" /* RtError */

/* Opens fds 0, 1 and 2 on /dev/null where they are closed, so that no file
 * the run opens later becomes its stdout or stderr.  Call it first. */
void rt_std_fds_open(void);

/* Opens path for reading: O_NONBLOCK, then fstat, so a FIFO, device,
 * socket or directory is refused at once ("PATH: not a regular file (a
 * fifo)", "PATH: is a directory") and never blocks.  st (may be NULL)
 * receives the file's status.  NULL with err set on failure. */
FILE *rt_open_regular(const char *path, struct stat *st, RtError *err);

/* A regular file read whole into *buf (NUL-terminated, *len bytes) that
 * the caller frees: at most cap bytes, also when it grows while being
 * read ("PATH: file is larger than the 2 GiB limit for KIND"), and within
 * max_bytes (0 = no limit; rt_data_budget's message names `what`).
 * Returns 0, or -1 with err set. */
int rt_read_whole(const char *path, size_t cap, const char *kind, const char *what, int64_t max_bytes, char **buf,
                  size_t *len, RtError *err);

/* "is a directory" or "not a regular file (a fifo)" for a mode, into buf. */
const char *rt_not_regular(mode_t mode, char *buf, size_t len);

typedef enum {
  RT_PATH_REPLACE, /* written to a temporary file and renamed over the path (--save, a checkpoint) */
  RT_PATH_WRITE,   /* opened and written in place (--metrics) */
  RT_PATH_KEEP,    /* read by the run: no output may be this file (--resume's checkpoint, CSV data) */
} RtPathKind;

typedef struct RtPathCheck {
  const char *what;        /* "--save", for messages */
  const char *path;        /* NULL = not given (skipped) */
  RtPathKind kind;
} RtPathCheck;

/* Before training: each output is a file name (not empty, not a
 * directory; a replaced one is a regular file when it exists) in a
 * directory the run may write, and no output is the same file as another
 * path of the list (device and inode when both exist, else the resolved
 * names).  Returns 0, or -1 with err naming the option and the path. */
int rt_check_paths(const RtPathCheck *p, int n, RtError *err);

/* Whether a and b name one file: device and inode when both exist, else
 * their resolved names. */
bool rt_same_file(const char *a, const char *b);

/* The paths of a training run (NULL = not given). */
typedef struct RtRunPaths {
  const char *save, *metrics;      /* --save FILE, --metrics FILE */
  const char *checkpoint, *resume; /* --checkpoint DIR, --resume DIR (their checkpoint files are compared) */
  const char *data, *test;         /* CSV data files, which no output may overwrite */
  const char *other, *other_what;  /* one more output written in place (--save-cl-binary) */
  const char *output;              /* --output FILE.csv of --predict (replaced whole) */
  const char *load, *predict;      /* --load FILE, --predict PATH: read, never written */
  const char *plot;                /* --plot FILE.svg (replaced after every epoch) */
} RtRunPaths;

/* rt_check_paths over a run's paths: checked before anything trains, by
 * the trainer and by nnc --run alike. */
int rt_check_run_paths(const RtRunPaths *r, RtError *err);

/* A file replaced whole: written to PATH.tmp.PID, made durable, then
 * renamed over PATH, so readers see the old file or the new one, never a
 * partial one.  rt_replace_open returns the stream (NULL with err set);
 * rt_replace_commit closes it and, when ok and every write succeeded,
 * renames it into place (else removes it): 0, or -1 with err set. */
typedef struct RtReplace {
  const char *path;
  char *tmp;
  FILE *f;
} RtReplace;
int rt_replace_open(RtReplace *r, const char *path, RtError *err);
int rt_replace_commit(RtReplace *r, bool ok, RtError *err);

#endif
