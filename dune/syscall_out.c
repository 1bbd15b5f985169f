/*
 * syscall_out.c - which guest memory a forwarded system call wrote.
 *
 * The host kernel writes a syscall's results straight into the process's
 * pages, bypassing the guest MMU: guest dirty bits and the KVM dirty log
 * never see those writes.  A dirty-tracking client registers a hook and we
 * report every output buffer of the calls below once they succeed.
 * Calls not listed either write nothing into caller memory, or write only
 * small structures programs keep on the stack.  What cannot be covered:
 * ioctl() outputs (their size depends on the driver) and asynchronous
 * completions (io_uring, AIO) that land after the call returned.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/resource.h>
#include <signal.h>
#include <linux/stat.h>

#include "dune_internal.h"

static dune_write_fn write_hook;

void dune_set_host_write_hook(dune_write_fn fn)
{
    __atomic_store_n(&write_hook, fn, __ATOMIC_RELEASE);
}

static void out(dune_write_fn fn, uint64_t addr, uint64_t len)
{
    if (addr && len)
        fn((const void *)addr, (size_t)len);
}

/* The first `done` bytes of an iovec array were filled. */
static void out_iov(dune_write_fn fn, uint64_t iov_addr, uint64_t cnt, long done)
{
    const struct iovec *iov = (const struct iovec *)iov_addr;

    for (uint64_t i = 0; i < cnt && done > 0; i++) {
        size_t n = iov[i].iov_len < (size_t)done ? iov[i].iov_len : (size_t)done;
        out(fn, (uintptr_t)iov[i].iov_base, n);
        done -= (long)n;
    }
}

static void out_msghdr(dune_write_fn fn, uint64_t addr, long done)
{
    const struct msghdr *m = (const struct msghdr *)addr;

    out_iov(fn, (uintptr_t)m->msg_iov, m->msg_iovlen, done);
    out(fn, (uintptr_t)m->msg_name, m->msg_namelen);
    out(fn, (uintptr_t)m->msg_control, m->msg_controllen);
    out(fn, addr, sizeof *m); /* namelen, controllen, flags are updated */
}

void syscall_report_outputs(const struct dune_syscall *sc)
{
    dune_write_fn fn = __atomic_load_n(&write_hook, __ATOMIC_ACQUIRE);
    const uint64_t *a = sc->args;
    long ret = sc->ret;

    if (!fn || dune_failed(ret))
        return;
    switch (sc->nr) {
    case SYS_read:
    case SYS_pread64:
#ifdef SYS_readlink
    case SYS_readlink:
#endif
        out(fn, a[1], (uint64_t)ret);
        break;
    case SYS_recvfrom:
        out(fn, a[1], (uint64_t)ret);
        if (a[4]) {
            out(fn, a[4], 128); /* sockaddr_storage at most */
            out(fn, a[5], sizeof(socklen_t));
        }
        break;
    case SYS_getrandom:
    case SYS_getcwd:
        out(fn, a[0], (uint64_t)ret);
        break;
    case SYS_readlinkat:
        out(fn, a[2], (uint64_t)ret);
        break;
    case SYS_readv:
    case SYS_preadv:
    case SYS_preadv2:
        out_iov(fn, a[1], a[2], ret);
        break;
    case SYS_recvmsg:
        out_msghdr(fn, a[1], ret);
        break;
    case SYS_getdents64:
        out(fn, a[1], (uint64_t)ret);
        break;
#ifdef SYS_stat
    case SYS_stat:
#endif
#ifdef SYS_fstat
    case SYS_fstat:
#endif
#ifdef SYS_lstat
    case SYS_lstat:
#endif
        out(fn, a[1], sizeof(struct stat));
        break;
#ifdef SYS_newfstatat
    case SYS_newfstatat:
#endif
        out(fn, a[2], sizeof(struct stat));
        break;
    case SYS_statx:
        out(fn, a[4], sizeof(struct statx));
        break;
#ifdef SYS_pipe
    case SYS_pipe:
#endif
    case SYS_pipe2:
        out(fn, a[0], 2 * sizeof(int));
        break;
    case SYS_socketpair:
        out(fn, a[3], 2 * sizeof(int));
        break;
#ifdef SYS_poll
    case SYS_poll:
#endif
    case SYS_ppoll:
        out(fn, a[0], a[1] * sizeof(struct pollfd));
        break;
#ifdef SYS_epoll_wait
    case SYS_epoll_wait:
#endif
    case SYS_epoll_pwait:
        out(fn, a[1], (uint64_t)ret * sizeof(struct epoll_event));
        break;
    case SYS_wait4:
        out(fn, a[1], sizeof(int));
        out(fn, a[3], sizeof(struct rusage));
        break;
    case SYS_accept:
    case SYS_accept4:
    case SYS_getsockname:
    case SYS_getpeername:
        out(fn, a[1], 128);
        out(fn, a[2], sizeof(socklen_t));
        break;
    case SYS_getsockopt:
        out(fn, a[3], 256);
        out(fn, a[4], sizeof(socklen_t));
        break;
    case SYS_waitid:
        out(fn, a[2], sizeof(siginfo_t));
        out(fn, a[4], sizeof(struct rusage));
        break;
    case SYS_rt_sigtimedwait:
        out(fn, a[1], sizeof(siginfo_t));
        break;
    case SYS_getrusage:
        out(fn, a[1], sizeof(struct rusage));
        break;
    case SYS_recvmmsg: {
        struct mmsghdr *mv = (struct mmsghdr *)a[1];
        for (long i = 0; i < ret; i++) {
            out_msghdr(fn, (uintptr_t)&mv[i].msg_hdr, mv[i].msg_len);
            out(fn, (uintptr_t)&mv[i].msg_len, sizeof mv[i].msg_len);
        }
        break;
    }
#ifdef SYS_select
    case SYS_select:
#endif
    case SYS_pselect6:
        for (int i = 0; i < 3; i++) /* readfds, writefds, exceptfds */
            out(fn, i == 0 ? a[1] : i == 1 ? a[2] : a[3], (a[0] + 7) / 8);
        break;
    case SYS_io_getevents:
        out(fn, a[3], (uint64_t)ret * 32); /* struct io_event */
        break;
    case SYS_process_vm_readv:
        out_iov(fn, a[1], a[2], ret);
        break;
    case SYS_msgrcv:
        out(fn, a[1], sizeof(long) + (uint64_t)ret);
        break;
    case SYS_mq_timedreceive:
        out(fn, a[1], (uint64_t)ret);
        out(fn, a[3], sizeof(unsigned));
        break;
    case SYS_clock_gettime:
    case SYS_gettimeofday:
        out(fn, a[1], 16);
        if (sc->nr == SYS_gettimeofday)
            out(fn, a[0], 16);
        break;
    }
}
