/* support/stats.h - statistics for --stats.
 *
 * Counters named "pass.counter" (`cse.merged`, `lower.kernels_fused`) that
 * any stage adds to and --stats prints sorted; tests read them to prove an
 * optimisation happened (or that work stayed bounded).
 */
#ifndef NNC_STATS_H
#define NNC_STATS_H

#include <stdio.h>

void nnc_stat_add(const char *pass, const char *counter, long delta);
long nnc_stat_get(const char *pass, const char *counter);
void nnc_stats_print(FILE *out);

#endif
