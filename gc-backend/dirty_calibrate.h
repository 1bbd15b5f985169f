/*
 * dirty_calibrate.h - DIRTY_AUTO by measured cost (internal;
 * dirty_calibrate.c).
 */
#ifndef DIRTY_CALIBRATE_H
#define DIRTY_CALIBRATE_H

#include <stdbool.h>
#include <stddef.h>

#include "dirty.h"

#pragma GCC visibility push(hidden)

/* The sources that work only inside Dune. */
#define DIRTY_DUNE_MASK (1u << DIRTY_PTE | 1u << DIRTY_KVM | 1u << DIRTY_WP)
static inline bool dirty_is_dune(enum dirty_backend b)
{
    return DIRTY_DUNE_MASK >> b & 1;
}

/* Microseconds per page, best of a few rounds. */
struct dirty_cost {
    bool measured;      /* the candidate was tried */
    bool ok;            /* ... and works here */
    double write_us;    /* first write to a tracked clean page, beyond a plain write */
    double collect_us;  /* read-and-clear, per dirty page */
    double clean_us;    /* read-and-clear, per clean page */
};

/* Measure the backends in mask (bit b for backend b) in a forked child;
 * with dune, pte and kvm too, inside Dune in that child, and then the
 * figures come from (and go to) the cache when its key matches (*cached).
 * 0 or -errno (fork or pipe failed: nothing measured). */
int dirty_calibrate(unsigned mask, bool dune, struct dirty_cost costs[DIRTY_NBACKENDS],
                    bool *cached);
/* The working backends among mask, cheapest first, into order; their number. */
size_t dirty_rank(unsigned mask, const struct dirty_cost costs[DIRTY_NBACKENDS],
                  enum dirty_backend *order);
double dirty_cost_score(const struct dirty_cost *c);
/* Microseconds per mprotect call on a populated page, libgc's way (one
 * call over a run, then one per page), best of a few rounds; < 0 if it
 * could not be measured.  The unit of stock libgc's own write barrier. */
double dirty_mprotect_call_us(void);
/* "measured, us per page (...): uffd 0.51+0.20+0.01 mprotect ..." */
void dirty_cost_format(const struct dirty_cost costs[DIRTY_NBACKENDS], bool cached, char *buf,
                       size_t len);

#pragma GCC visibility pop

#endif
