/*
 * check_dune_mem.c - the guest-physical layout and the memslot lifecycle:
 * every PTE frame is a guest-physical address below the layout's width that
 * translates back to its page; memslots are given back when the memory
 * under them goes, so their number follows the live address space (churn,
 * brk, mremap, fork) plus a bounded slack of released ones kept for reuse;
 * a sparse touch of more than 32 GiB works; and
 * running out of slots is reported, not a silent SIGSEGV.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dune.h"
#include "dune_test.h"

#define PG DUNE_PAGE_SIZE
#define CHUNK (2UL << 20)
/* Released slots memslot.c keeps for reuse by default: the bounds below
 * that follow the live address space allow that many more. */
#define SLACK 8

static unsigned memslots(void)
{
    struct dune_status st;

    dune_status(&st);
    return st.memslots;
}

/* xorshift: the hints must differ from run to run only by the seed. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A 64 KiB-aligned hint somewhere in [4 GiB, 64 TiB). */
static void *random_hint(void)
{
    return (void *)((4UL << 30) + (next_rand() % ((64UL << 40) - (4UL << 30))) / 65536 * 65536);
}

/* mmap 64 KiB at a random hint, write it, check it, munmap: n times. */
static void churn(unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        char *p = mmap(random_hint(), 65536, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ck_assert_msg(p != MAP_FAILED, "mmap %u: %s", i, strerror(errno));
        p[0] = (char)i;
        p[65535] = (char)(i + 1);
        ck_assert_int_eq(p[0], (char)i);
        ck_assert_int_eq(p[65535], (char)(i + 1));
        ck_assert_int_eq(munmap(p, 65536), 0);
    }
}

/* ---- the layout ---- */

struct frames {
    unsigned bits;
    unsigned long pages, bad;
    uintptr_t first_bad;
    uint64_t first_frame;
};

static int check_frame(uintptr_t va, uint64_t *pte, void *arg)
{
    struct frames *f = arg;
    uint64_t frame = *pte & DUNE_PTE_ADDR;

    f->pages++;
    if ((f->bits < 64 && frame >> f->bits) || dune_gpa_to_va(frame) != va) {
        if (!f->bad++) {
            f->first_bad = va;
            f->first_frame = frame;
        }
    }
    return 0;
}

/* Every present PTE of every mapping in /proc/self/maps. */
static void check_all_frames(void)
{
    static char buf[1 << 16];
    struct frames f = { .bits = dune_gpa_bits() };
    FILE *m = fopen("/proc/self/maps", "r");
    char line[512];

    ck_assert_ptr_nonnull(m);
    ck_assert_uint_ge(f.bits, 34);
    ck_assert_uint_le(f.bits, 52);
    setvbuf(m, buf, _IOFBF, sizeof buf);
    while (fgets(line, sizeof line, m)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx", &s, &e) != 2 || s >= 0x800000000000UL)
            continue;
        ck_assert_int_eq(dune_pte_walk((void *)s, e - s, check_frame, &f), 0);
    }
    fclose(m);
    ck_assert_uint_gt(f.pages, 10);
    ck_assert_msg(f.bad == 0, "%lu of %lu pages: va %#lx has frame %#llx (width %u)", f.bad,
                  f.pages, (unsigned long)f.first_bad, (unsigned long long)f.first_frame, f.bits);
}

