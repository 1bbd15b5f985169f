/*
 * dirty_kvm.c - the hypervisor's dirty log as a dirty-tracking backend.
 *
 * Inside Dune every guest write to a page whose memslot has
 * KVM_MEM_LOG_DIRTY_PAGES set is recorded by KVM; with
 * KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 reading and clearing a range is one
 * hypercall.  Two kinds of writes bypass the log and are handled here:
 *  - the host kernel filling a forwarded syscall's buffer: the syscall layer
 *    reports those through dirty_note_write() (dune_set_host_write_hook);
 *  - threads that run natively (created inside Dune before threads get
 *    vCPUs): then we cannot know, and collect fails so that dirty.c reports
 *    every page dirty -- slow but never wrong;
 *  - writes made while the process had no VM (after the last thread left):
 *    dirty_dune.c reports those pages once the range is read again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dirty_backend.h"
#include "dune.h"

static int need_dune(char *why, size_t whylen)
{
    if (!dune_active())
        return dirty_fail(why, whylen, ENOTCONN, "kvm: not running inside Dune");
    return 0;
}

/* Try it: log a scratch page, write it, the log must show exactly it. */
static int kvm_probe(char *why, size_t whylen)
{
    size_t len = 2 * DIRTY_PAGE_SIZE;
    char *p;
    uint64_t bm[1];
    long n;
    int r;

    if ((r = need_dune(why, whylen)) < 0)
        return r;
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return dirty_fail(why, whylen, errno, "kvm: mmap failed");
    r = dune_dirty_log_enable(p, len, 1);
    if (r < 0) {
        munmap(p, len);
        return dirty_fail(why, whylen, -r, "kvm: cannot enable the dirty log: %s", strerror(-r));
    }
    dune_dirty_log_read_clear(p, len, bm);
    ((volatile char *)p)[DIRTY_PAGE_SIZE + 5] = 1;
    n = dune_dirty_log_read_clear(p, len, bm);
    munmap(p, len);
    if (n != 1 || bm[0] != 2)
        return dirty_fail(why, whylen, EIO, "kvm: dirty log reported %ld pages (%#llx), want page 1",
                          n, (unsigned long long)bm[0]);
    return 0;
}

static int kvm_open(void **state, char *why, size_t whylen)
{
    return dune_backend_open(kvm_probe, state, why, whylen);
}

/* Log the range in the current VM (slots are shared with other ranges,
 * so logging is never turned off).  Returns 0 or -errno. */
static int kvm_log_on(struct dune_range *kr)
{
    unsigned long gen = dune_vm_generation();
    int r;

    if (kr->log_gen == gen)
        return 0;
    r = dune_dirty_log_enable((void *)kr->start, kr->npages * DIRTY_PAGE_SIZE, 1);
    if (r == 0)
        kr->log_gen = gen;
    return r;
}

static int kvm_track(void *state, uintptr_t start, size_t npages, void **range)
{
    struct dune_range *kr = dune_range_new(start, npages);
    int r;

    (void)state;
    if (!kr)
        return -ENOMEM;
    r = kvm_log_on(kr);
    if (r < 0) {
        dune_range_free(kr);
        return r;
    }
    /* Drop whatever the slots logged before. */
    dune_range_start_clean(kr, dune_dirty_log_read_clear);
    *range = kr;
    return 0;
}

/* A VM built since the last collect does not log the range yet: turn
 * logging on first, then read (dirty_dune.c adds what no VM saw). */
static long kvm_collect_except(void *state, void *range, size_t first, size_t n,
                               uint64_t *bitmap, const uint64_t *keep)
{
    struct dune_range *kr = range;
    long r;

    (void)state;
    dune_range_vm_changed(kr);
    r = kvm_log_on(kr);
    if (r == 0)
        r = dune_dirty_log_read_clear_except((void *)(kr->start + first * DIRTY_PAGE_SIZE),
                                             n * DIRTY_PAGE_SIZE, bitmap, keep);
    return dune_range_finish(kr, first, n, bitmap, r);
}

static long kvm_collect(void *state, void *range, size_t first, size_t n, uint64_t *bitmap)
{
    return kvm_collect_except(state, range, first, n, bitmap, NULL);
}

const struct dirty_ops dirty_kvm_ops = {
    .name = "kvm",
    .id = DIRTY_KVM,
    .probe = kvm_probe,
    .open = kvm_open,
    .close = dune_backend_close,
    .track = kvm_track,
    .untrack = dune_backend_untrack,
    .collect = kvm_collect,
    .collect_except = kvm_collect_except,
    .collect_skip = kvm_collect_except, /* open pages are kept, not re-armed */
};
