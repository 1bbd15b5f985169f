/*
 * dune_internal.h - shared state of the Dune core (not installed).
 *
 * One VM per process (struct dune_vm, global), one vCPU per thread that is
 * inside (struct dune_vcpu, reached through a thread-local pointer).  The host
 * side of a thread runs on its own small stack while the guest side uses the
 * thread's original stack: both share the same TLS, so host code must not
 * touch errno (it uses dune_sys(), never libc wrappers, on hot paths).
 */
#ifndef DUNE_INTERNAL_H
#define DUNE_INTERNAL_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "arch.h"
#include "dune.h"
#include "log.h"

#define PAGE_SIZE ARCH_PAGE_SIZE
_Static_assert(ARCH_PAGE_SIZE == DUNE_PAGE_SIZE, "dune.h's page is the architecture's");
#define PAGE_MASK (~(PAGE_SIZE - 1))
#define SLOT_ALIGN (2UL << 20)          /* memslots are created in 2 MiB units */
#define USER_VA_END ARCH_USER_VA_END    /* end of user space */

#define page_down(x) ((uintptr_t)(x) & PAGE_MASK)
#define page_up(x) (((uintptr_t)(x) + PAGE_SIZE - 1) & PAGE_MASK)

/* Guest-private "hypercall" syscall numbers: far above any real syscall, so
 * natively they fail with ENOSYS. */
#define DUNE_HC_BASE 0x44550000L
#define DUNE_HC_LEAVE (DUNE_HC_BASE + 1)
#define DUNE_HC_PROBE (DUNE_HC_BASE + 2)
#define DUNE_HC_DIRTY_LOG_ENABLE (DUNE_HC_BASE + 3)
#define DUNE_HC_DIRTY_LOG_READ (DUNE_HC_BASE + 4)

/* ---- raw system calls that leave errno alone (dune_sys6: arch.h) ---- */
#define dune_sys3(nr, a, b, c) dune_sys6((nr), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define dune_ioctl(fd, req, arg) dune_sys3(SYS_ioctl, (fd), (req), (arg))
#define dune_failed(ret) ((ret) < 0 && (ret) > -4096L) /* a raw call's -errno */

/* Zeroed memory for a large table, outside our data (table.c); NULL if
 * the mapping fails. */
void *dune_table_alloc(size_t bytes);

/* ---- guest-physical layout (gpa.c): the only place that knows it ---- */
#define GPA_NONE (~(uint64_t)0)
#define GPA_POOL_CHUNKS 128             /* page-table pool: up to 256 MiB */
#define DUNE_MAX_SLOTS 32768            /* KVM_CAP_NR_MEMSLOTS may allow fewer */
int gpa_init(unsigned cpu_bits);
void gpa_reset(void);
unsigned gpa_bits(void);
uint64_t gpa_mmio(void);
uint64_t gpa_ram_alloc(size_t len);
void gpa_ram_free(uint64_t gpa, size_t len);
uint64_t gpa_ram_free_bytes(void);
/* priv.c: a write fault at addr on a page the write-protect tracker
 * marked: give W back (counted) and return true; false if not ours. */
bool wp_fault_fix(uintptr_t addr);
uint64_t gpa_pool_set(uintptr_t base);
uint64_t gpa_of_hva(uintptr_t hva);
uint64_t gpa_of_hva_run(uintptr_t hva, uintptr_t *run_end);
uintptr_t hva_of_gpa(uint64_t gpa);

/* ---- memslots (memslot.c) ---- */
int slots_cover(uintptr_t start, uintptr_t end);
int slots_add_pinned(uintptr_t start, uintptr_t end, uint64_t gpa);
void slots_release_unused(uintptr_t start, uintptr_t end);
int slot_find_hva(uintptr_t hva, uintptr_t *start, uintptr_t *end, uint64_t *gpa);
int slot_find_gpa(uint64_t gpa, uintptr_t *start, uint64_t *sgpa);
unsigned long slots_replayed(void);
int slots_replay(void);
void slots_reset(void);
int vm_recreate_after_fork(void);
int slots_set_dirty_log(uintptr_t start, uintptr_t end, bool on);
long slots_dirty_read_clear(uintptr_t start, uintptr_t end, uint64_t *bitmap,
                            const uint64_t *keep);
