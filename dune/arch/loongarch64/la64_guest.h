/*
 * la64_guest.h - the LoongArch64 Dune guest runtime.
 *
 * This code runs inside the VM at PLV0 with paging on.  LoongArch has no
 * hardware page-table walker that sets accessed/dirty bits: a TLB miss
 * enters a software refill handler, and a store through a TLB entry with
 * D=0 raises a page-modify exception (PME).  The runtime uses that to keep
 * exact per-page dirty bits with no VM exit:
 *
 *   refill (entry.S)   lddir/ldpte walk the 4-level table, tlbfill
 *   PME (dirty.c)      set PTE.D if the page is writable, tlbwr the entry
 *   collect (dirty.c)  read-and-clear PTE.D, invtlb the page so the next
 *                      store traps again
 *   page invalid       retry if the PTE became valid, else report a fault
 *                      with SIGSEGV semantics (trap.c)
 *   syscall            forwarded to the host with hvcl (trap.c)
 *
 * Page tables hold physical addresses (the refill handler runs in direct
 * address mode); software reaches them through the cached DMW window.
 * Under Dune the guest-physical address equals the host virtual address.
 *
 * Sources: pgtable.c and boot.c are portable C (they also build for the
 * host); entry.S, tlb.c, dirty.c and trap.c need a LoongArch CPU at PLV0.
 */
#ifndef LA64_GUEST_H
#define LA64_GUEST_H

#include <stddef.h>
#include <stdint.h>
#include "la64_regs.h"

#if defined(__loongarch__) && !defined(LA64_NO_HIDDEN)
/* Keep every runtime symbol hidden: references stay PC-relative, so the
 * same objects work in the bare-metal image and in a PIC library. */
#pragma GCC visibility push(hidden)
#endif

/* ---- page tables (pgtable.c) ------------------------------------------- */

/* Returns a 4 KiB-aligned 4 KiB block for one table (an address software
 * can use), or NULL.  Its content does not matter: the caller fills it. */
typedef void *(*la64_alloc_page_fn)(void *ctx);

struct la64_pgtable {
    uint64_t root_pa;                 /* PGDL value */
    uint64_t invalid_pa[LA64_PT_LEVELS]; /* [l] = empty table of level l (0 = PTE table) */
    uint64_t virt_offset;             /* software VA = PA + virt_offset */
    la64_alloc_page_fn alloc_page;
    void *alloc_ctx;
    uint64_t pages_used;              /* tables allocated, invalid ones included */
};

/* Mapping flags for la64_pt_map. */
#define LA64_MAP_READ   0x1u
#define LA64_MAP_WRITE  0x2u
#define LA64_MAP_EXEC   0x4u
#define LA64_MAP_DIRTY  0x8u   /* start with D=1: writes never trap */

int la64_pt_init(struct la64_pgtable *pt, uint64_t virt_offset,
                 la64_alloc_page_fn alloc, void *ctx);
/* Map the page (LA64_PAGE_SIZE) at va to pa; flags 0 unmaps.  Does not
 * touch the TLB (see la64_tlb_flush_page).  0, or -1 (no memory / bad
 * alignment). */
int la64_pt_map(struct la64_pgtable *pt, uint64_t va, uint64_t pa, unsigned flags);
/* Find the PTE for va; NULL when no table covers it.  Never allocates. */
uint64_t *la64_pt_lookup(const struct la64_pgtable *pt, uint64_t va);
/* Software walk that behaves like lddir/ldpte: the PTE value the refill
 * handler would load for va (0 when unmapped). */
uint64_t la64_pt_walk(const struct la64_pgtable *pt, uint64_t va);
uint64_t la64_pt_make_pte(uint64_t pa, unsigned flags);

/* ---- boot-time CSR values (boot.c) -------------------------------------- */
struct la64_boot_params {
    uint64_t root_pa;          /* page-table root -> PGDL */
    uint64_t refill_pa;        /* physical address of la64_tlb_refill */
    uint64_t exception_va;     /* virtual address of la64_exception_entry */
    uint64_t exc_stack_base;   /* exception stack [base, top), virtual */
    uint64_t exc_stack_top;
    uint32_t asid;
};
struct la64_csr_value { uint32_t csr; uint64_t value; };
#define LA64_BOOT_NCSRS 16
/* Fill out[] with the CSR values that put a vCPU into the runtime's mode
 * (CRMD last).  Returns the count.  Used by the guest (la64_cpu_init) and
 * by the host (KVM_SET_ONE_REG), so both boot paths agree. */
