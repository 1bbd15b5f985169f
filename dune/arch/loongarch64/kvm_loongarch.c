/*
 * kvm_loongarch.c - host side of Dune on LoongArch64 (see la64_host.h).
 *
 * Cross-compiled only: the build machine has no LoongArch CPU, and QEMU's
 * TCG does not emulate the LVZ virtualization extension.  Builds hosted
 * (a LoongArch Linux box, real headers) or freestanding (clang with no
 * LoongArch sysroot: the few libc entry points are declared here).
 */
#include "la64_host.h"

#if __STDC_HOSTED__
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#else
/* Freestanding cross build: declare what we call, with the asm-generic
 * constants LoongArch uses. */
int open(const char *path, int flags, ...);
int close(int fd);
int ioctl(int fd, unsigned long req, ...);
void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off);
int munmap(void *addr, size_t len);
long syscall(long nr, ...);
int *__errno_location(void);
#define errno (*__errno_location())
#define O_RDWR 02
#define O_CLOEXEC 02000000
#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_SHARED 1
#define MAP_FAILED ((void *)-1)
#define EINVAL 22
#define EIO 5
#define EINTR 4
#endif

/* ioctl that returns -errno instead of -1. */
static long kvm_ioctl(int fd, unsigned long req, void *arg)
{
    int r = ioctl(fd, req, arg);
    return r < 0 ? -errno : r;
}

int la64_vm_create(struct la64_vm *vm)
{
    vm->kvm_fd = vm->vm_fd = vm->vcpu_fd = -1;
    vm->run = NULL;
    vm->next_slot = 0;
    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0)
        return -errno;
    if (kvm_ioctl(vm->kvm_fd, LA_KVM_GET_API_VERSION, NULL) != LA_KVM_API_VERSION)
        return -EINVAL;
    long fd = kvm_ioctl(vm->kvm_fd, LA_KVM_CREATE_VM, NULL);
    if (fd < 0)
        return (int)fd;
    vm->vm_fd = (int)fd;
    fd = kvm_ioctl(vm->vm_fd, LA_KVM_CREATE_VCPU, NULL);   /* vCPU id 0 */
    if (fd < 0)
        return (int)fd;
    vm->vcpu_fd = (int)fd;
    long size = kvm_ioctl(vm->kvm_fd, LA_KVM_GET_VCPU_MMAP_SIZE, NULL);
    if (size < (long)sizeof(struct la_kvm_run))
        return size < 0 ? (int)size : -EINVAL;
    void *run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0);
    if (run == MAP_FAILED)
        return -errno;
    vm->run = run;
    vm->run_size = (size_t)size;
    return 0;
}

void la64_vm_destroy(struct la64_vm *vm)
{
    if (vm->run)
        munmap(vm->run, vm->run_size);
    if (vm->vcpu_fd >= 0) close(vm->vcpu_fd);
    if (vm->vm_fd >= 0) close(vm->vm_fd);
    if (vm->kvm_fd >= 0) close(vm->kvm_fd);
    vm->run = NULL;
    vm->kvm_fd = vm->vm_fd = vm->vcpu_fd = -1;
}

/* GPA == HVA: the guest runtime uses host pointers unchanged, and page
 * tables built by either side hold the same physical addresses. */
int la64_vm_map(struct la64_vm *vm, void *hva, size_t len)
{
    struct la_kvm_userspace_memory_region r = {
        .slot = vm->next_slot,
        .flags = 0,
        .guest_phys_addr = (uint64_t)(uintptr_t)hva,
        .memory_size = len,
        .userspace_addr = (uint64_t)(uintptr_t)hva,
    };
    long rc = kvm_ioctl(vm->vm_fd, LA_KVM_SET_USER_MEMORY_REGION, &r);
    if (rc == 0)
        vm->next_slot++;
    return (int)rc;
}

int la64_vcpu_set_csr(struct la64_vm *vm, uint32_t csr, uint64_t value)
{
    struct la_kvm_one_reg reg = { .id = LA_KVM_CSR_ID(csr), .addr = (uint64_t)(uintptr_t)&value };
    return (int)kvm_ioctl(vm->vcpu_fd, LA_KVM_SET_ONE_REG, &reg);
}

