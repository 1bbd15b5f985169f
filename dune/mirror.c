/*
 * mirror.c - keep the guest's view of the address space equal to the host's.
 *
 * At entry every mapping in /proc/self/maps is mirrored (memslot cover +
 * page-table entries with the same permissions).  Afterwards the syscall
 * layer mirrors each mmap/munmap/mprotect/mremap/brk as it succeeds, and a
 * guest page fault on an address the host has mapped (a region created
 * behind our back, the main stack growing) is resolved lazily here.
 *
 * This runs on the host side of a vCPU, possibly while the guest thread is
 * inside malloc: no libc allocation, no stdio.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "dune_internal.h"

struct vma {
    uintptr_t start, end;
    int prot;
    bool stack;
};

typedef int (*vma_fn)(const struct vma *v, void *arg);

static uintptr_t parse_hex(const char **p)
{
    uintptr_t v = 0;

    for (;; (*p)++) {
        char c = **p;
        if (c >= '0' && c <= '9')
            v = v * 16 + (uintptr_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (uintptr_t)(c - 'a' + 10);
        else
            return v;
    }
}

static bool parse_line(const char *l, struct vma *v)
{
    v->start = parse_hex(&l);
    if (*l++ != '-')
        return false;
    v->end = parse_hex(&l);
    if (*l++ != ' ')
        return false;
    v->prot = (l[0] == 'r' ? PROT_READ : 0) | (l[1] == 'w' ? PROT_WRITE : 0) |
              (l[2] == 'x' ? PROT_EXEC : 0);
    v->stack = strstr(l, "[stack]") != NULL;
    return v->start < v->end;
}

/* Walk /proc/self/maps with raw reads into a static buffer (no malloc). */
static int for_each_vma(vma_fn fn, void *arg)
{
    static char buf[16384];
    static char line[4096 + 512];
    size_t llen = 0;
    long fd, n;
    int r = 0;

    off_t off = 0;

    /* The descriptor opened at init: a program out of descriptors must not
     * turn a lazy fault into SIGSEGV. */
    fd = dune_vm.maps_fd;
    if (fd < 0)
        return -EBADF;
    while (r == 0 && (n = dune_sys6(SYS_pread64, fd, (long)buf, sizeof buf, off, 0, 0)) > 0) {
        off += n;
        for (long i = 0; i < n && r == 0; i++) {
            struct vma v;
            if (buf[i] != '\n') {
                if (llen < sizeof line - 1)
                    line[llen++] = buf[i];
                continue;
            }
            line[llen] = 0;
            llen = 0;
            if (parse_line(line, &v) && v.start < USER_VA_END)
                r = fn(&v, arg);
        }
    }
    return r < 0 ? r : (n < 0 ? (int)n : r);
}

static bool in_mmio_window(uintptr_t start, uintptr_t end)
{
    uintptr_t mb = dune_vm.mmio_base;

    return mb && start < mb + SLOT_ALIGN && end > mb;
}

/* Larger ranges are mirrored lazily, 2 MiB at a time as the guest touches
 * them: a 1 TiB MAP_NORESERVE reservation must not cost page tables and a
 * memslot for all of it. */
#define EAGER_LIMIT (64UL << 20)
#define LAZY_CHUNK (2UL << 20)

int mirror_range(uintptr_t start, uintptr_t end, int prot)
{
    int r;

    if (in_mmio_window(start, end))
        return 0;
    if (end - start > EAGER_LIMIT) {
        pt_update_existing(start, end, prot, true);
        return 0;
    }
    if (prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) {
        r = slots_cover(start, end);
        if (r < 0)
            return r;
    }
    return pt_map(start, end, prot, true);
}

/* The memory is gone: clear its entries, then give back the slots no
 * entry points into any more (deleting a slot flushes every vCPU's TLB). */
void mirror_unmap(uintptr_t start, uintptr_t end)
{
    pt_unmap(start, end);
    slots_release_unused(start, end);
}

static int mirror_one(const struct vma *v, void *arg)
{
    (void)arg;
    return mirror_range(v->start, v->end, v->prot);
}

int mirror_all(void)
{
    return for_each_vma(mirror_one, NULL);
}

/* ---- lazy resolution of guest page faults ---- */

struct fault_query {
    uintptr_t addr;
    struct vma hit;      /* VMA containing addr */
    struct vma below;    /* last VMA ending at or below addr */
    struct vma above;    /* first VMA starting above addr */
    bool found, has_below, has_above;
};

static int find_vma(const struct vma *v, void *arg)
{
    struct fault_query *q = arg;

    if (v->start <= q->addr && q->addr < v->end) {
        q->hit = *v;
        q->found = true;
    } else if (v->end <= q->addr) {
        q->below = *v;
        q->has_below = true;
    } else if (!q->has_above) {
        q->above = *v;
        q->has_above = true;
        return 1; /* sorted: nothing further matters */
    }
    return 0;
}

