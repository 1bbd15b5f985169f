/*
 * signal.c - guest exceptions become the signals Linux would raise.
 *
 * The CPL0 stub leaves [vector, error, rip, cs, rflags, rsp, ss] on the
 * exception stack and exits here.  A page fault the host mapping explains is
 * fixed by mirroring and retried.  Anything else is delivered as natively:
 * if the process has a handler we build the kernel's x86-64 rt_sigframe on
 * the guest stack (or sigaltstack) and point the `iretq` at the handler; its
 * rt_sigreturn comes back through the syscall path.  Without a handler the
 * process dies by the same signal, so a parent sees the same wait status.
 *
 * Asynchronous signals are taken from the kernel one at a time per thread
 * and only when the guest can be given them: see "asynchronous signals"
 * below and docs/signals.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

#include "dune_internal.h"

enum { F_VEC, F_ERR, F_RIP, F_CS, F_RFLAGS, F_RSP, F_SS };

#define X86_TF 0x100UL
#define X86_DF 0x400UL
#define X86_RF 0x10000UL
#define X86_AC 0x40000UL
/* rflags bits a signal handler may change through its ucontext */
#define FIX_EFLAGS 0x50dd5UL

/* The kernel's view of these structures (glibc's ucontext_t is longer). */
struct k_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

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
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

static dune_pgflt_fn pgflt_handler;

/*
 * The program's signal actions.  Handlers the guest installs are recorded
 * here and the host gets dune_host_signal instead: a signal for a thread
 * inside Dune is then queued and delivered in the guest, on the guest
 * stack, with the guest's registers in the ucontext.  SIG_DFL and SIG_IGN
 * are installed as they are, so the kernel's default actions stay native.
 */
static struct k_sigaction app_act[65];
static bool app_act_set[65];
/* Set by the trampoline when the Dune-aware handler declines a fault. */
static __thread uintptr_t pgflt_declined;

static uint64_t sigbit(int sig)
{
    return 1ULL << (sig - 1);
}

static void app_action(int sig, struct k_sigaction *ka)
{
    if (app_act_set[sig])
        *ka = app_act[sig];
    else
        dune_sys6(SYS_rt_sigaction, sig, 0, (long)ka, 8, 0, 0);
}

/* The process has no handler (or blocks the signal): die by it, as the
 * kernel's force_sig would make us. */
static void __attribute__((noreturn)) die_by_signal_why(int sig, const char *why);
#define die_by_signal(sig) die_by_signal_why((sig), __func__)

static void __attribute__((noreturn)) die_by_signal_why(int sig, const char *why)
{
    struct k_sigaction dfl = { .handler = SIG_DFL };
    uint64_t unblock = sigbit(sig);

    if (dune_verbose()) {
        char buf[96];
        int n = snprintf(buf, sizeof buf, "dune: signal %d kills the process (in %s)\n", sig,
                         why);
        dune_log_line(DUNE_MSG_NOTE, buf, (size_t)n);
        dune_print_summary();
    }
    app_act[sig] = dfl;
    dune_sys6(SYS_rt_sigaction, sig, (long)&dfl, 0, 8, 0, 0);
    dune_sys6(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&unblock, 0, 8, 0, 0);
    dune_sys3(SYS_tgkill, dune_sys3(SYS_getpid, 0, 0, 0), dune_sys3(SYS_gettid, 0, 0, 0), sig);
    dune_sys3(SYS_exit_group, 128 + sig, 0, 0);
    __builtin_unreachable();
}

/* Every page of [lo, hi) must be writable in the guest; grow the stack
 * mirror if the host has the memory.  Fails where the kernel would fail to
 * set up a frame. */
static bool guest_writable(uintptr_t lo, uintptr_t hi)
{
    for (uintptr_t p = page_down(lo); p < hi; p += PAGE_SIZE) {
        uint64_t *pte = pt_lookup(p, false);
        int code, res;

        if (pte && (*pte & (DUNE_PTE_P | DUNE_PTE_W)) == (DUNE_PTE_P | DUNE_PTE_W))
            continue;
        pthread_mutex_lock(&dune_vm.lock);
        res = mirror_fault(p, true, false, &code);
        pthread_mutex_unlock(&dune_vm.lock);
        if (res != 0)
            return false;
    }
    return true;
}

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

