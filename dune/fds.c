/*
 * fds.c - Dune's own descriptors: out of the program's range, and out of
 * reach of its descriptor calls.
 *
 * Natively the program never has /dev/kvm, the VM, a vCPU or the
 * /proc/self/maps reader open.  So ours live at or above the soft
 * RLIMIT_NOFILE (from 1024 up when the limit is lower and the hard limit
 * allows), close-on-exec.  There the kernel keeps the program away
 * from them by itself: open() and its kin never return such a number, so
 * the program gets exactly the descriptors (and the EMFILE) it would get
 * natively; a scan of 0..limit-1 does not find them; dup2/dup3 onto them
 * fail with EBADF and F_DUPFD refuses such a floor, as natively.
 *
 * Only a raised soft limit lets a descriptor be made up there, so Dune
 * lifts it for the moment of making one (dune_fd_begin .. dune_fd_end),
 * just past its own, and puts it back.  That needs the hard limit to
 * leave room; when it does not, the VM is not built (the program runs
 * natively and is told why) and a thread gets no vCPU (pthread_create
 * fails with EAGAIN), rather than take numbers that are the program's.
 *
 * What remains is guarded below: numbers read from /proc/self/fd, which
 * does list ours (close, dup, fcntl, close_range on them act as if they
 * were not open), and a program that raises its soft limit past ours
 * (they move above the new limit if the hard limit leaves room).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "dune_internal.h"

#define MAX_DUNE_FDS 1100
#define DUNE_FD_RESERVE (4 + 1024) /* the VM's own and a vCPU for each thread KVM allows */
#define DUNE_FD_BASE 1024          /* the lowest number ours take, room permitting */

/* Every descriptor Dune owns, read without locks by the guards below.
 * Slots of forgotten descriptors are reused: a process may build and
 * release many VMs in turn. */
static int owned[MAX_DUNE_FDS];
static unsigned nowned;
static int lowest = INT_MAX; /* the smallest of them: most checks stop here */

/* Serialises changes of the soft limit, Dune's and the program's. */
static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;

/* In a forked child: another thread of the parent may have held it. */
void dune_fd_after_fork(void)
{
    pthread_mutex_init(&limit_lock, NULL);
}

static int *slot_of(int fd)
{
    for (unsigned i = 0; i < nowned; i++)
        if (owned[i] == fd)
            return &owned[i];
    return NULL;
}

static void find_lowest(void)
{
    int lo = INT_MAX;

    for (unsigned i = 0; i < nowned; i++)
        if (owned[i] >= 0 && owned[i] < lo)
            lo = owned[i];
    lowest = lo;
}

void dune_fd_own(int fd)
{
    int *s = slot_of(-1);

    if (fd < 0)
        return;
    if (s)
        *s = fd;
    else if (nowned < MAX_DUNE_FDS)
        owned[nowned++] = fd;
    if (fd < lowest)
        lowest = fd;
}

void dune_fd_forget(int fd)
{
    int *s = fd >= 0 ? slot_of(fd) : NULL;

    if (!s)
        return;
    *s = -1;
    if (fd == lowest)
        find_lowest();
}

bool dune_fd_is_ours(int fd)
{
    return fd >= lowest && slot_of(fd) != NULL;
}

/* ---- the soft limit ---- */

static int get_nofile(struct rlimit *rl)
{
    return (int)dune_sys6(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, (long)rl, 0, 0);
}

static int set_nofile(const struct rlimit *rl)
{
    return (int)dune_sys6(SYS_prlimit64, 0, RLIMIT_NOFILE, (long)rl, 0, 0, 0);
}

/*
 * Where ours start: at the soft limit, but not below DUNE_FD_BASE while
 * the hard limit leaves room there.  A program that lowered its limit
 * may still probe numbers above it that it had open before (Python's
 * test_close_fds_when_max_fd_is_lowered does): small ones are its own.
 */
