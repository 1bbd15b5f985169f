/*
 * kvm_uapi.h - the parts of the Linux KVM user API the LoongArch host side
 * uses, written out locally: Debian 12's headers (Linux 6.1) predate KVM
 * on LoongArch (Linux 6.7) and a cross build has no LoongArch sysroot.
 * Names carry an LA_ prefix so this never clashes with <linux/kvm.h>.
 *
 * Numbers follow include/uapi/linux/kvm.h and
 * arch/loongarch/include/uapi/asm/kvm.h; ioctl numbers use the generic
 * encoding (dir << 30 | size << 16 | type << 8 | nr) that LoongArch uses.
 */
#ifndef LA64_KVM_UAPI_H
#define LA64_KVM_UAPI_H

#include <stdint.h>

#define LA_IOC(dir, type, nr, size) \
    ((unsigned long)(((dir) << 30) | ((size) << 16) | ((type) << 8) | (nr)))
#define LA_IO(nr)          LA_IOC(0U, 0xAEU, (nr), 0U)
#define LA_IOW(nr, size)   LA_IOC(1U, 0xAEU, (nr), (unsigned)(size))
#define LA_IOR(nr, size)   LA_IOC(2U, 0xAEU, (nr), (unsigned)(size))

struct la_kvm_userspace_memory_region {
    uint32_t slot;
    uint32_t flags;
    uint64_t guest_phys_addr;
    uint64_t memory_size;
    uint64_t userspace_addr;
};

struct la_kvm_one_reg {
    uint64_t id;
    uint64_t addr;           /* user pointer to the value */
};

struct la_kvm_device_attr {
    uint32_t flags;
    uint32_t group;
    uint64_t attr;
    uint64_t addr;
};

/* LoongArch struct kvm_regs: 32 GPRs and the PC. */
struct la_kvm_regs {
    uint64_t gpr[32];
    uint64_t pc;
};

/* The start of struct kvm_run (generic layout) and the exits we handle. */
struct la_kvm_run {
    uint8_t request_interrupt_window;
    uint8_t immediate_exit;
    uint8_t padding1[6];
    uint32_t exit_reason;
    uint8_t ready_for_interrupt_injection;
    uint8_t if_flag;
    uint16_t flags;
    uint64_t cr8;
    uint64_t apic_base;
    union {
        struct {
            uint64_t nr;
            uint64_t args[6];
            uint64_t ret;
            uint64_t flags;
        } hypercall;
        struct {
            uint64_t phys_addr;
            uint8_t data[8];
            uint32_t len;
            uint8_t is_write;
        } mmio;
        struct {
            uint32_t suberror;
            uint32_t ndata;
            uint64_t data[16];
        } internal;
        char padding[256];
    } u;
};

#define LA_KVM_API_VERSION             12
#define LA_KVM_GET_API_VERSION         LA_IO(0x00)
#define LA_KVM_CREATE_VM               LA_IO(0x01)
#define LA_KVM_GET_VCPU_MMAP_SIZE      LA_IO(0x04)
#define LA_KVM_CREATE_VCPU             LA_IO(0x41)
#define LA_KVM_SET_USER_MEMORY_REGION  LA_IOW(0x46, sizeof(struct la_kvm_userspace_memory_region))
#define LA_KVM_RUN                     LA_IO(0x80)
#define LA_KVM_GET_REGS                LA_IOR(0x81, sizeof(struct la_kvm_regs))
#define LA_KVM_SET_REGS                LA_IOW(0x82, sizeof(struct la_kvm_regs))
#define LA_KVM_GET_ONE_REG             LA_IOW(0xab, sizeof(struct la_kvm_one_reg))
#define LA_KVM_SET_ONE_REG             LA_IOW(0xac, sizeof(struct la_kvm_one_reg))
#define LA_KVM_SET_DEVICE_ATTR         LA_IOW(0xe1, sizeof(struct la_kvm_device_attr))

#define LA_KVM_EXIT_HYPERCALL          3
#define LA_KVM_EXIT_MMIO               6
#define LA_KVM_EXIT_SHUTDOWN           8
#define LA_KVM_EXIT_FAIL_ENTRY         9
#define LA_KVM_EXIT_INTR               10
#define LA_KVM_EXIT_INTERNAL_ERROR     17
#define LA_KVM_EXIT_SYSTEM_EVENT       24
#define LA_KVM_EXIT_LOONGARCH_IOCSR    38

/* ONE_REG ids: KVM_REG_LOONGARCH | class | KVM_REG_SIZE_U64 | (index << 3). */
#define LA_KVM_REG_LOONGARCH           0x9000000000000000ULL
#define LA_KVM_REG_SIZE_U64            0x0030000000000000ULL
#define LA_KVM_REG_LOONGARCH_CSR       (LA_KVM_REG_LOONGARCH | 0x10000ULL)
#define LA_KVM_CSR_ID(csr)             (LA_KVM_REG_LOONGARCH_CSR | LA_KVM_REG_SIZE_U64 | \
                                        ((uint64_t)(csr) << 3))

/* vCPU attribute: paravirt features the guest may use (Linux >= 6.13 for
 * the user hypercall service). */
#define LA_KVM_LOONGARCH_VCPU_CPUCFG   0
#define LA_CPUCFG_KVM_FEATURE          (0x40000000 + 4)
#define LA_KVM_FEATURE_USER_HCALL      25

/* hvcl code for the user service; see LA64_HVCL_USER_SERVICE. */
#define LA_KVM_HCALL_USER_SERVICE      0x102
#define LA_KVM_HCALL_INVALID_CODE      (~0ULL)   /* -1 */

#endif
