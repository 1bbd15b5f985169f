/*
 * gc_dune_soft.h - libgc reads the tracker's bits through its soft-dirty
 * VDB (/proc/<pid>/pagemap and clear_refs, emulated): gc_dune_soft.c.
 */
#ifndef GC_DUNE_SOFT_H
#define GC_DUNE_SOFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dirty.h"

struct soft_feed_stats {
    unsigned long passes, clears, pages, last_pages;
    unsigned long answered, answered_tracked, answered_dirty; /* pagemap entries */
    uint64_t ns, last_ns, max_ns;
};

/* Find libc's read/write/lseek/close/open behind ours (call once, early). */
void soft_feed_resolve(void);
/* Start answering libgc's opens of pagemap/clear_refs from tracker t: 0,
 * or -ENOTSUP with the reason in *why (this libgc cannot read them). */
int soft_feed_arm(struct dirty_tracker *t, const char **why);
/* The same for opens made by code in [lo, hi) (tests: any caller). */
void soft_feed_arm_image(struct dirty_tracker *t, uintptr_t lo, uintptr_t hi);
bool soft_feed_armed(void);
/* libgc opened both files: its soft-dirty VDB reads our answers. */
bool soft_feed_in_use(void);
/* [start, start+len) is now under the tracker (allocation lock held):
 * reported written once, then as the tracker says.  0 or -ENOMEM. */
int soft_feed_track(uintptr_t start, size_t len);
/* Call fn for each run of pages a pass found written (world stopped). */
void soft_feed_on_run(void (*fn)(uintptr_t first, size_t npages));
/* GC_EVENT_MARK_START: the next pagemap read starts a new pass. */
void soft_feed_mark_start(void);
void soft_feed_stats(struct soft_feed_stats *st);

#endif
