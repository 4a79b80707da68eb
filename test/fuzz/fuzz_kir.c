/* test/fuzz/fuzz_kir.c - the kernel IR text reader (ir/kernel_read.c): any
 * input is read as a program or refused with diagnostics.  A program it
 * accepts has passed the kernel verifier (the reader runs it); it must
 * print, read back from its text to the same text, and go through every
 * kernel pass of the table (passes/kernel_pipeline.c) with the verifier
 * after each, as `nnc FILE.kir --kernel-passes=...` runs them. */
#include "fuzz_common.h"

#include "ir/kernel.h"
#include "passes/pass.h"
#include "support/diag.h"

static void die(int status) {
  fprintf(stderr, "fuzz_kir: the compiler exited with status %d\n", status);
  abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  nnc_exit_hook = die;
  return 0;
}

static char *print_text(const KProgram *p, size_t *len) {
  char *text = NULL;
  FILE *f = open_memstream(&text, len);
  if (!f) abort();
  kprog_print(p, f);
  fclose(f);
  return text;
}

/* Print, read the text back, print again: the same bytes. */
static void round_trip(const KProgram *p) {
  size_t len = 0, len2 = 0;
  char *text = print_text(p, &len);
  Module *m = NULL;
  KProgram *q = kprog_read(diag_add_file(&nnc_diag, "printed.kir", text, len), &m);
  if (!q) {
    fprintf(stderr, "fuzz_kir: a program the reader accepted does not read back from its text:\n%s", text);
    abort();
  }
  char *again = print_text(q, &len2);
  if (len != len2 || memcmp(text, again, len)) {
    fprintf(stderr, "fuzz_kir: a program prints differently after reading back:\n%s\n---\n%s", text, again);
    abort();
  }
  free(again);
  free(text);
  kprog_free(q);
  ir_module_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  diag_init(&nnc_diag);
  nnc_diag.verify = true;
  nnc_diag.error_limit = 50;
  Module *m = NULL;
  KProgram *p = kprog_read(diag_add_file(&nnc_diag, "fuzz.kir", (const char *)data, size), &m);
  if (p) {
    round_trip(p);
    KPassOptions o = {false, 32, {16, 32, NULL}, {32, 32768, 16}};
    for (const KPass *k = nnc_kernel_passes; k->name; k++) {
      if (!k->run(p, &o)) continue; /* a user error (fuse's plan), reported */
      if (!kprog_verify(p)) {
        fprintf(stderr, "fuzz_kir: the kernel IR is invalid after %s\n", k->name);
        abort();
      }
    }
    round_trip(p);
    kprog_free(p);
    ir_module_free(m);
  }
  diag_free(&nnc_diag);
  return 0;
}