#define FP_XSTATE_MAGIC1 0x46505853U
#define FP_XSTATE_MAGIC2 0x46505845U

/* What the kernel writes into the fxsave area's software-reserved bytes
 * (and after the xsave area) so that a reader knows its layout. */
static void mark_xstate(uint8_t *fp)
{
    struct {
        uint32_t magic1, extended_size;
        uint64_t xfeatures;
        uint32_t xstate_size, padding[7];
    } sw = { FP_XSTATE_MAGIC1, dune_vm.xsave_size + 4, dune_vm.xcr0, dune_vm.xsave_size, { 0 } };
    uint32_t magic2 = FP_XSTATE_MAGIC2;

    memcpy(fp + 464, &sw, sizeof sw);
    memcpy(fp + dune_vm.xsave_size, &magic2, 4);
}

/* An xsave image in the initial state: FCW 0x37f, MXCSR 0x1f80, nothing
 * else live (XSTATE_BV = legacy x87/SSE only). */
static const struct kvm_xsave *init_fpu(void)
{
    static struct kvm_xsave x;
    static bool ready;

    if (!ready) {
        uint16_t fcw = 0x37f;
        uint32_t mxcsr = 0x1f80, mask = 0xffff;
        uint64_t bv = 3;
        memcpy((char *)x.region + 0, &fcw, 2);
        memcpy((char *)x.region + 24, &mxcsr, 4);
        memcpy((char *)x.region + 28, &mask, 4);
        memcpy((char *)x.region + 512, &bv, 8);
        ready = true;
    }
    return &x;
}

struct sig_event {
    int sig, code;
    uintptr_t addr;     /* si_addr */
    uint64_t trapno, err, cr2;
};

/* Build the frame and redirect the pending iretq to handler. */
static void push_frame(struct dune_vcpu *v, struct kvm_regs *r, uint64_t *fr,
                       const struct sig_event *e, const struct k_sigaction *ka, uint64_t oldmask,
                       const siginfo_t *si)
{
    uintptr_t sp = fr[F_RSP], fpstate;
    struct rt_sigframe *f;
    stack_t ss = { .ss_flags = SS_DISABLE };

    dune_sys3(SYS_sigaltstack, 0, &ss, 0);
    if ((ka->flags & SA_ONSTACK) && !(ss.ss_flags & SS_DISABLE) &&
        !(sp > (uintptr_t)ss.ss_sp && sp <= (uintptr_t)ss.ss_sp + ss.ss_size))
        sp = (uintptr_t)ss.ss_sp + ss.ss_size;
    else
        sp -= 128; /* red zone */
    sp = (sp - dune_vm.xsave_size - 64) & ~63UL;
    fpstate = sp;
    sp = ((sp - sizeof *f) & ~15UL) - 8;
    if (!guest_writable(sp, fr[F_RSP] > fpstate ? fpstate + dune_vm.xsave_size : fpstate) ||
        dune_ioctl(v->fd, KVM_GET_XSAVE, v->xsave) < 0)
        die_by_signal(SIGSEGV);
    memcpy((void *)fpstate, v->xsave->region, dune_vm.xsave_size);
    mark_xstate((uint8_t *)fpstate);
    /* The kernel starts a handler with a clean FPU (default MXCSR/FCW). */
    dune_ioctl(v->fd, KVM_SET_XSAVE, init_fpu());

    f = (struct rt_sigframe *)sp;
    memset(f, 0, sizeof *f);
    f->pretcode = ka->restorer;
    f->uc.uc_flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
    f->uc.uc_stack = ss;
    fill_mcontext(&f->uc.uc_mcontext, r, fr);
    f->uc.uc_mcontext.gregs[REG_ERR] = e->err;
    f->uc.uc_mcontext.gregs[REG_TRAPNO] = e->trapno;
    f->uc.uc_mcontext.gregs[REG_OLDMASK] = oldmask;
    f->uc.uc_mcontext.gregs[REG_CR2] = e->cr2;
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
}

/* ---- the guest's signal mask ----
 *
 * Normally the host thread's mask is the guest's (rt_sigprocmask and the
 * calls that take a mask are forwarded as they are).  While a signal is
 * held for the guest (v->npending) the host thread blocks everything and
 * the guest's mask lives in v->held_mask instead.  These helpers read and
 * set whichever is the real one, without racing the host handler.
 */

