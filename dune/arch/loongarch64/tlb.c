/*
 * tlb.c - CPU setup and TLB maintenance for the guest runtime.
 *
 * The LoongArch TLB caches even/odd page pairs: one entry maps the 8 KiB
 * aligned pair containing a page, with TLBELO0 for the even page and
 * TLBELO1 for the odd one.  So rewriting or invalidating "the entry of a
 * page" always concerns both PTEs of its pair.
 */
#include "la64_guest.h"
#include "la64_csr.h"

struct la64_pgtable *la64_active_pt;

/* csrwr needs the CSR number as an immediate: one case per boot CSR. */
static void write_boot_csr(uint32_t csr, uint64_t v)
{
    switch (csr) {
    case LA64_CSR_ECFG:      la64_csr_write(LA64_CSR_ECFG, v); break;
    case LA64_CSR_EENTRY:    la64_csr_write(LA64_CSR_EENTRY, v); break;
    case LA64_CSR_TLBRENTRY: la64_csr_write(LA64_CSR_TLBRENTRY, v); break;
    case LA64_CSR_SAVE2:     la64_csr_write(LA64_CSR_SAVE2, v); break;
    case LA64_CSR_SAVE3:     la64_csr_write(LA64_CSR_SAVE3, v); break;
    case LA64_CSR_PWCL:      la64_csr_write(LA64_CSR_PWCL, v); break;
    case LA64_CSR_PWCH:      la64_csr_write(LA64_CSR_PWCH, v); break;
    case LA64_CSR_STLBPS:    la64_csr_write(LA64_CSR_STLBPS, v); break;
    case LA64_CSR_TLBREHI:   la64_csr_write(LA64_CSR_TLBREHI, v); break;
    case LA64_CSR_ASID:      la64_csr_write(LA64_CSR_ASID, v); break;
    case LA64_CSR_PGDL:      la64_csr_write(LA64_CSR_PGDL, v); break;
    case LA64_CSR_PGDH:      la64_csr_write(LA64_CSR_PGDH, v); break;
    default: break;   /* CRMD, DMW*: already set by whoever booted us */
    }
}

void la64_cpu_init(const struct la64_boot_params *p)
{
    struct la64_csr_value v[LA64_BOOT_NCSRS];
    int n = la64_boot_csrs(p, v, LA64_BOOT_NCSRS);
    for (int i = 0; i < n && i < LA64_BOOT_NCSRS; i++)
        write_boot_csr(v[i].csr, v[i].value);
    la64_tlb_flush_all();
}

void la64_pgtable_activate(struct la64_pgtable *pt)
{
    la64_active_pt = pt;
    la64_csr_write(LA64_CSR_PGDL, pt->root_pa);
    la64_tlb_flush_all();
}

void la64_tlb_flush_all(void)
{
    la64_invtlb(LA64_INVTLB_ALL, 0, 0);
}

/* Drops the entry of va's pair whatever its ASID-match/global state. */
void la64_tlb_flush_page(uint64_t va)
{
    uint64_t asid = la64_csr_read(LA64_CSR_ASID) & 0x3ff;
    la64_invtlb(LA64_INVTLB_ADDR_ASID_G, asid, va);
}

/* Point TLBEHI at va's pair and search; returns TLBIDX. */
static uint64_t tlb_search(uint64_t va)
{
    la64_csr_write(LA64_CSR_TLBEHI, va & ~(2 * LA64_PAGE_SIZE - 1));
    la64_tlbsrch();
    return la64_csr_read(LA64_CSR_TLBIDX);
}

void la64_tlb_update(uint64_t va, const uint64_t *ptep)
{
    const uint64_t *pair = (const uint64_t *)((uintptr_t)ptep & ~(uintptr_t)15);
    uint64_t idx = tlb_search(va);
    la64_csr_write(LA64_CSR_TLBELO0, pair[0]);
    la64_csr_write(LA64_CSR_TLBELO1, pair[1]);
    uint64_t ps = (uint64_t)LA64_PAGE_SHIFT << LA64_TLBIDX_PS_SHIFT;
    if (idx & LA64_TLBIDX_NE) {
        /* Not cached (evicted meanwhile): a fresh random slot is fine. */
        la64_csr_write(LA64_CSR_TLBIDX, ps);
        la64_tlbfill();
    } else {
        la64_csr_write(LA64_CSR_TLBIDX, (idx & LA64_TLBIDX_INDEX_MASK) | ps);
        la64_tlbwr();
    }
}

int la64_tlb_probe(uint64_t va, uint64_t *elo)
{
    uint64_t idx = tlb_search(va);
    if (idx & LA64_TLBIDX_NE)
        return 0;
    la64_tlbrd();
    if (la64_csr_read(LA64_CSR_TLBIDX) & LA64_TLBIDX_NE)
        return 0;
    *elo = (va & LA64_PAGE_SIZE) ? la64_csr_read(LA64_CSR_TLBELO1)
                                 : la64_csr_read(LA64_CSR_TLBELO0);
    return 1;
}

/* Runtime pointers are either DMW-window aliases or, under Dune, host
 * virtual addresses that equal guest-physical ones. */
uint64_t la64_virt_to_phys(const void *p)
{
    uint64_t v = (uint64_t)(uintptr_t)p;
    if ((v >> 60) == (LA64_DMW_CACHED_BASE >> 60) ||
        (v >> 60) == (LA64_DMW_UNCACHED_BASE >> 60))
        return v & LA64_PA_MASK;
    return v;
}
