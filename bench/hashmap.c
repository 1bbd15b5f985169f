/*
 * hashmap.c - hash-map workload: millions of find-or-insert operations over
 * tens of thousands of string keys whose values are buffers of a few KiB.
 *
 *   hashmap [-s KILO_OPS] [-k KEYS]
 *
 * A chained hash table (GC-allocated bucket array and entries) lives for the
 * whole run.  Each operation draws a key (skewed: half of the draws come from
 * the hottest eighth of the keys) and finds it, inserting it with a fresh
 * value if absent.  For a key that was present:
 *   65%  read: fold a few bytes of the value, bump the entry's hit counter
 *   30%  update: replace the value with a new buffer of 1..4 KiB
 *    5%  delete: unlink the entry (it is re-inserted when drawn again)
 * Values are pointer-free (GC_MALLOC_ATOMIC); keys and entries are ordinary.
 */
#include "workload.h"

#include <gc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    struct entry *next;
    char *key;
    unsigned char *val;
    size_t vlen;
    uint64_t hash;
    uint64_t hits;
};

struct map {
    struct entry **buckets;
    size_t mask;
    size_t count;
};

static void *xmalloc(size_t n, int atomic)
{
    void *p = atomic ? GC_MALLOC_ATOMIC(n) : GC_MALLOC(n);

    if (!p) {
        fputs("hashmap: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

/* A value of 1..4 KiB whose bytes depend only on (seed, length). */
static unsigned char *new_value(uint64_t seed, size_t *len)
{
    size_t n = 1024 + (size_t)(seed % 3073);
    unsigned char *v = xmalloc(n, 1);

    memset(v, (int)(seed & 0xff), n);
    memcpy(v, &seed, sizeof seed);
    memcpy(v + n - sizeof seed, &seed, sizeof seed);
    *len = n;
    return v;
}

static void map_init(struct map *m, size_t keys)
{
    size_t nb = 1;

    while (nb < keys * 2)
        nb <<= 1;
    m->buckets = xmalloc(nb * sizeof *m->buckets, 0);
    m->mask = nb - 1;
    m->count = 0;
}

/* Returns the link that points at the key's entry (or at the NULL ending its chain). */
static struct entry **map_find(struct map *m, const char *key, uint64_t h)
{
    struct entry **link = &m->buckets[h & m->mask];

    while (*link && ((*link)->hash != h || strcmp((*link)->key, key)))
        link = &(*link)->next;
    return link;
}

static void map_insert(struct map *m, struct entry **link, const char *key, uint64_t h,
                       uint64_t seed)
{
    struct entry *e = xmalloc(sizeof *e, 0);
    size_t klen = strlen(key) + 1;

    e->key = memcpy(xmalloc(klen, 1), key, klen);
    e->hash = h;
    e->val = new_value(seed, &e->vlen);
    *link = e;
    m->count++;
}

static uint64_t touch(struct map *m, struct entry **link, uint64_t r)
{
    struct entry *e = *link;
    unsigned idx;

    switch (r % 20) {
    default: /* read */
        idx = (unsigned)((r >> 8) % e->vlen);
        e->hits++;
        return wl_mix(e->val[idx], e->vlen);
    case 13: case 14: case 15: case 16: case 17: case 18: /* update */
        e->val = new_value(r >> 5, &e->vlen);
        return 1;
    case 19: /* delete */
        *link = e->next;
        m->count--;
        return 2;
    }
}

static uint64_t draw_key(uint64_t r, long keys)
{
    if (r & 1)
        return (r >> 1) % (uint64_t)(keys / 8 + 1);
    return (r >> 1) % (uint64_t)keys;
}

static uint64_t fold_map(const struct map *m)
{
    uint64_t sum = 0;

    /* Bucket order is fixed by the hash, so this walk is deterministic. */
    for (size_t b = 0; b <= m->mask; b++)
        for (const struct entry *e = m->buckets[b]; e; e = e->next) {
            sum = wl_mix(sum, wl_hash_bytes(e->key, strlen(e->key)));
            sum = wl_mix(sum, wl_hash_bytes(e->val, e->vlen));
            sum = wl_mix(sum, e->hits);
        }
    return wl_mix(sum, m->count);
}

int main(int argc, char **argv)
{
    long kops = wl_arg(argc, argv, "-s", 2000);
    long keys = wl_arg(argc, argv, "-k", 40000);
    uint64_t rng = 7, sum = 0;
    struct map m;
    char key[32];

    wl_start("hashmap", kops);
    map_init(&m, (size_t)keys);
    for (long k = 0; k < kops * 1000; k++) {
        uint64_t r = wl_rand(&rng);
        uint64_t h;
        struct entry **link;

        snprintf(key, sizeof key, "key-%08llx", (unsigned long long)draw_key(r, keys));
        h = wl_hash_bytes(key, strlen(key));
        link = map_find(&m, key, h);
        if (*link)
            sum = wl_mix(sum, touch(&m, link, r >> 20));
        else
            map_insert(&m, link, key, h, r);
    }
    sum = wl_mix(sum, fold_map(&m));
    return wl_finish(sum);
}
