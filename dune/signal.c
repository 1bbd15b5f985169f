/*
 * signal.c - guest exceptions become the signals Linux would raise.
 *
 * The architecture's trap code (arch_trap_handle) decodes an exception
 * into a page fault or a signal event.  A page fault the host mapping
 * explains is fixed by mirroring and retried.  Anything else is delivered
 * as natively: if the process has a handler the architecture builds the
 * kernel's signal frame on the guest stack (or sigaltstack) and points the
 * guest at the handler (arch_signal_frame_push); its rt_sigreturn comes
 * back through the syscall path.  Without a handler the process dies by
 * the same signal, so a parent sees the same wait status.
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
#include <unistd.h>

#include "dune_internal.h"

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
bool signal_guest_writable(uintptr_t lo, uintptr_t hi)
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

static void deliver_info(struct dune_vcpu *v, struct arch_regs *r, const struct sig_event *e,
                         const siginfo_t *si, uint64_t old, uint64_t blocked);

/* A synchronous signal (a fault) for the guest. */
void signal_fault(struct dune_vcpu *v, struct arch_regs *r, const struct sig_event *e)
{
    uint64_t old = signal_guest_mask(v);

    deliver_info(v, r, e, NULL, old, old);
}

/* The frame could not be written: the kernel would force SIGSEGV. */
static void push_frame(struct dune_vcpu *v, struct arch_regs *r, const struct sig_event *e,
                       const struct k_sigaction *ka, uint64_t oldmask, const siginfo_t *si)
{
    if (arch_signal_frame_push(v, r, e, ka, oldmask, si) < 0)
        die_by_signal(SIGSEGV);
}

/* old: the guest's mask, saved in the frame; blocked: the mask the
 * handler's mask is built on (old, or a syscall's temporary mask). */
