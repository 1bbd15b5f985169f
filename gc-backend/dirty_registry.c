/*
 * dirty_registry.c - the backends by number and name, probing, and the
 * preference orders DIRTY_AUTO follows.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dirty.h"
#include "dirty_backend.h"
#include "dirty_calibrate.h"
#include "dirty_tracker.h"
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
extern const struct dirty_ops dirty_wp_ops __attribute__((weak));
extern int dune_active(void) __attribute__((weak));
#endif
#endif

/* Indexed by enum dirty_backend; NULL where the backend is not built. */
static const struct dirty_ops *const backends[DIRTY_NBACKENDS] = {
#ifdef HAVE_DUNE /* the Dune backends: dirty_pte.c, dirty_kvm.c */
    [DIRTY_PTE] = &dirty_pte_ops,
    [DIRTY_KVM] = &dirty_kvm_ops,
    [DIRTY_WP] = &dirty_wp_ops,
#endif
    [DIRTY_UFFD] = &dirty_uffd_ops,
    [DIRTY_SOFTDIRTY] = &dirty_softdirty_ops,
    [DIRTY_MPROTECT] = &dirty_mprotect_ops,
};

static const char *const names[DIRTY_NBACKENDS] = {
    [DIRTY_AUTO] = "auto",         [DIRTY_PTE] = "pte",
    [DIRTY_KVM] = "kvm",           [DIRTY_UFFD] = "uffd",
    [DIRTY_SOFTDIRTY] = "softdirty", [DIRTY_MPROTECT] = "mprotect",
    [DIRTY_WP] = "wp",
};

/* Preference orders for DIRTY_AUTO.  Inside Dune the guest's own bits come
 * first; the native ones stay as a fallback because they still see the
 * host-side view of guest memory. */
static const enum dirty_backend native_order[] = {DIRTY_UFFD, DIRTY_SOFTDIRTY, DIRTY_MPROTECT};
#ifdef HAVE_DUNE
static const enum dirty_backend dune_order[] = {DIRTY_PTE, DIRTY_KVM, DIRTY_WP, DIRTY_UFFD,
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

const struct dirty_ops *dirty_ops_of(enum dirty_backend b)
{
    return (unsigned)b < DIRTY_NBACKENDS ? backends[b] : NULL;
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


void dirty_append(char *buf, size_t size, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}


int dirty_open_one(enum dirty_backend b, struct inst *in, char *why, size_t whylen)
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
    dirty_append(why, whylen, "%s%s: %s", why[0] ? "; " : "", names[b],
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

int dirty_open_auto(struct inst *in, enum dirty_backend *id, unsigned mask, char *rejected,
                    size_t len, char *how, size_t howlen)
{
    enum dirty_backend order[DIRTY_NBACKENDS];
    size_t n = 0;
    how[0] = '\0';
#ifdef HAVE_DUNE
    if (in_dune()) {
        /* Already inside Dune: the program chose Dune, keep its order. */
        for (size_t i = 0; i < sizeof(dune_order) / sizeof(dune_order[0]); i++)
            if (mask & 1u << dune_order[i])
                order[n++] = dune_order[i];
        snprintf(how, howlen, "inside Dune: first usable of pte kvm wp uffd softdirty mprotect");
    }
#endif
    if (n == 0 && !how[0]) {
        unsigned native = 0;
        struct dirty_cost costs[DIRTY_NBACKENDS];
        bool cached;
        for (size_t i = 0; i < sizeof(native_order) / sizeof(native_order[0]); i++)
            native |= mask & 1u << native_order[i];
        if (dirty_calibrate(native, false, costs, &cached) == 0)
            n = dirty_rank(native, costs, order);
        if (n) {
            dirty_cost_format(costs, cached, how, howlen);
        } else {
            /* nothing measured: the fixed order, cheapest where it works */
            for (size_t i = 0; i < sizeof(native_order) / sizeof(native_order[0]); i++)
                if (native & 1u << native_order[i])
                    order[n++] = native_order[i];
            snprintf(how, howlen, "not measured: first usable of uffd softdirty mprotect");
        }
    }
    int err = -ENOSYS;
    for (size_t i = 0; i < n; i++) {
        err = dirty_open_one(order[i], in, rejected, len);
        if (err == 0) {
            *id = order[i];
            return 0;
        }
    }
    if (n == 0)
        dirty_append(rejected, len, "%sno candidate left", rejected[0] ? "; " : "");
    return err;
}