static void touch_some_mappings(void)
{
    char *small = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *big = mmap(NULL, 100UL << 20, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    ck_assert_ptr_ne(small, MAP_FAILED);
    ck_assert_ptr_ne(big, MAP_FAILED);
    small[0] = small[2 * PG] = 1;
    big[0] = big[(100UL << 20) - 1] = 2; /* lazily mirrored, one chunk each */
    free(malloc(1 << 20));
}

START_TEST(test_frames_translate_back)
{
    enter();
    touch_some_mappings();
    check_all_frames();
}
END_TEST

/* A narrow width (36 bits, as on older Intel parts) on any machine. */
START_TEST(test_frames_at_36_bits)
{
    setenv("DUNE_GPA_BITS", "36", 1);
    enter();
    ck_assert_uint_eq(dune_gpa_bits(), 36);
    touch_some_mappings();
    check_all_frames();
}
END_TEST

START_TEST(test_too_narrow_runs_natively)
{
    struct dune_status st;

    setenv("DUNE_GPA_BITS", "30", 1);
    ck_assert_int_ne(dune_enter(NULL), 0);
    dune_status(&st);
    ck_assert(!st.active);
    ck_assert_msg(strstr(st.reason, "guest-physical width") != NULL, "reason: %s", st.reason);
    ck_assert_int_eq(getppid() > 0, 1); /* still running, natively */
}
END_TEST

/* ---- the memslot lifecycle ---- */

/* Far past 16,384 and 32,764 (KVM's limits seen so far): without slots
 * being given back this runs out of them. */
#define CHURN 40000

START_TEST(test_churn_at_random_hints)
{
    unsigned before;

    enter();
    before = memslots();
    churn(CHURN);
    ck_assert_msg(memslots() <= before + 4 + SLACK, "memslots %u before, %u after %u mmap/munmap",
                  before, memslots(), CHURN);
}
END_TEST

START_TEST(test_partial_munmap_keeps_the_rest)
{
    size_t len = 16 * CHUNK;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    ck_assert_ptr_ne(p, MAP_FAILED);
    enter();
    for (size_t o = 0; o < len; o += PG)
        p[o] = (char)(o / PG);
    /* a hole in the middle, 2 MiB-aligned in the mapping */
    char *hole = (char *)(((uintptr_t)p + 4 * CHUNK) & ~(CHUNK - 1));
    ck_assert_int_eq(munmap(hole, 2 * CHUNK), 0);
    for (size_t o = 0; o < len; o += PG)
        if (p + o < hole || p + o >= hole + 2 * CHUNK)
            ck_assert_int_eq(p[o], (char)(o / PG));
    /* and memory mapped into the hole again works, with fresh contents */
    ck_assert_ptr_eq(mmap(hole, 2 * CHUNK, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), hole);
    ck_assert_int_eq(hole[PG], 0);
    hole[PG] = 7;
    ck_assert_int_eq(hole[PG], 7);
    check_all_frames();
}
END_TEST

START_TEST(test_brk_shrink_gives_back)
{
    enter();
    unsigned before = memslots();
    for (int i = 0; i < 50; i++) {
        char *old = sbrk(0);
        /* far enough to need slots of its own */
        /* a new 2 MiB unit each time, so stale slots would pile up */
        char *grown = (char *)(((uintptr_t)old + (64 + i) * CHUNK) & ~(CHUNK - 1));
        ck_assert_int_eq(brk(grown + CHUNK), 0);
        grown[0] = 1;
        ck_assert_int_eq(brk(old), 0);
    }
    ck_assert_uint_le(memslots(), before + 2 + SLACK);
}
END_TEST

/* The same access at the same instruction, again and again, but each time
 * to memory the program mapped anew: every fault is a new one, not a retry
 * of a mapping Dune failed to install (signal.c's repeat detector). */
START_TEST(test_brk_same_address_faults)
{
    enter();
    for (int i = 0; i < 20; i++) {
        char *old = sbrk(0);
        char *at = (char *)(((uintptr_t)old + 64 * CHUNK) & ~(CHUNK - 1));
        ck_assert_int_eq(brk(at + CHUNK), 0);
        *(volatile char *)at = (char)i;
        ck_assert_int_eq(brk(old), 0);
    }
}
END_TEST

START_TEST(test_mremap_moves_give_back)
{
    size_t len = 4 * CHUNK;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    ck_assert_ptr_ne(p, MAP_FAILED);
    enter();
    p[0] = 42;
    unsigned before = memslots();
    for (int i = 0; i < 300; i++) {
        char *q = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, random_hint());
        ck_assert_ptr_ne(q, MAP_FAILED);
        ck_assert_int_eq(q[0], 42);
        q[len - 1] = (char)i;
        p = q;
    }
    ck_assert_uint_le(memslots(), before + 4 + SLACK);
}
END_TEST

