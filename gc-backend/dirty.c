/*
 * dirty.c - the dirty-tracking front end: backend registry, auto-selection,
 * DIRTY_BACKEND / DIRTY_CHECK environment overrides, checking mode and
 * dirty_note_write().  The backends themselves live in dirty_<name>.c and
 * implement struct dirty_ops (dirty_backend.h).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dirty.h"
#include "dirty_backend.h"
#ifdef HAVE_DUNE
#include "dune.h"
#ifndef DIRTY_DUNE_BACKENDS
/* gc-backend/local.mk defines DIRTY_DUNE_BACKENDS when dirty_pte.c and
 * dirty_kvm.c are part of the library.  Until then refer to them (and to
 * the Dune core) weakly: a missing one reads as NULL, "not built".  Weak
 * references do not pull members out of a static archive, hence the
 * switch to ordinary references once the files exist. */
extern const struct dirty_ops dirty_pte_ops __attribute__((weak));
extern const struct dirty_ops dirty_kvm_ops __attribute__((weak));
extern int dune_active(void) __attribute__((weak));
#endif
#endif

/* ------------------------------------------------------------------ */
/* registry                                                             */

/* Indexed by enum dirty_backend; NULL where the backend is not built. */
static const struct dirty_ops *const backends[DIRTY_NBACKENDS] = {
#ifdef HAVE_DUNE /* the Dune backends: dirty_pte.c, dirty_kvm.c */
    [DIRTY_PTE] = &dirty_pte_ops,
    [DIRTY_KVM] = &dirty_kvm_ops,
#endif
    [DIRTY_UFFD] = &dirty_uffd_ops,
    [DIRTY_SOFTDIRTY] = &dirty_softdirty_ops,
    [DIRTY_MPROTECT] = &dirty_mprotect_ops,
};

static const char *const names[DIRTY_NBACKENDS] = {
    [DIRTY_AUTO] = "auto",         [DIRTY_PTE] = "pte",
    [DIRTY_KVM] = "kvm",           [DIRTY_UFFD] = "uffd",
    [DIRTY_SOFTDIRTY] = "softdirty", [DIRTY_MPROTECT] = "mprotect",
};

/* Preference orders for DIRTY_AUTO.  Inside Dune the guest's own bits come
 * first; the native ones stay as a fallback because they still see the
 * host-side view of guest memory. */
static const enum dirty_backend native_order[] = {DIRTY_UFFD, DIRTY_SOFTDIRTY, DIRTY_MPROTECT};
#ifdef HAVE_DUNE
static const enum dirty_backend dune_order[] = {DIRTY_PTE, DIRTY_KVM, DIRTY_UFFD,
                                                DIRTY_SOFTDIRTY, DIRTY_MPROTECT};
#endif

const char *dirty_backend_name(enum dirty_backend b)
{
    if ((unsigned)b >= DIRTY_NBACKENDS)
        return "?";
    return names[b];
}

int dirty_backend_from_name(const char *name, enum dirty_backend *out)
{
    for (int b = 0; b < DIRTY_NBACKENDS; b++) {
        if (name && strcmp(name, names[b]) == 0) {
            *out = (enum dirty_backend)b;
            return 0;
        }
    }
    return -EINVAL;
}

int dirty_fail(char *why, size_t whylen, int err, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return -err;
}

int dirty_probe(enum dirty_backend b, char *why, size_t whylen)
{
    if (b == DIRTY_AUTO || (unsigned)b >= DIRTY_NBACKENDS)
        return dirty_fail(why, whylen, EINVAL, "not a backend");
    if (!backends[b]) {
        return dirty_fail(why, whylen, ENOSYS, "%s: not built into this program%s", names[b],
#ifdef HAVE_DUNE
                          ""
#else
                          " (configured without Dune)"
#endif
        );
    }
    if (why && whylen)
        why[0] = '\0';
    return backends[b]->probe(why, whylen);
}

/* ------------------------------------------------------------------ */
/* bitmap helpers                                                       */

void dirty_bits_set_range(uint64_t *b, size_t from, size_t to)
{
    for (size_t i = from; i < to;) {
        if (i % 64 == 0 && to - i >= 64) {
            b[i / 64] = ~0ULL;
            i += 64;
        } else {
            dirty_bit_set(b, i++);
        }
    }
}