uint64_t signal_block_all(void)
{
    uint64_t all = ~0ULL, old = 0;

    dune_sys6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&all, (long)&old, 8, 0, 0);
    return old;
}

void signal_set_host_mask(uint64_t m)
{
    dune_sys6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&m, 0, 8, 0, 0);
}

uint64_t signal_guest_mask(struct dune_vcpu *v)
{
    uint64_t m = 0;

    dune_sys6(SYS_rt_sigprocmask, SIG_BLOCK, 0, (long)&m, 8, 0, 0);
    /* If the host handler ran after the read, it saved this same mask as
     * held_mask; if before, m is all-blocked and held_mask is the truth. */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (v && v->npending)
        return v->held_mask;
    return m;
}

static void set_guest_mask(struct dune_vcpu *v, uint64_t m)
{
    if (!v) {
        signal_set_host_mask(m);
        return;
    }
    /* Block first, so the handler cannot hold a signal between our test
     * and the SETMASK (which would unblock the host under a held signal). */
    signal_block_all();
    if (v->npending) {
        v->held_mask = m;
        v->deliverable = !(m & sigbit(v->pending.si_signo));
    } else {
        signal_set_host_mask(m); /* a pending signal may be taken right here */
    }
}

static void deliver_info(struct dune_vcpu *v, struct kvm_regs *r, uint64_t *fr,
                         const struct sig_event *e, const siginfo_t *si, uint64_t old,
                         uint64_t blocked);

/* A synchronous signal (a fault) for the guest. */
static void deliver(struct dune_vcpu *v, struct kvm_regs *r, uint64_t *fr,
                    const struct sig_event *e)
{
    uint64_t old = signal_guest_mask(v);

    deliver_info(v, r, fr, e, NULL, old, old);
}

/* old: the guest's mask, saved in the frame; blocked: the mask the
 * handler's mask is built on (old, or a syscall's temporary mask). */
static void deliver_info(struct dune_vcpu *v, struct kvm_regs *r, uint64_t *fr,
                         const struct sig_event *e, const siginfo_t *si, uint64_t old,
                         uint64_t blocked)
{
    struct k_sigaction ka;
    uint64_t mask;

    app_action(e->sig, &ka);
    if (ka.handler == SIG_DFL || ka.handler == SIG_IGN || (blocked & sigbit(e->sig)) ||
        !(ka.flags & SA_RESTORER)) {
        if (dune_verbose()) {
            char b[200];
            const uint8_t *ip = (const uint8_t *)fr[F_RIP];
            int n = snprintf(b, sizeof b, "dune: signal %d trap %lu at rip %#lx addr %#lx: handler "
                             "%p blocked %#llx; code %02x %02x %02x %02x %02x rsp %#lx\n", e->sig,
                             (unsigned long)e->trapno, (unsigned long)fr[F_RIP],
                             (unsigned long)e->addr, ka.handler, (unsigned long long)blocked,
                             ip[0], ip[1], ip[2], ip[3], ip[4], (unsigned long)fr[F_RSP]);
            dune_log_line(DUNE_MSG_NOTE, b, (size_t)n);
        }
        die_by_signal(e->sig);
    }
    push_frame(v, r, fr, e, &ka, old, si);
    mask = blocked | ka.mask;
    if (!(ka.flags & SA_NODEFER))
        mask |= sigbit(e->sig);
    if (ka.flags & SA_RESETHAND) {
        /* As the kernel: only the handler is reset, the flags stay. */
        struct k_sigaction dfl = ka;
        dfl.handler = SIG_DFL;
        app_act[e->sig] = dfl;
        app_act_set[e->sig] = true;
        dune_sys6(SYS_rt_sigaction, e->sig, (long)&dfl, 0, 8, 0, 0);
    }
    /* Last: this may let the next pending signal in (see deliver_held). */
    set_guest_mask(v, mask);
}

/* ---- Dune-aware page-fault handlers ---- */

extern char dune_sigreturn_restorer[];
__asm__(".text\n.globl dune_sigreturn_restorer\ndune_sigreturn_restorer:\n"
        "  movq $15, %rax\n  syscall\n  ud2\n");

