/*
 * dirty_mprotect.c - native reference backend: keep clean pages read-only
 * and catch the first write to each with SIGSEGV.
 *
 * Invariant, per tracked page: if the page is writable, its dirty bit is set
 * (or the fault handler that made it writable is about to set it).  The
 * handler therefore makes the page writable *before* setting the bit, and
 * collect clears the bit *before* protecting the page again; any
 * interleaving of the two leaves either the bit set or the page read-only.
 *
 * All mprotect ranges of all trackers sit in one lock-free table so the
 * signal handler can find them; overlapping ranges (two trackers watching
 * the same memory) all get the bit.  Faults outside our ranges, and faults
 * that are not write-permission faults, go to the program's SIGSEGV
 * disposition, installed before or after ours (dirty_sigchain.c).
 *
 * What this backend cannot see: the kernel writing into a read-only page
 * (read(), recvmsg...) does not fault, the system call fails with EFAULT.
 * dirty_note_write() called *before* such a call unprotects the pages and
 * marks them dirty, after which the call succeeds.
 *
 * Each protection change can split a VMA; with many scattered dirty pages
 * the process can hit vm.max_map_count.  If unprotecting one page fails the
 * handler widens the window (64 pages, then the whole range), marking every
 * unprotected page dirty, so a write is never lost.
 */
#define _GNU_SOURCE
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "dirty_backend.h"

struct mp_range {
    uintptr_t start, end;
    size_t npages;
    _Atomic uint64_t *bits; /* set by the handler, cleared by collect */
    _Atomic uint64_t *sure; /* subset: pages that took a write fault (or
                               were noted), not just unprotected as a
                               precaution; for checking mode */
};

static struct rtable *ranges;
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static bool installed;

/* Mark [lo, hi) in every range overlapping it: in `sure` if it was really
 * written, then in `bits` (that order: collect consumes `sure` only for
 * pages whose `bits` it finds set, so no stale `sure` is left behind). */
static void mark(uintptr_t lo, uintptr_t hi, bool written)
{
    const struct rtable_snap *s = rtable_enter(ranges);
    for (size_t i = 0; i < s->n && s->e[i].start < hi; i++) {
        struct mp_range *r = s->e[i].obj;
        if (s->e[i].end <= lo)
            continue;
        uintptr_t a = lo > r->start ? lo : r->start, b = hi < r->end ? hi : r->end;
        size_t from = (a - r->start) >> DIRTY_PAGE_SHIFT;
        size_t to = (b - r->start + DIRTY_PAGE_SIZE - 1) >> DIRTY_PAGE_SHIFT;
        if (written)
            dirty_bits_set_range_atomic(r->sure, from, to);
        dirty_bits_set_range_atomic(r->bits, from, to);
    }
    rtable_exit(ranges);
}

/* Make [lo, hi) writable, then mark it dirty (see the invariant above).
 * [wlo, whi) is the part known to be written.  Async-signal-safe.
 * Returns 0 or -errno from mprotect. */
static int unprotect(uintptr_t lo, uintptr_t hi, uintptr_t wlo, uintptr_t whi)
{
    if (mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE) < 0)
        return -errno;
    if (wlo < whi)
        mark(wlo, whi, true);
    mark(lo, hi, false);
    return 0;
}

/* The tracked range containing addr, or NULL.  Caller is inside the table. */
static const struct rtable_ent *lookup(const struct rtable_snap *s, uintptr_t addr)
{
    for (size_t i = 0; i < s->n && s->e[i].start <= addr; i++)
        if (addr < s->e[i].end)
            return &s->e[i];
    return NULL;
}

/* Unprotect the faulting page; widen the window if the kernel refuses. */
static bool handle_write(uintptr_t addr)
{
    const struct rtable_snap *s = rtable_enter(ranges);
    const struct rtable_ent *e = lookup(s, addr);
    uintptr_t rs = e ? e->start : 0, re = e ? e->end : 0;
    rtable_exit(ranges);
    if (!e)
        return false;
    uintptr_t page = addr & ~(DIRTY_PAGE_SIZE - 1), pend = page + DIRTY_PAGE_SIZE;
    if (unprotect(page, pend, page, pend) == 0)
        return true;
    uintptr_t blk = 64 * DIRTY_PAGE_SIZE;
    uintptr_t lo = page & ~(blk - 1), hi = lo + blk;
    if (unprotect(lo > rs ? lo : rs, hi < re ? hi : re, page, pend) == 0)
        return true;
    return unprotect(rs, re, page, pend) == 0;
}