int la64_vcpu_get_csr(struct la64_vm *vm, uint32_t csr, uint64_t *value)
{
    struct la_kvm_one_reg reg = { .id = LA_KVM_CSR_ID(csr), .addr = (uint64_t)(uintptr_t)value };
    return (int)kvm_ioctl(vm->vcpu_fd, LA_KVM_GET_ONE_REG, &reg);
}

int la64_vcpu_enable_user_hcall(struct la64_vm *vm)
{
    uint64_t features = 1ULL << LA_KVM_FEATURE_USER_HCALL;
    struct la_kvm_device_attr attr = {
        .group = LA_KVM_LOONGARCH_VCPU_CPUCFG,
        .attr = LA_CPUCFG_KVM_FEATURE,
        .addr = (uint64_t)(uintptr_t)&features,
    };
    return (int)kvm_ioctl(vm->vcpu_fd, LA_KVM_SET_DEVICE_ATTR, &attr);
}

int la64_vcpu_boot(struct la64_vm *vm, const struct la64_boot_params *p,
                   uint64_t pc, uint64_t sp, uint64_t tp)
{
    struct la64_csr_value v[LA64_BOOT_NCSRS];
    int n = la64_boot_csrs(p, v, LA64_BOOT_NCSRS);
    for (int i = 0; i < n && i < LA64_BOOT_NCSRS; i++) {
        int rc = la64_vcpu_set_csr(vm, v[i].csr, v[i].value);
        if (rc < 0)
            return rc;
    }
    struct la_kvm_regs regs = { .pc = pc };
    regs.gpr[LA64_REG_SP] = sp;
    regs.gpr[2] = tp;                      /* thread pointer: the thread's TLS */
    return (int)kvm_ioctl(vm->vcpu_fd, LA_KVM_SET_REGS, &regs);
}

/* The guest's LA64_HC_SYSCALL carries the GPA (== HVA) of its exception
 * frame: nr in a7, arguments in a0..a5. */
static long serve_syscall(const struct la64_host_ops *ops, uint64_t frame_gpa)
{
    const uint64_t *regs = (const uint64_t *)(uintptr_t)frame_gpa;
    uint64_t args[6];
    for (int i = 0; i < 6; i++)
        args[i] = regs[LA64_REG_A0 + i];
    long nr = (long)regs[LA64_REG_A7];
    if (ops && ops->syscall)
        return ops->syscall(ops->ctx, nr, args);
    long r = syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]);
    return r == -1 ? -errno : r;
}

/* One user-service hypercall: args[0] is our operation. */
static int serve_hypercall(struct la64_vm *vm, const struct la64_host_ops *ops, long *status)
{
    struct la_kvm_run *run = vm->run;
    const uint64_t *a = run->u.hypercall.args;
    if (run->u.hypercall.nr != LA_KVM_HCALL_USER_SERVICE) {
        run->u.hypercall.ret = LA_KVM_HCALL_INVALID_CODE;
        return 0;
    }
    switch (a[0]) {
    case LA64_HC_SYSCALL:
        run->u.hypercall.ret = (uint64_t)serve_syscall(ops, a[1]);
        return 0;
    case LA64_HC_FAULT: {
        unsigned how = (unsigned)a[2];
        int rc = ops && ops->fault
                     ? ops->fault(ops->ctx, a[1], how & 0xff, (how >> 8) & 0xff,
                                  (int)(how >> 16), a[3])
                     : -EIO;
        run->u.hypercall.ret = (uint64_t)(long)rc;
        return rc < 0 ? rc : 0;
    }
    case LA64_HC_EXIT:
        *status = (long)a[1];
        return 1;
    default:
        run->u.hypercall.ret = LA_KVM_HCALL_INVALID_CODE;
        return 0;
    }
}

int la64_vcpu_run(struct la64_vm *vm, const struct la64_host_ops *ops, long *status)
{
    for (;;) {
        long rc = kvm_ioctl(vm->vcpu_fd, LA_KVM_RUN, NULL);
        if (rc == -EINTR)
            continue;
        if (rc < 0)
            return (int)rc;
        switch (vm->run->exit_reason) {
        case LA_KVM_EXIT_HYPERCALL:
            rc = serve_hypercall(vm, ops, status);
            if (rc != 0)
                return rc > 0 ? 0 : (int)rc;
            break;
        case LA_KVM_EXIT_INTR:
            break;
        default:
            /* MMIO, IOCSR, shutdown, internal errors: the runtime never
             * touches devices, so any of these is a bug. */
            return -EIO;
        }
    }
}
