/*
 * signal_frame.c - the x86-64 kernel's signal frame, built on the guest
 * stack and taken down by rt_sigreturn, and the host ucontexts Dune's own
 * handlers read.
 *
 * A frame is exactly the kernel's rt_sigframe: the return address (the
 * handler's restorer), the ucontext with the interrupted registers, the
 * mask and the xsave image, then the siginfo.  The interrupted pc, sp and
 * rflags come from the trap frame when the exit was an exception, from
 * the registers otherwise (an own frame built here, applied back).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/ucontext.h>

#include "x86.h"

/* The kernel's view of these structures (glibc's ucontext_t is longer). */
struct k_ucontext {
    unsigned long uc_flags;
    struct k_ucontext *uc_link;
    stack_t uc_stack;
    mcontext_t uc_mcontext;
    uint64_t uc_sigmask;
};

struct rt_sigframe {
    void *pretcode;
    struct k_ucontext uc;
    siginfo_t info;
};

#define UC_FP_XSTATE 0x1
#define UC_SIGCONTEXT_SS 0x2
#define UC_STRICT_RESTORE_SS 0x4

#define FP_XSTATE_MAGIC1 0x46505853U
#define FP_XSTATE_MAGIC2 0x46505845U

/* Offsets in the xsave image. */
#define XS_FCW 0
#define XS_MXCSR 24
#define XS_MXCSR_MASK 28
#define XS_SW_RESERVED 464
#define XS_XSTATE_BV 512

__asm__(".text\n.globl arch_sigreturn_restorer\n.hidden arch_sigreturn_restorer\n"
        "arch_sigreturn_restorer:\n  movq $15, %rax\n  syscall\n  ud2\n");

static void fill_mcontext(mcontext_t *mc, const struct kvm_regs *r, const uint64_t *fr)
{
    greg_t *g = mc->gregs;

    g[REG_R8] = r->r8, g[REG_R9] = r->r9, g[REG_R10] = r->r10, g[REG_R11] = r->r11;
    g[REG_R12] = r->r12, g[REG_R13] = r->r13, g[REG_R14] = r->r14, g[REG_R15] = r->r15;
    g[REG_RDI] = r->rdi, g[REG_RSI] = r->rsi, g[REG_RBP] = r->rbp, g[REG_RBX] = r->rbx;
    g[REG_RDX] = r->rdx, g[REG_RAX] = r->rax, g[REG_RCX] = r->rcx;
    g[REG_RSP] = fr[F_RSP];
    g[REG_RIP] = fr[F_RIP];
    g[REG_EFL] = fr[F_RFLAGS];
    /* cs, gs, fs, ss packed as four 16-bit fields */
    g[REG_CSGSFS] = (fr[F_CS] & 0xffff) | ((fr[F_SS] & 0xffff) << 48);
}

/* What the kernel writes into the fxsave area's software-reserved bytes
 * (and after the xsave area) so that a reader knows its layout. */
static void mark_xstate(uint8_t *fp)
{
    struct {
        uint32_t magic1, extended_size;
        uint64_t xfeatures;
        uint32_t xstate_size, padding[7];
    } sw = { FP_XSTATE_MAGIC1, dune_vm.arch.xsave_size + 4, dune_vm.arch.xcr0,
             dune_vm.arch.xsave_size, { 0 } };
    uint32_t magic2 = FP_XSTATE_MAGIC2;

    memcpy(fp + XS_SW_RESERVED, &sw, sizeof sw);
    memcpy(fp + dune_vm.arch.xsave_size, &magic2, 4);
}

/* An xsave image in the initial state: FCW 0x37f, MXCSR 0x1f80, nothing
 * else live (XSTATE_BV = legacy x87/SSE only). */
static const struct arch_fpu *init_fpu(void)
{
    static struct arch_fpu f;
    static bool ready;

    if (!ready) {
        uint16_t fcw = 0x37f;
        uint32_t mxcsr = 0x1f80, mask = 0xffff;
        uint64_t bv = 3;
        memcpy((char *)f.x.region + XS_FCW, &fcw, 2);
        memcpy((char *)f.x.region + XS_MXCSR, &mxcsr, 4);
        memcpy((char *)f.x.region + XS_MXCSR_MASK, &mask, 4);
        memcpy((char *)f.x.region + XS_XSTATE_BV, &bv, 8);
        ready = true;
    }
    return &f;
}

/* An interrupt-style frame for a guest stopped in its own code (after a
 * syscall or an interrupted KVM_RUN), so a signal can be pushed as at an
 * exception; frame_to_regs() applies the result. */
static void frame_from_regs(const struct kvm_regs *r, uint64_t *own)
{
    own[F_RIP] = r->rip, own[F_RSP] = r->rsp, own[F_RFLAGS] = r->rflags;
    own[F_CS] = dune_vm.mode == DUNE_MODE_CPL3 ? SEL_UCODE : SEL_KCODE;
    own[F_SS] = dune_vm.mode == DUNE_MODE_CPL3 ? SEL_UDATA : SEL_KDATA;
}

static void frame_to_regs(const uint64_t *own, struct kvm_regs *r)
{
    r->rip = own[F_RIP], r->rsp = own[F_RSP], r->rflags = own[F_RFLAGS];
}

/* Build the frame and redirect the pending iretq (or the registers) to
 * the handler. */
