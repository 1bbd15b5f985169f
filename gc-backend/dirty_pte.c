/*
 * dirty_pte.c - guest page-table dirty bits as a dirty-tracking backend
 * (the Dune paper's method).
 *
 * Collect reads and clears the D bits of the range and flushes the TLB, in
 * the guest: directly in CPL0 mode, through the CPL0 gate in CPL3 mode,
 * and on the other vCPUs by a shootdown (dune_tlb_shootdown); a collect of
 * every range (dirty_collect_all) does both once, at the end.  As with
 * every backend, a write made by another thread *while* a collect runs
 * may be missed by it (through a TLB entry not flushed yet); Boehm GC
 * collects with the world stopped, as the Dune paper did.
 * Whether the CPU sets D bits for the application is probed, never assumed:
 * on a paravirtual KVM, accesses from guest CPL3 set none.  Host-kernel
 * writes and native threads are handled as in the kvm backend.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dirty_backend.h"
#include "dune.h"

static int pte_probe(char *why, size_t whylen)
{
    size_t len = 2 * DIRTY_PAGE_SIZE;
    char *p;
    uint64_t bm[1];
    long n;

    if (!dune_active())
        return dirty_fail(why, whylen, ENOTCONN, "pte: not running inside Dune");
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return dirty_fail(why, whylen, errno, "pte: mmap failed");
    ((volatile char *)p)[0] = 1;
    dune_dirty_read_clear(p, len, bm);
    ((volatile char *)p)[DIRTY_PAGE_SIZE] = 1;
    n = dune_dirty_read_clear(p, len, bm);
    munmap(p, len);
    if (n != 1 || bm[0] != 2)
        return dirty_fail(why, whylen, ENOTSUP,
                          "pte: the CPU does not set guest PTE dirty bits for this program "
                          "(a write left D clear)");
    return 0;
}

static int pte_open(void **state, char *why, size_t whylen)
{
    return dune_backend_open(pte_probe, state, why, whylen);
}

static int pte_track(void *state, uintptr_t start, size_t npages, void **range)
{
    struct dune_range *pr = dune_range_new(start, npages);

    (void)state;
    if (!pr)
        return -ENOMEM;
    dune_range_start_clean(pr, dune_dirty_read_clear);
    *range = pr;
    return 0;
}

static long pte_collect_except(void *state, void *range, size_t first, size_t n,
                               uint64_t *bitmap, const uint64_t *keep)
{
    struct dune_range *pr = range;
    long r;

    (void)state;
    /* A new VM's tables start with every D bit clear: what was written
     * under no VM is owed (dirty_dune.c). */
    dune_range_vm_changed(pr);
    r = dune_dirty_read_clear_except((void *)(pr->start + first * DIRTY_PAGE_SIZE),
                                     n * DIRTY_PAGE_SIZE, bitmap, keep);
    /* The read-and-clear flushed every vCPU (or, in a batch, owes it to
     * dune_backend_batch_end); a failed shootdown is an error, and dirty.c then
     * reports everything. */
    return dune_range_finish(pr, first, n, bitmap, r);
}

static long pte_collect(void *state, void *range, size_t first, size_t n, uint64_t *bitmap)
{
    return pte_collect_except(state, range, first, n, bitmap, NULL);
}

const struct dirty_ops dirty_pte_ops = {
    .name = "pte",
    .id = DIRTY_PTE,
    .probe = pte_probe,
    .open = pte_open,
    .close = dune_backend_close,
    .track = pte_track,
    .untrack = dune_backend_untrack,
    .collect = pte_collect,
    .collect_except = pte_collect_except,
    .collect_skip = pte_collect_except, /* open pages are kept, not re-armed */
    .batch_begin = dune_backend_batch_begin,
    .batch_end = dune_backend_batch_end,
};
