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
 * A held page is reported dirty, so holding can only cost the collector
 * rescans, never a missed write.  A page written once is re-armed at once,
 * as without holding: only a page found dirty twice in a row is held.
 *
 * Per page, `phase` counts the collects since the page was last re-armed
 * (0: re-armed, or clean); the page is kept (not re-armed) while phase > 0,
 * and `keep` is that predicate as a bitmap, ready for collect_except.
 */
#include <stdlib.h>
#include <string.h>

#include "dirty_backend.h"

struct dirty_hold *dirty_hold_new(size_t npages)
{
    struct dirty_hold *h = calloc(1, sizeof(*h));

    if (!h)
        return NULL;
    h->npages = npages;
    h->phase = calloc(npages, 1);
    h->keep = calloc(DIRTY_WORDS(npages), sizeof(uint64_t));
    h->shifted = calloc(DIRTY_WORDS(npages), sizeof(uint64_t));
    if (!h->phase || !h->keep || !h->shifted) {
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
    free(h->keep);
    free(h->shifted);
    free(h);
}

/* The pages of [first, first+n) to keep, as a bitmap whose bit 0 is page
 * `first`; NULL if none. */
const uint64_t *dirty_hold_keep(struct dirty_hold *h, size_t first, size_t n)
{
    uint64_t any = 0;

    if (first % 64 == 0) {
        for (size_t w = 0; w < DIRTY_WORDS(n); w++)
            any |= h->keep[first / 64 + w];
        return any ? h->keep + first / 64 : NULL;
    }
    memset(h->shifted, 0, DIRTY_WORDS(n) * sizeof(uint64_t));
    for (size_t i = 0; i < n; i++)
        if (dirty_bit_get(h->keep, first + i)) {
            dirty_bit_set(h->shifted, i);
            any = 1;
        }
    return any ? h->shifted : NULL;
}

/* After a collect of [first, first+n) answered `dirty` (bit 0 = page
 * first): advance the phase of every page dirty now or kept until now. */
void dirty_hold_update(struct dirty_hold *h, unsigned hold, size_t first, size_t n,
                       const uint64_t *dirty)
{
    for (size_t w = 0; w < DIRTY_WORDS(n); w++) {
        if (!dirty[w] && first % 64 == 0 && !h->keep[first / 64 + w])
            continue; /* nothing dirty, nothing held: the common case */
        for (size_t i = w * 64; i < n && i < w * 64 + 64; i++) {
            size_t p = first + i;
            unsigned ph = 0;

            if (dirty_bit_get(dirty, i))
                ph = (h->phase[p] + 1u) % (hold + 1u);
            h->phase[p] = (uint8_t)ph;
            if (ph)
                dirty_bit_set(h->keep, p);
            else
                h->keep[p / 64] &= ~(1ULL << (p % 64));
        }
    }
}
