/*
 * memslot.c - KVM memory slots mirroring the process's address space.
 *
 * Guest-physical == host-virtual, so every slot is an identity map and a
 * slot may safely cover host addresses that are not mapped (the guest page
 * tables decide what the guest can reach).  Slots are created in 2 MiB units
 * as regions appear and are never deleted or split: a region reappearing at
 * a covered address is already mapped correctly.  We never create one giant
 * slot: each costs kernel memory in proportion to its size.
 *
 * The Dune-private MMIO window (dune_vm.mmio_base) must never be covered:
 * guest accesses there have to exit to the host.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "dune_internal.h"

#define MAX_SLOTS 16384

struct slot {
    uintptr_t start, end;
    unsigned id;
    unsigned flags;
    uint64_t *bitmap;      /* scratch for KVM_GET_DIRTY_LOG, mmap'ed on demand */
    uint64_t *forced;      /* pages to report dirty regardless (after fork) */
};

static struct slot slots[MAX_SLOTS]; /* sorted by start, never overlapping */
static unsigned nslots;

unsigned slots_count(void)
{
    return nslots;
}

static int set_region(struct slot *s)
{
    struct kvm_userspace_memory_region r = {
        .slot = s->id,
        .flags = s->flags,
        .guest_phys_addr = s->start,
        .memory_size = s->end - s->start,
        .userspace_addr = s->start,
    };
    long ret = dune_ioctl(dune_vm.vm_fd, KVM_SET_USER_MEMORY_REGION, &r);

    return ret < 0 ? (int)ret : 0;
}

static int add_slot(uintptr_t start, uintptr_t end)
{
    struct slot s = { .start = start, .end = end, .id = nslots };
    unsigned i;
    int r;

    if (nslots >= MAX_SLOTS)
        return -ENOSPC;
    r = set_region(&s);
    if (r < 0) {
        dune_warn_once("dune: KVM refused a memslot for %#lx-%#lx: %s", (unsigned long)start,
                       (unsigned long)end, strerror(-r));
        return r;
    }
    for (i = nslots; i > 0 && slots[i - 1].start > start; i--)
        slots[i] = slots[i - 1];
    slots[i] = s;
    nslots++;
    return 0;
}

/* Cover [start, end) minus whatever is covered already and minus the MMIO
 * window.  Caller holds dune_vm.lock. */
static int cover_gaps(uintptr_t start, uintptr_t end)
{
    uintptr_t pos = start;
    unsigned i;
    int r;

    for (i = 0; i < nslots && pos < end; i++) {
        if (slots[i].end <= pos)
            continue;
        if (slots[i].start >= end)
            break;
        if (slots[i].start > pos) {
            r = add_slot(pos, slots[i].start);
            if (r < 0)
                return r;
            i++; /* the new slot was inserted before slots[i] */
        }
        pos = slots[i].end;
    }
    if (pos < end)
        return add_slot(pos, end);
    return 0;
}

int slots_cover(uintptr_t start, uintptr_t end)
{
    uintptr_t mb = dune_vm.mmio_base, me = mb + SLOT_ALIGN;
    int r;

    start &= ~(SLOT_ALIGN - 1);
    end = (end + SLOT_ALIGN - 1) & ~(SLOT_ALIGN - 1);
    /* KVM's highest usable guest frame sits one page below 2^47 here; the
     * kernel never maps user memory in that last page anyway. */
    if (end > USER_VA_END - PAGE_SIZE)
        end = USER_VA_END - PAGE_SIZE;
    if (start >= end)
        return 0;
    if (mb && start < me && end > mb) {
        r = start < mb ? cover_gaps(start, mb) : 0;
        if (r == 0 && end > me)
            r = cover_gaps(me, end);
        return r;
    }
    return cover_gaps(start, end);
}

static size_t slot_pages(const struct slot *s)
{
    return (s->end - s->start) / PAGE_SIZE;
}

static void *map_bitmap(const struct slot *s)
{
    size_t bytes = page_up((slot_pages(s) + 63) / 64 * 8);
    long p = dune_sys6(9 /* mmap */, 0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);

    return p < 0 && p > -4096 ? NULL : (void *)p;
}

/*
 * A forked child has a new VM: register the same slots again.  The
 * parent's dirty log did not come along, so every logged page counts as
 * dirty once: a page written in the parent since its last read could
 * otherwise be missed by the child.
 */
int slots_replay(void)
{
    for (unsigned i = 0; i < nslots; i++) {
        struct slot *s = &slots[i];
        int r = set_region(s);

        if (r < 0)
            return r;
        if (!(s->flags & KVM_MEM_LOG_DIRTY_PAGES))
            continue;
        if (!s->forced && !(s->forced = map_bitmap(s)))
            return -ENOMEM;
        memset(s->forced, 0xff, (slot_pages(s) + 63) / 64 * 8);
    }
    return 0;
}

