/*
 * memslot.c - KVM memory slots mirroring the process's address space.
 *
 * A slot maps a 2 MiB-aligned host range onto a guest-physical range that
 * gpa.c hands out (gpa_of_hva/hva_of_gpa translate).  A slot may cover host
 * addresses that are not mapped: the guest page tables decide what the
 * guest can reach.  Slots are created in 2 MiB units as regions appear,
 * never one giant slot (each costs kernel memory in proportion to its
 * size), and released when no guest PTE points into them any more
 * (slots_release_unused, after munmap and the like), so their number
 * follows the live address space.  Pinned slots (the page-table pool) and
 * slots with dirty logging on are kept: the log must not lose a write.
 *
 * Released slots are not deleted at once: a few wait, idle, in a bounded
 * slack (oldest deleted first), and a mapping that appears in one's range
 * again takes it back without a KVM call.  Re-pointing a slot elsewhere is
 * not possible (KVM moves a slot's guest-physical range, never its host
 * one), so only the same host range benefits: the common case of mmap
 * after munmap, which the kernel places where the last one was.  Keeping
 * one is safe for the reasons a live slot over a partly unmapped range is:
 * no guest PTE points into it, the host's munmap made KVM drop its own
 * translations of the pages, and a slot maps each guest-physical page to
 * the host page at the same virtual address, so a stale guest translation
 * can reach only what that address now holds (or fault), never memory of
 * another address, as a deleted slot's reused guest-physical range could.
 * Idle slots never have the dirty log on, are not re-created by a fork,
 * and give way whenever a new slot needs their number or their
 * guest-physical space.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dune_internal.h"

struct slot {
    uintptr_t start, end;
    uint64_t gpa;
    unsigned id;
    unsigned flags;
    bool pinned;
    bool idle;             /* nothing maps it: in the slack, see above */
    uint64_t *bitmap;      /* scratch for KVM_GET_DIRTY_LOG, mmap'ed on demand */
    uint64_t *forced;      /* pages to report dirty regardless (after fork) */
};

static struct slot *slots; /* [DUNE_MAX_SLOTS], sorted by start, never overlapping */
static unsigned nslots;
static unsigned *free_ids; /* [DUNE_MAX_SLOTS], ids given back, reused first */
static unsigned nfree_ids, next_id;
static unsigned long replayed;

/* The slack: at most slack_max() idle slots of SLACK_BYTES in all.
 * DUNE_MEMSLOT_SLACK=N changes the count (0: delete at once). */
#define SLACK_DEFAULT 8
#define SLACK_LIMIT 64
#define SLACK_BYTES (128UL << 20)
static uintptr_t idle_fifo[SLACK_LIMIT]; /* idle slots' starts, oldest first */
static unsigned nidle;
static size_t idle_bytes;
static int slack;

unsigned slots_count(void)
{
    return nslots;
}

/* Slots re-created in forked children so far (in a child: by its fork). */
unsigned long slots_replayed(void)
{
    return replayed;
}

