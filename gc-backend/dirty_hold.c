/*
 * dirty_hold.c - holding pages that are written again and again.
 *
 * Re-arming a page (clearing its D bit or its dirty-log bit) makes its
 * next write fault into the hypervisor.  Inside Dune on a paravirtual KVM
 * that fault costs about 23 µs, and in GC workloads most pages dirty at one
 * collection are dirty again at the next (GCBench: 93%).  So a page that
 * is written again after being re-armed is held: left dirty and writable,
 * and reported at each of the next `hold` collects whether written or not;
 * then it is re-armed once, and held again only if written again.
 *
 * With `all`, every written page is held from the collect that first
 * reports it, not only a rewritten one: fewer faults still, but each page
 * written once is reported `hold` more times (more rescanning, and longer
 * pauses when many pages were written at once).
 *
 * A held page is reported dirty, so holding can only cost the collector
 * rescans, never a missed write.
 *
 * Per page, `phase` counts the collects since the page was last re-armed
 * (0: re-armed, or clean).  A page is held while 0 < phase (`held`), and
 * re-armed at the collect where phase == hold (`due`): so without `all`
 * the pages to keep are `held`, and with it every page but the `due` ones.
 */
#include <stdlib.h>
#include <string.h>

#include "dirty_backend.h"

struct dirty_hold *dirty_hold_new(size_t npages)
{
    struct dirty_hold *h = calloc(1, sizeof(*h));
    size_t bytes = DIRTY_WORDS(npages) * sizeof(uint64_t);

    if (!h)
        return NULL;
    h->npages = npages;
    h->phase = calloc(npages, 1);
    h->held = calloc(1, bytes);
    h->due = calloc(1, bytes);
    h->mask = calloc(1, bytes);
    if (!h->phase || !h->held || !h->due || !h->mask) {
        dirty_hold_free(h);
        return NULL;
    }
    return h;
}

void dirty_hold_free(struct dirty_hold *h)
{
    if (!h)
        return;
    free(h->phase);
    free(h->held);
    free(h->due);
    free(h->mask);
    free(h);
}

/* The pages of [first, first+n) to keep (not re-arm) at this collect, as
 * a bitmap whose bit 0 is page `first`; NULL if none. */
const uint64_t *dirty_hold_keep(struct dirty_hold *h, bool all, size_t first, size_t n)
{
    uint64_t any = 0;

    if (!all && first % 64 == 0) {
        for (size_t w = 0; w < DIRTY_WORDS(n); w++)
            any |= h->held[first / 64 + w];
        return any ? h->held + first / 64 : NULL;
    }
    for (size_t i = 0; i < n; i++) {
        int keep = all ? !dirty_bit_get(h->due, first + i) : dirty_bit_get(h->held, first + i);
        dirty_bit_put(h->mask, i, keep);
        any |= (uint64_t)keep;
    }
    return any ? h->mask : NULL;
}

/* After a collect of [first, first+n) answered `dirty` (bit 0 = page
 * first): advance the phase of every page dirty now or held until now. */
void dirty_hold_update(struct dirty_hold *h, unsigned hold, size_t first, size_t n,
                       const uint64_t *dirty)
{
    for (size_t w = 0; w < DIRTY_WORDS(n); w++) {
        if (!dirty[w] && first % 64 == 0 && !h->held[first / 64 + w])
            continue; /* nothing dirty, nothing held: the common case */
        for (size_t i = w * 64; i < n && i < w * 64 + 64; i++) {
            size_t p = first + i;
            unsigned ph = 0;

            if (dirty_bit_get(dirty, i))
                ph = (h->phase[p] + 1u) % (hold + 1u);
            h->phase[p] = (uint8_t)ph;
            dirty_bit_put(h->held, p, ph > 0);
            dirty_bit_put(h->due, p, ph > 0 && ph == hold);
        }
    }
}
