/*
 * check_gc_dune.c - stress test for libgc-dune: Boehm GC in incremental
 * mode whose dirty bits come from libgc-dune's tracker.
 *
 * Two threads build binary trees whose nodes carry a self-check (value
 * mixed with the node's address) and whose per-tree node count and value
 * sum are kept outside the heap.  They keep replacing subtrees with new
 * ones stored into old nodes (the one store that makes an unreported dirty
 * page fatal: the new subtree is reachable only through that page), change
 * values, and churn garbage so that anything freed too early gets reused
 * and overwritten.  The main thread also lets the kernel store the only
 * pointer to a young subtree into an old heap buffer, with read(2) from a
 * pipe.  Incremental marking is forced to interleave (1 ms pause target,
 * GC_collect_a_little between steps).  At the end every tree is verified.
 *
 * The program is built twice: linked with libgc-dune, and linked with
 * libgc only (run under gc-dune-run); so gc_dune.h's functions are looked
 * up at run time.  tests/check_gc_dune.sh runs it once per dirty-page
 * source.  GC_DUNE_EXPECT=name makes it fail when libgc-dune ended up
 * with another backend (skip, exit 77, only for a native source the
 * kernel lacks).
 */
#define GC_THREADS
#define _GNU_SOURCE
#include <gc.h>

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gc_dune.h"

#define NTREES 6
#define INIT_DEPTH 14     /* 16383 nodes per tree */
#define MAX_DEPTH 20
#define STEPS 40000       /* mutation steps per thread (CHECK_GC_DUNE_STEPS) */
#define PIPE_SLOTS 64

struct node {
    struct node *kid[2];
    uint64_t value;
    uint64_t check;
};

/* Everything the test knows about its trees lives outside the GC heap
 * (static data is always scanned, so it cannot hide a missed page). */
struct forest {
    struct node *root[NTREES];
    uint64_t count[NTREES], sum[NTREES];
    uint64_t rng;
    unsigned long bad;
};

static struct forest forests[2];

/* Pipe test: slots of an old heap buffer that the kernel fills. */
static struct node **holder;
static uint64_t holder_sum[PIPE_SLOTS], holder_count[PIPE_SLOTS];
static int need_note_write;
static int pipe_usable = 1;
static unsigned long steps = STEPS;
static int two_threads = 1; /* CHECK_GC_DUNE_THREADS=1: second forest on the main thread */

/* libgc-dune's API, found at run time (absent when GC_DUNE_BACKEND=off
 * is irrelevant: the library is still there; absent when not loaded). */
static void (*p_stats)(struct gc_dune_stats *);
static int (*p_check_stats)(unsigned long *, unsigned long *, unsigned long *);
static void (*p_note_write)(const void *, size_t);
static const char *(*p_why)(void);

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t check_of(const struct node *n, uint64_t value)
{
    return (value * 0x9e3779b97f4a7c15ULL) ^ (uintptr_t)n ^ 0x5a5a5a5a5a5a5a5aULL;
}

static struct node *new_node(uint64_t value)
{
    struct node *n = GC_MALLOC(sizeof *n);
    if (!n)
        abort();
    n->value = value;
    n->check = check_of(n, value);
    return n;
}

static struct node *build(int depth, uint64_t *rng, uint64_t *count, uint64_t *sum)
{
    if (depth == 0)
        return NULL;
    struct node *n = new_node(next_rand(rng) & 0xffff);
    *count += 1;
    *sum += n->value;
    n->kid[0] = build(depth - 1, rng, count, sum);
    n->kid[1] = build(depth - 1, rng, count, sum);
    return n;
}

/* Walk a tree; returns the number of nodes whose self-check fails. */
static unsigned long measure(const struct node *n, uint64_t *count, uint64_t *sum, int depth)
{
    if (!n)
        return 0;
    if (depth > MAX_DEPTH + 2 || n->check != check_of(n, n->value))
        return 1;
    *count += 1;
    *sum += n->value;
    return measure(n->kid[0], count, sum, depth + 1) + measure(n->kid[1], count, sum, depth + 1);
}

/* Replace a random subtree of tree t with a fresh one, stored into an old
 * node: the fresh subtree's only reference is on that node's page. */
