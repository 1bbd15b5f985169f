/*
 * boot.c - the CSR values that put a vCPU into the runtime's mode.
 *
 * One list for both boot paths: the bare-metal test image writes it with
 * csrwr (la64_cpu_init), the host writes it with KVM_SET_ONE_REG before
 * the first KVM_RUN (kvm_loongarch.c).  Portable C.
 */
#include "la64_guest.h"

static int put(struct la64_csr_value *out, int n, int max, uint32_t csr, uint64_t v)
{
    if (n < max) {
        out[n].csr = csr;
        out[n].value = v;
    }
    return n + 1;
}

int la64_boot_csrs(const struct la64_boot_params *p, struct la64_csr_value *out, int max)
{
    int n = 0;
    n = put(out, n, max, LA64_CSR_DMW0, LA64_DMW0_VALUE);
    n = put(out, n, max, LA64_CSR_DMW1, LA64_DMW1_VALUE);
    /* All exceptions at one entry (VS=0), every interrupt masked. */
    n = put(out, n, max, LA64_CSR_ECFG, 0);
    n = put(out, n, max, LA64_CSR_EENTRY, p->exception_va);
    n = put(out, n, max, LA64_CSR_TLBRENTRY, p->refill_pa);
    n = put(out, n, max, LA64_CSR_SAVE2, p->exc_stack_base);
    n = put(out, n, max, LA64_CSR_SAVE3, p->exc_stack_top);
    n = put(out, n, max, LA64_CSR_PWCL, LA64_PWCL_VALUE);
    n = put(out, n, max, LA64_CSR_PWCH, LA64_PWCH_VALUE);
    n = put(out, n, max, LA64_CSR_STLBPS, LA64_PAGE_SHIFT);
    /* The refill handler's tlbfill takes the page size from TLBREHI.PS. */
    n = put(out, n, max, LA64_CSR_TLBREHI, LA64_PAGE_SHIFT);
    n = put(out, n, max, LA64_CSR_ASID, p->asid & 0x3ff);
    n = put(out, n, max, LA64_CSR_PGDL, p->root_pa);
    n = put(out, n, max, LA64_CSR_PGDH, p->root_pa);
    /* Last: paging on, PLV0, interrupts off. */
    n = put(out, n, max, LA64_CSR_CRMD, LA64_CRMD_PAGING);
    return n;
}
