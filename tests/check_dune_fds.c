/*
 * check_dune_fds.c - Dune's own descriptors are not the program's problem:
 * at any RLIMIT_NOFILE the program opens the same numbers, as many of
 * them, and finds the same ones below its limit, inside Dune as natively.
 *
 * Each measurement runs in a child of the test (one natively, one inside
 * Dune), forked the same way, so both start with the same descriptors.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dune_test.h"

struct measure {
    int entered;       /* dune_enter's result */
    int first;         /* the first open() */
    int opened;        /* how many open() until EMFILE */
    int visible;       /* fstat finds over 0..soft-1 */
    int above;         /* and over soft..soft+255 */
    int threads_ok;    /* threads created */
    int inside;        /* threads (the measuring one too) inside Dune */
    rlim_t soft, hard; /* the limits the program sees */
    char reason[160];
};

static int gate[2]; /* threads wait on it until the measurement is done */

/* 1 for a thread started natively, 2 for one inside Dune. */
static void *idle_thread(void *arg)
{
    char c;

    __atomic_store_n((int *)arg, 1 + dune_active(), __ATOMIC_SEQ_CST);
    while (read(gate[0], &c, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

static void measure_here(struct measure *m)
{
    struct stat st;
    struct rlimit rl;

    getrlimit(RLIMIT_NOFILE, &rl);
    m->soft = rl.rlim_cur;
    m->hard = rl.rlim_max;
    for (rlim_t fd = 0; fd < rl.rlim_cur; fd++)
        m->visible += fstat((int)fd, &st) == 0;
    for (rlim_t fd = rl.rlim_cur; fd < rl.rlim_cur + 256; fd++)
        m->above += fstat((int)fd, &st) == 0;
    m->first = open("/dev/null", O_RDONLY);
    m->opened = m->first >= 0;
    while (open("/dev/null", O_RDONLY) >= 0)
        m->opened++;
}

struct how {
    rlim_t soft, hard;
    bool dune;
    int nthreads;
    rlim_t raise_to; /* soft limit set after entering */
    bool in_fork;    /* measure in a forked child */
    bool helpers_low; /* the child's pipes at 3-5, not at the top */
};

/* Threads started, and how many of them run inside Dune. */
static int start_threads(int n, int *inside_count)
{
    static int inside[1000];
    int ok = 0;
    pthread_t t;

    for (int i = 0; i < n && i < 1000; i++)
        if (pthread_create(&t, NULL, idle_thread, &inside[i]) == 0)
            ok++;
    *inside_count = 0;
    for (int i = 0; i < ok; i++) {
        while (!__atomic_load_n(&inside[i], __ATOMIC_SEQ_CST))
            sched_yield();
        *inside_count += inside[i] == 2;
    }
    return ok;
}

/* In a child: set the limits, perhaps enter, start threads, measure. */
static struct measure in_child(struct how h)
{
    struct measure m;
    int p[2], st;
    pid_t pid;

    memset(&m, 0, sizeof m);
    ck_assert_int_eq(pipe(p), 0);
    pid = fork();
    if (pid == 0) {
        struct rlimit rl = { h.soft, h.hard };
        int inside;

        close(p[0]);
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || pipe(gate) != 0)
            _exit(90);
        if (!h.helpers_low) {
            /* Only 0-2 and the child's own three at the top of its range,
             * so that the first free number is 3 natively. */
            int top = (int)h.soft - 1;
            if (dup2(p[1], top) != top || dup2(gate[0], top - 1) != top - 1 ||
                dup2(gate[1], top - 2) != top - 2)
                _exit(94);
            p[1] = top, gate[0] = top - 1, gate[1] = top - 2;
            syscall(SYS_close_range, 3, top - 3, 0);
            syscall(SYS_close_range, top + 1, ~0U, 0);
        }
        if (h.dune) {
            struct dune_status ds;
            m.entered = dune_enter(NULL);
            dune_status(&ds);
            memcpy(m.reason, ds.reason, sizeof m.reason);
        }
        if (h.raise_to) {
            rl.rlim_cur = h.raise_to;
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                _exit(92);
        }
        if (h.in_fork && (pid = fork()) != 0) {
            waitpid(pid, &st, 0);
            _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 93);
        }
        m.threads_ok = start_threads(h.nthreads, &inside);
        m.inside = inside + dune_active();
        /* the gate's two descriptors count alike: the other child has
         * them too */
        measure_here(&m);
        if (write(p[1], &m, sizeof m) != sizeof m)
            _exit(91);
        _exit(0);
    }
    close(p[1]);
    ck_assert_int_eq(read(p[0], &m, sizeof m), (ssize_t)sizeof m);
    close(p[0]);
    waitpid(pid, &st, 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    return m;
}

static rlim_t hard_limit(void)
{
    struct rlimit rl;

    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_max;
}

static void same(const struct measure *n, const struct measure *d, const char *what)
{
    ck_assert_msg(d->entered == 0, "%s: dune_enter %d (%s)", what, d->entered, d->reason);
    ck_assert_msg(d->first == n->first, "%s: first open %d natively, %d in Dune", what,
                  n->first, d->first);
    ck_assert_msg(d->opened == n->opened, "%s: %d opened natively, %d in Dune", what, n->opened,
                  d->opened);
    ck_assert_msg(d->visible == n->visible, "%s: fstat finds %d natively, %d in Dune", what,
                  n->visible, d->visible);
    ck_assert_msg(d->soft == n->soft && d->hard == n->hard, "%s: limits changed", what);
}

/* ---- at several soft limits, with room above them ---- */

START_TEST(test_soft_limits)
{
    static const rlim_t soft[] = { 8, 64, 1024 };

    for (unsigned i = 0; i < sizeof soft / sizeof soft[0]; i++) {
        struct how h = { .soft = soft[i], .hard = hard_limit() };
        struct measure n = in_child(h), d;
        char what[32];
        h.dune = true;
        d = in_child(h);
        snprintf(what, sizeof what, "soft limit %lu", (unsigned long)soft[i]);
        same(&n, &d, what);
        ck_assert_int_eq(n.first, 3);
        ck_assert_int_eq(d.inside, 1);
    }
}
END_TEST

/* Every thread inside has a vCPU descriptor: none of them is below. */
START_TEST(test_many_threads)
{
    struct how h = { .soft = 1024, .hard = hard_limit(), .nthreads = 300 };
    struct measure n = in_child(h), d;

    h.dune = true;
    d = in_child(h);
    ck_assert_int_eq(n.threads_ok, 300);
    ck_assert_int_eq(d.threads_ok, 300);
    ck_assert_int_eq(d.inside, 301);
    same(&n, &d, "300 threads at 1024");
}
END_TEST

/* A program that used all of its descriptors still gets threads inside
 * (each needs a vCPU descriptor, made above the limit). */
START_TEST(test_thread_when_full)
{
    struct rlimit rl = { 64, hard_limit() };
    pthread_t t;
    int inside = 0;

    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    ck_assert_int_eq(pipe(gate), 0);
    enter();
    while (open("/dev/null", O_RDONLY) >= 0)
        ;
    ck_assert_int_eq(errno, EMFILE);
    ck_assert_int_eq(pthread_create(&t, NULL, idle_thread, &inside), 0);
    close(gate[1]);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(inside, 2);
}
END_TEST

/* A program that lowered its limit may probe numbers above it that it
 * had open before (Python's test_close_fds_when_max_fd_is_lowered):
 * with room, ours start higher than that. */
START_TEST(test_probe_above_low_limit)
{
    struct how h = { .soft = 29, .hard = hard_limit() };
    struct measure n = in_child(h), d;

    h.dune = true;
    d = in_child(h);
    same(&n, &d, "soft limit 29");
    ck_assert_int_eq(n.above, 0);
    ck_assert_msg(d.above == 0, "fstat finds %d above the limit in Dune", d.above);
}
END_TEST

/* ---- without room ---- */

/* The hard limit leaves none: Dune does not take the program's numbers,
 * it stays out and says why.  (With CAP_SYS_RESOURCE it raises the hard
 * limit for a moment, places its descriptors above, and enters: the
 * program sees the same either way.) */
START_TEST(test_no_room_stays_native)
{
    struct how h = { .soft = 64, .hard = 64 };
    struct measure n = in_child(h), d;

    h.dune = true;
    d = in_child(h);
    if (dune_test_can_raise_nofile()) {
        ck_assert_msg(d.entered == 0, "with CAP_SYS_RESOURCE: %d (%s)", d.entered, d.reason);
        same(&n, &d, "soft = hard = 64, room made above");
        return;
    }
    ck_assert_int_eq(d.entered, -EMFILE);
    ck_assert_msg(strstr(d.reason, "RLIMIT_NOFILE 64 (hard 64)"), "reason: %s", d.reason);
    ck_assert_int_eq(d.inside, 0);
    d.entered = 0;
    same(&n, &d, "soft = hard = 64");
}
END_TEST

/* soft == hard over a large range (as some systems give every process):
 * Dune lowers the soft limit by what it may need, and the program can use
 * up exactly the limit it then sees; the hard limit is left alone. */
START_TEST(test_large_equal_limits)
{
    rlim_t hl = hard_limit();
    struct how h = { .soft = hl, .hard = hl, .dune = true, .helpers_low = true };
    struct measure d;

    if (hl < 10000) {
        printf("test_large_equal_limits: hard limit %lu too low here, skipped\n",
               (unsigned long)hl);
        return;
    }
    d = in_child(h);
    ck_assert_msg(d.entered == 0, "dune_enter %d (%s)", d.entered, d.reason);
    ck_assert_uint_eq(d.hard, hl);
    ck_assert_uint_lt(d.soft, hl);
    ck_assert_uint_ge(d.soft, hl - hl / 8);
    /* every number below the limit is the program's */
    ck_assert_int_eq(d.visible + d.opened, (int)d.soft);
}
END_TEST

/* ---- the program changes its limit ---- */

/* Raised past ours after entering: ours move above the new limit, and
 * the threads made after it still get inside. */
START_TEST(test_raise_after_enter)
{
    struct how h = { .soft = 64, .hard = hard_limit(), .raise_to = 1024, .nthreads = 4 };
    struct measure n = in_child(h), d;

    h.dune = true;
    d = in_child(h);
    ck_assert_int_eq(d.inside, 5);
    same(&n, &d, "raised from 64 to 1024 inside");
}
END_TEST

/* Lowered below ours: nothing to do, all still works. */
START_TEST(test_lower_after_enter)
{
    struct how h = { .soft = 1024, .hard = hard_limit(), .raise_to = 16, .nthreads = 4 };
    struct measure n = in_child(h), d;

    h.dune = true;
    d = in_child(h);
    ck_assert_int_eq(d.inside, 5);
    same(&n, &d, "lowered from 1024 to 16 inside");
}
END_TEST

/* A forked child gets a VM of its own, its descriptors above the limit. */
START_TEST(test_fork_child)
{
    struct how h = { .soft = 64, .hard = hard_limit(), .in_fork = true, .nthreads = 2 };
    struct measure n = in_child(h), d;

    h.dune = true;
    d = in_child(h);
    ck_assert_int_eq(d.inside, 3);
    same(&n, &d, "forked child at 64");
}
END_TEST

/* ---- the program's calls on our numbers ---- */

/* Dune's descriptors, as /proc/self/fd lists them. */
static int list_ours(int *fds, int max)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char path[300], target[256];
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) && n < max) {
        ssize_t len;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        len = readlink(path, target, sizeof target - 1);
        if (len < 0)
            continue;
        target[len] = 0;
        if (!strcmp(target, "/dev/kvm") || strstr(target, "kvm-") || strstr(target, "/maps"))
            fds[n++] = atoi(e->d_name);
    }
    closedir(d);
    return n;
}

