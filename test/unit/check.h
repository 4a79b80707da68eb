/* test/unit/check.h - the one harness of the C unit tests (one test = one
 * .c file = one executable = one ctest test).
 *
 *   CHECK(cond)                 one check; on failure prints
 *   CHECK(cond, "fmt", ...)       FAIL file:line: cond: message
 *   CHECK_STR(got, want)        two strings are equal; on failure both, whole
 *   check_note("fmt", ...)      a part that cannot run here (no libdevice, no
 *                               OpenCL device for one section): says so, the
 *                               rest of the test still decides
 *   check_skip("fmt", ...)      what the test is for cannot run here (no CUDA
 *                               GPU, no OpenCL platform): says why, and the
 *                               test ends as skipped unless a check failed
 *   return check_done();        the summary line, "test_x: 12 checks, 0 failed"
 *                               (with "; skipped: why"); exit status 1 after
 *                               a failure, CHECK_SKIPPED (77) when skipped,
 *                               else 0
 *
 * ctest reports status 77 as skipped (SKIP_RETURN_CODE, test/CMakeLists.txt),
 * never as passed.  `checks` and `failures` are the counters, for the few
 * helpers that check in a loop of their own.  Everything goes to stdout.
 */
#ifndef NNC_TEST_CHECK_H
#define NNC_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { CHECK_SKIPPED = 77 };

static int checks, failures;
static char check_skip_why[256]; /* "" = not skipped */

/* `fmt` is ": " followed by the caller's format, so that a CHECK without a
 * message is no empty format. */
static inline void check_failed(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline void check_failed(const char *file, int line, const char *cond, const char *fmt, ...) {
  failures++;
  printf("FAIL %s:%d: %s", file, line, cond);
  if (fmt[2]) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
  }
  putchar('\n');
  fflush(stdout);
}

#define CHECK(cond, ...)                                                         \
  do {                                                                           \
    checks++;                                                                    \
    if (!(cond)) check_failed(__FILE__, __LINE__, #cond, ": " __VA_ARGS__);      \
  } while (0)

#define CHECK_STR(got, want)                                                     \
  do {                                                                           \
    const char *got_ = (got), *want_ = (want);                                   \
    checks++;                                                                    \
    if (strcmp(got_, want_) != 0)                                                \
      check_failed(__FILE__, __LINE__, #got " == " #want,                        \
                   ": \n--- got:\n%s\n--- want:\n%s\n---", got_, want_);         \
  } while (0)

static inline void check_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void check_note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("note: ");
  vprintf(fmt, ap);
  putchar('\n');
  va_end(ap);
}

static inline void check_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void check_skip(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(check_skip_why, sizeof check_skip_why, fmt, ap);
  va_end(ap);
  if (!check_skip_why[0]) snprintf(check_skip_why, sizeof check_skip_why, "(no reason given)");
  printf("skipped: %s\n", check_skip_why);
}

/* The test's name: its file's, without the directory and ".c". */
static inline int check_done_in(const char *file) {
  const char *name = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
  int len = (int)strcspn(name, ".");
  printf("%.*s: %d checks, %d failed%s%s\n", len, name, checks, failures, check_skip_why[0] ? "; skipped: " : "",
         check_skip_why);
  fflush(stdout);
  return failures ? 1 : check_skip_why[0] ? CHECK_SKIPPED : 0;
}
#define check_done() check_done_in(__FILE__)

#endif
