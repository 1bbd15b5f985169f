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
    dune_log_renumber(oldfd, newfd);
}

void dune_set_error(int err, const char *fmt, ...)
{
    va_list ap;

    dune_vm.error = err;
    va_start(ap, fmt);
    vsnprintf(dune_vm.reason, sizeof dune_vm.reason, fmt, ap);
    va_end(ap);
}

static int check_cap(int fd, long cap)
{
    int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

    return r < 0 ? 0 : r;
}

/* Our descriptors are made with the soft limit lifted and kept above it
 * (fds.c): a program that uses all of its own still gets a VM. */
static int open_above(const char *path, int flags)
{
    struct rlimit rl;
    int r = dune_fd_begin(&rl, true);

    if (r < 0)
        return r;
    r = open(path, flags | O_CLOEXEC);
    return dune_fd_end(&rl, r < 0 ? -errno : r);
}

static void close_ours(int *fd)
{
    if (*fd >= 0) {
        dune_fd_forget(*fd);
        close(*fd);
    }
    *fd = -1;
}

static int open_kvm(void)
{
    int fd = open_above("/dev/kvm", O_RDWR);
    int version;

    if (fd < 0) {
        dune_set_error(fd, "cannot open /dev/kvm: %s", strerror(-fd));
        return fd;
    }
    version = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        close_ours(&fd);
        dune_set_error(-ENOTSUP, "/dev/kvm speaks API %d, need %d", version, KVM_API_VERSION);
        return -ENOTSUP;
    }
    return fd;
}

/* KVM_CREATE_VM can fail with EINTR when a signal arrives: just retry. */
static int create_vm(int kvm)
{
    struct rlimit rl;
    int fd, tries = 0;

    if ((fd = dune_fd_begin(&rl, true)) < 0) {
        dune_set_error(fd, "no descriptor for the VM above RLIMIT_NOFILE");
        return fd;
    }
    do {
        fd = ioctl(kvm, KVM_CREATE_VM, 0);
    } while (fd < 0 && errno == EINTR && ++tries < 100);
    fd = dune_fd_end(&rl, fd < 0 ? -errno : fd);
    if (fd < 0)
        dune_set_error(fd, "KVM_CREATE_VM failed: %s", strerror(-fd));
    return fd;
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
    /* /dev/kvm, the VM, the maps reader and a first vCPU, or none. */
    r = dune_fd_room(4);
    if (r < 0)
        return r;
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
    r = open_above("/proc/self/maps", O_RDONLY);
    if (r < 0) {
        dune_set_error(r, "cannot open /proc/self/maps: %s", strerror(-r));
        close_vm();
        return r;
    }
    dune_vm.maps_fd = r;
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
    int fd = open_above("/proc/self/maps", O_RDONLY);

    if (fd < 0)
        return fd;
    close_ours(&dune_vm.maps_fd);
    dune_vm.maps_fd = fd;
    return 0;
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
    dune_sys3(SYS_close, dune_vm.vm_fd, 0, 0);
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
