/*
 * priv.c - privileged features for Dune-aware code running in the guest:
 * page-table entries, their accessed/dirty bits, the TLB, the dirty log.
 *
 * Page tables are ordinary process memory mapped into the guest, so guest
 * code reads them directly (pt_lookup turns each table's guest-physical
 * frame back into a pointer with hva_of_gpa, plain arithmetic).  Clearing A/D bits or dropping permissions is
 * done here, in the guest, so that a shadow-paging hypervisor sees the
 * write, and is followed by a TLB flush (arch_flush_tlb: directly in
 * privileged mode, through a gate otherwise) and, with other vCPUs
 * running, a shootdown (below).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "dune_internal.h"

uint64_t *dune_pte_lookup(const void *va)
{
    if (!dune_vm.initialized)
        return NULL;
    return pt_lookup((uintptr_t)va, false);
}

int dune_pte_walk(void *start, size_t len, dune_pte_fn fn, void *arg)
{
    uintptr_t end = (uintptr_t)start + len;

    if (!dune_vm.initialized)
        return -ENOTCONN;
    for (uintptr_t va = page_down(start); va < end; va += PAGE_SIZE) {
        uint64_t *pte = pt_lookup(va, false);
        int r;

        if (!pte || !(*pte & DUNE_PTE_P))
            continue;
        if ((r = fn(va, pte, arg)) != 0)
            return r;
    }
    return 0;
}

/* Flushing page by page is cheaper than a full flush only for a few pages. */
#define FLUSH_ALL_THRESHOLD 32

/*
 * A TLB batch (dune_tlb_batch_begin/end): while one is open, the calling
 * thread's read-and-clears still flush this vCPU at once (the caller's own
 * writes must set D again), but leave the shootdown of the other vCPUs
 * owed, and the end does one shootdown instead of one per call.  A
 * collector reading many ranges with the world stopped needs the other
 * TLBs clean only before the world resumes.
 */
static __thread struct {
    bool open;
    bool owed; /* a bit was cleared since the batch began */
} tlb_batch;

/* A shootdown failed and none has succeeded since (dune_tlb_shootdown). */
static atomic_bool shoot_owed;

/* The pages a read-and-clear cleared, for flushing them one by one. */
struct cleared {
    long n;
    uintptr_t va[FLUSH_ALL_THRESHOLD];
};

static void note_cleared(struct cleared *c, uintptr_t va)
{
    if (c->n < FLUSH_ALL_THRESHOLD)
        c->va[c->n] = va;
    c->n++;
}

/* Flush what clearing made stale: this vCPU now; the others by a
 * shootdown, now or at the end of the batch. */
static int flush_cleared(const struct cleared *c)
{
    if (c->n == 0 && !atomic_load(&shoot_owed))
        return 0;
    if (c->n > FLUSH_ALL_THRESHOLD) {
        arch_flush_tlb(0);
    } else {
        for (long i = 0; i < c->n; i++)
            arch_flush_tlb(c->va[i]);
    }
    if (tlb_batch.open) {
        tlb_batch.owed = true;
        return 0;
    }
    /* Another vCPU could still write through an entry with D cached. */
    return dune_tlb_shootdown();
}

static long bits_read_clear(void *start, size_t len, uint64_t *bitmap, uint64_t bit,
                            const uint64_t *keep)
{
    uintptr_t s = page_down(start), e = page_up((uintptr_t)start + len);
    size_t npages = (e - s) / PAGE_SIZE;
    struct cleared c = { 0 };
    long n = 0;

    if (!dune_self)
        return -ENOTCONN;
    /* No libc calls here: in CPL0 mode on a paravirtual KVM this code is
     * emulated, and the emulator cannot run glibc's vector routines.  keep
     * may be bitmap itself: each word of it is read before it is written. */
    for (size_t w = 0; w < (npages + 63) / 64; w++) {
        uint64_t word = 0, kept = keep ? keep[w] : 0;
        for (size_t i = w * 64; i < npages && i < w * 64 + 64; i++) {
            uintptr_t va = s + i * PAGE_SIZE;
            uint64_t *pte = pt_lookup(va, false);
            if (!pte || !(*pte & bit))
                continue;
            word |= 1ULL << (i % 64);
            n++;
            if (kept >> (i % 64) & 1)
                continue; /* reported, left set: no fault and no flush for it */
            __atomic_fetch_and(pte, ~bit, __ATOMIC_SEQ_CST);
            note_cleared(&c, va);
        }
        ((volatile uint64_t *)bitmap)[w] = word;
    }
    int r = flush_cleared(&c);
    return r < 0 ? r : n;
}

