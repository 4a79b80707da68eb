/* test/fuzz/fuzz_nn.c - the .nn frontend: lexer, parser, elaboration
 * (imports, the stdlib prelude, shapes, the train block) and the graph IR
 * verifier on any input.
 *
 * Diagnostics are collected (verify mode: nothing printed) and freed after
 * every input; the error limit only stops collecting.  nnc_exit_hook turns
 * the compiler's exits (out of memory, internal errors) into abort(), so
 * libFuzzer reports them.  The stdlib comes from NNC_FUZZ_STDLIB (set by
 * CMake to the source tree's stdlib/); NNC_STDLIB overrides it.
 *
 * The prelude (stdlib/nn.nn) is read and parsed once, in
 * LLVMFuzzerInitialize (elab_parse_prelude), and every input is elaborated
 * against that one syntax tree (elaborate_with_prelude), as nnc elaborates
 * against the one it parses itself: elaboration never writes to the tree.
 * Each input re-registers the prelude's text first, so its file keeps its
 * diagnostics id.  Every FUZZ_NN_CHECK_EVERY inputs the tree is printed
 * (ast_print) and compared with its print at start-up, to catch a write
 * all the same; every FUZZ_NN_CHECK_EVERY_ACCEPTED-th input that
 * elaborates is elaborated again the way nnc does it (elaborate(), reading
 * and parsing the prelude), which must print the same IR.
 */
#include "fuzz_common.h"

#include "frontend/ast.h"
#include "support/diag.h"
#include "frontend/elab.h"
#include "ir/ir.h"

#define FUZZ_NN_CHECK_EVERY 4096
#define FUZZ_NN_CHECK_EVERY_ACCEPTED 64

static const char *stdlib_dir;
static Arena prelude_arena;
static ElabPrelude prelude;
static char *prelude_text;
static size_t prelude_len;
static char *prelude_dump; /* ast_print of the prelude at start-up */

static void die(int status) {
  fprintf(stderr, "fuzz_nn: the compiler exited with status %d\n", status);
  abort();
}

/* The prelude's syntax tree as text (malloc'd). */
static char *dump_prelude(void) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) abort();
  ast_print(prelude.program, f);
  if (fclose(f) != 0 || !buf) abort();
  return buf;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  nnc_exit_hook = die;
  stdlib_dir = getenv("NNC_STDLIB");
#ifdef NNC_FUZZ_STDLIB
  if (!stdlib_dir || !*stdlib_dir) stdlib_dir = NNC_FUZZ_STDLIB;
#endif
  if (!stdlib_dir || !*stdlib_dir) return 0; /* no prelude */
  diag_init(&nnc_diag);
  nnc_diag.verify = true;
  if (!elab_parse_prelude(stdlib_dir, &prelude_arena, &prelude)) {
    fprintf(stderr, "fuzz_nn: cannot parse the stdlib prelude in %s\n", stdlib_dir);
    abort();
  }
  const SourceFile *f = diag_file(&nnc_diag, prelude.program->file);
  prelude_len = f->len;
  prelude_text = malloc(prelude_len + 1);
  if (!prelude_text) abort();
  memcpy(prelude_text, f->text, prelude_len + 1);
  prelude_dump = dump_prelude();
  diag_free(&nnc_diag);
  return 0;
}

/* ir_print of m as text (malloc'd). */
static char *print_module(Module *m) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) abort();
  ir_print(m, f);
  if (fclose(f) != 0 || !buf) abort();
  return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static unsigned long inputs, accepted;
  diag_init(&nnc_diag);
  nnc_diag.verify = true;    /* collect, do not print */
  nnc_diag.error_limit = 50; /* stops collecting; never exits in verify mode */
  if (prelude.program &&
      diag_add_file(&nnc_diag, "stdlib/nn.nn", prelude_text, prelude_len) != prelude.program->file) {
    fprintf(stderr, "fuzz_nn: the prelude's file id moved\n");
    abort();
  }
  uint32_t fid = diag_add_file(&nnc_diag, "fuzz.nn", (const char *)data, size);
  Arena arena = {0};
  Program *p = parse_file(&arena, fid);
  if (p && diag_error_count() == 0) {
    ElabOptions eo = {NULL, stdlib_dir};
    Module *m = elaborate_with_prelude(p, &arena, &eo, prelude.program ? &prelude : NULL);
    if (m && !ir_verify(m, "elaborate")) {
      fprintf(stderr, "fuzz_nn: elaborate produced invalid IR without an error\n");
      abort();
    }
    if (m && prelude.program && ++accepted % FUZZ_NN_CHECK_EVERY_ACCEPTED == 0) {
      /* Now the way nnc does it (reading and parsing the prelude): the same IR. */
      Module *again = elaborate(p, &arena, &eo);
      char *a = print_module(m), *b = again ? print_module(again) : NULL;
      if (!b || strcmp(a, b) != 0) {
        fprintf(stderr, "fuzz_nn: elaborating with the parsed prelude gives other IR than without\n");
        abort();
      }
      free(a);
      free(b);
      ir_module_free(again);
    }
    if (m) ir_module_free(m);
  }
  arena_free(&arena);
  diag_free(&nnc_diag);
  if (prelude.program && ++inputs % FUZZ_NN_CHECK_EVERY == 0) {
    char *now = dump_prelude();
    if (strcmp(now, prelude_dump) != 0) {
      fprintf(stderr, "fuzz_nn: elaboration changed the prelude's syntax tree\n");
      abort();
    }
    free(now);
  }
  return 0;
}
