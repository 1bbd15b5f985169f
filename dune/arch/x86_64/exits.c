/*
 * exits.c - x86-64 VM exits, registers and the system-call convention.
 *
 * The SYSCALL target (cpu.c) stores to the MMIO window, which has no
 * memslot: KVM_RUN returns with an MMIO exit at gpa_mmio().  The exception
 * stubs exit with an `out` to DUNE_PORT_EXC.  Registers travel through
 * KVM_CAP_SYNC_REGS where KVM has it, so a forwarded syscall costs one
 * KVM_RUN and no register ioctls.
 *
 * A call's number is in rax, its arguments in rdi, rsi, rdx, r10, r8, r9;
 * SYSCALL keeps the return address in rcx and rflags in r11.  Where
 * SYSCALL kept the caller's privilege level (this paravirtual KVM at CPL3,
 * or CPL0 mode anywhere) we return by setting rip ourselves; where it
 * switched to CPL0 (hardware, CPL3 mode) the stub's sysretq does it.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "x86.h"

_Static_assert(offsetof(struct dune_syscall, nr) == 0 &&
               offsetof(struct dune_syscall, args) == 8 &&
               sizeof(((struct dune_syscall *)0)->args[0]) == 8,
               "entry.S reads struct dune_syscall at these offsets");
_Static_assert(offsetof(struct arch_regs, k) == 0, "arch_regs may point at KVM's sync area");

/* ---- registers ---- */

struct arch_regs *arch_regs_load(struct dune_vcpu *v)
{
    v->arch.frame = NULL;
    if (dune_vm.arch.sync_regs)
        return (struct arch_regs *)&v->run->s.regs.regs;
    if (dune_ioctl(v->fd, KVM_GET_REGS, &v->arch.regs_tmp.k) < 0)
        return NULL;
    return &v->arch.regs_tmp;
}

int arch_regs_store(struct dune_vcpu *v, struct arch_regs *r)
{
    if (dune_vm.arch.sync_regs) {
        v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
        return 0;
    }
    return dune_ioctl(v->fd, KVM_SET_REGS, &r->k) < 0 ? -EIO : 0;
}

int arch_vcpu_get_regs(struct dune_vcpu *v, struct arch_regs *r)
{
    return dune_ioctl(v->fd, KVM_GET_REGS, &r->k) < 0 ? -EIO : 0;
}

int arch_vcpu_set_regs(struct dune_vcpu *v, const struct arch_regs *r)
{
    return dune_ioctl(v->fd, KVM_SET_REGS, &r->k) < 0 ? -EIO : 0;
}

/* A thread takes v: KVM fills the sync area on every exit. */
void arch_vcpu_attach(struct dune_vcpu *v)
{
    if (dune_vm.arch.sync_regs)
        v->run->kvm_valid_regs = KVM_SYNC_X86_REGS;
}

uint64_t arch_regs_pc(const struct arch_regs *r)
{
    return r->k.rip;
}

void arch_regs_set_pc(struct arch_regs *r, uint64_t pc)
{
    r->k.rip = pc;
}

uint64_t arch_regs_sp(const struct arch_regs *r)
{
    return r->k.rsp;
}

void arch_regs_set_sp(struct arch_regs *r, uint64_t sp)
{
    r->k.rsp = sp;
}

/* ---- entering ---- */

int arch_enter(struct dune_vcpu *v)
{
    return dune_enter_trampoline(&v->arch.enter_sp, v->host_stack_top, v);
}

/* The guest resumes inside dune_enter_trampoline with its stack, and its
 * rax = 0 makes the call return 0. */
void arch_vcpu_entry_regs(struct dune_vcpu *v, struct arch_regs *r)
{
    memset(r, 0, sizeof *r);
    r->k.rip = (uintptr_t)dune_enter_resume;
    r->k.rsp = v->arch.enter_sp;
    r->k.rflags = X86_RFLAGS_START;
}

/* ---- exits ---- */

void arch_exit_decode(struct dune_vcpu *v, struct dune_exit *e)
{
    struct kvm_run *run = v->run;

    memset(e, 0, sizeof *e);
    e->kind = DUNE_EXIT_FATAL;
    switch (run->exit_reason) {
    case KVM_EXIT_MMIO:
        e->gpa = run->mmio.phys_addr;
        e->write = run->mmio.is_write;
        e->kind = e->write && e->gpa == gpa_mmio() ? DUNE_EXIT_SYSCALL : DUNE_EXIT_MMIO;
        return;
    case KVM_EXIT_IO:
        if (run->io.port == DUNE_PORT_EXC && run->io.direction == KVM_EXIT_IO_OUT)
            e->kind = DUNE_EXIT_TRAP;
        else
            e->what = "unexpected port I/O";
        return;
    case KVM_EXIT_INTR:
        e->kind = DUNE_EXIT_INTR;
        return;
    case KVM_EXIT_SHUTDOWN:
        e->what = "guest triple fault";
        return;
    case KVM_EXIT_HLT:
        /* KVM has moved rip past the 1-byte hlt. */
        e->kind = DUNE_EXIT_HALT;
        e->insn_len = 1;
        return;
    case KVM_EXIT_FAIL_ENTRY:
        e->what = "VM entry failed";
        return;
    case KVM_EXIT_INTERNAL_ERROR:
        /* suberror 1: KVM's instruction emulator could not run an
         * instruction (vector code at emulated CPL0, for instance) */
        e->what = run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
                      ? "KVM internal error: emulation failed"
                      : "KVM internal error";
        return;
    default:
        e->what = "unexpected VM exit";
        return;
    }
}

