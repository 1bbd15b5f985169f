/*
 * gpa.c - the guest-physical layout.
 *
 * Guest-virtual == host-virtual (so pointers in syscalls and signal frames
 * stay valid), but guest-physical addresses are handed out here, compactly,
 * because a CPU (and KVM) accepts memslots only below 2^MAXPHYADDR, and
 * most CPUs have fewer physical bits (39, 46) than user space has virtual
 * ones (47).  This file is the only place that knows the layout; everything
 * else translates through gpa_of_hva() / hva_of_gpa().
 *
 *   [0, 2 MiB)            unused (0 is never a valid frame of ours)
 *   [2 MiB, 4 MiB)        MMIO window: no memslot, guest stores exit to us
 *   [1 GiB, 1.25 GiB)     page-table pool: one pinned slot over its host range
 *   [4 GiB, top)          RAM: one range per memslot, first fit, reused
 *
 * top = 2^bits minus the last 2 MiB (some KVMs refuse the highest page).
 * Table frames translate back to pointers by one subtraction: the pool is
 * one host range too.  Guest code does this as well (priv.c walks tables
 * in the guest), so hva_of_gpa() must stay plain arithmetic there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dune_internal.h"

#define GPA_MMIO (2UL << 20)
#define GPA_POOL (1UL << 30)
#define GPA_RAM (4UL << 30)
#define GPA_MIN_BITS 34 /* RAM needs room above 4 GiB */

static unsigned bits;
static uint64_t top;

/* The pool is one reserved host range: chunk i lives at GPA_POOL + i * 2 MiB
 * and at pool_base + i * 2 MiB. */
static uintptr_t pool_base;

/* Free RAM ranges, sorted, never adjacent (merged on free). */
#define MAX_FREE (DUNE_MAX_SLOTS + 2)
static struct free_range {
    uint64_t start, end;
} *freel; /* [MAX_FREE], allocated by gpa_init (table.c says why) */
static unsigned nfree;

unsigned gpa_bits(void)
{
    return bits;
}

uint64_t gpa_mmio(void)
{
    return GPA_MMIO;
}

/* May KVM put a 2 MiB slot at gpa?  Tried with a scratch slot, removed at
 * once (slot id 0: called before any slot exists). */
