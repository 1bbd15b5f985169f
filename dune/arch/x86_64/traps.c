/*
 * traps.c - x86-64 exceptions in the guest, as the signals Linux raises.
 *
 * The CPL0 stubs (entry.S) leave the trap frame [vector, error, rip, cs,
 * rflags, rsp, ss] on the exception stack and exit to the host; here the
 * vector becomes a page fault for the mirror (signal_page_fault) or the
 * signal, code and address the kernel's trap handlers would give
 * (signal_fault).  The pending `iretq` goes through the frame, which
 * signal delivery may edit (arch_signal_frame_push).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>

#include "x86.h"

/* #PF error code */
#define PF_PRESENT 0x1
#define PF_WRITE 0x2
#define PF_INSN 0x10

static uint64_t read_cr2(struct dune_vcpu *v)
{
    struct kvm_sregs s;

    return dune_ioctl(v->fd, KVM_GET_SREGS, &s) < 0 ? 0 : s.cr2;
}

/* SIMD exception code from the unmasked MXCSR flags, as Linux reports. */
static int simd_code(struct dune_vcpu *v)
{
    uint32_t mxcsr, err;

    if (arch_fpu_save(v) < 0)
        return 0;
    memcpy(&mxcsr, (char *)v->fpu->x.region + 24 /* MXCSR in the xsave image */, 4);
    err = ~(mxcsr >> 7) & mxcsr;
    if (err & 0x1)
        return FPE_FLTINV;
    if (err & 0x4)
        return FPE_FLTDIV;
    if (err & 0x8)
        return FPE_FLTOVF;
    if (err & 0x12)
        return FPE_FLTUND;
    if (err & 0x20)
        return FPE_FLTRES;
    return 0;
}

/* A #BP at rip (after the int3): if a tracer is attached, run the int3
 * again natively, so that the tracer gets the kernel's SIGTRAP. */
static void breakpoint(struct dune_vcpu *v, const struct arch_regs *r, const uint64_t *fr)
{
    struct arch_regs n = *r;

    if (!trace_attached())
        return;
    n.k.rip = fr[F_RIP];
    if (((const uint8_t *)n.k.rip)[-1] == 0xcc)
        n.k.rip--;
    n.k.rflags = fr[F_RFLAGS];
    n.k.rsp = fr[F_RSP];
    trace_step_aside(v, &n);
}

int arch_trap_handle(struct dune_vcpu *v, struct arch_regs *r)
{
    uint64_t *fr = (uint64_t *)r->k.rsp;
    struct sig_event e = { .trapno = fr[F_VEC], .err = fr[F_ERR] };

    v->arch.frame = fr;
    atomic_fetch_add_explicit(&dune_vm.faults, 1, memory_order_relaxed);
    switch (fr[F_VEC]) {
    case 14: {
        uint64_t err = fr[F_ERR], cr2 = read_cr2(v);
        e = (struct sig_event){ SIGSEGV, 0, cr2, 14, err, cr2 };
        signal_page_fault(v, r, &e, err & PF_PRESENT, err & PF_WRITE, err & PF_INSN);
        return 0;
    }
    case 0:
        e = (struct sig_event){ SIGFPE, FPE_INTDIV, fr[F_RIP], 0, 0, 0 };
        break;
    case 1:
        e = (struct sig_event){ SIGTRAP, TRAP_TRACE, fr[F_RIP], 1, 0, 0 };
        break;
    case 3:
        /* A debugger's breakpoint: the tracer must see it natively. */
        breakpoint(v, r, fr);
        /* fall through */
    case 4:
        e = (struct sig_event){ fr[F_VEC] == 3 ? SIGTRAP : SIGSEGV, SI_KERNEL, 0, fr[F_VEC], 0, 0 };
        break;
    case 6:
        e = (struct sig_event){ SIGILL, ILL_ILLOPN, fr[F_RIP], 6, 0, 0 };
        break;
    case 5:
    case 10:
    case 13:
        e = (struct sig_event){ SIGSEGV, SI_KERNEL, 0, fr[F_VEC], fr[F_ERR], 0 };
        break;
    case 11: /* segment not present: SIGBUS, as Linux */
        e = (struct sig_event){ SIGBUS, SI_KERNEL, 0, 11, fr[F_ERR], 0 };
        break;
    case 12:
        e = (struct sig_event){ SIGBUS, SI_KERNEL, 0, 12, fr[F_ERR], 0 };
        break;
    case 16:
        e = (struct sig_event){ SIGFPE, FPE_FLTINV, fr[F_RIP], 16, 0, 0 };
        break;
    case 17:
        e = (struct sig_event){ SIGBUS, BUS_ADRALN, 0, 17, fr[F_ERR], 0 };
        break;
    case 19:
        e = (struct sig_event){ SIGFPE, simd_code(v), fr[F_RIP], 19, 0, 0 };
        break;
    default:
        return -1;
    }
    signal_fault(v, r, &e);
    return 0;
}

/* The guest's pc and sp: the trap frame's at an exception exit. */
uint64_t arch_guest_pc(struct dune_vcpu *v, const struct arch_regs *r)
{
    return v->arch.frame ? v->arch.frame[F_RIP] : r->k.rip;
}

uint64_t arch_guest_sp(struct dune_vcpu *v, const struct arch_regs *r)
{
    return v->arch.frame ? v->arch.frame[F_RSP] : r->k.rsp;
}

/* At a trap, or in guest code rather than one of our CPL0 stubs or the
 * syscall stub. */
bool arch_guest_interruptible(struct dune_vcpu *v, const struct arch_regs *r)
{
    uintptr_t rip = r->k.rip;

    if (v->arch.frame)
        return true;
    return !(rip >= (uintptr_t)dune_exc_vectors && rip < (uintptr_t)dune_enter_trampoline_start) &&
           !(rip >= dune_vm.arch.syscall_stub && rip < dune_vm.arch.syscall_stub + PAGE_SIZE);
}
