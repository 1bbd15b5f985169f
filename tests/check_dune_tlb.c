/*
 * check_dune_tlb.c - TLB shootdown across vCPUs (dune_tlb_shootdown), and
 * the property it exists for: after one vCPU clears a page's D bit, a
 * write another vCPU makes through the entry it had cached must still set
 * it.  (On kvm_pvm, KVM's shadow paging traps the clearing write and
 * flushes every vCPU by itself, so the property holds here even without
 * our shootdown; on EPT/NPT hardware it needs it.)
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dune.h"
#include "dune_test.h"

#define PG 4096UL
#define NP 64     /* pages written per round */
#define ROUNDS 50

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

START_TEST(test_alone_is_free)
{
    enter();
    ck_assert_uint_eq(dune_active_vcpus(), 1);
    ck_assert_int_eq(dune_tlb_shootdown(), 0);
}
END_TEST

START_TEST(test_outside_dune)
{
    ck_assert_int_eq(dune_tlb_shootdown(), -ENOTCONN);
}
END_TEST

/* A second vCPU that stays in the guest (no exits) until told to stop. */
static atomic_int spin_state;
static void *spinner(void *arg)
{
    (void)arg;
    atomic_store(&spin_state, 1);
    while (atomic_load(&spin_state) == 1)
        ;
    return NULL;
}

/* Start the spinner and wait until it runs in the guest; 0 or an errno. */
static int start_spinner(pthread_t *t)
{
    int r;

    atomic_store(&spin_state, 0);
    r = pthread_create(t, NULL, spinner, NULL);
    if (r == 0)
        while (atomic_load(&spin_state) != 1)
            ;
    return r;
}

static void stop_spinner(pthread_t t)
{
    atomic_store(&spin_state, 2);
    pthread_join(t, NULL);
}

START_TEST(test_shootdown_with_spinning_vcpu)
{
    pthread_t t;
    double t0, dt;

    enter();
    ck_assert_int_eq(start_spinner(&t), 0);
    ck_assert_uint_eq(dune_active_vcpus(), 2);
    ck_assert_int_eq(dune_tlb_shootdown(), 0); /* sets up the logged area */
    t0 = now_us();
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(dune_tlb_shootdown(), 0);
    dt = (now_us() - t0) / 20;
    stop_spinner(t);
    printf("# shootdown with 2 vCPUs: %.1f us each\n", dt);
}
END_TEST

/* In a forked child (a new VM, new vCPUs) the shootdown must work too:
 * it once read the parent's vCPU structure, which the child's guest
 * cannot see, and killed the child. */
START_TEST(test_shootdown_in_forked_child)
{
    pthread_t t;
    pid_t pid;
    int status;

    enter();
    ck_assert_int_eq(start_spinner(&t), 0);
    ck_assert_int_eq(dune_tlb_shootdown(), 0);
    stop_spinner(t);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int r;
        if (start_spinner(&t) != 0)
            _exit(2);
        r = dune_tlb_shootdown();
        stop_spinner(t);
        _exit(r == 0 ? 0 : 3);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}
END_TEST

/* The last leave releases the VM; the next one must log the area again. */
START_TEST(test_shootdown_after_new_vm)
{
    for (int round = 0; round < 2; round++) {
        pthread_t t;
        enter();
        ck_assert_int_eq(start_spinner(&t), 0);
        ck_assert_int_eq(dune_tlb_shootdown(), 0);
        stop_spinner(t);
        ck_assert_int_eq(dune_leave(), 0);
    }
}
END_TEST

/* Handshake between the collector (main) and the writer: phase 4r+1 asks
 * the writer to warm its TLB, 4r+3 to write again after the clear. */
static char *area;
static atomic_int phase;

static void wait_phase(int want)
{
    while (atomic_load(&phase) != want)
        if (atomic_load(&phase) < 0)
            pthread_exit(NULL);
}

static void *writer(void *arg)
{
    (void)arg;
    for (int r = 0;; r++) {
        wait_phase(4 * r + 1);
        for (unsigned i = 0; i < NP; i++)
            area[i * PG]++; /* entry cached with D set */
        atomic_store(&phase, 4 * r + 2);
        wait_phase(4 * r + 3);
        for (unsigned i = 0; i < NP; i++)
            area[i * PG + 8]++; /* through that entry, after the clear */
        atomic_store(&phase, 4 * r + 4);
    }
    return NULL;
}

static void step(int *ph)
{
    atomic_store(&phase, ++*ph);
    while (atomic_load(&phase) != *ph + 1)
        ;
    ++*ph;
}

START_TEST(test_write_after_remote_clear_is_seen)
{
    pthread_t t;
    uint64_t bm[(NP + 63) / 64];
    long missed = 0;
    int ph = 0;

    enter();
    area = mmap(NULL, NP * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(area, MAP_FAILED);
    memset(area, 0, NP * PG);
    atomic_store(&phase, 0);
    ck_assert_int_eq(pthread_create(&t, NULL, writer, NULL), 0);
    for (int r = 0; r < ROUNDS; r++) {
        step(&ph); /* writer warmed its TLB */
        ck_assert_int_ge(dune_dirty_read_clear(area, NP * PG, bm), 0);
        step(&ph); /* writer wrote again */
        long n = dune_dirty_read_clear(area, NP * PG, bm);
        ck_assert_int_ge(n, 0);
        missed += NP - n;
    }
    atomic_store(&phase, -1);
    pthread_join(t, NULL);
    printf("# %d rounds x %d pages written by another vCPU after a clear: %ld missed\n", ROUNDS,
           NP, missed);
    ck_assert_int_eq(missed, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dune_tlb");
    TCase *tc = tcase_create("shootdown");

    if (access("/dev/kvm", F_OK) != 0) {
        printf("SKIP: /dev/kvm is absent on this machine: Dune tests cannot run\n");
        return 77;
    }
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_outside_dune);
    tcase_add_test(tc, test_alone_is_free);
    tcase_add_test(tc, test_shootdown_with_spinning_vcpu);
    tcase_add_test(tc, test_shootdown_in_forked_child);
    tcase_add_test(tc, test_shootdown_after_new_vm);
    tcase_add_test(tc, test_write_after_remote_clear_is_seen);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
