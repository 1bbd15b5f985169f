/*
 * gc_dune_open.c - leave the heap pages libgc will not scan open, so that
 * writing them takes no fault.
 *
 * Why: libgc asks about dirty pages only to rescan pointer-ful objects.
 * Free blocks and pointer-free blocks are never scanned, yet a tracker
 * that re-arms every written page makes the first write to each of them
 * fault again after every collection.  Most of an allocation-bound
 * program's write faults are exactly there: a collection frees whole
 * blocks, and the allocator then builds free lists across them (GCBench:
 * 97% of the pages written between two collections were free or
 * pointer-free when the previous one ended).  Stock libgc's mprotect mode
 * avoids those faults by never protecting such blocks and unprotecting a
 * block when it hands it out (an mprotect call per block instead).
 *
 * So after each collection (GC_EVENT_RECLAIM_END: the sweep has freed the
 * empty blocks, the world runs, the allocation lock is held) every tracked
 * page is classified through libgc's public API -- GC_base() is NULL for a
 * free block, GC_get_kind_and_size() names a pointer-free kind -- and runs
 * of at least GC_DUNE_OPEN (dirty_env.c; default 4) such pages are left open (dirty_set_open: not
 * armed, reported dirty at every read, which costs libgc nothing for these
 * blocks).  A page that has since become part of a pointer-ful block is
 * armed again; the tracker reports it once more at the next read, as it
 * was open when written.  Short runs stay armed: each open run costs the
 * tracker a system call to open, one to re-arm and one more scan per read.
 * GC_DUNE_OPEN=0 turns this off.
 *
 * The same goes for a small-object block that holds a free object: the
 * sweeper will rebuild its free list and the allocator fill it, so it is
 * about to be written whole (ECL and Guile's compiler write mostly there).
 * GC_is_marked tells, object by object; up to GC_DUNE_OPEN_PROBES
 * (default 64; 0: only free and pointer-free blocks)
 * objects from the block's start are probed, and one unmarked is enough.
 * Such a page, being pointer-ful, is reported dirty and rescanned at every
 * collection while open; it is armed again once its probed objects are all
 * marked.  Measured in docs/performance.md: ECL's faults 21,600 -> 6,500,
 * the list's 71,800 -> 20,800, for a longer pass (GCBench QUICK: 25-35 ms
 * against 8-12 over 175 collections).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>
#include <string.h>

#include "gc_dune_internal.h"

#define WORDS(npages) (((npages) + 63) / 64)

struct gc_dune_open_stats open_stats;
static uint64_t *want;      /* scratch: the pages to leave open in one region */
static size_t want_words;

static bool bit(const uint64_t *b, size_t i)
{
    return b[i / 64] >> (i % 64) & 1;
}

/* The pages of r to leave open, into `want`. */
static void classify(const struct region *r, size_t npages)
{
    memset(want, 0, WORDS(npages) * sizeof(uint64_t));
    size_t run = 0;
    for (size_t i = 0; i <= npages; i++) {
        uintptr_t p = r->start + i * PAGE;
        if (i < npages && page_to_refill(p, cfg.env.open_probes)) {
            run++;
            continue;
        }
        if (run >= cfg.env.open_min) {
            for (size_t k = i - run; k < i; k++)
                want[k / 64] |= 1ULL << (k % 64);
        }
        run = 0;
    }
}

/* Make r's open pages those set in `want`: one call per changed run. */
static void apply(struct region *r, size_t npages)
{
    size_t i = 0;
    while (i < npages) {
        bool w = bit(want, i);
        if (w == bit(r->open, i)) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < npages && bit(want, j) == w && bit(r->open, j) != w)
            j++;
        if (dirty_set_open(cfg.tracker, (void *)(r->start + i * PAGE), (j - i) * PAGE, w) == 0) {
            for (size_t k = i; k < j; k++)
                r->open[k / 64] ^= 1ULL << (k % 64);
            if (w) {
                open_stats.opened += j - i;
                open_stats.runs++;
            } else {
                open_stats.rearmed += j - i;
            }
        } else {
            open_stats.failed++;
        }
        i = j;
    }
}

void open_after_collection(void)
{
    if (!cfg.env.open_min || !feeding() || !dirty_can_open(cfg.tracker))
        return;
    uint64_t t0 = now_ns();
    unsigned n = regions_ready();
    for (unsigned ri = 0; ri < n; ri++) {
        struct region *r = &regions[ri];
        if (!atomic_load_explicit(&r->ready, memory_order_acquire) || r->state != R_TRACKED)
            continue;
        size_t npages = r->len / PAGE, words = WORDS(npages);
        if (!r->open && !(r->open = calloc(words, sizeof(uint64_t))))
            continue;
        if (words > want_words) {
            uint64_t *w = realloc(want, words * sizeof(uint64_t));
            if (!w)
                continue;
            want = w;
            want_words = words;
        }
        classify(r, npages);
        apply(r, npages);
        open_stats.pages_classified += npages;
    }
    open_stats.passes++;
    open_stats.ns += now_ns() - t0;
}
