/* test/unit/test_rt_pool.c - the runtime thread pool (runtime/pool.c).
 *
 * Every index of [0, n) must be visited exactly once for many thread
 * counts, sizes and grains, with chunks of at least `grain` items; 100k
 * back-to-back dispatches must all complete; nested calls and dispatches
 * after the workers went to sleep must work.  Prints the cost of an empty
 * dispatch on 2 threads.  Prints one line per failed check; exits 1 if any
 * failed.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/pool.h"

#include "check.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct Visit {
  atomic_int *hits;      /* [n] */
  atomic_llong min_chunk;
  atomic_int chunks;
  atomic_int bad_range;
  int64_t n;
} Visit;

static void visit(void *ctx, int64_t begin, int64_t end) {
  Visit *v = ctx;
  if (begin < 0 || end > v->n || begin >= end) {
    atomic_fetch_add(&v->bad_range, 1);
    return;
  }
  for (int64_t i = begin; i < end; i++) atomic_fetch_add_explicit(&v->hits[i], 1, memory_order_relaxed);
  long long len = end - begin, cur = atomic_load(&v->min_chunk);
  while (len < cur && !atomic_compare_exchange_weak(&v->min_chunk, &cur, len)) {
  }
  atomic_fetch_add(&v->chunks, 1);
}

static void test_coverage(void) {
  static const int threads[] = {1, 2, 3, 4, 8};
  static const int64_t sizes[] = {0, 1, 2, 3, 7, 64, 1000, 100003};
  static const int64_t grains[] = {0, 1, 2, 3, 16, 1000, 1 << 20};
  atomic_int *hits = malloc(100003 * sizeof *hits);
  for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
    RtPool *p = rt_pool_create(threads[t]);
    CHECK(p != NULL, "rt_pool_create(%d)", threads[t]);
    if (!p) continue;
    CHECK(rt_pool_threads(p) == threads[t], "threads %d, want %d", rt_pool_threads(p), threads[t]);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
      for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++) {
        int64_t n = sizes[s], grain = grains[g];
        for (int64_t i = 0; i < n; i++) atomic_init(&hits[i], 0);
        Visit v = {.hits = hits, .n = n};
        atomic_init(&v.min_chunk, INT64_MAX);
        atomic_init(&v.chunks, 0);
        atomic_init(&v.bad_range, 0);
        rt_pool_run(p, visit, &v, n, grain);
        int64_t wrong = 0;
        for (int64_t i = 0; i < n; i++) wrong += atomic_load(&hits[i]) != 1;
        CHECK(wrong == 0, "threads %d n %" PRId64 " grain %" PRId64 ": %" PRId64 " indices not visited once",
              threads[t], n, grain, wrong);
        CHECK(atomic_load(&v.bad_range) == 0, "threads %d n %" PRId64 ": bad range", threads[t], n);
        int64_t want_min = grain < 1 ? 1 : grain;
        if (n < want_min) want_min = n; /* one chunk of everything */
        if (n > 0)
          CHECK(atomic_load(&v.min_chunk) >= want_min,
                "threads %d n %" PRId64 " grain %" PRId64 ": a chunk of %lld items", threads[t], n, grain,
                (long long)atomic_load(&v.min_chunk));
        CHECK(atomic_load(&v.chunks) <= threads[t], "threads %d n %" PRId64 ": %d chunks", threads[t], n,
              atomic_load(&v.chunks));
      }
    rt_pool_destroy(p);
  }
  free(hits);
}

static void add_range(void *ctx, int64_t begin, int64_t end) {
  atomic_fetch_add_explicit((atomic_llong *)ctx, end - begin, memory_order_relaxed);
}

static void test_repeated(void) {
  RtPool *p = rt_pool_create(4);
  atomic_llong total;
  atomic_init(&total, 0);
  for (int i = 0; i < 100000; i++) rt_pool_run(p, add_range, &total, 37, 1);
  CHECK(atomic_load(&total) == 3700000LL, "100k dispatches of 37 items: %lld", (long long)atomic_load(&total));
  rt_pool_destroy(p);
}

/* Dispatches after the workers have gone to sleep (spin time passed). */
static void test_sleep_wake(void) {
  RtPool *p = rt_pool_create(3);
  atomic_llong total;
  atomic_init(&total, 0);
  for (int i = 0; i < 10; i++) {
    struct timespec ts = {0, 2 * 1000 * 1000}; /* 2 ms, past the 100 us spin */
    nanosleep(&ts, NULL);
    rt_pool_run(p, add_range, &total, 1000, 1);
  }
  CHECK(atomic_load(&total) == 10000, "after sleeping: %lld", (long long)atomic_load(&total));
  rt_pool_destroy(p);
}

