/* runtime/pool.h - a persistent thread pool for parallel loops.
 *
 * rt_pool_run(p, fn, ctx, n, grain) splits [0, n) into at most one chunk
 * per thread, each of at least `grain` items, runs fn(ctx, begin, end) on
 * every chunk and returns when all are done.  The calling thread takes
 * chunks too, so a pool of T threads starts T-1 workers.  Between
 * dispatches workers spin briefly (so back-to-back loops cost about a
 * microsecond, see test/unit/test_rt_pool.c) and then sleep on a condition
 * variable.  A call from inside fn, or from a second thread while the pool
 * is busy, runs the whole range on the calling thread instead of waiting.
 *
 * NNRT_POOL_SPIN_US (environment) sets how long idle workers spin before
 * sleeping, in microseconds (default 100; 0 = sleep at once).
 */
#ifndef NNRT_POOL_H
#define NNRT_POOL_H

#include <stdint.h>

typedef struct RtPool RtPool;
typedef void (*RtPoolFn)(void *ctx, int64_t begin, int64_t end);

/* threads == 0: one per CPU this process may run on (the affinity mask).
 * Returns NULL only when memory runs out; if some worker threads cannot be
 * started the pool uses the ones it has. */
RtPool *rt_pool_create(int threads);
void rt_pool_run(RtPool *p, RtPoolFn fn, void *ctx, int64_t n, int64_t grain);
int rt_pool_threads(const RtPool *p);
void rt_pool_destroy(RtPool *p);

/* The CPUs this process may run on (sched_getaffinity), at least 1. */
int rt_cpu_count(void);

/* Flushes denormal f32 results and inputs to zero in the calling thread
 * (x86 MXCSR FTZ and DAZ), as TensorFlow's CPU threads do; every pool
 * worker calls it, and the CPU device for the thread that opens it.
 * NNRT_DENORMALS=keep leaves IEEE gradual underflow on. */
void rt_flush_denormals(void);

#endif