unsigned slots_count(void);
int dirty_log_enable_host(uintptr_t start, size_t len, int on);
long dirty_log_read_host(uintptr_t start, size_t len, uint64_t *bitmap, const uint64_t *keep);
void tlb_batch_forget(void);

/* ---- guest page tables (arch/<arch>/pgtable.c) ---- */
int pt_init(void);
void pt_free(void);
int pt_map(uintptr_t start, uintptr_t end, int prot, bool user);
void pt_update_existing(uintptr_t start, uintptr_t end, int prot, bool user);
int pt_map_flags(uintptr_t start, uintptr_t end, int prot, bool user, uint64_t extra);
void pt_unmap(uintptr_t start, uintptr_t end);
uint64_t *pt_lookup(uintptr_t va, bool create);
/* The history a rewrite of leaf entry `old` must keep: its D bit, and for
 * the write-protect tracker (priv.c) whether the page was writable, so
 * possibly written, since the tracker last read it (DUNE_PTE_WRITTEN).
 * The tracker's mark (DUNE_PTE_WP) is not kept. */
static inline uint64_t pte_history(uint64_t old)
{
    uint64_t pw = DUNE_PTE_P | DUNE_PTE_W;
    return (old & (DUNE_PTE_D | DUNE_PTE_WRITTEN)) | ((old & pw) == pw ? DUNE_PTE_WRITTEN : 0);
}
uintptr_t pt_root(void);
void pt_wp_fast(bool on); /* the #PF fast path of the write-protect tracker */
unsigned long pt_wp_fast_faults(void);
bool pt_is_table_page(uintptr_t va);
bool pt_range_mapped(uintptr_t start, uintptr_t end);
uint64_t pt_prot_bits(int prot, bool user);

/* ---- address-space mirror (mirror.c) ---- */
int mirror_all(void);
int mirror_range(uintptr_t start, uintptr_t end, int prot);
int mirror_resync(uintptr_t start, uintptr_t end);
int mirror_vma_extent(uintptr_t addr, uintptr_t *start, uintptr_t *end);
void mirror_unmap(uintptr_t start, uintptr_t end);
int mirror_fault(uintptr_t addr, bool write, bool exec, int *si_code);

/* ---- per-thread vCPU ---- */

struct dune_vcpu {
    int fd;
    int id;
    struct kvm_run *run;
    void *host_stack;         /* mapping that holds the host-side stack */
    uintptr_t host_stack_top;
    atomic_int busy;          /* owned by a thread (pool bookkeeping) */
    /* At most one signal is taken from the kernel at a time (signal.c):
     * while npending is 1 the host thread blocks every signal and the
     * guest's own mask is held_mask; the rest stay queued in the kernel. */
    volatile unsigned npending; /* 0 or 1: a signal held for the guest */
    volatile int deliverable; /* the held signal is not blocked */
    siginfo_t pending;
    volatile uint64_t held_mask;
    bool mask_override;       /* deliver under base_mask (rt_sigsuspend, ppoll...) */
    uint64_t base_mask;
    struct arch_fpu *fpu;     /* scratch for FPU state transfers (arch_vcpu_init) */
    struct arch_vcpu arch;    /* CPU state only the architecture reads */
    unsigned long syscalls, exits, faults;
};

extern __thread struct dune_vcpu *dune_self;

