/*
 * arch_defs.h - the x86-64 types and constants behind dune/arch.h (not
 * installed; included only by it).
 */
#ifndef DUNE_ARCH_X86_64_DEFS_H
#define DUNE_ARCH_X86_64_DEFS_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>

#define ARCH_PAGE_SHIFT 12
#define ARCH_USER_VA_END 0x800000000000UL /* 47-bit user space */
#define ARCH_PC_NAME "rip"
#define ARCH_SP_NAME "rsp"
#define ARCH_CLONE_TLS_ARG 4 /* clone(flags, stack, parent_tid, child_tid, tls) */
#define ARCH_TRAPNO_PRIV 13  /* a privileged instruction in user mode: #GP */

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

/* The guest's general registers: KVM's, as they sit in the sync-regs
 * area (a struct arch_regs * may point there). */
struct arch_regs {
    struct kvm_regs k;
};

/* FPU/SSE/AVX state in the standard xsave format. */
struct arch_fpu {
    struct kvm_xsave x;
};

struct arch_vcpu {
    struct arch_regs regs_tmp;   /* registers fetched without sync regs */
    uint64_t *frame;             /* trap frame of the current exit, or NULL */
    uintptr_t enter_sp;          /* guest stack pointer at dune_enter */
    void *cpu_page;              /* GDT + TSS (one page) */
    void *ist_stack;             /* exception stack (IST1) */
    uintptr_t ist_top;
    bool cpuid_set;
};

struct arch_vm {
    bool sync_regs;              /* KVM_CAP_SYNC_REGS usable */
    bool syscall_to_cpl0;        /* SYSCALL at CPL3 lands at CPL0 (hardware) */
    bool syscall_probed;         /* syscall_to_cpl0 is known */
    uintptr_t syscall_stub;      /* generated LSTAR code */
    void *idt;
    uint64_t xcr0;
    unsigned xsave_size;
    struct kvm_cpuid2 *cpuid;
};

/* The kernel's struct sigaction (glibc's is longer). */
struct k_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

/* A raw host system call that leaves errno alone. */
static inline long dune_sys6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

#endif
