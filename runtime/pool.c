/* runtime/pool.c - the persistent thread pool (see pool.h).
 *
 * One job at a time, published through a generation counter `gen`:
 *
 *   caller                              worker
 *   gen = odd (job being written)       wait until gen is even and new
 *   wait until busy == 0                busy++
 *   write fn, ctx, n, nchunks           reread gen: odd or old -> busy--, wait
 *   next = done = 0                     take chunks: c = next++ < nchunks
 *   gen = even (published)                -> fn(ctx, begin(c), end(c)); done++
 *   wake sleepers, if any               busy--
 *   take chunks like a worker
 *   wait until done == nchunks
 *
 * `busy` and `gen` are sequentially consistent, so either the worker sees the
 * odd gen and backs off, or the caller sees busy > 0 and waits: no worker
 * reads a half-written job.  Chunks go to whoever asks first, so a worker
 * that is slow to wake costs nothing if the others are fast.  A worker that
 * finds no new job for NNRT_POOL_SPIN_US sleeps on `cv`; it announces itself
 * in `sleepers` under `mu` before its last look at gen, and the caller reads
 * `sleepers` after publishing, so a wake-up is never lost (the same
 * Dekker-style argument).
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { POOL_MAX_THREADS = 1024, CACHE_LINE = 64 };

struct RtPool {
  /* written by the caller while gen is odd and busy == 0 */
  RtPoolFn fn;
  void *ctx;
  int64_t n;
  int64_t nchunks;
  int nthreads;              /* workers + the caller */
  int nworkers;              /* started */
  int64_t spin_ns;           /* how long an idle worker spins */
  pthread_t *workers;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  _Alignas(CACHE_LINE) atomic_uint gen;   /* even: a job is published */
  _Alignas(CACHE_LINE) atomic_llong next; /* next chunk to take */
  _Alignas(CACHE_LINE) atomic_llong done; /* chunks finished */
  _Alignas(CACHE_LINE) atomic_int busy;   /* workers looking at the job */
  _Alignas(CACHE_LINE) atomic_int sleepers;
  atomic_int running;                     /* a caller is inside rt_pool_run */
  atomic_bool stop;
};

/* Set in workers and in a caller while it runs chunks: a nested
 * rt_pool_run runs serially instead of deadlocking. */
static _Thread_local bool in_pool;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int rt_cpu_count(void) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

/* Runs chunks of the current job until none is left. */
static void take_chunks(RtPool *p) {
  int64_t nchunks = p->nchunks, n = p->n;
  int64_t base = n / nchunks, rem = n % nchunks;
  for (;;) {
    int64_t c = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
    if (c >= nchunks) break;
    /* chunk c: base items, one more for the first rem chunks */
    int64_t begin = c * base + (c < rem ? c : rem);
    int64_t end = begin + base + (c < rem ? 1 : 0);
    p->fn(p->ctx, begin, end);
    atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
  }
}

static bool no_new_job(RtPool *p, unsigned seen) {
  unsigned g = atomic_load(&p->gen);
  return g == seen || (g & 1u);
}

/* Waits until there may be a new job (or stop): spin, then sleep. */
static void wait_for_job(RtPool *p, unsigned seen) {
  if (p->spin_ns > 0) {
    int64_t deadline = 0;
    for (unsigned i = 1;; i++) {
      if (!no_new_job(p, seen) || atomic_load_explicit(&p->stop, memory_order_relaxed)) return;
      cpu_relax();
      if ((i & 255u) == 0) {
        int64_t t = now_ns();
        if (deadline == 0)
          deadline = t + p->spin_ns;
        else if (t > deadline)
          break;
      }
    }
  }
  pthread_mutex_lock(&p->mu);
  atomic_fetch_add(&p->sleepers, 1);
  while (no_new_job(p, seen) && !atomic_load(&p->stop)) pthread_cond_wait(&p->cv, &p->mu);
  atomic_fetch_sub(&p->sleepers, 1);
  pthread_mutex_unlock(&p->mu);
}

void rt_flush_denormals(void) {
#if defined(__x86_64__) || defined(__i386__)
  const char *keep = getenv("NNRT_DENORMALS");
  if (keep && !strcmp(keep, "keep")) return;
  /* MXCSR: FTZ (bit 15) flushes denormal results to 0, DAZ (bit 6) reads
   * denormal inputs as 0.  Without them an optimizer state decaying
   * through the denormal range costs a microcode assist per element. */
  unsigned csr;
  __asm__ volatile("stmxcsr %0" : "=m"(csr));
  csr |= 0x8040u;
  __asm__ volatile("ldmxcsr %0" : : "m"(csr));
#endif
}