static bool kvm_accepts(uint64_t gpa, uintptr_t hva)
{
    struct kvm_userspace_memory_region r = {
        .slot = 0, .guest_phys_addr = gpa, .memory_size = SLOT_ALIGN, .userspace_addr = hva,
    };

    if (dune_ioctl(dune_vm.vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
        return false;
    r.memory_size = 0;
    dune_ioctl(dune_vm.vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
    return true;
}

/*
 * cpu_bits: the width the CPU and KVM report for the guest (arch code).
 * DUNE_GPA_BITS may lower it (to try a small layout on a wide machine).
 * Then shrink it until KVM accepts a slot at the top.
 */
int gpa_init(unsigned cpu_bits)
{
    const char *env = getenv("DUNE_GPA_BITS");
    const char *why = "the CPU reports";
    void *scratch;

    if (!freel && !(freel = dune_table_alloc(MAX_FREE * sizeof freel[0]))) {
        dune_set_error(-ENOMEM, "no memory for the guest-physical free list");
        return -ENOMEM;
    }
    bits = cpu_bits > 52 ? 52 : cpu_bits;
    if (env && *env) {
        char *end;
        unsigned long want = strtoul(env, &end, 10);
        if (*end || want == 0) {
            dune_set_error(-EINVAL, "DUNE_GPA_BITS=%s is not a number of bits", env);
            return -EINVAL;
        }
        if (want < bits) {
            bits = (unsigned)want;
            why = "DUNE_GPA_BITS asks for";
        }
    }
    if (bits < GPA_MIN_BITS) {
        dune_set_error(-ENOTSUP, "guest-physical width too small: %s %u bits, Dune's layout "
                       "needs %u", why, bits, GPA_MIN_BITS);
        return -ENOTSUP;
    }
    scratch = mmap(NULL, SLOT_ALIGN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                   0);
    if (scratch == MAP_FAILED) {
        dune_set_error(-errno, "cannot map a scratch range: %s", strerror(errno));
        return -ENOMEM;
    }
    while (bits >= GPA_MIN_BITS &&
           !kvm_accepts((1ULL << bits) - 2 * SLOT_ALIGN, (uintptr_t)scratch))
        bits--;
    munmap(scratch, SLOT_ALIGN);
    if (bits < GPA_MIN_BITS) {
        dune_set_error(-ENOTSUP, "guest-physical width too small: KVM refuses memslots "
                       "below 2^%u, Dune's layout needs %u bits", GPA_MIN_BITS, GPA_MIN_BITS);
        return -ENOTSUP;
    }
    top = (1ULL << bits) - SLOT_ALIGN;
    gpa_reset();
    return 0;
}

/* Every RAM range free again (the VM and its slots are gone). */
void gpa_reset(void)
{
    nfree = 0;
    if (freel && top > GPA_RAM) {
        freel[0].start = GPA_RAM;
        freel[0].end = top;
        nfree = 1;
    }
}

/* A GPA range of len bytes (a multiple of 2 MiB), or GPA_NONE. */
uint64_t gpa_ram_alloc(size_t len)
{
    for (unsigned i = 0; i < nfree; i++) {
        uint64_t g = freel[i].start;
        if (freel[i].end - g < len)
            continue;
        freel[i].start += len;
        if (freel[i].start == freel[i].end) {
            memmove(&freel[i], &freel[i + 1], (nfree - i - 1) * sizeof freel[0]);
            nfree--;
        }
        return g;
    }
    return GPA_NONE;
}

void gpa_ram_free(uint64_t gpa, size_t len)
{
    uint64_t end = gpa + len;
    unsigned i = 0;

    while (i < nfree && freel[i].start < gpa)
        i++;
    /* i: first range after gpa.  Merge with the one before and/or after. */
    bool before = i > 0 && freel[i - 1].end == gpa;
    bool after = i < nfree && freel[i].start == end;

    if (before && after) {
        freel[i - 1].end = freel[i].end;
        memmove(&freel[i], &freel[i + 1], (nfree - i - 1) * sizeof freel[0]);
        nfree--;
    } else if (before) {
        freel[i - 1].end = end;
    } else if (after) {
        freel[i].start = gpa;
    } else if (nfree < MAX_FREE) {
        memmove(&freel[i + 1], &freel[i], (nfree - i) * sizeof freel[0]);
        freel[i].start = gpa;
        freel[i].end = end;
        nfree++;
    } /* else: the range is lost, never reused; cannot happen with one
         range per slot */
}

/* Bytes of RAM GPA still free (for tests and the limit message). */
uint64_t gpa_ram_free_bytes(void)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < nfree; i++)
        n += freel[i].end - freel[i].start;
    return n;
}

/* The page-table pool's host range (GPA_POOL_CHUNKS * 2 MiB, 2 MiB
 * aligned), or 0 when it is gone.  Returns the GPA of its start. */
uint64_t gpa_pool_set(uintptr_t base)
{
    pool_base = base;
    return GPA_POOL;
}

uint64_t gpa_of_hva(uintptr_t hva)
{
    uintptr_t start;
    uint64_t gpa;

    if (slot_find_hva(hva, &start, NULL, &gpa) < 0)
        return GPA_NONE;
    return gpa + (hva - start);
}

/* The GPA of hva and the end of the host range that follows it
 * contiguously in guest-physical space (its slot's end). */
uint64_t gpa_of_hva_run(uintptr_t hva, uintptr_t *run_end)
{
    uintptr_t start;
    uint64_t gpa;

    if (slot_find_hva(hva, &start, run_end, &gpa) < 0)
        return GPA_NONE;
    return gpa + (hva - start);
}

/* Runs in the guest too (table walks in priv.c): no libc, no locks. */
uintptr_t hva_of_gpa(uint64_t gpa)
{
    uintptr_t start;
    uint64_t sgpa;

    if (gpa >= GPA_MMIO && gpa < GPA_MMIO + PAGE_SIZE)
        return dune_vm.mmio_base + (gpa - GPA_MMIO);
    if (gpa >= GPA_POOL && gpa < GPA_POOL + GPA_POOL_CHUNKS * SLOT_ALIGN)
        return pool_base ? pool_base + (gpa - GPA_POOL) : 0;
    if (slot_find_gpa(gpa, &start, &sgpa) < 0)
        return 0;
    return start + (gpa - sgpa);
}

/* ---- public, for Dune-aware code and tests ---- */

unsigned dune_gpa_bits(void)
{
    return dune_vm.initialized ? bits : 0;
}

uintptr_t dune_gpa_to_va(uint64_t gpa)
{
    return dune_vm.initialized ? hva_of_gpa(gpa) : 0;
}
