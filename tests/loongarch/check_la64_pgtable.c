/*
 * check_la64_pgtable.c - host-side tests of the portable LoongArch runtime
 * parts: page-table building (pgtable.c) and boot CSR values (boot.c).
 *
 * The key check replays what the hardware walker does during TLB refill,
 * driven only by the PWCL/PWCH values the runtime programs (field by
 * field, as lddir/ldpte decode them), and compares it with the software
 * walk.  Tables live in host memory with virt_offset 0, i.e. "physical"
 * addresses are host pointers, as under Dune (GPA == HVA).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "la64_guest.h"

#define POOL_PAGES 1024

struct pool { uint8_t *base; unsigned used, limit; };

static void *pool_alloc(void *ctx)
{
    struct pool *p = ctx;
    if (p->used >= p->limit)
        return NULL;
    return p->base + (size_t)(p->used++) * LA64_TABLE_SIZE;
}

static struct pool pool;
static struct la64_pgtable pt;

static void setup(void)
{
    pool.base = aligned_alloc(LA64_TABLE_SIZE, POOL_PAGES * LA64_TABLE_SIZE);
    ck_assert_ptr_nonnull(pool.base);
    memset(pool.base, 0xcc, POOL_PAGES * LA64_TABLE_SIZE);   /* tables must not rely on zeroed memory */
    pool.used = 0;
    pool.limit = POOL_PAGES;
    ck_assert_int_eq(la64_pt_init(&pt, 0, pool_alloc, &pool), 0);
}

static void teardown(void)
{
    free(pool.base);
}

static uint64_t rng_state;
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* A random page-aligned lower-half user address (VA bits 47:14). */
static uint64_t random_va(void)
{
    return rng() & 0x00007fffffffc000UL;
}

static uint64_t field(uint64_t v, unsigned lo, unsigned width)
{
    return (v >> lo) & ((1UL << width) - 1);
}

/* One lddir step: index from the fields of the given walker level. */
static uint64_t hw_lddir(uint64_t base, uint64_t va, int level)
{
    uint64_t dir_base, dir_width;
    switch (level) {
    case 1: dir_base = field(LA64_PWCL_VALUE, 10, 5); dir_width = field(LA64_PWCL_VALUE, 15, 5); break;
    case 2: dir_base = field(LA64_PWCL_VALUE, 20, 5); dir_width = field(LA64_PWCL_VALUE, 25, 5); break;
    case 3: dir_base = field(LA64_PWCH_VALUE, 0, 6);  dir_width = field(LA64_PWCH_VALUE, 6, 6); break;
    default: dir_base = field(LA64_PWCH_VALUE, 12, 6); dir_width = field(LA64_PWCH_VALUE, 18, 6); break;
    }
    uint64_t index = (va >> dir_base) & ((1UL << dir_width) - 1);
    return ((const uint64_t *)(uintptr_t)base)[index] & LA64_PA_MASK;
}

/* The refill handler: lddir 4, 3, 1, then ldpte of va's half of the pair. */
static uint64_t hw_refill(uint64_t va)
{
    uint64_t t = pt.root_pa;
    t = hw_lddir(t, va, 4);
    t = hw_lddir(t, va, 3);
    t = hw_lddir(t, va, 1);
    uint64_t ptbase = field(LA64_PWCL_VALUE, 0, 5), ptwidth = field(LA64_PWCL_VALUE, 5, 5);
    uint64_t index = (va >> ptbase) & ((1UL << ptwidth) - 1);
    return ((const uint64_t *)(uintptr_t)t)[index];
}

START_TEST(test_walker_config)
{
    /* The walker fields must describe exactly our layout. */
    ck_assert_uint_eq(field(LA64_PWCL_VALUE, 0, 5), LA64_PAGE_SHIFT);
    ck_assert_uint_eq(field(LA64_PWCL_VALUE, 5, 5), 9);
    ck_assert_uint_eq(field(LA64_PWCL_VALUE, 10, 5), LA64_PT_SHIFT(1));
    ck_assert_uint_eq(field(LA64_PWCH_VALUE, 0, 6), LA64_PT_SHIFT(2));
    ck_assert_uint_eq(field(LA64_PWCH_VALUE, 12, 6), LA64_PT_SHIFT(3));
    ck_assert_uint_eq(field(LA64_PWCL_VALUE, 30, 2), 0);     /* 64-bit PTEs */
    ck_assert_uint_eq(LA64_PWCL_VALUE >> 32, 0);
    /* Together the levels cover the 48-bit VA space. */
    ck_assert_uint_ge(LA64_PT_SHIFT(3) + 9, 48);
}
END_TEST