typedef struct Nested {
  RtPool *p;
  atomic_llong total;
} Nested;

static void outer(void *ctx, int64_t begin, int64_t end) {
  Nested *nest = ctx;
  for (int64_t i = begin; i < end; i++) rt_pool_run(nest->p, add_range, &nest->total, 10, 1);
}

static void test_nested(void) {
  Nested nest = {.p = rt_pool_create(2)};
  atomic_init(&nest.total, 0);
  rt_pool_run(nest.p, outer, &nest, 8, 1);
  CHECK(atomic_load(&nest.total) == 80, "nested: %lld", (long long)atomic_load(&nest.total));
  rt_pool_destroy(nest.p);
}

static void empty(void *ctx, int64_t begin, int64_t end) { (void)ctx, (void)begin, (void)end; }

/* Each chunk waits until every chunk of this dispatch has started, so the
 * dispatch really goes through both threads (an empty one may be finished
 * by the caller alone before the worker looks). */
typedef struct Meet {
  atomic_llong arrived;
  long long round;
} Meet;

static void meet(void *ctx, int64_t begin, int64_t end) {
  (void)begin, (void)end;
  Meet *m = ctx;
  atomic_fetch_add(&m->arrived, 1);
  while (atomic_load(&m->arrived) < 2 * m->round) {
  }
}

static void test_overhead(void) {
  RtPool *p = rt_pool_create(2);
  int iters = 100000;
  for (int i = 0; i < 1000; i++) rt_pool_run(p, empty, NULL, 2, 1); /* warm up */
  double t0 = now_s();
  for (int i = 0; i < iters; i++) rt_pool_run(p, empty, NULL, 2, 1);
  double us = (now_s() - t0) / iters * 1e6;
  printf("empty dispatch on %d threads: %.3f us\n", rt_pool_threads(p), us);
  Meet m = {.round = 0};
  atomic_init(&m.arrived, 0);
  t0 = now_s();
  for (int i = 0; i < iters; i++) {
    m.round = i + 1;
    rt_pool_run(p, meet, &m, 2, 1);
  }
  us = (now_s() - t0) / iters * 1e6;
  printf("dispatch that both threads join: %.3f us\n", us);
  CHECK(atomic_load(&m.arrived) == 2LL * iters, "both threads joined %lld times", (long long)atomic_load(&m.arrived));
  rt_pool_destroy(p);
  RtPool *all = rt_pool_create(0);
  CHECK(rt_pool_threads(all) == rt_cpu_count(), "rt_pool_create(0): %d threads, %d CPUs", rt_pool_threads(all),
        rt_cpu_count());
  rt_pool_destroy(all);
}

/* Each chunk multiplies two floats whose product is denormal (1e-40). */
static void underflow(void *ctx, int64_t begin, int64_t end) {
  atomic_int *nonzero = ctx;
  volatile float a = 1e-30f, b = 1e-10f;
  for (int64_t i = begin; i < end; i++) {
    volatile float r = a * b;
    if (r != 0) atomic_fetch_add(nonzero, 1);
  }
}

/* rt_flush_denormals: FTZ/DAZ in every worker and the caller that asks;
 * NNRT_DENORMALS=keep leaves gradual underflow on. */
static void test_denormals(void) {
#if defined(__x86_64__) || defined(__i386__)
  setenv("NNRT_DENORMALS", "keep", 1);
  RtPool *p = rt_pool_create(2);
  atomic_int nonzero = 0;
  rt_flush_denormals(); /* kept: a no-op */
  rt_pool_run(p, underflow, &nonzero, 64, 1);
  CHECK(nonzero == 64, "with NNRT_DENORMALS=keep every product stays denormal, got %d of 64", nonzero);
  rt_pool_destroy(p);
  unsetenv("NNRT_DENORMALS");
  p = rt_pool_create(2);
  rt_flush_denormals();
  nonzero = 0;
  rt_pool_run(p, underflow, &nonzero, 64, 1);
  CHECK(nonzero == 0, "flushed: %d of 64 products were not 0", nonzero);
  rt_pool_destroy(p);
#endif
}

int main(void) {
  test_coverage();
  test_repeated();
  test_sleep_wake();
  test_nested();
  test_overhead();
  test_denormals();
  return check_done();
}
