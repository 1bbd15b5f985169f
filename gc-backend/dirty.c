/*
 * dirty.c - the dirty-tracking front end: trackers, their ranges,
 * read-and-clear and dirty_note_write().  The backends live in
 * dirty_<name>.c and implement struct dirty_ops (dirty_backend.h); the
 * registry and auto order, the environment, checking mode and the helpers
 * are in the files dirty_tracker.h lists.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dirty.h"
#include "dirty_env.h"
#include "dirty_tracker.h"

/* ------------------------------------------------------------------ */
/* trackers                                                             */

/* Every range of every tracker, for dirty_note_write(). */
static struct rtable *_Atomic all_ranges;
static pthread_once_t all_ranges_once = PTHREAD_ONCE_INIT;
static void all_ranges_init(void)
{
    atomic_store(&all_ranges, rtable_new());
}

static __thread char last_error[512];

const char *dirty_last_error(void)
{
    return last_error;
}

enum dirty_backend dirty_backend_of(const struct dirty_tracker *t)
{
    return t ? t->id : DIRTY_AUTO;
}

enum dirty_backend dirty_reference_of(const struct dirty_tracker *t)
{
    return t && t->ref.ops ? t->ref.ops->id : DIRTY_AUTO;
}

const char *dirty_why(const struct dirty_tracker *t)
{
    return t ? t->why : "";
}

int dirty_set_hold(struct dirty_tracker *t, unsigned collects)
{
    if (!t || collects > DIRTY_HOLD_MAX)
        return -EINVAL;
    if (!t->main.ops->collect_except)
        return collects ? -ENOTSUP : 0;
    pthread_mutex_lock(&t->lock);
    t->hold = collects;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

unsigned dirty_hold_of(const struct dirty_tracker *t)
{
    if (!t)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&t->lock);
    unsigned hold = t->hold;
    pthread_mutex_unlock((pthread_mutex_t *)&t->lock);
    return hold;
}

int dirty_set_hold_all(struct dirty_tracker *t, int on)
{
    if (!t)
        return -EINVAL;
    if (!t->main.ops->collect_except)
        return on ? -ENOTSUP : 0;
    pthread_mutex_lock(&t->lock);
    t->hold_all = on != 0;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

int dirty_hold_all_of(const struct dirty_tracker *t)
{
    if (!t)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&t->lock);
    int all = t->hold_all;
    pthread_mutex_unlock((pthread_mutex_t *)&t->lock);
    return all;
}

static void tracker_free(struct dirty_tracker *t)
{
    if (t->main.ops)
        t->main.ops->close(t->main.state);
    if (t->ref.ops)
        t->ref.ops->close(t->ref.state);
    pthread_mutex_destroy(&t->lock);
    free(t->r);
    free(t);
}

/* Checking mode's default reference: one that cannot change what the
 * program can do, and never the backend being checked (two trackers of
 * one kind on the same pages see each other's faults, not the program's
 * writes).  uffd sees kernel writes and never faults the program; then
 * mprotect (whose protection makes system calls writing tracked pages fail
 * with EFAULT unless they are noted first, see dirty_note_write); for
 * mprotect itself without uffd (a kernel before 6.7), softdirty. */
static enum dirty_backend default_reference(enum dirty_backend checked)
{
    if (checked != DIRTY_UFFD && dirty_probe(DIRTY_UFFD, NULL, 0) == 0)
        return DIRTY_UFFD;
    if (checked != DIRTY_MPROTECT)
        return DIRTY_MPROTECT;
    return DIRTY_SOFTDIRTY;
}

/* Open `want` (or the auto choice); with `checking`, checked against ref
 * (DIRTY_AUTO: the default reference). */
static int open_tracker(enum dirty_backend want, bool checking, enum dirty_backend ref,
                        bool abort_on_miss, const char *origin, const struct dirty_env *e,
                        struct dirty_tracker **out)
{
    *out = NULL;
    last_error[0] = '\0';
    pthread_once(&all_ranges_once, all_ranges_init);
    if (!all_ranges)
        return dirty_fail(last_error, sizeof(last_error), ENOMEM, "out of memory");
    if ((unsigned)want >= DIRTY_NBACKENDS || (unsigned)ref >= DIRTY_NBACKENDS)
        return dirty_fail(last_error, sizeof(last_error), EINVAL, "bad backend number");

    struct dirty_tracker *t = calloc(1, sizeof(*t));
    if (!t)
        return dirty_fail(last_error, sizeof(last_error), ENOMEM, "out of memory");
    pthread_mutex_init(&t->lock, NULL);
    t->abort_on_miss = abort_on_miss;

