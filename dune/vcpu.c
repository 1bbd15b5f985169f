/*
 * vcpu.c - one vCPU per thread inside Dune, and the host loop that runs it.
 *
 * The host half of a thread lives on a private stack and does nothing but
 * KVM_RUN and the work each exit asks for: a forwarded system call or a
 * guest exception, as arch_exit_decode() tells.  The architecture keeps
 * the registers where they cost least (with KVM_CAP_SYNC_REGS a forwarded
 * syscall costs one KVM_RUN and no register ioctls).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "dune_internal.h"

#define HOST_STACK_SIZE (1UL << 20)

__thread struct dune_vcpu *dune_self;

static void *map_anon(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

static int vcpu_alloc(struct dune_vcpu *v)
{
    struct rlimit rl;
    long fd;

    /* Above the soft RLIMIT_NOFILE (fds.c); without room there the
     * thread gets no vCPU, as if KVM had none left. */
    if (dune_fd_begin(&rl, true) < 0) {
        dune_warn_once("dune: RLIMIT_NOFILE leaves no room for another vCPU descriptor: "
                       "thread creation fails with EAGAIN");
        return -EAGAIN;
    }
    fd = dune_ioctl(dune_vm.vm_fd, KVM_CREATE_VCPU, (unsigned long)v->id);
    fd = dune_fd_end(&rl, fd);
    if (fd < 0)
        return (int)fd;
    v->fd = (int)fd;
    v->run = mmap(NULL, dune_vm.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    v->host_stack = map_anon(HOST_STACK_SIZE);
    if (v->run == MAP_FAILED || !v->host_stack)
        return -ENOMEM;
    v->host_stack_top = (uintptr_t)v->host_stack + HOST_STACK_SIZE - 64;
    return 0;
}

/*
 * KVM cannot destroy a single vCPU, so vCPUs live in a pool: a thread that
 * exits or leaves returns its vCPU (busy = 0) and the next thread takes it.
 * The whole pool goes when the VM does (vm_teardown_locked).
 */
static struct dune_vcpu *pool[1024];
static unsigned npool;

static int vcpu_new(struct dune_vcpu **out)
{
    struct dune_vcpu *v;
    int r;

    if (npool >= sizeof pool / sizeof pool[0] ||
        (dune_vm.max_vcpus > 0 && npool >= (unsigned)dune_vm.max_vcpus))
        return -EAGAIN;
    v = map_anon(sizeof *v);
    if (!v)
        return -ENOMEM;
    memset(v, 0, sizeof *v);
    v->id = (int)npool;
    v->fd = -1;
    v->busy = 1;
    pool[npool++] = v; /* from here on vcpus_free_all() releases it */
    dune_vm.nvcpus = (int)npool;
    r = vcpu_alloc(v);
    if (r == 0) /* its CPU structures, mapped in the guest */
        r = arch_vcpu_init(v);
    if (r < 0)
        return r; /* stays busy: KVM keeps its id anyway */
    *out = v;
    return 0;
}

/* A free vCPU from the pool, or a new one, counted as a thread inside (so
 * the VM stays).  Caller holds dune_vm.lock. */
int vcpu_get_locked(struct dune_vcpu **out)
{
    struct dune_vcpu *v = NULL;
    int r = 0;

    for (unsigned i = 0; i < npool && !v; i++)
        if (!atomic_load(&pool[i]->busy))
            v = pool[i];
    if (!v && (r = vcpu_new(&v)) < 0)
        return r;
    atomic_store(&v->busy, 1);
    dune_vm.active_vcpus++;
    v->npending = 0; /* a dead thread's signals are not the new one's */
    v->deliverable = 0;
    v->run->immediate_exit = 0;
    arch_vcpu_attach(v);
    *out = v;
    return 0;
}

/* Same, for a thread being created inside Dune: called on the host side
 * of its parent, so errno is preserved for the guest's sake. */
int vcpu_get(struct dune_vcpu **out)
{
    int saved = errno, r;

    pthread_mutex_lock(&dune_vm.lock);
    r = vcpu_get_locked(out);
    pthread_mutex_unlock(&dune_vm.lock);
    errno = saved;
    return r;
}

static void unmap(void *p, size_t len)
{
    if (p && p != MAP_FAILED)
        dune_sys3(SYS_munmap, p, len, 0);
}

