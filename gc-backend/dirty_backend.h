/*
 * dirty_backend.h - what a dirty-tracking backend implements (internal).
 *
 * dirty.c (and the files dirty_tracker.h lists) owns the public API: it
 * keeps each tracker's list of ranges, the pages reported through
 * dirty_note_write(), the checking mode and the auto-selection.  A backend only has to answer "which pages of this range
 * were written since I last asked?" for the ranges it is given.
 *
 * Locking: dirty.c calls track/untrack/collect with the tracker's mutex
 * held, so a backend instance never sees two of those at once.  note_write
 * is different: it runs without any tracker lock (possibly while another
 * thread is inside collect, or shortly after an untrack), so it must be
 * lock-free and must not rely on a tracker's state still existing.
 */
#ifndef DIRTY_BACKEND_H
#define DIRTY_BACKEND_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dirty.h"
#include "dune.h"

#define DIRTY_PAGE_SHIFT DUNE_PAGE_SHIFT
#define DIRTY_PAGE_SIZE (1UL << DIRTY_PAGE_SHIFT)

struct dirty_ops {
    const char *name;      /* as accepted by DIRTY_BACKEND= */
    enum dirty_backend id;

    /* Can this backend run here, now?  0 or -errno, with the reason in why.
     * Probe by trying, not by assuming (pte: write a page, look for its D
     * bit; uffd: register, write, scan).  DIRTY_AUTO takes the first
     * backend of its order whose probe and open succeed. */
    int (*probe)(char *why, size_t whylen);

    /* Create / destroy one backend instance (one per tracker). */
    int (*open)(void **state, char *why, size_t whylen);
    void (*close)(void *state);

    /* Start tracking npages pages at start (page-aligned, no overlap with
     * the instance's other ranges).  The range must start clean.  *range
     * receives the backend's handle for it. */
    int (*track)(void *state, uintptr_t start, size_t npages, void **range);
    /* Stop tracking; the memory may already be unmapped. */
    void (*untrack)(void *state, void *range);

    /* Read-and-clear pages [first, first+n) of the range: bit i of bitmap
     * (LSB first) <- page first+i was written.  Overwrites the
     * ceil(n/64) words it covers.  Returns the dirty count or -errno; on
     * error dirty.c treats every page as dirty. */
    long (*collect)(void *state, void *range, size_t first, size_t n, uint64_t *bitmap);

    /* Optional (may be NULL): collect, and also set in `certain` (same
     * layout) the pages known to have been written, as opposed to those
     * reported only out of caution (a widened unprotect window, a range
     * that was remapped).  Checking mode uses it on the reference backend
     * so that such caution is not mistaken for a miss of the other one. */
    long (*collect_certain)(void *state, void *range, size_t first, size_t n, uint64_t *bitmap,
                            uint64_t *certain);

    /* Optional (may be NULL): collect, except that the pages set in keep
     * (same layout as bitmap, may be NULL) are only read, not re-armed: a
     * dirty kept page is reported, stays dirty and writable, and is
     * reported again by the next collect.  dirty.c uses it to hold pages
     * that are written again and again (dirty_hold.c). */
    long (*collect_except)(void *state, void *range, size_t first, size_t n, uint64_t *bitmap,
                           const uint64_t *keep);

    /* Optional (both or neither): leaving pages open (dirty_set_open).
     * set_open makes pages [first, first+n) of the range writable without
     * a fault (open) or arms them again so that the next write is caught
     * (!open).  collect_skip is collect, except that the pages set in skip
     * are neither read nor re-armed: it may report them or not (dirty.c
     * reports every open page anyway).  A backend that can hold (above)
     * may leave set_open NULL: keeping a page from being re-armed is all
     * that open needs there. */
    int (*set_open)(void *state, void *range, size_t first, size_t n, bool open);
    long (*collect_skip)(void *state, void *range, size_t first, size_t n, uint64_t *bitmap,
                         const uint64_t *skip);

    /* Optional (both or neither): dirty_collect_all() calls batch_begin
     * before it collects every range and batch_end after, so that work a
     * collect must do before the world resumes can be done once per pass
     * instead of once per range (pte: the TLB flush and shootdown).
     * Nothing is reported before batch_end returns; if it fails (-errno),
     * every page of every range is reported dirty. */
    void (*batch_begin)(void *state);
    int (*batch_end)(void *state);

    /* Optional (may be NULL): something outside the CPU's view is about to
     * write, or has written, [start, end) (page-aligned, within a range of
     * this backend).  dirty.c already records the pages as dirty; this hook
     * is for backends that must also make the write possible (mprotect). */
    void (*note_write)(uintptr_t start, uintptr_t end);
};

extern const struct dirty_ops dirty_uffd_ops, dirty_softdirty_ops, dirty_mprotect_ops;
#ifdef HAVE_DUNE
extern const struct dirty_ops dirty_pte_ops, dirty_kvm_ops, dirty_wp_ops;
#endif

