/*
 * pgtable.c - the guest's 4-level x86-64 page tables.
 *
 * Tables live in ordinary process memory: a pool of 2 MiB chunks inside one
 * reserved host range, each chunk backed by a pinned memslot at the pool's
 * guest-physical window (gpa.c).  An entry holds the guest-physical frame
 * of the next table or page; tables are reached from a frame through
 * hva_of_gpa(), on the host and in the guest alike (the pool is mirrored
 * like any other mapping, which lets Dune-aware guest code read PTEs
 * directly).  Tables are freed only with the whole VM: a process's address
 * space shape is bounded and reused.
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
#define PTE_ADDR DUNE_PTE_ADDR
#define POOL_CHUNK SLOT_ALIGN
#define POOL_SIZE ((uintptr_t)GPA_POOL_CHUNKS * POOL_CHUNK)

static uint64_t *root;
static uintptr_t pool_base, pool_cur, pool_end; /* pool_end: end of chunks in use */
static uint64_t pool_gpa;

/*
 * Tables emptied by pt_unmap wait in a FIFO before reuse.  A vCPU may still
 * hold a paging-structure cache entry pointing at a freed table (only if a
 * thread races munmap of the same memory, which natively faults); reusing
 * the oldest free table, and only once many wait, keeps such a stale walk
 * from landing in a table that maps something else soon after.
 */
#define MAX_TABLES (POOL_SIZE / PAGE_SIZE)
#define QUARANTINE 512
static uint32_t *freeq; /* [MAX_TABLES], table index in the pool (table.c:
                          * why not in bss) */
static unsigned freeq_head, freeq_n;

/* Reserve the pool's host range (memory comes chunk by chunk) and give it
 * one pinned slot: unmapped parts of a slot cost nothing but their rmap,
 * and the count of memslots stays independent of the tables in use. */
static int pool_reserve(void)
{
    long p;
    uintptr_t base;
    int r;

    if (!freeq && !(freeq = dune_table_alloc(MAX_TABLES * sizeof freeq[0])))
        return -ENOMEM;
    p = dune_sys6(9 /* mmap */, 0, POOL_SIZE + POOL_CHUNK, PROT_NONE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p < 0 && p > -4096)
        return (int)p;
    base = ((uintptr_t)p + POOL_CHUNK - 1) & ~(POOL_CHUNK - 1);
    if (base > (uintptr_t)p)
        dune_sys3(11 /* munmap */, p, base - (uintptr_t)p, 0);
    dune_sys3(11 /* munmap */, base + POOL_SIZE, (uintptr_t)p + POOL_CHUNK - base, 0);
    pool_gpa = gpa_pool_set(base);
    r = slots_add_pinned(base, base + POOL_SIZE, pool_gpa);
    if (r < 0) {
        dune_sys3(11 /* munmap */, base, POOL_SIZE, 0);
        gpa_pool_set(0);
        return r;
    }
    pool_base = pool_cur = pool_end = base;
    freeq_head = freeq_n = 0;
    return 0;
}

static int pool_grow(void)
{
    long p;

    if (pool_end == pool_base + POOL_SIZE)
        return -ENOMEM;
    p = dune_sys6(9 /* mmap */, pool_end, POOL_CHUNK, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE, -1, 0);
    if (p < 0 && p > -4096)
        return (int)p;
    pool_cur = pool_end;
    pool_end += POOL_CHUNK;
    return 0;
}

static uint64_t *table_alloc(void)
{
    uint64_t *t;

    if (freeq_n > QUARANTINE || (freeq_n && pool_cur == pool_end && pool_grow() < 0)) {
        t = (uint64_t *)(pool_base + (uintptr_t)freeq[freeq_head] * PAGE_SIZE);
        freeq_head = (freeq_head + 1) % MAX_TABLES;
        freeq_n--;
    } else {
        if (pool_cur == pool_end && pool_grow() < 0)
            return NULL;
        t = (uint64_t *)pool_cur;
        pool_cur += PAGE_SIZE;
    }
    memset(t, 0, PAGE_SIZE);
    return t;
}

static void table_free(uint64_t *t)
{
    freeq[(freeq_head + freeq_n) % MAX_TABLES] = (uint32_t)(((uintptr_t)t - pool_base) / PAGE_SIZE);
    freeq_n++;
}

static uint64_t table_gpa(const uint64_t *t)
{
    return pool_gpa + ((uintptr_t)t - pool_base);
}

bool pt_is_table_page(uintptr_t va)
{
    return va >= pool_base && va < pool_end;
}

static bool table_empty(const uint64_t *t)
{
    for (unsigned i = 0; i < 512; i++)
        if (t[i])
            return false;
    return true;
}

int pt_init(void)
{
    int r;

    if (root)
        return 0;
    if (!pool_base && (r = pool_reserve()) < 0)
        return r;
    root = table_alloc();
    return root ? 0 : -ENOMEM;
}

/* entry.S's #PF fast path for the write-protect tracker: on (CPL0 mode)
 * or off, and the offset from a table's GPA to its address. */
extern uint64_t dune_pool_delta, dune_wp_fast_faults;
extern uint8_t dune_wp_fast;

unsigned long pt_wp_fast_faults(void)
{
    return (unsigned long)__atomic_load_n(&dune_wp_fast_faults, __ATOMIC_RELAXED);
}