static void __attribute__((used)) pgflt_trampoline(int sig, siginfo_t *si, void *uc)
{
    ucontext_t *u = uc;

    (void)sig;
    if (pgflt_handler((uintptr_t)si->si_addr, u->uc_mcontext.gregs[REG_ERR], uc) != 0)
        pgflt_declined = (uintptr_t)si->si_addr;
}

dune_pgflt_fn dune_set_pgflt_handler(dune_pgflt_fn fn)
{
    dune_pgflt_fn old = pgflt_handler;

    pgflt_handler = fn;
    return old;
}

static bool to_pgflt_handler(struct dune_vcpu *v, struct kvm_regs *r, uint64_t *fr,
                             const struct sig_event *e)
{
    struct k_sigaction ka = { .handler = (void *)pgflt_trampoline,
                              .restorer = dune_sigreturn_restorer };
    if (!pgflt_handler)
        return false;
    if (pgflt_declined == e->addr) {
        pgflt_declined = 0;
        return false;
    }
    push_frame(v, r, fr, e, &ka, signal_guest_mask(v), NULL);
    return true;
}

/* ---- exceptions ---- */

static uint64_t read_cr2(struct dune_vcpu *v)
{
    struct kvm_sregs s;

    return dune_ioctl(v->fd, KVM_GET_SREGS, &s) < 0 ? 0 : s.cr2;
}

