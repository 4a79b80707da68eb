/* runtime/memlimit.h - memory sizes for limits and messages, shared by nnc
 * (its estimate of a model's memory) and the trainer (its check before
 * allocating the buffers).
 *
 * Sizes print in binary units with about three significant digits
 * ("23.4 GiB", "400 GiB", "1.17 TiB"); --max-memory takes a whole number of
 * bytes with an optional K, M, G or T suffix (powers of 1024; "KiB", "KB"
 * and a trailing "B" are accepted too).
 */
#ifndef NNRT_MEMLIMIT_H
#define NNRT_MEMLIMIT_H

#include <stddef.h>
#include <stdint.h>

/* Host bytes a run stages for a batch of B samples of F input values: the
 * inputs and labels gathered for a step or an evaluation (rt_train) and
 * the losses read back from the device (the trainer), 4 bytes each.
 * nnc's estimate (passes/memest.c) and the trainer's check count it. */
#define RT_HOST_STAGING(B, F) (4.0 * (double)(B) * ((double)(F) + 2))

/* Bytes a loaded dataset of N samples of F values holds while it trains:
 * the f32 inputs, a 4-byte label and rt_train's 8-byte order entry. */
#define RT_DATA_BYTES(N, F) ((double)(N) * (4.0 * (double)(F) + 12))

/* The machine's physical memory in bytes (sysconf), or 0 when unknown. */
int64_t rt_phys_memory(void);

/* "23.4 GiB" into buf (returns buf). */
const char *rt_format_bytes(double bytes, char *buf, size_t len);

/* Parses "4096", "512M", "1.5G", "2TiB" into *out (> 0).  Returns 0, or -1
 * for anything else (zero, negative, overflow, an unknown suffix). */
int rt_parse_bytes(const char *s, int64_t *out);

#endif
