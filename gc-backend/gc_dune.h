/*
 * gc_dune.h - libgc-dune: Boehm GC's incremental/generational mode fed by
 * hardware or kernel dirty-page tracking instead of its own mprotect+SIGSEGV.
 *
 * Nothing needs to be called: an application that includes <gc.h> and links
 * with -lgc-dune -lgc (or runs under gc-dune-run / LD_PRELOAD=libgc-dune.so)
 * gets it as soon as incremental mode is on (GC_enable_incremental() or
 * GC_ENABLE_INCREMENTAL=1).  Environment (each also as DIRTY_*; a bad
 * value is said on one line and replaced by its default):
 *   GC_DUNE_BACKEND=auto|pte|kvm|uffd|softdirty|mprotect|off   dirty-page
 *       source; auto measures the candidates (Dune's too when /dev/kvm is
 *       usable, cached per machine) and takes the cheapest, entering Dune
 *       only if a Dune source wins; pte/kvm enter Dune; off leaves libgc
 *       exactly as it is.
 *   GC_DUNE_CHECK=1|name     checking mode: compare with a reference backend
 *       (1: the default, uffd where usable) and abort on a page the backend
 *       missed.
 *   GC_DUNE_HOLD=n, GC_DUNE_HOLD_ALL=0|1, GC_DUNE_CANDIDATES=a,b,...
 *   GC_DUNE_FEED=soft|manual (GC_DUNE_ only)  how libgc reads the bits:
 *       through its soft-dirty VDB (default; keeps its allocation fast
 *       path) or its manual VDB (docs/performance.md).
 *   GC_DUNE_VERBOSE=1        backend line (with auto's figures) at start,
 *       totals line at exit (GC_PRINT_STATS also prints the backend line).
 * docs/libgc-dune.md and docs/dirty-tracking.md have the details.
 * This header offers the statistics and two helpers.
 */
#ifndef GC_DUNE_H
#define GC_DUNE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gc_dune_stats {
    int active;                 /* 1 if libgc-dune feeds the collector's dirty bits */
    int in_dune;                /* 1 if the process entered Dune */
    const char *backend;        /* dirty-page source ("uffd", "kvm", ... or "off") */
    unsigned long collections;  /* dirty-bit reads (one per stopped mark phase) */
    unsigned long pages;        /* heap pages reported dirty, all reads */
    unsigned long last_pages;   /* ... by the latest read */
    unsigned long fresh_pages;  /* of `pages`: reported because newly tracked */
    unsigned long scanned_pages;/* of `pages`: from heap memory not (yet) tracked */
    uint64_t ns;                /* time spent reading and reporting, all reads */
    uint64_t last_ns;           /* ... by the latest read */
    uint64_t max_ns;            /* longest single read */
    size_t tracked_bytes;       /* heap memory under the tracker */
    unsigned regions;           /* memory regions libgc obtained from the OS */
};

/* Fill *st (a consistent snapshot only while no collection runs). */
void gc_dune_stats(struct gc_dune_stats *st);

/* Why this backend: "default: auto-selected uffd; not usable: ...". */
const char *gc_dune_why(void);

/* Checking mode only (GC_DUNE_CHECK / DIRTY_CHECK): pages the backend
 * missed and reported in excess, over `cycles` compared collects.
 * Returns 0, or -EINVAL when not checking. */
int gc_dune_check_stats(unsigned long *cycles, unsigned long *missed, unsigned long *extra);

/* Tell the tracker that [addr, addr+len) of the GC heap is about to be
 * written by something it may not see: needed with the mprotect backend
 * before a system call writes into the heap (read(2) into a GC buffer
 * would otherwise fail with EFAULT, as with stock libgc's mprotect mode).
 * Harmless and cheap with the other backends. */
void gc_dune_note_write(const void *addr, size_t len);

/* Print the totals line ("gc-dune: backend ..., N collections, ...") to
 * stderr now; printed at exit anyway with GC_DUNE_VERBOSE=1. */
void gc_dune_print_stats(void);

#ifdef __cplusplus
}
#endif
#endif
