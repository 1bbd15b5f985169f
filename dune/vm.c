/*
 * vm.c - open /dev/kvm, create the process's VM, record why it failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "dune_internal.h"

struct dune_vm dune_vm = {
    .kvm_fd = -1,
    .vm_fd = -1,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .maps_fd = -1,
};

/* The program moved a descriptor onto one of ours: follow ours. */
void dune_fd_renumber(int oldfd, int newfd)
{
    if (dune_vm.kvm_fd == oldfd)
        dune_vm.kvm_fd = newfd;
    if (dune_vm.vm_fd == oldfd)
        dune_vm.vm_fd = newfd;
    if (dune_vm.maps_fd == oldfd)
        dune_vm.maps_fd = newfd;
    vcpu_renumber_fd(oldfd, newfd);
}

void dune_set_error(int err, const char *fmt, ...)
{
    va_list ap;

    dune_vm.error = err;
    va_start(ap, fmt);
    vsnprintf(dune_vm.reason, sizeof dune_vm.reason, fmt, ap);
    va_end(ap);
}

bool dune_verbose(void)
{
    const char *v = getenv("DUNE_VERBOSE");

    return v && *v && strcmp(v, "0") != 0;
}

/* One line, once per process: used for conditions the program survives. */
void dune_warn_once(const char *fmt, ...)
{
    static atomic_flag said = ATOMIC_FLAG_INIT;
    char buf[256];
    va_list ap;
    int n;

    if (atomic_flag_test_and_set(&said))
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    dune_sys3(1 /* write */, 2, buf, n);
}

/*
 * Move a KVM descriptor out of the way: the program expects its own files
 * to start at 3 as they would natively.  We take the lowest free slot in the
 * top quarter of the descriptor limit; if that fails the old one is kept.
 */
int dune_kvm_fd_above(int fd)
{
    struct rlimit rl;
    long floor = 256;
    int nfd;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur > 64)
        floor = (long)rl.rlim_cur - (long)rl.rlim_cur / 4;
    nfd = fcntl(fd, F_DUPFD_CLOEXEC, floor);
    if (nfd < 0) {
        dune_fd_own(fd);
        return fd;
    }
    close(fd);
    dune_fd_own(nfd);
    return nfd;
}

static int check_cap(int fd, long cap)
{
    int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

    return r < 0 ? 0 : r;
}

static int open_kvm(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    int version;

    if (fd < 0) {
        int e = errno;
        dune_set_error(-e, "cannot open /dev/kvm: %s", strerror(e));
        return -e;
    }
    version = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        close(fd);
        dune_set_error(-ENOTSUP, "/dev/kvm speaks API %d, need %d", version, KVM_API_VERSION);
        return -ENOTSUP;
    }
    return dune_kvm_fd_above(fd);
}

/* KVM_CREATE_VM can fail with EINTR when a signal arrives: just retry. */
static int create_vm(int kvm)
{
    int fd, tries = 0;

    do {
        fd = ioctl(kvm, KVM_CREATE_VM, 0);
    } while (fd < 0 && errno == EINTR && ++tries < 100);
    if (fd < 0) {
        int e = errno;
        dune_set_error(-e, "KVM_CREATE_VM failed: %s", strerror(e));
        return -e;
    }
    return dune_kvm_fd_above(fd);
}

static int enable_manual_protect(void)
{
    struct kvm_enable_cap cap = {
        .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
        .args = { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE },
    };

    if (!(check_cap(dune_vm.vm_fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) &
          KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE))
        return -ENOTSUP;
    return ioctl(dune_vm.vm_fd, KVM_ENABLE_CAP, &cap) < 0 ? -errno : 0;
}

static void close_ours(int *fd)
{
    if (*fd >= 0) {
        dune_fd_forget(*fd);
        close(*fd);
    }
    *fd = -1;
}

static void close_vm(void)
{
    close_ours(&dune_vm.vm_fd);
    close_ours(&dune_vm.kvm_fd);
}

