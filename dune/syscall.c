/*
 * syscall.c - run the guest's system calls on the host.
 *
 * The guest's syscall entry exits to the host (arch_exit_decode); we take
 * the call's number and arguments from its registers (arch_syscall_args),
 * make the same call natively (GPA == HVA, so every pointer argument is
 * valid here as it is) and hand back exactly the native return value.
 * Calls that change the address space are mirrored into the guest page
 * tables once they succeed.  A few calls cannot simply be forwarded:
 * rt_sigreturn (the frame is the guest's), clone/fork (the child cannot
 * run on this vCPU), exit_group (print the summary first).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "dune_internal.h"

static atomic_ulong native_children, native_threads;

static long forward(const struct dune_syscall *sc)
{
    struct dune_vcpu *v = dune_self;
    static const int none;

    return arch_forward_syscall(sc, v ? &v->deliverable : &none);
}

/* Protection of an existing guest mapping, read back from its PTE. */
static int pte_prot(uintptr_t va)
{
    uint64_t *pte = pt_lookup(va, false);

    if (!pte || !(*pte & DUNE_PTE_P))
        return PROT_NONE;
    return PROT_READ | ((*pte & DUNE_PTE_W) ? PROT_WRITE : 0) |
           ((*pte & DUNE_PTE_NX) ? 0 : PROT_EXEC);
}

static long do_mmap_family(const struct dune_syscall *sc)
{
    uintptr_t a = sc->args[0], vs = 0, ve = 0;
    size_t len = page_up(sc->args[1]);
    int old_prot = 0;
    long ret;

    if (sc->nr == SYS_mremap)
        old_prot = pte_prot(a);
    pthread_mutex_lock(&dune_vm.lock);
    if (sc->nr == SYS_shmdt && mirror_vma_extent(a, &vs, &ve) < 0)
        vs = ve = 0;
    if (sc->nr == SYS_brk && !dune_vm.cur_brk)
        dune_vm.cur_brk = (uintptr_t)dune_sys3(SYS_brk, 0, 0, 0);
    ret = forward(sc);
    if (dune_failed(ret)) {
        /* mprotect/munmap/mremap may have changed part of the range
         * before failing: re-read what the kernel did. */
        if (sc->nr == SYS_mprotect || sc->nr == SYS_pkey_mprotect || sc->nr == SYS_munmap ||
            sc->nr == SYS_mremap)
            mirror_resync(a, a + len);
        pthread_mutex_unlock(&dune_vm.lock);
        return ret;
    }
    switch (sc->nr) {
    case SYS_mmap:
        /* Out of memslots: fail as the kernel does when out of mappings. */
        if (mirror_range((uintptr_t)ret, (uintptr_t)ret + len, (int)sc->args[2]) == -ENOSPC) {
            dune_sys3(SYS_munmap, ret, len, 0);
            mirror_unmap((uintptr_t)ret, (uintptr_t)ret + len);
            ret = -ENOMEM;
        }
        break;
    case SYS_munmap:
        mirror_unmap(a, a + len);
        break;
    case SYS_mprotect:
    case SYS_pkey_mprotect:
        mirror_range(a, a + len, (int)sc->args[2] & (PROT_READ | PROT_WRITE | PROT_EXEC));
        break;
    case SYS_mremap: {
        size_t newlen = page_up(sc->args[2]);
        if ((uintptr_t)ret != a)
            mirror_unmap(a, a + len);
        else if (newlen < len)
            mirror_unmap(a + newlen, a + len);
        /* The moved pages' dirtiness is unknown: count them dirty. */
        pt_map_flags((uintptr_t)ret, (uintptr_t)ret + newlen, old_prot, true, DUNE_PTE_D);
        slots_cover((uintptr_t)ret, (uintptr_t)ret + newlen);
        break;
    }
    case SYS_shmat:
        if (mirror_vma_extent((uintptr_t)ret, &vs, &ve) == 0)
            mirror_resync(vs, ve);
        break;
    case SYS_shmdt:
        if (ve)
            mirror_resync(vs, ve);
        break;
    case SYS_brk:
        if ((uintptr_t)ret > dune_vm.cur_brk)
            mirror_range(page_up(dune_vm.cur_brk), page_up(ret), PROT_READ | PROT_WRITE);
        else if ((uintptr_t)ret < dune_vm.cur_brk)
            mirror_unmap(page_up(ret), page_up(dune_vm.cur_brk));
        dune_vm.cur_brk = (uintptr_t)ret;
        break;
    }
    pthread_mutex_unlock(&dune_vm.lock);
    return ret;
}

