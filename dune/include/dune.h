/*
 * dune.h - run the calling process inside its own KVM virtual machine.
 *
 * After dune_enter() the calling thread continues at the same instruction,
 * on the same stack, inside a guest whose page tables mirror the process's
 * address space: guest-virtual == host-virtual, while guest-physical
 * addresses are handed out compactly below the CPU's physical-address width
 * (dune_gpa_to_va translates a PTE's frame back).  Every system call is
 * forwarded to the host and returns exactly what it would natively; faults
 * become the signals they would natively be.  Dune-aware code can then use
 * privileged features: guest page-table entries, their accessed/dirty bits
 * and the TLB.
 *
 * Errors are negative errno values.  Nothing here needs root if /dev/kvm is
 * accessible.
 */
#ifndef DUNE_H
#define DUNE_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DUNE_API __attribute__((visibility("default")))

/* Privilege level the application runs at inside the guest. */
enum dune_mode {
    DUNE_MODE_AUTO = 0, /* CPL3 where guest CPL0 is emulated (paravirtual KVM), else CPL0 */
    DUNE_MODE_CPL0,     /* original Dune model: the app runs at guest ring 0 */
    DUNE_MODE_CPL3,     /* the app runs at guest ring 3; a tiny CPL0 gate does privileged work */
};

struct dune_options {
    enum dune_mode mode; /* DUNE_MODE_AUTO unless set; the DUNE_MODE environment
                            variable (auto|cpl0|cpl3) overrides AUTO only.
                            Refused with -ENOTSUP: CPL3 on hardware
                            virtualization (SYSCALL enters CPL0 there), and
                            DUNE_MODE=cpl0 where CPL0 is emulated (kvm_pvm:
                            no glibc); CPL0 set here is honoured there, for
                            code that makes raw syscalls only. */
    unsigned flags;      /* reserved, must be 0 */
};

/* Open /dev/kvm and create the VM.  Idempotent.  dune_enter() calls it. */
DUNE_API int dune_init(void);

/* Move the calling thread into the guest.  opts may be NULL.  Returns 0 in
 * the guest, or -errno (the thread keeps running natively; dune_status()
 * says why).  -EALREADY if this thread is already inside. */
DUNE_API int dune_enter(const struct dune_options *opts);

/* Return the calling thread to native execution at the same point and
 * release its vCPU.  -ENOTCONN if the thread is not inside Dune.  When no
 * thread is left inside (the last one leaves or exits), the VM is released
 * with all its descriptors and memory; the next dune_enter() builds a new
 * one. */
DUNE_API int dune_leave(void);

/* Which VM: 0 before the first, a new number for each VM created.  Guest
 * PTE bits and the KVM dirty log belong to one VM and do not carry over to
 * the next, nor do they see writes made while there was none. */
DUNE_API unsigned long dune_vm_generation(void);

/* What a child created by fork()/vfork() inside Dune does: stay inside
 * (default: it gets a VM of its own) or continue natively.  The DUNE_FORK
 * environment variable (dune|native) sets the default. */
enum dune_fork_policy { DUNE_FORK_STAY = 0, DUNE_FORK_NATIVE };
DUNE_API void dune_set_fork_policy(enum dune_fork_policy p);

/* 1 if the calling thread runs inside Dune, else 0. */
DUNE_API int dune_active(void);

struct dune_status {
    int active;              /* calling thread is inside the guest */
    enum dune_mode mode;     /* CPL0 or CPL3 when active */
    int error;               /* last failure of init/enter (negative errno) or 0 */
    char reason[160];        /* human-readable reason for `error` */
    unsigned memslots;       /* KVM memory slots in use */
    unsigned long syscalls;  /* system calls forwarded to the host */
    unsigned long exits;     /* VM exits of any kind */
    unsigned long faults;    /* guest exceptions handled */
    unsigned long shootdowns; /* TLB shootdowns that reached other vCPUs */
    unsigned vcpus;          /* vCPUs created (threads inside reuse them) */
    unsigned max_vcpus;      /* KVM's limit: a thread beyond it gets EAGAIN */
    unsigned long wp_faults; /* write-protect faults resolved in the guest, no exit */
    unsigned long wp_exits;  /* ... resolved on the host, after an exit */
};
DUNE_API int dune_status(struct dune_status *st);
DUNE_API const char *dune_mode_name(enum dune_mode m);