/*
 * The write-protect tracker: a page is "written" when W is set, or when
 * it lost W since the last read (DUNE_PTE_WRITTEN, kept by every rewrite
 * of the entry); reading takes W away (marking the entry DUNE_PTE_WP) and
 * flushes like a D-bit clear, so the next write faults.  Any path that
 * sets W -- the fault fix-up below or in entry.S, the mirror installing a
 * writable mapping -- makes the page count as written, so nothing can
 * write it unseen; the mirror drops the mark whenever it rewrites an
 * entry, so a page the program made read-only meanwhile is never given W
 * by us.
 */
long dune_wp_read_protect(void *start, size_t len, uint64_t *bitmap, const uint64_t *keep)
{
    uintptr_t s = page_down(start), e = page_up((uintptr_t)start + len);
    size_t npages = (e - s) / PAGE_SIZE;
    struct cleared c = { 0 };
    long n = 0;

    if (!dune_self)
        return -ENOTCONN;
    for (size_t w = 0; w < (npages + 63) / 64; w++) {
        uint64_t word = 0, kept = keep ? keep[w] : 0;
        for (size_t i = w * 64; i < npages && i < w * 64 + 64; i++) {
            uintptr_t va = s + i * PAGE_SIZE;
            uint64_t *pte = pt_lookup(va, false), old;
            if (!pte)
                continue;
            old = __atomic_load_n(pte, __ATOMIC_RELAXED);
            bool writable = (old & (DUNE_PTE_P | DUNE_PTE_W)) == (DUNE_PTE_P | DUNE_PTE_W);
            if (!writable && !(old & DUNE_PTE_WRITTEN))
                continue;
            word |= 1ULL << (i % 64);
            n++;
            if (kept >> (i % 64) & 1)
                continue;
            /* Compare-and-swap: the mirror may rewrite the entry meanwhile,
             * and its version must win (it keeps WRITTEN if it takes W).
             * Only an entry that has W now is marked: W is given back only
             * where the program's own protection allows writing. */
            uint64_t new = writable ? (old & ~(DUNE_PTE_W | DUNE_PTE_WRITTEN)) | DUNE_PTE_WP
                                    : old & ~DUNE_PTE_WRITTEN;
            if (__atomic_compare_exchange_n(pte, &old, new, false, __ATOMIC_SEQ_CST,
                                            __ATOMIC_RELAXED) && writable)
                note_cleared(&c, va);
        }
        ((volatile uint64_t *)bitmap)[w] = word;
    }
    int r = flush_cleared(&c);
    return r < 0 ? r : n;
}