START_TEST(test_empty_table_walks_to_zero)
{
    ck_assert_uint_eq(pt.pages_used, 4);
    rng_state = 0x1234567;
    for (int i = 0; i < 1000; i++) {
        uint64_t va = random_va();
        ck_assert_uint_eq(la64_pt_walk(&pt, va), 0);
        ck_assert_uint_eq(hw_refill(va), 0);
        ck_assert_ptr_null(la64_pt_lookup(&pt, va));
    }
}
END_TEST

START_TEST(test_map_matches_hardware_walk)
{
    enum { N = 400 };
    static uint64_t vas[N], pas[N];
    rng_state = 0xfeedface;
    for (int i = 0; i < N; i++) {
        /* Half of them clustered, so tables are shared as well as fresh. */
        vas[i] = (i % 2) ? random_va() : 0x10000000UL + (rng() % 4096) * LA64_PAGE_SIZE;
        pas[i] = (rng() & 0x0000fffffffffUL) << LA64_PAGE_SHIFT & LA64_PTE_PPN_MASK;
        for (int j = 0; j < i; j++)
            if (vas[j] == vas[i])
                vas[i] = random_va();
        ck_assert_int_eq(la64_pt_map(&pt, vas[i], pas[i], LA64_MAP_READ | LA64_MAP_WRITE), 0);
    }
    for (int i = 0; i < N; i++) {
        uint64_t pte = la64_pt_walk(&pt, vas[i]);
        ck_assert_uint_eq(pte, hw_refill(vas[i]));
        ck_assert_uint_eq(pte & LA64_PTE_PPN_MASK, pas[i]);
        ck_assert(pte & LA64_PTE_V);
        ck_assert(pte & LA64_PTE_W);
        ck_assert(!(pte & LA64_PTE_D));      /* first store must trap */
        uint64_t *p = la64_pt_lookup(&pt, vas[i]);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(*p, pte);
    }
    /* Unmapped neighbours stay empty for both walkers. */
    for (int i = 0; i < 2000; i++) {
        uint64_t va = random_va();
        int mapped = 0;
        for (int j = 0; j < N; j++)
            mapped |= vas[j] == va;
        if (!mapped) {
            ck_assert_uint_eq(la64_pt_walk(&pt, va), 0);
            ck_assert_uint_eq(hw_refill(va), 0);
        }
    }
}
END_TEST

START_TEST(test_tables_are_shared)
{
    uint64_t va = 0x0000123456780000UL & ~(LA64_PAGE_SIZE - 1);
    ck_assert_int_eq(la64_pt_map(&pt, va, 0x4000, LA64_MAP_READ), 0);
    ck_assert_uint_eq(pt.pages_used, 4 + 3);          /* PUD, PMD, PTE table */
    ck_assert_int_eq(la64_pt_map(&pt, va + LA64_PAGE_SIZE, 0x8000, LA64_MAP_READ), 0);
    ck_assert_uint_eq(pt.pages_used, 7);              /* same PTE table */
    ck_assert_int_eq(la64_pt_map(&pt, va, 0, 0), 0);  /* unmap */
    ck_assert_uint_eq(la64_pt_walk(&pt, va), 0);
    ck_assert_uint_ne(la64_pt_walk(&pt, va + LA64_PAGE_SIZE), 0);
    ck_assert_int_eq(la64_pt_map(&pt, va + 1, 0, LA64_MAP_READ), -1);   /* misaligned */
}
END_TEST

START_TEST(test_out_of_memory)
{
    pool.limit = pool.used + 1;                      /* room for one table only */
    ck_assert_int_eq(la64_pt_map(&pt, 0x0000200000000000UL, 0x4000, LA64_MAP_READ), -1);
    ck_assert_uint_eq(la64_pt_walk(&pt, 0x0000200000000000UL), 0);
}
END_TEST

