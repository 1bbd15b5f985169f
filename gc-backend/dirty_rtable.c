/*
 * dirty_rtable.c - a table of address ranges that signal handlers can
 * search without locks while writers change it (dirty_backend.h).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "dirty_backend.h"

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
