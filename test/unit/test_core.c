/* test/unit/test_core.c - unit tests of the core data structures: arenas,
 * vectors, the name hash table, the diagnostics engine (counting, verify
 * mode, quoting) and the type helpers (broadcasting, printing, element
 * counts). */
#include "support/diag.h"
#include "support/arena.h"
#include "ir/ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static void test_arena(void) {
  Arena a = {0};
  char *s = arena_strdup(&a, "hello");
  CHECK(!strcmp(s, "hello"));
  /* Many small and some huge allocations: all aligned, zeroed, distinct. */
  void *prev = NULL;
  for (int i = 0; i < 10000; i++) {
    unsigned char *p = arena_alloc(&a, (size_t)(i % 97) + 1);
    CHECK(((uintptr_t)p & 15) == 0);
    CHECK(p[0] == 0);
    CHECK(p != prev);
    p[0] = 0xAB;
    prev = p;
  }
  unsigned char *big = arena_alloc(&a, 1 << 20);
  CHECK(big[(1 << 20) - 1] == 0);
  CHECK(!strcmp(s, "hello"));
  char *f = arena_printf(&a, "%s-%d", "x", 42);
  CHECK(!strcmp(f, "x-42"));
  CHECK(a.total >= (1 << 20));
  arena_free(&a);
  CHECK(a.head == NULL && a.total == 0);
}

static void test_vec(void) {
  int *v = NULL;
  uint32_t n = 0, cap = 0;
  for (int i = 0; i < 100000; i++) VEC_PUSH(v, n, cap, i);
  CHECK(n == 100000 && cap >= n);
  long sum = 0;
  for (uint32_t i = 0; i < n; i++) sum += v[i];
  CHECK(sum == 100000L * 99999 / 2);
  free(v);
}

/* The name table: tags keep kinds apart, add keeps the first value, set
 * replaces it, and a lookup visits a few slots however big the table is. */
static void test_strmap(void) {
  enum { N = 200000 };
  Arena a = {0};
  StrMap m = {0};
  char **names = malloc(N * sizeof *names);
  bool added = true;
  for (uint32_t i = 0; i < N; i++) {
    names[i] = arena_printf(&a, "h%u.w", i);
    added &= strmap_add(&m, names[i], i % 3, i);
  }
  CHECK(added && m.n == N);
  CHECK(!strmap_add(&m, "h7.w", 7 % 3, 99));
  long lookups = strmap_lookups, probes = strmap_probes;
  uint32_t v = 0;
  bool all = true;
  for (uint32_t i = 0; i < N; i++) all &= strmap_get(&m, names[i], i % 3, &v) && v == i;
  CHECK(all);
  CHECK(strmap_lookups - lookups == N);
  CHECK(strmap_probes - probes <= 3L * N); /* a linear scan would be N*N/2 */
  CHECK(!strmap_get(&m, "h7.w", (7 + 1) % 3, &v)); /* another kind */
  CHECK(!strmap_get(&m, "h7", 7 % 3, &v));
  strmap_set(&m, "h7.w", 7 % 3, 5);
  CHECK(strmap_get(&m, "h7.w", 7 % 3, &v) && v == 5 && m.n == N);
  strmap_free(&m);
  CHECK(!strmap_get(&m, "h7.w", 7 % 3, &v));
  free(names);
  arena_free(&a);
}

