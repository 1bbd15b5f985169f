/*
 * fds.c - keep the program's descriptor calls away from Dune's own.
 *
 * Dune's descriptors (/dev/kvm, the VM, each vCPU, /proc/self/maps) sit at
 * the top of the descriptor range, close-on-exec.  Natively the program
 * never opened them, so close() on one fails with EBADF, close_range()
 * skips them, and dup2()/dup3() onto one first moves ours out of the way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/syscall.h>

#include "dune_internal.h"

#define MAX_DUNE_FDS 1100

/* Every descriptor Dune owns, so the checks below need no locks. */
static int *slot_of(int fd);

static int owned[MAX_DUNE_FDS];
static unsigned nowned;

/* Slots of forgotten descriptors are reused: a process may build and
 * release many VMs in turn. */
void dune_fd_own(int fd)
{
    int *s = slot_of(-1);

    if (fd < 0)
        return;
    if (s)
        *s = fd;
    else if (nowned < MAX_DUNE_FDS)
        owned[nowned++] = fd;
}

void dune_fd_forget(int fd)
{
    int *s = slot_of(fd);

    if (s)
        *s = -1;
}

static int *slot_of(int fd)
{
    for (unsigned i = 0; i < nowned; i++)
        if (owned[i] == fd)
            return &owned[i];
    return NULL;
}

bool dune_fd_is_ours(int fd)
{
    return fd >= 0 && slot_of(fd) != NULL;
}

/* Move one of ours to another free slot at the top; tell its user. */
static long relocate(int fd)
{
    long nfd = dune_sys3(SYS_fcntl, fd, F_DUPFD_CLOEXEC, fd + 1);
    int *s = slot_of(fd);

    if (nfd < 0)
        return nfd;
    dune_fd_renumber(fd, (int)nfd);
    *s = (int)nfd;
    dune_sys3(SYS_close, fd, 0, 0);
    return 0;
}

/* close_range over [first, last] without ours: one call per gap. */
static long close_range_around(unsigned first, unsigned last, unsigned flags)
{
    unsigned lo = first;
    long r = 0;

    while (lo <= last) {
        unsigned hi = last;
        for (unsigned i = 0; i < nowned; i++)
            if (owned[i] >= 0 && (unsigned)owned[i] >= lo && (unsigned)owned[i] <= hi)
                hi = (unsigned)owned[i] - 1;
        if (!dune_fd_is_ours((int)lo)) {
            r = dune_sys3(SYS_close_range, lo, hi, flags);
            if (r < 0)
                return r;
        }
        if (hi == ~0u || hi + 1 > last)
            break;
        lo = hi + 1;
        while (dune_fd_is_ours((int)lo) && lo < last)
            lo++;
        if (dune_fd_is_ours((int)lo))
            break;
    }
    return r;
}

/* Returns 1 and sets *ret when the call touched one of ours. */
int dune_fd_syscall(const struct kvm_regs *r, long *ret)
{
    int fd;

    switch (r->rax) {
    case SYS_close:
        if (!dune_fd_is_ours((int)r->rdi))
            return 0;
        *ret = -EBADF;
        return 1;
    case SYS_close_range:
        if (r->rdx & CLOSE_RANGE_CLOEXEC)
            return 0; /* ours are close-on-exec already */
        *ret = close_range_around((unsigned)r->rdi, (unsigned)r->rsi, (unsigned)r->rdx);
        return 1;
    case SYS_dup2:
    case SYS_dup3:
        fd = (int)r->rsi;
        if (!dune_fd_is_ours(fd) || (int)r->rdi == fd)
            return 0;
        if (relocate(fd) < 0) {
            *ret = -EBUSY;
            return 1;
        }
        return 0; /* now forward it */
    }
    return 0;
}
