/*
 * dirty_wp.c - write protection of guest pages as a dirty-tracking backend
 * ("Dune TLB", the Dune paper's third Boehm collector).
 *
 * Collect takes W away from the written pages of the range (the guest PTE
 * loses W and gains the mark DUNE_PTE_WP) and flushes the TLB as pte does
 * for D bits; the next write to such a page faults, and the guest's own
 * #PF handler (in CPL0 mode; on the host after an exit in CPL3 mode) gives
 * W back and lets the write proceed.  A page is written when its PTE has W
 * again.  That is libgc's mprotect write barrier moved into the guest: no
 * mprotect call, no SIGSEGV through the kernel, and with nested paging no
 * VM exit at all.  Host-kernel writes (a read() into the heap) write
 * through the host's page tables, which we never protect: they always
 * succeed, and are reported through the host write hook as for pte.
 * Threads, fork and holding behave as for pte (dirty_dune.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dirty_backend.h"
#include "dune.h"

static long read_protect(void *start, size_t len, uint64_t *bitmap)
{
    return dune_wp_read_protect(start, len, bitmap, NULL);
}

/* Protect a page, write it, and see the write: the fault must come back
 * to the program as a plain write, and the page must read as written. */
static int wp_probe(char *why, size_t whylen)
{
    size_t len = 2 * DIRTY_PAGE_SIZE;
    uint64_t bm[1];
    char *p;
    long n;

    if (!dune_active())
        return dirty_fail(why, whylen, ENOTCONN, "wp: not running inside Dune");
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return dirty_fail(why, whylen, errno, "wp: mmap failed");
    ((volatile char *)p)[0] = 1;
    ((volatile char *)p)[DIRTY_PAGE_SIZE] = 1;
    read_protect(p, len, bm);
    ((volatile char *)p)[DIRTY_PAGE_SIZE] = 2;
    n = read_protect(p, len, bm);
    munmap(p, len);
    if (n != 1 || bm[0] != 2)
        return dirty_fail(why, whylen, ENOTSUP,
                          "wp: a write to a protected guest page was not seen (%ld pages, %#llx)",
                          n, (unsigned long long)bm[0]);
    return 0;
}

static int wp_open(void **state, char *why, size_t whylen)
{
    return dune_backend_open(wp_probe, state, why, whylen);
}

static int wp_track(void *state, uintptr_t start, size_t npages, void **range)
{
    struct dune_range *pr = dune_range_new(start, npages);

    (void)state;
    if (!pr)
        return -ENOMEM;
    dune_range_start_clean(pr, read_protect);
    *range = pr;
    return 0;
}

static long wp_collect_except(void *state, void *range, size_t first, size_t n,
                              uint64_t *bitmap, const uint64_t *keep)
{
    struct dune_range *pr = range;
    long r;

    (void)state;
    /* A new VM's tables start writable: every page reads as written once,
     * and what was written under no VM is owed (dirty_dune.c). */
    dune_range_vm_changed(pr);
    r = dune_wp_read_protect((void *)(pr->start + first * DIRTY_PAGE_SIZE), n * DIRTY_PAGE_SIZE,
                             bitmap, keep);
    return dune_range_finish(pr, first, n, bitmap, r);
}

static long wp_collect(void *state, void *range, size_t first, size_t n, uint64_t *bitmap)
{
    return wp_collect_except(state, range, first, n, bitmap, NULL);
}

const struct dirty_ops dirty_wp_ops = {
    .name = "wp",
    .id = DIRTY_WP,
    .probe = wp_probe,
    .open = wp_open,
    .close = dune_backend_close,
    .track = wp_track,
    .untrack = dune_backend_untrack,
    .collect = wp_collect,
    .collect_except = wp_collect_except,
    .collect_skip = wp_collect_except, /* open pages are kept writable, not re-protected */
    .batch_begin = dune_backend_batch_begin,
    .batch_end = dune_backend_batch_end,
};