/* How many slots KVM gives us; DUNE_MAX_MEMSLOTS may lower it (tests). */
static unsigned slot_limit(void)
{
    if (!dune_vm.max_slots) {
        long n = dune_ioctl(dune_vm.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
        const char *env = getenv("DUNE_MAX_MEMSLOTS");

        if (n <= 0 || n > DUNE_MAX_SLOTS)
            n = n <= 0 ? 32 : DUNE_MAX_SLOTS;
        if (env && *env && strtol(env, NULL, 10) > 0 && strtol(env, NULL, 10) < n)
            n = strtol(env, NULL, 10);
        dune_vm.max_slots = (unsigned)n;
    }
    return dune_vm.max_slots;
}

static unsigned slack_max(void)
{
    if (!slack) {
        const char *env = getenv("DUNE_MEMSLOT_SLACK");
        long n = env && *env ? strtol(env, NULL, 10) : SLACK_DEFAULT;

        slack = 1 + (int)(n < 0 ? 0 : n > SLACK_LIMIT ? SLACK_LIMIT : n);
    }
    return (unsigned)slack - 1;
}

static size_t slot_gpa_len(const struct slot *s)
{
    return (s->end - s->start + SLOT_ALIGN - 1) & ~(SLOT_ALIGN - 1);
}

static int set_region(struct slot *s)
{
    struct kvm_userspace_memory_region r = {
        .slot = s->id,
        .flags = s->flags,
        .guest_phys_addr = s->gpa,
        .memory_size = s->end - s->start,
        .userspace_addr = s->start,
    };
    long ret = dune_ioctl(dune_vm.vm_fd, KVM_SET_USER_MEMORY_REGION, &r);

    return ret < 0 ? (int)ret : 0;
}

/* First slot that ends above a (nslots if none). */
static unsigned first_after(uintptr_t a)
{
    unsigned lo = 0, hi = nslots;

    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (slots[mid].end <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* s is mapped again (or about to be logged): out of the slack. */
static void unidle(struct slot *s)
{
    unsigned k = 0;

    while (k < nidle && idle_fifo[k] != s->start)
        k++;
    if (k < nidle)
        memmove(&idle_fifo[k], &idle_fifo[k + 1], (nidle - k - 1) * sizeof idle_fifo[0]);
    nidle -= k < nidle;
    idle_bytes -= s->end - s->start;
    s->idle = false;
}

static bool delete_slot(unsigned i);

/* Delete the oldest idle slot (slots[] moves).  False if none was idle. */
static bool evict_idle(void)
{
    unsigned i;

    if (!nidle)
        return false;
    i = first_after(idle_fifo[0]);
    unidle(&slots[i]);
    delete_slot(i); /* if KVM refuses, it stays, no longer idle: the next
                       release in its range tries again */
    return true;
}

int slot_find_hva(uintptr_t hva, uintptr_t *start, uintptr_t *end, uint64_t *gpa)
{
    unsigned i = first_after(hva);

    if (i == nslots || slots[i].start > hva)
        return -ENOENT;
    *start = slots[i].start;
    if (end)
        *end = slots[i].end;
    *gpa = slots[i].gpa;
    return 0;
}

/* By guest-physical address: a linear search, for the rare callers
 * (tests, Dune-aware code checking frames).  Page tables have their own
 * fast path in hva_of_gpa(). */
int slot_find_gpa(uint64_t gpa, uintptr_t *start, uint64_t *sgpa)
{
    for (unsigned i = 0; i < nslots; i++) {
        if (gpa >= slots[i].gpa && gpa < slots[i].gpa + (slots[i].end - slots[i].start)) {
            *start = slots[i].start;
            *sgpa = slots[i].gpa;
            return 0;
        }
    }
    return -ENOENT;
}

/* Running out is said once per process, on its own line, whatever other
 * warning came first: the SIGSEGV or ENOMEM that follows needs a reason. */
static void say_out_of_slots(const char *fmt, unsigned long a, unsigned long b, unsigned long c)
{
    static atomic_flag said = ATOMIC_FLAG_INIT;
    char buf[200];
    int n;

    if (atomic_flag_test_and_set(&said))
        return;
    n = snprintf(buf, sizeof buf, fmt, a, b, c);
    if (n > 0)
        dune_sys3(SYS_write, 2, buf, n < (int)sizeof buf ? n : (int)sizeof buf - 1);
}

/* slots[] and free_ids[], at the first slot (table.c says why not in bss). */
static int tables_alloc(void)
{
    if (!free_ids)
        free_ids = dune_table_alloc(DUNE_MAX_SLOTS * sizeof free_ids[0]);
    if (free_ids && !slots)
        slots = dune_table_alloc(DUNE_MAX_SLOTS * sizeof slots[0]);
    return slots ? 0 : -ENOMEM;
}

static int insert_slot(struct slot *s)
{
    unsigned i;
    int r;

    while (nslots >= slot_limit() && evict_idle())
        ;
    if (nslots >= slot_limit()) {
        say_out_of_slots("dune: all %lu KVM memslots in use; cannot mirror %#lx-%#lx\n", nslots,
                         s->start, s->end);
        return -ENOSPC;
    }
    if (!slots && tables_alloc() < 0)
        return -ENOMEM;
    s->id = nfree_ids ? free_ids[--nfree_ids] : next_id++;
    r = set_region(s);
    if (r < 0) {
        free_ids[nfree_ids++] = s->id;
        dune_warn_once("dune: KVM refused a memslot for %#lx-%#lx at guest-physical %#llx: %s",
                       (unsigned long)s->start, (unsigned long)s->end,
                       (unsigned long long)s->gpa, strerror(-r));
        return r;
    }
    i = first_after(s->start);
    memmove(&slots[i + 1], &slots[i], (nslots - i) * sizeof slots[0]);
    slots[i] = *s;
    nslots++;
    return 0;
}

static int add_slot(uintptr_t start, uintptr_t end)
{
    struct slot s = { .start = start, .end = end };
    int r;

    while (nslots >= slot_limit() && evict_idle())
        ;
    if (nslots >= slot_limit())
        return insert_slot(&s); /* says why */
    s.gpa = gpa_ram_alloc(slot_gpa_len(&s));
    while (s.gpa == GPA_NONE && evict_idle())
        s.gpa = gpa_ram_alloc(slot_gpa_len(&s));
    if (s.gpa == GPA_NONE) {
        say_out_of_slots("dune: guest-physical space (%lu bits) exhausted; cannot mirror "
                         "%#lx-%#lx\n", gpa_bits(), start, end);
        return -ENOSPC;
    }
    r = insert_slot(&s);
    if (r < 0)
        gpa_ram_free(s.gpa, slot_gpa_len(&s));
    return r;
}

/* A slot at a fixed guest-physical address that is never released. */
int slots_add_pinned(uintptr_t start, uintptr_t end, uint64_t gpa)
{
    struct slot s = { .start = start, .end = end, .gpa = gpa, .pinned = true };

    return insert_slot(&s);
}

static void unmap_bitmap(const struct slot *s, uint64_t *b);

static bool delete_slot(unsigned i)
{
    struct slot *s = &slots[i];
    struct kvm_userspace_memory_region r = { .slot = s->id, .guest_phys_addr = s->gpa };

    /* Deleting zaps the slot's translations and flushes every vCPU's TLB
     * (KVM does it), so the range can be handed out again at once. */
    if (dune_ioctl(dune_vm.vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
        return false; /* keep it: it is still KVM's */
    gpa_ram_free(s->gpa, slot_gpa_len(s));
    free_ids[nfree_ids++] = s->id;
    unmap_bitmap(s, s->bitmap);
    unmap_bitmap(s, s->forced);
    memmove(&slots[i], &slots[i + 1], (nslots - i - 1) * sizeof slots[0]);
    nslots--;
    return true;
}

/* Put unused slots[i] in the slack, making room by deleting the oldest
 * idle ones.  False if it does not fit at all. */
static bool make_idle(unsigned i)
{
    uintptr_t start = slots[i].start;
    size_t len = slots[i].end - start;

    if (!slack_max() || len > SLACK_BYTES)
        return false;
    while ((nidle >= slack_max() || idle_bytes + len > SLACK_BYTES) && evict_idle())
        ;
    i = first_after(start); /* slots[] may have moved */
    slots[i].idle = true;
    idle_fifo[nidle++] = start;
    idle_bytes += len;
    return true;
}

/*
 * After [start, end) lost its mapping: release the slots there that no
 * guest PTE points into any more (into the slack, or deleted).  Caller
 * holds dune_vm.lock.
 */
void slots_release_unused(uintptr_t start, uintptr_t end)
{
    unsigned i;

    start &= ~(SLOT_ALIGN - 1);
    end = (end + SLOT_ALIGN - 1) & ~(SLOT_ALIGN - 1);
    for (i = first_after(start); i < nslots && slots[i].start < end;) {
        struct slot *s = &slots[i];
        uintptr_t at = s->start;

        if (s->idle || s->pinned || (s->flags & KVM_MEM_LOG_DIRTY_PAGES) ||
            pt_range_mapped(s->start, s->end)) {
            i++;
            continue;
        }
        if (make_idle(i))
            i = first_after(at) + 1; /* evictions may have moved it */
        else if (!delete_slot(i))
            i++; /* still KVM's: step over it (else slots[i] is the next) */
    }
}

/* Cover [start, end) minus whatever is covered already.  Caller holds
 * dune_vm.lock. */
static int cover_gaps(uintptr_t start, uintptr_t end)
{
    uintptr_t pos = start;
    unsigned i;
    int r;

    /* Idle slots here are in use again; out of the slack first, so that
     * making room for a new slot below cannot delete them. */
    for (i = first_after(start); i < nslots && slots[i].start < end; i++)
        if (slots[i].idle)
            unidle(&slots[i]);
    /* By address: making room may delete other slots and move slots[]. */
    while (pos < end) {
        uintptr_t gap_end = end;

        i = first_after(pos);
        if (i < nslots && slots[i].start <= pos) {
            pos = slots[i].end;
            continue;
        }
        if (i < nslots && slots[i].start < end)
            gap_end = slots[i].start;
        r = add_slot(pos, gap_end);
        if (r < 0)
            return r;
        pos = gap_end;
    }
    return 0;
}

int slots_cover(uintptr_t start, uintptr_t end)
{
    start &= ~(SLOT_ALIGN - 1);
    end = (end + SLOT_ALIGN - 1) & ~(SLOT_ALIGN - 1);
    /* KVM takes host ranges below TASK_SIZE only, which ends one page
     * below the end of user space (USER_VA_END); the kernel never maps
     * user memory in that last page. */
    if (end > USER_VA_END - PAGE_SIZE)
        end = USER_VA_END - PAGE_SIZE;
    if (start >= end)
        return 0;
    return cover_gaps(start, end);
}

static size_t slot_pages(const struct slot *s)
{
    return (s->end - s->start) / PAGE_SIZE;
}

static void *map_bitmap(const struct slot *s)
{
    size_t bytes = page_up((slot_pages(s) + 63) / 64 * 8);
    long p = dune_sys6(SYS_mmap, 0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);

    return dune_failed(p) ? NULL : (void *)p;
}

/* Forget the idle slots without telling KVM (a forked child's new VM
 * never had them): the slack costs a fork nothing. */
static void drop_idle(void)
{
    unsigned kept = 0;

    for (unsigned i = 0; i < nslots; i++) {
        struct slot *s = &slots[i];

        if (!s->idle) {
            if (kept != i)
                slots[kept] = *s;
            kept++;
            continue;
        }
        gpa_ram_free(s->gpa, slot_gpa_len(s));
        free_ids[nfree_ids++] = s->id;
        unmap_bitmap(s, s->bitmap);
        unmap_bitmap(s, s->forced);
    }
    nslots = kept;
    nidle = 0;
    idle_bytes = 0;
}

/*
 * A forked child has a new VM: register the same slots again, at the same
 * guest-physical addresses (its page tables are a copy of ours).  The
 * parent's dirty log did not come along, so every logged page counts as
 * dirty once: a page written in the parent since its last read could
 * otherwise be missed by the child.
 */
int slots_replay(void)
{
    replayed = 0;
    arch_vm_tune(); /* a new VM */
    drop_idle();
    for (unsigned i = 0; i < nslots; i++) {
        struct slot *s = &slots[i];
        int r = set_region(s);

        if (r < 0)
            return r;
        replayed++;
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
        dune_sys3(SYS_munmap, b, page_up((slot_pages(s) + 63) / 64 * 8), 0);
}

/* Forget every slot: the VM that held them is going away. */
void slots_reset(void)
{
    for (unsigned i = 0; i < nslots; i++) {
        unmap_bitmap(&slots[i], slots[i].bitmap);
        unmap_bitmap(&slots[i], slots[i].forced);
    }
    if (nslots)
        memset(slots, 0, nslots * sizeof slots[0]);
    nslots = 0;
    nidle = 0;
    idle_bytes = 0;
    nfree_ids = next_id = 0;
    gpa_reset();
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
        if (s->idle)
            unidle(s); /* a logged slot is kept, never idle */
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

        if (s->end <= start || s->start >= end || s->idle)
            continue; /* idle: nothing maps it, nothing was written */
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