/* ---- clone, fork, vfork ----
 *
 * A new thread (CLONE_VM | CLONE_THREAD with its own stack and TLS) gets a
 * vCPU of its own, set up completely here before the clone, so a failure
 * is the clone's EAGAIN and the child only has to switch to its host stack
 * and run.  Other children (fork, vfork, odd clones) continue natively:
 * KVM serves a VM only to the process that created it.
 */

struct clone_ctx {
    struct arch_regs regs;        /* guest registers the child resumes with */
    const struct arch_fpu *fpu;   /* guest FPU state */
    unsigned long flags;
    bool has_stack;
    struct dune_vcpu *nv;         /* the new thread's vCPU, if it gets one */
    uint64_t sigmask;             /* the guest's signal mask, the child's */
    atomic_int copied;
};

void dune_set_fork_policy(enum dune_fork_policy p)
{
    dune_vm.fork_native = p == DUNE_FORK_NATIVE;
}

/* The forked child's own VM and vCPU, in the state the child starts in. */
static int fork_child_vm(const struct clone_ctx *ctx, const struct arch_regs *regs,
                         struct dune_vcpu **out)
{
    int saved = errno, r;
    struct dune_vcpu *nv;

    r = vm_recreate_after_fork();
    if (r == 0)
        r = vcpu_fork_reset(&nv);
    if (r == 0)
        r = arch_vcpu_setup(nv);
    if (r == 0 && (arch_vcpu_set_fpu(nv, ctx->fpu) < 0 || arch_vcpu_set_regs(nv, regs) < 0))
        r = -EIO;
    errno = saved;
    if (r < 0) {
        dune_warn_once("dune: forked child runs natively: cannot create its VM: %s",
                       strerror(-r));
        return r;
    }
    *out = nv;
    return 0;
}

/*
 * First code of the child, on a stack below its own.  Once `copied` is set
 * the parent may reuse ctx, so everything needed is copied first.
 *
 * The child starts with every signal blocked (the parent blocked them
 * around the clone): a signal must not reach our host handler before
 * dune_self says which vCPU, if any, is the child's.  Then it takes the
 * guest's mask, as a child inherits it natively.
 */
void __attribute__((noreturn, used)) dune_clone_child(void *arg, uintptr_t child_sp)
{
    struct clone_ctx *ctx = arg;
    struct arch_regs regs = ctx->regs;
    struct dune_vcpu *nv = ctx->nv;
    uint64_t sigmask = ctx->sigmask;

    if (nv) {
        dune_self = nv; /* our own TLS (CLONE_SETTLS) */
        atomic_store(&ctx->copied, 1);
        signal_set_host_mask(sigmask);
        arch_run_on_stack(nv, nv->host_stack_top, vcpu_thread_start);
    }
    if (ctx->has_stack)
        arch_regs_set_sp(&regs, child_sp);
    if (!(ctx->flags & CLONE_VM)) {
        /* A new process: the parent's VM is useless here (KVM binds a VM
         * to the mm that created it).  Make our own, or run natively. */
        dune_log_after_fork(); /* a child does not keep its parent's stderr */
        if (!dune_vm.fork_native && fork_child_vm(ctx, &regs, &nv) == 0) {
            dune_self = nv;
            signal_set_host_mask(sigmask);
            arch_run_on_stack(nv, nv->host_stack_top, vcpu_thread_start);
        }
        dune_self = NULL;
        atomic_fetch_add(&native_children, 1);
    } else if (ctx->flags & CLONE_VFORK) {
        /* Runs natively on the parent's TLS while the parent waits; the
         * parent puts its dune_self back when the call returns. */
        dune_self = NULL;
    }
    arch_fpu_restore_host(ctx->fpu);
    signal_set_host_mask(sigmask);
    atomic_store(&ctx->copied, 1);
    arch_native_resume(&regs);
}

/* Give the thread about to be created a vCPU in the guest state it will
 * start in: the parent's registers, clone returning 0, its own stack and
 * TLS. */
static int thread_vcpu(struct dune_vcpu *v, const struct clone_ctx *ctx, uintptr_t sp,
                       uintptr_t tls, struct dune_vcpu **out)
{
    struct arch_regs nr = ctx->regs;
    struct dune_vcpu *nv;
    int r;

    if ((r = vcpu_get(&nv)) < 0)
        return r;
    arch_regs_set_sp(&nr, sp);
    r = arch_vcpu_setup(nv);
    if (r == 0 && arch_vcpu_set_fpu(nv, v->fpu) < 0)
        r = -EIO;
    if (r == 0)
        r = arch_set_tls(nv, tls);
    if (r == 0 && arch_vcpu_set_regs(nv, &nr) < 0)
        r = -EIO;
    if (r < 0) {
        vcpu_release(nv);
        return r;
    }
    *out = nv;
    return 0;
}