    char rejected[384] = "";
    int err;
    if (want == DIRTY_AUTO) {
        char how[300];
        err = dirty_open_auto(&t->main, &t->id, e->candidates, rejected, sizeof(rejected), how,
                              sizeof(how));
        snprintf(t->why, sizeof(t->why), "%s: auto-selected %s (%s)%s%s", origin,
                 err ? "nothing" : dirty_backend_name(t->id), how,
                 rejected[0] ? "; not usable: " : "", rejected);
    } else {
        err = dirty_open_one(want, &t->main, rejected, sizeof(rejected));
        t->id = want;
        snprintf(t->why, sizeof(t->why), "%s: %s%s%s", origin, dirty_backend_name(want),
                 err ? " unusable: " : "", rejected);
    }
    bool dflt = checking && ref == DIRTY_AUTO;
    if (err == 0 && dflt)
        ref = default_reference(t->id);
    if (err == 0 && checking && ref == t->id) {
        /* uffd: a page can be registered with one userfaultfd only; the
         * others would see each other's clears and faults */
        dirty_append(t->why, sizeof(t->why), "; %s cannot be checked against itself",
                     dirty_backend_name(ref));
        err = -EINVAL;
    } else if (err == 0 && checking) {
        char rr[384] = "";
        err = dirty_open_one(ref, &t->ref, rr, sizeof(rr));
        dirty_append(t->why, sizeof(t->why), "; checked against %s%s%s%s",
                     dirty_backend_name(ref), dflt ? " (the default reference)" : "",
                     err ? ", which is unusable: " : "", rr);
    }
    if (err) {
        snprintf(last_error, sizeof(last_error), "%s", t->why);
        tracker_free(t);
        return err;
    }
    /* -ENOTSUP, from a backend that re-arms every page, is not an error */
    dirty_set_hold(t, e->hold);
    dirty_set_hold_all(t, e->hold_all);
    *out = t;
    return 0;
}

int dirty_open_env(enum dirty_backend want, const char *origin, const struct dirty_env *e,
                   struct dirty_tracker **out)
{
    return open_tracker(want, e->check, e->ref, true, origin, e, out);
}

int dirty_open(enum dirty_backend want, struct dirty_tracker **out)
{
    struct dirty_env e;
    dirty_env_read(&e);
    const char *origin = want == DIRTY_AUTO ? "default" : "requested by caller";
    if (e.backend_var[0] && !e.off) {
        want = e.backend;
        origin = e.backend_var;
    }
    return dirty_open_env(want, origin, &e, out);
}

int dirty_open_checked(enum dirty_backend want, enum dirty_backend ref, int abort_on_miss,
                       struct dirty_tracker **out)
{
    struct dirty_env e;
    dirty_env_read(&e);
    return open_tracker(want, true, ref, abort_on_miss != 0, "checked mode", &e, out);
}

static void drange_free(void *p)
{
    struct drange *d = p;
    dirty_hold_free(d->hold);
    free(d->open);
    free(d->skip);
    free(d->noted);
    free(d->scratch);
    free(d->ref_bits);
    free(d->ref_sure);
    free(d->carry);
    free(d->owed1);
    free(d->owed2);
    free(d);
}

static struct drange *drange_new(uintptr_t start, size_t npages, bool checking, bool can_hold)
{
    struct drange *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    size_t bytes = DIRTY_WORDS(npages) * sizeof(uint64_t);
    d->start = start;
    d->npages = npages;
    d->noted = calloc(1, bytes);
    d->scratch = calloc(1, bytes);
    if (checking) {
        d->ref_bits = calloc(1, bytes);
        d->ref_sure = calloc(1, bytes);
        d->carry = calloc(1, bytes);
        d->owed1 = calloc(1, bytes);
        d->owed2 = calloc(1, bytes);
    }
    if (can_hold)
        d->hold = dirty_hold_new(npages);
    if (!d->noted || !d->scratch || (can_hold && !d->hold) ||
        (checking && (!d->ref_bits || !d->ref_sure || !d->carry || !d->owed1 || !d->owed2))) {
        drange_free(d);
        return NULL;
    }
    return d;
}

static uintptr_t drange_end(const struct drange *d)
{
    return d->start + (d->npages << DIRTY_PAGE_SHIFT);
}

/* Index of the first range whose end is above addr (t->r is sorted and
 * non-overlapping). */
