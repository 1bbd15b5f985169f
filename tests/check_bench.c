/*
 * check_bench.c - the GC benchmark workloads compute the same, nonzero
 * checksum in full (non-incremental) and mprotect (incremental) modes.
 *
 * Each workload runs at a tiny size as a child process, as bench/run-suite
 * runs it; the test parses its RESULT line.  A missing workload binary (xml
 * without libxml2) is reported and skipped, not failed.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef BENCH_DIR
#define BENCH_DIR "bench"
#endif

struct workload {
    const char *prog;
    const char *args[8];
};

static const struct workload workloads[] = {
    { "gcbench", { "-s", "1", "-d", "12", "-a", "10000", NULL } },
    { "list", { "-s", "200", "-n", "20000", NULL } },
    { "hashmap", { "-s", "100", "-k", "2000", NULL } },
    { "xml", { "-s", "4", "-e", "1000", NULL } },
    { "scale", { "-m", "8", "-t", "3", NULL } },
};
enum { NWORKLOADS = sizeof workloads / sizeof workloads[0] };

/* Child side: set up the mode's environment and exec the workload. */
static void exec_workload(const char *path, const struct workload *w, int incremental, int out)
{
    char *argv[10] = { (char *)path };

    for (int i = 0; w->args[i]; i++)
        argv[i + 1] = (char *)w->args[i];
    dup2(out, STDOUT_FILENO);
    if (incremental) {
        unsetenv("GC_DISABLE_INCREMENTAL");
        setenv("GC_ENABLE_INCREMENTAL", "1", 1);
        setenv("BENCH_MODE", "mprotect", 1);
    } else {
        unsetenv("GC_ENABLE_INCREMENTAL");
        setenv("GC_DISABLE_INCREMENTAL", "1", 1);
        setenv("BENCH_MODE", "full", 1);
    }
    execv(path, argv);
    _exit(127);
}

/* Run one workload in one mode; return its RESULT line in `line`, or fail. */
static void run(const struct workload *w, int incremental, char *line, size_t len)
{
    char path[512];
    int fd[2], status;
    pid_t pid;
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", BENCH_DIR, w->prog);
    ck_assert_int_eq(pipe(fd), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fd[0]);
        exec_workload(path, w, incremental, fd[1]);
    }
    close(fd[1]);
    f = fdopen(fd[0], "r");
    line[0] = 0;
    while (fgets(line, (int)len, f) && strncmp(line, "RESULT ", 7))
        line[0] = 0;
    fclose(f);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s exited with status 0x%x",
                  w->prog, status);
    ck_assert_msg(line[0], "%s printed no RESULT line", w->prog);
}

/* Value of `key=` in a RESULT line, copied into out. */
static int field(const char *line, const char *key, char *out, size_t len)
{
    size_t kl = strlen(key);

    for (const char *p = line; (p = strstr(p, key)); p++) {
        if ((p == line || p[-1] == ' ') && p[kl] == '=') {
            size_t n = strcspn(p + kl + 1, " \n");

            snprintf(out, len, "%.*s", (int)n, p + kl + 1);
            return 1;
        }
    }
    return 0;
}

START_TEST(test_checksums_agree)
{
    const struct workload *w = &workloads[_i];
    char path[512], full[1024], inc[1024], a[64], b[64], mode[32];

    snprintf(path, sizeof path, "%s/%s", BENCH_DIR, w->prog);
    if (access(path, X_OK)) {
        fprintf(stderr, "check_bench: %s not built, skipped\n", path);
        return;
    }
    run(w, 0, full, sizeof full);
    run(w, 1, inc, sizeof inc);
    ck_assert(field(full, "checksum", a, sizeof a));
    ck_assert(field(inc, "checksum", b, sizeof b));
    ck_assert_msg(strtoull(a, NULL, 0) != 0, "%s: zero checksum", w->prog);
    ck_assert_msg(!strcmp(a, b), "%s: checksum full %s != mprotect %s", w->prog, a, b);
    ck_assert(field(full, "incremental", mode, sizeof mode));
    ck_assert_str_eq(mode, "0");
    ck_assert(field(inc, "incremental", mode, sizeof mode));
    ck_assert_str_eq(mode, "1");
}
END_TEST

static Suite *bench_suite(void)
{
    Suite *s = suite_create("bench");
    TCase *tc = tcase_create("workloads");

    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_checksums_agree, 0, NWORKLOADS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(bench_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