/* ---- the VM (vm.c) ---- */
struct dune_vm {
    int kvm_fd;
    int vm_fd;
    int run_size;
    int max_vcpus;
    bool manual_protect;      /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled */
    bool initialized;
    unsigned long generation; /* VMs created so far (dune_vm_generation) */
    bool mirrored;            /* the address space was mirrored into this VM */
    enum dune_mode mode;      /* chosen at the first dune_enter */
    uintptr_t cur_brk;        /* program break as last mirrored, 0: unknown */
    uintptr_t mmio_base;      /* reserved VA range mapped to the MMIO GPA */
    unsigned max_slots;       /* memslots KVM allows (KVM_CAP_NR_MEMSLOTS) */
    int maps_fd;              /* /proc/self/maps, opened once */
    pthread_mutex_t lock;     /* guards memslots, page tables, mirror */
    int error;
    char reason[160];
    atomic_ulong syscalls, exits, faults;
    atomic_ulong wp_exits;    /* write-protect faults resolved on the host */
    atomic_ulong shootdowns;  /* dune_tlb_shootdown round trips to KVM */
    int nvcpus;
    unsigned active_vcpus;    /* threads currently inside */
    bool fork_native;         /* forked children leave Dune */
    struct arch_vm arch;      /* CPU state only the architecture reads */
};
extern struct dune_vm dune_vm;
int vm_init_locked(void);
void vm_teardown_locked(void);

/* ---- Dune's own descriptors (fds.c) ---- */
void dune_fd_own(int fd);
void dune_fd_forget(int fd);
bool dune_fd_is_ours(int fd);
void dune_fd_renumber(int oldfd, int newfd);
int dune_fd_syscall(const struct dune_syscall *sc, long *ret);
struct rlimit;
int dune_fd_room(unsigned more);
int dune_fd_begin(struct rlimit *saved, bool wait);
int dune_fd_end(const struct rlimit *saved, long fd);
void dune_fd_after_fork(void);

void dune_set_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- run loop, syscalls, signals ---- */
void vcpu_run_loop(struct dune_vcpu *v) __attribute__((noreturn));
int vcpu_get_locked(struct dune_vcpu **out);
int vcpu_get(struct dune_vcpu **out);
void vcpu_release(struct dune_vcpu *v);
void vcpus_free_all(void);
int vcpu_fork_reset(struct dune_vcpu **out);
void vcpu_renumber_fd(int oldfd, int newfd);
void vcpu_release_and_exit(struct dune_vcpu *v, long code) __attribute__((noreturn));
void vcpu_thread_start(void *arg) __attribute__((noreturn));
void dune_host_start(struct dune_vcpu *v) __attribute__((noreturn));
void dune_clone_child(void *ctx, uintptr_t child_sp) __attribute__((noreturn));
void syscall_handle(struct dune_vcpu *v, struct arch_regs *r);
void syscall_report_outputs(const struct dune_syscall *sc);
void syscall_count_native_thread(void);

/* A signal the guest gets for an exception or a fault: what goes into
 * its siginfo, and the arch-specific words of its ucontext. */
struct sig_event {
    int sig, code;
    uintptr_t addr;           /* si_addr */
    uint64_t trapno, err;     /* the trap number and error code */
    uint64_t fault_addr;      /* the faulting address the hardware reported */
};
void signal_fault(struct dune_vcpu *v, struct arch_regs *r, const struct sig_event *e);
void signal_page_fault(struct dune_vcpu *v, struct arch_regs *r, struct sig_event *e,
                       bool present, bool write, bool exec);
bool signal_guest_writable(uintptr_t lo, uintptr_t hi);
void signal_die(int sig, const char *why) __attribute__((noreturn));
int signal_sigreturn(struct dune_vcpu *v, struct arch_regs *r);
long signal_rt_sigaction(const struct dune_syscall *sc);
long signal_sigaltstack(const struct dune_syscall *sc, uint64_t sp);
void signal_host_fault(struct dune_vcpu *v, struct arch_regs *r);
void signal_priv_fault(struct dune_vcpu *v, struct arch_regs *r);
void signal_deliver_pending(struct dune_vcpu *v, struct arch_regs *r, long syscall_nr);
uint64_t signal_block_all(void);
void signal_set_host_mask(uint64_t m);
uint64_t signal_guest_mask(struct dune_vcpu *v);
bool signal_temp_mask(const struct dune_syscall *sc, uint64_t *m);
uint64_t signal_leave(struct dune_vcpu *v);

/* ---- debuggers (trace.c) ---- */
bool trace_attached(void);
void trace_step_aside(struct dune_vcpu *v, const struct arch_regs *n) __attribute__((noreturn));
void dune_print_summary(void);

#endif
