/*
 * check_gc_dune_safety.c - libgc-dune must not change what a program can
 * do, with any dirty source (the mprotect backend is the one at risk):
 *  - a program that installs its own SIGSEGV handler after libgc-dune has
 *    started, before incremental mode (ECL does so at boot), and does not
 *    chain to the previous handler, keeps working: libgc-dune's handler
 *    goes on top when tracking starts and passes it the faults that are not
 *    libgc-dune's;
 *  - read(2) into a pointer-free (atomic) GC buffer works, fresh or reused
 *    after collections (Guile's port buffers; stock libgc never protects
 *    pointer-free blocks).
 * Linked with libgc-dune; tests/check_gc_dune.sh runs it per backend.
 * GC_DUNE_EXPECT=name: exit 77 unless libgc-dune got that backend.
 */
#define _GNU_SOURCE
#include <gc.h>
#include <gc/gc_inline.h>
#include <gc/gc_mark.h>

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dune.h"
#include "gc_dune.h"

#define PG DUNE_PAGE_SIZE

/* The program's own handler: like ECL's, it does not chain. */
static char *guard;
static volatile sig_atomic_t own_faults, stolen_faults;

static void app_segv(int sig, siginfo_t *si, void *uc)
{
    char *a = si->si_addr;
    (void)sig;
    (void)uc;
    if (a >= guard && a < guard + PG) {
        own_faults++;
        mprotect(guard, PG, PROT_READ | PROT_WRITE);
        return;
    }
    /* A fault that libgc-dune should have handled: note it and let the
     * program go on (the write is then invisible to the tracker). */
    stolen_faults++;
    mprotect((void *)((uintptr_t)a & ~(PG - 1)), PG, PROT_READ | PROT_WRITE);
}

static void install_app_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = app_segv;
    sa.sa_flags = SA_SIGINFO;
    guard = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sigaction(SIGSEGV, &sa, NULL) < 0 || guard == MAP_FAILED) {
        perror("check_gc_dune_safety: setup");
        exit(EXIT_FAILURE);
    }
}

struct cell {
    struct cell *next;
    uintptr_t v;
};

START_TEST(t_late_handler)
{
    /* Old objects written after collections: with mprotect every such
     * write faults into libgc-dune's handler. */
    struct cell *head = NULL;
    for (uintptr_t i = 0; i < 20000; i++) {
        struct cell *c = GC_MALLOC(sizeof *c);
        ck_assert_ptr_nonnull(c);
        c->v = i;
        c->next = head;
        head = c;
    }
    for (int round = 0; round < 5; round++) {
        GC_gcollect();
        for (struct cell *c = head; c; c = c->next)
            c->v++;
    }
    uintptr_t n = 0, sum = 0;
    for (struct cell *c = head; c; c = c->next, n++)
        sum += c->v;
    ck_assert_uint_eq(n, 20000);
    ck_assert_uint_eq(sum, 20000UL * 19999 / 2 + 5 * 20000UL);
    /* The program's own faults still reach its handler. */
    *(volatile char *)guard = 1;
    ck_assert_int_eq(own_faults, 1);
    printf("# late handler: %d own fault(s), %d heap fault(s) that reached it\n",
           (int)own_faults, (int)stolen_faults);
    ck_assert_int_eq(stolen_faults, 0);
}
END_TEST

/* read(2) len bytes from a pipe into buf. */
static int read_into(char *buf, size_t len, unsigned char fill)
{
    int fds[2];
    char src[8192];
    ck_assert_uint_le(len, sizeof src);
    ck_assert_int_eq(pipe(fds), 0);
    memset(src, fill, len);
    ck_assert_int_eq(write(fds[1], src, len), (ssize_t)len);
    ssize_t got = read(fds[0], buf, len);
    int err = got < 0 ? errno : 0;
    close(fds[0]);
    close(fds[1]);
    if (got != (ssize_t)len)
        return err ? -err : -EIO;
    return memcmp(buf, src, len) == 0 ? 0 : -EILSEQ;
}

#define NBUF 64

START_TEST(t_atomic_read)
{
    static const size_t sizes[] = {100, 1500, 3000, 8192};
    char *keep[NBUF];
    int failures = 0, first_err = 0;
    for (unsigned round = 0; round < 4; round++) {
        /* Fresh buffers, some from memory protected at the last collect
         * (large ones are not written by libgc before use). */
        for (unsigned i = 0; i < NBUF; i++) {
            size_t len = sizes[i % 4];
            keep[i] = i % 8 == 7 ? GC_generic_malloc(len, GC_I_PTRFREE) : GC_MALLOC_ATOMIC(len);
            ck_assert_ptr_nonnull(keep[i]);
            int r = read_into(keep[i], len, (unsigned char)(round + i));
            if (r && !failures++)
                first_err = r;
        }
        GC_gcollect();
        GC_gcollect();
        /* The same buffers again, after collections re-armed the heap. */
        for (unsigned i = 0; i < NBUF; i++) {
            int r = read_into(keep[i], sizes[i % 4], (unsigned char)(round * 7 + i));
            if (r && !failures++)
                first_err = r;
        }
        /* Garbage between rounds, so that blocks get reused. */
        for (unsigned i = 0; i < 200; i++)
            (void)GC_MALLOC_ATOMIC(sizes[i % 4]);
    }
    printf("# read(2) into atomic buffers: %d failure(s)%s%s\n", failures,
           failures ? ", first: " : "", failures ? strerror(-first_err) : "");
    ck_assert_int_eq(failures, 0);
}
END_TEST

int main(void)
{
    const char *want = getenv("GC_DUNE_EXPECT");
    struct gc_dune_stats st;

    /* After libgc-dune's constructor, before incremental mode starts. */
    install_app_handler();
    GC_INIT();
    if (!GC_is_incremental_mode())
        GC_enable_incremental();
    gc_dune_stats(&st);
    printf("# backend %s: %s\n", st.backend, gc_dune_why());
    if (want && *want && strcmp(want, st.backend) != 0) {
        printf("SKIP: wanted backend %s, got %s\n", want, st.backend);
        return 77;
    }

    Suite *s = suite_create("gc_dune_safety");
    TCase *tc = tcase_create("safety");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, t_late_handler);
    tcase_add_test(tc, t_atomic_read);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK); /* one collector per process */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