static bool access_allowed(int prot, bool write, bool exec)
{
    if (write)
        return prot & PROT_WRITE;
    if (exec)
        return prot & PROT_EXEC;
    return prot & (PROT_READ | PROT_WRITE | PROT_EXEC);
}

/*
 * Would the kernel grow the main stack down to addr?  Mirrors its rule:
 * within RLIMIT_STACK of the stack's top and not inside the guard gap above
 * the previous mapping.  If so, touching the page natively grows it.
 */
static bool grow_stack(const struct fault_query *q)
{
    struct rlimit rl;
    const uintptr_t gap = 256 * PAGE_SIZE;

    if (!q->has_above || !q->above.stack)
        return false;
    if (dune_sys6(SYS_prlimit64, 0, RLIMIT_STACK, 0, (long)&rl, 0, 0) < 0)
        return false;
    if (rl.rlim_cur != RLIM_INFINITY && q->above.end - page_down(q->addr) > rl.rlim_cur)
        return false;
    if (q->has_below && page_down(q->addr) < q->below.end + gap)
        return false;
    (void)*(volatile char *)q->addr;
    return true;
}

/*
 * Resolve a guest #PF at addr.  Returns 0 when the guest should retry the
 * access, or -EFAULT with *si_code set to what the kernel would report.
 */
int mirror_fault(uintptr_t addr, bool write, bool exec, int *si_code)
{
    struct fault_query q = { .addr = addr };
    uint64_t *pte;
    int r;

    r = for_each_vma(find_vma, &q);
    if (r < 0)
        return r;
    if (!q.found) {
        if (grow_stack(&q))
            return mirror_range(page_down(addr), q.above.end, q.above.prot);
        *si_code = SEGV_MAPERR;
        return -EFAULT;
    }
    if (!access_allowed(q.hit.prot, write, exec) || in_mmio_window(q.hit.start, q.hit.end)) {
        *si_code = SEGV_ACCERR;
        return -EFAULT;
    }
    /* A present entry that forbids this access is a guest-only protection
     * (dune_protect) or a real violation: never widen it behind the
     * program's back.  Only absent entries are mirrored lazily. */
    pte = pt_lookup(addr, false);
    if (pte && (*pte & DUNE_PTE_P)) {
        bool allowed = (!write || (*pte & DUNE_PTE_W)) && (!exec || !(*pte & DUNE_PTE_NX));
        if (allowed)
            return 0; /* a stale TLB entry; the fault itself flushed it */
        *si_code = SEGV_ACCERR;
        return -EFAULT;
    }
    if (q.hit.end - q.hit.start > EAGER_LIMIT) {
        uintptr_t s = page_down(addr) & ~(LAZY_CHUNK - 1), e = s + LAZY_CHUNK;
        if (s < q.hit.start)
            s = q.hit.start;
        if (e > q.hit.end)
            e = q.hit.end;
        r = slots_cover(s, e);
        return r < 0 ? r : pt_map(s, e, q.hit.prot, true);
    }
    return mirror_range(q.hit.start, q.hit.end, q.hit.prot);
}

/* ---- re-reading the truth after a partial failure ---- */

struct resync {
    uintptr_t start, end, pos;
    int err;
};

static int resync_one(const struct vma *v, void *arg)
{
    struct resync *q = arg;
    uintptr_t s = v->start > q->start ? v->start : q->start;
    uintptr_t e = v->end < q->end ? v->end : q->end;

    if (v->end <= q->start)
        return 0;
    if (v->start >= q->end)
        return 1;
    if (s > q->pos)
        mirror_unmap(q->pos, s); /* a hole */
    if (mirror_range(s, e, v->prot) < 0)
        q->err = -ENOMEM;
    q->pos = e;
    return 0;
}

/*
 * Make [start, end) of the guest equal to /proc/self/maps: after a call
 * that failed half-way (mprotect over a hole changes the part before it),
 * or one whose extent we could not know (shmdt).
 */
int mirror_resync(uintptr_t start, uintptr_t end)
{
    struct resync q = { .start = start, .end = end, .pos = start };
    int r = for_each_vma(resync_one, &q);

    if (r < 0)
        return r;
    if (q.pos < end)
        mirror_unmap(q.pos, end);
    return q.err;
}

static int extent_one(const struct vma *v, void *arg)
{
    struct resync *q = arg;

    if (v->start <= q->pos && q->pos < v->end) {
        q->start = v->start;
        q->end = v->end;
        return 1;
    }
    return 0;
}

/* The mapping containing addr, from /proc/self/maps. */
int mirror_vma_extent(uintptr_t addr, uintptr_t *start, uintptr_t *end)
{
    struct resync q = { .pos = addr };
    int r = for_each_vma(extent_one, &q);

    if (r < 0)
        return r;
    if (!q.end)
        return -ENOENT;
    *start = q.start;
    *end = q.end;
    return 0;
}
