/*
 * la64_host.h - host side of Dune on LoongArch64: the process creates a VM
 * with the LoongArch KVM API (Linux >= 6.7, LVZ hardware), mirrors its
 * memory with GPA == HVA, points the vCPU at the guest runtime
 * (la64_guest.h) with KVM_SET_ONE_REG and serves hypercalls.
 *
 * Counterparts of the x86-64 arch hooks in dune/dune_internal.h:
 *   arch_vm_setup        -> la64_vm_create (+ la64_vcpu_enable_user_hcall)
 *   arch_vcpu_setup      -> la64_vcpu_boot (CSRs from la64_boot_csrs)
 *   vcpu_run_loop        -> la64_vcpu_run
 *   arch_flush_tlb       -> done by the guest itself (invtlb at PLV0)
 * Only cross-compiled here: nothing in this file can run without LVZ.
 */
#ifndef LA64_HOST_H
#define LA64_HOST_H

#include <stddef.h>
#include <stdint.h>
#include "la64_guest.h"
#include "kvm_uapi.h"

struct la64_vm {
    int kvm_fd, vm_fd, vcpu_fd;
    struct la_kvm_run *run;
    size_t run_size;
    uint32_t next_slot;
};

/* What the run loop does with the guest's requests. */
struct la64_host_ops {
    /* Perform system call nr; return its result or -errno. */
    long (*syscall)(void *ctx, long nr, const uint64_t args[6]);
    /* A fault the guest could not resolve: deliver the signal (or fix the
     * mapping and return 0 to let the guest retry). */
    int (*fault)(void *ctx, uint64_t addr, unsigned access, unsigned code, int sig,
                 uint64_t era);
    void *ctx;
};

int la64_vm_create(struct la64_vm *vm);
void la64_vm_destroy(struct la64_vm *vm);
/* One memslot for [hva, hva+len) at guest-physical address hva. */
int la64_vm_map(struct la64_vm *vm, void *hva, size_t len);
int la64_vcpu_set_csr(struct la64_vm *vm, uint32_t csr, uint64_t value);
int la64_vcpu_get_csr(struct la64_vm *vm, uint32_t csr, uint64_t *value);
/* Ask KVM to pass "hvcl 0x102" to us as KVM_EXIT_HYPERCALL. */
int la64_vcpu_enable_user_hcall(struct la64_vm *vm);
/* Load the runtime's CSRs, then pc, sp, tp. */
int la64_vcpu_boot(struct la64_vm *vm, const struct la64_boot_params *p,
                   uint64_t pc, uint64_t sp, uint64_t tp);
/* Run until the guest asks to exit (its status in *status) or an error. */
int la64_vcpu_run(struct la64_vm *vm, const struct la64_host_ops *ops, long *status);

#endif
