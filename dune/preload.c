/*
 * preload.c - LD_PRELOAD'ed by dune-run: enter Dune before main().
 *
 * If Dune cannot be entered the program runs natively; we say why in one
 * line (dune-run asked for Dune, so silence would mislead), on stderr from
 * the process dune-run started, in DUNE_LOG from any (log.c).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dune.h"

static void __attribute__((constructor(101))) dune_preload_enter(void)
{
    struct dune_status st;
    int r;

    if (getenv("DUNE_DISABLE"))
        return;
    r = dune_enter(NULL);
    if (r < 0) {
        dune_status(&st);
        dune_message("dune-run: running natively: %s", st.reason[0] ? st.reason : strerror(-r));
    }
}

/* Fields for the benchmark workloads' RESULT line (bench/workload.h looks
 * this hook up weakly): what running inside Dune cost. */
__attribute__((visibility("default"))) size_t gc_dune_bench_fields(char *buf, size_t len);
size_t gc_dune_bench_fields(char *buf, size_t len)
{
    struct dune_status st;
    int n;

    dune_status(&st);
    if (!st.active)
        return 0;
    n = snprintf(buf, len, "dune_syscalls=%lu dune_exits=%lu dune_faults=%lu", st.syscalls,
                 st.exits, st.faults);
    return n < 0 ? 0 : (size_t)n;
}
