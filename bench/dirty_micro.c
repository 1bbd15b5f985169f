/*
 * dirty_micro.c - micro-benchmark of the dirty-tracking backends.
 *
 * For every backend (those that cannot run here are listed with the reason):
 *   write  - extra cost of the first write to a page after a clear, per page
 *            (time to write one byte in each of N clean tracked pages, minus
 *            the same loop on untracked memory);
 *   scan   - one read-and-clear (dirty_collect) over a 1 GiB range with
 *            0.1%, 10% and 100% of its pages dirty (evenly spread).
 * Ratios are to mprotect, the classic Boehm GC method (lower is better).
 * Holding of rewritten pages (dirty_set_hold) is off: it would spare the
 * rewritten pages their fault and hide the cost measured here.
 *
 * Times are the best of several runs (-r for writes, -R for scans).
 * Usage: dirty-micro [-d] [-s MiB] [-w pages] [-r reps] [-R reps]
 *        (defaults 1024 MiB, 16384 pages, 5, 3)
 * -b name[,name...] measures only those backends.
 * -d runs every backend inside Dune (where pte and kvm exist); each exit
 * costs tens of microseconds there, so use small sizes with it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dirty.h"
#include "dune.h" /* the page size; its functions are used only with HAVE_DUNE */

#define PG DUNE_PAGE_SIZE

static const enum dirty_backend order[] = {DIRTY_PTE, DIRTY_KVM, DIRTY_WP, DIRTY_UFFD,
                                           DIRTY_SOFTDIRTY, DIRTY_MPROTECT};
#define NB (sizeof(order) / sizeof(order[0]))
static const double fractions[] = {0.001, 0.10, 1.0};
#define NF (sizeof(fractions) / sizeof(fractions[0]))

struct result {
    int ok;
    char why[256];
    double write_us; /* per page */
    double scan_ms[NF];
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *map_prefaulted(size_t len)
{
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    madvise(m, len, MADV_NOHUGEPAGE); /* page-granular tracking everywhere */
    memset(m, 1, len);
    return m;
}

static void touch(volatile char *m, size_t npages, size_t stride)
{
    for (size_t i = 0; i < npages; i += stride)
        m[i * PG]++;
}

/* Minimum over reps of the time to write one byte per page. */
static double time_writes(volatile char *m, size_t npages, struct dirty_tracker *t,
                          uint64_t *bitmap, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        if (t && dirty_collect(t, (void *)m, npages * PG, bitmap) < 0) {
            fprintf(stderr, "collect failed\n");
            exit(1);
        }
        double t0 = now();
        touch(m, npages, 1);
        double dt = now() - t0;
        best = dt < best ? dt : best;
    }
    return best;
}

static void bench_write(struct dirty_tracker *t, struct result *res, size_t npages, int reps,
                        double baseline)
{
    char *m = map_prefaulted(npages * PG);
    uint64_t *bitmap = calloc((npages + 63) / 64, 8);
    if (dirty_track(t, m, npages * PG) < 0) {
        snprintf(res->why, sizeof(res->why), "track failed");
        res->ok = 0;
    } else {
        double dt = time_writes(m, npages, t, bitmap, reps);
        res->write_us = (dt - baseline) / npages * 1e6;
        dirty_untrack(t, m, npages * PG);
    }
    free(bitmap);
    munmap(m, npages * PG);
}

static void bench_scan(struct dirty_tracker *t, struct result *res, char *big, size_t npages,
                       int reps)
{
    uint64_t *bitmap = calloc((npages + 63) / 64, 8);
    if (dirty_track(t, big, npages * PG) < 0) {
        snprintf(res->why, sizeof(res->why), "track of the big range failed");
        res->ok = 0;
        free(bitmap);
        return;
    }
    for (size_t f = 0; f < NF; f++) {
        size_t stride = (size_t)(1.0 / fractions[f] + 0.5);
        size_t expect = (npages + stride - 1) / stride;
        res->scan_ms[f] = 1e30;
        for (int r = 0; r < reps; r++) {
            dirty_collect(t, big, npages * PG, bitmap); /* start clean */
            touch(big, npages, stride);
            double t0 = now();
            long n = dirty_collect(t, big, npages * PG, bitmap);
            double ms = (now() - t0) * 1e3;
            res->scan_ms[f] = ms < res->scan_ms[f] ? ms : res->scan_ms[f];
            if (n < (long)expect) {
                fprintf(stderr, "%s: %ld dirty pages reported, %zu written: MISSED WRITES\n",
                        dirty_backend_name(dirty_backend_of(t)), n, expect);
                exit(2);
            }
        }
    }
    dirty_untrack(t, big, npages * PG);
    free(bitmap);
}

