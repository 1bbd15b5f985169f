/*
 * check_dune_run.c - real programs under dune-run behave as natively:
 * same standard output, same exit status.
 */
#define _GNU_SOURCE
#include <check.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dune_test.h"

#ifndef DUNE_RUN
#define DUNE_RUN "dune/dune-run"
#endif

struct result {
    char out[1 << 16], err[4096];
    int status;
};

static void drain(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;

    while ((r = read(fd, buf + n, cap - 1 - n)) > 0 && n < cap - 1)
        n += (size_t)r;
    buf[n] = 0;
    close(fd);
}

/* Run argv (optionally under dune-run), capture stdout and stderr. */
static void run(char *const argv[], bool dune, bool hide_kvm, struct result *res)
{
    int o[2], e[2];
    pid_t pid;

    ck_assert_int_eq(pipe(o), 0);
    ck_assert_int_eq(pipe(e), 0);
    pid = fork();
    if (pid == 0) {
        char *args[32];
        int i = 0;
        if (hide_kvm && (unshare(CLONE_NEWNS) != 0 ||
                         mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
                         mount("tmpfs", "/dev", "tmpfs", 0, NULL) != 0))
            _exit(98);
        if (dune)
            args[i++] = DUNE_RUN;
        for (int j = 0; argv[j] && i < 31; j++)
            args[i++] = argv[j];
        args[i] = NULL;
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(o[0]), close(e[0]), close(o[1]), close(e[1]);
        execvp(args[0], args);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    drain(o[0], res->out, sizeof res->out);
    drain(e[0], res->err, sizeof res->err);
    waitpid(pid, &res->status, 0);
}

static struct result native, indune;

static void same_as_native(char *const argv[])
{
    run(argv, false, false, &native);
    run(argv, true, false, &indune);
    ck_assert_msg(native.status == indune.status, "%s: status %#x natively, %#x in Dune (%s)",
                  argv[0], native.status, indune.status, indune.err);
    ck_assert_msg(strcmp(native.out, indune.out) == 0, "%s: output differs:\n%s\n---\n%s",
                  argv[0], native.out, indune.out);
    ck_assert_msg(strstr(indune.err, "running natively") == NULL, "%s fell back: %s", argv[0],
                  indune.err);
}

START_TEST(test_true_false)
{
    char *t[] = { "true", NULL }, *f[] = { "false", NULL };

    same_as_native(t);
    ck_assert_int_eq(WEXITSTATUS(indune.status), 0);
    same_as_native(f);
    ck_assert_int_eq(WEXITSTATUS(indune.status), 1);
}
END_TEST

START_TEST(test_ls)
{
    char *a[] = { "ls", "-la", "/usr/lib", NULL };

    same_as_native(a);
}
END_TEST

START_TEST(test_sort_sha256sum)
{
    char path[] = "/tmp/check_dune_run.XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    unsigned seed = 42;

    for (int i = 0; i < 20000; i++)
        fprintf(f, "%08x line %d\n", rand_r(&seed), i);
    fclose(f);
    char *s[] = { "sort", path, NULL }, *h[] = { "sha256sum", path, NULL };
    same_as_native(s);
    same_as_native(h);
    unlink(path);
}
END_TEST

START_TEST(test_python)
{
    char *p[] = { "python3", "-c", "import hashlib,sys; print(sum(range(10**6)), "
                  "hashlib.sha1(b'dune').hexdigest()); sys.exit(3)", NULL };

    same_as_native(p);
    ck_assert_int_eq(WEXITSTATUS(indune.status), 3);
}
END_TEST

/* A shell forks and execs its children: each exec re-enters Dune. */
START_TEST(test_shell_children)
{
    char *s[] = { "sh", "-c", "echo $((6*7)); ls / | wc -l; exit 5", NULL };

    same_as_native(s);
    ck_assert_int_eq(WEXITSTATUS(indune.status), 5);
}
END_TEST

START_TEST(test_crash_status)
{
    char *s[] = { "sh", "-c", "ulimit -c 0; kill -SEGV $$", NULL };

    same_as_native(s);
    ck_assert(WIFSIGNALED(indune.status));
}
END_TEST

START_TEST(test_verbose_summary)
{
    char *t[] = { "true", NULL };

    setenv("DUNE_VERBOSE", "1", 1);
    run(t, true, false, &indune);
    unsetenv("DUNE_VERBOSE");
    ck_assert_int_eq(indune.status, 0);
    ck_assert_msg(strstr(indune.err, "dune: mode=") && strstr(indune.err, "syscalls="),
                  "no summary: %s", indune.err);
}
END_TEST

/* ---- Dune's messages: only the process the user started speaks ---- */

static int count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Children (forked, exec'd) print no summary into their stderr, which a
 * test suite comparing a child's stderr would see; the top one does. */
START_TEST(test_children_quiet)
{
    char *s[] = { "sh", "-c", "sh -c 'echo from-child >&2' 2>&1; (ls /nonexistent) 2>&1; "
                  "ls / >/dev/null 2>&1; echo done", NULL };

    setenv("DUNE_VERBOSE", "1", 1);
    run(s, false, false, &native);
    run(s, true, false, &indune);
    unsetenv("DUNE_VERBOSE");
    ck_assert_int_eq(native.status, indune.status);
    ck_assert_str_eq(indune.out, native.out);
    ck_assert_msg(count(indune.err, "dune: mode=") == 1, "stderr: %s", indune.err);
}
END_TEST

/* DUNE_LOG: every process's lines, after its pid; stderr as natively. */
START_TEST(test_dune_log)
{
    char path[] = "/tmp/check_dune_log.XXXXXX", buf[4096], *line;
    char *s[] = { "sh", "-c", "sh -c true; ls / >/dev/null", NULL };
    int fd = mkstemp(path), pids[8], n = 0, distinct = 0;
    ssize_t len;

    setenv("DUNE_VERBOSE", "1", 1);
    setenv("DUNE_LOG", path, 1);
    run(s, false, false, &native);
    run(s, true, false, &indune);
    unsetenv("DUNE_LOG");
    unsetenv("DUNE_VERBOSE");
    ck_assert_int_eq(indune.status, 0);
    ck_assert_str_eq(indune.err, native.err);
    len = read(fd, buf, sizeof buf - 1);
    close(fd);
    unlink(path);
    ck_assert_int_gt(len, 0);
    buf[len] = 0;
    for (line = strtok(buf, "\n"); line && n < 8; line = strtok(NULL, "\n")) {
        int pid, used = 0;
        ck_assert_msg(sscanf(line, "[%d] dune%n", &pid, &used) == 1 && used > 0,
                      "log line: %s", line);
        if (strstr(line, "] dune: mode="))
            pids[n++] = pid;
    }
    for (int i = 0; i < n; i++) {
        bool seen = false;
        for (int j = 0; j < i; j++)
            seen |= pids[j] == pids[i];
        distinct += !seen;
    }
    ck_assert_int_ge(distinct, 3); /* sh, the sh it runs, ls */
}
END_TEST

/* A program that closes stderr (as coreutils do at exit) keeps the
 * summary: it goes to the stderr the program started with. */
START_TEST(test_summary_after_closing_stderr)
{
    char *s[] = { "sh", "-c", "exec 2>&-; echo hi", NULL }, *l[] = { "ls", "/", NULL };

    setenv("DUNE_VERBOSE", "1", 1);
    run(s, true, false, &indune);
    ck_assert_str_eq(indune.out, "hi\n");
    ck_assert_msg(strstr(indune.err, "dune: mode="), "stderr: %s", indune.err);
    run(l, true, false, &indune);
    unsetenv("DUNE_VERBOSE");
    ck_assert_msg(strstr(indune.err, "dune: mode="), "stderr: %s", indune.err);
}
END_TEST

/* A child that drops its privileges cannot open /dev/kvm: it runs
 * natively without a word on its stderr (in DUNE_LOG it says why). */
START_TEST(test_denied_child_quiet)
{
    char path[] = "/tmp/check_dune_log.XXXXXX", buf[1024];
    char *s[] = { "sh", "-c", "setpriv --reuid=65534 --regid=65534 --clear-groups "
                  "sh -c 'echo child' 2>&1", NULL };
    int fd;
    ssize_t len;

    if (getuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) {
        printf("test_denied_child_quiet: needs root and setpriv, skipped\n");
        return;
    }
    same_as_native(s);
    ck_assert_str_eq(indune.out, "child\n");
    ck_assert_str_eq(indune.err, native.err);
    fd = mkstemp(path);
    fchmod(fd, 0666); /* the child writes it as nobody */
    setenv("DUNE_LOG", path, 1);
    run(s, true, false, &indune);
    unsetenv("DUNE_LOG");
    ck_assert_str_eq(indune.out, "child\n");
    len = read(fd, buf, sizeof buf - 1);
    close(fd);
    unlink(path);
    buf[len > 0 ? len : 0] = 0;
    ck_assert_msg(strstr(buf, "] dune-run: running natively: cannot open /dev/kvm: Permission"),
                  "log: %s", buf);
}
END_TEST

/* A program at 16/16 descriptors leaves no room for Dune's above its limit.
 * Without CAP_SYS_RESOURCE it runs natively, saying so in one line; with
 * it (root in the SVM guest) Dune raises the hard limit for a moment,
 * places its descriptors above, and enters with nothing to say. */
START_TEST(test_no_fd_room_message)
{
    char *s[] = { "sh", "-c", "ulimit -n 16 && exec sh -c 'echo $((6*7))'", NULL };
    bool cap = dune_test_can_raise_nofile();

    run(s, true, false, &indune);
    ck_assert_int_eq(indune.status, 0);
    ck_assert_str_eq(indune.out, "42\n");
    if (cap)
        ck_assert_msg(indune.err[0] == 0, "with CAP_SYS_RESOURCE, stderr: %s", indune.err);
    else
        ck_assert_msg(count(indune.err, "\n") == 1 &&
                          strstr(indune.err,
                                 "dune-run: running natively: RLIMIT_NOFILE 16 (hard 16)"),
                      "stderr: %s", indune.err);
}
END_TEST

START_TEST(test_no_kvm_runs_natively)
{
    char *e[] = { "sh", "-c", "echo still here", NULL };

    if (getuid() != 0) {
        printf("test_no_kvm_runs_natively: needs root for a mount namespace, skipped\n");
        return;
    }
    run(e, true, true, &indune);
    ck_assert_int_eq(indune.status, 0);
    ck_assert_str_eq(indune.out, "still here\n");
    ck_assert_msg(strstr(indune.err, "dune-run: running natively: cannot open /dev/kvm"),
                  "stderr: %s", indune.err);
}
END_TEST

START_TEST(test_missing_program)
{
    char *m[] = { "/nonexistent/prog", NULL };

    run(m, true, false, &indune);
    ck_assert_int_eq(WEXITSTATUS(indune.status), 127);
    ck_assert_ptr_nonnull(strstr(indune.err, "cannot run /nonexistent/prog"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dune-run");
    TCase *tc = tcase_create("programs");
    SRunner *sr;
    int failed;

    dune_test_require("check_dune_run");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_true_false);
    tcase_add_test(tc, test_ls);
    tcase_add_test(tc, test_sort_sha256sum);
    tcase_add_test(tc, test_python);
    tcase_add_test(tc, test_shell_children);
    tcase_add_test(tc, test_crash_status);
    tcase_add_test(tc, test_verbose_summary);
    tcase_add_test(tc, test_children_quiet);
    tcase_add_test(tc, test_dune_log);
    tcase_add_test(tc, test_summary_after_closing_stderr);
    tcase_add_test(tc, test_denied_child_quiet);
    tcase_add_test(tc, test_no_fd_room_message);
    tcase_add_test(tc, test_no_kvm_runs_natively);
    tcase_add_test(tc, test_missing_program);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
