/*
 * dirty_check.c - checking mode: the backend in use and a reference backend
 * collect the same ranges, and every page the reference saw written must
 * be reported by the backend too (dirty.h: dirty_open_checked).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dirty_tracker.h"

int dirty_check_stats(const struct dirty_tracker *t, struct dirty_check_stats *st)
{
    if (!t || !t->ref.ops)
        return -EINVAL;
    pthread_mutex_lock((pthread_mutex_t *)&t->lock);
    *st = t->stats;
    pthread_mutex_unlock((pthread_mutex_t *)&t->lock);
    return 0;
}

static void report_miss(const struct drange *d, size_t page, const struct dirty_tracker *t)
{
    fprintf(stderr,
            "dirty: CHECK FAILED: %s missed a write to page %#lx that %s saw "
            "(range %#lx, %zu pages; pid %d, check %lu)\n",
            t->main.ops->name, (unsigned long)(d->start + (page << DIRTY_PAGE_SHIFT)),
            t->ref.ops->name, (unsigned long)d->start, d->npages, (int)getpid(),
            (unsigned long)t->stats.cycles);
}

/* Compare the backend's answer `got` (pages first.. of d) with the
 * reference's.  Only pages the reference knows were written count
 * (ref_sure, not those it reported out of caution).  The two collects are
 * not simultaneous, so one cycle of skew is allowed either way:
 *  - the backend may report a page one cycle before the reference (a write
 *    landing between the two collects): d->carry excuses it;
 *  - the reference may report a page before the write has landed (mprotect
 *    records a write in its fault handler, before the faulting instruction
 *    is retried; a thread can be stopped in between): the page is then owed
 *    by the backend, and only a page still owed two collects later is a
 *    miss.  So a miss is reported up to two collects after the fact. */
void dirty_check_cycle(struct dirty_tracker *t, struct drange *d, size_t first, size_t n,
                       const uint64_t *got)
{
    unsigned long missed = 0, extra = 0;
    for (size_t i = 0; i < n; i++) {
        int ref = dirty_bit_get(d->ref_bits, i), mine = dirty_bit_get(got, i);
        size_t p = first + i;
        int carried = dirty_bit_get(d->carry, p);
        dirty_bit_put(d->carry, p, mine);
        if (!mine && dirty_bit_get(d->owed2, p) && missed++ < 8)
            report_miss(d, p, t);
        dirty_bit_put(d->owed2, p, !mine && dirty_bit_get(d->owed1, p));
        dirty_bit_put(d->owed1, p, !mine && !carried && dirty_bit_get(d->ref_sure, i));
        if (mine && !ref)
            extra++;
    }
    t->stats.cycles++;
    t->stats.pages_checked += n;
    t->stats.missed += missed;
    t->stats.extra += extra;
    if (missed && t->abort_on_miss) {
        fprintf(stderr, "dirty: %lu missed page(s); aborting (checking mode)\n", missed);
        abort();
    }
}

/* The reference's answer into d->ref_bits, its certain part into
 * d->ref_sure.  After an error everything is dirty and nothing certain. */
void dirty_check_reference(struct dirty_tracker *t, struct drange *d, size_t first, size_t n)
{
    const struct dirty_ops *ops = t->ref.ops;
    size_t bytes = DIRTY_WORDS(n) * sizeof(uint64_t);
    long r;
    if (ops->collect_certain) {
        r = ops->collect_certain(t->ref.state, d->ref_priv, first, n, d->ref_bits, d->ref_sure);
    } else {
        r = ops->collect(t->ref.state, d->ref_priv, first, n, d->ref_bits);
        memcpy(d->ref_sure, d->ref_bits, bytes);
    }
    if (r < 0) {
        memset(d->ref_bits, 0, bytes);
        dirty_bits_set_range(d->ref_bits, 0, n);
        memset(d->ref_sure, 0, bytes);
    }
}