/* SIMD exception code from the unmasked MXCSR flags, as Linux reports. */
static int simd_code(struct dune_vcpu *v)
{
    uint32_t mxcsr, err;

    if (dune_ioctl(v->fd, KVM_GET_XSAVE, v->xsave) < 0)
        return 0;
    memcpy(&mxcsr, (char *)v->xsave->region + 24, 4);
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

static int page_fault(struct dune_vcpu *v, struct kvm_regs *r, uint64_t *fr)
{
    static __thread uintptr_t last_addr, last_rip;
    static __thread unsigned long last_syscalls;
    static __thread unsigned repeats;
    uint64_t err = fr[F_ERR], cr2 = read_cr2(v);
    struct sig_event e = { .sig = SIGSEGV, .addr = cr2, .trapno = 14, .err = err, .cr2 = cr2 };
    int res;

    if ((err & 1) && to_pgflt_handler(v, r, fr, &e))
        return 0;
    pthread_mutex_lock(&dune_vm.lock);
    res = mirror_fault(cr2, err & 2, err & 16, &e.code);
    pthread_mutex_unlock(&dune_vm.lock);
    if (res == 0) {
        /* Retrying the same access over and over means the mapping we
         * install is not the one faulting: report it instead.  A system
         * call in between (brk shrinking and growing again, say) makes it
         * a new fault at the same place, not a retry. */
        bool again = cr2 == last_addr && fr[F_RIP] == last_rip && v->syscalls == last_syscalls;
        repeats = again ? repeats + 1 : 0;
        last_addr = cr2, last_rip = fr[F_RIP], last_syscalls = v->syscalls;
        if (repeats < 3)
            return 0;
        e.code = SEGV_ACCERR;
    }
    repeats = 0;
    if (to_pgflt_handler(v, r, fr, &e))
        return 0;
    deliver(v, r, fr, &e);
    return 0;
}

int exception_handle(struct dune_vcpu *v, struct kvm_regs *r)
{
    uint64_t *fr = (uint64_t *)r->rsp;
    struct sig_event e = { .trapno = fr[F_VEC], .err = fr[F_ERR] };

    atomic_fetch_add_explicit(&dune_vm.faults, 1, memory_order_relaxed);
    switch (fr[F_VEC]) {
    case 14:
        return page_fault(v, r, fr);
    case 0:
        e = (struct sig_event){ SIGFPE, FPE_INTDIV, fr[F_RIP], 0, 0, 0 };
        break;
    case 1:
        e = (struct sig_event){ SIGTRAP, TRAP_TRACE, fr[F_RIP], 1, 0, 0 };
        break;
    case 3:
        /* A debugger's breakpoint: the tracer must see it natively. */
        if (trace_breakpoint(v, r, fr[F_RIP], fr[F_RFLAGS], fr[F_RSP]))
            return 0;
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
    deliver(v, r, fr, &e);
    return 0;
}

/* ---- rt_sigreturn ---- */

int signal_sigreturn(struct dune_vcpu *v, struct kvm_regs *r)
{
    struct rt_sigframe *f = (struct rt_sigframe *)(r->rsp - 8);
    greg_t *g;
    uint64_t *pte = pt_lookup((uintptr_t)f, false), *pte2;

    pte2 = pt_lookup((uintptr_t)(f + 1) - 1, false);
    if (!pte || !pte2 || !(*pte & DUNE_PTE_P) || !(*pte2 & DUNE_PTE_P))
        die_by_signal(SIGSEGV);
    g = f->uc.uc_mcontext.gregs;
    r->r8 = g[REG_R8], r->r9 = g[REG_R9], r->r10 = g[REG_R10], r->r11 = g[REG_R11];
    r->r12 = g[REG_R12], r->r13 = g[REG_R13], r->r14 = g[REG_R14], r->r15 = g[REG_R15];
    r->rdi = g[REG_RDI], r->rsi = g[REG_RSI], r->rbp = g[REG_RBP], r->rbx = g[REG_RBX];
    r->rdx = g[REG_RDX], r->rax = g[REG_RAX], r->rcx = g[REG_RCX], r->rsp = g[REG_RSP];
    r->rip = g[REG_RIP];
    r->rflags = (r->rflags & ~FIX_EFLAGS) | (g[REG_EFL] & FIX_EFLAGS) | 0x202;
    if (f->uc.uc_mcontext.fpregs) {
        memcpy(v->xsave->region, f->uc.uc_mcontext.fpregs, dune_vm.xsave_size);
        dune_ioctl(v->fd, KVM_SET_XSAVE, v->xsave);
    }
    set_guest_mask(v, f->uc.uc_sigmask);
    return 0;
}

/* ---- asynchronous signals ----
 *
 * The kernel is the queue.  A signal for a thread inside Dune reaches our
 * host handler, which holds it for the guest (v->pending) and, through the
 * mask the kernel restores when the handler returns, blocks every signal on
 * the host thread.  Everything else sent meanwhile stays queued in the
 * kernel, with its siginfo, counted against RLIMIT_SIGPENDING, coalesced
 * (standard signals) and routed to a thread (process- or thread-directed)
 * exactly as natively.  When the held signal's frame is on the guest stack,
 * set_guest_mask() puts the guest's new mask on the host thread, and the
 * kernel hands over the next signal that mask lets through, at once, as
 * it would at a native return to user mode.  So nothing the kernel accepted
 * is dropped, whatever the guest is doing, and the order is the kernel's.
 *
 * Invariants (docs/signals.md has the argument in full):
 *  - npending is 0 or 1; while it is 1 the host thread blocks everything
 *    and held_mask is the guest's mask.  Only this thread changes it back,
 *    with all signals blocked (set_guest_mask, deliver_held, give_back).
 *  - A held signal is delivered before the guest runs another system call
 *    (forwarding checks `deliverable`, syscall_handle checks first) or
 *    leaves, exits or clones (those block everything and look again).
 *  - If the guest's mask comes to block the held signal before it could be
 *    delivered, it goes back to the kernel (give_back), never away.
 *
 * Why a self-sent SIGINT followed by a sleep cannot be slept through: the
 * kernel hands it to this handler at the return of the kill/tgkill itself
 * (the guest does not block it), and syscall_handle delivers a held signal
 * before it forwards anything else, the sleep included.  Only a thread
 * that exits or leaves with a signal held, or a clone child whose
 * dune_self is not yet its own, could lose one; both now block everything
 * before they look (syscall.c: SYS_exit, do_leave, dune_clone_child).
 */

extern char dune_exc_vectors[], dune_enter_trampoline_start[];

/* Put a held signal back into the kernel's queue for this thread.  Only
 * when the guest blocks it after it was taken; a process-directed signal
 * becomes directed to this thread. */
static void requeue(const siginfo_t *si)
{
    siginfo_t copy = *si;

    dune_sys6(SYS_rt_tgsigqueueinfo, dune_sys3(SYS_getpid, 0, 0, 0),
              dune_sys3(SYS_gettid, 0, 0, 0), si->si_signo, (long)&copy, 0, 0);
}

/* Host handler for every signal the guest handles.  On a thread inside
 * Dune it only holds the signal; the guest handler runs at the next exit.
 * Elsewhere (a thread running natively) it calls the program's handler. */
static void dune_host_signal(int sig, siginfo_t *si, void *uc)
{
    struct dune_vcpu *v = dune_self;
    struct k_sigaction ka = app_act[sig];
    ucontext_t *u = uc;

    if (v) {
        uint64_t was, all = ~0ULL;
        uintptr_t ip = (uintptr_t)u->uc_mcontext.gregs[REG_RIP];

        if (si->si_code > 0 && (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL ||
                                sig == SIGFPE || sig == SIGTRAP))
        {
            char b[128];
            int n = snprintf(b, sizeof b, "dune: host fault at %#lx addr %p\n",
                             (unsigned long)ip, si->si_addr);
            if (dune_verbose())
                dune_log_line(DUNE_MSG_NOTE, b, (size_t)n);
            die_by_signal(sig); /* a fault in Dune's own host code */
        }
        memcpy(&was, &u->uc_sigmask, sizeof was);
        if (v->npending) {
            /* Cannot happen (everything is blocked while one is held);
             * should it, the kernel keeps the signal, not us. */
            requeue(si);
        } else {
            v->pending = *si;
            v->held_mask = was;
            v->deliverable = !(was & sigbit(sig));
            __atomic_signal_fence(__ATOMIC_SEQ_CST);
            v->npending = 1;
        }
        /* Returning restores this mask: nothing more until delivery. */
        memcpy(&u->uc_sigmask, &all, sizeof all);
        /* If this thread is about to enter KVM_RUN, make it come back at
         * once so the signal is delivered without waiting for an exit. */
        v->run->immediate_exit = 1;
        /* About to forward a (maybe blocking) syscall: don't. */
        if (ip >= (uintptr_t)dune_fwd_check && ip < (uintptr_t)dune_fwd_done)
            u->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)dune_fwd_intr;
        return;
    }
    if (ka.handler == SIG_DFL || ka.handler == SIG_IGN)
        return;
    /* A native thread: run the program's handler with the mask it asked
     * for (our host action blocks everything); the kernel restores the
     * interrupted mask when we return. */
    {
        uint64_t m = ka.mask | (ka.flags & SA_NODEFER ? 0 : sigbit(sig));
        dune_sys6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&m, 0, 8, 0, 0);
    }
    if (ka.flags & SA_SIGINFO)
        ((void (*)(int, siginfo_t *, void *))ka.handler)(sig, si, uc);
    else
        ((void (*)(int))ka.handler)(sig);
}

