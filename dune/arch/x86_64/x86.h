/*
 * x86.h - what the x86-64 files of the Dune core share among themselves
 * (not installed; generic code sees only dune/arch.h).
 */
#ifndef DUNE_ARCH_X86_64_X86_H
#define DUNE_ARCH_X86_64_X86_H

#include <stdint.h>

#include "dune_internal.h"

/* Selectors as native Linux uses them, so a ucontext shows the same cs/ss. */
#define SEL_KCODE 0x10
#define SEL_KDATA 0x18
#define SEL_UCODE32 0x23
#define SEL_UDATA 0x2b
#define SEL_UCODE 0x33
#define SEL_TSS 0x40

/* The exception stubs (entry.S) exit to the host with an `out` to this
 * port, leaving [vector, error, rip, cs, rflags, rsp, ss] at the
 * exception stack pointer: the trap frame, indexed by F_*. */
#define DUNE_PORT_EXC 0xE0
enum { F_VEC, F_ERR, F_RIP, F_CS, F_RFLAGS, F_RSP, F_SS, F_WORDS };

/* RFLAGS */
#define X86_RFLAGS_FIXED 0x2UL     /* bit 1 always reads 1 */
#define X86_RFLAGS_IF 0x200UL
#define X86_TF 0x100UL
#define X86_DF 0x400UL
#define X86_RF 0x10000UL
#define X86_AC 0x40000UL
/* A thread that starts: interrupts on, nothing else. */
#define X86_RFLAGS_START (X86_RFLAGS_IF | X86_RFLAGS_FIXED)
/* Bits that survive a return from a system call (what sysret keeps of
 * r11, the caller's rflags). */
#define X86_RFLAGS_SYSRET_KEEP 0x3c7fd7UL
/* Bits a signal handler may change through its ucontext. */
#define X86_RFLAGS_SIGRETURN_FIX 0x50dd5UL

/* rflags of a caller after its syscall returns, from the r11 SYSCALL saved. */
static inline uint64_t x86_rflags_after_syscall(uint64_t r11)
{
    return (r11 & X86_RFLAGS_SYSRET_KEEP) | X86_RFLAGS_FIXED;
}

/* The length of the `syscall` instruction: where a call is made again. */
#define X86_SYSCALL_LEN 2

/* entry.S */
extern char dune_exc_vectors[], dune_exc_vectors_end[];
extern char dune_enter_trampoline_start[];
extern char dune_enter_resume[];
extern char dune_fwd_check[], dune_fwd_done[], dune_fwd_intr[];
int dune_enter_trampoline(uintptr_t *save_sp, uintptr_t host_stack_top, struct dune_vcpu *v);

#endif