static void *worker_main(void *arg) {
  RtPool *p = arg;
  in_pool = true;
  rt_flush_denormals();
  unsigned seen = 0;
  for (;;) {
    wait_for_job(p, seen);
    if (atomic_load(&p->stop)) break;
    atomic_fetch_add(&p->busy, 1);
    unsigned g = atomic_load(&p->gen);
    if (g == seen || (g & 1u)) { /* the caller is writing the next job */
      atomic_fetch_sub(&p->busy, 1);
      continue;
    }
    seen = g;
    take_chunks(p);
    atomic_fetch_sub(&p->busy, 1);
  }
  return NULL;
}

static int64_t spin_from_env(void) {
  const char *s = getenv("NNRT_POOL_SPIN_US");
  if (!s || !*s) return 100 * 1000;
  char *end;
  long long us = strtoll(s, &end, 10);
  if (*end || us < 0) return 100 * 1000;
  if (us > 10 * 1000 * 1000) us = 10 * 1000 * 1000;
  return (int64_t)us * 1000;
}

RtPool *rt_pool_create(int threads) {
  if (threads <= 0) threads = rt_cpu_count();
  if (threads > POOL_MAX_THREADS) threads = POOL_MAX_THREADS;
  size_t size = (sizeof(RtPool) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
  RtPool *p = aligned_alloc(CACHE_LINE, size);
  if (!p) return NULL;
  memset(p, 0, size);
  p->nthreads = threads;
  p->spin_ns = spin_from_env();
  atomic_init(&p->gen, 0);
  atomic_init(&p->next, 0);
  atomic_init(&p->done, 0);
  atomic_init(&p->busy, 0);
  atomic_init(&p->sleepers, 0);
  atomic_init(&p->running, 0);
  atomic_init(&p->stop, false);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  if (threads > 1) {
    p->workers = calloc((size_t)threads - 1, sizeof *p->workers);
    if (!p->workers) {
      rt_pool_destroy(p);
      return NULL;
    }
    for (int i = 0; i < threads - 1; i++) {
      if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) break;
      p->nworkers++;
    }
    p->nthreads = p->nworkers + 1;
  }
  return p;
}

int rt_pool_threads(const RtPool *p) { return p ? p->nthreads : 1; }

void rt_pool_run(RtPool *p, RtPoolFn fn, void *ctx, int64_t n, int64_t grain) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t nchunks = n / grain;
  if (!p || nchunks > p->nthreads) nchunks = p ? p->nthreads : 1;
  if (nchunks <= 1 || in_pool) {
    fn(ctx, 0, n);
    return;
  }
  int expected = 0;
  if (!atomic_compare_exchange_strong(&p->running, &expected, 1)) {
    fn(ctx, 0, n); /* another thread is using the pool */
    return;
  }
  unsigned g = atomic_load_explicit(&p->gen, memory_order_relaxed);
  atomic_store(&p->gen, g + 1); /* odd: writing */
  for (unsigned i = 1; atomic_load(&p->busy) != 0; i++) {
    cpu_relax();
    if ((i & 4095u) == 0) sched_yield();
  }
  p->fn = fn;
  p->ctx = ctx;
  p->n = n;
  p->nchunks = nchunks;
  atomic_store_explicit(&p->next, 0, memory_order_relaxed);
  atomic_store_explicit(&p->done, 0, memory_order_relaxed);
  atomic_store(&p->gen, g + 2); /* published */
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
  in_pool = true;
  take_chunks(p);
  in_pool = false;
  for (unsigned i = 1; atomic_load_explicit(&p->done, memory_order_acquire) < nchunks; i++) {
    cpu_relax();
    if ((i & 4095u) == 0) sched_yield(); /* a worker was preempted mid-chunk */
  }
  atomic_store_explicit(&p->running, 0, memory_order_release);
}

void rt_pool_destroy(RtPool *p) {
  if (!p) return;
  atomic_store(&p->stop, true);
  pthread_mutex_lock(&p->mu);
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->nworkers; i++) pthread_join(p->workers[i], NULL);
  free(p->workers);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p);
}
