/*
 * dune-micro - what running inside Dune costs, measured natively and inside
 * Dune in the same process and the same run, reported as ratios.
 *
 *   dune-micro [-q]        (-q: fewer repetitions)
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "dune.h"

#define PAGE DUNE_PAGE_SIZE
#define REPS 5

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int quick;

/* Each benchmark returns microseconds per operation. */
static double bench_getppid(void)
{
    int n = quick ? 200 : 2000;
    double t = now();

    for (int i = 0; i < n; i++)
        syscall(SYS_getppid);
    return (now() - t) / n * 1e6;
}

/* Natively an unknown syscall (ENOSYS); inside Dune the empty hypercall:
 * the cost of one VM exit and re-entry with no host work. */
static double bench_empty_exit(void)
{
    int n = quick ? 200 : 2000;
    double t = now();

    for (int i = 0; i < n; i++)
        syscall(0x44550002L);
    return (now() - t) / n * 1e6;
}

static double bench_first_touch(void)
{
    size_t n = quick ? 128 : 1024;
    char *p = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    double t;

    if (p == MAP_FAILED)
        return -1;
    t = now();
    for (size_t i = 0; i < n; i++)
        ((volatile char *)p)[i * PAGE] = 1;
    t = now() - t;
    munmap(p, n * PAGE);
    return t / n * 1e6;
}

static double bench_mmap_munmap(void)
{
    int n = quick ? 20 : 200;
    double t = now();

    for (int i = 0; i < n; i++) {
        void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED || munmap(p, 1 << 20) != 0)
            return -1;
    }
    return (now() - t) / n * 1e6;
}

static void *nothing(void *arg)
{
    return arg;
}

static double bench_thread(void)
{
    int n = quick ? 10 : 50;
    double t = now();

    for (int i = 0; i < n; i++) {
        pthread_t th;
        if (pthread_create(&th, NULL, nothing, NULL) != 0 || pthread_join(th, NULL) != 0)
            return -1;
    }
    return (now() - t) / n * 1e6;
}

static double bench_fork(void)
{
    int n = quick ? 5 : 20, st;
    double t = now();

    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        if (pid < 0 || waitpid(pid, &st, 0) != pid)
            return -1;
    }
    return (now() - t) / n * 1e6;
}

static volatile int caught;
static void on_usr1(int sig)
{
    caught = sig;
}

/* kill() to ourselves until the handler has run and returned. */
static double bench_signal(void)
{
    int n = quick ? 100 : 500;
    struct sigaction sa = { .sa_handler = on_usr1 };
    double t;

    sigaction(SIGUSR1, &sa, NULL);
    t = now();
    for (int i = 0; i < n; i++) {
        caught = 0;
        kill(getpid(), SIGUSR1);
        while (!caught)
            ;
    }
    return (now() - t) / n * 1e6;
}

static volatile unsigned long sink;

/* Pure CPL3 work: no system calls, no faults (the data fits in cache). */
static double bench_compute(void)
{
    unsigned long x = 88172645463325252UL, acc = 0;
    long n = quick ? 20000000 : 200000000;
    double t = now();

    for (long i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        acc += x & 0xff;
    }
    sink = acc;
    return (now() - t) / n * 1e6;
}