/* Say one line (no trailing newline needed) where Dune's own messages go:
 * stderr of the process the user started (children stay quiet), or the
 * file named by DUNE_LOG from any process. */
DUNE_API void dune_message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- privileged features for Dune-aware code (callable inside Dune) ---- */

/* The page: the unit of the guest page tables, of the dirty bitmaps below
 * and of the host's base pages (4 KiB on x86-64).  The core takes it from
 * its architecture (dune/arch.h) and checks that the two agree. */
#define DUNE_PAGE_SHIFT 12
#define DUNE_PAGE_SIZE (1UL << DUNE_PAGE_SHIFT)

/* Page-table entry bits (x86-64 format). */
#define DUNE_PTE_P   0x001ULL
#define DUNE_PTE_W   0x002ULL
#define DUNE_PTE_U   0x004ULL
#define DUNE_PTE_A   0x020ULL
#define DUNE_PTE_D   0x040ULL
#define DUNE_PTE_NX  (1ULL << 63)
/* Software bit (ignored by the CPU): W is withheld by the write-protect
 * tracker (dune_wp_read_protect); a write fault on such a page restores W
 * and is resolved in the guest, invisible to the program.  Any rewrite of
 * the entry by the mirror drops it. */
#define DUNE_PTE_WP  (1ULL << 9)
/* Software bit: the entry lost W (the program's mprotect, say) since the
 * write-protect tracker last read it, so the page may have been written;
 * kept across rewrites, as D is. */
#define DUNE_PTE_WRITTEN (1ULL << 10)
#define DUNE_PTE_ADDR 0x000ffffffffff000ULL /* the frame: a guest-physical address */

/* Width of the guest-physical addresses in use (0 outside a VM), and the
 * host (== guest-virtual) address a guest-physical address is mapped from,
 * or 0 if none. */
DUNE_API unsigned dune_gpa_bits(void);
DUNE_API uintptr_t dune_gpa_to_va(uint64_t gpa);

/* Pointer to the last-level guest PTE that maps va, or NULL if no page
 * table covers it (the entry itself may be non-present). */
DUNE_API uint64_t *dune_pte_lookup(const void *va);

/* Call fn for every present leaf PTE in [start, start+len); stop early if
 * fn returns non-zero (and return that value). */
typedef int (*dune_pte_fn)(uintptr_t va, uint64_t *pte, void *arg);
DUNE_API int dune_pte_walk(void *start, size_t len, dune_pte_fn fn, void *arg);

/* Read and clear the dirty (and accessed) bits of [start, start+len): bit i
 * of bitmap is set if page i had D set.  Flushes the TLB for the cleared
 * pages, on every vCPU (dune_tlb_shootdown).  Returns the number of dirty
 * pages or -errno; if only the shootdown failed, the bitmap is still the
 * answer but other vCPUs may write through stale entries unseen. */
DUNE_API long dune_dirty_read_clear(void *start, size_t len, uint64_t *bitmap);
/* Same, but the pages set in keep (same layout as bitmap) are only read:
 * a kept page that was dirty is reported and stays dirty (no fault on its
 * next write, and reported again by the next read). */
DUNE_API long dune_dirty_read_clear_except(void *start, size_t len, uint64_t *bitmap,
                                          const uint64_t *keep);
/* Same for the accessed bits. */
DUNE_API long dune_accessed_read_clear(void *start, size_t len, uint64_t *bitmap);
/* The write barrier of guest page protection ("Dune TLB" in the Dune
 * paper): bit i of bitmap is set if page i of [start, start+len) is
 * writable (written since this call protected it, or made writable by a
 * new mapping), and every such page but those set in keep (may be NULL)
 * loses W again, marked DUNE_PTE_WP, with the TLB flushed as for
 * dune_dirty_read_clear.  The next write to a marked page faults; the
 * guest's own #PF handler (CPL0 mode) or the host (CPL3 mode, after an
 * exit) gives W back and the write proceeds.  Returns the number of
 * writable pages or -errno. */
