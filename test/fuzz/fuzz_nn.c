/* test/fuzz/fuzz_nn.c - the .nn frontend: lexer, parser, elaboration
 * (imports, the stdlib prelude, shapes, the train block) and the graph IR
 * verifier on any input.
 *
 * Diagnostics are collected (verify mode: nothing printed) and freed after
 * every input; the error limit only stops collecting.  nnc_exit_hook turns
 * the compiler's exits (out of memory, internal errors) into abort(), so
 * libFuzzer reports them.  The stdlib comes from NNC_FUZZ_STDLIB (set by
 * CMake to the source tree's stdlib/); NNC_STDLIB overrides it.
 */
#include "fuzz_common.h"

#include "frontend/ast.h"
#include "frontend/diag.h"
#include "frontend/elab.h"
#include "ir/ir.h"

static const char *stdlib_dir;

static void die(int status) {
  fprintf(stderr, "fuzz_nn: the compiler exited with status %d\n", status);
  abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  nnc_exit_hook = die;
  stdlib_dir = getenv("NNC_STDLIB");
#ifdef NNC_FUZZ_STDLIB
  if (!stdlib_dir || !*stdlib_dir) stdlib_dir = NNC_FUZZ_STDLIB;
#endif
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  diag_init(&nnc_diag);
  nnc_diag.verify = true;    /* collect, do not print */
  nnc_diag.error_limit = 50; /* stops collecting; never exits in verify mode */
  uint32_t fid = diag_add_file(&nnc_diag, "fuzz.nn", (const char *)data, size);
  Arena arena = {0};
  Program *p = parse_file(&arena, fid);
  if (p && diag_error_count() == 0) {
    ElabOptions eo = {NULL, stdlib_dir};
    Module *m = elaborate(p, &arena, &eo);
    if (m && !ir_verify(m, "elaborate")) {
      fprintf(stderr, "fuzz_nn: elaborate produced invalid IR without an error\n");
      abort();
    }
    if (m) ir_module_free(m);
  }
  arena_free(&arena);
  diag_free(&nnc_diag);
  return 0;
}