static void replace_subtree(struct forest *f, int t)
{
    struct node **slot = &f->root[t];
    int depth = 0;
    uint64_t r = next_rand(&f->rng);
    while (*slot && depth < 14 && (r & 7) != 0) {
        slot = &(*slot)->kid[r >> 3 & 1];
        r >>= 4;
        depth++;
        if (r < 16)
            r = next_rand(&f->rng);
    }
    uint64_t oc = 0, os = 0, nc = 0, ns = 0;
    f->bad += measure(*slot, &oc, &os, depth);
    int nd = (int)(next_rand(&f->rng) % 6);
    if (nd > MAX_DEPTH - depth)
        nd = MAX_DEPTH - depth;
    struct node *fresh = build(nd, &f->rng, &nc, &ns);
    *slot = fresh;
    f->count[t] += nc - oc;
    f->sum[t] += ns - os;
}

/* Change one value deep in a tree (a plain write to an old page). */
static void change_value(struct forest *f, int t)
{
    struct node *n = f->root[t];
    uint64_t r = next_rand(&f->rng);
    while (n && n->kid[r & 1] && (r & 6) != 0) {
        n = n->kid[r & 1];
        r >>= 3;
    }
    if (!n)
        return;
    uint64_t v = next_rand(&f->rng) & 0xffff;
    f->sum[t] += v - n->value;
    n->value = v;
    n->check = check_of(n, v);
}

/* Garbage that overwrites whatever was freed too early. */
static void churn(struct forest *f)
{
    size_t words = 4 + next_rand(&f->rng) % 60;
    uint64_t *junk = GC_MALLOC(words * sizeof *junk);
    for (size_t i = 0; i < words; i++)
        junk[i] = 0xdeadbeefcafef00dULL ^ i;
}

static void mutate(struct forest *f, unsigned long step)
{
    int t = (int)(next_rand(&f->rng) % NTREES);
    replace_subtree(f, t);
    change_value(f, (t + 1) % NTREES);
    for (int i = 0; i < 8; i++)
        churn(f);
    if (step % 4 == 0)
        GC_collect_a_little();
}

static void plant(struct forest *f, uint64_t seed)
{
    f->rng = seed;
    for (int t = 0; t < NTREES; t++)
        f->root[t] = build(INIT_DEPTH, &f->rng, &f->count[t], &f->sum[t]);
}

static unsigned long verify(const struct forest *f)
{
    unsigned long bad = f->bad;
    for (int t = 0; t < NTREES; t++) {
        uint64_t c = 0, s = 0;
        bad += measure(f->root[t], &c, &s, 0);
        if (c != f->count[t] || s != f->sum[t]) {
            fprintf(stderr, "tree %d: %llu nodes (want %llu), sum %llu (want %llu)\n", t,
                    (unsigned long long)c, (unsigned long long)f->count[t],
                    (unsigned long long)s, (unsigned long long)f->sum[t]);
            bad++;
        }
    }
    return bad;
}

static void *second_thread(void *arg)
{
    struct forest *f = arg;
    for (unsigned long i = 0; i < steps; i++)
        mutate(f, i);
    return NULL;
}

/* The kernel writes the only pointer to a young subtree into an old heap
 * buffer.  With the mprotect backend the write must be announced first
 * (a write-protected page makes read(2) fail with EFAULT). */
static int pipe_step(int fds[2], uint64_t *rng, unsigned long i)
{
    unsigned slot = (unsigned)(i % PIPE_SLOTS);
    uint64_t c = 0, s = 0;
    static struct node *in_flight; /* keeps it alive while in the pipe */
    in_flight = build(4, rng, &c, &s);
    if (write(fds[1], &in_flight, sizeof in_flight) != sizeof in_flight)
        return -1;
    GC_collect_a_little();
    /* With mprotect, another thread's collection may write-protect the
     * page again between the announcement and the read: retry then (a
     * pipe read that faults consumes nothing). */
    for (int tries = 0;; tries++) {
        if (need_note_write && p_note_write)
            p_note_write(&holder[slot], sizeof holder[slot]);
        ssize_t n = read(fds[0], &holder[slot], sizeof holder[slot]);
        if (n == (ssize_t)sizeof holder[slot])
            break;
        if (n >= 0 || errno != EFAULT || !need_note_write || tries == 1000)
            return -1;
    }
    in_flight = NULL;
    holder_count[slot] = c;
    holder_sum[slot] = s;
    return 0;
}

static unsigned long verify_holder(void)
{
    unsigned long bad = 0;
    for (unsigned i = 0; i < PIPE_SLOTS; i++) {
        uint64_t c = 0, s = 0;
        bad += measure(holder[i], &c, &s, 0);
        if (c != holder_count[i] || s != holder_sum[i])
            bad++;
    }
    return bad;
}

/* What the two forests hold: object count and a digest of their contents.
 * Their mutations depend only on fixed seeds, so every backend must end
 * with the same figures (tests/compare_backends.sh compares them).  The
 * pipe slots are left out: stock libgc cannot run that part. */