static void deliver_info(struct dune_vcpu *v, struct arch_regs *r, const struct sig_event *e,
                         const siginfo_t *si, uint64_t old, uint64_t blocked)
{
    struct k_sigaction ka;
    uint64_t mask;

    app_action(e->sig, &ka);
    if (ka.handler == SIG_DFL || ka.handler == SIG_IGN || (blocked & sigbit(e->sig)) ||
        !(ka.flags & SA_RESTORER)) {
        if (dune_verbose()) {
            char b[200];
            uint64_t pc = arch_guest_pc(v, r);
            const uint8_t *ip = (const uint8_t *)pc;
            int n = snprintf(b, sizeof b, "dune: signal %d trap %lu at " ARCH_PC_NAME " %#lx addr "
                             "%#lx: handler %p blocked %#llx; code %02x %02x %02x %02x %02x "
                             ARCH_SP_NAME " %#lx\n", e->sig,
                             (unsigned long)e->trapno, (unsigned long)pc,
                             (unsigned long)e->addr, ka.handler, (unsigned long long)blocked,
                             ip[0], ip[1], ip[2], ip[3], ip[4],
                             (unsigned long)arch_guest_sp(v, r));
            dune_log_line(DUNE_MSG_NOTE, b, (size_t)n);
        }
        die_by_signal(e->sig);
    }
    push_frame(v, r, e, &ka, old, si);
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

static void __attribute__((used)) pgflt_trampoline(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    if (pgflt_handler((uintptr_t)si->si_addr, arch_uc_fault_err(uc), uc) != 0)
        pgflt_declined = (uintptr_t)si->si_addr;
}

dune_pgflt_fn dune_set_pgflt_handler(dune_pgflt_fn fn)
{
    dune_pgflt_fn old = pgflt_handler;

    pgflt_handler = fn;
    return old;
}

static bool to_pgflt_handler(struct dune_vcpu *v, struct arch_regs *r, const struct sig_event *e)
{
    struct k_sigaction ka = { .handler = (void *)pgflt_trampoline,
                              .restorer = arch_sigreturn_restorer };
    if (!pgflt_handler)
        return false;
    if (pgflt_declined == e->addr) {
        pgflt_declined = 0;
        return false;
    }
    push_frame(v, r, e, &ka, signal_guest_mask(v), NULL);
    return true;
}

/* ---- page faults ---- */

/*
 * A guest page fault at e->addr (e filled in by the trap code): mirror the
 * host's mapping and retry, or hand the fault to a Dune-aware handler, or
 * deliver e.  present: the page was mapped (a protection fault).
 */
void signal_page_fault(struct dune_vcpu *v, struct arch_regs *r, struct sig_event *e,
                       bool present, bool write, bool exec)
{
    static __thread uintptr_t last_addr, last_pc;
    static __thread unsigned long last_syscalls;
    static __thread unsigned repeats;
    uintptr_t pc = arch_guest_pc(v, r);
    int res;

    /* The write-protect tracker's own fault (CPL3 mode, or the guest's
     * fast path declined): give W back, retry.  The program never sees it. */
    if (present && write && wp_fault_fix(e->addr))
        return;
    if (present && to_pgflt_handler(v, r, e))
        return;
    pthread_mutex_lock(&dune_vm.lock);
    res = mirror_fault(e->addr, write, exec, &e->code);
    pthread_mutex_unlock(&dune_vm.lock);
    if (res == 0) {
        /* Retrying the same access over and over means the mapping we
         * install is not the one faulting: report it instead.  A system
         * call in between (brk shrinking and growing again, say) makes it
         * a new fault at the same place, not a retry. */
        bool again = e->addr == last_addr && pc == last_pc && v->syscalls == last_syscalls;
        repeats = again ? repeats + 1 : 0;
        last_addr = e->addr, last_pc = pc, last_syscalls = v->syscalls;
        if (repeats < 3)
            return;
        e->code = SEGV_ACCERR;
    }
    repeats = 0;
    if (to_pgflt_handler(v, r, e))
        return;
    signal_fault(v, r, e);
}

/* ---- rt_sigreturn ---- */

int signal_sigreturn(struct dune_vcpu *v, struct arch_regs *r)
{
    uint64_t mask;

    if (arch_signal_frame_pop(v, r, &mask) < 0)
        die_by_signal(SIGSEGV);
    set_guest_mask(v, mask);
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
        uintptr_t ip = arch_uc_pc(uc);

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
        arch_uc_cancel_forward(uc);
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
long signal_rt_sigaction(const struct dune_syscall *sc)
{
    int sig = (int)sc->args[0];
    const struct k_sigaction *act = (const void *)sc->args[1];
    struct k_sigaction *oact = (void *)sc->args[2], old, host;
    long ret;

    if (sc->args[3] != 8 || sig < 1 || sig > 64)
        return dune_sys6(SYS_rt_sigaction, sig, (long)sc->args[1], (long)sc->args[2],
                         (long)sc->args[3], 0, 0);
    app_action(sig, &old);
    if (act) {
        host = *act;
        if (act->handler != SIG_DFL && act->handler != SIG_IGN) {
            host.handler = (void *)dune_host_signal;
            host.flags = SA_SIGINFO | SA_RESTORER | (act->flags & (SA_NOCLDSTOP | SA_NOCLDWAIT));
            host.restorer = arch_sigreturn_restorer;
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
#ifdef SYS_pause
    case SYS_pause:
#endif
    case SYS_rt_sigsuspend:
    case SYS_rt_sigtimedwait:
    case SYS_nanosleep:
    case SYS_clock_nanosleep:
#ifdef SYS_poll
    case SYS_poll:
#endif
    case SYS_ppoll:
#ifdef SYS_select
    case SYS_select:
#endif
    case SYS_pselect6:
#ifdef SYS_epoll_wait
    case SYS_epoll_wait:
#endif
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
 * Deliver the held signal in the guest, if it can be given one here: at a
 * trap (the guest's state is the trap frame's) or where the guest stands
 * in its own code (after a syscall: syscall_nr says which, for
 * restarting).  True if the held signal was dealt with.
 */
static bool deliver_held(struct dune_vcpu *v, struct arch_regs *r, long syscall_nr)
{
    uint64_t old, blocked;
    struct k_sigaction ka;
    struct sig_event e;
    siginfo_t si;

    if (!v->npending || arch_syscall_returns_itself())
        return false;
    if (!arch_guest_interruptible(v, r))
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
    if (syscall_nr >= 0 && arch_syscall_retval(r) == -EINTR && (ka.flags & SA_RESTART) &&
        restartable(syscall_nr))
        arch_syscall_rewind(r, syscall_nr); /* the handler returns to the syscall again */
    /* No longer held, but the host still blocks everything until
     * deliver_info sets the handler's mask. */
    v->npending = 0;
    v->deliverable = 0;
    v->run->immediate_exit = 0;
    e = (struct sig_event){ .sig = si.si_signo, .code = si.si_code };
    deliver_info(v, r, &e, &si, old, blocked);
    return true;
}

/*
 * Deliver what is held, and what the kernel hands over as each handler's
 * mask goes on: nested frames, the last one taken running first, as the
 * kernel builds them on a return to user mode.  The bound only spreads a
 * flood over several exits (immediate_exit brings us back).
 */
void signal_deliver_pending(struct dune_vcpu *v, struct arch_regs *r, long syscall_nr)
{
    for (int i = 0; i < 64 && v->npending; i++) {
        bool done = deliver_held(v, r, syscall_nr);

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
bool signal_temp_mask(const struct dune_syscall *sc, uint64_t *m)
{
    const uint64_t *a = sc->args, *p = NULL;
    unsigned long size = 0;

    switch (sc->nr) {
    case SYS_rt_sigsuspend:
        p = (const uint64_t *)a[0], size = a[1];
        break;
    case SYS_ppoll:
        p = (const uint64_t *)a[3], size = a[4];
        break;
    case SYS_epoll_pwait:
    case SYS_epoll_pwait2:
        p = (const uint64_t *)a[4], size = a[5];
        break;
    case SYS_pselect6:
        if (a[5]) {
            const unsigned long *d = (const unsigned long *)a[5];
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
long signal_sigaltstack(const struct dune_syscall *sc, uint64_t sp)
{
    const stack_t *ss = (const void *)sc->args[0];
    stack_t *oss = (void *)sc->args[1], cur;
    bool on;
    long ret;

    ret = dune_sys3(SYS_sigaltstack, 0, (long)&cur, 0);
    if (ret < 0)
        return ret;
    on = !(cur.ss_flags & SS_DISABLE) && sp > (uintptr_t)cur.ss_sp &&
         sp <= (uintptr_t)cur.ss_sp + cur.ss_size;
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
void signal_host_fault(struct dune_vcpu *v, struct arch_regs *r)
{
    struct sig_event e = { .sig = SIGBUS, .code = BUS_ADRERR };

    dune_warn_once("dune: the host could not back a guest access at " ARCH_PC_NAME " %#llx: "
                   "SIGBUS (address unknown)", (unsigned long long)arch_regs_pc(r));
    signal_fault(v, r, &e);
}

/*
 * The guest executed a privileged instruction that KVM turned into an exit
 * (a halt at guest CPL0).  Natively, in user mode, it raises a protection
 * fault: SIGSEGV with SI_KERNEL and no address, at the instruction.
 */
void signal_priv_fault(struct dune_vcpu *v, struct arch_regs *r)
{
    struct sig_event e = { .sig = SIGSEGV, .code = SI_KERNEL, .trapno = ARCH_TRAPNO_PRIV };

    atomic_fetch_add_explicit(&dune_vm.faults, 1, memory_order_relaxed);
    signal_fault(v, r, &e);
}