static void vcpu_free(struct dune_vcpu *v, bool memory)
{
    if (v->fd >= 0) {
        dune_fd_forget(v->fd);
        dune_sys3(SYS_close, v->fd, 0, 0);
    }
    if (!memory)
        return;
    unmap(v->run, (size_t)dune_vm.run_size);
    unmap(v->host_stack, HOST_STACK_SIZE);
    arch_vcpu_free(v);
    unmap(v, sizeof *v);
}

static void pool_drop(bool memory)
{
    for (unsigned i = 0; i < npool; i++)
        vcpu_free(pool[i], memory);
    npool = 0;
    dune_vm.nvcpus = 0;
    dune_vm.active_vcpus = 0;
}

/* Close and unmap every vCPU: the VM is going away.  No thread may be
 * running on one. */
void vcpus_free_all(void)
{
    pool_drop(true);
}

/* In a forked child: the parent's vCPUs belong to the parent's VM.  Drop
 * their descriptors (the child has one thread) and make this thread a
 * fresh one.  Their memory stays: the child is still reading the parent's
 * FPU state from one of them. */
int vcpu_fork_reset(struct dune_vcpu **out)
{
    pool_drop(false);
    dune_self = NULL;
    return vcpu_get(out);
}

/* The thread no longer runs on v (it left, or never ran): hand it back.
 * The last thread out releases the VM.  errno is preserved: this also
 * runs on the host side of a guest thread. */
void vcpu_release(struct dune_vcpu *v)
{
    int saved = errno;

    pthread_mutex_lock(&dune_vm.lock);
    atomic_store(&v->busy, 0);
    if (--dune_vm.active_vcpus == 0)
        vm_teardown_locked();
    pthread_mutex_unlock(&dune_vm.lock);
    errno = saved;
}

/* The last thread inside exits: release the VM, except the host stack we
 * are standing on, which goes with the exit itself. */
static void __attribute__((noreturn)) last_exit(struct dune_vcpu *v, long code)
{
    uint64_t all = ~0ULL;
    void *stack = v->host_stack;

    /* No handler may run here any more: it would find a freed vCPU. */
    dune_sys6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&all, 0, 8, 0, 0);
    dune_self = NULL;
    v->host_stack = NULL;
    vm_teardown_locked();
    pthread_mutex_unlock(&dune_vm.lock);
    arch_thread_exit_unmap(stack, HOST_STACK_SIZE, code);
}

/* The thread is exiting: hand the vCPU back and exit without touching the
 * stack again (the next owner of the vCPU may start using it at once). */
void vcpu_release_and_exit(struct dune_vcpu *v, long code)
{
    pthread_mutex_lock(&dune_vm.lock);
    if (--dune_vm.active_vcpus == 0)
        last_exit(v, code);
    pthread_mutex_unlock(&dune_vm.lock);
    arch_thread_exit_release(&v->busy, code);
}

void vcpu_renumber_fd(int oldfd, int newfd)
{
    for (unsigned i = 0; i < npool; i++)
        if (pool[i]->fd == oldfd)
            pool[i]->fd = newfd;
}

unsigned dune_active_vcpus(void)
{
    return dune_vm.active_vcpus;
}

/* Last resort: the guest is in a state we cannot continue from. */
static void __attribute__((noreturn)) vcpu_fatal(struct dune_vcpu *v, const char *what)
{
    struct arch_regs r;
    char buf[256];
    int n;

    memset(&r, 0, sizeof r);
    arch_vcpu_get_regs(v, &r);
    n = snprintf(buf, sizeof buf,
                 "dune: fatal: %s (exit %u) at " ARCH_PC_NAME " %#llx " ARCH_SP_NAME " %#llx", what,
                 v->run->exit_reason, (unsigned long long)arch_regs_pc(&r),
                 (unsigned long long)arch_regs_sp(&r));
    dune_log_line(DUNE_MSG_FATAL, buf, n < (int)sizeof buf ? (size_t)n : sizeof buf - 1);
    signal(SIGABRT, SIG_DFL);
    raise(SIGABRT);
    _exit(134);
}

/* Registers of the current exit. */
static struct arch_regs *regs_get(struct dune_vcpu *v)
{
    struct arch_regs *r = arch_regs_load(v);

    if (!r)
        vcpu_fatal(v, "KVM_GET_REGS failed");
    return r;
}

static void regs_put(struct dune_vcpu *v, struct arch_regs *r)
{
    if (arch_regs_store(v, r) < 0)
        vcpu_fatal(v, "KVM_SET_REGS failed");
}

