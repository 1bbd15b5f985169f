/*
 * list.c - linked-list workload: a long-lived singly linked list that is
 * continually mutated while short-lived nodes churn around it.
 *
 *   list [-s KILO_OPS] [-n LIST_LEN]
 *
 * The list (LIST_LEN nodes, each pointing at a small payload object) lives
 * for the whole run; an index array gives random access to its nodes.  Each
 * operation picks a random position and does one of:
 *   40%  replace the node with a fresh copy (splice: two pointer stores,
 *        the old node becomes garbage)
 *   30%  give the node a new payload object (one pointer store, old payload
 *        becomes garbage)
 *   20%  build a short-lived chain of 1..32 nodes, fold it, drop it
 *   10%  swap the payloads of two random nodes (pointer stores, no allocation)
 * Old, long-lived pages keep being written, which is what generational and
 * incremental collectors must track with dirty bits.
 */
#include "workload.h"

#include <gc.h>
#include <stdio.h>
#include <stdlib.h>

struct payload {
    uint64_t value;
    uint64_t pad[3]; /* a realistic small record, not a bare word */
};

struct node {
    struct node *next;
    struct payload *data;
    uint64_t key;
};

static void *xmalloc(size_t n, int atomic)
{
    void *p = atomic ? GC_MALLOC_ATOMIC(n) : GC_MALLOC(n);

    if (!p) {
        fputs("list: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

static struct payload *new_payload(uint64_t v)
{
    struct payload *p = xmalloc(sizeof *p, 1);

    p->value = v;
    p->pad[0] = p->pad[1] = p->pad[2] = ~v;
    return p;
}

static struct node *new_node(uint64_t key, struct payload *data, struct node *next)
{
    struct node *n = xmalloc(sizeof *n, 0);

    n->key = key;
    n->data = data;
    n->next = next;
    return n;
}

struct list {
    struct node *head;
    struct node **index; /* index[i] is the i-th node; GC-allocated, long-lived */
    long len;
};

static void build(struct list *l, long len, uint64_t *rng)
{
    l->len = len;
    l->index = xmalloc((size_t)len * sizeof *l->index, 0);
    l->head = NULL;
    for (long i = len - 1; i >= 0; i--) {
        l->head = new_node((uint64_t)i, new_payload(wl_rand(rng)), l->head);
        l->index[i] = l->head;
    }
}

static void replace_node(struct list *l, long pos)
{
    struct node *old = l->index[pos];
    struct node *fresh = new_node(old->key, old->data, old->next);

    if (pos == 0)
        l->head = fresh;
    else
        l->index[pos - 1]->next = fresh;
    l->index[pos] = fresh;
}

static uint64_t short_lived_chain(uint64_t r)
{
    struct node *c = NULL;
    uint64_t sum = 0;
    int n = 1 + (int)(r % 32);

    for (int k = 0; k < n; k++)
        c = new_node(r + (uint64_t)k, NULL, c);
    for (; c; c = c->next)
        sum = wl_mix(sum, c->key);
    return sum;
}

static uint64_t step(struct list *l, uint64_t *rng)
{
    uint64_t r = wl_rand(rng);
    long pos = (long)((r >> 8) % (uint64_t)l->len);
    struct payload *tmp;
    long other;

    switch (r % 10) {
    case 0: case 1: case 2: case 3:
        replace_node(l, pos);
        return 0;
    case 4: case 5: case 6:
        l->index[pos]->data = new_payload(l->index[pos]->data->value + r);
        return 0;
    case 7: case 8:
        return short_lived_chain(r >> 16);
    default:
        other = (long)((r >> 32) % (uint64_t)l->len);
        tmp = l->index[pos]->data;
        l->index[pos]->data = l->index[other]->data;
        l->index[other]->data = tmp;
        return 0;
    }
}

/* Walk the list itself (not the index): order, keys and payloads must all survive. */
static uint64_t fold_list(const struct list *l)
{
    uint64_t sum = 0;
    long count = 0;

    for (const struct node *n = l->head; n; n = n->next, count++)
        sum = wl_mix(sum, n->key ^ n->data->value ^ n->data->pad[1]);
    return wl_mix(sum, (uint64_t)count);
}

int main(int argc, char **argv)
{
    long kops = wl_arg(argc, argv, "-s", 3000);
    long len = wl_arg(argc, argv, "-n", 500000);
    uint64_t rng = 42, sum = 0;
    struct list l;

    wl_start("list", kops);
    build(&l, len, &rng);
    for (long k = 0; k < kops * 1000; k++)
        sum ^= step(&l, &rng);
    sum = wl_mix(sum, fold_list(&l));
    return wl_finish(sum);
}
