/*
 * scale.c - scale workload: a live heap of a chosen size, mutated by a
 * chosen number of threads, to show how a dirty-page source's cost grows
 * with the heap (bench/run-scale).
 *
 *   scale [-m LIVE_MIB] [-t THREADS] [-c CHURN_PERCENT]
 *
 * Each thread builds its share of LIVE_MIB as 1 KiB nodes reached from an
 * index array (one large old object), then allocates CHURN_PERCENT of its
 * share again in fresh nodes: half of them replace a random node of the
 * index (a pointer store into old memory, the old node becomes garbage),
 * the other half are folded into a random old node in place (a write to an
 * old page) and dropped.  Dirty pages are thus spread over the whole heap,
 * as in a long-running server, and the collector's work per collection
 * grows with the live heap.  At the end every node is checked (a node freed
 * while live reads back as zeros) and folded into the checksum; the
 * checksum depends on the sizes and thread count only, not on scheduling.
 */
#define GC_THREADS
#include "workload.h"

#include <gc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NODE_BYTES 1024

struct node {
    uint64_t value;
    uint64_t check;                     /* seal(value): 0 in a freed node */
    uint64_t pad[NODE_BYTES / 8 - 2];   /* scanned by the marker, all zero */
};

struct worker {
    long nodes;      /* live nodes of this thread */
    long ops;        /* fresh nodes to allocate */
    uint64_t seed;
    uint64_t sum;    /* result */
    int bad;         /* nodes found corrupt */
};

static uint64_t seal(uint64_t v)
{
    return wl_mix(v, 0x5ca1eu) | 1;
}

static struct node *new_node(uint64_t v)
{
    struct node *n = GC_MALLOC(sizeof *n);

    if (!n) {
        fputs("scale: out of memory\n", stderr);
        exit(1);
    }
    n->value = v;
    n->check = seal(v);
    return n;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct node **index = GC_MALLOC((size_t)w->nodes * sizeof *index);
    uint64_t rng = w->seed;

    if (!index) {
        fputs("scale: out of memory\n", stderr);
        exit(1);
    }
    for (long i = 0; i < w->nodes; i++)
        index[i] = new_node(wl_rand(&rng));
    for (long k = 0; k < w->ops; k++) {
        uint64_t r = wl_rand(&rng);
        long i = (long)((r >> 8) % (uint64_t)w->nodes);
        struct node *fresh = new_node(r);

        if (r & 1) {
            index[i] = fresh;
        } else {
            struct node *old = index[i];
            old->value ^= fresh->value >> 3;
            old->check = seal(old->value);
        }
    }
    for (long i = 0; i < w->nodes; i++) {
        if (index[i]->check != seal(index[i]->value))
            w->bad++;
        w->sum = wl_mix(w->sum, index[i]->value);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long mib = wl_arg(argc, argv, "-m", 64);
    long threads = wl_arg(argc, argv, "-t", 1);
    long churn = wl_arg(argc, argv, "-c", 100);
    long nodes = mib * (1024 * 1024 / NODE_BYTES) / threads;
    struct worker *w = calloc((size_t)threads, sizeof *w);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    uint64_t sum = 0;
    int bad = 0;

    if (!w || !tid || nodes < 1) {
        fputs("scale: bad sizes\n", stderr);
        return 2;
    }
    wl_start("scale", mib);
    for (long t = 0; t < threads; t++) {
        w[t].nodes = nodes;
        w[t].ops = nodes * churn / 100;
        w[t].seed = 0x9e3779b9u * (uint64_t)(t + 1);
        if (pthread_create(&tid[t], NULL, work, &w[t])) {
            fputs("scale: pthread_create failed\n", stderr);
            return 1;
        }
    }
    for (long t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        sum = wl_mix(sum, w[t].sum);
        bad += w[t].bad;
    }
    if (bad) {
        fprintf(stderr, "scale: %d live nodes corrupt (freed while reachable?)\n", bad);
        return 1;
    }
    sum = wl_mix(sum, (uint64_t)threads);
    return wl_finish(sum);
}