int la64_boot_csrs(const struct la64_boot_params *p, struct la64_csr_value *out, int max);

#ifdef __loongarch__

/* ---- exception frame ------------------------------------------------------ */
struct la64_frame {
    uint64_t regs[32];
    uint64_t era, prmd, estat, badv, badi, pad;
};

/* ---- vectors and hypercall (entry.S) ------------------------------------ */
void la64_tlb_refill(void);
void la64_exception_entry(void);
long la64_hvcl(long op, long a1, long a2, long a3, long a4, long a5);

/* ---- CPU and TLB (tlb.c) ------------------------------------------------- */
/* Write the boot CSRs from the guest (bare metal); skips CRMD and the DMWs
 * (the caller is already running in paged mode through them). */
void la64_cpu_init(const struct la64_boot_params *p);
/* Make pt the table the refill and PME handlers use. */
void la64_pgtable_activate(struct la64_pgtable *pt);
extern struct la64_pgtable *la64_active_pt;
void la64_tlb_flush_all(void);
void la64_tlb_flush_page(uint64_t va);
/* Rewrite the TLB entry covering va (an even/odd page pair) from the two
 * PTEs of the pair: tlbsrch + tlbwr, or tlbfill if none is present. */
void la64_tlb_update(uint64_t va, const uint64_t *ptep);
/* Look up va in the TLB: 1 and the half (lo0 or lo1) for va, else 0. */
int la64_tlb_probe(uint64_t va, uint64_t *elo);
uint64_t la64_virt_to_phys(const void *p);

/* ---- dirty bits (dirty.c) ------------------------------------------------ */
/* Read-and-clear PTE.D for npages pages from start.  Bit i of bitmap (may
 * be NULL) is set iff page i was written since the last call.  Every
 * cleaned page is invalidated in the TLB, so its next store raises PME.
 * Returns the number of dirty pages. */
long la64_dirty_collect(struct la64_pgtable *pt, uint64_t start, size_t npages,
                        uint64_t *bitmap);
/* PME handler: 0 = resolved, -1 = not a writable page (caller reports). */
int la64_handle_page_modify(struct la64_frame *f);

/* ---- traps (trap.c) ------------------------------------------------------ */
enum la64_access { LA64_ACC_READ = 1, LA64_ACC_WRITE = 2, LA64_ACC_EXEC = 4, LA64_ACC_UNKNOWN = 0 };
enum la64_fault_code { LA64_SEGV_MAPERR = 1, LA64_SEGV_ACCERR = 2, LA64_BUS_ADRALN = 3, LA64_TRAP_OTHER = 4 };
struct la64_fault {
    uint64_t addr;     /* BADV */
    uint64_t era;      /* faulting instruction */
    unsigned ecode;
    unsigned access;   /* enum la64_access */
    unsigned code;     /* enum la64_fault_code */
    int sig;           /* Linux signal number the host would deliver */
};
/* Called for faults the runtime cannot resolve.  Return 1 to resume at
 * f->era (the hook may change it), 0 to fall through to the host. */
typedef int (*la64_fault_hook_fn)(struct la64_frame *f, const struct la64_fault *info);
void la64_set_fault_hook(la64_fault_hook_fn fn);

/* How the runtime talks to the host: la64_hvcl by default; a bare-metal
 * test replaces it to observe forwarded syscalls and faults. */
typedef long (*la64_host_call_fn)(long op, long a1, long a2, long a3, long a4, long a5);
extern la64_host_call_fn la64_host_call;

struct la64_stats {
    uint64_t page_modify;      /* PMEs that set a D bit */
    uint64_t invalid_retry;    /* page-invalid exceptions resolved by a TLB flush */
    uint64_t faults;           /* faults reported */
    uint64_t syscalls;         /* syscalls forwarded */
};
extern struct la64_stats la64_stats;

/* C entry from entry.S with the saved frame. */
void la64_trap(struct la64_frame *f);

#endif /* __loongarch__ */

#if defined(__loongarch__) && !defined(LA64_NO_HIDDEN)
#pragma GCC visibility pop
#endif

#endif
