/* test/fuzz/fuzz_nnir.c - the graph IR text reader (ir/read.c): any input
 * is read back as a module or refused with diagnostics; a module it
 * accepts must pass the verifier (the reader promises verified IR) and
 * print without crashing. */
#include "fuzz_common.h"

#include "support/diag.h"
#include "ir/ir.h"

static void die(int status) {
  fprintf(stderr, "fuzz_nnir: the compiler exited with status %d\n", status);
  abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  nnc_exit_hook = die;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  diag_init(&nnc_diag);
  nnc_diag.verify = true;
  nnc_diag.error_limit = 50;
  uint32_t fid = diag_add_file(&nnc_diag, "fuzz.nnir", (const char *)data, size);
  Module *m = ir_read(fid);
  if (m) {
    FILE *null = fopen("/dev/null", "w");
    if (null) {
      ir_print(m, null);
      fclose(null);
    }
    ir_module_free(m);
  }
  diag_free(&nnc_diag);
  return 0;
}
