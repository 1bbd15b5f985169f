/*
 * gc_dune_report.c - feed libgc's dirty bits at each mark start.
 *
 * The GC_EVENT_MARK_START collection event fires with the world stopped
 * and the allocation lock held, right before the collector reads its dirty
 * bits.  There we read-and-clear the tracker and report each dirty heap
 * page with GC_end_stubborn_change() (GC_dirty).  No allocation there, and
 * no lock libgc's threads may hold (a stopped thread may hold malloc's).
 */
#define _GNU_SOURCE
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "gc_dune_internal.h"

struct gc_dune_counts stats;

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Report the heap pages among [p, p+npages*PAGE).  Pages without a block
 * header are free-block interiors or not heap at all; libgc treats those
 * as dirty anyway, so skipping them loses nothing. */
static unsigned long report_pages(uintptr_t p, size_t npages)
{
    unsigned long n = 0;
    for (size_t i = 0; i < npages; i++, p += PAGE) {
        if (GC_is_heap_ptr((void *)p)) {
            GC_end_stubborn_change((void *)p);
            n++;
        }
    }
    return n;
}

static void report_run(void *first, size_t npages, void *arg)
{
    *(unsigned long *)arg += report_pages((uintptr_t)first, npages);
    if (cfg.keep_ptrfree)
        ptrfree_reopen((uintptr_t)first, npages);
}

/* Untracked regions may hold heap blocks: report them whole; freshly
 * tracked ones were clean in the tracker from a moment libgc cannot
 * know about: report them whole once. */
static void report_untracked(unsigned long *fresh, unsigned long *scanned)
{
    unsigned n = regions_ready();
    for (unsigned i = 0; i < n; i++) {
        struct region *r = &regions[i];
        if (!atomic_load_explicit(&r->ready, memory_order_acquire))
            continue;
        if (r->state != R_TRACKED)
            *scanned += report_pages(r->start, r->len / PAGE);
        else if (r->fresh) {
            *fresh += report_pages(r->start, r->len / PAGE);
            r->fresh = false;
        }
    }
}

static void lost_regions_abort(void)
{
    /* Heap memory we cannot see could hold unreported writes. */
    static const char msg[] = "gc-dune: region table overflow: cannot track the heap; "
                              "aborting rather than risk freeing live objects\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
        /* nothing better to do */
    }
    abort();
}

static void on_mark_start(void)
{
    if (!feeding())
        return;
    if (atomic_load(&regions_lost))
        lost_regions_abort();
    if (feeding_soft()) {
        soft_feed_mark_start(); /* libgc reads the bits itself, next */
        return;
    }
    uint64_t t0 = now_ns();
    unsigned long fresh = 0, scanned = 0, collected = 0;
    report_untracked(&fresh, &scanned);
    dirty_collect_all(cfg.tracker, report_run, &collected);
    uint64_t dt = now_ns() - t0;
    stats.collections++;
    stats.last_pages = fresh + scanned + collected;
    stats.pages += stats.last_pages;
    stats.fresh += fresh;
    stats.scanned += scanned;
    stats.last_ns = dt;
    stats.ns += dt;
    if (dt > stats.max_ns)
        stats.max_ns = dt;
}

void GC_CALLBACK event_cb(GC_EventType ev)
{
    if (ev == GC_EVENT_MARK_START)
        on_mark_start();
    else if (ev == GC_EVENT_RECLAIM_END && cfg.active) {
        resync_heap_total();
        adopt_heap_regions();
        open_after_collection();
    }
    GC_on_collection_event_proc app = atomic_load(&app_event);
    if (app)
        app(ev);
}