void pt_wp_fast(bool on)
{
    __atomic_store_n(&dune_pool_delta, (uint64_t)(pool_base - pool_gpa), __ATOMIC_RELAXED);
    __atomic_store_n(&dune_wp_fast, on && pool_base, __ATOMIC_RELEASE);
}

/* Drop every table (the VM is going away). */
void pt_free(void)
{
    pt_wp_fast(false);
    if (pool_base)
        munmap((void *)pool_base, POOL_SIZE);
    gpa_pool_set(0);
    root = NULL;
    pool_base = pool_cur = pool_end = 0;
}

/* The guest's CR3. */
uintptr_t pt_root(void)
{
    return root ? table_gpa(root) : 0;
}

/* The next table down from entry e (present), as a pointer. */
static uint64_t *next_table(uint64_t e)
{
    return (uint64_t *)hva_of_gpa(e & PTE_ADDR);
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
            t[idx] = table_gpa(n) | PTE_P | PTE_W | PTE_U;
        }
        t = next_table(t[idx]);
        if (!t)
            return NULL;
    }
    return &t[(va >> 12) & 511];
}

/* Does any present leaf entry map a page of [start, end)?  Whole tables
 * are scanned as memory: releasing a 64 MiB slot must stay cheap. */
bool pt_range_mapped(uintptr_t start, uintptr_t end)
{
    uintptr_t va = start;

    while (va < end) {
        uintptr_t next = (va + (1UL << 21)) & ~((1UL << 21) - 1);
        uint64_t *pte = pt_lookup(va, false);

        if (next > end)
            next = end;
        if (pte) {
            for (uintptr_t n = (next - va) / PAGE_SIZE; n; n--, pte++)
                if (*pte & PTE_P)
                    return true;
        }
        va = next;
    }
    return false;
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
 * ignores the other bits of a not-present entry.  frame GPA_NONE keeps
 * the entry's own frame. */
static void pte_set(uint64_t *pte, uint64_t frame, uint64_t bits, uint64_t extra)
{
    uint64_t old = __atomic_load_n(pte, __ATOMIC_RELAXED), new;

    do {
        uint64_t f = frame == GPA_NONE ? (old & PTE_ADDR) : frame;
        uint64_t keep = pte_history(old);
        new = bits ? (f | bits | extra | keep) : keep;
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
            pte_set(pte, GPA_NONE, bits, 0);
        va += PAGE_SIZE;
    }
}

/*
 * extra: PTE bits to add (PTE_D for pages whose dirtiness is unknown, such
 * as the new home of an mremap).  Updates use compare-and-swap: the CPU
 * may set D between our read and our write.  A present entry needs a
 * memslot behind it: the range is covered first.
 */
int pt_map_flags(uintptr_t start, uintptr_t end, int prot, bool user, uint64_t extra)
{
    uint64_t bits = pt_prot_bits(prot, user);
    uintptr_t va = start;
    int r;

    if (bits && (r = slots_cover(start, end)) < 0)
        return r;
    while (va < end) {
        uintptr_t run_end = end;
        uint64_t frame = GPA_NONE;

        if (bits) {
            frame = gpa_of_hva_run(va, &run_end);
            if (frame == GPA_NONE)
                return -ENOMEM;
            if (run_end > end)
                run_end = end;
        }
        for (; va < run_end; va += PAGE_SIZE) {
            uint64_t *pte = pt_lookup(va, bits != 0);
            if (!pte) {
                if (bits)
                    return -ENOMEM;
            } else {
                pte_set(pte, frame, bits, extra);
            }
            if (bits)
                frame += PAGE_SIZE;
        }
    }
    return 0;
}

/*
 * Clear the leaf entries of [start, end); skip whole 2 MiB / 1 GiB holes
 * quickly.  Tables left with no entry at all (a not-present entry may still
 * hold a D bit: such tables stay) go back to the pool, from the leaf up:
 * churn at ever new addresses must not grow the tables without bound.
 */
void pt_unmap(uintptr_t start, uintptr_t end)
{
    uintptr_t va = start;

    while (va < end) {
        uint64_t *path[4], *t = root;
        unsigned idx[4];
        int level;

        if (!t)
            return;
        for (level = 3; level > 0; level--) {
            path[level] = t;
            idx[level] = (va >> (12 + 9 * level)) & 511;
            if (!(t[idx[level]] & PTE_P) || !(t = next_table(t[idx[level]])))
                break;
        }
        if (level > 0) {
            /* no table below path[level]: skip what its entry covers */
            uintptr_t span = 1UL << (12 + 9 * level);
            uintptr_t next = (va + span) & ~(span - 1);
            va = next > va ? next : end;
            continue;
        }
        uintptr_t next = (va + (1UL << 21)) & ~((1UL << 21) - 1);
        for (; va < end && va < next; va += PAGE_SIZE)
            t[(va >> 12) & 511] = 0;
        /* free the emptied tables, never the root */
        for (level = 1; level <= 3 && table_empty(t); level++) {
            __atomic_store_n(&path[level][idx[level]], 0, __ATOMIC_SEQ_CST);
            table_free(t);
            t = path[level];
            if (t == root)
                break;
        }
    }
}