static long do_clone(struct dune_vcpu *v, const struct arch_regs *r,
                     const struct dune_syscall *sc)
{
    struct clone_ctx ctx = { .regs = *r, .fpu = v->fpu };
    uintptr_t sp = 0, tls = 0;
    int saved_errno = errno;
    uint64_t host_mask;
    long ret;

    switch (sc->nr) {
    case SYS_clone:
        ctx.flags = sc->args[0];
        sp = sc->args[1];
        tls = sc->args[ARCH_CLONE_TLS_ARG];
        break;
    case SYS_clone3: {
        const struct clone_args *ca = (const void *)sc->args[0];
        if (sc->args[1] < sizeof(uint64_t) * 8)
            return -EINVAL;
        ctx.flags = ca->flags;
        sp = ca->stack ? ca->stack + ca->stack_size : 0;
        tls = ca->tls;
        break;
    }
#ifdef SYS_vfork
    case SYS_vfork:
        ctx.flags = CLONE_VM | CLONE_VFORK;
        break;
#endif
    default: /* fork */
        break;
    }
    ctx.has_stack = sp != 0;
    if (arch_fpu_save(v) < 0)
        return -EAGAIN;
    arch_syscall_native_return(&ctx.regs, 0);
    if ((ctx.flags & (CLONE_VM | CLONE_THREAD | CLONE_SETTLS)) ==
            (CLONE_VM | CLONE_THREAD | CLONE_SETTLS) &&
        !(ctx.flags & CLONE_VFORK) && sp) {
        int e = thread_vcpu(v, &ctx, sp, tls, &ctx.nv);
        errno = saved_errno;
        if (e < 0)
            return -EAGAIN; /* as natively when a thread cannot be had */
    }
    host_mask = signal_block_all();
    ctx.sigmask = v->npending ? v->held_mask : host_mask;
    ret = arch_host_clone(sc, &ctx);
    if (ctx.flags & CLONE_VFORK)
        dune_self = v;
    signal_set_host_mask(host_mask);
    if (ret < 0 && ctx.nv)
        vcpu_release(ctx.nv);
    if (ret > 0) {
        /* A vfork child is done with our memory once the call returns;
         * only a thread without a vCPU keeps writing where we cannot see. */
        if (!ctx.nv && (ctx.flags & CLONE_VM)) {
            atomic_fetch_add(&native_children, 1);
            if (!(ctx.flags & CLONE_VFORK))
                atomic_fetch_add(&native_threads, 1);
        }
        /* A thread sharing our memory reads ctx: wait until it has. */
        if ((ctx.flags & CLONE_VM) && !(ctx.flags & CLONE_VFORK))
            while (!atomic_load(&ctx.copied))
                dune_sys3(SYS_sched_yield, 0, 0, 0);
    }
    return ret;
}

unsigned long dune_native_children(void)
{
    return atomic_load(&native_children);
}

unsigned long dune_native_threads(void)
{
    return atomic_load(&native_threads);
}

/* A thread inside left without a way back (trace.c): from now on it writes
 * where guest dirty bits and the dirty log cannot see. */
void syscall_count_native_thread(void)
{
    atomic_fetch_add(&native_threads, 1);
}

/* ---- Dune hypercalls ---- */

/* Returns only if the thread stays inside: -EIO, or DUNE_NOT_RUN when a
 * signal was taken for the guest meanwhile (its handler runs first, then
 * the guest asks again). */
static long do_leave(struct dune_vcpu *v, const struct arch_regs *r)
{
    struct arch_regs n = *r;
    uint64_t mask;

    if (arch_fpu_save(v) < 0)
        return -EIO; /* stay inside */
    mask = signal_block_all();
    if (v->npending)
        return DUNE_NOT_RUN;
    arch_syscall_native_return(&n, 0);
    dune_self = NULL; /* dune_leave() hands the vCPU back */
    arch_fpu_restore_host(v->fpu);
    signal_set_host_mask(mask); /* signals reach the native thread from here */
    arch_native_resume(&n);
}

static long hypercall(struct dune_vcpu *v, const struct arch_regs *r,
                      const struct dune_syscall *sc)
{
    const uint64_t *a = sc->args;

    switch (sc->nr) {
    case DUNE_HC_LEAVE:
        return do_leave(v, r);
    case DUNE_HC_PROBE:
        return 0;
    case DUNE_HC_DIRTY_LOG_ENABLE:
        return dirty_log_enable_host(a[0], a[1], (int)a[2]);
    case DUNE_HC_DIRTY_LOG_READ:
        return dirty_log_read_host(a[0], a[1], (uint64_t *)a[2], (const uint64_t *)a[3]);
    default:
        return -ENOSYS;
    }
}