/* rt_sigaction from the guest: record, and install our host handler. */
long signal_rt_sigaction(const struct kvm_regs *r)
{
    int sig = (int)r->rdi;
    const struct k_sigaction *act = (const void *)r->rsi;
    struct k_sigaction *oact = (void *)r->rdx, old, host;
    long ret;

    if (r->r10 != 8 || sig < 1 || sig > 64)
        return dune_sys6(SYS_rt_sigaction, sig, (long)r->rsi, (long)r->rdx, (long)r->r10, 0, 0);
    app_action(sig, &old);
    if (act) {
        host = *act;
        if (act->handler != SIG_DFL && act->handler != SIG_IGN) {
            host.handler = (void *)dune_host_signal;
            host.flags = SA_SIGINFO | SA_RESTORER | (act->flags & (SA_NOCLDSTOP | SA_NOCLDWAIT));
            host.restorer = dune_sigreturn_restorer;
            host.mask = ~0ULL;
        }
        ret = dune_sys6(SYS_rt_sigaction, sig, (long)&host, 0, 8, 0, 0);
        if (ret < 0)
            return ret;
        app_act[sig] = *act;
        app_act_set[sig] = true;
    }
    if (oact)
        *oact = old;
    return 0;
}

/* System calls that fail with EINTR after a handler even with SA_RESTART
 * (signal(7)); all others are restarted. */
static bool restartable(long nr)
{
    switch (nr) {
    case SYS_pause:
    case SYS_rt_sigsuspend:
    case SYS_rt_sigtimedwait:
    case SYS_nanosleep:
    case SYS_clock_nanosleep:
    case SYS_poll:
    case SYS_ppoll:
    case SYS_select:
    case SYS_pselect6:
    case SYS_epoll_wait:
    case SYS_epoll_pwait:
    case SYS_epoll_pwait2:
    case SYS_io_getevents:
    case SYS_semtimedop:
    case SYS_semop:
    case SYS_msgrcv:
    case SYS_msgsnd:
        return false;
    }
    return true;
}