START_TEST(test_pte_flags)
{
    uint64_t ro = la64_pt_make_pte(0x4000, LA64_MAP_READ);
    ck_assert(!(ro & (LA64_PTE_W | LA64_PTE_D)));
    ck_assert(ro & LA64_PTE_NX);
    uint64_t rw = la64_pt_make_pte(0x4000, LA64_MAP_READ | LA64_MAP_WRITE);
    ck_assert((rw & (LA64_PTE_W | LA64_PTE_D)) == LA64_PTE_W);
    uint64_t pre = la64_pt_make_pte(0x4000, LA64_MAP_READ | LA64_MAP_WRITE | LA64_MAP_DIRTY);
    ck_assert(pre & LA64_PTE_D);
    uint64_t ro_dirty = la64_pt_make_pte(0x4000, LA64_MAP_READ | LA64_MAP_DIRTY);
    ck_assert(!(ro_dirty & LA64_PTE_D));              /* D would grant writes */
    uint64_t x = la64_pt_make_pte(0x4000, LA64_MAP_READ | LA64_MAP_EXEC);
    ck_assert(!(x & LA64_PTE_NX));
    ck_assert((rw & (LA64_PTE_V | LA64_PTE_P | LA64_PTE_PLV3 | LA64_PTE_MAT_CC)) ==
              (LA64_PTE_V | LA64_PTE_P | LA64_PTE_PLV3 | LA64_PTE_MAT_CC));
}
END_TEST

static uint64_t csr_of(const struct la64_csr_value *v, int n, uint32_t csr, int *found)
{
    for (int i = 0; i < n; i++)
        if (v[i].csr == csr) {
            *found = 1;
            return v[i].value;
        }
    *found = 0;
    return 0;
}

START_TEST(test_boot_csrs)
{
    struct la64_boot_params p = {
        .root_pa = 0x123000, .refill_pa = 0x201000, .exception_va = 0x9000000000202000UL,
        .exc_stack_base = 0x9000000000300000UL, .exc_stack_top = 0x9000000000304000UL, .asid = 5,
    };
    struct la64_csr_value v[LA64_BOOT_NCSRS];
    int n = la64_boot_csrs(&p, v, LA64_BOOT_NCSRS);
    ck_assert_int_gt(n, 0);
    ck_assert_int_le(n, LA64_BOOT_NCSRS);
    int f;
    ck_assert_uint_eq(v[n - 1].csr, LA64_CSR_CRMD);   /* paging goes on last */
    uint64_t crmd = v[n - 1].value;
    ck_assert(crmd & LA64_CRMD_PG);
    ck_assert(!(crmd & (LA64_CRMD_DA | LA64_CRMD_IE | LA64_CRMD_PLV_MASK)));
    ck_assert_uint_eq(csr_of(v, n, LA64_CSR_PGDL, &f), p.root_pa); ck_assert(f);
    ck_assert_uint_eq(csr_of(v, n, LA64_CSR_TLBRENTRY, &f), p.refill_pa); ck_assert(f);
    ck_assert_uint_eq(csr_of(v, n, LA64_CSR_EENTRY, &f), p.exception_va); ck_assert(f);
    ck_assert_uint_eq(csr_of(v, n, LA64_CSR_STLBPS, &f), LA64_PAGE_SHIFT); ck_assert(f);
    ck_assert_uint_eq(csr_of(v, n, LA64_CSR_PWCL, &f), LA64_PWCL_VALUE); ck_assert(f);
    ck_assert_uint_eq(csr_of(v, n, LA64_CSR_PWCH, &f), LA64_PWCH_VALUE); ck_assert(f);
    ck_assert_uint_eq(csr_of(v, n, LA64_CSR_SAVE2, &f), p.exc_stack_base); ck_assert(f);
    ck_assert_uint_eq(csr_of(v, n, LA64_CSR_SAVE3, &f), p.exc_stack_top); ck_assert(f);
    ck_assert_uint_eq(csr_of(v, n, LA64_CSR_ASID, &f), 5); ck_assert(f);
    ck_assert_uint_eq(csr_of(v, n, LA64_CSR_ECFG, &f), 0); ck_assert(f);
    /* A short array gets a prefix and the full count. */
    ck_assert_int_eq(la64_boot_csrs(&p, v, 2), n);
}
END_TEST

static Suite *pgtable_suite(void)
{
    Suite *s = suite_create("la64_pgtable");
    TCase *tc = tcase_create("pgtable");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_walker_config);
    tcase_add_test(tc, test_empty_table_walks_to_zero);
    tcase_add_test(tc, test_map_matches_hardware_walk);
    tcase_add_test(tc, test_tables_are_shared);
    tcase_add_test(tc, test_out_of_memory);
    tcase_add_test(tc, test_pte_flags);
    tcase_add_test(tc, test_boot_csrs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pgtable_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
