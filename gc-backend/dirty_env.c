/*
 * dirty_env.c - the environment variables of the dirty-tracking API.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dirty_tracker.h"

int dirty_env_backend(const char *var, enum dirty_backend *out, char *why, size_t len)
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


int dirty_env_hold(unsigned *hold, int *all, char *why, size_t len)
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