static bool cloexec_in_fdinfo(int fd)
{
    char path[64], line[128];
    unsigned long flags = 0;
    FILE *f;

    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    f = fopen(path, "r");
    if (!f)
        return false;
    while (fgets(line, sizeof line, f))
        sscanf(line, "flags: %lo", &flags);
    fclose(f);
    return (flags & O_CLOEXEC) != 0;
}

START_TEST(test_calls_on_ours)
{
    struct rlimit rl = { 64, hard_limit() };
    int ours[16], n;

    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    enter();
    n = list_ours(ours, 16);
    ck_assert_int_ge(n, 4); /* /dev/kvm, the VM, a vCPU, maps */
    for (int i = 0; i < n; i++) {
        ck_assert_int_ge(ours[i], 64);
        ck_assert(cloexec_in_fdinfo(ours[i]));
        errno = 0;
        ck_assert_int_eq(close(ours[i]), -1);
        ck_assert_int_eq(errno, EBADF);
        ck_assert_int_eq(dup(ours[i]), -1);
        ck_assert_int_eq(fcntl(ours[i], F_SETFD, 0), -1);
        ck_assert_int_eq(dup2(ours[i], 10), -1);
        ck_assert_int_eq(errno, EBADF);
        ck_assert_int_eq(dup2(0, ours[i]), -1); /* at or above the limit */
        ck_assert_int_eq(dup3(0, ours[i], O_CLOEXEC), -1);
    }
    ck_assert_int_eq(syscall(SYS_close_range, 3, ~0U, 0), 0);
    ck_assert_int_eq(list_ours(ours, 16), n);
    for (int i = 0; i < n; i++)
        ck_assert(cloexec_in_fdinfo(ours[i])); /* fcntl did not clear it */
    ck_assert_int_eq(getppid() > 0, 1);
    ck_assert(dune_active());
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dune-fds");
    TCase *tc = tcase_create("descriptors");
    SRunner *sr;
    int failed;

    dune_test_require("check_dune_fds");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_soft_limits);
    tcase_add_test(tc, test_many_threads);
    tcase_add_test(tc, test_thread_when_full);
    tcase_add_test(tc, test_probe_above_low_limit);
    tcase_add_test(tc, test_no_room_stays_native);
    tcase_add_test(tc, test_large_equal_limits);
    tcase_add_test(tc, test_raise_after_enter);
    tcase_add_test(tc, test_lower_after_enter);
    tcase_add_test(tc, test_calls_on_ours);
    tcase_add_test(tc, test_fork_child);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
