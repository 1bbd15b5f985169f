/*
 * gcbench.c - the Boehm/Ellis GCBench workload, written from its published
 * description: build a "stretch" tree of depth 18 and drop it; keep a
 * long-lived tree of depth 16 and an array of 500000 doubles alive for the
 * whole run; then, for depths 4, 6, ..., 16, build and drop enough binary
 * trees to allocate as much as two stretch trees, once top-down (allocate a
 * node, then populate its children) and once bottom-up (children first).
 *
 *   gcbench [-s ROUNDS] [-d STRETCH_DEPTH] [-a ARRAY_LEN]
 *
 * -s repeats the depth sweep (the size knob); -d shrinks every depth with
 * it (long-lived and maximum tree depth are STRETCH_DEPTH-2) for quick runs.
 * The checksum folds a walk of every tree built, so a node freed too early
 * (or lost by a dirty-bit source) changes it.
 */
#include "workload.h"

#include <gc.h>
#include <stdio.h>
#include <stdlib.h>

struct node {
    struct node *left, *right;
    long i, j;
};

enum { MIN_DEPTH = 4 };

static struct node *new_node(struct node *l, struct node *r)
{
    struct node *n = GC_MALLOC(sizeof *n);

    if (!n) {
        fputs("gcbench: out of memory\n", stderr);
        exit(1);
    }
    n->left = l;
    n->right = r;
    return n;
}

static long tree_size(int depth)
{
    return (1L << (depth + 1)) - 1;
}

/* Top-down: the parent exists before its children are allocated. */
static void populate(int depth, struct node *n)
{
    if (depth <= 0)
        return;
    n->left = new_node(NULL, NULL);
    n->right = new_node(NULL, NULL);
    n->i = depth;
    populate(depth - 1, n->left);
    populate(depth - 1, n->right);
}

/* Bottom-up: children are allocated before their parent. */
static struct node *make_tree(int depth)
{
    struct node *n;

    if (depth <= 0)
        return new_node(NULL, NULL);
    n = new_node(make_tree(depth - 1), make_tree(depth - 1));
    n->i = depth;
    return n;
}

/* Node count and depth labels of a tree, folded: what "the tree is intact" means. */
static uint64_t walk(const struct node *n)
{
    if (!n)
        return 0;
    return wl_mix(walk(n->left) + 1, (uint64_t)n->i) ^ walk(n->right);
}

static uint64_t time_construction(int depth, int stretch)
{
    long iters = 2 * tree_size(stretch) / tree_size(depth);
    uint64_t sum = 0;

    for (long k = 0; k < iters; k++) {
        struct node *t = new_node(NULL, NULL);

        populate(depth, t);
        sum = wl_mix(sum, walk(t));
    }
    for (long k = 0; k < iters; k++)
        sum = wl_mix(sum, walk(make_tree(depth)));
    return sum;
}

static double *make_array(long len)
{
    double *a = GC_MALLOC_ATOMIC((size_t)len * sizeof *a);

    if (!a) {
        fputs("gcbench: out of memory\n", stderr);
        exit(1);
    }
    for (long k = 0; k < len; k++)
        a[k] = 1.0 / (double)(k + 1);
    return a;
}

int main(int argc, char **argv)
{
    long rounds = wl_arg(argc, argv, "-s", 3);
    int stretch = (int)wl_arg(argc, argv, "-d", 18);
    long alen = wl_arg(argc, argv, "-a", 500000);
    uint64_t sum = 0;
    struct node *long_lived;
    double *array;

    if (stretch < MIN_DEPTH + 2 || stretch > 24) {
        fputs("gcbench: -d must be in 6..24\n", stderr);
        return 2;
    }
    wl_start("gcbench", rounds);
    sum = wl_mix(sum, walk(make_tree(stretch)));  /* stretch the heap, drop it */
    long_lived = new_node(NULL, NULL);
    populate(stretch - 2, long_lived);
    array = make_array(alen);
    for (long r = 0; r < rounds; r++)
        for (int d = MIN_DEPTH; d <= stretch - 2; d += 2)
            sum = wl_mix(sum, time_construction(d, stretch));
    /* The long-lived data must have survived every collection. */
    sum = wl_mix(sum, walk(long_lived));
    if (array[1000 % alen] != 1.0 / (double)(1000 % alen + 1)) {
        fputs("gcbench: long-lived array corrupted\n", stderr);
        return 1;
    }
    sum = wl_mix(sum, (uint64_t)(array[alen / 2] * 1e12));
    return wl_finish(sum);
}