static bool is_write_fault(const siginfo_t *si, const void *uctx)
{
    if (si->si_code != SEGV_ACCERR)
        return false;
#if defined(__x86_64__)
    const ucontext_t *uc = uctx;
    return (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0; /* #PF error code: W */
#else
    (void)uctx;
    return true; /* cannot tell: a read fault would then loop on SIGSEGV */
#endif
}

static void on_segv(int sig, siginfo_t *si, void *uctx)
{
    int saved = errno;
    if (!(is_write_fault(si, uctx) && handle_write((uintptr_t)si->si_addr)))
        dirty_sigchain_pass(sig, si, uctx);
    errno = saved;
}

/* Install the SIGSEGV handler when the first range is tracked, not when
 * the tracker opens, as stock libgc installs its own when incremental mode
 * starts: a program that sets up its own SIGSEGV handler in between (ECL
 * does, at boot) then has its handler under ours, and we chain to it for
 * every fault that is not ours.  A handler installed after ours is only
 * recorded (dirty_sigchain.c): ours stays first and passes it the faults
 * that are not ours. */
static int install_handler(void)
{
    int err = 0;
    pthread_mutex_lock(&install_lock);
    if (!installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
        /* Nothing may interrupt the unprotect: a collector's thread-suspend
         * handler (SIGPWR in bdwgc) would write to the still-protected page
         * with SIGSEGV blocked, and the kernel would kill the process.
         * Synchronous signals stay deliverable. */
        sigfillset(&sa.sa_mask);
        sigdelset(&sa.sa_mask, SIGSEGV);
        sigdelset(&sa.sa_mask, SIGBUS);
        sigdelset(&sa.sa_mask, SIGILL);
        sigdelset(&sa.sa_mask, SIGFPE);
        sigdelset(&sa.sa_mask, SIGTRAP);
        err = dirty_sigchain_take(SIGSEGV, &sa);
        installed = err == 0;
    }
    pthread_mutex_unlock(&install_lock);
    return err;
}

/* The table of ranges exists from the first open on (dirty_note_write may
 * look at it before anything is tracked). */
static int make_table(char *why, size_t whylen)
{
    int err = 0;
    pthread_mutex_lock(&install_lock);
    if (!ranges)
        ranges = rtable_new();
    if (!ranges)
        err = dirty_fail(why, whylen, ENOMEM, "out of memory");
    pthread_mutex_unlock(&install_lock);
    return err;
}

static int mp_probe(char *why, size_t whylen)
{
    (void)why;
    (void)whylen;
    return 0; /* mprotect and SIGSEGV exist everywhere we build */
}

/* Once installed, the handler stays for the life of the process: another
 * handler may have been installed on top of ours and chain to it. */
static int mp_open(void **state, char *why, size_t whylen)
{
    *state = NULL;
    return make_table(why, whylen);
}

static void mp_close(void *state)
{
    (void)state;
}

static void free_range(void *p)
{
    struct mp_range *r = p;
    free(r->bits);
    free(r->sure);
    free(r);
}

static int mp_track(void *state, uintptr_t start, size_t npages, void **range)
{
    (void)state;
    int err = install_handler();
    if (err)
        return err;
    struct mp_range *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->start = start;
    r->npages = npages;
    r->end = start + (npages << DIRTY_PAGE_SHIFT);
    r->bits = calloc(DIRTY_WORDS(npages), sizeof(uint64_t));
    r->sure = calloc(DIRTY_WORDS(npages), sizeof(uint64_t));
    err = r->bits && r->sure ? rtable_add(ranges, r->start, r->end, r) : -ENOMEM;
    if (err) {
        free_range(r);
        return err;
    }
    /* Published first, so a write right after the protection is ours. */
    if (mprotect((void *)start, r->end - start, PROT_READ) < 0) {
        err = -errno;
        rtable_remove(ranges, r, free_range);
        return err;
    }
    *range = r;
    return 0;
}

static void mp_untrack(void *state, void *range)
{
    (void)state;
    struct mp_range *r = range;
    /* Writable again before we stop claiming its faults; overlapping ranges
     * of other trackers get their bits set by unprotect(). */
    unprotect(r->start, r->end, 0, 0);
    rtable_remove(ranges, r, free_range);
}

/* Protect the run [a, b) of pages again; on failure put the bits back so
 * the pages are reported again next time (they stay writable). */
static void reprotect(struct mp_range *r, size_t a, size_t b)
{
    uintptr_t lo = r->start + (a << DIRTY_PAGE_SHIFT);
    if (mprotect((void *)lo, (b - a) << DIRTY_PAGE_SHIFT, PROT_READ) < 0)
        dirty_bits_set_range_atomic(r->bits, a, b);
}

static long mp_collect_certain(void *state, void *range, size_t first, size_t n,
                               uint64_t *bitmap, uint64_t *certain)
{
    (void)state;
    struct mp_range *r = range;
    memset(bitmap, 0, DIRTY_WORDS(n) * sizeof(uint64_t));
    if (certain)
        memset(certain, 0, DIRTY_WORDS(n) * sizeof(uint64_t));
    long count = 0;
    size_t run = 0;
    bool in_run = false;
    for (size_t i = 0; i < n; i++) {
        size_t p = first + i;
        uint64_t bit = 1ULL << (p % 64);
        bool dirty = false;
        /* Skip clean words quickly; clear-then-protect (see top). */
        if (p % 64 == 0 && i + 64 <= n && atomic_load(&r->bits[p / 64]) == 0) {
            if (in_run)
                reprotect(r, run, p);
            in_run = false;
            i += 63;
            continue;
        }
        if (atomic_load_explicit(&r->bits[p / 64], memory_order_relaxed) & bit)
            dirty = atomic_fetch_and(&r->bits[p / 64], ~bit) & bit;
        if (dirty) {
            if ((atomic_fetch_and(&r->sure[p / 64], ~bit) & bit) && certain)
                dirty_bit_set(certain, i);
            dirty_bit_set(bitmap, i);
            count++;
            if (!in_run)
                run = p;
            in_run = true;
        } else if (in_run) {
            reprotect(r, run, p);
            in_run = false;
        }
    }
    if (in_run)
        reprotect(r, run, first + n);
    return count;
}

static long mp_collect(void *state, void *range, size_t first, size_t n, uint64_t *bitmap)
{
    return mp_collect_certain(state, range, first, n, bitmap, NULL);
}

/* Are all pages of [lo, hi) dirty, hence writable, in every range that
 * covers them?  (A range's collect clears a bit before it protects the
 * page again; a collect running at this moment may protect the pages
 * just after we looked, exactly as it could just after an unprotect.) */
static bool all_dirty(uintptr_t lo, uintptr_t hi)
{
    bool all = true;
    const struct rtable_snap *s = rtable_enter(ranges);
    for (size_t i = 0; all && i < s->n && s->e[i].start < hi; i++) {
        struct mp_range *r = s->e[i].obj;
        if (s->e[i].end <= lo)
            continue;
        uintptr_t a = lo > r->start ? lo : r->start, b = hi < r->end ? hi : r->end;
        size_t to = (b - r->start + DIRTY_PAGE_SIZE - 1) >> DIRTY_PAGE_SHIFT;
        for (size_t p = (a - r->start) >> DIRTY_PAGE_SHIFT; all && p < to; p++)
            all = atomic_load_explicit(&r->bits[p / 64], memory_order_relaxed) >> (p % 64) & 1;
    }
    rtable_exit(ranges);
    return all;
}

/* Pages already dirty are writable: no system call for them, which keeps
 * noting cheap when it is done often (libgc-dune notes pointer-free
 * objects as they are allocated). */
static void mp_note_write(uintptr_t start, uintptr_t end)
{
    if (!ranges)
        return;
    if (all_dirty(start, end))
        mark(start, end, true);
    else
        unprotect(start, end, start, end);
}

const struct dirty_ops dirty_mprotect_ops = {
    .name = "mprotect",
    .id = DIRTY_MPROTECT,
    .probe = mp_probe,
    .open = mp_open,
    .close = mp_close,
    .track = mp_track,
    .untrack = mp_untrack,
    .collect = mp_collect,
    .collect_certain = mp_collect_certain,
    .note_write = mp_note_write,
};