static rlim_t base_of(const struct rlimit *rl)
{
    if (rl->rlim_cur < DUNE_FD_BASE && rl->rlim_max >= DUNE_FD_BASE + DUNE_FD_RESERVE)
        return DUNE_FD_BASE;
    return rl->rlim_cur;
}

/* How many of ours sit at or above `floor`. */
static unsigned owned_from(rlim_t floor)
{
    unsigned n = 0;

    for (unsigned i = 0; i < nowned; i++)
        if (owned[i] >= 0 && (rlim_t)owned[i] >= floor)
            n++;
    return n;
}

/* Numbers in [lo, hi) that are open. */
static bool any_open(rlim_t lo, rlim_t hi)
{
    for (rlim_t fd = lo; fd < hi; fd++)
        if (dune_sys3(SYS_fcntl, fd, F_GETFD, 0) >= 0)
            return true;
    return false;
}

/*
 * Can `more` descriptors of ours be placed above the soft limit?  Room
 * there is what the hard limit leaves, or what raising the hard limit
 * gives (CAP_SYS_RESOURCE: it is put back at once, ours stay above it).
 * Where soft == hard and the range is large, as some systems set every
 * process (20000/20000 here, 1048576 in containers), room is made once
 * by lowering the soft limit by DUNE_FD_RESERVE, at most 1/8 of it: the
 * program then sees a limit that it can really use up, and no scan below
 * it finds ours.  Otherwise fail, saying why: the caller runs natively.
 */
