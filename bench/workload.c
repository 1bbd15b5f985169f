/*
 * workload.c - metrics shared by the GC benchmark workloads: wall time,
 * collections, stop-the-world pauses, peak heap, CPU time, page faults and
 * the RESULT line.
 *
 * The collection-event and heap-resize callbacks run with the GC lock held
 * (often with the world stopped), so they only read the clock and update
 * plain counters: no malloc, no GC calls, no stdio.
 */
#define _GNU_SOURCE
#include "workload.h"

#define GC_THREADS /* declares GC_get_parallel(); Debian's libgc is threaded */
#include <gc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* One kind of interval (stop-world, or whole collection): count, sum, max. */
struct span {
    uint64_t t0;   /* start of the open interval, 0 if none open */
    unsigned long n;
    uint64_t total_ns;
    uint64_t max_ns;
};

static struct span stw;   /* GC_EVENT_PRE_STOP_WORLD .. GC_EVENT_POST_START_WORLD */
static struct span whole; /* GC_EVENT_START .. GC_EVENT_END */
static size_t heap_peak;
static uint64_t wall_t0;
/* Page faults since wl_hooks.  The kernel's software counter sees every
 * fault, a write-barrier fault that ends in SIGSEGV (stock libgc's
 * mprotect mode) included; getrusage's minor faults count only the ones
 * the kernel resolved itself (userfaultfd write faults, first touches). */
static int fault_fd = -1;
/* System calls since wl_hooks (the raw_syscalls:sys_enter tracepoint,
 * where tracefs and perf_event_paranoid allow): the other half of a write
 * barrier's work, mprotect calls for stock libgc, ioctls for uffd. */
static int syscall_fd = -1;
/* Inside Dune the process's page faults are the guest's own and the host's
 * counters see none of them: libgc-dune's fields then give Dune's counts. */
extern int dune_active(void) __attribute__((weak));
static long minflt0, majflt0;
static struct timeval utime0, stime0; /* CPU time counts from wl_hooks too */
static const char *wl_name = "?";
static long wl_size;
static GC_word gc_no0; /* GC_INIT itself may count a collection */
static GC_on_collection_event_proc prev_event_cb;
static GC_on_heap_resize_proc prev_resize_cb;

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no lock, no allocation */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void span_open(struct span *s)
{
    s->t0 = now_ns();
}

static void span_close(struct span *s)
{
    uint64_t d;

    if (!s->t0)
        return; /* the hooks went in while this interval was already open */
    d = now_ns() - s->t0;
    s->t0 = 0;
    s->n++;
    s->total_ns += d;
    if (d > s->max_ns)
        s->max_ns = d;
}

static void GC_CALLBACK on_event(GC_EventType e)
{
    switch (e) {
    case GC_EVENT_PRE_STOP_WORLD: span_open(&stw); break;
    case GC_EVENT_POST_START_WORLD: span_close(&stw); break;
    case GC_EVENT_START: span_open(&whole); break;
    case GC_EVENT_END: span_close(&whole); break;
    default: break;
    }
    if (prev_event_cb) /* someone (e.g. a dirty-bit source) hooked in first */
        prev_event_cb(e);
}

static void GC_CALLBACK on_resize(GC_word new_size)
{
    if (new_size > heap_peak)
        heap_peak = new_size;
    if (prev_resize_cb)
        prev_resize_cb(new_size);
}

long wl_arg(int argc, char **argv, const char *flag, long dflt)
{
    for (int i = 1; i < argc; i++) {
        char *end;
        long v;

        if (strcmp(argv[i], flag))
            continue;
        if (i + 1 >= argc)
            break;
        v = strtol(argv[i + 1], &end, 0);
        if (*end || v <= 0)
            break;
        return v;
    }
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], flag)) {
            fprintf(stderr, "%s: %s needs a positive integer\n", argv[0], flag);
            exit(2);
        }
    return dflt;
}

