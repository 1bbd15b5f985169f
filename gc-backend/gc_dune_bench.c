#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>

#include "gc_dune.h"
#include "gc_dune_internal.h"
#ifdef HAVE_DUNE
#include "dune.h"
#endif

/*
 * Extra key=value fields for the benchmark workloads' RESULT line
 * (bench/workload.h declares this weak): which dirty source fed the
 * collector and what it cost, and inside Dune the exits behind it.
 */
size_t gc_dune_bench_fields(char *buf, size_t len);
API size_t gc_dune_bench_fields(char *buf, size_t len)
{
    struct gc_dune_stats st;
    int n;

    gc_dune_stats(&st);
    n = snprintf(buf, len, "dirty_src=%s dirty_reads=%lu dirty_pages=%lu dirty_pages_per_read=%.1f "
                 "dirty_read_ms=%.2f",
                 st.active ? st.backend : "off", st.collections, st.pages,
                 st.collections ? (double)st.pages / st.collections : 0.0, st.ns / 1e6);
#ifdef HAVE_DUNE
    if (st.in_dune && n >= 0 && (size_t)n < len) {
        struct dune_status ds;
        dune_status(&ds);
        n += snprintf(buf + n, len - (size_t)n,
                      " dune_syscalls=%lu dune_exits=%lu dune_faults=%lu dune_wp_faults=%lu "
                      "dune_wp_exits=%lu",
                      ds.syscalls, ds.exits, ds.faults, ds.wp_faults, ds.wp_exits);
    }
#endif
    return n < 0 ? 0 : (size_t)n;
}
