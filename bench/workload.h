/*
 * workload.h - metrics shared by the GC benchmark workloads (bench/).
 *
 * Every workload is an ordinary Boehm GC program.  It calls wl_start() at the
 * top of main (this runs GC_INIT and installs the collection-event hooks),
 * does its work, and ends with wl_finish(checksum), which prints exactly one
 * machine-readable line on stdout:
 *
 *   RESULT workload=NAME mode=MODE size=N wall_s=... gcs=... pause_total_ms=...
 *          pause_max_ms=... heap_peak_kb=... checksum=0x... [more key=value]
 *
 * bench/run-suite parses that line; keys it does not know are carried through
 * to the report, so collectors may add their own (see gc_dune_bench_fields below).
 */
#ifndef BENCH_WORKLOAD_H
#define BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

/* Value of "FLAG N" on the command line (e.g. "-s 5"), or dflt if absent.
 * Exits with a usage message if the value is not a positive integer. */
long wl_arg(int argc, char **argv, const char *flag, long dflt);

/* GC_INIT, hooks, start of the wall clock.  `size` is echoed in RESULT. */
void wl_start(const char *workload, long size);

/* The measuring part of wl_start() alone, without GC_INIT: collection-event
 * and heap-resize hooks (chained to any installed before), the wall clock.
 * For bench/gcstat.c, preloaded into programs it did not build. */
void wl_hooks(void);

/* The metrics as space-separated key=value pairs (wall_s= ... parallel=,
 * then any gc_dune_bench_fields), no newline.  Returns the length. */
size_t wl_fields(char *buf, size_t len);

/* Print the RESULT line and return the process exit status (0). */
int wl_finish(uint64_t checksum);

/* Deterministic helpers so that every mode computes the same result. */
uint64_t wl_rand(uint64_t *state);               /* xorshift64* */
uint64_t wl_mix(uint64_t h, uint64_t v);         /* order-dependent fold */
uint64_t wl_hash_bytes(const void *p, size_t n); /* FNV-1a 64 */

/*
 * Optional hook for collectors with more to say (libgc-dune: dirty pages per
 * cycle, forwarded syscalls, VM exits ...).  If a loaded library defines this
 * symbol, wl_finish() calls it after the workload and appends what it writes
 * (space-separated key=value pairs, no newline) to the RESULT line.  Returns
 * the number of characters written.  Weak, so stock libgc needs nothing.
 */
size_t gc_dune_bench_fields(char *buf, size_t len) __attribute__((weak));

#endif