struct bench {
    const char *name, *unit_note;
    double (*fn)(void);
    double native, dune;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median_of(double (*fn)(void))
{
    double v[REPS];

    for (int i = 0; i < REPS; i++)
        v[i] = fn();
    qsort(v, REPS, sizeof v[0], cmp_double);
    return v[REPS / 2];
}

/* ---- inside Dune only: flushing this vCPU's TLB vs all vCPUs' ---- */

static double bench_local_flush(void)
{
    int n = quick ? 50 : 200;
    double t = now();

    for (int i = 0; i < n; i++)
        dune_flush_tlb();
    return (now() - t) / n * 1e6;
}

static double bench_shootdown(void)
{
    int n = quick ? 10 : 50;
    double t = now();

    for (int i = 0; i < n; i++)
        if (dune_tlb_shootdown() < 0)
            return -1;
    return (now() - t) / n * 1e6;
}

/* A collector reading 16 small ranges, each with a dirty page: D-bit
 * read-and-clear per range with its own shootdown, or all in one TLB batch
 * (one shootdown at the end).  -1 on failure. */
#define CLEAR_RANGES 16
static char *clear_area;

static double clear_ranges(int batched)
{
    int n = quick ? 3 : 10;
    double t = 0;
    uint64_t bm;

    for (int k = 0; k < n; k++) {
        for (int i = 0; i < CLEAR_RANGES; i++)
            clear_area[i * PAGE]++;
        double t0 = now();
        int bad = batched && dune_tlb_batch_begin() < 0;
        for (int i = 0; i < CLEAR_RANGES && !bad; i++)
            bad = dune_dirty_read_clear(clear_area + i * PAGE, PAGE, &bm) < 0;
        if (batched && dune_tlb_batch_end() < 0)
            bad = 1;
        if (bad)
            return -1;
        t += now() - t0;
    }
    return t / n * 1e6;
}

static double bench_clear_each(void)
{
    return clear_ranges(0);
}

static double bench_clear_batched(void)
{
    return clear_ranges(1);
}

/* A second vCPU that stays in the guest, so the shootdown has a TLB to
 * reach (alone, it returns at once). */
static volatile int spin_state;
static void *spinner(void *arg)
{
    (void)arg;
    spin_state = 1;
    while (spin_state == 1)
        __asm__ volatile("pause");
    return NULL;
}

static void report_flushes(void)
{
    pthread_t t;
    double local = median_of(bench_local_flush), shoot, each = -1, batched = -1;

    clear_area = mmap(NULL, CLEAR_RANGES * PAGE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    spin_state = 0;
    if (clear_area == MAP_FAILED || pthread_create(&t, NULL, spinner, NULL) != 0)
        return;
    while (spin_state != 1)
        ;
    shoot = median_of(bench_shootdown);
    if (shoot >= 0) {
        each = median_of(bench_clear_each);
        batched = median_of(bench_clear_batched);
    }
    spin_state = 2;
    pthread_join(t, NULL);
    munmap(clear_area, CLEAR_RANGES * PAGE);
    if (shoot < 0 || each < 0 || batched < 0) {
        printf("inside Dune: TLB shootdown failed\n");
        return;
    }
    printf("inside Dune: TLB flush of this vCPU %.1f us; shootdown of all vCPUs "
           "(a second one spinning in the guest) %.1f us, %.1fx\n", local, shoot, shoot / local);
    printf("inside Dune, 2 vCPUs: D-bit read-and-clear of %d one-page ranges, each dirty: "
           "%.0f us shooting down per range, %.0f us in one TLB batch, %.2fx\n",
           CLEAR_RANGES, each, batched, each / batched);
}

int main(int argc, char **argv)
{
    struct bench b[] = {
        { "getppid round trip", "us/call", bench_getppid, 0, 0 },
        { "empty exit (floor)", "us/call", bench_empty_exit, 0, 0 },
        { "first-touch page fault", "us/page", bench_first_touch, 0, 0 },
        { "mmap+munmap 1 MiB", "us/pair", bench_mmap_munmap, 0, 0 },
        { "thread create+join", "us/pair", bench_thread, 0, 0 },
        { "fork+wait", "us/pair", bench_fork, 0, 0 },
        { "signal to self+handler", "us/sig", bench_signal, 0, 0 },
        { "compute loop", "ns/iter", bench_compute, 0, 0 },
    };
    size_t nb = sizeof b / sizeof b[0];
    struct dune_status st;
    int r;

    quick = argc > 1 && !strcmp(argv[1], "-q");
    for (size_t i = 0; i < nb; i++)
        b[i].native = median_of(b[i].fn);
    r = dune_enter(NULL);
    if (r < 0) {
        dune_status(&st);
        fprintf(stderr, "dune-micro: cannot enter Dune (%s): native figures only\n", st.reason);
    }
    for (size_t i = 0; r == 0 && i < nb; i++)
        b[i].dune = median_of(b[i].fn);
    dune_status(&st);

    printf("dune-micro: median of %d runs, native and inside Dune (mode %s) in one process\n",
           REPS, r == 0 ? dune_mode_name(st.mode) : "unavailable");
    printf("| %-24s | %-8s | %10s | %10s | %9s |\n", "operation", "unit", "native", "dune",
           "dune/nat");
    printf("|--------------------------|----------|------------|------------|-----------|\n");
    for (size_t i = 0; i < nb; i++) {
        /* the compute loop is reported per iteration in ns, the rest in us */
        double scale = strcmp(b[i].unit_note, "ns/iter") ? 1.0 : 1000.0;
        if (r == 0)
            printf("| %-24s | %-8s | %10.3f | %10.3f | %8.2fx |\n", b[i].name, b[i].unit_note,
                   b[i].native * scale, b[i].dune * scale, b[i].dune / b[i].native);
        else
            printf("| %-24s | %-8s | %10.3f | %10s | %9s |\n", b[i].name, b[i].unit_note,
                   b[i].native * scale, "-", "-");
    }
    if (r == 0) {
        printf("inside Dune: %lu syscalls forwarded, %lu exits, %lu faults, %u memslots\n",
               st.syscalls, st.exits, st.faults, st.memslots);
        report_flushes();
        dune_leave();
    }
    return 0;
}
