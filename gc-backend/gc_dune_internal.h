/*
 * gc_dune_internal.h - what the files of libgc-dune share (internal).
 *   gc_dune.c         configuration, setup, interposed GC_* entry points, gc_dune.h
 *   gc_dune_heap.c    the mmap interposer: which regions are heap sections
 *   gc_dune_report.c  at each mark start, report the dirty heap pages
 *   gc_dune_soft.c    or let libgc read them as soft-dirty bits (the default)
 *   gc_dune_bench.c   fields for the benchmarks' RESULT line
 */
#ifndef GC_DUNE_INTERNAL_H
#define GC_DUNE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gc.h>

#include "dirty.h"
#include "dirty_env.h"
#include "dune.h"
#include "gc_dune_soft.h"

/* Internal: not part of the library's interface (and never interposing
 * an application's symbols of the same names). */
#pragma GCC visibility push(hidden)

#define PAGE DUNE_PAGE_SIZE
#define API __attribute__((visibility("default")))

struct gc_dune_cfg {
    struct dirty_env env;    /* the knobs (dirty_env.h) */
    bool verbose;            /* GC_DUNE_VERBOSE */
    int verbose_level;       /* 2: also list the regions at exit */
    bool print_stats;        /* GC_PRINT_STATS */
    bool active;             /* manual VDB requested and tracker open */
    bool in_dune;
    bool keep_ptrfree;       /* mprotect in use: gc_dune_ptrfree.c */
    bool soft;               /* libgc reads our bits as soft-dirty bits */
    bool stock;              /* auto: libgc's own write barrier is cheaper */
    struct dirty_tracker *tracker;
    char why[900];
    char auto_how[400];      /* auto: the measured figures */
};
extern struct gc_dune_cfg cfg;

/* libgc's own entry points behind the ones we interpose. */
struct gc_dune_real {
    void (*init)(void);
    void (*enable_incremental)(void);
    void (*set_event)(GC_on_collection_event_proc);
    GC_on_collection_event_proc (*get_event)(void);
    void (*set_resize)(GC_on_heap_resize_proc);
    GC_on_heap_resize_proc (*get_resize)(void);
};
extern struct gc_dune_real real;

/* The application's callbacks, which ours chain to. */
extern _Atomic(GC_on_collection_event_proc) app_event;
extern _Atomic(GC_on_heap_resize_proc) app_resize;

/* What the mark-start reports cost (gc_dune_report.c). */
struct gc_dune_counts {
    unsigned long collections, pages, last_pages, fresh, scanned;
    uint64_t ns, last_ns, max_ns;
};
extern struct gc_dune_counts stats;


enum rstate {
    R_SCRATCH, /* not known to be a heap section: scanned at each mark start */
    R_HEAP,    /* a heap section, not tracked (yet): scanned likewise */
    R_TRACKED, /* a heap section under the tracker */
};

struct region {
    uintptr_t start;
    size_t len;
    enum rstate state;
    bool fresh;           /* tracked since the last mark start */
    uint64_t *open;       /* pages left open (gc_dune_open.c), or NULL */
    atomic_bool ready;    /* fields above are valid */
};

/* libgc never unmaps what it maps (8.2), so the table only grows: one
 * entry per heap expansion, one per 256 KiB or larger piece of internal
 * memory (block headers take ~2% of the heap).  65536 entries (2 MiB of
 * address space, touched only as used) cover heaps of hundreds of GiB;
 * beyond that we stop rather than risk an unseen heap section. */
#define MAX_REGIONS 65536
extern _Atomic(struct region *) regions; /* [MAX_REGIONS] */
extern atomic_uint nregions;     /* entries claimed */
extern atomic_bool regions_lost; /* table overflowed */
/* Entries claimed and within the table (each still to be checked for
 * `ready`). */
unsigned regions_ready(void);

/* Does libgc read our bits through its soft-dirty VDB (it opened our
 * files)?  Then it reads them itself. */
static inline bool feeding_soft(void)
{
    return cfg.soft && soft_feed_in_use();
}

/* Is libgc reading the dirty bits we report?  Only in incremental mode,
 * through its soft-dirty VDB or its manual one.  An application may turn
 * manual VDB on or off itself before libgc starts (bdwgc's gctest does):
 * on, libgc takes reports at mark start even where we armed the
 * soft-dirty files; off, it opens them (or, without them, keeps its own
 * write barrier and we feed nothing). */
static inline bool feeding(void)
{
    if (!cfg.active || !GC_is_incremental_mode())
        return false;
    return feeding_soft() || GC_get_manual_vdb_allowed();
}


/* gc_dune_heap.c */
void find_gc_image(void);
void resync_heap_total(void);
void track_sections(void);
void GC_CALLBACK resize_cb(GC_word new_size);
void *track_locked(void *arg);
void adopt_heap_regions(void);
void dump_regions(void);

/* gc_dune_ptrfree.c: make the pointer-free heap pages among
 * [p, p + npages * PAGE) writable (and dirty) again. */
void ptrfree_reopen(uintptr_t p, size_t npages);

/* Will the heap page at p be written before libgc needs to know: a free
 * block, a pointer-free one (libgc never scans either), memory that is not
 * heap at all, or a small-object block with an unmarked object among its
 * first `probes` (the sweeper and the allocator will refill it)?  Allocation
 * lock held. */
bool page_to_refill(uintptr_t p, unsigned probes);

/* gc_dune_open.c: leave free and pointer-free heap pages open. */
struct gc_dune_open_stats {
    unsigned long passes, pages_classified, runs, opened, rearmed, failed;
    uint64_t ns;
};
extern struct gc_dune_open_stats open_stats;
void open_after_collection(void);

/* gc_dune_report.c */
uint64_t now_ns(void); /* CLOCK_MONOTONIC */
void GC_CALLBACK event_cb(GC_EventType ev);

/* gc_dune.c */
void print_totals(void);

#pragma GCC visibility pop

#endif