/* Guest code, not one of our CPL0 stubs, is interrupted at r->rip. */
static bool at_guest_code(uintptr_t rip)
{
    return !(rip >= (uintptr_t)dune_exc_vectors && rip < (uintptr_t)dune_enter_trampoline_start) &&
           !(rip >= dune_vm.syscall_stub && rip < dune_vm.syscall_stub + PAGE_SIZE);
}

/* An interrupt-style frame for a guest stopped in its own code (after a
 * syscall or an interrupted KVM_RUN), so delivery can treat it like an
 * exception frame; frame_to_regs() applies the result. */
static void frame_from_regs(const struct kvm_regs *r, uint64_t *own)
{
    own[F_RIP] = r->rip, own[F_RSP] = r->rsp, own[F_RFLAGS] = r->rflags;
    own[F_CS] = dune_vm.mode == DUNE_MODE_CPL3 ? 0x33 : 0x10;
    own[F_SS] = dune_vm.mode == DUNE_MODE_CPL3 ? 0x2b : 0x18;
}

static void frame_to_regs(const uint64_t *own, struct kvm_regs *r)
{
    r->rip = own[F_RIP], r->rsp = own[F_RSP], r->rflags = own[F_RFLAGS];
}

/* Stop holding: the host thread gets the guest's mask back (with which
 * the kernel may hand over the next signal at once).  Signals are all
 * blocked on entry, as always while one is held. */
static void release(struct dune_vcpu *v, uint64_t mask)
{
    v->npending = 0;
    v->deliverable = 0;
    v->run->immediate_exit = 0;
    signal_set_host_mask(mask);
}

/* The guest blocks the held signal after all: back to the kernel. */
static void give_back(struct dune_vcpu *v)
{
    requeue(&v->pending);
    release(v, v->held_mask);
}

/*
 * Deliver the held signal in the guest, if it can be given one here.  fr
 * is the exception frame when the exit came from a CPL0 stub; otherwise
 * the registers are the guest's own (after a syscall: syscall_nr says
 * which, for restarting).  True if the held signal was dealt with.
 */
static bool deliver_held(struct dune_vcpu *v, struct kvm_regs *r, uint64_t *fr, long syscall_nr)
{
    uint64_t own[7], old, blocked;
    struct k_sigaction ka;
    struct sig_event e;
    siginfo_t si;

    if (!v->npending || dune_vm.syscall_to_cpl0)
        return false;
    if (!fr && !at_guest_code(r->rip))
        return false; /* inside a stub: the next exit will do */
    si = v->pending;
    old = v->held_mask;
    blocked = v->mask_override ? v->base_mask : old;
    if (blocked & sigbit(si.si_signo))
        return false;
    app_action(si.si_signo, &ka);
    if (ka.handler == SIG_IGN) { /* changed since it was taken */
        release(v, old);
        return true;
    }
    if (ka.handler == SIG_DFL) { /* the kernel's default action, then */
        give_back(v);
        return true;
    }
    if (!fr) {
        if (syscall_nr >= 0 && (long)r->rax == -EINTR && (ka.flags & SA_RESTART) &&
            restartable(syscall_nr)) {
            r->rax = syscall_nr; /* the handler returns to the syscall again */
            r->rip -= 2;
        }
        frame_from_regs(r, own);
        fr = own;
    }
    /* No longer held, but the host still blocks everything until
     * deliver_info sets the handler's mask. */
    v->npending = 0;
    v->deliverable = 0;
    v->run->immediate_exit = 0;
    e = (struct sig_event){ .sig = si.si_signo, .code = si.si_code };
    deliver_info(v, r, fr, &e, &si, old, blocked);
    if (fr == own)
        frame_to_regs(own, r);
    return true;
}

/*
 * Deliver what is held, and what the kernel hands over as each handler's
 * mask goes on: nested frames, the last one taken running first, as the
 * kernel builds them on a return to user mode.  The bound only spreads a
 * flood over several exits (immediate_exit brings us back).
 */
void signal_deliver_pending(struct dune_vcpu *v, struct kvm_regs *r, uint64_t *fr, long syscall_nr)
{
    for (int i = 0; i < 64 && v->npending; i++) {
        bool done = deliver_held(v, r, fr, syscall_nr);

        v->mask_override = false; /* the syscall's mask served the first one */
        syscall_nr = -1;
        if (!done)
            break;
    }
    /* Still held: either the guest sits in a stub (delivered at its next
     * exit) or its mask now blocks the signal: then the kernel keeps it. */
    if (v->npending && (v->held_mask & sigbit(v->pending.si_signo)))
        give_back(v);
}