DUNE_API long dune_wp_read_protect(void *start, size_t len, uint64_t *bitmap,
                                   const uint64_t *keep);

/* Batch the shootdowns of the read-and-clears above: between begin and
 * end, the calling thread's calls flush only its own vCPU, and end then
 * shoots down the others once (if a bit was cleared).  Until end returns
 * 0, the other vCPUs may still write through an entry with D cached,
 * unseen: use a batch only while no other thread writes (a collector with
 * the world stopped).  begin: 0, -ENOTCONN outside Dune, -EBUSY if a batch
 * is open (calls then join it: its owner's end must succeed, or every page
 * cleared in it must be treated as written).  end: 0, -EINVAL without a
 * batch, or the failed shootdown's -errno (treat the pages as written).
 * Leaving Dune closes the batch. */
DUNE_API int dune_tlb_batch_begin(void);
DUNE_API int dune_tlb_batch_end(void);

/* Invalidate the guest TLB entry for one page / the whole guest TLB, on
 * the calling vCPU only. */
DUNE_API int dune_flush_tlb_page(const void *va);
DUNE_API int dune_flush_tlb(void);
/* Flush the TLBs of all other vCPUs of the VM (KVM does it: see priv.c).
 * 0 at once with no other vCPU inside; -EIO if it could not be confirmed.
 * After a failure, the next read-and-clear shoots down again even if it
 * clears nothing; until one succeeds, writes by other vCPUs to pages
 * cleared before may set no D bit, so treat those pages as written. */
DUNE_API int dune_tlb_shootdown(void);

/* Change the guest protection of [start, start+len) (PROT_* bits) without
 * touching the host mapping.  Accesses the guest forbids fault as they
 * would natively (or reach the handler below). */
DUNE_API int dune_protect(void *start, size_t len, int prot);

/* Dune-aware page-fault handler: called in the guest for a #PF that the
 * host mapping does not explain, instead of raising SIGSEGV.  Return 0 to
 * retry the access (after fixing the mapping), non-zero to raise SIGSEGV as
 * natively. */
typedef int (*dune_pgflt_fn)(uintptr_t addr, uint64_t error_code, void *ucontext);
DUNE_API dune_pgflt_fn dune_set_pgflt_handler(dune_pgflt_fn fn);

/* Called on the host side after a forwarded system call wrote into the
 * guest's memory ([addr, addr+len): read(), recvmsg(), stat(), ...): such
 * writes are made by the host kernel, so neither guest PTE dirty bits nor
 * the KVM dirty log see them.  The hook must not allocate or lock. */
typedef void (*dune_write_fn)(const void *addr, size_t len);
DUNE_API void dune_set_host_write_hook(dune_write_fn fn);

/* Children sharing the memory (CLONE_VM without CLONE_VFORK) that were
 * created inside Dune without a vCPU and so run natively: a clone without
 * CLONE_THREAD/CLONE_SETTLS or without a stack of its own (pthread_create
 * threads get a vCPU each).  Writes by such threads are invisible to guest
 * dirty bits and the dirty log. */
DUNE_API unsigned long dune_native_threads(void);

/* Threads currently running inside Dune (each on its own vCPU). */
DUNE_API unsigned dune_active_vcpus(void);

/* ---- KVM dirty log (used by the dirty-tracking backends) ---- */

/* Enable or disable the hypervisor's dirty log over the memslots covering
 * [start, start+len).  Returns 0 or -errno. */
DUNE_API int dune_dirty_log_enable(void *start, size_t len, int on);
/* Read and clear the dirty log for [start, start+len) into bitmap (1 bit
 * per page, LSB first).  Returns the number of dirty pages or -errno. */
DUNE_API long dune_dirty_log_read_clear(void *start, size_t len, uint64_t *bitmap);
/* Same, except for the pages set in keep (may be NULL): reported, but left
 * dirty in the log and writable, as dune_dirty_read_clear_except does. */
DUNE_API long dune_dirty_log_read_clear_except(void *start, size_t len, uint64_t *bitmap,
                                              const uint64_t *keep);

#ifdef __cplusplus
}
#endif
#endif