bool wp_fault_fix(uintptr_t addr)
{
    uint64_t *pte = pt_lookup(addr, false);
    uint64_t old;

    if (!pte)
        return false;
    old = __atomic_load_n(pte, __ATOMIC_RELAXED);
    do {
        /* Another vCPU gave W back first: retry.  (Left to the mirror, the
         * collector could take W away again before it looks, and the fault
         * would pass for a real violation.) */
        if ((old & (DUNE_PTE_P | DUNE_PTE_W)) == (DUNE_PTE_P | DUNE_PTE_W))
            return true;
        if ((old & (DUNE_PTE_P | DUNE_PTE_WP)) != (DUNE_PTE_P | DUNE_PTE_WP))
            return false; /* not ours */
    } while (!__atomic_compare_exchange_n(pte, &old, (old | DUNE_PTE_W) & ~DUNE_PTE_WP, false,
                                          __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    atomic_fetch_add_explicit(&dune_vm.wp_exits, 1, memory_order_relaxed);
    return true;
}

long dune_dirty_read_clear(void *start, size_t len, uint64_t *bitmap)
{
    return bits_read_clear(start, len, bitmap, DUNE_PTE_D, NULL);
}

long dune_dirty_read_clear_except(void *start, size_t len, uint64_t *bitmap,
                                  const uint64_t *keep)
{
    return bits_read_clear(start, len, bitmap, DUNE_PTE_D, keep);
}

long dune_accessed_read_clear(void *start, size_t len, uint64_t *bitmap)
{
    return bits_read_clear(start, len, bitmap, DUNE_PTE_A, NULL);
}

int dune_tlb_batch_begin(void)
{
    if (!dune_self)
        return -ENOTCONN;
    if (tlb_batch.open)
        return -EBUSY;
    tlb_batch.open = true;
    tlb_batch.owed = false;
    return 0;
}

int dune_tlb_batch_end(void)
{
    bool owed = tlb_batch.owed;

    if (!tlb_batch.open)
        return -EINVAL;
    tlb_batch.open = false;
    tlb_batch.owed = false;
    if (!owed)
        return 0;
    if (!dune_self)
        return -ENOTCONN; /* left Dune inside the batch: nothing to flush with */
    return dune_tlb_shootdown();
}

/* Leaving Dune closes the thread's batch: its vCPU (and maybe the VM) is
 * gone, and a batch left open would silently defer later shootdowns. */
void tlb_batch_forget(void)
{
    tlb_batch.open = false;
    tlb_batch.owed = false;
}

int dune_flush_tlb_page(const void *va)
{
    if (!dune_self)
        return -ENOTCONN;
    return arch_flush_tlb(page_down(va));
}

int dune_flush_tlb(void)
{
    if (!dune_self)
        return -ENOTCONN;
    return arch_flush_tlb(0);
}

int dune_protect(void *start, size_t len, int prot)
{
    uintptr_t s = page_down(start), e = page_up((uintptr_t)start + len);
    uint64_t bits = pt_prot_bits(prot, true);

    if (!dune_self)
        return -ENOTCONN;
    if ((uintptr_t)start != s)
        return -EINVAL;
    for (uintptr_t va = s; va < e; va += PAGE_SIZE) {
        uint64_t *pte = pt_lookup(va, false);
        if (!pte || !(*pte & DUNE_PTE_P))
            return -ENOMEM; /* like mprotect on an unmapped range */
        uint64_t old = *pte;
        /* The frame stays: guest-physical is not the VA (gpa.c); so do A
         * and the history every rewrite keeps. */
        __atomic_store_n(pte, (old & (DUNE_PTE_ADDR | DUNE_PTE_A)) | bits | pte_history(old),
                         __ATOMIC_SEQ_CST);
    }
    /* Dropping permissions must reach every TLB before we return. */
    arch_flush_tlb(e - s == PAGE_SIZE ? s : 0);
    return dune_tlb_shootdown();
}

/* ---- the KVM dirty log: one hypercall per request, served on the host ---- */

static long hc3(long nr, long a, long b, long c)
{
    return dune_sys3(nr, a, b, c);
}

int dune_dirty_log_enable(void *start, size_t len, int on)
{
    if (!dune_vm.initialized)
        return -ENOTCONN;
    if (!dune_vm.manual_protect)
        return -ENOTSUP;
    if (dune_self)
        return (int)hc3(DUNE_HC_DIRTY_LOG_ENABLE, (long)start, (long)len, on);
    return dirty_log_enable_host((uintptr_t)start, len, on);
}

long dune_dirty_log_read_clear_except(void *start, size_t len, uint64_t *bitmap,
                                      const uint64_t *keep)
{
    if (!dune_vm.initialized)
        return -ENOTCONN;
    if (dune_self)
        return dune_sys6(DUNE_HC_DIRTY_LOG_READ, (long)start, (long)len, (long)bitmap,
                         (long)keep, 0, 0);
    return dirty_log_read_host((uintptr_t)start, len, bitmap, keep);
}

long dune_dirty_log_read_clear(void *start, size_t len, uint64_t *bitmap)
{
    return dune_dirty_log_read_clear_except(start, len, bitmap, NULL);
}

/* Host side of the two hypercalls above. */
int dirty_log_enable_host(uintptr_t start, size_t len, int on)
{
    int r;

    pthread_mutex_lock(&dune_vm.lock);
    /* Checked under the lock: the last thread's leave may release the VM. */
    r = dune_vm.initialized ? slots_cover(page_down(start), page_up(start + len)) : -ENOTCONN;
    if (r == 0)
        r = slots_set_dirty_log(page_down(start), page_up(start + len), on);
    pthread_mutex_unlock(&dune_vm.lock);
    return r;
}

long dirty_log_read_host(uintptr_t start, size_t len, uint64_t *bitmap, const uint64_t *keep)
{
    long r;

    pthread_mutex_lock(&dune_vm.lock);
    r = dune_vm.initialized
            ? slots_dirty_read_clear(page_down(start), page_up(start + len), bitmap, keep)
            : -ENOTCONN;
    pthread_mutex_unlock(&dune_vm.lock);
    return r;
}

/* ---- TLB shootdown: flushing the other vCPUs, done by KVM ---- */

/*
 * A flush from guest code (arch_flush_tlb) reaches only the vCPU that
 * runs it.  After clearing D bits or dropping permissions, the other
 * vCPUs may still cache the old entry and write through it unseen.  Rather
 * than interrupting them ourselves (no interrupt controller here, and a
 * signal would not reach a thread that blocks every signal, as Boehm GC's
 * markers do), we let KVM do it: clearing a dirty page in the dirty log
 * with manual protection write-protects it and makes KVM flush the TLBs
 * of every vCPU of the VM before the ioctl returns (kvm_flush_remote_tlbs;
 * on EPT/NPT that also drops the guest-linear translations, with their
 * cached D bits).  So each shootdown dirties one page of a private, logged area
 * and clears it: one write fault and one hypercall, and the answer (the
 * page was logged, so the flush happened) is checked.
 *
 * Each thread uses its own page so that concurrent shootdowns cannot take
 * each other's page (threads beyond SHOOT_PAGES share, and then a shootdown
 * may report -EIO: callers treat that as "could not flush", never as done).
 */
#define SHOOT_PAGES 512 /* one 2 MiB slot */

static _Atomic(char *) shoot_area;
static atomic_ulong shoot_vm; /* the VM (generation) whose slot logs the area */

static char *shoot_area_get(void)
{
    char *a = atomic_load(&shoot_area), *raw, *mine;
    long p;

    if (a) {
        /* A new VM (after the last leave and a new enter) must log the
         * area again; enabling twice is harmless.  A forked child's VM
         * replays the slots with their flags. */
        if (atomic_load(&shoot_vm) != dune_vm_generation()) {
            if (dune_dirty_log_enable(a, SLOT_ALIGN, 1) < 0)
                return NULL;
            atomic_store(&shoot_vm, dune_vm_generation());
        }
        return a;
    }
    /* 2 MiB-aligned, so that the logged slot holds nothing else. */
    p = dune_sys6(SYS_mmap, 0, 2 * SLOT_ALIGN, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (dune_failed(p))
        return NULL;
    raw = (char *)p;
    mine = (char *)(((uintptr_t)raw + SLOT_ALIGN - 1) & ~(SLOT_ALIGN - 1));
    if (dune_dirty_log_enable(mine, SLOT_ALIGN, 1) < 0) {
        dune_sys3(SYS_munmap, (long)raw, 2 * SLOT_ALIGN, 0);
        return NULL;
    }
    if (!atomic_compare_exchange_strong(&shoot_area, &a, mine)) {
        dune_sys3(SYS_munmap, (long)raw, 2 * SLOT_ALIGN, 0);
        return shoot_area_get(); /* another thread won: use its area */
    }
    atomic_store(&shoot_vm, dune_vm_generation());
    return mine;
}

/* This thread's page of the area.  Taken from a counter rather than from
 * the vCPU (whose host-side structure the guest need not be able to read:
 * a forked child's new vCPU is not mirrored). */
static atomic_uint shoot_next;
static __thread int shoot_slot = -1;

static int shoot_once(void)
{
    char *a, *page;
    uint64_t bit = 0;
    long n;

    /* A vCPU that enters later starts with an empty TLB. */
    if (dune_vm.active_vcpus <= 1)
        return 0;
    a = shoot_area_get();
    if (!a)
        return -ENOMEM;
    if (shoot_slot < 0)
        shoot_slot = (int)(atomic_fetch_add(&shoot_next, 1) % SHOOT_PAGES);
    page = a + (size_t)shoot_slot * PAGE_SIZE;
    atomic_fetch_add_explicit(&dune_vm.shootdowns, 1, memory_order_relaxed);
    *(volatile char *)page = 1;
    n = dune_dirty_log_read_clear(page, PAGE_SIZE, &bit);
    if (n < 0)
        return (int)n;
    return n == 1 ? 0 : -EIO;
}

/* A failed shootdown leaves stale entries behind until one succeeds, so
 * the next read-and-clear tries again even if it clears nothing. */
int dune_tlb_shootdown(void)
{
    int r;

    if (!dune_self)
        return -ENOTCONN;
    r = shoot_once();
    atomic_store(&shoot_owed, r < 0);
    return r;
}
