/*
 * dune_test.h - what the Dune test suites share, above all the one test
 * that decides whether Dune can be used here.
 *
 * Dune is usable when DUNE_DISABLE is unset, /dev/kvm opens read-write
 * and dune_enter() succeeds (callers link the Dune core).  When one of the
 * first two fails, a suite that needs Dune cannot run: it is a SKIP
 * (exit 77), with the reason printed.  When /dev/kvm opens but dune_enter()
 * fails, Dune is broken on a machine where it should work: that is a
 * FAIL, never a skip.  tests/dune_usable.sh asks the same question for the
 * shell suites (through tests/dune-usable, built from dune_usable.c).
 */
#ifndef DUNE_TEST_H
#define DUNE_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dune.h"

enum { DUNE_TEST_USABLE = 0, DUNE_TEST_BROKEN = 1, DUNE_TEST_SKIP = 77 };

/* DUNE_TEST_USABLE, DUNE_TEST_SKIP or DUNE_TEST_BROKEN; why gets the
 * reason for the latter two.  dune_enter() is tried in a child, so the
 * caller stays native. */
static inline int dune_test_usable(char *why, size_t len)
{
    const char *dis = getenv("DUNE_DISABLE");
    char buf[256] = "";
    int fd, p[2], status;
    ssize_t n;
    pid_t pid;

    if (dis && *dis) {
        snprintf(why, len, "DUNE_DISABLE is set");
        return DUNE_TEST_SKIP;
    }
    fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, len, "cannot open /dev/kvm read-write: %s", strerror(errno));
        return DUNE_TEST_SKIP;
    }
    close(fd);
    if (pipe(p) != 0) {
        snprintf(why, len, "pipe: %s", strerror(errno));
        return DUNE_TEST_BROKEN;
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        struct dune_status st;
        int r = dune_enter(NULL);

        if (r == 0)
            _exit(0);
        dune_status(&st);
        dprintf(p[1], "%s", st.reason[0] ? st.reason : strerror(-r));
        _exit(1);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        snprintf(why, len, "fork: %s", strerror(errno));
        return DUNE_TEST_BROKEN;
    }
    n = read(p[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(p[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return DUNE_TEST_USABLE;
    snprintf(why, len, "/dev/kvm opens read-write but dune_enter fails: %s",
             buf[0] ? buf : "the probe died");
    return DUNE_TEST_BROKEN;
}

/* For a suite's main(): return if Dune is usable; otherwise exit 77 (skip)
 * or 1 (fail) with the reason on stdout, which automake keeps in the log. */
static inline void dune_test_require(const char *suite)
{
    char why[300];
    int r = dune_test_usable(why, sizeof why);

    if (r == DUNE_TEST_USABLE)
        return;
    printf("%s: %s: %s\n", r == DUNE_TEST_SKIP ? "SKIP" : "FAIL", suite, why);
    fflush(stdout);
    exit(r);
}

/* Can this process raise its hard RLIMIT_NOFILE (CAP_SYS_RESOURCE: root
 * in the SVM guest, not in our sandbox)?  Then Dune makes room for its
 * descriptors above any limit, by raising the hard limit for a moment,
 * and enters where it would otherwise refuse.  Asked in a child, so the
 * caller's limits stay as they are. */
static inline bool dune_test_can_raise_nofile(void)
{
    int status;
    pid_t pid = fork();

    if (pid < 0)
        return false;
    if (pid == 0) {
        struct rlimit rl = { 64, 64 };
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            _exit(1);
        rl.rlim_max = 128;
        _exit(setrlimit(RLIMIT_NOFILE, &rl) == 0 ? 0 : 1);
    }
    return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

#ifdef ck_assert_msg
/* Enter Dune or fail the test with the reason dune_status() gives. */
static inline void enter(void)
{
    struct dune_status st;
    int r = dune_enter(NULL);

    dune_status(&st);
    ck_assert_msg(r == 0, "dune_enter: %d (%s)", r, st.reason);
}
#endif

#endif