void dirty_bits_set_range_atomic(_Atomic uint64_t *b, size_t from, size_t to)
{
    while (from < to) {
        size_t w = from / 64, lo = from % 64;
        size_t hi = (to - w * 64 >= 64) ? 64 : to - w * 64;
        uint64_t mask = (hi == 64 ? ~0ULL : (1ULL << hi) - 1) & ~((1ULL << lo) - 1);
        atomic_fetch_or(&b[w], mask);
        from = w * 64 + hi;
    }
}

long dirty_bits_count(const uint64_t *b, size_t n)
{
    long c = 0;
    for (size_t w = 0; w < n / 64; w++)
        c += __builtin_popcountll(b[w]);
    if (n % 64)
        c += __builtin_popcountll(b[n / 64] & ((1ULL << (n % 64)) - 1));
    return c;
}

/* Move bits [first, first+n) of the atomic bitmap src into dst (OR, bit 0 of
 * dst = bit `first` of src), clearing them in src. */
static void take_bits(_Atomic uint64_t *src, size_t first, size_t n, uint64_t *dst)
{
    if (first % 64 == 0) {
        for (size_t w = 0; w < DIRTY_WORDS(n); w++) {
            uint64_t mask = (n - w * 64 >= 64) ? ~0ULL : (1ULL << (n - w * 64)) - 1;
            dst[w] |= atomic_fetch_and(&src[first / 64 + w], ~mask) & mask;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = first + i;
        uint64_t bit = 1ULL << (j % 64);
        if (atomic_load_explicit(&src[j / 64], memory_order_relaxed) & bit) {
            if (atomic_fetch_and(&src[j / 64], ~bit) & bit)
                dirty_bit_set(dst, i);
        }
    }
}

/* ------------------------------------------------------------------ */
/* lock-free range table                                                */

struct rtable {
    pthread_mutex_t lock;
    _Atomic(struct rtable_snap *) cur;
    atomic_long readers;
    /* garbage waiting for a moment with no reader */
    struct retired {
        void *p;
        void (*free_fn)(void *);
    } *dead;
    size_t ndead, capdead;
};

static struct rtable_snap empty_snap; /* n == 0, never freed */

struct rtable *rtable_new(void)
{
    struct rtable *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return NULL;
    pthread_mutex_init(&rt->lock, NULL);
    atomic_init(&rt->cur, &empty_snap);
    return rt;
}

const struct rtable_snap *rtable_enter(struct rtable *rt)
{
    atomic_fetch_add(&rt->readers, 1); /* seq_cst: pairs with reap() */
    return atomic_load(&rt->cur);
}

void rtable_exit(struct rtable *rt)
{
    atomic_fetch_sub(&rt->readers, 1);
}

/* Free retired objects if nobody is reading.  A reader that enters after
 * the new snapshot was published cannot see them, and one that entered
 * before is counted in `readers`.  Called with rt->lock held. */
static void reap(struct rtable *rt)
{
    if (atomic_load(&rt->readers) != 0)
        return; /* try again at the next change */
    for (size_t i = 0; i < rt->ndead; i++)
        rt->dead[i].free_fn(rt->dead[i].p);
    rt->ndead = 0;
}

static int retire(struct rtable *rt, void *p, void (*free_fn)(void *))
{
    if (rt->ndead == rt->capdead) {
        size_t cap = rt->capdead ? 2 * rt->capdead : 16;
        struct retired *d = realloc(rt->dead, cap * sizeof(*d));
        if (!d)
            return -ENOMEM;
        rt->dead = d;
        rt->capdead = cap;
    }
    rt->dead[rt->ndead++] = (struct retired){p, free_fn};
    return 0;
}

static void free_snap(void *p)
{
    if (p != &empty_snap)
        free(p);
}

/* Publish `next` in place of the current snapshot. */
static void publish(struct rtable *rt, struct rtable_snap *next)
{
    struct rtable_snap *old = atomic_exchange(&rt->cur, next);
    if (retire(rt, old, free_snap) < 0) {
        /* Out of memory for the retire list: wait for readers instead.
         * Readers never block, so this ends. */
        while (atomic_load(&rt->readers) != 0)
            sched_yield();
        free_snap(old);
    }
    reap(rt);
}

int rtable_add(struct rtable *rt, uintptr_t start, uintptr_t end, void *obj)
{
    pthread_mutex_lock(&rt->lock);
    struct rtable_snap *cur = atomic_load(&rt->cur);
    struct rtable_snap *next = malloc(sizeof(*next) + (cur->n + 1) * sizeof(next->e[0]));
    if (!next) {
        pthread_mutex_unlock(&rt->lock);
        return -ENOMEM;
    }
    size_t j = 0, i = 0;
    while (i < cur->n && cur->e[i].start <= start)
        next->e[j++] = cur->e[i++];
    next->e[j++] = (struct rtable_ent){start, end, obj};
    while (i < cur->n)
        next->e[j++] = cur->e[i++];
    next->n = j;
    publish(rt, next);
    pthread_mutex_unlock(&rt->lock);
    return 0;
}

void rtable_remove(struct rtable *rt, void *obj, void (*free_obj)(void *))
{
    pthread_mutex_lock(&rt->lock);
    struct rtable_snap *cur = atomic_load(&rt->cur);
    struct rtable_snap *next = malloc(sizeof(*next) + cur->n * sizeof(next->e[0]));
    if (next) {
        size_t j = 0;
        for (size_t i = 0; i < cur->n; i++)
            if (cur->e[i].obj != obj)
                next->e[j++] = cur->e[i];
        next->n = j;
        publish(rt, next);
    } else {
        /* Cannot build a smaller snapshot: neutralise the entry in place
         * (an empty interval matches nothing) - readers see either value. */
        for (size_t i = 0; i < cur->n; i++)
            if (cur->e[i].obj == obj)
                cur->e[i].end = cur->e[i].start;
    }
    if (free_obj && retire(rt, obj, free_obj) < 0) {
        while (atomic_load(&rt->readers) != 0)
            sched_yield();
        free_obj(obj);
    }
    reap(rt);
    pthread_mutex_unlock(&rt->lock);
}

/* ------------------------------------------------------------------ */
/* trackers                                                             */

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

int dirty_check_stats(const struct dirty_tracker *t, struct dirty_check_stats *st)
{
    if (!t || !t->ref.ops)
        return -EINVAL;
    pthread_mutex_lock((pthread_mutex_t *)&t->lock);
    *st = t->stats;
    pthread_mutex_unlock((pthread_mutex_t *)&t->lock);
    return 0;
}

static void append(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t size, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}

/* Probe and open backend b into *in; on failure append the reason to why. */
static int open_one(enum dirty_backend b, struct inst *in, char *why, size_t whylen)
{
    char r[256] = "";
    int err = dirty_probe(b, r, sizeof(r));
    if (err == 0) {
        err = backends[b]->open(&in->state, r, sizeof(r));
        if (err == 0) {
            in->ops = backends[b];
            return 0;
        }
    }
    append(why, whylen, "%s%s: %s", why[0] ? "; " : "", names[b],
           r[0] ? r : strerror(-err));
    return err;
}

#ifdef HAVE_DUNE
static int in_dune(void)
{
#ifdef DIRTY_DUNE_BACKENDS
    return dune_active();
#else
    return dune_active && dune_active(); /* weak: NULL without the Dune core */
#endif
}
#endif

/* DIRTY_AUTO: first backend of the preference order that probes and opens. */
static int open_auto(struct dirty_tracker *t, char *rejected, size_t len)
{
    const enum dirty_backend *order = native_order;
    size_t n = sizeof(native_order) / sizeof(native_order[0]);
#ifdef HAVE_DUNE
    if (in_dune()) {
        order = dune_order;
        n = sizeof(dune_order) / sizeof(dune_order[0]);
    }
#endif
    int err = -ENOSYS;
    for (size_t i = 0; i < n; i++) {
        err = open_one(order[i], &t->main, rejected, len);
        if (err == 0) {
            t->id = order[i];
            return 0;
        }
    }
    return err;
}

static int env_backend(const char *var, enum dirty_backend *out, char *why, size_t len)
{
    const char *v = getenv(var);
    if (!v || !*v)
        return 0;
    if (dirty_backend_from_name(v, out) < 0) {
        return dirty_fail(why, len, EINVAL,
                          "%s=%s: unknown backend (auto pte kvm uffd softdirty mprotect)", var, v);
    }
    return 1;
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

/* The environment's DIRTY_HOLD=n and DIRTY_HOLD_ALL=0|1 into *hold and
 * *all (left alone if unset): 0, or -EINVAL with the reason in why. */
static int env_hold(unsigned *hold, int *all, char *why, size_t len)
{
    const char *v = getenv("DIRTY_HOLD");
    char *end;
    if (v && *v) {
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        if (errno || *end || v[0] == '-' || n > DIRTY_HOLD_MAX)
            return dirty_fail(why, len, EINVAL, "DIRTY_HOLD=%s: not a number of collects (0-%d)",
                              v, DIRTY_HOLD_MAX);
        *hold = (unsigned)n;
    }
    v = getenv("DIRTY_HOLD_ALL");
    if (v && *v) {
        if (strcmp(v, "0") && strcmp(v, "1"))
            return dirty_fail(why, len, EINVAL, "DIRTY_HOLD_ALL=%s: not 0 or 1", v);
        *all = v[0] == '1';
    }
    return 0;
}

/* Apply the hold settings to a tracker just opened (-ENOTSUP, from a
 * backend that re-arms every page, is not an error). */
static void apply_hold(struct dirty_tracker *t, unsigned hold, int all)
{
    dirty_set_hold(t, hold);
    dirty_set_hold_all(t, all);
}

static int open_tracker(enum dirty_backend want, enum dirty_backend ref, bool abort_on_miss,
                        const char *origin, struct dirty_tracker **out)
{
    *out = NULL;
    last_error[0] = '\0';
    pthread_once(&all_ranges_once, all_ranges_init);
    if (!all_ranges)
        return dirty_fail(last_error, sizeof(last_error), ENOMEM, "out of memory");
    if ((unsigned)want >= DIRTY_NBACKENDS || (unsigned)ref >= DIRTY_NBACKENDS)
        return dirty_fail(last_error, sizeof(last_error), EINVAL, "bad backend number");
    unsigned hold = DIRTY_HOLD_DEFAULT;
    int all = 0;
    if (env_hold(&hold, &all, last_error, sizeof(last_error)) < 0)
        return -EINVAL;

    struct dirty_tracker *t = calloc(1, sizeof(*t));
    if (!t)
        return dirty_fail(last_error, sizeof(last_error), ENOMEM, "out of memory");
    pthread_mutex_init(&t->lock, NULL);
    t->abort_on_miss = abort_on_miss;

    char rejected[384] = "";
    int err;
    if (want == DIRTY_AUTO) {
        err = open_auto(t, rejected, sizeof(rejected));
        snprintf(t->why, sizeof(t->why), "%s: auto-selected %s%s%s", origin,
                 err ? "nothing" : names[t->id], rejected[0] ? "; not usable: " : "", rejected);
    } else {
        err = open_one(want, &t->main, rejected, sizeof(rejected));
        t->id = want;
        snprintf(t->why, sizeof(t->why), "%s: %s%s%s", origin, names[want],
                 err ? " unusable: " : "", rejected);
    }
    if (err == 0 && ref == DIRTY_UFFD && t->id == DIRTY_UFFD) {
        /* a page can be registered with one userfaultfd only */
        append(t->why, sizeof(t->why), "; cannot be checked against itself");
        err = -EINVAL;
    } else if (err == 0 && ref != DIRTY_AUTO) {
        char rr[384] = "";
        err = open_one(ref, &t->ref, rr, sizeof(rr));
        append(t->why, sizeof(t->why), "; checked against %s%s%s", names[ref],
               err ? ", which is unusable: " : "", rr);
    }
    if (err) {
        snprintf(last_error, sizeof(last_error), "%s", t->why);
        tracker_free(t);
        return err;
    }
    apply_hold(t, hold, all);
    *out = t;
    return 0;
}

int dirty_open(enum dirty_backend want, struct dirty_tracker **out)
{
    char bad[256] = "";
    enum dirty_backend env = DIRTY_AUTO, ref = DIRTY_AUTO;
    int e = env_backend("DIRTY_BACKEND", &env, bad, sizeof(bad));
    int c = e < 0 ? 0 : env_backend("DIRTY_CHECK", &ref, bad, sizeof(bad));
    if (e < 0 || c < 0) {
        *out = NULL;
        snprintf(last_error, sizeof(last_error), "%s", bad);
        return -EINVAL;
    }
    const char *origin = "requested by caller";
    if (e > 0) {
        want = env;
        origin = "DIRTY_BACKEND";
    } else if (want == DIRTY_AUTO) {
        origin = "default";
    }
    return open_tracker(want, ref, true, origin, out);
}

int dirty_open_checked(enum dirty_backend want, enum dirty_backend ref, int abort_on_miss,
                       struct dirty_tracker **out)
{
    if (ref == DIRTY_AUTO) {
        *out = NULL;
        snprintf(last_error, sizeof(last_error), "checking mode needs an explicit reference");
        return -EINVAL;
    }
    return open_tracker(want, ref, abort_on_miss != 0, "checked mode", out);
}

static void drange_free(void *p)
{
    struct drange *d = p;
    dirty_hold_free(d->hold);
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

int dirty_track(struct dirty_tracker *t, void *start, size_t len)
{
    if (!t || check_args(start, len))
        return -EINVAL;
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

/* ------------------------------------------------------------------ */
/* collection                                                           */

static void report_miss(const struct drange *d, size_t page, const struct dirty_tracker *t)
{
    fprintf(stderr,
            "dirty: CHECK FAILED: %s missed a write to page %#lx that %s saw "
            "(range %#lx, %zu pages; pid %d, check %lu)\n",
            t->main.ops->name, (unsigned long)(d->start + (page << DIRTY_PAGE_SHIFT)),
            t->ref.ops->name, (unsigned long)d->start, d->npages, (int)getpid(),
            (unsigned long)t->stats.cycles);
}

static void put_bit(uint64_t *b, size_t i, int v)
{
    b[i / 64] = (b[i / 64] & ~(1ULL << (i % 64))) | ((uint64_t)(v != 0) << (i % 64));
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
static void check_cycle(struct dirty_tracker *t, struct drange *d, size_t first, size_t n,
                        const uint64_t *got)
{
    unsigned long missed = 0, extra = 0;
    for (size_t i = 0; i < n; i++) {
        int ref = dirty_bit_get(d->ref_bits, i), mine = dirty_bit_get(got, i);
        size_t p = first + i;
        int carried = dirty_bit_get(d->carry, p);
        put_bit(d->carry, p, mine);
        if (!mine && dirty_bit_get(d->owed2, p) && missed++ < 8)
            report_miss(d, p, t);
        put_bit(d->owed2, p, !mine && dirty_bit_get(d->owed1, p));
        put_bit(d->owed1, p, !mine && !carried && dirty_bit_get(d->ref_sure, i));
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
static void collect_reference(struct dirty_tracker *t, struct drange *d, size_t first, size_t n)
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
        collect_reference(t, d, first, n);
    bool holding = d->hold && t->hold;
    long r;
    if (holding)
        r = t->main.ops->collect_except(t->main.state, d->priv, first, n, out,
                                        dirty_hold_keep(d->hold, t->hold_all, first, n));
    else
        r = t->main.ops->collect(t->main.state, d->priv, first, n, out);
    if (r < 0) {
        memset(out, 0, DIRTY_WORDS(n) * sizeof(uint64_t));
        dirty_bits_set_range(out, 0, n);
    }
    if (atomic_exchange(&d->any_noted, false)) {
        /* Noted pages count as the backend's answer: they can hide a
         * miss of the reference but never cause one. */
        take_bits(d->noted, first, n, out);
        if (first != 0 || n != d->npages)
            atomic_store(&d->any_noted, true); /* the rest of `noted` stays owed */
    }
    if (r < 0)
        report_again(d, first, n);
    if (holding)
        dirty_hold_update(d->hold, t->hold, first, n, out);
    if (t->ref.ops)
        check_cycle(t, d, first, n, out);
    return dirty_bits_count(out, n);
}

long dirty_collect(struct dirty_tracker *t, void *start, size_t len, uint64_t *bitmap)
{
    if (!t || check_args(start, len) || !bitmap)
        return -EINVAL;
    uintptr_t s = (uintptr_t)start;
    pthread_mutex_lock(&t->lock);
    size_t i = find_index(t, s);
    long ret = -ENOENT;
    if (i < t->nr && t->r[i]->start <= s && s + len <= drange_end(t->r[i])) {
        struct drange *d = t->r[i];
        ret = collect_range(t, d, (s - d->start) >> DIRTY_PAGE_SHIFT, len >> DIRTY_PAGE_SHIFT,
                            bitmap);
    }
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
