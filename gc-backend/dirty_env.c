/*
 * dirty_env.c - the environment knobs of dirty tracking and libgc-dune,
 * parsed in one place, the same way for every one of them.
 *
 * Each knob has two names, GC_DUNE_<KNOB> and DIRTY_<KNOB>; when both are
 * set the GC_DUNE_ one wins.  An empty variable counts as unset.  A bad
 * value is said on one line of stderr, naming the variable, what it
 * accepts and the default used instead; it never makes anything fail.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dirty_env.h"
#include "dirty_tracker.h"

#define NAMES "auto pte kvm wp uffd softdirty mprotect"

/* The value of GC_DUNE_<knob> or DIRTY_<knob>, and in var the variable's
 * name; NULL if neither is set. */
static const char *knob(const char *name, char *var, size_t len)
{
    static const char *const prefixes[] = {"GC_DUNE_", "DIRTY_"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(var, len, "%s%s", prefixes[i], name);
        const char *v = getenv(var);
        if (v && *v)
            return v;
    }
    return NULL;
}

static void bad(const char *var, const char *v, const char *accepts, const char *dflt)
{
    fprintf(stderr, "%s: %s=%s: not %s; using %s\n",
            strncmp(var, "GC_DUNE_", 8) == 0 ? "gc-dune" : "dirty", var, v, accepts, dflt);
}

/* A number 0..max (decimal, nothing else): 1 and *out, or 0 (unset/bad). */
static int number(const char *name, unsigned max, unsigned *out, const char *dflt)
{
    char var[64], accepts[64], *end;
    const char *v = knob(name, var, sizeof var);
    if (!v)
        return 0;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || *end || v[0] < '0' || v[0] > '9' || n > max) {
        snprintf(accepts, sizeof accepts, "a number from 0 to %u", max);
        bad(var, v, accepts, dflt);
        return 0;
    }
    *out = (unsigned)n;
    return 1;
}

void dirty_env_read(struct dirty_env *e)
{
    char var[64];
    const char *v;
    unsigned n;

    memset(e, 0, sizeof *e);
    e->backend = DIRTY_AUTO;
    e->hold = DIRTY_HOLD_DEFAULT;
    e->open_min = DIRTY_OPEN_MIN_DEFAULT;
    e->open_probes = DIRTY_OPEN_PROBES_DEFAULT;

    if ((v = knob("BACKEND", var, sizeof var))) {
        if (strcmp(v, "off") == 0) {
            e->off = true;
            snprintf(e->backend_var, sizeof e->backend_var, "%s", var);
        } else if (dirty_backend_from_name(v, &e->backend) == 0) {
            snprintf(e->backend_var, sizeof e->backend_var, "%s", var);
        } else {
            bad(var, v, "a backend (" NAMES " off)", "auto");
            e->backend = DIRTY_AUTO;
        }
    }
    if ((v = knob("CHECK", var, sizeof var))) {
        if (strcmp(v, "0") == 0 || strcmp(v, "off") == 0) {
            /* checking off, said explicitly */
        } else if (strcmp(v, "1") == 0) {
            e->check = true; /* the default reference */
        } else if (dirty_backend_from_name(v, &e->ref) == 0) {
            e->check = true; /* "auto": the default reference too */
        } else {
            bad(var, v, "a reference backend (1 " NAMES ", 0 for none)", "no checking");
        }
    }
    char dflt[32];
    snprintf(dflt, sizeof dflt, "%u", DIRTY_HOLD_DEFAULT);
    if (number("HOLD", DIRTY_HOLD_MAX, &n, dflt))
        e->hold = n;
    if (number("HOLD_ALL", 1, &n, "0"))
        e->hold_all = n != 0;
    if (number("VERBOSE", 2, &n, "0"))
        e->verbose = n;
    snprintf(dflt, sizeof dflt, "%u", DIRTY_OPEN_MIN_DEFAULT);
    if (number("OPEN", 1u << 20, &n, dflt))
        e->open_min = n;
    snprintf(dflt, sizeof dflt, "%u", DIRTY_OPEN_PROBES_DEFAULT);
    if (number("OPEN_PROBES", 4096, &n, dflt))
        e->open_probes = n;
    e->candidates = ((1u << DIRTY_NBACKENDS) - 1) & ~1u;
    if ((v = knob("CANDIDATES", var, sizeof var))) {
        unsigned mask = 0;
        char name[32];
        enum dirty_backend b;
        for (const char *p = v; *p;) {
            size_t len = strcspn(p, ",");
            snprintf(name, sizeof name, "%.*s", (int)len, p);
            if (dirty_backend_from_name(name, &b) < 0 || b == DIRTY_AUTO) {
                mask = 0;
                break;
            }
            mask |= 1u << b;
            p += len + (p[len] == ',');
        }
        if (mask)
            e->candidates = mask;
        else
            bad(var, v, "a comma-separated list of backends (pte kvm wp uffd softdirty mprotect)",
                "all of them");
    }
}
