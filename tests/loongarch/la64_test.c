/*
 * la64_test.c - bare-metal checks of the LoongArch guest runtime under QEMU.
 *
 * Runs at PLV0 with the runtime's own vectors, page tables, PME handler
 * and read-and-clear.  Prints one line per check on the UART:
 *     LA64CHECK <name> PASS|FAIL <detail>
 * then "LA64DONE pass=<n> fail=<m>".  "LA64FATAL ..." means an unexpected
 * exception; the host harness stops there.
 */
#include "la64_guest.h"
#include "la64_csr.h"

#define UART_BASE (LA64_DMW_UNCACHED_BASE | 0x1fe001e0UL)

/* ---- UART output ---------------------------------------------------------- */
static void uart_putc(char c)
{
    volatile uint8_t *u = (volatile uint8_t *)UART_BASE;
    while (!(u[5] & 0x20)) { }   /* LSR.THRE */
    u[0] = (uint8_t)c;
}

static void put_str(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

static void put_hex(uint64_t v)
{
    put_str("0x");
    int shift = 60;
    while (shift > 0 && !((v >> shift) & 0xf))
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        uart_putc("0123456789abcdef"[(v >> shift) & 0xf]);
}

static void put_dec(uint64_t v)
{
    char buf[24];
    int n = 0;
    do { buf[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n)
        uart_putc(buf[--n]);
}

/* ---- check bookkeeping ------------------------------------------------------- */
static unsigned npass, nfail;

/* One report line; detail is printed by the caller between begin and end. */
static void report_begin(const char *name, int ok)
{
    put_str("LA64CHECK ");
    put_str(name);
    put_str(ok ? " PASS " : " FAIL ");
    if (ok) npass++; else nfail++;
}

static void report_end(void) { put_str("\n"); }

/* ---- memory: page-table pool, data frames, exception stack ------------------ */
#define PT_POOL_PAGES 96
#define NPAGES 48            /* tracked test pages: 3 regions of 16 */
#define REGION_PAGES 16
#define NREGIONS 3
#define WORDS (LA64_PAGE_SIZE / 8)   /* 64-bit words per page */

static uint64_t pt_pool[PT_POOL_PAGES][512] __attribute__((aligned(4096)));
static unsigned pt_pool_used;
static uint8_t frames[NPAGES][LA64_PAGE_SIZE] __attribute__((aligned(LA64_PAGE_SIZE)));
static uint8_t ro_frame[LA64_PAGE_SIZE] __attribute__((aligned(LA64_PAGE_SIZE)));
static uint8_t late_frame[LA64_PAGE_SIZE] __attribute__((aligned(LA64_PAGE_SIZE)));
static uint8_t exc_stack[16384] __attribute__((aligned(16)));
static struct la64_pgtable pt;

static void *pool_alloc(void *ctx)
{
    (void)ctx;
    return pt_pool_used < PT_POOL_PAGES ? pt_pool[pt_pool_used++] : NULL;
}

/* Regions chosen so the walks differ at every level: one inside a single
 * PMD, one straddling a PUD (1 GiB) boundary, one at the top of the lower
 * half (its own PGD slot). */
static const uint64_t region_base[NREGIONS] = {
    0x0000000010000000UL,
    0x0000554000000000UL - 8 * LA64_PAGE_SIZE,
    0x00007ffffff00000UL,
};

static uint64_t page_va(unsigned i)
{
    return region_base[i / REGION_PAGES] + (i % REGION_PAGES) * LA64_PAGE_SIZE;
}

static uint64_t phys(const void *p) { return la64_virt_to_phys(p); }

/* Map a page and drop any TLB entry cached for it before. */
static int map_page(uint64_t va, uint64_t pa, unsigned flags)
{
    int rc = la64_pt_map(&pt, va, pa, flags);
    la64_tlb_flush_page(va);
    return rc;
}

/* ---- access helpers: one instruction each, so a fault hook can skip it ---- */
static uint64_t load64(uint64_t va)
{
    return *(volatile uint64_t *)(uintptr_t)va;
}

static void store64(uint64_t va, uint64_t v)
{
    *(volatile uint64_t *)(uintptr_t)va = v;
}

#define SENTINEL 0x5e5e5e5e5e5e5e5eUL

static uint64_t probe_load(uint64_t va)
{
    uint64_t v = SENTINEL;
    __asm__ volatile("ld.d %0, %1, 0" : "+r"(v) : "r"(va) : "memory");
    return v;
}

static void probe_store(uint64_t va, uint64_t v)
{
    __asm__ volatile("st.d %0, %1, 0" :: "r"(v), "r"(va) : "memory");
}

/* ---- fault hook and fake host ---------------------------------------------- */
static struct la64_fault last_fault;
static unsigned fault_count;

static int test_fault_hook(struct la64_frame *f, const struct la64_fault *info)
{
    last_fault = *info;
    fault_count++;
    f->era += 4;   /* skip the probing instruction */
    return 1;
}

/* A hook that itself stores to a clean tracked page: the PME it raises is
 * an exception inside the exception handler. */
static uint64_t nested_va;
static uint64_t nested_sp_seen;

static int nesting_fault_hook(struct la64_frame *f, const struct la64_fault *info)
{
    uint64_t sp;
    __asm__ volatile("move %0, $sp" : "=r"(sp));
    nested_sp_seen = sp;
    store64(nested_va, 0x4e4e);
    return test_fault_hook(f, info);
}

static struct { uint64_t nr, args[6]; unsigned calls; } seen_syscall;

static void halt(void)
{
    for (;;)
        __asm__ volatile("idle 0");
}

/* Stands in for hvcl (no LVZ under TCG): records forwarded syscalls and
 * treats any fault that reaches the host as fatal for the test. */
static long test_host_call(long op, long a1, long a2, long a3, long a4, long a5)
{
    (void)a5;
    if (op == LA64_HC_SYSCALL) {
        const struct la64_frame *f =
            (const struct la64_frame *)(uintptr_t)((uint64_t)a1 + LA64_DMW_CACHED_BASE);
        seen_syscall.nr = f->regs[LA64_REG_A7];
        for (int i = 0; i < 6; i++)
            seen_syscall.args[i] = f->regs[LA64_REG_A0 + i];
        seen_syscall.calls++;
        return 0x1234;
    }
    put_str("LA64FATAL unexpected fault addr=");
    put_hex((uint64_t)a1);
    put_str(" how=");
    put_hex((uint64_t)a2);
    put_str(" era=");
    put_hex((uint64_t)a3);
    put_str(" ecode=");
    put_hex((uint64_t)a4);
    put_str("\n");
    halt();
    return 0;
}

/* ---- deterministic randomness ------------------------------------------------ */
static uint64_t rng_state = 0x9e3779b97f4a7c15UL;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* Read-and-clear over the three regions into one 48-bit mask. */
static uint64_t collect_all(long *count)
{
    uint64_t mask = 0;
    long n = 0;
    for (unsigned r = 0; r < NREGIONS; r++) {
        uint64_t word = 0;
        n += la64_dirty_collect(&pt, region_base[r], REGION_PAGES, &word);
        mask |= word << (r * REGION_PAGES);
    }
    if (count)
        *count = n;
    return mask;
}

static int popcount64(uint64_t v)
{
    int n = 0;
    for (; v; v &= v - 1)
        n++;
    return n;
}

/* ---- the checks ----------------------------------------------------------------- */
static void check_boot_paging(void)
{
    uint64_t crmd = la64_csr_read(LA64_CSR_CRMD);
    uint64_t eentry = la64_csr_read(LA64_CSR_EENTRY);
    uint64_t pgdl = la64_csr_read(LA64_CSR_PGDL);
    int ok = (crmd & LA64_CRMD_PG) && !(crmd & LA64_CRMD_DA) &&
             (crmd & LA64_CRMD_PLV_MASK) == 0 &&
             eentry == (uint64_t)(uintptr_t)la64_exception_entry &&
             pgdl == pt.root_pa;
    report_begin("boot_paging", ok);
    put_str("crmd="); put_hex(crmd);
    put_str(" eentry="); put_hex(eentry);
    put_str(" pgdl="); put_hex(pgdl);
    report_end();
}

static void check_refill(void)
{
    la64_tlb_flush_all();
    unsigned bad = NPAGES, present_before = 0;
    for (unsigned i = 0; i < NPAGES; i++) {
        uint64_t elo;
        present_before += (unsigned)la64_tlb_probe(page_va(i), &elo);
        ((volatile uint64_t *)frames[i])[0] = 0xa5a5000000000000UL | i;
    }
    for (unsigned i = 0; i < NPAGES && bad == NPAGES; i++)
        if (load64(page_va(i)) != (0xa5a5000000000000UL | i))
            bad = i;
    report_begin("refill_translates", bad == NPAGES && present_before == 0);
    put_str("pages="); put_dec(NPAGES);
    put_str(" cached_before_access="); put_dec(present_before);
    if (bad != NPAGES) { put_str(" wrong_at_va="); put_hex(page_va(bad)); }
    report_end();

    unsigned wrong = 0;
    uint64_t first_bad_elo = 0, first_bad_va = 0;
    for (unsigned i = 0; i < NPAGES; i++) {
        uint64_t elo = 0;
        /* Drop the pair's entry, so this load goes through refill (an
         * earlier refill in the same TLB set may have evicted it). */
        la64_tlb_flush_page(page_va(i));
        (void)load64(page_va(i));
        int hit = la64_tlb_probe(page_va(i), &elo);
        int good = hit && (elo & LA64_PTE_PPN_MASK) == phys(frames[i]) &&
                   (elo & LA64_PTE_V) && !(elo & LA64_PTE_D);
        if (!good && !wrong++) {
            first_bad_elo = elo;
            first_bad_va = page_va(i);
        }
    }
    report_begin("refill_tlb_entry", wrong == 0);
    put_str("wrong="); put_dec(wrong);
    if (wrong) {
        put_str(" first_va="); put_hex(first_bad_va);
        put_str(" elo="); put_hex(first_bad_elo);
    }
    report_end();
}

static void check_first_store(void)
{
    const unsigned k = 3;
    uint64_t va = page_va(k);
    (void)load64(va);                        /* cached with D=0 */
    uint64_t pme0 = la64_stats.page_modify;
    store64(va + 8, 0x1111);
    uint64_t pme1 = la64_stats.page_modify;
    uint64_t *ptep = la64_pt_lookup(&pt, va);
    int landed = ((volatile uint64_t *)frames[k])[1] == 0x1111;
    report_begin("first_store_pme", pme1 - pme0 == 1 && ptep && (*ptep & LA64_PTE_D) && landed);
    put_str("pme="); put_dec(pme1 - pme0);
    put_str(" pte="); put_hex(ptep ? *ptep : 0);
    put_str(" landed="); put_dec((uint64_t)landed);
    report_end();

    store64(va + 16, 0x2222);
    store64(va + LA64_PAGE_SIZE - 8, 0x3333);
    uint64_t pme2 = la64_stats.page_modify;
    report_begin("later_store_no_trap", pme2 == pme1);
    put_str("extra_pme="); put_dec(pme2 - pme1);
    report_end();
}

static void check_collect_once(void)
{
    long n1, n2;
    uint64_t m1 = collect_all(&n1);
    uint64_t m2 = collect_all(&n2);
    report_begin("collect_exact_once", m1 == (1UL << 3) && n1 == 1 && m2 == 0 && n2 == 0);
    put_str("first="); put_hex(m1);
    put_str(" second="); put_hex(m2);
    report_end();

    uint64_t pme0 = la64_stats.page_modify;
    store64(page_va(3), 0x4444);
    uint64_t pme1 = la64_stats.page_modify;
    uint64_t m3 = collect_all(NULL);
    report_begin("store_traps_again", pme1 - pme0 == 1 && m3 == (1UL << 3));
    put_str("pme="); put_dec(pme1 - pme0);
    put_str(" collected="); put_hex(m3);
    report_end();
}

/* No entry for a cleaned page may still allow stores: either it is gone,
 * or it is a fresh one reloaded with D=0. */
static void check_invtlb(void)
{
    uint64_t written = 0;
    for (unsigned i = 0; i < NPAGES; i += 5) {
        store64(page_va(i), i);
        written |= 1UL << i;
    }
    unsigned d_before = 0, stale = 0, d_after_reload = 0;
    for (unsigned i = 0; i < NPAGES; i += 5) {
        uint64_t elo;
        if (la64_tlb_probe(page_va(i), &elo) && (elo & LA64_PTE_D))
            d_before++;
    }
    uint64_t got = collect_all(NULL);
    for (unsigned i = 0; i < NPAGES; i += 5) {
        uint64_t elo;
        if (la64_tlb_probe(page_va(i), &elo) && (elo & LA64_PTE_D))
            stale++;
        (void)load64(page_va(i));
        if (la64_tlb_probe(page_va(i), &elo) && (elo & LA64_PTE_D))
            d_after_reload++;
    }
    unsigned expect = (unsigned)popcount64(written);
    report_begin("invtlb_no_stale_entry",
                 got == written && d_before > 0 && stale == 0 && d_after_reload == 0);
    put_str("dirty_entries_before="); put_dec(d_before);
    put_str("/"); put_dec(expect);
    put_str(" stale_after="); put_dec(stale);
    put_str(" dirty_after_reload="); put_dec(d_after_reload);
    report_end();
}

#define ROUNDS 24

/* The property: for random sets of pages, stored to at random offsets
 * (and other pages only read), read-and-clear returns exactly the stored
 * set, every stored page raised exactly one PME, and the data landed in
 * the right frames. */
static void check_dirty_property(void)
{
    static uint64_t shadow[NPAGES][WORDS];
    for (unsigned i = 0; i < NPAGES; i++)
        for (unsigned w = 0; w < WORDS; w++)
            shadow[i][w] = ((volatile uint64_t *)frames[i])[w];
    (void)collect_all(NULL);

    unsigned bad_round = ROUNDS, total_pages = 0;
    uint64_t want_bad = 0, got_bad = 0, pme_bad = 0;
    for (unsigned r = 0; r < ROUNDS && bad_round == ROUNDS; r++) {
        uint64_t want = rng() & rng() & ((1UL << NPAGES) - 1);   /* ~1/4 of pages */
        if (r == 0) want = 0;                                     /* empty set too */
        if (r == 1) want = (1UL << NPAGES) - 1;                   /* and all of them */
        uint64_t pme0 = la64_stats.page_modify;
        for (unsigned i = 0; i < NPAGES; i++) {
            if (!(want >> i & 1)) {
                (void)load64(page_va(i) + (rng() % WORDS) * 8);    /* reads never dirty */
                continue;
            }
            unsigned nstores = 1 + (unsigned)(rng() % 4);
            for (unsigned s = 0; s < nstores; s++) {
                unsigned w = (unsigned)(rng() % WORDS);
                uint64_t v = rng();
                store64(page_va(i) + w * 8, v);
                shadow[i][w] = v;
            }
        }
        uint64_t pme = la64_stats.page_modify - pme0;
        long n;
        uint64_t got = collect_all(&n);
        total_pages += (unsigned)popcount64(want);
        if (got != want || pme != (uint64_t)popcount64(want) || n != popcount64(want)) {
            bad_round = r; want_bad = want; got_bad = got; pme_bad = pme;
        }
    }
    unsigned data_bad = 0;
    for (unsigned i = 0; i < NPAGES; i++)
        for (unsigned w = 0; w < WORDS; w++)
            if (((volatile uint64_t *)frames[i])[w] != shadow[i][w])
                data_bad++;
    report_begin("dirty_property", bad_round == ROUNDS && data_bad == 0);
    put_str("rounds="); put_dec(ROUNDS);
    put_str(" dirty_pages_total="); put_dec(total_pages);
    put_str(" bad_words="); put_dec(data_bad);
    if (bad_round != ROUNDS) {
        put_str(" bad_round="); put_dec(bad_round);
        put_str(" want="); put_hex(want_bad);
        put_str(" got="); put_hex(got_bad);
        put_str(" pme="); put_dec(pme_bad);
    }
    report_end();
}

static void check_faults(void)
{
    la64_set_fault_hook(test_fault_hook);

    /* Unmapped PTE in region 0's PTE table, and an address whose PGD slot
     * is empty (the walk runs through the shared empty tables). */
    static const uint64_t holes[2] = { 0x0000000010200000UL, 0x0000300000000000UL };
    int ok = 1;
    for (int h = 0; h < 2; h++) {
        unsigned before = fault_count;
        uint64_t v = probe_load(holes[h]);
        ok &= fault_count == before + 1 && v == SENTINEL && last_fault.addr == holes[h] &&
              last_fault.access == LA64_ACC_READ && last_fault.code == LA64_SEGV_MAPERR &&
              last_fault.sig == 11 && last_fault.ecode == LA64_ECODE_PIL;
    }
    report_begin("fault_unmapped_load", ok);
    put_str("addr="); put_hex(last_fault.addr);
    put_str(" ecode="); put_dec(last_fault.ecode);
    put_str(" faults="); put_dec(fault_count);
    report_end();

    uint64_t hole = region_base[0] + 100 * LA64_PAGE_SIZE;
    unsigned before = fault_count;
    probe_store(hole, 1);
    ok = fault_count == before + 1 && last_fault.addr == hole &&
         last_fault.access == LA64_ACC_WRITE && last_fault.code == LA64_SEGV_MAPERR;
    report_begin("fault_unmapped_store", ok);
    put_str("addr="); put_hex(last_fault.addr);
    put_str(" access="); put_dec(last_fault.access);
    put_str(" code="); put_dec(last_fault.code);
    report_end();

    /* Read-only page: reads work, a store is an access error, not a PME
     * that marks it dirty. */
    uint64_t ro = region_base[0] + 200 * LA64_PAGE_SIZE;
    ((volatile uint64_t *)ro_frame)[0] = 0x77;
    map_page(ro, phys(ro_frame), LA64_MAP_READ);
    before = fault_count;
    uint64_t pme0 = la64_stats.page_modify;
    uint64_t r = probe_load(ro);
    probe_store(ro, 0x88);
    uint64_t *ptep = la64_pt_lookup(&pt, ro);
    ok = r == 0x77 && fault_count == before + 1 && last_fault.addr == ro &&
         last_fault.code == LA64_SEGV_ACCERR && last_fault.access == LA64_ACC_WRITE &&
         ptep && !(*ptep & LA64_PTE_D) && ((volatile uint64_t *)ro_frame)[0] == 0x77 &&
         la64_stats.page_modify == pme0;
    report_begin("fault_readonly_store", ok);
    put_str("read="); put_hex(r);
    put_str(" code="); put_dec(last_fault.code);
    put_str(" pte="); put_hex(ptep ? *ptep : 0);
    report_end();

    /* Touch an unmapped page (the TLB now caches V=0 for its pair), map it
     * behind the TLB's back, touch again: the page-invalid handler must see
     * the valid PTE, flush and retry instead of reporting a fault. */
    uint64_t late = region_base[0] + 300 * LA64_PAGE_SIZE;
    ((volatile uint64_t *)late_frame)[0] = 0x99;
    (void)probe_load(late);
    before = fault_count;
    uint64_t retry0 = la64_stats.invalid_retry;
    la64_pt_map(&pt, late, phys(late_frame), LA64_MAP_READ | LA64_MAP_WRITE);
    uint64_t v = probe_load(late);
    ok = v == 0x99 && fault_count == before && la64_stats.invalid_retry == retry0 + 1;
    report_begin("late_map_retry", ok);
    put_str("value="); put_hex(v);
    put_str(" retries="); put_dec(la64_stats.invalid_retry - retry0);
    report_end();

    /* Fault -> hook -> store to a clean page -> PME while still in the
     * first handler.  Both must complete: the PME sets D, the outer fault
     * resumes after the faulting load. */
    (void)collect_all(NULL);
    nested_va = page_va(9) + 64;
    la64_set_fault_hook(nesting_fault_hook);
    before = fault_count;
    uint64_t pme_n = la64_stats.page_modify;
    uint64_t nv = probe_load(holes[0]);
    uint64_t nmask = collect_all(NULL);
    la64_set_fault_hook(test_fault_hook);
    int on_exc_stack = nested_sp_seen >= (uint64_t)(uintptr_t)exc_stack &&
                       nested_sp_seen < (uint64_t)(uintptr_t)(exc_stack + sizeof exc_stack);
    ok = nv == SENTINEL && fault_count == before + 1 && la64_stats.page_modify == pme_n + 1 &&
         nmask == (1UL << 9) && ((volatile uint64_t *)frames[9])[8] == 0x4e4e && on_exc_stack;
    report_begin("nested_pme_in_hook", ok);
    put_str("pme="); put_dec(la64_stats.page_modify - pme_n);
    put_str(" collected="); put_hex(nmask);
    put_str(" hook_on_exc_stack="); put_dec((uint64_t)on_exc_stack);
    report_end();

    /* A page with a cached D=1 entry is unmapped: the store must fault and
     * must not reach the old frame. */
    const unsigned k = 7;
    uint64_t va = page_va(k);
    store64(va, 0xabc);
    uint64_t elo = 0;
    int was_writable = la64_tlb_probe(va, &elo) && (elo & LA64_PTE_D);
    map_page(va, 0, 0);
    before = fault_count;
    probe_store(va, 0xdef);
    ok = was_writable && fault_count == before + 1 && last_fault.addr == va &&
         ((volatile uint64_t *)frames[k])[0] == 0xabc;
    report_begin("unmap_no_stale", ok);
    put_str("was_writable="); put_dec((uint64_t)was_writable);
    put_str(" faults="); put_dec(fault_count - before);
    put_str(" frame="); put_hex(((volatile uint64_t *)frames[k])[0]);
    report_end();
    map_page(va, phys(frames[k]), LA64_MAP_READ | LA64_MAP_WRITE);

    la64_set_fault_hook(NULL);
}

static void check_syscall(void)
{
    register long a0 __asm__("$a0") = 11;
    register long a1 __asm__("$a1") = 22;
    register long a2 __asm__("$a2") = 33;
    register long a3 __asm__("$a3") = 44;
    register long a4 __asm__("$a4") = 55;
    register long a5 __asm__("$a5") = 66;
    register long a7 __asm__("$a7") = 64;
    register long s0 __asm__("$s0") = 0x5050;
    uint64_t calls0 = seen_syscall.calls;
    __asm__ volatile("syscall 0"
                     : "+r"(a0), "+r"(s0)
                     : "r"(a1), "r"(a2), "r"(a3), "r"(a4), "r"(a5), "r"(a7)
                     : "memory");
    int ok = a0 == 0x1234 && s0 == 0x5050 && seen_syscall.calls == calls0 + 1 &&
             seen_syscall.nr == 64;
    for (int i = 0; i < 6; i++)
        ok &= seen_syscall.args[i] == (uint64_t)(11 * (i + 1));
    report_begin("syscall_forward", ok);
    put_str("ret="); put_hex((uint64_t)a0);
    put_str(" nr="); put_dec(seen_syscall.nr);
    put_str(" a5="); put_dec(seen_syscall.args[5]);
    report_end();
}

/* ---- boot ---------------------------------------------------------------------- */
static int setup(void)
{
    la64_host_call = test_host_call;
    if (la64_pt_init(&pt, LA64_DMW_CACHED_BASE, pool_alloc, NULL) != 0)
        return -1;
    for (unsigned i = 0; i < NPAGES; i++)
        if (la64_pt_map(&pt, page_va(i), phys(frames[i]), LA64_MAP_READ | LA64_MAP_WRITE) != 0)
            return -1;
    struct la64_boot_params bp = {
        .root_pa = pt.root_pa,
        .refill_pa = phys((const void *)la64_tlb_refill),
        .exception_va = (uint64_t)(uintptr_t)la64_exception_entry,
        .exc_stack_base = (uint64_t)(uintptr_t)exc_stack,
        .exc_stack_top = (uint64_t)(uintptr_t)(exc_stack + sizeof exc_stack),
        .asid = 0,
    };
    la64_cpu_init(&bp);
    la64_pgtable_activate(&pt);
    return 0;
}

void la64t_main(void);

void la64t_main(void)
{
    put_str("LA64BOOT LoongArch guest runtime test\n");
    if (setup() != 0) {
        put_str("LA64FATAL setup failed (page-table pool too small?)\n");
        halt();
    }
    check_boot_paging();
    check_refill();
    check_first_store();
    check_collect_once();
    check_invtlb();
    check_dirty_property();
    check_faults();
    check_syscall();
    put_str("LA64DONE pass=");
    put_dec(npass);
    put_str(" fail=");
    put_dec(nfail);
    put_str(" tables=");
    put_dec(pt.pages_used);
    put_str("\n");
    halt();
}