static int open_fault_counter(int exclude_kernel)
{
    struct perf_event_attr a = {
        .type = PERF_TYPE_SOFTWARE,
        .size = sizeof a,
        .config = PERF_COUNT_SW_PAGE_FAULTS,
        .inherit = 1, /* threads started later count too */
        .exclude_kernel = (unsigned)exclude_kernel,
        .exclude_hv = 1,
    };
    return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

static int open_syscall_counter(void)
{
    static const char *const ids[] = {"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
                                      "/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        FILE *f = fopen(ids[i], "re");
        unsigned long long id;
        if (!f)
            continue;
        int ok = fscanf(f, "%llu", &id) == 1;
        fclose(f);
        if (!ok)
            continue;
        struct perf_event_attr a = {
            .type = PERF_TYPE_TRACEPOINT,
            .size = sizeof a,
            .config = id,
            .inherit = 1,
        };
        return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    }
    return -1;
}

static void faults_start(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    minflt0 = ru.ru_minflt;
    majflt0 = ru.ru_majflt;
    utime0 = ru.ru_utime;
    stime0 = ru.ru_stime;
    if (fault_fd >= 0)
        close(fault_fd);
    /* Faults taken in the kernel (a read() into the heap) count where
     * perf_event_paranoid allows, else user-mode ones only. */
    fault_fd = open_fault_counter(0);
    if (fault_fd < 0)
        fault_fd = open_fault_counter(1);
    if (syscall_fd >= 0)
        close(syscall_fd);
    syscall_fd = open_syscall_counter();
}

/* Faults since faults_start: the counter's, else minor + major; -1
 * inside Dune. */
static long faults_now(const struct rusage *ru, const char **src)
{
    uint64_t v;
    if (dune_active && dune_active()) {
        *src = "none-in-dune";
        return -1;
    }
    if (fault_fd >= 0 && read(fault_fd, &v, sizeof v) == (ssize_t)sizeof v) {
        *src = "perf";
        return (long)v;
    }
    *src = "rusage";
    return (ru->ru_minflt - minflt0) + (ru->ru_majflt - majflt0);
}

/* " syscalls=N" if the counter works, else "". */
static void syscalls_field(char *buf, size_t len)
{
    uint64_t v;
    buf[0] = '\0';
    if (syscall_fd >= 0 && read(syscall_fd, &v, sizeof v) == (ssize_t)sizeof v)
        snprintf(buf, len, " syscalls=%llu", (unsigned long long)v);
}

void wl_hooks(void)
{
    prev_event_cb = GC_get_on_collection_event();
    GC_set_on_collection_event(on_event);
    prev_resize_cb = GC_get_on_heap_resize();
    GC_set_on_heap_resize(on_resize);
    heap_peak = GC_get_heap_size(); /* what GC_INIT already reserved */
    gc_no0 = GC_get_gc_no();
    faults_start();
    wall_t0 = now_ns();
}

void wl_start(const char *workload, long size)
{
    GC_INIT();
    wl_name = workload;
    wl_size = size;
    wl_hooks();
}

/* Which dirty-bit source bdwgc actually chose, as the collector reports it. */
static const char *vdb_name(void)
{
    if (!GC_is_incremental_mode())
        return "none";
    if (GC_get_manual_vdb_allowed())
        return "manual";
    if (GC_incremental_protection_needs() & GC_PROTECTS_POINTER_HEAP)
        return "mprotect";
    return "os"; /* soft-dirty, /proc or another source that needs no protection */
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static const char *mode_name(void)
{
    const char *m = getenv("BENCH_MODE");

    if (m && *m)
        return m;
    return GC_is_incremental_mode() ? "incremental" : "full";
}

/* A collection is a pause for this (single-threaded) mutator: use the
 * stop-the-world spans when the collector reported any, else the whole
 * collections (a build that never stops the world). */
static const struct span *pause_span(void)
{
    return stw.n ? &stw : &whole;
}

size_t wl_fields(char *buf, size_t len)
{
    double wall = (double)(now_ns() - wall_t0) / 1e9;
    const struct span *p = pause_span();
    size_t heap = GC_get_heap_size();
    char extra[512] = "";
    struct rusage ru;
    int n;

    if (heap > heap_peak)
        heap_peak = heap;
    const char *fsrc;
    char sys[40];
    getrusage(RUSAGE_SELF, &ru);
    long faults = faults_now(&ru, &fsrc);
    syscalls_field(sys, sizeof sys);
    if (gc_dune_bench_fields) /* weak: only if a loaded library defines it */
        gc_dune_bench_fields(extra, sizeof extra);
    n = snprintf(buf, len, "wall_s=%.4f gcs=%lu pause_total_ms=%.3f pause_max_ms=%.3f "
                 "heap_peak_kb=%zu pauses=%lu pause_src=%s user_s=%.3f sys_s=%.3f "
                 "faults=%ld faults_src=%s minflt=%ld%s "
                 "incremental=%d vdb=%s parallel=%d%s%s",
                 wall, (unsigned long)(GC_get_gc_no() - gc_no0), (double)p->total_ns / 1e6,
                 (double)p->max_ns / 1e6, heap_peak / 1024, p->n, stw.n ? "stw" : "collection",
                 tv_s(ru.ru_utime) - tv_s(utime0), tv_s(ru.ru_stime) - tv_s(stime0), faults, fsrc, ru.ru_minflt - minflt0, sys,
                 GC_is_incremental_mode(), vdb_name(), GC_get_parallel(), extra[0] ? " " : "",
                 extra);
    return n < 0 ? 0 : (size_t)n;
}

int wl_finish(uint64_t checksum)
{
    char fields[1024];

    wl_fields(fields, sizeof fields);
    printf("RESULT workload=%s mode=%s size=%ld checksum=0x%016llx %s\n", wl_name, mode_name(),
           wl_size, (unsigned long long)checksum, fields);
    fflush(stdout);
    return 0;
}

uint64_t wl_rand(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15u; /* never stuck at 0 */

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1du;
}

uint64_t wl_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdu;
}

uint64_t wl_hash_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325u;

    while (n--) {
        h ^= *b++;
        h *= 0x100000001b3u;
    }
    return h;
}