static void digest(unsigned long *objects, uint64_t *dig)
{
    *objects = 0;
    *dig = 0;
    for (int k = 0; k < 2; k++) {
        for (int t = 0; t < NTREES; t++) {
            *objects += forests[k].count[t];
            *dig = *dig * 0x100000001b3ULL ^ forests[k].sum[t] ^ forests[k].count[t] << 32;
        }
    }
}

static struct gc_dune_stats get_stats(void)
{
    struct gc_dune_stats st;
    memset(&st, 0, sizeof st);
    st.backend = "absent";
    if (p_stats)
        p_stats(&st);
    return st;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

START_TEST(test_incremental_on)
{
    struct gc_dune_stats st = get_stats();
    const char *want = getenv("GC_DUNE_BACKEND");
    ck_assert_int_eq(GC_is_incremental_mode(), 1);
    if (want && strcmp(want, "off") == 0) {
        ck_assert_int_eq(st.active, 0);
        printf("# GC_DUNE_BACKEND=off: stock libgc dirty bits\n");
        return;
    }
    ck_assert_msg(p_stats != NULL, "libgc-dune is not loaded");
    ck_assert_int_eq(st.active, 1);
    /* libgc reads our bits: through its manual VDB when asked, else
     * through its soft-dirty VDB (no protection needed, no manual VDB). */
    const char *feed = getenv("GC_DUNE_FEED");
    if (feed && strcmp(feed, "manual") == 0) {
        ck_assert_int_eq(GC_get_manual_vdb_allowed(), 1);
    } else {
        ck_assert_int_eq(GC_get_manual_vdb_allowed(), 0);
        ck_assert_int_eq(GC_incremental_protection_needs(), GC_PROTECTS_NONE);
        ck_assert_msg(p_why && strstr(p_why(), "soft-dirty VDB"), "%s", p_why ? p_why() : "?");
    }
    printf("# %s\n", p_why ? p_why() : "?");
}
END_TEST

START_TEST(test_stress)
{
    int fds[2];
    pthread_t th;
    uint64_t rng = 12345;
    double t0 = now_s();
    GC_word gc0 = GC_get_gc_no();

    ck_assert_int_eq(pipe(fds), 0);
    holder = GC_MALLOC(PIPE_SLOTS * sizeof *holder);
    ck_assert_ptr_nonnull(holder);
    plant(&forests[0], 0x1234567);
    plant(&forests[1], 0x7654321);
    if (two_threads)
        ck_assert_int_eq(pthread_create(&th, NULL, second_thread, &forests[1]), 0);
    for (unsigned long i = 0; i < steps; i++) {
        mutate(&forests[0], i);
        if (pipe_usable && i % 8 == 0)
            ck_assert_int_eq(pipe_step(fds, &rng, i / 8), 0);
    }
    if (two_threads)
        ck_assert_int_eq(pthread_join(th, NULL), 0);
    else
        second_thread(&forests[1]); /* same work, after the first */
    /* keep going until marking cycles completed well past the mutations */
    for (int i = 0; i < 200; i++)
        GC_collect_a_little();
    GC_gcollect();

    unsigned long bad = verify(&forests[0]) + verify(&forests[1]);
    if (pipe_usable) {
        for (unsigned i = 0; i < PIPE_SLOTS; i++)
            if (!holder[i])
                bad++; /* every slot was filled at least once */
        bad += verify_holder();
    }
    struct gc_dune_stats st = get_stats();
    printf("# %d thread(s), backend %s%s: %lu collections, %lu dirty reads, %lu pages reported, "
           "%.1f ms reading, %.2f s\n",
           1 + two_threads, st.backend, st.in_dune ? " (Dune)" : "",
           (unsigned long)(GC_get_gc_no() - gc0),
           st.collections, st.pages, st.ns / 1e6, now_s() - t0);
    unsigned long objects;
    uint64_t dig;
    digest(&objects, &dig);
    printf("# result: forests of %lu live objects, digest %016llx; %lu objects lost or damaged\n", objects,
           (unsigned long long)dig, bad);
    ck_assert_uint_eq(bad, 0);
    /* "Many" incremental cycles: 20 in a default run, fewer if shortened. */
    GC_word min_cycles = steps / 1000 < 20 ? steps / 1000 : 20;
    ck_assert_uint_ge(GC_get_gc_no() - gc0, min_cycles);
    if (st.active) {
        ck_assert_uint_ge(st.collections, min_cycles);
        ck_assert_uint_gt(st.pages, 0);
        ck_assert_uint_gt(st.tracked_bytes, 0);
    }
}
END_TEST

START_TEST(test_checking_mode)
{
    unsigned long cycles, missed, extra;
    const char *chk = getenv("GC_DUNE_CHECK");
    int checking = (chk && *chk) || (getenv("DIRTY_CHECK") && *getenv("DIRTY_CHECK"));
    if (!p_check_stats) {
        ck_assert_msg(!checking, "checking mode asked for, but libgc-dune is not loaded");
        return;
    }
    int r = p_check_stats(&cycles, &missed, &extra);
    if (!checking) {
        /* Not asked for: the tracker must not be comparing anything. */
        ck_assert_int_eq(r, -EINVAL);
        printf("# not in checking mode (set GC_DUNE_CHECK=mprotect), as asked\n");
        return;
    }
    ck_assert_msg(r == 0, "GC_DUNE_CHECK/DIRTY_CHECK is set, but not in checking mode");
    printf("# checking mode: %lu range collects compared, %lu missed, %lu extra\n", cycles,
           missed, extra);
    ck_assert_uint_gt(cycles, 0);
    ck_assert_uint_eq(missed, 0);
}
END_TEST

static void find_api(void)
{
    p_stats = (void (*)(struct gc_dune_stats *))dlsym(RTLD_DEFAULT, "gc_dune_stats");
    p_check_stats = (int (*)(unsigned long *, unsigned long *, unsigned long *))dlsym(
        RTLD_DEFAULT, "gc_dune_check_stats");
    p_note_write = (void (*)(const void *, size_t))dlsym(RTLD_DEFAULT, "gc_dune_note_write");
    p_why = (const char *(*)(void))dlsym(RTLD_DEFAULT, "gc_dune_why");
}

/* The run must get the backend it asked for (GC_DUNE_EXPECT): a mismatch
 * fails.  The one exception is a native source this kernel lacks (dirty
 * probe says why): that is a skip.  Dune sources are asked for only when
 * tests/dune_usable.sh says Dune works here, so their mismatch always
 * fails. */
static void check_expectation(void)
{
    const char *want = getenv("GC_DUNE_EXPECT");
    struct gc_dune_stats st = get_stats();
    if (!want || !*want)
        return;
    if (strcmp(want, st.backend) != 0) {
        int (*from_name)(const char *, int *) =
            (int (*)(const char *, int *))dlsym(RTLD_DEFAULT, "dirty_backend_from_name");
        int (*probe)(int, char *, size_t) =
            (int (*)(int, char *, size_t))dlsym(RTLD_DEFAULT, "dirty_probe");
        char why[256];
        int b;
        if (strcmp(want, "pte") && strcmp(want, "kvm") && from_name && probe &&
            from_name(want, &b) == 0 && probe(b, why, sizeof why) < 0) {
            printf("SKIP: backend %s is not available here: %s\n", want, why);
            exit(77);
        }
        printf("FAIL: wanted backend %s, got %s (%s)\n", want, st.backend,
               p_why ? p_why() : "libgc-dune not loaded");
        exit(EXIT_FAILURE);
    }
}

int main(void)
{
    const char *thr = getenv("CHECK_GC_DUNE_THREADS");
    const char *nsteps = getenv("CHECK_GC_DUNE_STEPS");
    two_threads = !(thr && strcmp(thr, "1") == 0);
    if (nsteps && atol(nsteps) > 0)
        steps = (unsigned long)atol(nsteps);
    find_api();
    GC_set_time_limit(1); /* a pause target makes incremental marking interleave */
    GC_INIT();
    GC_allow_register_threads();
    if (!GC_is_incremental_mode())
        GC_enable_incremental();
    check_expectation();
    struct gc_dune_stats st = get_stats();
    /* mprotect as the source or as checking mode's reference */
    need_note_write = strcmp(st.backend, "mprotect") == 0 ||
                      (p_why && strstr(p_why(), "checked against mprotect"));
    if (!st.active) {
        /* Stock libgc write-protects the heap itself: read(2) into it
         * fails with EFAULT, and nothing can announce the write. */
        printf("# libgc-dune inactive (%s): pipe writes into the heap not tested\n",
               p_why ? p_why() : "not loaded");
        pipe_usable = 0;
    }

    Suite *s = suite_create("gc_dune");
    TCase *tc = tcase_create("stress");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_incremental_on);
    tcase_add_test(tc, test_stress);
    tcase_add_test(tc, test_checking_mode);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    /* One process: the collector and the tracker are per process. */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