static int push(struct dune_vcpu *v, struct kvm_regs *r, uint64_t *fr, const struct sig_event *e,
                const struct k_sigaction *ka, uint64_t oldmask, const siginfo_t *si)
{
    unsigned xsize = dune_vm.arch.xsave_size;
    uintptr_t sp = fr[F_RSP], fpstate;
    struct rt_sigframe *f;
    stack_t ss = { .ss_flags = SS_DISABLE };

    dune_sys3(SYS_sigaltstack, 0, &ss, 0);
    if ((ka->flags & SA_ONSTACK) && !(ss.ss_flags & SS_DISABLE) &&
        !(sp > (uintptr_t)ss.ss_sp && sp <= (uintptr_t)ss.ss_sp + ss.ss_size))
        sp = (uintptr_t)ss.ss_sp + ss.ss_size;
    else
        sp -= 128; /* red zone */
    sp = (sp - xsize - 64) & ~63UL;
    fpstate = sp;
    sp = ((sp - sizeof *f) & ~15UL) - 8;
    if (!signal_guest_writable(sp, fr[F_RSP] > fpstate ? fpstate + xsize : fpstate) ||
        arch_fpu_save(v) < 0)
        return -1;
    memcpy((void *)fpstate, v->fpu->x.region, xsize);
    mark_xstate((uint8_t *)fpstate);
    /* The kernel starts a handler with a clean FPU (default MXCSR/FCW). */
    arch_vcpu_set_fpu(v, init_fpu());

    f = (struct rt_sigframe *)sp;
    memset(f, 0, sizeof *f);
    f->pretcode = ka->restorer;
    f->uc.uc_flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
    f->uc.uc_stack = ss;
    fill_mcontext(&f->uc.uc_mcontext, r, fr);
    f->uc.uc_mcontext.gregs[REG_ERR] = e->err;
    f->uc.uc_mcontext.gregs[REG_TRAPNO] = e->trapno;
    f->uc.uc_mcontext.gregs[REG_OLDMASK] = oldmask;
    f->uc.uc_mcontext.gregs[REG_CR2] = e->fault_addr;
    f->uc.uc_mcontext.fpregs = (fpregset_t)fpstate;
    f->uc.uc_sigmask = oldmask;
    if (si) {
        f->info = *si;
    } else {
        f->info.si_signo = e->sig;
        f->info.si_code = e->code;
        f->info.si_addr = (void *)e->addr;
    }

    r->rdi = e->sig;
    r->rsi = (uintptr_t)&f->info;
    r->rdx = (uintptr_t)&f->uc;
    r->rax = 0;
    fr[F_RIP] = (uintptr_t)ka->handler;
    fr[F_RSP] = sp;
    fr[F_RFLAGS] &= ~(X86_TF | X86_DF | X86_RF | X86_AC);
    return 0;
}

int arch_signal_frame_push(struct dune_vcpu *v, struct arch_regs *r, const struct sig_event *e,
                           const struct k_sigaction *ka, uint64_t oldmask, const siginfo_t *si)
{
    uint64_t own[F_WORDS];

    if (v->arch.frame)
        return push(v, &r->k, v->arch.frame, e, ka, oldmask, si);
    frame_from_regs(&r->k, own);
    if (push(v, &r->k, own, e, ka, oldmask, si) < 0)
        return -1;
    frame_to_regs(own, &r->k);
    return 0;
}

/* rt_sigreturn: the frame sits just above the popped return address. */
int arch_signal_frame_pop(struct dune_vcpu *v, struct arch_regs *regs, uint64_t *mask)
{
    struct kvm_regs *r = &regs->k;
    struct rt_sigframe *f = (struct rt_sigframe *)(r->rsp - 8);
    greg_t *g;
    uint64_t *pte = pt_lookup((uintptr_t)f, false), *pte2;

    pte2 = pt_lookup((uintptr_t)(f + 1) - 1, false);
    if (!pte || !pte2 || !(*pte & DUNE_PTE_P) || !(*pte2 & DUNE_PTE_P))
        return -1;
    g = f->uc.uc_mcontext.gregs;
    r->r8 = g[REG_R8], r->r9 = g[REG_R9], r->r10 = g[REG_R10], r->r11 = g[REG_R11];
    r->r12 = g[REG_R12], r->r13 = g[REG_R13], r->r14 = g[REG_R14], r->r15 = g[REG_R15];
    r->rdi = g[REG_RDI], r->rsi = g[REG_RSI], r->rbp = g[REG_RBP], r->rbx = g[REG_RBX];
    r->rdx = g[REG_RDX], r->rax = g[REG_RAX], r->rcx = g[REG_RCX], r->rsp = g[REG_RSP];
    r->rip = g[REG_RIP];
    r->rflags = (r->rflags & ~X86_RFLAGS_SIGRETURN_FIX) | (g[REG_EFL] & X86_RFLAGS_SIGRETURN_FIX) |
                X86_RFLAGS_START;
    if (f->uc.uc_mcontext.fpregs) {
        memcpy(v->fpu->x.region, f->uc.uc_mcontext.fpregs, dune_vm.arch.xsave_size);
        arch_vcpu_set_fpu(v, v->fpu);
    }
    *mask = f->uc.uc_sigmask;
    return 0;
}

uint64_t arch_uc_fault_err(const void *uc)
{
    return (uint64_t)((const ucontext_t *)uc)->uc_mcontext.gregs[REG_ERR];
}

uint64_t arch_uc_pc(const void *uc)
{
    return (uint64_t)((const ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
}

/* The host thread was between arch_forward_syscall's check and its
 * `syscall`: make it skip the call. */
void arch_uc_cancel_forward(void *uc)
{
    greg_t *g = ((ucontext_t *)uc)->uc_mcontext.gregs;
    uintptr_t ip = (uintptr_t)g[REG_RIP];

    if (ip >= (uintptr_t)dune_fwd_check && ip < (uintptr_t)dune_fwd_done)
        g[REG_RIP] = (greg_t)(uintptr_t)dune_fwd_intr;
}
