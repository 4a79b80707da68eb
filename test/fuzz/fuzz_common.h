/* test/fuzz/fuzz_common.h - what every nnc fuzz target shares: a private
 * scratch directory, and writing an input into it, for the few calls that
 * take only a path (the checkpoint reader; the data readers are fuzzed in
 * memory). */
#ifndef NNC_FUZZ_COMMON_H
#define NNC_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A directory of our own under $TMPDIR (removed at exit). */
static char fuzz_dir[256];

__attribute__((unused)) static void fuzz_cleanup(void) {
  char cmd[300];
  if (!fuzz_dir[0]) return;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir);
  if (system(cmd) != 0) fprintf(stderr, "fuzz: cannot remove %s\n", fuzz_dir);
}

__attribute__((unused)) static void fuzz_make_dir(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(fuzz_dir, sizeof fuzz_dir, "%s/nnc-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(fuzz_dir)) {
    perror("fuzz: mkdtemp");
    abort();
  }
  atexit(fuzz_cleanup);
}

/* fuzz_dir/name, holding data[0 .. size). */
__attribute__((unused)) static const char *fuzz_write(const char *name, const void *data, size_t size) {
  static char path[8][512];
  static int k;
  k = (k + 1) % 8;
  snprintf(path[k], sizeof path[k], "%s/%s", fuzz_dir, name);
  FILE *f = fopen(path[k], "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
    perror(path[k]);
    abort();
  }
  return path[k];
}

#endif