/* A seccomp filter would bind the host side as well: KVM_RUN itself would
 * be denied and the process left hanging.  Refuse it, and say so. */
static long refuse_seccomp(void)
{
    dune_warn_once("dune: seccomp filters cannot be installed inside Dune (they would apply "
                   "to the host side too): refused with EPERM");
    return -EPERM;
}

/* A signal was taken for the guest before the call could be made: run its
 * handler first; the guest then executes the syscall again. */
static void call_again(struct dune_vcpu *v, struct arch_regs *r, long nr)
{
    arch_syscall_again(r, nr);
    signal_deliver_pending(v, r, -1);
}

void syscall_handle(struct dune_vcpu *v, struct arch_regs *r)
{
    struct dune_syscall sc;
    uint64_t tmp_mask;
    long ret;

    arch_syscall_args(r, &sc);
    atomic_fetch_add_explicit(&dune_vm.syscalls, 1, memory_order_relaxed);
    v->syscalls++;
    arch_syscall_probe(v);
    /* Forwarded calls check this too, at the last moment; the others
     * (exit, clone, leave, sigaction...) must not start either. */
    if (v->npending && v->deliverable && sc.nr != SYS_rt_sigreturn &&
        !arch_syscall_returns_itself()) {
        call_again(v, r, sc.nr);
        return;
    }
    if (dune_fd_syscall(&sc, &ret))
        goto done;
    switch (sc.nr) {
    case SYS_rt_sigreturn:
        /* Restores every register itself, the pc included. */
        signal_sigreturn(v, r);
        signal_deliver_pending(v, r, -1);
        return;
    case SYS_rt_sigaction:
        ret = signal_rt_sigaction(&sc);
        break;
    case SYS_sigaltstack:
        ret = signal_sigaltstack(&sc, arch_regs_sp(r));
        break;
    case SYS_seccomp:
        ret = refuse_seccomp();
        break;
    case SYS_ptrace:
        ret = forward(&sc);
        if (ret == 0 && sc.args[0] == PTRACE_TRACEME) {
            /* About to be debugged: continue natively (trace.c). */
            struct arch_regs n = *r;
            arch_syscall_native_return(&n, 0);
            trace_step_aside(v, &n);
        }
        break;
    case SYS_prctl:
        ret = sc.args[0] == PR_SET_SECCOMP ? refuse_seccomp() : forward(&sc);
        break;
    case SYS_mmap:
    case SYS_munmap:
    case SYS_mprotect:
    case SYS_pkey_mprotect:
    case SYS_mremap:
    case SYS_brk:
    case SYS_shmat:
    case SYS_shmdt:
        ret = do_mmap_family(&sc);
        break;
    case SYS_clone:
    case SYS_clone3:
#ifdef SYS_fork
    case SYS_fork:
#endif
#ifdef SYS_vfork
    case SYS_vfork:
#endif
        ret = do_clone(v, r, &sc);
        break;
    case SYS_exit:
        /* With everything blocked no signal can be taken any more, and
         * the kernel routes process-directed ones to other threads; one
         * taken just before runs its handler first. */
        signal_block_all();
        if (!v->npending)
            vcpu_release_and_exit(v, (long)sc.args[0]);
        call_again(v, r, sc.nr);
        return;
    case SYS_exit_group:
        if (dune_verbose())
            dune_print_summary();
        ret = forward(&sc);
        break;
    default:
        if (sc.nr >= DUNE_HC_BASE && sc.nr < DUNE_HC_BASE + 0x100)
            ret = hypercall(v, r, &sc);
        else if (!arch_syscall_hook(v, &sc, &ret))
            ret = forward(&sc);
        break;
    }
done:
    if (ret == DUNE_NOT_RUN) {
        call_again(v, r, sc.nr);
        return;
    }
    sc.ret = ret;
    syscall_report_outputs(&sc);
    arch_syscall_return(r, ret);
    if (ret == -EINTR && signal_temp_mask(&sc, &tmp_mask)) {
        /* The signal that ended a wait under a temporary mask may be
         * blocked again now: deliver it under the mask the call waited
         * with, as the kernel does. */
        v->mask_override = true;
        v->base_mask = tmp_mask;
    }
    signal_deliver_pending(v, r, sc.nr);
    v->mask_override = false;
}
