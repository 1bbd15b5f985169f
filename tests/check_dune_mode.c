/*
 * check_dune_mode.c - which privilege level dune_enter() picks, and what it
 * refuses.  The answer depends on the KVM: a paravirtual one (kvm_pvm),
 * where guest CPL0 is emulated and SYSCALL stays at CPL3, or hardware
 * virtualization (VT-x/SVM), where CPL0 is native and SYSCALL enters it.
 *
 *                        paravirtual (kvm_pvm)     hardware
 *   auto                 cpl3                      cpl0
 *   DUNE_MODE=cpl3       cpl3                      refused (it would hang)
 *   DUNE_MODE=cpl0       refused (glibc dies)      cpl0
 *   opts.mode = CPL0     cpl0 (raw code only)      cpl0
 *   opts.mode = CPL3     cpl3                      refused
 *
 * A refusal leaves the thread native with a one-line reason; under
 * dune-run the program runs natively to its normal exit.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dune.h"
#include "dune_test.h"

static bool paravirtual(void)
{
    return access("/sys/module/kvm_pvm", F_OK) == 0;
}

static unsigned cpl(void)
{
    unsigned short cs;

    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    return cs & 3;
}

/* Enter with opts, note the privilege level, leave at once (no libc
 * inside: at emulated CPL0 only plain code runs).  dune_status() is read
 * after leaving, for the reason of a refusal. */
struct outcome {
    int r;
    unsigned cpl;
    char reason[256];
};

static struct outcome try_enter(const struct dune_options *o)
{
    struct outcome out = { 0 };
    struct dune_status st;
    unsigned c;

    out.r = dune_enter(o);
    c = cpl();
    if (out.r == 0)
        ck_assert_int_eq(dune_leave(), 0);
    dune_status(&st);
    out.cpl = c;
    snprintf(out.reason, sizeof out.reason, "%s", st.reason);
    return out;
}

static void assert_entered(const struct outcome *o, enum dune_mode m)
{
    ck_assert_int_eq(o->r, 0);
    ck_assert_uint_eq(o->cpl, m == DUNE_MODE_CPL0 ? 0 : 3);
}

static void assert_refused(const struct outcome *o, const char *why)
{
    ck_assert_int_eq(o->r, -ENOTSUP);
    ck_assert_int_eq(dune_active(), 0);
    ck_assert_ptr_nonnull(strstr(o->reason, why));
    ck_assert_ptr_null(strchr(o->reason, '\n'));
}

START_TEST(test_auto)
{
    struct outcome o;

    unsetenv("DUNE_MODE");
    o = try_enter(NULL);
    assert_entered(&o, paravirtual() ? DUNE_MODE_CPL3 : DUNE_MODE_CPL0);
}
END_TEST

START_TEST(test_env_cpl3)
{
    struct outcome o;

    setenv("DUNE_MODE", "cpl3", 1);
    o = try_enter(NULL);
    if (paravirtual())
        assert_entered(&o, DUNE_MODE_CPL3);
    else
        assert_refused(&o, "cpl3 mode is not supported on hardware virtualization");
}
END_TEST

START_TEST(test_env_cpl0)
{
    struct outcome o;

    setenv("DUNE_MODE", "cpl0", 1);
    o = try_enter(NULL);
    if (paravirtual())
        assert_refused(&o, "DUNE_MODE=cpl0: guest CPL0 is emulated");
    else
        assert_entered(&o, DUNE_MODE_CPL0);
}
END_TEST

START_TEST(test_api_cpl0)
{
    struct dune_options opts = { .mode = DUNE_MODE_CPL0 };
    struct outcome o;

    setenv("DUNE_MODE", "cpl3", 1); /* the API's choice wins */
    o = try_enter(&opts);
    assert_entered(&o, DUNE_MODE_CPL0);
}
END_TEST

START_TEST(test_api_cpl3)
{
    struct dune_options opts = { .mode = DUNE_MODE_CPL3 };
    struct outcome o;

    unsetenv("DUNE_MODE");
    o = try_enter(&opts);
    if (paravirtual())
        assert_entered(&o, DUNE_MODE_CPL3);
    else
        assert_refused(&o, "cpl3 mode is not supported");
}
END_TEST

/* A glibc program under dune-run with the mode the platform cannot run:
 * one line saying why, then the program's own result, natively. */
START_TEST(test_dune_run_refusal)
{
    const char *mode = paravirtual() ? "cpl0" : "cpl3";
    char cmd[512], line[512], *got = NULL;
    size_t n = 0;
    int lines = 0, st;
    FILE *f;

    snprintf(cmd, sizeof cmd, "env -u DUNE_VERBOSE DUNE_MODE=%s %s /bin/sh -c 'echo out >/dev/null; exit 3' 2>&1",
             mode, DUNE_RUN);
    f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    while (getline(&got, &n, f) > 0) {
        lines++;
        snprintf(line, sizeof line, "%s", got);
    }
    free(got);
    st = pclose(f);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 3);
    ck_assert_int_eq(lines, 1);
    ck_assert_ptr_nonnull(strstr(line, "dune-run: running natively: "));
    ck_assert_ptr_nonnull(strstr(line, paravirtual() ? "DUNE_MODE=cpl0" : "cpl3 mode"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dune_mode");
    TCase *tc = tcase_create("mode");
    SRunner *sr;
    int failed;

    dune_test_require("check_dune_mode");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_auto);
    tcase_add_test(tc, test_env_cpl3);
    tcase_add_test(tc, test_env_cpl0);
    tcase_add_test(tc, test_api_cpl0);
    tcase_add_test(tc, test_api_cpl3);
    tcase_add_test(tc, test_dune_run_refusal);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
