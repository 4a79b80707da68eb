/* support/diag.h - source files and diagnostics.
 *
 * Every error in user input goes through here and prints as
 *
 *     mlp.nn:12:17: error: matmul shapes do not match: [784] @ [512,10]
 *         h = x @ w1
 *               ^
 *
 * followed by notes.  Messages are lower-case with no final period.  The
 * engine counts errors, stops the run (exit 1) past an error limit, and in
 * verify mode (`nnc --verify`) collects diagnostics instead of printing them
 * and checks them against `# expected-error {{text}}` comments in the source.
 * Source files are registered here so that locations (file id, line, col) can
 * be printed with their source line anywhere in the compiler.
 */
#ifndef NNC_DIAG_H
#define NNC_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct SrcLoc {
  uint32_t file; /* index into the engine's files; 0 = no location */
  uint32_t line; /* 1-based */
  uint32_t col;  /* 1-based, in bytes */
} SrcLoc;

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

typedef struct SourceFile {
  char *path; /* as shown in diagnostics */
  char *text; /* whole contents, NUL-terminated (may contain NULs too) */
  size_t len;
  bool on_disk;      /* read by diag_load_file: dev and ino are set */
  uint64_t dev, ino; /* the file's identity, to refuse writing output onto it */
} SourceFile;

typedef struct Diagnostic {
  DiagLevel level;
  SrcLoc loc;
  char *msg;
} Diagnostic;

typedef struct DiagEngine {
  SourceFile *files; /* files[0] is a placeholder for "no file" */
  uint32_t nfiles, capfiles;
  int errors;
  int error_limit;     /* stop after this many errors (0 = no limit) */
  bool color;          /* ANSI colours on stderr */
  bool verify;         /* collect instead of print (see diag_verify) */
  bool suppress_notes; /* set after an error is dropped, so its notes go too */
  Diagnostic *collected;
  uint32_t ncollected, capcollected;
} DiagEngine;

/* The process-wide engine: the compiler reports through it. */
extern DiagEngine nnc_diag;

void diag_init(DiagEngine *d);
/* Frees every file and collected diagnostic and zeroes d (diag_init it
 * again to reuse it: fuzz harnesses do, once per input). */
void diag_free(DiagEngine *d);
/* Registers a file's contents (copied).  Returns its id for SrcLoc.file. */
uint32_t diag_add_file(DiagEngine *d, const char *path, const char *text, size_t len);
/* Reads and registers a regular file (a FIFO, a device or a directory is
 * refused without blocking); returns 0 and sets *err_out (static text) on
 * failure. */
uint32_t diag_load_file(DiagEngine *d, const char *path, const char **err_out);
/* The file read by diag_load_file that path names (the same device and
 * inode: through links too), or NULL. */
const SourceFile *diag_is_input(const DiagEngine *d, const char *path);
const SourceFile *diag_file(const DiagEngine *d, uint32_t id);

void diag_error(SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_warning(SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_note(SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An error with no source location: "nnc: error: ...". */
void diag_error_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int diag_error_count(void);

/* Verify mode: compares collected diagnostics with the `expected-error
 * {{...}}`, `expected-warning` and `expected-note` comments of every
 * registered file (`expected-error@+1 {{...}}` for a line below, `@-1`
 * above).  Prints mismatches; returns true when everything matched. */
bool diag_verify(DiagEngine *d);

/* Quotes a source text for messages: control bytes and non-UTF-8 escaped,
 * long texts shortened with "...".  Returns a static rotating buffer. */
const char *diag_quote(const char *s, size_t len);

#endif