int vm_init_locked(void)
{
    int r;

    if (dune_vm.initialized)
        return 0;
    if (dune_vm.error)
        return dune_vm.error; /* failed before: do not retry every time */
    if (getenv("DUNE_DISABLE")) {
        dune_set_error(-ECANCELED, "disabled by DUNE_DISABLE");
        return -ECANCELED;
    }
    r = open_kvm();
    if (r < 0)
        return r;
    dune_vm.kvm_fd = r;
    r = create_vm(dune_vm.kvm_fd);
    if (r < 0) {
        close_vm();
        return r;
    }
    dune_vm.vm_fd = r;
    dune_vm.run_size = ioctl(dune_vm.kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    dune_vm.max_vcpus = check_cap(dune_vm.vm_fd, KVM_CAP_MAX_VCPUS);
    dune_vm.sync_regs = (check_cap(dune_vm.vm_fd, KVM_CAP_SYNC_REGS) & KVM_SYNC_X86_REGS) != 0;
    dune_vm.manual_protect = enable_manual_protect() == 0;
    if (dune_vm.run_size <= 0) {
        dune_set_error(-ENOTSUP, "KVM_GET_VCPU_MMAP_SIZE failed");
        close_vm();
        return -ENOTSUP;
    }
    r = arch_vm_setup();
    if (r < 0) {
        close_vm();
        return r;
    }
    /* Read on every lazy fault: open it now, while descriptors are free. */
    r = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (r < 0) {
        int e = errno;
        dune_set_error(-e, "cannot open /proc/self/maps: %s", strerror(e));
        close_vm();
        return -e;
    }
    dune_vm.maps_fd = dune_kvm_fd_above(r);
    dune_vm.initialized = true;
    dune_vm.generation++;
    return 0;
}

/*
 * No thread is inside any more: give back all the VM holds (descriptors,
 * vCPUs, memslots, page tables, stubs), so a process that left has no
 * Dune descriptors and the next dune_enter() builds a fresh VM.  What the
 * program asked for (signal actions, hooks, fork policy) and the counters
 * stay.  Caller holds dune_vm.lock.
 */
void vm_teardown_locked(void)
{
    if (!dune_vm.initialized)
        return;
    vcpus_free_all();
    slots_reset();
    arch_vm_teardown();
    close_ours(&dune_vm.maps_fd);
    close_vm();
    dune_vm.initialized = false;
    dune_vm.mirrored = false;
    dune_vm.syscall_probed = false;
    dune_vm.syscall_to_cpl0 = false;
    dune_vm.cur_brk = 0;
}

unsigned long dune_vm_generation(void)
{
    return dune_vm.generation;
}

int dune_init(void)
{
    int r;

    pthread_mutex_lock(&dune_vm.lock);
    r = vm_init_locked();
    pthread_mutex_unlock(&dune_vm.lock);
    return r;
}

/*
 * In a forked child the inherited /proc/self/maps descriptor still shows
 * the *parent's* mappings (the file names the process that opened it):
 * lazy faults on memory the child mapped since would find no mapping and
 * raise SIGSEGV (SEGV_MAPERR).  Open the child's own, in the same slot.
 */
static int reopen_maps(void)
{
    long fd = dune_sys6(257 /* openat */, AT_FDCWD, (long)"/proc/self/maps",
                        O_RDONLY | O_CLOEXEC, 0, 0, 0);
    long r;

    if (fd < 0)
        return (int)fd;
    r = dune_sys3(292 /* dup3 */, fd, dune_vm.maps_fd, O_CLOEXEC);
    dune_sys3(3 /* close */, fd, 0, 0);
    return r < 0 ? (int)r : 0;
}

/* In a forked child: the parent's VM cannot be used (KVM binds a VM to the
 * mm that created it).  Make a new one with the same memslots. */
int vm_recreate_after_fork(void)
{
    bool manual = dune_vm.manual_protect;
    int fd, r;

    pthread_mutex_init(&dune_vm.lock, NULL); /* another thread may have held it */
    r = reopen_maps();
    if (r < 0)
        return r;
    dune_sys3(3 /* close */, dune_vm.vm_fd, 0, 0);
    dune_fd_forget(dune_vm.vm_fd);
    fd = create_vm(dune_vm.kvm_fd);
    if (fd < 0)
        return fd;
    dune_vm.vm_fd = fd;
    dune_vm.manual_protect = enable_manual_protect() == 0;
    if (manual && !dune_vm.manual_protect)
        return -ENOTSUP;
    return slots_replay();
}
