/*
 * arch.h - what the generic Dune core needs from an architecture (not
 * installed).  The one header through which vm.c, vcpu.c, syscall.c,
 * signal.c and the rest reach CPU-specific code; they include it through
 * dune_internal.h and never look inside the types it names.
 *
 * The generic core speaks in these terms only:
 *  - a system call is a struct dune_syscall {nr, args[6], ret}, in the
 *    host's own numbering (the guest runs the host's ABI), named with
 *    <sys/syscall.h>'s SYS_* (calls that only older ABIs have, such as
 *    SYS_poll or SYS_fork, under #ifdef);
 *  - a VM exit is a struct dune_exit {kind, gpa, ...};
 *  - the guest's registers are a struct arch_regs, its FPU/vector state a
 *    struct arch_fpu, per-vCPU and per-VM CPU state struct arch_vcpu and
 *    struct arch_vm: complete types (generic code embeds and copies them)
 *    whose fields only the architecture reads;
 *  - pages are ARCH_PAGE_SIZE bytes.
 *
 * An architecture provides, in dune/arch/<arch>/:
 *  - arch_defs.h, included below, which defines
 *      ARCH_PAGE_SHIFT      the guest's (and host's) base page size;
 *      ARCH_USER_VA_END     the end of user space;
 *      ARCH_CLONE_TLS_ARG   which clone() argument is the TLS pointer;
 *      ARCH_TRAPNO_PRIV     the trap number a privileged instruction
 *                           raises in user mode (for the ucontext);
 *      ARCH_PC_NAME, ARCH_SP_NAME  register names used in messages;
 *      SA_RESTORER          if libc does not;
 *      struct arch_regs, arch_fpu, arch_vcpu, arch_vm;
 *      struct k_sigaction   the kernel's sigaction layout (with a
 *                           `restorer` field even where the ABI has none:
 *                           the frame code then ignores it);
 *      dune_sys6()          a raw host system call that leaves errno alone;
 *  - every function declared below;
 *  - the guest page tables: the pt_* functions of dune_internal.h
 *    (pgtable.c), with the DUNE_PTE_* bits of dune.h.
 * Assembly entry points (entering the guest, leaving it, resuming
 * natively, cloning, forwarding a call) must not touch errno, nor the
 * stack where they say so.
 *
 * The x86-64 implementation is dune/arch/x86_64: cpu.c (the mode, CPU
 * state, per-VM structures), exits.c (registers, exit decoding, the
 * syscall convention), traps.c (exceptions), signal_frame.c (the kernel's
 * signal frame), pgtable.c and entry.S; x86.h is shared among them only.
 * The LoongArch64 tree (dune/arch/loongarch64) is still a separate stack;
 * to join it would implement this interface, with its hypercall exit as
 * DUNE_EXIT_SYSCALL and its TLB refill handled inside arch_trap_handle().
 */
#ifndef DUNE_ARCH_H
#define DUNE_ARCH_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dune.h"

#if defined(__x86_64__)
#include "arch/x86_64/arch_defs.h"
#else
#error "the Dune core has no implementation of dune/arch.h for this architecture"
#endif

#define ARCH_PAGE_SIZE (1UL << ARCH_PAGE_SHIFT)

struct dune_vcpu;

/* A guest system call: number and arguments as the guest passed them,
 * and the result it gets back (-errno on failure).  Layout known to the
 * assembly of arch_forward_syscall() and arch_host_clone(). */
struct dune_syscall {
    long nr;
    uint64_t args[6];
    long ret;
};

/* Why KVM_RUN returned, decoded by arch_exit_decode(). */
enum dune_exit_kind {
    DUNE_EXIT_SYSCALL,  /* the guest's syscall entry exited: syscall_handle() */
    DUNE_EXIT_MMIO,     /* another guest access to gpa with no memslot behind it */
    DUNE_EXIT_TRAP,     /* an exception stub exited: arch_trap_handle() */
    DUNE_EXIT_INTR,     /* a host signal interrupted the guest */
    DUNE_EXIT_HALT,     /* the guest halted; pc is insn_len past the instruction */
    DUNE_EXIT_FATAL,    /* cannot continue: `what` says why */
};

struct dune_exit {
    enum dune_exit_kind kind;
    uint64_t gpa;       /* MMIO: the guest-physical address */
    bool write;         /* MMIO: a store */
    unsigned insn_len;  /* HALT: length of the halting instruction */
    const char *what;   /* FATAL: a message */
};

/* ---- the mode (cpu.c) ---- */
enum dune_mode arch_mode_auto(void);       /* what DUNE_MODE_AUTO means here */
/* Can mode m run here (from_env: asked by DUNE_MODE rather than the API)?
 * Otherwise dune_set_error() says why. */
int arch_mode_check(enum dune_mode m, bool from_env);

/* ---- the VM (cpu.c) ---- */
int arch_vm_setup(void);        /* after KVM_CREATE_VM: CPU model, stubs, page tables */
void arch_vm_tune(void);        /* per-VM capabilities (also for the VM of a forked child) */
void arch_vm_teardown(void);    /* undo arch_vm_setup() */

/* ---- a vCPU ---- */
int arch_vcpu_init(struct dune_vcpu *v);   /* allocate and mirror its CPU structures, v->fpu */
void arch_vcpu_free(struct dune_vcpu *v);  /* unmap them */
void arch_vcpu_attach(struct dune_vcpu *v);/* a thread takes v: per-run setup (sync regs) */
int arch_vcpu_setup(struct dune_vcpu *v);  /* system state to continue this thread; not the registers */
int arch_vcpu_get_regs(struct dune_vcpu *v, struct arch_regs *r);
int arch_vcpu_set_regs(struct dune_vcpu *v, const struct arch_regs *r);
void arch_vcpu_entry_regs(struct dune_vcpu *v, struct arch_regs *r); /* resume inside arch_enter() */
int arch_set_tls(struct dune_vcpu *v, uint64_t tls);
int arch_flush_tlb(uintptr_t va);          /* from guest code: one page, or all (va 0) */