/* The thread leaves Dune without a way back (trace.c): block everything
 * and return the guest's mask, which the caller sets once dune_self is
 * NULL; a held signal goes back to the kernel, to be delivered natively. */
uint64_t signal_leave(struct dune_vcpu *v)
{
    uint64_t old = signal_block_all();

    if (!v->npending)
        return old;
    requeue(&v->pending);
    v->npending = 0;
    v->deliverable = 0;
    v->run->immediate_exit = 0;
    return v->held_mask;
}

/* The temporary mask a system call waited with (rt_sigsuspend, ppoll,
 * pselect6, epoll_pwait[2]): a signal that interrupts it is delivered
 * under that mask, and the frame restores the caller's, as the kernel's
 * saved_sigmask does.  The kernel read the mask, so the pointers are good. */
bool signal_temp_mask(long nr, const struct kvm_regs *r, uint64_t *m)
{
    const uint64_t *p = NULL;
    unsigned long size = 0;

    switch (nr) {
    case SYS_rt_sigsuspend:
        p = (const uint64_t *)r->rdi, size = r->rsi;
        break;
    case SYS_ppoll:
        p = (const uint64_t *)r->r10, size = r->r8;
        break;
    case SYS_epoll_pwait:
    case SYS_epoll_pwait2:
        p = (const uint64_t *)r->r8, size = r->r9;
        break;
    case SYS_pselect6:
        if (r->r9) {
            const unsigned long *d = (const unsigned long *)r->r9;
            p = (const uint64_t *)d[0], size = d[1];
        }
        break;
    }
    if (!p || size != 8)
        return false;
    *m = *p;
    return true;
}

/* sigaltstack asks whether the *caller* runs on the alternate stack: that
 * is the guest's stack pointer, not the host side's. */
long signal_sigaltstack(const struct kvm_regs *r)
{
    const stack_t *ss = (const void *)r->rdi;
    stack_t *oss = (void *)r->rsi, cur;
    bool on;
    long ret;

    ret = dune_sys3(SYS_sigaltstack, 0, (long)&cur, 0);
    if (ret < 0)
        return ret;
    on = !(cur.ss_flags & SS_DISABLE) && r->rsp > (uintptr_t)cur.ss_sp &&
         r->rsp <= (uintptr_t)cur.ss_sp + cur.ss_size;
    if (ss) {
        if (on)
            return -EPERM;
        ret = dune_sys3(SYS_sigaltstack, (long)ss, 0, 0);
        if (ret < 0)
            return ret;
    }
    if (oss) {
        if (on)
            cur.ss_flags |= SS_ONSTACK;
        *oss = cur;
    }
    return 0;
}

/*
 * KVM_RUN failed with EFAULT: the host could not back a guest access (a
 * file mapping beyond its end, typically), which natively is SIGBUS.  KVM
 * does not tell which address, so si_addr is 0.
 */
void signal_host_fault(struct dune_vcpu *v, struct kvm_regs *r)
{
    uint64_t own[7];
    struct sig_event e = { .sig = SIGBUS, .code = BUS_ADRERR };

    dune_warn_once("dune: the host could not back a guest access at rip %#llx: SIGBUS "
                   "(address unknown)", (unsigned long long)r->rip);
    frame_from_regs(r, own);
    deliver(v, r, own, &e);
    frame_to_regs(own, r);
}

/*
 * The guest executed a privileged instruction that KVM turned into an exit
 * (HLT at guest CPL0).  Natively, at CPL3, it raises #GP: SIGSEGV with
 * SI_KERNEL and no address, at the instruction.
 */
void signal_gp_fault(struct dune_vcpu *v, struct kvm_regs *r)
{
    uint64_t own[7];
    struct sig_event e = { .sig = SIGSEGV, .code = SI_KERNEL, .trapno = 13 };

    atomic_fetch_add_explicit(&dune_vm.faults, 1, memory_order_relaxed);
    frame_from_regs(r, own);
    deliver(v, r, own, &e);
    frame_to_regs(own, r);
}
