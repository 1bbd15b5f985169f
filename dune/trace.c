/*
 * trace.c - Dune steps aside for a debugger.
 *
 * A tracer (gdb, strace) sees a thread's host side: its registers, its
 * single-step flag and its debug registers are the host thread's, not the
 * guest's, and a breakpoint instruction in guest code traps into Dune's
 * exception stub, not into the kernel.  So a traced thread leaves Dune and
 * continues natively with exactly the guest's registers, where the kernel
 * and the tracer work as they always do:
 *  - after a successful PTRACE_TRACEME (gdb's inferior before its exec,
 *    gdb's own ptrace self-tests);
 *  - at a breakpoint trap while a tracer is attached (gdb attached later,
 *    or a program started under gdb that entered Dune): the architecture's
 *    trap code (arch_trap_handle) runs the breakpoint instruction again,
 *    natively, and the kernel gives the tracer its SIGTRAP at the same
 *    address as natively.
 * The thread's vCPU is not handed back: the thread is on its host stack
 * until the very last instruction here.  The VM stays until the process
 * execs or exits; other threads stay inside (only the trapping one leaves).
 * The thread counts as a native one (dune_native_threads), so the Dune
 * dirty trackers report every page dirty rather than miss its writes.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/syscall.h>

#include "dune_internal.h"

/* TracerPid from /proc/self/status, read with raw calls (host side:
 * errno belongs to the guest). */
bool trace_attached(void)
{
    char buf[2048];
    long fd, n;
    const char *p;

    fd = dune_sys6(SYS_openat, AT_FDCWD, (long)"/proc/self/status", O_RDONLY | O_CLOEXEC, 0, 0,
                   0);
    if (fd < 0)
        return false;
    n = dune_sys3(SYS_read, fd, buf, sizeof buf - 1);
    dune_sys3(SYS_close, fd, 0, 0);
    if (n <= 0)
        return false;
    buf[n] = 0;
    for (p = buf; *p; p++) {
        if (p[0] == 'T' && !__builtin_strncmp(p, "TracerPid:", 10)) {
            for (p += 10; *p == ' ' || *p == '\t'; p++)
                ;
            return *p >= '1' && *p <= '9';
        }
        while (*p && *p != '\n')
            p++;
        if (!*p)
            break;
    }
    return false;
}

/* Leave Dune for good on this thread and continue natively with n.  A
 * signal held for the guest goes back to the kernel, which delivers it
 * natively once the guest's mask is on. */
void __attribute__((noreturn)) trace_step_aside(struct dune_vcpu *v, const struct arch_regs *n)
{
    uint64_t mask;

    if (arch_fpu_save(v) < 0)
        __builtin_memset(v->fpu, 0, sizeof *v->fpu);
    mask = signal_leave(v);
    /* Its writes are invisible to the dirty trackers from here on: they
     * see dune_native_threads() and report every page dirty. */
    syscall_count_native_thread();
    dune_self = NULL;
    arch_fpu_restore_host(v->fpu);
    signal_set_host_mask(mask);
    arch_native_resume(n);
}
