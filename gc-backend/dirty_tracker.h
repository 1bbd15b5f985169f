/*
 * dirty_tracker.h - what the front-end files share (internal): a tracker,
 * its ranges, and the helpers each file provides.
 *   dirty.c           trackers: open, track, collect, dirty_note_write()
 *   dirty_registry.c  the backends by number and name, probing, auto order
 *   dirty_env.c       the DIRTY_* environment variables
 *   dirty_check.c     checking mode: comparison with a reference backend
 *   dirty_bits.c      bitmap helpers;  dirty_rtable.c  lock-free range table
 */
#ifndef DIRTY_TRACKER_H
#define DIRTY_TRACKER_H

#include <pthread.h>
#include <stdbool.h>

#include "dirty_backend.h"

/* Internal: not part of the library's interface (and never interposing
 * an application's symbols of the same names). */
#pragma GCC visibility push(hidden)

/* One backend instance. */
struct inst {
    const struct dirty_ops *ops;
    void *state;
};

/* One tracked range of one tracker. */
struct drange {
    uintptr_t start;
    size_t npages;
    void *priv, *ref_priv;           /* backend handles */
    void (*note_hook)(uintptr_t, uintptr_t);     /* copies of ops->note_write, */
    void (*ref_note_hook)(uintptr_t, uintptr_t); /* usable after the tracker is gone */
    atomic_bool any_noted;           /* fast path: nothing in `noted` */
    _Atomic uint64_t *noted;         /* pages given to dirty_note_write() */
    uint64_t *scratch;               /* collect_all's output */
    struct dirty_hold *hold;         /* NULL unless the backend can hold */
    uint64_t *open, *skip;           /* dirty_set_open's pages; scratch */
    size_t nopen;                    /* pages set in open */
    uint64_t *ref_bits, *ref_sure;   /* checking mode: reference's answer, */
    uint64_t *carry;                 /* its certain part, our last answer, */
    uint64_t *owed1, *owed2;         /* pages it still owes (1, 2 cycles) */
};

struct dirty_tracker {
    pthread_mutex_t lock;
    enum dirty_backend id;
    struct inst main, ref; /* ref.ops == NULL unless checking */
    bool abort_on_miss;
    struct dirty_check_stats stats;
    struct drange **r;     /* sorted by start */
    size_t nr, capr;
    unsigned hold;         /* collects a rewritten page is held (dirty_hold.c) */
    bool hold_all;         /* ... and every written page, not only rewritten ones */
    char why[512];
};

/* dirty_registry.c */
/* The backend's operations, NULL if not built. */
const struct dirty_ops *dirty_ops_of(enum dirty_backend b);
/* Probe and open backend b into *in; on failure append the reason to why. */
int dirty_open_one(enum dirty_backend b, struct inst *in, char *why, size_t whylen);
/* DIRTY_AUTO: open into *in the cheapest working backend among mask (bit
 * b for backend b) by measured cost (dirty_calibrate.c); inside Dune the
 * fixed Dune order instead.  Its number into *id, reasons for the others
 * in why, how the choice was made (the figures) in how. */
int dirty_open_auto(struct inst *in, enum dirty_backend *id, unsigned mask, char *why,
                    size_t whylen, char *how, size_t howlen);
/* Append to the string in buf (never past size). */
void dirty_append(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* dirty_check.c (called with t->lock held) */
void dirty_check_reference(struct dirty_tracker *t, struct drange *d, size_t first, size_t n);
void dirty_check_cycle(struct dirty_tracker *t, struct drange *d, size_t first, size_t n,
                       const uint64_t *got);

/* dirty_bits.c */
/* Move bits [first, first+n) of the atomic bitmap src into dst (OR, bit 0
 * of dst = bit `first` of src), clearing them in src. */
void dirty_bits_take(_Atomic uint64_t *src, size_t first, size_t n, uint64_t *dst);
/* dst[0, n) |= src[first, first+n) (bit 0 of dst = bit `first` of src). */
void dirty_bits_or_from(const uint64_t *src, size_t first, size_t n, uint64_t *dst);

#pragma GCC visibility pop

#endif
