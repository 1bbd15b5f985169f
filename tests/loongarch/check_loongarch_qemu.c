/*
 * check_loongarch_qemu.c - runs the bare-metal LoongArch runtime test image
 * under qemu-system-loongarch64 (TCG) and turns each guest check into a
 * Check assertion.
 *
 * The image prints "LA64CHECK <name> PASS|FAIL <detail>" lines on its UART
 * and "LA64DONE ..." at the end; it never powers off, so we kill QEMU once
 * the final line arrived (or the timeout hit).  The expected checks come
 * from checks.h, so a check the guest never reached fails here too.
 *
 * Environment: LA64_TEST_IMAGE and LA64_QEMU override the built-in paths;
 * LA64_TIMEOUT (seconds, default 60).  Exit 77 (skip) with a reason when
 * the image or QEMU is not available.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef LA64_TEST_IMAGE
#define LA64_TEST_IMAGE "tests/loongarch/la64-test.elf"
#endif
#ifndef LA64_QEMU
#define LA64_QEMU "qemu-system-loongarch64"
#endif
#ifndef LA64_HAVE_CROSS
#define LA64_HAVE_CROSS 1
#endif

struct expected { const char *name; const char *what; };
static const struct expected expected[] = {
#define LA64_CHECK(name, what) { #name, what },
#include "checks.h"
#undef LA64_CHECK
};
#define NCHECKS ((int)(sizeof expected / sizeof expected[0]))

/* What the guest said about each expected check. */
struct result { int seen, pass; char detail[256]; };
static struct result results[NCHECKS];
static int done_seen, fatal_seen, timed_out;
static char fatal_line[256], done_line[256];

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Record one UART line; returns 1 when it ends the run. */
static int parse_line(const char *line)
{
    char name[64], verdict[8];
    int off = 0;
    if (sscanf(line, "LA64CHECK %63s %7s %n", name, verdict, &off) == 2) {
        for (int i = 0; i < NCHECKS; i++) {
            if (strcmp(expected[i].name, name) != 0)
                continue;
            results[i].seen = 1;
            results[i].pass = strcmp(verdict, "PASS") == 0;
            snprintf(results[i].detail, sizeof results[i].detail, "%.240s", line + off);
        }
        return 0;
    }
    if (strncmp(line, "LA64DONE", 8) == 0) {
        done_seen = 1;
        snprintf(done_line, sizeof done_line, "%.240s", line);
        return 1;
    }
    if (strncmp(line, "LA64FATAL", 9) == 0) {
        fatal_seen = 1;
        snprintf(fatal_line, sizeof fatal_line, "%.240s", line);
        return 1;
    }
    return 0;
}

static pid_t start_qemu(const char *qemu, const char *image, int *out_fd)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execl(qemu, qemu, "-machine", "virt", "-m", "2G", "-smp", "1",
              "-display", "none", "-serial", "stdio", "-monitor", "none",
              /* No network card: its option ROM (efi-virtio.rom) lives in
               * ipxe-qemu, a package qemu-system-misc only recommends. */
              "-nic", "none", "-no-reboot", "-kernel", image, (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", qemu, strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    *out_fd = fds[0];
    return pid;
}

/* Read QEMU's output line by line (echoing it) until the final line, EOF
 * or the deadline. */
static void read_uart(int fd, double timeout)
{
    char buf[4096];
    size_t len = 0;
    double deadline = now() + timeout;
    for (;;) {
        double left = deadline - now();
        if (left <= 0) {
            timed_out = 1;
            return;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            return;                       /* QEMU exited */
        len += (size_t)n;
        char *nl;
        while ((nl = memchr(buf, '\n', len)) != NULL) {
            *nl = '\0';
            if (nl > buf && nl[-1] == '\r')
                nl[-1] = '\0';
            printf("  uart| %s\n", buf);
            int end = parse_line(buf);
            size_t used = (size_t)(nl - buf) + 1;
            memmove(buf, nl + 1, len - used);
            len -= used;
            if (end)
                return;
        }
        if (len == sizeof buf - 1)
            len = 0;                      /* overlong line: drop it */
    }
}

static int run_guest(void)
{
    const char *image = env_or("LA64_TEST_IMAGE", LA64_TEST_IMAGE);
    const char *qemu = env_or("LA64_QEMU", LA64_QEMU);
    double timeout = atof(env_or("LA64_TIMEOUT", "60"));
    if (access(image, R_OK) != 0) {
        printf("SKIP: LoongArch test image %s not built (%s)\n", image,
               LA64_HAVE_CROSS ? "run make first"
                               : "configure found no clang-19/ld.lld-19 for loongarch64");
        return 77;
    }
    if (strcmp(qemu, "no") == 0 || access(qemu, X_OK) != 0) {
        printf("SKIP: qemu-system-loongarch64 not available (%s); apt-get install qemu-system-misc\n",
               qemu);
        return 77;
    }
    printf("running %s -kernel %s (timeout %.0f s)\n", qemu, image, timeout);
    double t0 = now();
    int fd;
    pid_t pid = start_qemu(qemu, image, &fd);
    if (pid < 0) {
        perror("fork");
        return 99;
    }
    read_uart(fd, timeout);
    kill(pid, SIGKILL);              /* the image never powers off */
    waitpid(pid, NULL, 0);
    close(fd);
    printf("guest run took %.1f s%s\n", now() - t0, timed_out ? " (timed out)" : "");
    return 0;
}

START_TEST(test_guest_check)
{
    const struct expected *e = &expected[_i];
    const struct result *r = &results[_i];
    ck_assert_msg(r->seen, "%s: never reported by the guest (%s%s)", e->name,
                  fatal_seen ? fatal_line : "", timed_out ? "timeout" : "");
    ck_assert_msg(r->pass, "%s: %s -- %s", e->name, e->what, r->detail);
}
END_TEST

START_TEST(test_guest_completed)
{
    ck_assert_msg(!fatal_seen, "guest stopped: %s", fatal_line);
    ck_assert_msg(!timed_out, "guest did not finish before the timeout");
    ck_assert_msg(done_seen, "no LA64DONE line from the guest");
    ck_assert_msg(strstr(done_line, " fail=0") != NULL, "%s", done_line);
}
END_TEST

static Suite *loongarch_suite(void)
{
    Suite *s = suite_create("loongarch_qemu");
    TCase *tc = tcase_create("guest");
    tcase_add_loop_test(tc, test_guest_check, 0, NCHECKS);
    tcase_add_test(tc, test_guest_completed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = run_guest();
    if (rc != 0)
        return rc;
    SRunner *sr = srunner_create(loongarch_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
