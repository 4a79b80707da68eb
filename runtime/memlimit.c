/* runtime/memlimit.c - memory sizes (see memlimit.h). */
#include "memlimit.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int64_t rt_phys_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || size <= 0) return 0;
  if ((double)pages * (double)size >= 9.2e18) return INT64_MAX;
  return (int64_t)pages * size;
}

const char *rt_format_bytes(double bytes, char *buf, size_t len) {
  static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) bytes /= 1024, u++;
  if (u == 0)
    snprintf(buf, len, "%.0f bytes", bytes);
  else
    snprintf(buf, len, bytes >= 99.95 ? "%.0f %s" : "%.3g %s", bytes, units[u]);
  return buf;
}

int rt_parse_bytes(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  if (!s || !*s || isspace((unsigned char)*s) || *s == '-' || *s == '+') return -1;
  double v = strtod(s, &end);
  if (errno || end == s || !isfinite(v) || v <= 0) return -1;
  double scale = 1;
  const char *sfx = "KMGTP";
  const char *p = *end ? strchr(sfx, toupper((unsigned char)*end)) : NULL;
  if (p && *end) {
    for (const char *q = sfx; q <= p; q++) scale *= 1024;
    end++;
    if (*end == 'i' || *end == 'I') end++;
    if (*end == 'B' || *end == 'b') end++;
  } else if (*end == 'B' || *end == 'b') {
    end++;
  }
  if (*end) return -1;
  v *= scale;
  if (v < 1 || v >= 9.2e18) return -1;
  *out = (int64_t)v;
  return 0;
}