int dune_fd_room(unsigned more)
{
    struct rlimit rl = { 0, 0 }, up = { 0, 0 };
    rlim_t need;
    int r = -EMFILE;

    pthread_mutex_lock(&limit_lock);
    if (get_nofile(&rl) < 0)
        goto out;
    need = base_of(&rl) + owned_from(base_of(&rl)) + more;
    up = (struct rlimit){ need, need };
    if (need <= rl.rlim_max || (set_nofile(&up) == 0 && set_nofile(&rl) == 0)) {
        r = 0;
        goto out;
    }
    if (owned_from(rl.rlim_cur) == 0 && rl.rlim_cur == rl.rlim_max &&
        rl.rlim_cur >= 8 * DUNE_FD_RESERVE &&
        !any_open(rl.rlim_cur - DUNE_FD_RESERVE, rl.rlim_cur)) {
        up = (struct rlimit){ rl.rlim_cur - DUNE_FD_RESERVE, rl.rlim_max };
        if (set_nofile(&up) == 0) {
            r = 0;
            goto out;
        }
    }
out:
    pthread_mutex_unlock(&limit_lock);
    if (r < 0)
        dune_set_error(r, "RLIMIT_NOFILE %llu (hard %llu) leaves no room for Dune's "
                       "descriptors; lower the soft limit to make some",
                       (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
    else if (rl.rlim_cur > up.rlim_cur)
        dune_msg(DUNE_MSG_NOTE, "dune: soft RLIMIT_NOFILE lowered from %llu to %llu to make "
                 "room for Dune's descriptors", (unsigned long long)rl.rlim_cur,
                 (unsigned long long)up.rlim_cur);
    return r;
}

/*
 * Open a window for one new descriptor of ours: the soft limit goes up
 * just past those we hold, so the descriptor can be made even when the
 * program uses all of its own (it lands above them) and, if it lands
 * below, be moved up.  Fails with -EMFILE when the hard limit leaves no
 * room, or (wait == false) when another window is open.
 */
int dune_fd_begin(struct rlimit *saved, bool wait)
{
    struct rlimit up;

    if (wait)
        pthread_mutex_lock(&limit_lock);
    else if (pthread_mutex_trylock(&limit_lock) != 0)
        return -EMFILE;
    if (get_nofile(saved) < 0)
        goto fail;
    up = *saved;
    up.rlim_cur = base_of(saved) + owned_from(base_of(saved)) + 1;
    if (up.rlim_cur > up.rlim_max)
        up.rlim_max = up.rlim_cur; /* only with CAP_SYS_RESOURCE */
    if (set_nofile(&up) < 0)
        goto fail;
    return 0;
fail:
    pthread_mutex_unlock(&limit_lock);
    return -EMFILE;
}

/* The lowest free number at or above the program's limit.  Ours are
 * packed there, unless the program holds numbers above its own limit
 * (it lowered the limit after opening them): then look higher. */
static long dup_above(long fd, const struct rlimit *saved)
{
    struct rlimit up = *saved;
    rlim_t base = base_of(saved);
    long nfd = dune_sys3(SYS_fcntl, fd, F_DUPFD_CLOEXEC, base);

    if (nfd == -EMFILE && saved->rlim_max > base + owned_from(base) + 1) {
        up.rlim_cur = saved->rlim_max;
        set_nofile(&up);
        nfd = dune_sys3(SYS_fcntl, fd, F_DUPFD_CLOEXEC, base);
    }
    return nfd;
}

/*
 * Close the window: `fd`, made in it, moves above the program's limit if
 * it landed below (the old number is closed), and becomes ours.  Returns
 * its number, or fd itself if negative (only the limit is restored then).
 */
int dune_fd_end(const struct rlimit *saved, long fd)
{
    if (fd >= 0 && (rlim_t)fd < base_of(saved)) {
        long nfd = dup_above(fd, saved);
        dune_sys3(SYS_close, fd, 0, 0);
        fd = nfd;
    }
    set_nofile(saved);
    pthread_mutex_unlock(&limit_lock);
    if (fd >= 0)
        dune_fd_own((int)fd);
    return (int)fd;
}

/* Move one of ours that sits below the soft limit above it; tell its
 * user.  Caller holds limit_lock. */
static long lift(int *slot, const struct rlimit *rl)
{
    struct rlimit up = *rl;
    int fd = *slot;
    long nfd;

    up.rlim_cur = base_of(rl) + owned_from(base_of(rl)) + 1;
    if (up.rlim_cur > up.rlim_max)
        up.rlim_max = up.rlim_cur; /* only with CAP_SYS_RESOURCE */
    if (set_nofile(&up) < 0)
        return -EMFILE;
    nfd = dup_above(fd, rl);
    set_nofile(rl);
    if (nfd < 0)
        return nfd;
    *slot = (int)nfd;
    dune_fd_renumber(fd, (int)nfd); /* a vCPU thread retries KVM_RUN on the new one */
    dune_sys3(SYS_close, fd, 0, 0);
    find_lowest();
    return 0;
}

/*
 * The program set its own RLIMIT_NOFILE (setrlimit, or prlimit64 on
 * itself).  A lowered limit leaves ours above it; a raised one may now
 * cover some: move those above, or say once why they stay.
 */
static long set_limit(const struct dune_syscall *sc)
{
    struct rlimit rl;
    long ret;

    pthread_mutex_lock(&dune_vm.lock); /* no VM is built meanwhile */
    pthread_mutex_lock(&limit_lock);
    ret = dune_sys6(sc->nr, (long)sc->args[0], (long)sc->args[1], (long)sc->args[2],
                    (long)sc->args[3], 0, 0);
    if (ret == 0 && get_nofile(&rl) == 0 && (rlim_t)lowest < rl.rlim_cur) {
        for (unsigned i = 0; i < nowned; i++) {
            if (owned[i] < 0 || (rlim_t)owned[i] >= rl.rlim_cur)
                continue;
            if (lift(&owned[i], &rl) < 0) {
                /* Java and Go raise the soft limit to the hard one at
                 * start: no warning on their stderr, a note for those
                 * who ask. */
                static atomic_flag said = ATOMIC_FLAG_INIT;
                if (!atomic_flag_test_and_set(&said))
                    dune_msg(DUNE_MSG_NOTE, "dune: RLIMIT_NOFILE raised to %llu with no room "
                             "above it: Dune's descriptors stay below the limit",
                             (unsigned long long)rl.rlim_cur);
                break;
            }
        }
    }
    pthread_mutex_unlock(&limit_lock);
    pthread_mutex_unlock(&dune_vm.lock);
    return ret;
}

static bool is_self(long pid)
{
    return pid == 0 || pid == dune_sys3(SYS_getpid, 0, 0, 0);
}

/* ---- the program's calls on our numbers ---- */

/* close_range over [first, last] without ours: one call per gap. */
static long close_range_around(unsigned first, unsigned last, unsigned flags)
{
    unsigned lo = first;

    while (lo <= last) {
        unsigned hi = last;
        bool ours = false;
        long r;

        for (unsigned i = 0; i < nowned; i++) {
            unsigned o = (unsigned)owned[i];
            if (owned[i] >= 0 && o >= lo && o <= hi) {
                hi = o;
                ours = true;
            }
        }
        if (!ours)
            return dune_sys3(SYS_close_range, lo, last, flags);
        if (hi > lo && (r = dune_sys3(SYS_close_range, lo, hi - 1, flags)) < 0)
            return r;
        if (hi == last)
            break;
        lo = hi + 1;
    }
    return 0;
}

/* A dup2/dup3 onto one of ours: the kernel refuses numbers at or above
 * the limit itself; below it (after a raise without room) ours moves. */
static long make_way(int fd)
{
    struct rlimit rl;
    int *slot;
    long r = -EBUSY;

    pthread_mutex_lock(&dune_vm.lock); /* lift() renumbers vCPUs */
    pthread_mutex_lock(&limit_lock);
    slot = slot_of(fd);
    if (slot && get_nofile(&rl) == 0 && (rlim_t)fd < rl.rlim_cur)
        r = lift(slot, &rl);
    pthread_mutex_unlock(&limit_lock);
    pthread_mutex_unlock(&dune_vm.lock);
    return r < 0 ? -EBUSY : 0;
}

/*
 * Returns 1 and sets *ret when the guest's call touched one of ours (or
 * the descriptor limit); 0 to forward it as it is.  F_DUPFD and friends
 * pick a free number below the limit, never one of ours: not guarded.
 */
int dune_fd_syscall(const struct dune_syscall *sc, long *ret)
{
    const uint64_t *a = sc->args;

    switch (sc->nr) {
    case SYS_close:
    case SYS_dup:
    case SYS_fcntl:
        if (!dune_fd_is_ours((int)a[0]))
            return 0;
        *ret = -EBADF;
        return 1;
#ifdef SYS_dup2
    case SYS_dup2:
#endif
    case SYS_dup3:
        if (dune_fd_is_ours((int)a[1]) && (int)a[0] != (int)a[1] &&
            make_way((int)a[1]) < 0) {
            *ret = -EBUSY;
            return 1;
        }
        if (!dune_fd_is_ours((int)a[0]))
            return 0;
        *ret = -EBADF;
        return 1;
    case SYS_close_range:
        if ((a[2] & CLOSE_RANGE_CLOEXEC) || (unsigned)a[1] < (unsigned)lowest ||
            (unsigned)a[0] > (unsigned)a[1])
            return 0; /* ours are close-on-exec already, out of range, or EINVAL */
        *ret = close_range_around((unsigned)a[0], (unsigned)a[1], (unsigned)a[2]);
        return 1;
#ifdef SYS_setrlimit
    case SYS_setrlimit:
#endif
        if (a[0] != RLIMIT_NOFILE || !a[1])
            return 0;
        *ret = set_limit(sc);
        return 1;
    case SYS_prlimit64:
        if (a[1] != RLIMIT_NOFILE || !a[2] || !is_self((long)a[0]))
            return 0;
        *ret = set_limit(sc);
        return 1;
    }
    return 0;
}
