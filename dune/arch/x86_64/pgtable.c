/*
 * pgtable.c - the guest's 4-level x86-64 page tables.
 *
 * Tables live in ordinary process memory (a pool of 2 MiB chunks), so
 * guest-physical == host-virtual holds for them too: an entry's address field
 * is simply the host pointer to the next table.  The pool is mirrored into
 * the guest like any other mapping, which lets Dune-aware guest code read
 * PTEs directly.  Tables are freed only with the whole VM: a process's
 * address space shape is bounded and reused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "dune_internal.h"

#define PTE_P DUNE_PTE_P
#define PTE_W DUNE_PTE_W
#define PTE_U DUNE_PTE_U
#define PTE_A DUNE_PTE_A
#define PTE_D DUNE_PTE_D
#define PTE_PS 0x080ULL
#define PTE_NX DUNE_PTE_NX
#define PTE_ADDR 0x000ffffffffff000ULL
#define POOL_CHUNK (2UL << 20)

static uint64_t *root;
static uintptr_t pool_cur, pool_end;

/* Pool chunks as [start, end) pairs, so callers can tell table pages apart. */
#define MAX_CHUNKS 256
static uintptr_t chunks[MAX_CHUNKS][2];
static unsigned nchunks;

static int pool_grow(void)
{
    long p;

    if (nchunks == MAX_CHUNKS)
        return -ENOMEM;
    p = dune_sys6(9 /* mmap */, 0, POOL_CHUNK, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p < 0 && p > -4096)
        return (int)p;
    pool_cur = (uintptr_t)p;
    pool_end = pool_cur + POOL_CHUNK;
    chunks[nchunks][0] = pool_cur;
    chunks[nchunks][1] = pool_end;
    nchunks++;
    /* The guest reaches tables through its memslots only (the CPU walks
     * guest-physical addresses), so cover the chunk right away. */
    return slots_cover(pool_cur, pool_end);
}

static uint64_t *table_alloc(void)
{
    uint64_t *t;

    if (pool_cur == pool_end && pool_grow() < 0)
        return NULL;
    t = (uint64_t *)pool_cur;
    pool_cur += PAGE_SIZE;
    memset(t, 0, PAGE_SIZE);
    return t;
}

bool pt_is_table_page(uintptr_t va)
{
    for (unsigned i = 0; i < nchunks; i++)
        if (va >= chunks[i][0] && va < chunks[i][1])
            return true;
    return false;
}

int pt_init(void)
{
    if (root)
        return 0;
    root = table_alloc();
    return root ? 0 : -ENOMEM;
}

/* Drop every table (the VM is going away). */
void pt_free(void)
{
    for (unsigned i = 0; i < nchunks; i++)
        munmap((void *)chunks[i][0], chunks[i][1] - chunks[i][0]);
    nchunks = 0;
    root = NULL;
    pool_cur = pool_end = 0;
}

uintptr_t pt_root(void)
{
    return (uintptr_t)root;
}

uint64_t *pt_lookup(uintptr_t va, bool create)
{
    uint64_t *t = root;

    if (!t)
        return NULL; /* no VM (any more) */
    for (int level = 3; level > 0; level--) {
        unsigned idx = (va >> (12 + 9 * level)) & 511;
        if (!(t[idx] & PTE_P)) {
            uint64_t *n;
            if (!create || !(n = table_alloc()))
                return NULL;
            /* Upper levels allow everything; the leaf decides. */
            t[idx] = (uintptr_t)n | PTE_P | PTE_W | PTE_U;
        }
        t = (uint64_t *)(t[idx] & PTE_ADDR);
    }
    return &t[(va >> 12) & 511];
}

uint64_t pt_prot_bits(int prot, bool user)
{
    uint64_t b = 0;

    if (!(prot & (PROT_READ | PROT_WRITE | PROT_EXEC)))
        return 0;
    b = PTE_P;
    if (prot & PROT_WRITE)
        b |= PTE_W;
    if (!(prot & PROT_EXEC))
        b |= PTE_NX;
    if (user)
        b |= PTE_U;
    return b;
}

/*
 * Map [start, end) with prot.  A page keeps its dirty bit across a
 * protection change: dropping it could hide a write from the collector.
 */
int pt_map(uintptr_t start, uintptr_t end, int prot, bool user)
{
    return pt_map_flags(start, end, prot, user, 0);
}

/* Rewrite one entry, keeping a dirty bit the CPU may set meanwhile.  An
 * entry made not-present (PROT_NONE) keeps its D bit too: the page was
 * written, and the D-bit reader (priv.c) must still see it; the CPU
 * ignores the other bits of a not-present entry. */
static void pte_set(uint64_t *pte, uintptr_t va, uint64_t bits, uint64_t extra)
{
    uint64_t old = __atomic_load_n(pte, __ATOMIC_RELAXED), new;

    do {
        new = bits ? (va | bits | extra | (old & PTE_D)) : (old & PTE_D);
    } while (!__atomic_compare_exchange_n(pte, &old, new, false, __ATOMIC_SEQ_CST,
                                          __ATOMIC_RELAXED));
}

/* Change only the entries that exist (a huge range is mirrored lazily:
 * absent entries are filled in by the fault path with current rights). */
void pt_update_existing(uintptr_t start, uintptr_t end, int prot, bool user)
{
    uint64_t bits = pt_prot_bits(prot, user);
    uintptr_t va = start;

    while (va < end) {
        uint64_t *pte = pt_lookup(va, false);
        if (!pte) {
            va = (va + (1UL << 21)) & ~((1UL << 21) - 1);
            continue;
        }
        if (__atomic_load_n(pte, __ATOMIC_RELAXED) & PTE_P)
            pte_set(pte, va, bits, 0);
        va += PAGE_SIZE;
    }
}

/*
 * extra: PTE bits to add (PTE_D for pages whose dirtiness is unknown, such
 * as the new home of an mremap).  Updates use compare-and-swap: the CPU
 * may set D between our read and our write.
 */
int pt_map_flags(uintptr_t start, uintptr_t end, int prot, bool user, uint64_t extra)
{
    uint64_t bits = pt_prot_bits(prot, user);

    for (uintptr_t va = start; va < end; va += PAGE_SIZE) {
        uint64_t *pte = pt_lookup(va, bits != 0);
        if (!pte) {
            if (bits)
                return -ENOMEM;
            continue;
        }
        pte_set(pte, va, bits, extra);
    }
    return 0;
}

/* Clear the leaf entries; skip whole 2 MiB / 1 GiB holes quickly. */
void pt_unmap(uintptr_t start, uintptr_t end)
{
    uintptr_t va = start;

    while (va < end) {
        uint64_t *pte = pt_lookup(va, false);
        if (!pte) {
            va = (va + (1UL << 21)) & ~((1UL << 21) - 1);
            continue;
        }
        *pte = 0;
        va += PAGE_SIZE;
    }
}