/* The registers of the current exit (a shared area or a fetched copy,
 * NULL if they cannot be read), and putting them back before KVM_RUN.
 * Loading also forgets any trap frame of an earlier exit. */
struct arch_regs *arch_regs_load(struct dune_vcpu *v);
int arch_regs_store(struct dune_vcpu *v, struct arch_regs *r);
uint64_t arch_regs_pc(const struct arch_regs *r);
void arch_regs_set_pc(struct arch_regs *r, uint64_t pc);
uint64_t arch_regs_sp(const struct arch_regs *r);
void arch_regs_set_sp(struct arch_regs *r, uint64_t sp);

/* ---- FPU and vector state ---- */
int arch_fpu_save(struct dune_vcpu *v);                 /* the vCPU's into v->fpu */
int arch_vcpu_set_fpu(struct dune_vcpu *v, const struct arch_fpu *f);
void arch_fpu_restore_host(const struct arch_fpu *f);   /* onto this host thread */

/* ---- exits (exits.c) ---- */
void arch_exit_decode(struct dune_vcpu *v, struct dune_exit *e);

/* ---- the guest's system calls (exits.c) ---- */
void arch_syscall_args(const struct arch_regs *r, struct dune_syscall *sc);
/* First system call of a VM: learn how calls return (sets what
 * arch_syscall_returns_itself() answers). */
void arch_syscall_probe(struct dune_vcpu *v);
/* True where the guest's syscall entry returns to its caller by itself
 * (x86: SYSCALL from CPL3 lands at CPL0 and the stub's sysretq returns):
 * the host cannot then redirect the return to a signal handler. */
bool arch_syscall_returns_itself(void);
void arch_syscall_return(struct arch_regs *r, long ret);   /* resume after the call with ret */
void arch_syscall_again(struct arch_regs *r, long nr);     /* resume at the call, not made */
void arch_syscall_rewind(struct arch_regs *r, long nr);    /* after return: back to the call */
long arch_syscall_retval(const struct arch_regs *r);       /* after return: its result */
/* r, at a syscall exit, becomes the state in which the caller goes on
 * natively after the call returned ret. */
void arch_syscall_native_return(struct arch_regs *r, long ret);
/* Calls only this architecture has (x86: arch_prctl): true if handled. */
bool arch_syscall_hook(struct dune_vcpu *v, const struct dune_syscall *sc, long *ret);

/* ---- traps and signals (traps.c, signal_frame.c) ---- */
struct sig_event;
/* A DUNE_EXIT_TRAP: turn the exception into a page fault for the mirror
 * or a signal (signal_fault, signal_page_fault); <0: not an exception
 * Linux would turn into a signal.  Until the next arch_regs_load() the
 * guest's pc/sp are those of the trap frame. */
int arch_trap_handle(struct dune_vcpu *v, struct arch_regs *r);
uint64_t arch_guest_pc(struct dune_vcpu *v, const struct arch_regs *r);
uint64_t arch_guest_sp(struct dune_vcpu *v, const struct arch_regs *r);
/* The guest stands in its own code (not in a stub): a handler may start. */
bool arch_guest_interruptible(struct dune_vcpu *v, const struct arch_regs *r);
/* Build the kernel's signal frame for e on the guest stack (or the
 * alternate stack) and point the guest at ka's handler; <0: the frame
 * cannot be written (the kernel would kill with SIGSEGV). */
int arch_signal_frame_push(struct dune_vcpu *v, struct arch_regs *r, const struct sig_event *e,
                           const struct k_sigaction *ka, uint64_t oldmask, const siginfo_t *si);
/* rt_sigreturn: registers and FPU state from the frame; *mask: the mask
 * to restore.  <0: no readable frame. */
int arch_signal_frame_pop(struct dune_vcpu *v, struct arch_regs *r, uint64_t *mask);
uint64_t arch_uc_fault_err(const void *uc);   /* a host ucontext's fault error word */
uint64_t arch_uc_pc(const void *uc);          /* a host ucontext's pc */
/* Host signal handler: if the interrupted host thread was about to make a
 * forwarded call (arch_forward_syscall), make it return DUNE_NOT_RUN. */
void arch_uc_cancel_forward(void *uc);
extern char arch_sigreturn_restorer[];        /* calls rt_sigreturn */

/* ---- crossings (entry.S, exits.c) ---- */
int arch_enter(struct dune_vcpu *v);          /* returns 0 inside the guest */
int arch_leave(void);                         /* the guest half of dune_leave() */
void arch_native_resume(const struct arch_regs *r) __attribute__((noreturn));
#define DUNE_NOT_RUN (-512L) /* forwarding skipped: a signal comes first */
long arch_forward_syscall(const struct dune_syscall *sc, const volatile int *deliverable);
long arch_host_clone(const struct dune_syscall *sc, void *ctx); /* child: dune_clone_child(ctx, sp) */
void arch_run_on_stack(void *arg, uintptr_t stack_top, void (*fn)(void *)) __attribute__((noreturn));
/* End the host thread: store 0 to *busy, then exit(code), touching no stack. */
void arch_thread_exit_release(atomic_int *busy, long code) __attribute__((noreturn));
/* End the host thread: munmap(stack, len), then exit(code), touching no stack. */
void arch_thread_exit_unmap(void *stack, size_t len, long code) __attribute__((noreturn));

#endif
