/*
 * dirty_softdirty.c - native backend: the kernel's soft-dirty bits
 * (CONFIG_MEM_SOFT_DIRTY).  Writing "4" to /proc/self/clear_refs clears the
 * bit on every page of the process and write-protects them; the first
 * write sets it again, visible as bit 55 of the page's /proc/self/pagemap
 * entry.
 *
 * Clearing is process-wide, so one range cannot be cleared alone: every
 * collect (and every track, which must start clean) first reads the bits of
 * *all* soft-dirty ranges of all trackers into their pending bitmaps, then
 * clears once.  A collect then hands out and forgets its range's pending
 * bits.  One global mutex serialises this.
 *
 * Kernels without soft-dirty accept the clear_refs write but never set the
 * bit; the probe writes a page and checks, instead of trusting the file.
 */
#define _GNU_SOURCE
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dirty_backend.h"

#define PM_SOFT_DIRTY (1ULL << 55)
#define CHUNK 512 /* pagemap entries read per pread */

struct sd_range {
    uintptr_t start;
    size_t npages;
    uint64_t *pending;
    struct sd_range *next;
};

static pthread_mutex_t sd_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sd_range *sd_all; /* every soft-dirty range of every tracker */
static int sd_pagemap = -1, sd_clear = -1;
static pid_t sd_pid; /* the fds name this process's /proc/self */

/* Open the /proc files, or, in a forked child, open them anew: the
 * inherited descriptors name the parent, and a clear through them would
 * wipe the parent's uncollected writes.  The child owes every page of
 * every inherited range once (it cannot tell which pages the parent wrote
 * since its last harvest), then is exact again.  Called with sd_lock. */
static int open_files(char *why, size_t whylen)
{
    pid_t pid = getpid();
    if (sd_pid != pid) {
        if (sd_pagemap >= 0)
            close(sd_pagemap);
        if (sd_clear >= 0)
            close(sd_clear);
        sd_pagemap = sd_clear = -1;
        sd_pid = pid;
        for (struct sd_range *r = sd_all; r; r = r->next)
            dirty_bits_set_range(r->pending, 0, r->npages);
    }
    if (sd_pagemap < 0)
        sd_pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (sd_pagemap < 0)
        return dirty_fail(why, whylen, errno, "/proc/self/pagemap: %s", strerror(errno));
    if (sd_clear < 0)
        sd_clear = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (sd_clear < 0)
        return dirty_fail(why, whylen, errno, "/proc/self/clear_refs: %s", strerror(errno));
    return 0;
}

static int clear_all(void)
{
    return pwrite(sd_clear, "4", 1, 0) == 1 ? 0 : -errno;
}

/* OR the soft-dirty bits of npages pages at start into bits. */
static int read_bits(uintptr_t start, size_t npages, uint64_t *bits)
{
    uint64_t ent[CHUNK];
    for (size_t done = 0; done < npages;) {
        size_t k = npages - done < CHUNK ? npages - done : CHUNK;
        off_t off = (off_t)(((start >> DIRTY_PAGE_SHIFT) + done) * sizeof(uint64_t));
        ssize_t got = pread(sd_pagemap, ent, k * sizeof(uint64_t), off);
        if (got <= 0)
            return got < 0 ? -errno : -EIO;
        k = (size_t)got / sizeof(uint64_t);
        for (size_t i = 0; i < k; i++)
            if (ent[i] & PM_SOFT_DIRTY)
                dirty_bit_set(bits, done + i);
        done += k;
    }
    return 0;
}

/* Move every range's soft-dirty bits into its pending bitmap, then clear.
 * A range that cannot be read is marked all dirty. */
static int harvest(void)
{
    for (struct sd_range *r = sd_all; r; r = r->next)
        if (read_bits(r->start, r->npages, r->pending) < 0)
            dirty_bits_set_range(r->pending, 0, r->npages);
    return clear_all();
}

static int sd_probe(char *why, size_t whylen)
{
    pthread_mutex_lock(&sd_lock);
    int err = open_files(why, whylen);
    volatile char *p = MAP_FAILED;
    if (err)
        goto out;
    p = mmap(NULL, DIRTY_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        err = dirty_fail(why, whylen, errno, "mmap: %s", strerror(errno));
        goto out;
    }
    p[0] = 1;
    err = harvest(); /* keeps other ranges' bits while clearing */
    if (err) {
        dirty_fail(why, whylen, -err, "clear_refs: %s", strerror(-err));
        goto out;
    }
    uint64_t bit = 0;
    p[0] = 2;
    if (read_bits((uintptr_t)p, 1, &bit) < 0 || !bit)
        err = dirty_fail(why, whylen, ENOTSUP,
                         "kernel has no soft-dirty bits (CONFIG_MEM_SOFT_DIRTY off: "
                         "pagemap bit 55 stays clear after a write)");
out:
    if (p != MAP_FAILED)
        munmap((void *)p, DIRTY_PAGE_SIZE);
    pthread_mutex_unlock(&sd_lock);
    return err;
}

static int sd_open(void **state, char *why, size_t whylen)
{
    *state = NULL;
    pthread_mutex_lock(&sd_lock);
    int err = open_files(why, whylen);
    pthread_mutex_unlock(&sd_lock);
    return err;
}

static void sd_close(void *state)
{
    (void)state;
}

static int sd_track(void *state, uintptr_t start, size_t npages, void **range)
{
    (void)state;
    struct sd_range *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->start = start;
    r->npages = npages;
    r->pending = calloc(DIRTY_WORDS(npages), sizeof(uint64_t));
    if (!r->pending) {
        free(r);
        return -ENOMEM;
    }
    pthread_mutex_lock(&sd_lock);
    int err = open_files(NULL, 0);
    if (err == 0)
        err = harvest(); /* the new range starts clean */
    if (err == 0) {
        r->next = sd_all;
        sd_all = r;
    }
    pthread_mutex_unlock(&sd_lock);
    if (err) {
        free(r->pending);
        free(r);
        return err;
    }
    *range = r;
    return 0;
}

static void sd_untrack(void *state, void *range)
{
    (void)state;
    struct sd_range *r = range;
    pthread_mutex_lock(&sd_lock);
    for (struct sd_range **pp = &sd_all; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    pthread_mutex_unlock(&sd_lock);
    free(r->pending);
    free(r);
}

static long sd_collect(void *state, void *range, size_t first, size_t n, uint64_t *bitmap)
{
    (void)state;
    struct sd_range *r = range;
    pthread_mutex_lock(&sd_lock);
    memset(bitmap, 0, DIRTY_WORDS(n) * sizeof(uint64_t));
    int err = open_files(NULL, 0);
    if (err) {
        pthread_mutex_unlock(&sd_lock);
        return err; /* dirty.c reports every page */
    }
    err = harvest();
    long count = 0;
    for (size_t i = 0; i < n; i++) {
        size_t p = first + i;
        if (dirty_bit_get(r->pending, p)) {
            r->pending[p / 64] &= ~(1ULL << (p % 64));
            dirty_bit_set(bitmap, i);
            count++;
        }
    }
    pthread_mutex_unlock(&sd_lock);
    /* If clearing failed the bits we read stay set in the kernel and come
     * back next time: reporting them now is still right. */
    (void)err;
    return count;
}

const struct dirty_ops dirty_softdirty_ops = {
    .name = "softdirty",
    .id = DIRTY_SOFTDIRTY,
    .probe = sd_probe,
    .open = sd_open,
    .close = sd_close,
    .track = sd_track,
    .untrack = sd_untrack,
    .collect = sd_collect,
    .note_write = NULL, /* kernel writes set soft-dirty too */
};
