/*
 * dirty.c - exact per-page dirty bits from page-modify exceptions.
 *
 * Invariant: a TLB entry has D=1 only if the PTE it came from has D=1.
 * Pages start with PTE.D=0, so the first store raises PME; the handler
 * sets PTE.D and rewrites the TLB entry, and later stores run at full
 * speed.  Collecting clears PTE.D and invalidates the page's TLB entry
 * before reporting it, so no stale writable entry survives and the next
 * store traps again.  Single vCPU: with several vCPUs the collector would
 * also need a TLB shootdown on the others.
 */
#include "la64_guest.h"

int la64_handle_page_modify(struct la64_frame *f)
{
    struct la64_pgtable *pt = la64_active_pt;
    uint64_t va = f->badv;
    uint64_t *ptep = pt ? la64_pt_lookup(pt, va) : NULL;
    if (!ptep || !(*ptep & LA64_PTE_P) || !(*ptep & LA64_PTE_W))
        return -1;
    *ptep |= LA64_PTE_D;
    la64_tlb_update(va, ptep);
    la64_stats.page_modify++;
    return 0;
}

long la64_dirty_collect(struct la64_pgtable *pt, uint64_t start, size_t npages,
                        uint64_t *bitmap)
{
    long count = 0;
    for (size_t i = 0; i < npages; i++) {
        uint64_t va = start + i * LA64_PAGE_SIZE;
        uint64_t *ptep = la64_pt_lookup(pt, va);
        int dirty = ptep && (*ptep & LA64_PTE_D);
        if (dirty) {
            *ptep &= ~LA64_PTE_D;
            la64_tlb_flush_page(va);
            count++;
        }
        if (bitmap) {
            uint64_t bit = 1ULL << (i % 64);
            if (i % 64 == 0)
                bitmap[i / 64] = 0;
            if (dirty)
                bitmap[i / 64] |= bit;
        }
    }
    return count;
}
