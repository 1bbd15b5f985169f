/*
 * dirty_sigchain.c - keep the mprotect backend's fault handler first.
 *
 * Once dirty_sigchain_take() has installed a backend handler for SIGSEGV or
 * SIGBUS, the program's sigaction(), signal(), bsd_signal() and
 * sysv_signal() for that signal no longer reach the kernel: the program's
 * disposition is recorded here, the program is told its own previous
 * disposition, and ours stays installed.  A fault that is not the
 * backend's goes to dirty_sigchain_pass(), which runs the program's
 * disposition as the kernel would have: the handler is called in its
 * SA_SIGINFO or plain form with the signal mask the kernel would have set
 * (the interrupted mask, plus sa_mask, plus the signal unless SA_NODEFER),
 * SA_RESETHAND resets the recorded disposition first, and SIG_DFL or
 * SIG_IGN (which the kernel does not honour for a fault) kill the process
 * with the signal.  Programs that install a handler after libgc started
 * (Nix's stack-overflow handler, ECL) would otherwise replace ours and see
 * every write fault on the GC heap.
 *
 * Ours is installed with SA_ONSTACK, so a program's stack-overflow
 * handler still runs on its alternate stack.  Limitation: a program
 * handler without SA_ONSTACK also runs on the alternate stack when the
 * thread has one.  For signals not taken, everything goes straight to libc.
 */
#define _GNU_SOURCE
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <ucontext.h>

#include "dirty_backend.h"

#define API __attribute__((visibility("default")))

typedef int sigaction_fn(int, const struct sigaction *, struct sigaction *);
typedef sighandler_t signal_fn(int, sighandler_t);

/* The program's disposition per taken signal: two slots, the one in use
 * published by `cur`, so the fault handler never reads a half-written one. */
struct chain {
    _Atomic bool taken;
    _Atomic int cur;
    struct sigaction prog[2];
};
static struct chain chains[2]; /* SIGSEGV, SIGBUS */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sigaction_fn *real_sigaction_p;

static struct chain *chain_of(int sig)
{
    return sig == SIGSEGV ? &chains[0] : sig == SIGBUS ? &chains[1] : NULL;
}

static int real_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    sigaction_fn *f = atomic_load_explicit((_Atomic(sigaction_fn *) *)&real_sigaction_p,
                                           memory_order_acquire);
    if (!f) {
        f = (sigaction_fn *)dlsym(RTLD_NEXT, "sigaction");
        if (!f) {
            errno = ENOSYS;
            return -1;
        }
        atomic_store_explicit((_Atomic(sigaction_fn *) *)&real_sigaction_p, f,
                              memory_order_release);
    }
    return f(sig, act, old);
}

/* Record act as the program's disposition (caller holds lock). */
static void record(struct chain *c, const struct sigaction *act)
{
    int next = !atomic_load(&c->cur);
    c->prog[next] = *act;
    atomic_store(&c->cur, next);
}

int dirty_sigchain_take(int sig, const struct sigaction *ours)
{
    struct chain *c = chain_of(sig);
    struct sigaction prev;
    int err = 0;
    if (!c)
        return -EINVAL;
    pthread_mutex_lock(&lock);
    if (!atomic_load(&c->taken)) {
        if (real_sigaction(sig, ours, &prev) < 0) {
            err = -errno;
        } else {
            record(c, &prev);
            atomic_store(&c->taken, true);
        }
    }
    pthread_mutex_unlock(&lock);
    return err;
}

void dirty_sigchain_pass(int sig, siginfo_t *si, void *uctx)
{
    struct chain *c = chain_of(sig);
    struct sigaction sa = c->prog[atomic_load(&c->cur)];
    bool sent = si->si_code <= 0; /* kill(), raise(), sigqueue() */
    if (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN) { /* whatever the flags */
        if (sent && sa.sa_handler == SIG_IGN)
            return;
        /* The default action: returning re-executes the faulting
         * instruction, which then kills the process as it would have. */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        real_sigaction(sig, &dfl, NULL);
        if (sent) {
            sigset_t s;
            sigemptyset(&s);
            sigaddset(&s, sig);
            raise(sig);
            pthread_sigmask(SIG_UNBLOCK, &s, NULL);
        }
        return;
    }
    if (sa.sa_flags & SA_RESETHAND) {
        /* The kernel resets the handler on delivery, flags and mask kept
         * (as sigaction() then reports); a racing sigaction() may be lost. */
        struct sigaction dfl = sa;
        dfl.sa_handler = SIG_DFL;
        record(c, &dfl);
    }
    /* The mask the kernel would have set for the program's handler. */
    sigset_t mask, ours;
    const ucontext_t *uc = uctx;
    mask = uc->uc_sigmask;
    for (int s = 1; s < NSIG; s++)
        if (sigismember(&sa.sa_mask, s) == 1)
            sigaddset(&mask, s);
    if (!(sa.sa_flags & SA_NODEFER))
        sigaddset(&mask, sig);
    else
        sigdelset(&mask, sig);
    pthread_sigmask(SIG_SETMASK, &mask, &ours);
    if (sa.sa_flags & SA_SIGINFO)
        sa.sa_sigaction(sig, si, uctx);
    else
        sa.sa_handler(sig);
    pthread_sigmask(SIG_SETMASK, &ours, NULL);
}

API int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    struct chain *c = chain_of(sig);
    if (!c || !atomic_load(&c->taken))
        return real_sigaction(sig, act, old);
    pthread_mutex_lock(&lock);
    if (old)
        *old = c->prog[atomic_load(&c->cur)];
    if (act)
        record(c, act);
    pthread_mutex_unlock(&lock);
    return 0;
}

/* signal() and friends, for the taken signals, as glibc defines them on
 * top of sigaction (which they call inside libc, out of our reach). */
static sighandler_t set_handler(struct chain *c, int sig, sighandler_t h, int flags)
{
    struct sigaction sa, old;
    if (h == SIG_ERR) {
        errno = EINVAL;
        return SIG_ERR;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    if (!(flags & SA_NODEFER))
        sigaddset(&sa.sa_mask, sig);
    pthread_mutex_lock(&lock);
    old = c->prog[atomic_load(&c->cur)];
    record(c, &sa);
    pthread_mutex_unlock(&lock);
    return old.sa_handler;
}

static sighandler_t real_signal(const char *name, int sig, sighandler_t h)
{
    signal_fn *f = (signal_fn *)dlsym(RTLD_NEXT, name);
    if (!f) {
        errno = ENOSYS;
        return SIG_ERR;
    }
    return f(sig, h);
}

/* signal(), bsd_signal() or sysv_signal() (`name`), whose flags for a
 * taken signal are `flags`. */
static sighandler_t signal_as(const char *name, int sig, sighandler_t h, int flags)
{
    struct chain *c = chain_of(sig);
    if (!c || !atomic_load(&c->taken))
        return real_signal(name, sig, h);
    return set_handler(c, sig, h, flags);
}

API sighandler_t signal(int sig, sighandler_t h)
{
    return signal_as("signal", sig, h, SA_RESTART);
}

API sighandler_t bsd_signal(int sig, sighandler_t h);
API sighandler_t bsd_signal(int sig, sighandler_t h)
{
    return signal_as("bsd_signal", sig, h, SA_RESTART);
}

API sighandler_t sysv_signal(int sig, sighandler_t h)
{
    return signal_as("sysv_signal", sig, h, SA_RESETHAND | SA_NODEFER);
}