static void test_diag(void) {
  diag_init(&nnc_diag);
  nnc_diag.verify = true;
  const char *text = "a = 1 # expected-error {{bad thing}}\n"
                     "# expected-error@+1 {{next line}}\n"
                     "b = 2\n";
  uint32_t f = diag_add_file(&nnc_diag, "t.nn", text, strlen(text));
  CHECK(f == 1);
  CHECK(!strcmp(diag_file(&nnc_diag, f)->path, "t.nn"));
  diag_error((SrcLoc){f, 1, 3}, "a bad thing happened");
  diag_error((SrcLoc){f, 3, 1}, "on the next line");
  diag_note((SrcLoc){f, 3, 1}, "notes are only checked when expected");
  CHECK(diag_error_count() == 2);
  CHECK(diag_verify(&nnc_diag));
  /* An unexpected error fails verification. */
  diag_error((SrcLoc){f, 2, 1}, "surprise");
  fprintf(stderr, "(one 'unexpected error' line below is expected)\n");
  CHECK(!diag_verify(&nnc_diag));

  /* Quoting: control bytes and invalid UTF-8 are escaped, long texts shortened. */
  CHECK(!strcmp(diag_quote("a\xff", 2), "a\\xff"));
  CHECK(!strcmp(diag_quote("\xc3\xa9", 2), "\xc3\xa9"));
  char big[5000];
  memset(big, 'x', sizeof big);
  const char *q = diag_quote(big, sizeof big);
  CHECK(strlen(q) < 100 && strstr(q, "(5000 bytes)"));
}

static void test_types(void) {
  int64_t d1[] = {3, 1}, d2[] = {4};
  Type a = type_make(DT_F32, 2, d1, true), b = type_make(DT_F32, 1, d2, false), c;
  CHECK(shape_broadcast(&a, &b, &c));
  CHECK(c.rank == 2 && c.dims[0] == 3 && c.dims[1] == 4 && c.batched);
  int64_t d3[] = {5};
  Type e = type_make(DT_F32, 1, d3, false);
  CHECK(!shape_broadcast(&b, &e, &c));
  char buf[64];
  CHECK(!strcmp(type_str(&a, buf, sizeof buf), "f32[B,3,1]"));
  CHECK(!strcmp(type_str(&b, buf, sizeof buf), "f32[4]"));
  Type s = type_scalar(DT_I32);
  CHECK(!strcmp(type_str(&s, buf, sizeof buf), "i32"));
  s.batched = true;
  CHECK(!strcmp(type_str(&s, buf, sizeof buf), "i32[B]"));
  CHECK(!strcmp(shape_str(&a, buf, sizeof buf), "[3,1]"));
  CHECK(type_numel(&a) == 3 && type_numel(&s) == 1);
  CHECK(!type_equal(&a, &b) && type_equal(&a, &a));
}

static void test_builder(void) {
  Module *m = ir_module_new();
  int64_t dx[] = {784}, dw[] = {784, 64};
  Symbol x = {.kind = SYM_INPUT, .name = "x", .type = type_make(DT_F32, 1, dx, true)};
  Symbol w = {.kind = SYM_PARAM, .name = "h.w", .type = type_make(DT_F32, 2, dw, false),
              .init = {INIT_GLOROT_UNIFORM, 0, 0}};
  uint32_t sx = ir_add_symbol(m, x), sw = ir_add_symbol(m, w);
  CHECK(ir_find_symbol(m, SYM_PARAM, "h.w") == (int64_t)sw);
  CHECK(ir_find_symbol(m, SYM_INPUT, "h.w") == -1);
  ValueId vx = ir_leaf(m, OP_INPUT, sx, 0), vw = ir_leaf(m, OP_PARAM, sw, 0);
  ValueId mm = ir_op2(m, OP_MATMUL, vx, vw, 0);
  char buf[64];
  CHECK(!strcmp(type_str(&m->nodes[mm].type, buf, sizeof buf), "f32[B,64]"));
  /* A shape error comes back as a message, not a node. */
  char err[256];
  ValueId args[2] = {vw, vx};
  CHECK(ir_build(m, OP_MATMUL, args, 2, NULL, 0, err, sizeof err) == NO_VALUE);
  CHECK(strstr(err, "matmul shapes do not match: [784,64] @ [784]") != NULL);
  /* Locations are interned per (file, line, col, parent). */
  uint32_t f = ir_file(m, "a.nn");
  CHECK(ir_file(m, "a.nn") == f);
  uint32_t l1 = ir_loc(m, f, 3, 4, 0);
  CHECK(ir_loc(m, f, 3, 4, 0) == l1 && ir_loc(m, f, 3, 5, 0) != l1);
  ir_module_free(m);
}

int main(void) {
  test_arena();
  test_vec();
  test_strmap();
  test_diag();
  test_types();
  test_builder();
  return check_done();
}
