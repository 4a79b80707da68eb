/* runtime/error.c - the runtime's error helpers (data.h): an RtError's
 * message, a message on stderr, and strerror in the messages' style.  Their own file so that
 * code reading weights (the inference library, infer.c) pulls in no data
 * loader, and so no zlib.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "data.h"

int rt_error_set(RtError *err, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return -1;
}

void rt_print_error(const char *prog, const char *fmt, ...) {
  fprintf(stderr, "%s%serror: ", prog ? prog : "", prog ? ": " : "");
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

const char *rt_strerror(int errnum, char *buf, size_t size) {
  snprintf(buf, size, "%s", strerror(errnum));
  if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z')) buf[0] = (char)(buf[0] - 'A' + 'a');
  return buf;
}
