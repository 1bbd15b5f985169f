/*
 * check_gc_soft.c - the soft-dirty files that libgc-dune emulates for
 * libgc (gc-backend/gc_dune_soft.c), driven the way libgc's soft-dirty
 * VDB drives them: open /proc/<pid>/pagemap and clear_refs, lseek + read
 * 8-byte entries (bit 55: written since the last clear), write "4" to
 * clear_refs.  The pages are tracked by the uffd backend.
 */
#define _GNU_SOURCE
#include <check.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dirty.h"
#include "dune.h"
#include "gc_dune_soft.h"

#define PG DUNE_PAGE_SIZE
#define SOFT_DIRTY (1ULL << 55)

static struct dirty_tracker *t;
static char *heap;       /* 4 pages: 0-2 tracked, 3 not */
static int pm = -1, cr = -1;

static void setup(void)
{
    soft_feed_resolve();
    ck_assert_int_eq(dirty_open(DIRTY_UFFD, &t), 0);
    heap = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(heap, MAP_FAILED);
    memset(heap, 1, 4 * PG);
    ck_assert_int_eq(dirty_track(t, heap, 3 * PG), 0);
    ck_assert_int_eq(soft_feed_track((uintptr_t)heap, 3 * PG), 0);
    soft_feed_arm_image(t, 0, UINTPTR_MAX);
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/pagemap", (long)getpid());
    pm = open(path, O_RDONLY);
    cr = open("/proc/self/clear_refs", O_WRONLY);
    ck_assert_int_ge(pm, 0);
    ck_assert_int_ge(cr, 0);
    ck_assert(soft_feed_in_use());
}

static void teardown(void)
{
    close(pm);
    close(cr);
    dirty_close(t);
    munmap(heap, 4 * PG);
}

/* Bit 55 of page i of heap, as libgc reads it. */
static int written(int i)
{
    uint64_t e = 0;
    off_t at = (off_t)((uintptr_t)(heap + i * PG) / PG * sizeof e);
    ck_assert_int_eq(lseek(pm, at, SEEK_SET), at);
    ck_assert_int_eq(read(pm, &e, sizeof e), (ssize_t)sizeof e);
    return (e & SOFT_DIRTY) != 0;
}

static void clear(void)
{
    ck_assert_int_eq(write(cr, "4\n", 2), 2);
}

START_TEST(test_fresh_region_written_once)
{
    /* Written before it was tracked, as far as anyone knows. */
    ck_assert(written(0) && written(1) && written(2));
    clear();
    soft_feed_mark_start();
    ck_assert(!written(0) && !written(1) && !written(2));
}
END_TEST

START_TEST(test_writes_seen_until_clear)
{
    clear();
    heap[PG] = 2;
    soft_feed_mark_start();
    ck_assert(!written(0));
    ck_assert(written(1));
    ck_assert(written(1)); /* reading does not clear */
    ck_assert(!written(2));
    clear();
    soft_feed_mark_start();
    ck_assert(!written(1));
}
END_TEST

START_TEST(test_untracked_always_written)
{
    clear();
    soft_feed_mark_start();
    ck_assert(written(3));
    clear();
    ck_assert(written(3));
}
END_TEST

/* A clear with no read before it (libgc's GC_read_dirty(TRUE), ahead of a
 * full mark) clears the tracker too: the write does not come back. */
START_TEST(test_clear_without_read_drops)
{
    clear();
    heap[0] = 3;
    soft_feed_mark_start();
    clear();
    soft_feed_mark_start();
    ck_assert(!written(0));
}
END_TEST

/* One pass per mark start: a write after it is seen at the next one. */
START_TEST(test_mark_start_starts_a_pass)
{
    clear();
    soft_feed_mark_start();
    ck_assert(!written(2));
    heap[2 * PG] = 4;
    soft_feed_mark_start();
    ck_assert(written(2));
}
END_TEST

/* So does a clear (libgc's GC_enable_incremental reads with no mark start). */
START_TEST(test_clear_starts_a_pass)
{
    soft_feed_mark_start();
    ck_assert(written(1)); /* fresh */
    clear();
    heap[PG] = 5;
    ck_assert(written(1));
}
END_TEST

static uintptr_t run_first;
static size_t run_pages;

static void note_run(uintptr_t first, size_t npages)
{
    run_first = first;
    run_pages += npages;
}

/* The hook sees each run a pass found (gc_dune_ptrfree.c reopens them). */
START_TEST(test_run_hook)
{
    clear();
    soft_feed_on_run(note_run);
    heap[2 * PG] = 6;
    soft_feed_mark_start();
    ck_assert(written(2));
    soft_feed_on_run(NULL);
    ck_assert_int_eq(run_pages, 1);
    ck_assert_ptr_eq((void *)run_first, heap + 2 * PG);
}
END_TEST

START_TEST(test_closed_fd_is_plain_again)
{
    char c;
    close(pm);
    ck_assert(!soft_feed_in_use());
    pm = open("/dev/zero", O_RDONLY);
    ck_assert_int_eq(read(pm, &c, 1), 1);
    ck_assert_int_eq(c, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gc_soft");
    TCase *tc = tcase_create("soft");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_fresh_region_written_once);
    tcase_add_test(tc, test_writes_seen_until_clear);
    tcase_add_test(tc, test_untracked_always_written);
    tcase_add_test(tc, test_clear_without_read_drops);
    tcase_add_test(tc, test_mark_start_starts_a_pass);
    tcase_add_test(tc, test_clear_starts_a_pass);
    tcase_add_test(tc, test_run_hook);
    tcase_add_test(tc, test_closed_fd_is_plain_again);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
