/* support/stats.h - statistics for --stats, and the clock of -v's stage times.
 *
 * Counters named "pass.counter" (`cse.merged`, `lower.kernels_fused`) that
 * any stage adds to and --stats prints sorted; tests read them to prove an
 * optimisation happened (or that work stayed bounded).
 */
#ifndef NNC_STATS_H
#define NNC_STATS_H

#include <stdio.h>

void nnc_stat_add(const char *pass, const char *counter, long delta);

/* Seconds on the monotonic clock, for the stage times -v prints. */
double nnc_now(void);
long nnc_stat_get(const char *pass, const char *counter);
void nnc_stats_print(FILE *out);

#endif
