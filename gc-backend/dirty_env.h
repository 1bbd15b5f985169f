/*
 * dirty_env.h - the environment knobs (internal; dirty_env.c).
 *
 *   GC_DUNE_BACKEND / DIRTY_BACKEND    auto pte kvm wp uffd softdirty mprotect, or
 *                                      off (libgc-dune leaves libgc alone)
 *   GC_DUNE_CHECK / DIRTY_CHECK        checking mode: a reference backend, or 1 /
 *                                      auto for the default reference; 0 for none
 *   GC_DUNE_HOLD / DIRTY_HOLD          collects a rewritten page is held (0-255)
 *   GC_DUNE_HOLD_ALL / DIRTY_HOLD_ALL  0 or 1: hold every written page
 *   GC_DUNE_VERBOSE / DIRTY_VERBOSE    0, 1 or 2 (libgc-dune's messages)
 *   GC_DUNE_OPEN / DIRTY_OPEN          libgc-dune: shortest run of heap pages left
 *                                      open after a collection (0: none)
 *   GC_DUNE_OPEN_PROBES / ...          libgc-dune: objects probed per block for
 *                                      the sweeper's (0-4096)
 *   GC_DUNE_CANDIDATES / DIRTY_CANDIDATES  what auto may pick, comma-separated
 *                                      (default: every backend)
 */
#ifndef DIRTY_ENV_H
#define DIRTY_ENV_H

#include <stdbool.h>

#include "dirty.h"

#pragma GCC visibility push(hidden)

#define DIRTY_OPEN_MIN_DEFAULT 4
#define DIRTY_OPEN_PROBES_DEFAULT 64

struct dirty_env {
    enum dirty_backend backend; /* DIRTY_AUTO unless set */
    bool off;                   /* BACKEND=off */
    char backend_var[64];       /* the variable that set backend or off, or "" */
    bool check;                 /* checking mode asked for ... */
    enum dirty_backend ref;     /* ... against this (DIRTY_AUTO: the default reference) */
    unsigned hold;              /* DIRTY_HOLD_DEFAULT unless set */
    bool hold_all;
    unsigned verbose;
    unsigned open_min, open_probes; /* libgc-dune's open pages (gc_dune_open.c) */
    unsigned candidates;        /* what auto may pick: bit b for backend b */
};

/* Read every knob now; a bad value is said on stderr (one line) and
 * replaced by its default. */
void dirty_env_read(struct dirty_env *e);

/* dirty_open() for `want` as is (the environment's backend is the
 * caller's business), with e's checking mode and holding; origin says in
 * dirty_why() where the choice came from. */
int dirty_open_env(enum dirty_backend want, const char *origin, const struct dirty_env *e,
                   struct dirty_tracker **out);

#pragma GCC visibility pop

#endif