/* ---- a range of the Dune backends (dirty_dune.c) ---- */
struct dune_range {
    uintptr_t start;
    size_t npages;
    unsigned long gen;     /* the VM (dune_vm_generation) last read from */
    unsigned long log_gen; /* kvm: the VM whose dirty log covers the range */
    uint64_t *owed;        /* pages to report dirty once: written under no VM */
    size_t nowed;
};
struct dune_range *dune_range_new(uintptr_t start, size_t npages);
void dune_range_free(struct dune_range *r);
bool dune_range_vm_changed(struct dune_range *r);
long dune_range_finish(struct dune_range *r, size_t first, size_t n, uint64_t *bitmap, long got);
void dune_range_start_clean(struct dune_range *r,
                            long (*read_clear)(void *, size_t, uint64_t *));
int dune_backend_open(int (*probe)(char *, size_t), void **state, char *why, size_t whylen);
void dune_backend_close(void *state);
void dune_backend_untrack(void *state, void *range);
/* The TLB batch of dirty_collect_all (pte, wp): batch_begin, batch_end. */
void dune_backend_batch_begin(void *state);
int dune_backend_batch_end(void *state);

/* ---- holding pages written again and again (dirty_hold.c) ---- */
struct dirty_hold {
    size_t npages;
    uint8_t *phase; /* collects since the page was last re-armed */
    uint64_t *held; /* phase > 0 */
    uint64_t *due;  /* phase == hold: re-armed at the next collect */
    uint64_t *mask; /* scratch: the keep mask handed to the backend */
};
struct dirty_hold *dirty_hold_new(size_t npages);
void dirty_hold_free(struct dirty_hold *h);
const uint64_t *dirty_hold_keep(struct dirty_hold *h, bool all, size_t first, size_t n);
void dirty_hold_update(struct dirty_hold *h, unsigned hold, size_t first, size_t n,
                       const uint64_t *dirty);

/* ---- helpers shared by the backends (dirty_registry.c, dirty_rtable.c,
 * dirty_bits.c) ---- */

/* snprintf into why (if non-NULL) and return -err. */
int dirty_fail(char *why, size_t whylen, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * A table of address ranges that signal handlers and other lock-free
 * readers can search while writers add and remove entries.  Writers
 * (serialised by the table's mutex) publish a new sorted snapshot; old
 * snapshots, and objects passed to rtable_remove(), are freed only when no
 * reader is inside, so a reader never touches freed memory and never waits.
 */
struct rtable_ent {
    uintptr_t start, end;
    void *obj;
};
struct rtable_snap {
    size_t n;
    struct rtable_ent e[]; /* sorted by start; entries may overlap */
};
struct rtable;

struct rtable *rtable_new(void);
int rtable_add(struct rtable *rt, uintptr_t start, uintptr_t end, void *obj);
/* Remove obj; free_obj(obj) runs once no reader can still see it. */
void rtable_remove(struct rtable *rt, void *obj, void (*free_obj)(void *));
/* Async-signal-safe: enter returns the current snapshot (never NULL);
 * exit must follow, on the same table. */
const struct rtable_snap *rtable_enter(struct rtable *rt);
void rtable_exit(struct rtable *rt);

/* Bitmaps: 1 bit per page, LSB first. */
#define DIRTY_WORDS(npages) (((npages) + 63) / 64)
static inline void dirty_bit_set(uint64_t *b, size_t i)
{
    b[i / 64] |= 1ULL << (i % 64);
}
static inline int dirty_bit_get(const uint64_t *b, size_t i)
{
    return (b[i / 64] >> (i % 64)) & 1;
}
static inline void dirty_bit_put(uint64_t *b, size_t i, int v)
{
    b[i / 64] = (b[i / 64] & ~(1ULL << (i % 64))) | ((uint64_t)(v != 0) << (i % 64));
}
/* Set bits [from, to). */
void dirty_bits_set_range(uint64_t *b, size_t from, size_t to);
/* Same, with atomic OR (for bitmaps written by signal handlers). */
void dirty_bits_set_range_atomic(_Atomic uint64_t *b, size_t from, size_t to);
/* Number of set bits among the first n. */
long dirty_bits_count(const uint64_t *b, size_t n);

/* dirty_sigchain.c: install `ours` for sig (SIGSEGV or SIGBUS) and keep it
 * first: the program's later sigaction()/signal() calls for sig are only
 * recorded.  0 or -errno.  Once taken, for the life of the process. */
int dirty_sigchain_take(int sig, const struct sigaction *ours);
/* From the handler: run the program's disposition for a fault that is not
 * ours, as the kernel would have (async-signal-safe). */
void dirty_sigchain_pass(int sig, siginfo_t *si, void *uctx);

#endif