/* KVM_RUN came back because a signal arrived: deliver it in the guest. */
static void deliver_after_interrupt(struct dune_vcpu *v)
{
    struct arch_regs *r;

    v->run->immediate_exit = 0;
    if (!v->npending)
        return;
    r = regs_get(v);
    signal_deliver_pending(v, r, -1);
    regs_put(v, r);
}

static void handle_exit(struct dune_vcpu *v)
{
    struct dune_exit e;
    struct arch_regs *r;

    arch_exit_decode(v, &e);
    switch (e.kind) {
    case DUNE_EXIT_SYSCALL:
        r = regs_get(v);
        syscall_handle(v, r);
        regs_put(v, r);
        return;
    case DUNE_EXIT_MMIO:
        vcpu_fatal(v, "guest touched the MMIO window");
    case DUNE_EXIT_TRAP:
        r = regs_get(v);
        if (arch_trap_handle(v, r) < 0)
            vcpu_fatal(v, "unhandled guest exception");
        signal_deliver_pending(v, r, -1);
        regs_put(v, r);
        return;
    case DUNE_EXIT_INTR:
        deliver_after_interrupt(v);
        return;
    case DUNE_EXIT_HALT:
        /* The application's own halt at CPL0 (Dune's code has none); the
         * pc is past the instruction. */
        if (dune_vm.mode != DUNE_MODE_CPL0)
            vcpu_fatal(v, "guest halted");
        r = regs_get(v);
        arch_regs_set_pc(r, arch_regs_pc(r) - e.insn_len);
        signal_priv_fault(v, r);
        regs_put(v, r);
        return;
    case DUNE_EXIT_FATAL:
    default:
        vcpu_fatal(v, e.what ? e.what : "unexpected VM exit");
    }
}

/*
 * KVM_RUN failed with EFAULT: the host does not back an access the guest's
 * page tables allow.  Usually another thread is between a forwarded
 * mprotect/munmap/mremap and our copy of it into the guest page tables (it
 * holds dune_vm.lock across both): once that copy is done, the same access
 * is an ordinary guest fault, the SIGSEGV the program would get natively.
 * So wait for it and run again; only an access that keeps failing is the
 * host's SIGBUS (a file mapping past its end).
 */
#define EFAULT_RETRIES 3

static bool efault_is_transient(unsigned *tries)
{
    if (++*tries > EFAULT_RETRIES)
        return false;
    pthread_mutex_lock(&dune_vm.lock);
    pthread_mutex_unlock(&dune_vm.lock);
    return true;
}

void vcpu_run_loop(struct dune_vcpu *v)
{
    unsigned efaults = 0;

    for (;;) {
        int fd = v->fd;
        long r = dune_ioctl(fd, KVM_RUN, 0);

        atomic_fetch_add_explicit(&dune_vm.exits, 1, memory_order_relaxed);
        if (r < 0) {
            /* Another thread moved this vCPU's descriptor (the program
             * raised its RLIMIT_NOFILE past it, fds.c): use the new one. */
            if (fd != v->fd)
                continue;
            /* Our host signal handler queued a signal for the guest. */
            if (r == -EINTR || r == -EAGAIN) {
                deliver_after_interrupt(v);
                continue;
            }
            if (r == -EFAULT) {
                struct arch_regs *regs;

                if (efault_is_transient(&efaults))
                    continue;
                efaults = 0;
                regs = regs_get(v);
                signal_host_fault(v, regs);
                regs_put(v, regs);
                continue;
            }
            vcpu_fatal(v, "KVM_RUN failed");
        }
        efaults = 0;
        handle_exit(v);
    }
}

/* First host code of a thread created inside Dune (on its new vCPU's host
 * stack): the vCPU was fully set up by the parent. */
void __attribute__((noreturn)) vcpu_thread_start(void *arg)
{
    struct dune_vcpu *v = arg;

    dune_self = v;
    vcpu_run_loop(v);
}

/* Entered on the host stack from arch_enter(): the guest continues the
 * thread where arch_enter() was called. */
void __attribute__((noreturn, used)) dune_host_start(struct dune_vcpu *v)
{
    struct arch_regs regs;

    arch_vcpu_entry_regs(v, &regs);
    if (arch_vcpu_set_regs(v, &regs) < 0)
        vcpu_fatal(v, "KVM_SET_REGS failed at entry");
    vcpu_run_loop(v);
}