static void print_ratio(double v, double ref, int ref_ok)
{
    if (ref_ok && ref > 0)
        printf(" (x%5.2f)", v / ref);
    else
        printf("         ");
}

static void print_table(const struct result *res, size_t mib, size_t wpages, int reps,
                        int scan_reps)
{
    const struct result *mp = &res[NB - 1];
    printf("\nDirty-tracking backends: first write per page (%zu pages, best of %d), "
           "read-and-clear of %zu MiB (best of %d)\n", wpages, reps, mib, scan_reps);
    printf("(ratio to mprotect in parentheses; lower is better; no holding of rewritten "
           "pages)\n\n");
    printf("%-10s %20s", "backend", "write us/page");
    for (size_t f = 0; f < NF; f++)
        printf("   scan %5.1f%% dirty ms", fractions[f] * 100);
    printf("\n");
    for (size_t b = 0; b < NB; b++) {
        printf("%-10s ", dirty_backend_name(order[b]));
        if (!res[b].ok) {
            printf("unavailable: %s\n", res[b].why);
            continue;
        }
        printf("%10.3f", res[b].write_us);
        print_ratio(res[b].write_us, mp->write_us, mp->ok);
        for (size_t f = 0; f < NF; f++) {
            printf("   %12.2f", res[b].scan_ms[f]);
            print_ratio(res[b].scan_ms[f], mp->scan_ms[f], mp->ok);
        }
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    size_t mib = 1024, wpages = 16384;
    int reps = 5, scan_reps = 3, opt, in_dune = 0;
    const char *only = NULL;
    while ((opt = getopt(argc, argv, "b:ds:w:r:R:")) != -1) {
        switch (opt) {
        case 'b': only = optarg; break;
        case 'd': in_dune = 1; break;
        case 's': mib = strtoul(optarg, NULL, 0); break;
        case 'w': wpages = strtoul(optarg, NULL, 0); break;
        case 'r': reps = atoi(optarg); break;
        case 'R': scan_reps = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-d] [-b backends] [-s MiB] [-w pages] [-r write-reps] [-R scan-reps]\n", argv[0]);
            return 1;
        }
    }
    unsetenv("DIRTY_BACKEND"); /* each backend is opened by name */
    unsetenv("DIRTY_CHECK");
    if (in_dune) {
#ifdef HAVE_DUNE
        int r = dune_enter(NULL);
        if (r < 0) {
            struct dune_status st;
            dune_status(&st);
            printf("dirty-micro -d: cannot enter Dune (%s)\n", st.reason);
            return 0;
        }
        printf("inside Dune: every backend below runs in the guest\n");
#else
        printf("dirty-micro -d: built without Dune\n");
        return 0;
#endif
    }

    /* plain write cost on untracked, populated memory */
    char *plain = map_prefaulted(wpages * PG);
    double baseline = time_writes(plain, wpages, NULL, NULL, reps);
    munmap(plain, wpages * PG);
    printf("baseline: %.4f us/page for a write to an untracked page\n", baseline / wpages * 1e6);

    size_t npages = mib * (1024 * 1024 / PG);
    char *big = map_prefaulted(npages * PG);
    struct result res[NB];
    memset(res, 0, sizeof(res));
    for (size_t b = 0; b < NB; b++) {
        struct dirty_tracker *t = NULL;
        if (only && !strstr(only, dirty_backend_name(order[b]))) {
            snprintf(res[b].why, sizeof(res[b].why), "not measured in this run (-b %s)", only);
            continue;
        }
        res[b].ok = dirty_probe(order[b], res[b].why, sizeof(res[b].why)) == 0;
        if (res[b].ok && dirty_open(order[b], &t) < 0) {
            snprintf(res[b].why, sizeof(res[b].why), "%s", dirty_last_error());
            res[b].ok = 0;
        }
        if (res[b].ok)
            dirty_set_hold(t, 0); /* the cost of every fault, not of the policy */
        if (!res[b].ok)
            continue;
        fprintf(stderr, "running %s...\n", dirty_backend_name(order[b]));
        bench_write(t, &res[b], wpages, reps, baseline);
        if (res[b].ok)
            bench_scan(t, &res[b], big, npages, scan_reps);
        dirty_close(t);
    }
    print_table(res, mib, wpages, reps, scan_reps);
    munmap(big, npages * PG);
    return 0;
}
