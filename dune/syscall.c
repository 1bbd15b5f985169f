/*
 * syscall.c - run the guest's system calls on the host.
 *
 * The SYSCALL stub stores to the MMIO window; we get the guest's registers,
 * make the same call natively (GPA == HVA, so every pointer argument is
 * valid here as it is) and hand back exactly the native return value.
 * Calls that change the address space are mirrored into the guest page
 * tables once they succeed.  A few calls cannot simply be forwarded:
 * rt_sigreturn (the frame is the guest's), clone/fork (the child cannot
 * run on this vCPU), exit_group (print the summary first).
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
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

static long forward(const struct kvm_regs *r)
{
    struct dune_vcpu *v = dune_self;
    static const int none;

    return dune_forward_syscall(r, v ? &v->deliverable : &none);
}

static bool failed(long ret)
{
    return ret < 0 && ret > -4096;
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

static long do_mmap_family(const struct kvm_regs *r)
{
    uintptr_t a = r->rdi, vs = 0, ve = 0;
    size_t len = page_up(r->rsi);
    int old_prot = 0;
    long ret;

    if (r->rax == SYS_mremap)
        old_prot = pte_prot(a);
    pthread_mutex_lock(&dune_vm.lock);
    if (r->rax == SYS_shmdt && mirror_vma_extent(a, &vs, &ve) < 0)
        vs = ve = 0;
    if (r->rax == SYS_brk && !dune_vm.cur_brk)
        dune_vm.cur_brk = (uintptr_t)dune_sys3(SYS_brk, 0, 0, 0);
    ret = forward(r);
    if (failed(ret)) {
        /* mprotect/munmap/mremap may have changed part of the range
         * before failing: re-read what the kernel did. */
        if (r->rax == SYS_mprotect || r->rax == SYS_pkey_mprotect || r->rax == SYS_munmap ||
            r->rax == SYS_mremap)
            mirror_resync(a, a + len);
        pthread_mutex_unlock(&dune_vm.lock);
        return ret;
    }
    switch (r->rax) {
    case SYS_mmap:
        /* Out of memslots: fail as the kernel does when out of mappings. */
        if (mirror_range((uintptr_t)ret, (uintptr_t)ret + len, (int)r->rdx) == -ENOSPC) {
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
        mirror_range(a, a + len, (int)r->rdx & (PROT_READ | PROT_WRITE | PROT_EXEC));
        break;
    case SYS_mremap: {
        size_t newlen = page_up(r->rdx);
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
    struct kvm_regs regs;         /* guest registers the child resumes with */
    const struct kvm_xsave *fpu;  /* guest FPU state */
    unsigned long flags;
    bool has_stack;
    struct dune_vcpu *nv;         /* the new thread's vCPU, if it gets one */
    uint64_t sigmask;             /* the guest's signal mask, the child's */
    atomic_int copied;
};

long dune_host_clone(const struct kvm_regs *g, struct clone_ctx *ctx);

void dune_set_fork_policy(enum dune_fork_policy p)
{
    dune_vm.fork_native = p == DUNE_FORK_NATIVE;
}

/* The forked child's own VM and vCPU, in the state the child starts in. */
static int fork_child_vm(const struct clone_ctx *ctx, const struct kvm_regs *regs,
                         struct dune_vcpu **out)
{
    int saved = errno, r;
    struct dune_vcpu *nv;

    r = vm_recreate_after_fork();
    if (r == 0)
        r = vcpu_fork_reset(&nv);
    if (r == 0)
        r = arch_vcpu_setup(nv, 0, 0);
    if (r == 0 && (dune_ioctl(nv->fd, KVM_SET_XSAVE, ctx->fpu) < 0 ||
                   dune_ioctl(nv->fd, KVM_SET_REGS, regs) < 0))
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
void __attribute__((noreturn, used)) dune_clone_child(struct clone_ctx *ctx, uintptr_t child_rsp)
{
    struct kvm_regs regs = ctx->regs;
    struct dune_vcpu *nv = ctx->nv;
    uint64_t sigmask = ctx->sigmask;

    if (nv) {
        dune_self = nv; /* our own TLS (CLONE_SETTLS) */
        atomic_store(&ctx->copied, 1);
        signal_set_host_mask(sigmask);
        dune_run_on_stack(nv, nv->host_stack_top, vcpu_thread_start);
    }
    if (ctx->has_stack)
        regs.rsp = child_rsp;
    if (!(ctx->flags & CLONE_VM)) {
        /* A new process: the parent's VM is useless here (KVM binds a VM
         * to the mm that created it).  Make our own, or run natively. */
        dune_log_after_fork(); /* a child does not keep its parent's stderr */
        if (!dune_vm.fork_native && fork_child_vm(ctx, &regs, &nv) == 0) {
            dune_self = nv;
            signal_set_host_mask(sigmask);
            dune_run_on_stack(nv, nv->host_stack_top, vcpu_thread_start);
        }
        dune_self = NULL;
        atomic_fetch_add(&native_children, 1);
    } else if (ctx->flags & CLONE_VFORK) {
        /* Runs natively on the parent's TLS while the parent waits; the
         * parent puts its dune_self back when the call returns. */
        dune_self = NULL;
    }
    arch_restore_fpu(ctx->fpu);
    signal_set_host_mask(sigmask);
    atomic_store(&ctx->copied, 1);
    dune_native_resume(&regs);
}

/* Give the thread about to be created a vCPU in the guest state it will
 * start in: the parent's registers, rax = 0, its own stack and TLS. */
static int thread_vcpu(struct dune_vcpu *v, const struct clone_ctx *ctx, uintptr_t sp,
                       uintptr_t tls, struct dune_vcpu **out)
{
    struct kvm_regs nr = ctx->regs;
    struct dune_vcpu *nv;
    int r;

    if ((r = vcpu_get(&nv)) < 0)
        return r;
    nr.rsp = sp;
    r = arch_vcpu_setup(nv, 0, 0);
    if (r == 0 && dune_ioctl(nv->fd, KVM_SET_XSAVE, v->xsave) < 0)
        r = -EIO;
    if (r == 0)
        r = arch_set_fs_base(nv, tls);
    if (r == 0 && dune_ioctl(nv->fd, KVM_SET_REGS, &nr) < 0)
        r = -EIO;
    if (r < 0) {
        vcpu_release(nv);
        return r;
    }
    *out = nv;
    return 0;
}

static long do_clone(struct dune_vcpu *v, const struct kvm_regs *r)
{
    struct clone_ctx ctx = { .regs = *r, .fpu = v->xsave };
    uintptr_t sp = 0, tls = 0;
    int saved_errno = errno;
    uint64_t host_mask;
    long ret;

    switch (r->rax) {
    case SYS_clone:
        ctx.flags = r->rdi;
        sp = r->rsi;
        tls = r->r8;
        break;
    case SYS_clone3: {
        const struct clone_args *ca = (const void *)r->rdi;
        if (r->rsi < sizeof(uint64_t) * 8)
            return -EINVAL;
        ctx.flags = ca->flags;
        sp = ca->stack ? ca->stack + ca->stack_size : 0;
        tls = ca->tls;
        break;
    }
    case SYS_vfork:
        ctx.flags = CLONE_VM | CLONE_VFORK;
        break;
    default: /* fork */
        break;
    }
    ctx.has_stack = sp != 0;
    if (dune_ioctl(v->fd, KVM_GET_XSAVE, v->xsave) < 0)
        return -EAGAIN;
    ctx.regs.rax = 0;
    ctx.regs.rip = r->rcx;
    ctx.regs.rflags = (r->r11 & 0x3c7fd7) | 2;
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
    ret = dune_host_clone(r, &ctx);
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
static long do_leave(struct dune_vcpu *v, struct kvm_regs *r)
{
    struct kvm_regs n = *r;
    uint64_t mask;

    if (dune_ioctl(v->fd, KVM_GET_XSAVE, v->xsave) < 0)
        return -EIO; /* stay inside */
    mask = signal_block_all();
    if (v->npending)
        return DUNE_NOT_RUN;
    n.rax = 0;
    n.rip = r->rcx;
    n.rflags = (r->r11 & 0x3c7fd7) | 2;
    dune_self = NULL; /* dune_leave() hands the vCPU back */
    arch_restore_fpu(v->xsave);
    signal_set_host_mask(mask); /* signals reach the native thread from here */
    dune_native_resume(&n);
}

static long hypercall(struct dune_vcpu *v, struct kvm_regs *r)
{
    switch (r->rax) {
    case DUNE_HC_LEAVE:
        return do_leave(v, r);
    case DUNE_HC_PROBE:
        return 0;
    case DUNE_HC_DIRTY_LOG_ENABLE:
        return dirty_log_enable_host(r->rdi, r->rsi, (int)r->rdx);
    case DUNE_HC_DIRTY_LOG_READ:
        return dirty_log_read_host(r->rdi, r->rsi, (uint64_t *)r->rdx, (const uint64_t *)r->r10);
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

/* ---- return to the guest ---- */

/*
 * Where SYSCALL kept the caller's privilege level (this paravirtual KVM at
 * CPL3, or CPL0 mode anywhere) we return by setting rip ourselves; where it
 * switched to CPL0 (hardware, CPL3 mode) the stub's sysretq does it.
 */
static void probe_syscall_cpl(struct dune_vcpu *v)
{
    struct kvm_sregs s;

    if (dune_vm.syscall_probed)
        return;
    dune_vm.syscall_probed = true;
    if (dune_vm.mode == DUNE_MODE_CPL3 && dune_ioctl(v->fd, KVM_GET_SREGS, &s) == 0)
        dune_vm.syscall_to_cpl0 = s.cs.dpl == 0;
}

static void syscall_return(struct kvm_regs *r, uint64_t rip, uint64_t rflags)
{
    rflags = (rflags & 0x3c7fd7) | 2;
    if (dune_vm.syscall_to_cpl0) {
        r->rcx = rip;
        r->r11 = rflags;
    } else {
        r->rip = rip;
        r->rflags = rflags;
    }
}

/* A signal was taken for the guest before the call could be made: run its
 * handler first; the guest then executes the syscall again. */
static void call_again(struct dune_vcpu *v, struct kvm_regs *r, long nr, uint64_t rip,
                       uint64_t rflags)
{
    r->rax = nr;
    syscall_return(r, rip - 2, rflags);
    signal_deliver_pending(v, r, NULL, -1);
}

void syscall_handle(struct dune_vcpu *v, struct kvm_regs *r)
{
    uint64_t rip = r->rcx, rflags = r->r11, tmp_mask;
    long nr = (long)r->rax, ret;

    atomic_fetch_add_explicit(&dune_vm.syscalls, 1, memory_order_relaxed);
    v->syscalls++;
    probe_syscall_cpl(v);
    /* Forwarded calls check this too, at the last moment; the others
     * (exit, clone, leave, sigaction...) must not start either. */
    if (v->npending && v->deliverable && nr != SYS_rt_sigreturn && !dune_vm.syscall_to_cpl0) {
        call_again(v, r, nr, rip, rflags);
        return;
    }
    if (dune_fd_syscall(r, &ret))
        goto done;
    switch (r->rax) {
    case SYS_rt_sigreturn:
        /* Restores every register itself, rip included. */
        signal_sigreturn(v, r);
        signal_deliver_pending(v, r, NULL, -1);
        return;
    case SYS_rt_sigaction:
        ret = signal_rt_sigaction(r);
        break;
    case SYS_sigaltstack:
        ret = signal_sigaltstack(r);
        break;
    case SYS_seccomp:
        ret = refuse_seccomp();
        break;
    case SYS_ptrace:
        ret = forward(r);
        if (ret == 0 && r->rdi == PTRACE_TRACEME) {
            /* About to be debugged: continue natively (trace.c). */
            struct kvm_regs n = *r;
            n.rax = 0;
            n.rip = r->rcx;
            n.rflags = (r->r11 & 0x3c7fd7) | 2;
            trace_step_aside(v, &n);
        }
        break;
    case SYS_prctl:
        ret = r->rdi == PR_SET_SECCOMP ? refuse_seccomp() : forward(r);
        break;
    case SYS_mmap:
    case SYS_munmap:
    case SYS_mprotect:
    case SYS_pkey_mprotect:
    case SYS_mremap:
    case SYS_brk:
    case SYS_shmat:
    case SYS_shmdt:
        ret = do_mmap_family(r);
        break;
    case SYS_clone:
    case SYS_clone3:
    case SYS_fork:
    case SYS_vfork:
        ret = do_clone(v, r);
        break;
    case SYS_arch_prctl:
        ret = forward(r);
        if (ret == 0 && r->rdi == ARCH_SET_FS && arch_set_fs_base(v, r->rsi) < 0)
            ret = -EINVAL;
        break;
    case SYS_exit:
        /* With everything blocked no signal can be taken any more, and
         * the kernel routes process-directed ones to other threads; one
         * taken just before runs its handler first. */
        signal_block_all();
        if (!v->npending)
            vcpu_release_and_exit(v, (long)r->rdi);
        call_again(v, r, nr, rip, rflags);
        return;
    case SYS_exit_group:
        if (dune_verbose())
            dune_print_summary();
        ret = forward(r);
        break;
    default:
        if ((long)r->rax >= DUNE_HC_BASE && (long)r->rax < DUNE_HC_BASE + 0x100)
            ret = hypercall(v, r);
        else
            ret = forward(r);
        break;
    }
done:
    if (ret == DUNE_NOT_RUN) {
        call_again(v, r, nr, rip, rflags);
        return;
    }
    syscall_report_outputs(r, ret);
    r->rax = ret;
    syscall_return(r, rip, rflags);
    if (ret == -EINTR && signal_temp_mask(nr, r, &tmp_mask)) {
        /* The signal that ended a wait under a temporary mask may be
         * blocked again now: deliver it under the mask the call waited
         * with, as the kernel does. */
        v->mask_override = true;
        v->base_mask = tmp_mask;
    }
    signal_deliver_pending(v, r, NULL, nr);
    v->mask_override = false;
}