static size_t find_index(const struct dirty_tracker *t, uintptr_t addr)
{
    size_t lo = 0, hi = t->nr;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (drange_end(t->r[mid]) <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int check_args(void *start, size_t len)
{
    if (((uintptr_t)start | len) & (DIRTY_PAGE_SIZE - 1) || len == 0 ||
        (uintptr_t)start + len < (uintptr_t)start)
        return -EINVAL;
    return 0;
}

static int insert_range(struct dirty_tracker *t, size_t at, struct drange *d)
{
    if (t->nr == t->capr) {
        size_t cap = t->capr ? 2 * t->capr : 8;
        struct drange **r = realloc(t->r, cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        t->r = r;
        t->capr = cap;
    }
    memmove(&t->r[at + 1], &t->r[at], (t->nr - at) * sizeof(*t->r));
    t->r[at] = d;
    t->nr++;
    return 0;
}

/* The same answer from every backend for a range it cannot track: -EINVAL
 * for NULL (or a bad length or alignment), -ENOMEM unless every page of
 * it is mapped.  msync(MS_ASYNC) checks the mapping and does nothing else
 * for the memory a tracker can watch. */
static int check_track_args(void *start, size_t len)
{
    if (!start || check_args(start, len))
        return -EINVAL;
    if (msync(start, len, MS_ASYNC) < 0)
        return errno == ENOMEM ? -ENOMEM : -EINVAL;
    return 0;
}

int dirty_track(struct dirty_tracker *t, void *start, size_t len)
{
    if (!t)
        return -EINVAL;
    int bad = check_track_args(start, len);
    if (bad)
        return bad;
    uintptr_t s = (uintptr_t)start;
    size_t npages = len >> DIRTY_PAGE_SHIFT;
    pthread_mutex_lock(&t->lock);
    size_t at = find_index(t, s);
    int err = -EEXIST;
    if (at < t->nr && t->r[at]->start < s + len)
        goto out; /* overlaps a tracked range */
    err = -ENOMEM;
    struct drange *d = drange_new(s, npages, t->ref.ops != NULL, t->main.ops->collect_except);
    if (!d)
        goto out;
    err = t->main.ops->track(t->main.state, s, npages, &d->priv);
    if (err)
        goto out_free;
    if (t->ref.ops) {
        err = t->ref.ops->track(t->ref.state, s, npages, &d->ref_priv);
        if (err)
            goto out_untrack;
    }
    d->note_hook = t->main.ops->note_write;
    d->ref_note_hook = t->ref.ops ? t->ref.ops->note_write : NULL;
    err = insert_range(t, at, d);
    if (err == 0)
        err = rtable_add(all_ranges, s, s + len, d);
    if (err == 0)
        goto out;
    if (t->nr > at && t->r[at] == d) {
        memmove(&t->r[at], &t->r[at + 1], (t->nr - at - 1) * sizeof(*t->r));
        t->nr--;
    }
    if (t->ref.ops)
        t->ref.ops->untrack(t->ref.state, d->ref_priv);
out_untrack:
    t->main.ops->untrack(t->main.state, d->priv);
out_free:
    drange_free(d);
out:
    pthread_mutex_unlock(&t->lock);
    return err;
}

/* Remove t->r[i]; called with t->lock held. */
static void untrack_at(struct dirty_tracker *t, size_t i)
{
    struct drange *d = t->r[i];
    t->main.ops->untrack(t->main.state, d->priv);
    if (t->ref.ops)
        t->ref.ops->untrack(t->ref.state, d->ref_priv);
    memmove(&t->r[i], &t->r[i + 1], (t->nr - i - 1) * sizeof(*t->r));
    t->nr--;
    /* dirty_note_write() may still be looking at d: free it later. */
    rtable_remove(all_ranges, d, drange_free);
}

int dirty_untrack(struct dirty_tracker *t, void *start, size_t len)
{
    if (!t || check_args(start, len))
        return -EINVAL;
    pthread_mutex_lock(&t->lock);
    size_t i = find_index(t, (uintptr_t)start);
    int err = -ENOENT;
    if (i < t->nr && t->r[i]->start == (uintptr_t)start &&
        t->r[i]->npages == len >> DIRTY_PAGE_SHIFT) {
        untrack_at(t, i);
        err = 0;
    }
    pthread_mutex_unlock(&t->lock);
    return err;
}

void dirty_close(struct dirty_tracker *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    while (t->nr)
        untrack_at(t, t->nr - 1);
    pthread_mutex_unlock(&t->lock);
    tracker_free(t);
}

/* A collect whose answer, or whose flush, could not be trusted reports the
 * pages and owes them again: writes made through stale TLB entries until
 * the backend recovers (pte: a shootdown that succeeds) set no bit, so the
 * next successful collect must report the pages once more. */
static void report_again(struct drange *d, size_t first, size_t n)
{
    dirty_bits_set_range_atomic(d->noted, first, first + n);
    atomic_store(&d->any_noted, true);
}

/* Read-and-clear pages [first, first+n) of d into out (n bits).  Called with
 * t->lock held.  Never loses a page: a backend error reports all of them. */
static long collect_range(struct dirty_tracker *t, struct drange *d, size_t first, size_t n,
                          uint64_t *out)
{
    /* The reference goes first: a write landing between the two collects
     * then shows up as an extra of the backend, never as a false miss. */
    if (t->ref.ops)
        dirty_check_reference(t, d, first, n);
    bool holding = d->hold && t->hold;
    bool opened = d->nopen > 0;
    long r;
    if (opened) {
        /* Open pages are neither read nor re-armed (held ones likewise). */
        memset(d->skip, 0, DIRTY_WORDS(n) * sizeof(uint64_t));
        dirty_bits_or_from(d->open, first, n, d->skip);
        if (holding) {
            const uint64_t *keep = dirty_hold_keep(d->hold, t->hold_all, first, n);
            for (size_t w = 0; keep && w < DIRTY_WORDS(n); w++)
                d->skip[w] |= keep[w];
        }
        r = t->main.ops->collect_skip(t->main.state, d->priv, first, n, out, d->skip);
    } else if (holding) {
        r = t->main.ops->collect_except(t->main.state, d->priv, first, n, out,
                                        dirty_hold_keep(d->hold, t->hold_all, first, n));
    } else {
        r = t->main.ops->collect(t->main.state, d->priv, first, n, out);
    }
    if (r < 0) {
        memset(out, 0, DIRTY_WORDS(n) * sizeof(uint64_t));
        dirty_bits_set_range(out, 0, n);
    }
    if (opened)
        dirty_bits_or_from(d->open, first, n, out); /* written, for all we know */
    if (atomic_exchange(&d->any_noted, false)) {
        /* Noted pages count as the backend's answer: they can hide a
         * miss of the reference but never cause one. */
        dirty_bits_take(d->noted, first, n, out);
        if (first != 0 || n != d->npages)
            atomic_store(&d->any_noted, true); /* the rest of `noted` stays owed */
    }
    if (r < 0)
        report_again(d, first, n);
    if (holding)
        dirty_hold_update(d->hold, t->hold, first, n, out);
    if (t->ref.ops)
        dirty_check_cycle(t, d, first, n, out);
    return dirty_bits_count(out, n);
}

/* The range wholly holding [s, s+len), or NULL; t->lock held. */
static struct drange *range_holding(struct dirty_tracker *t, uintptr_t s, size_t len)
{
    size_t i = find_index(t, s);
    if (i < t->nr && t->r[i]->start <= s && s + len <= drange_end(t->r[i]))
        return t->r[i];
    return NULL;
}

/* Open or arm pages [first, first+n) of d; t->lock held. */
static int set_open_locked(struct dirty_tracker *t, struct drange *d, size_t first, size_t n,
                           bool open)
{
    const struct dirty_ops *ops = t->main.ops;
    size_t words = DIRTY_WORDS(d->npages);
    if (!d->open) {
        if (!open)
            return 0;
        d->open = calloc(words, sizeof(uint64_t));
        d->skip = calloc(words, sizeof(uint64_t));
        if (!d->open || !d->skip) {
            free(d->open);
            free(d->skip);
            d->open = d->skip = NULL;
            return -ENOMEM;
        }
    }
    if (ops->set_open) {
        /* Opening fails safe (the pages stay armed); arming does not, so
         * on failure the pages stay open and go on being reported. */
        int err = ops->set_open(t->main.state, d->priv, first, n, open);
        if (err)
            return err;
    }
    for (size_t i = first; i < first + n; i++) {
        if (dirty_bit_get(d->open, i) == (int)open)
            continue;
        dirty_bit_put(d->open, i, open);
        if (open) {
            d->nopen++;
        } else {
            /* Writes while open were not seen: owed to the next collect. */
            d->nopen--;
            dirty_bits_set_range_atomic(d->noted, i, i + 1);
            atomic_store(&d->any_noted, true);
        }
    }
    return 0;
}

int dirty_set_open(struct dirty_tracker *t, void *start, size_t len, int open)
{
    if (!t || check_args(start, len))
        return -EINVAL;
    if (!t->main.ops->collect_skip)
        return -ENOTSUP;
    uintptr_t s = (uintptr_t)start;
    pthread_mutex_lock(&t->lock);
    struct drange *d = range_holding(t, s, len);
    int err = d ? set_open_locked(t, d, (s - d->start) >> DIRTY_PAGE_SHIFT,
                                  len >> DIRTY_PAGE_SHIFT, open != 0)
                : -ENOENT;
    pthread_mutex_unlock(&t->lock);
    return err;
}

int dirty_can_open(const struct dirty_tracker *t)
{
    return t && t->main.ops->collect_skip;
}

long dirty_collect(struct dirty_tracker *t, void *start, size_t len, uint64_t *bitmap)
{
    if (!t || check_args(start, len) || !bitmap)
        return -EINVAL;
    uintptr_t s = (uintptr_t)start;
    pthread_mutex_lock(&t->lock);
    struct drange *d = range_holding(t, s, len);
    long ret = d ? collect_range(t, d, (s - d->start) >> DIRTY_PAGE_SHIFT,
                                 len >> DIRTY_PAGE_SHIFT, bitmap)
                 : -ENOENT;
    pthread_mutex_unlock(&t->lock);
    return ret;
}

/* Call fn once per run of set bits. */
static void emit_runs(const struct drange *d, const uint64_t *bits, dirty_fn fn, void *arg)
{
    size_t i = 0;
    while (i < d->npages) {
        uint64_t w = bits[i / 64] >> (i % 64);
        if (w == 0) {
            i = (i / 64 + 1) * 64;
            continue;
        }
        i += __builtin_ctzll(w);
        if (i >= d->npages)
            break;
        size_t run = i;
        while (run < d->npages && dirty_bit_get(bits, run))
            run++;
        fn((void *)(d->start + (i << DIRTY_PAGE_SHIFT)), run - i, arg);
        i = run;
    }
}

long dirty_collect_all(struct dirty_tracker *t, dirty_fn fn, void *arg)
{
    if (!t || !fn)
        return -EINVAL;
    long total = 0;
    pthread_mutex_lock(&t->lock);
    const struct dirty_ops *ops = t->main.ops;
    bool batch = ops->batch_begin && ops->batch_end;
    /* Collect every range first and report after: a batching backend's
     * answer is final only once batch_end has succeeded. */
    if (batch)
        ops->batch_begin(t->main.state);
    for (size_t i = 0; i < t->nr; i++)
        total += collect_range(t, t->r[i], 0, t->r[i]->npages, t->r[i]->scratch);
    if (batch && ops->batch_end(t->main.state) < 0) {
        total = 0;
        for (size_t i = 0; i < t->nr; i++) {
            dirty_bits_set_range(t->r[i]->scratch, 0, t->r[i]->npages);
            report_again(t->r[i], 0, t->r[i]->npages);
            total += (long)t->r[i]->npages;
        }
    }
    for (size_t i = 0; i < t->nr; i++)
        emit_runs(t->r[i], t->r[i]->scratch, fn, arg);
    pthread_mutex_unlock(&t->lock);
    return total;
}

void dirty_note_write(const void *addr, size_t len)
{
    struct rtable *rt = atomic_load(&all_ranges);
    if (!rt || len == 0)
        return; /* no tracker was ever opened */
    uintptr_t lo = (uintptr_t)addr & ~(DIRTY_PAGE_SIZE - 1);
    uintptr_t hi = ((uintptr_t)addr + len + DIRTY_PAGE_SIZE - 1) & ~(DIRTY_PAGE_SIZE - 1);
    const struct rtable_snap *s = rtable_enter(rt);
    for (size_t i = 0; i < s->n && s->e[i].start < hi; i++) {
        if (s->e[i].end <= lo)
            continue;
        struct drange *d = s->e[i].obj;
        uintptr_t a = lo > s->e[i].start ? lo : s->e[i].start;
        uintptr_t b = hi < s->e[i].end ? hi : s->e[i].end;
        /* Make the write possible (mprotect), then record it.  The flag
         * is raised after the bits so a collector that sees it finds them;
         * one that misses it leaves the bits for the next collect. */
        if (d->note_hook)
            d->note_hook(a, b);
        if (d->ref_note_hook)
            d->ref_note_hook(a, b);
        dirty_bits_set_range_atomic(d->noted, (a - d->start) >> DIRTY_PAGE_SHIFT,
                                    (b - d->start) >> DIRTY_PAGE_SHIFT);
        atomic_store(&d->any_noted, true);
    }
    rtable_exit(rt);
}