/* ---- system calls ---- */

void arch_syscall_args(const struct arch_regs *r, struct dune_syscall *sc)
{
    const struct kvm_regs *k = &r->k;

    sc->nr = (long)k->rax;
    sc->args[0] = k->rdi, sc->args[1] = k->rsi, sc->args[2] = k->rdx;
    sc->args[3] = k->r10, sc->args[4] = k->r8, sc->args[5] = k->r9;
    sc->ret = 0;
}

/* Whether SYSCALL at CPL3 entered CPL0: learnt at the VM's first call. */
void arch_syscall_probe(struct dune_vcpu *v)
{
    struct kvm_sregs s;

    if (dune_vm.arch.syscall_probed)
        return;
    dune_vm.arch.syscall_probed = true;
    if (dune_vm.mode == DUNE_MODE_CPL3 && dune_ioctl(v->fd, KVM_GET_SREGS, &s) == 0)
        dune_vm.arch.syscall_to_cpl0 = s.cs.dpl == 0;
}

bool arch_syscall_returns_itself(void)
{
    return dune_vm.arch.syscall_to_cpl0;
}

/* Continue the caller at rip with rflags (as SYSCALL saved them). */
static void return_to(struct kvm_regs *k, uint64_t rip, uint64_t rflags)
{
    rflags = x86_rflags_after_syscall(rflags);
    if (dune_vm.arch.syscall_to_cpl0) {
        k->rcx = rip; /* for the stub's sysretq */
        k->r11 = rflags;
    } else {
        k->rip = rip;
        k->rflags = rflags;
    }
}

void arch_syscall_return(struct arch_regs *r, long ret)
{
    r->k.rax = (uint64_t)ret;
    return_to(&r->k, r->k.rcx, r->k.r11);
}

void arch_syscall_again(struct arch_regs *r, long nr)
{
    r->k.rax = (uint64_t)nr;
    return_to(&r->k, r->k.rcx - X86_SYSCALL_LEN, r->k.r11);
}

void arch_syscall_rewind(struct arch_regs *r, long nr)
{
    r->k.rax = (uint64_t)nr;
    r->k.rip -= X86_SYSCALL_LEN;
}

long arch_syscall_retval(const struct arch_regs *r)
{
    return (long)r->k.rax;
}

void arch_syscall_native_return(struct arch_regs *r, long ret)
{
    r->k.rax = (uint64_t)ret;
    r->k.rip = r->k.rcx;
    r->k.rflags = x86_rflags_after_syscall(r->k.r11);
}

/* arch_prctl(ARCH_SET_FS): the guest's FS base is the vCPU's, not the
 * host thread's. */
bool arch_syscall_hook(struct dune_vcpu *v, const struct dune_syscall *sc, long *ret)
{
    if (sc->nr != SYS_arch_prctl)
        return false;
    *ret = arch_forward_syscall(sc, &v->deliverable);
    if (*ret == 0 && sc->args[0] == ARCH_SET_FS && arch_set_tls(v, sc->args[1]) < 0)
        *ret = -EINVAL;
    return true;
}

/* ---- ending a host thread without a stack ---- */

void arch_thread_exit_release(atomic_int *busy, long code)
{
    __asm__ volatile("movl $0, (%0)\n\t"
                     "movl %2, %%eax\n\t"
                     "syscall\n\t"
                     "ud2"
                     :
                     : "r"(busy), "D"(code), "i"(SYS_exit)
                     : "memory");
    __builtin_unreachable();
}

void arch_thread_exit_unmap(void *stack, size_t len, long code)
{
    register long c __asm__("r12") = code;

    __asm__ volatile("syscall\n\t"
                     "movl %4, %%eax\n\t"
                     "movq %%r12, %%rdi\n\t"
                     "syscall\n\t"
                     "ud2"
                     :
                     : "a"((long)SYS_munmap), "D"(stack), "S"(len), "r"(c), "i"(SYS_exit)
                     : "rcx", "r11", "memory");
    __builtin_unreachable();
}