static void unmap_bitmap(const struct slot *s, uint64_t *b)
{
    if (b)
        dune_sys3(11 /* munmap */, b, page_up((slot_pages(s) + 63) / 64 * 8), 0);
}

/* Forget every slot: the VM that held them is going away. */
void slots_reset(void)
{
    for (unsigned i = 0; i < nslots; i++) {
        unmap_bitmap(&slots[i], slots[i].bitmap);
        unmap_bitmap(&slots[i], slots[i].forced);
    }
    memset(slots, 0, nslots * sizeof slots[0]);
    nslots = 0;
}

int slots_set_dirty_log(uintptr_t start, uintptr_t end, bool on)
{
    unsigned i;
    int r;

    for (i = 0; i < nslots; i++) {
        struct slot *s = &slots[i];
        unsigned want = on ? KVM_MEM_LOG_DIRTY_PAGES : 0;

        if (s->end <= start || s->start >= end || (s->flags & KVM_MEM_LOG_DIRTY_PAGES) == want)
            continue;
        if (on && !s->bitmap && !(s->bitmap = map_bitmap(s)))
            return -ENOMEM;
        s->flags = (s->flags & ~KVM_MEM_LOG_DIRTY_PAGES) | want;
        r = set_region(s);
        if (r < 0)
            return r;
    }
    return 0;
}

static void copy_bits(uint64_t *dst, size_t dst_first, const uint64_t *src, size_t src_first,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t s = src_first + i, d = dst_first + i;
        if (src[s / 64] >> (s % 64) & 1)
            dst[d / 64] |= 1ULL << (d % 64);
    }
}

/*
 * Read and clear the dirty log for the part of one slot inside [start,end).
 * With manual protection GET does not clear; CLEAR takes a bitmap and clears
 * exactly the bits set in it, so pages of the slot outside the range keep
 * their state, and so do the pages of `keep` (indexed like out, may be
 * NULL): they are reported but stay dirty and writable.
 */
static long slot_read_clear(struct slot *s, uintptr_t start, uintptr_t end, uint64_t *out,
                            uintptr_t out_base, const uint64_t *keep)
{
    struct kvm_dirty_log log = { .slot = s->id, .dirty_bitmap = s->bitmap };
    size_t first = (start - s->start) / PAGE_SIZE, last = (end - s->start) / PAGE_SIZE;
    size_t words = (slot_pages(s) + 63) / 64;
    long n = 0, r;

    r = dune_ioctl(dune_vm.vm_fd, KVM_GET_DIRTY_LOG, &log);
    if (r < 0)
        return r;
    /* Keep only our range's bits, then hand the same bitmap to CLEAR. */
    for (size_t w = 0; w < words; w++) {
        uint64_t inrange = 0, forced = 0;
        for (unsigned b = 0; b < 64; b++) {
            size_t p = w * 64 + b;
            if (p >= first && p < last)
                inrange |= 1ULL << b;
        }
        s->bitmap[w] &= inrange;
        if (s->forced) {
            forced = s->forced[w] & inrange;
            s->forced[w] &= ~inrange;
        }
        s->bitmap[w] |= forced; /* clearing a clean page is harmless */
        n += __builtin_popcountll(s->bitmap[w]);
    }
    copy_bits(out, (start - out_base) / PAGE_SIZE, s->bitmap, first, last - first);
    if (n && keep) {
        size_t k0 = (start - out_base) / PAGE_SIZE;
        for (size_t i = 0; i < last - first; i++)
            if (keep[(k0 + i) / 64] >> ((k0 + i) % 64) & 1)
                s->bitmap[(first + i) / 64] &= ~(1ULL << ((first + i) % 64));
    }
    if (n && dune_vm.manual_protect) {
        size_t fw = first / 64 * 64, lw = (last + 63) / 64 * 64;
        struct kvm_clear_dirty_log clr = {
            .slot = s->id,
            .first_page = fw,
            .num_pages = lw > slot_pages(s) ? slot_pages(s) - fw : lw - fw,
            .dirty_bitmap = s->bitmap + fw / 64,
        };
        r = dune_ioctl(dune_vm.vm_fd, KVM_CLEAR_DIRTY_LOG, &clr);
        if (r < 0)
            return r;
    }
    return n;
}

long slots_dirty_read_clear(uintptr_t start, uintptr_t end, uint64_t *bitmap,
                            const uint64_t *keep)
{
    long total = 0;

    memset(bitmap, 0, ((end - start) / PAGE_SIZE + 63) / 64 * 8);
    for (unsigned i = 0; i < nslots; i++) {
        struct slot *s = &slots[i];
        uintptr_t a, b;
        long n;

        if (s->end <= start || s->start >= end)
            continue;
        if (!(s->flags & KVM_MEM_LOG_DIRTY_PAGES))
            return -ENODATA;
        a = s->start > start ? s->start : start;
        b = s->end < end ? s->end : end;
        n = slot_read_clear(s, a, b, bitmap, start, keep);
        if (n < 0)
            return n;
        total += n;
    }
    return total;
}