/* A forked child re-creates the parent's slots: after churn that must be
 * the live ones only, not the history. */
START_TEST(test_fork_after_churn)
{
    int fds[2];
    unsigned child_slots = 0, before;
    pid_t pid;
    int status;

    ck_assert_int_eq(pipe(fds), 0);
    enter();
    churn(50);
    before = memslots();
    churn(3000);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        unsigned n = memslots();
        _exit(write(fds[1], &n, sizeof n) == sizeof n && dune_active() ? 0 : 1);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(read(fds[0], &child_slots, sizeof child_slots), sizeof child_slots);
    ck_assert_msg(child_slots <= before + 4, "child re-created %u slots; %u were live",
                  child_slots, before);
}
END_TEST

/* One page in each 2 MiB of 33 GiB: past 16,384 chunks, each a slot. */
#define SPARSE (33UL << 30)

START_TEST(test_sparse_touch_past_32g)
{
    char *p = mmap(NULL, SPARSE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    ck_assert_ptr_ne(p, MAP_FAILED);
    /* One 4 KiB page per 2 MiB, not a huge page each (33 GiB): the SVM
     * guest's kernel has transparent huge pages always on. */
    ck_assert_int_eq(madvise(p, SPARSE, MADV_NOHUGEPAGE), 0);
    enter();
    unsigned before = memslots();
    for (size_t o = 0; o < SPARSE; o += CHUNK)
        p[o + (o / CHUNK % 512) * PG] = (char)(o / CHUNK);
    for (size_t o = 0; o < SPARSE; o += CHUNK)
        ck_assert_int_eq(p[o + (o / CHUNK % 512) * PG], (char)(o / CHUNK));
    ck_assert_uint_gt(memslots(), before + 16384);
    ck_assert_int_eq(munmap(p, SPARSE), 0);
    ck_assert_uint_le(memslots(), before + 2 + SLACK);
}
END_TEST

/* At the memslot limit mmap fails with ENOMEM, as natively when out of
 * mappings, and the process carries on. */
START_TEST(test_limit_is_enomem)
{
    enum { N = 200 };
    char *keep[N];
    int n = 0, failed_errno = 0;

    setenv("DUNE_MAX_MEMSLOTS", "64", 1);
    enter();
    for (; n < N; n++) {
        /* each in a 2 MiB unit of its own */
        keep[n] = mmap(random_hint(), 65536, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (keep[n] == MAP_FAILED) {
            failed_errno = errno;
            break;
        }
        keep[n][0] = 1;
    }
    ck_assert_msg(n < N, "%d mappings fitted in 64 memslots", N);
    ck_assert_int_eq(failed_errno, ENOMEM);
    ck_assert_uint_le(memslots(), 64);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(munmap(keep[i], 65536), 0);
    churn(100); /* and there is room again */
}
END_TEST

/* ---- the slack: released slots kept for the next mapping there ---- */

/* 1 MiB at the start of a 2 MiB unit nothing else uses, written. */
static char *map_unit(void)
{
    for (;;) {
        char *want = (char *)((uintptr_t)random_hint() & ~(CHUNK - 1));
        char *p = mmap(want, CHUNK / 2, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (p == want) {
            p[0] = 1;
            return p;
        }
        ck_assert_msg(p == MAP_FAILED && errno == EEXIST, "mmap at %p: %p, %s", (void *)want,
                      (void *)p, strerror(errno));
    }
}

/* Release units in twice as many places as the slack holds: it is full. */
static void fill_slack(void)
{
    for (int i = 0; i < 2 * SLACK; i++)
        ck_assert_int_eq(munmap(map_unit(), CHUNK / 2), 0);
}

static uint64_t frame_of(const void *va)
{
    uint64_t *pte = dune_pte_lookup(va);

    ck_assert_ptr_nonnull(pte);
    ck_assert(*pte & DUNE_PTE_P);
    return *pte & DUNE_PTE_ADDR;
}

/* mmap, munmap, mmap at the same place: the slot stays over the munmap and
 * serves the new mapping (same count, same guest-physical frame), which
 * is fresh memory. */
START_TEST(test_released_slot_is_reused)
{
    enter();
    char *p = map_unit();
    uint64_t frame = frame_of(p);
    unsigned n = memslots();

    ck_assert_int_eq(munmap(p, CHUNK / 2), 0);
    ck_assert_uint_eq(memslots(), n);
    ck_assert_ptr_eq(mmap(p, CHUNK / 2, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0), p);
    ck_assert_int_eq(p[0], 0);
    p[0] = 2;
    ck_assert_int_eq(p[0], 2);
    ck_assert_uint_eq(memslots(), n);
    ck_assert_uint_eq(frame_of(p), frame);
    check_all_frames();
}
END_TEST

/* DUNE_MEMSLOT_SLACK=0: no slack, a released slot is deleted at once. */
START_TEST(test_no_slack_deletes_at_once)
{
    setenv("DUNE_MEMSLOT_SLACK", "0", 1);
    enter();
    unsigned before = memslots();
    char *p = map_unit();

    ck_assert_uint_eq(memslots(), before + 1);
    ck_assert_int_eq(munmap(p, CHUNK / 2), 0);
    ck_assert_uint_eq(memslots(), before);
}
END_TEST

/* Released in many places: the slack keeps the latest SLACK, no more. */
START_TEST(test_slack_is_bounded)
{
    enter();
    unsigned before = memslots();

    for (int i = 0; i < 5 * SLACK; i++) {
        char *p = map_unit();
        ck_assert_int_eq(munmap(p, CHUNK / 2), 0);
        ck_assert_uint_le(memslots(), before + SLACK);
    }
    ck_assert_uint_eq(memslots(), before + SLACK);
}
END_TEST

/* Fork, and the slots the child's new VM has at once (its mappings work). */
static unsigned child_memslots(void)
{
    int fds[2], status;
    unsigned n = 0;
    pid_t pid;

    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char *p;
        bool ok;

        n = memslots();
        p = mmap(NULL, CHUNK / 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ok = p != MAP_FAILED && dune_active();
        if (ok) {
            p[1] = 3;
            ok = p[1] == 3 && munmap(p, CHUNK / 2) == 0;
        }
        _exit(write(fds[1], &n, sizeof n) == sizeof n && ok ? 0 : 1);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(read(fds[0], &n, sizeof n), sizeof n);
    close(fds[0]);
    close(fds[1]);
    return n;
}

/* A forked child's new VM gets the live slots only: with the slack full
 * it re-creates as many as with it empty. */
START_TEST(test_slack_not_replayed_by_fork)
{
    unsigned before, empty, full;

    enter();
    empty = child_memslots();
    before = memslots();
    fill_slack();
    ck_assert_uint_eq(memslots(), before + SLACK);
    full = child_memslots();
    ck_assert_msg(full == empty, "child re-created %u slots with the slack full, %u with it empty",
                  full, empty);
}
END_TEST

/* At the memslot limit idle slots give way: as many mappings fit as
 * without them. */
START_TEST(test_slack_gives_way_at_limit)
{
    enum { LIMIT = 64, N = 200 };
    char *keep[N];
    int n = 0;
    unsigned live;

    setenv("DUNE_MAX_MEMSLOTS", "64", 1);
    enter();
    fill_slack();
    live = memslots() - SLACK;
    for (; n < N; n++) {
        keep[n] = mmap(random_hint(), 65536, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (keep[n] == MAP_FAILED) {
            ck_assert_int_eq(errno, ENOMEM);
            break;
        }
        keep[n][0] = 1;
    }
    ck_assert_msg(n >= LIMIT - (int)live, "%d mappings fitted beside %u live slots", n, live);
    ck_assert_uint_le(memslots(), LIMIT);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(munmap(keep[i], 65536), 0);
}
END_TEST

/* Out of guest-physical space (34 bits: 12 GiB for RAM) idle slots give
 * theirs back: mapping until ENOMEM leaves none of them behind. */
START_TEST(test_slack_gives_way_when_gpa_runs_out)
{
    enum { N = 1000 };
    const size_t len = 32UL << 20; /* mirrored at once, one slot each */
    int n = 0;
    unsigned live;

    setenv("DUNE_GPA_BITS", "34", 1);
    enter();
    fill_slack();
    live = memslots() - SLACK;
    for (; n < N; n++) {
        char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            ck_assert_int_eq(errno, ENOMEM);
            break;
        }
        p[len - 1] = 1;
    }
    ck_assert_int_lt(n, N);
    ck_assert_msg(memslots() <= live + n + 1, "%u slots for %u live and %d new mappings",
                  memslots(), live, n);
}
END_TEST

/* The dirty log of a slot taken back from the slack starts afresh: pages
 * written before the munmap, while it was logged, are not reported. */
START_TEST(test_dirty_log_after_reuse)
{
    uint64_t bm[CHUNK / PG / 64];
    char *p;

    enter();
    p = map_unit();
    ck_assert_int_eq(dune_dirty_log_enable(p, CHUNK / 2, 1), 0);
    ck_assert_int_ge(dune_dirty_log_read_clear(p, CHUNK / 2, bm), 0);
    p[3 * PG] = 1;
    ck_assert_int_eq(dune_dirty_log_enable(p, CHUNK / 2, 0), 0);
    unsigned n = memslots();
    ck_assert_int_eq(munmap(p, CHUNK / 2), 0);
    ck_assert_uint_eq(memslots(), n); /* idle, in the slack */
    ck_assert_ptr_eq(mmap(p, CHUNK / 2, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0), p);
    ck_assert_int_eq(dune_dirty_log_enable(p, CHUNK / 2, 1), 0);
    p[7 * PG] = 1;
    ck_assert_int_eq(dune_dirty_log_read_clear(p, CHUNK / 2, bm), 1);
    ck_assert_uint_eq(bm[0], 1ULL << 7);
    ck_assert_uint_eq(memslots(), n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dune_mem");
    TCase *layout = tcase_create("layout");
    TCase *life = tcase_create("lifecycle");
    TCase *slack = tcase_create("slack");

    unsetenv("DUNE_MEMSLOT_SLACK"); /* the bounds assume the default */
    dune_test_require("check_dune_mem");
    tcase_set_timeout(layout, 60);
    tcase_add_test(layout, test_frames_translate_back);
    tcase_add_test(layout, test_frames_at_36_bits);
    tcase_add_test(layout, test_too_narrow_runs_natively);
    suite_add_tcase(s, layout);
    tcase_set_timeout(life, 600);
    tcase_add_test(life, test_partial_munmap_keeps_the_rest);
    tcase_add_test(life, test_brk_shrink_gives_back);
    tcase_add_test(life, test_brk_same_address_faults);
    tcase_add_test(life, test_mremap_moves_give_back);
    tcase_add_test(life, test_fork_after_churn);
    tcase_add_test(life, test_limit_is_enomem);
    tcase_add_test(life, test_churn_at_random_hints);
    tcase_add_test(life, test_sparse_touch_past_32g);
    suite_add_tcase(s, life);
    tcase_set_timeout(slack, 60);
    tcase_add_test(slack, test_released_slot_is_reused);
    tcase_add_test(slack, test_no_slack_deletes_at_once);
    tcase_add_test(slack, test_slack_is_bounded);
    tcase_add_test(slack, test_slack_not_replayed_by_fork);
    tcase_add_test(slack, test_slack_gives_way_at_limit);
    tcase_add_test(slack, test_slack_gives_way_when_gpa_runs_out);
    tcase_add_test(slack, test_dirty_log_after_reuse);
    suite_add_tcase(s, slack);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
