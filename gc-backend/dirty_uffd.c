/*
 * dirty_uffd.c - native backend: userfaultfd write-protection in async mode
 * plus the PAGEMAP_SCAN ioctl of /proc/self/pagemap (Linux >= 6.7).
 *
 * The range is registered for write-protect faults with WP_ASYNC, so the
 * kernel resolves the first write to a protected page by itself (no thread
 * has to read the uffd) and only clears the page's uffd-wp bit.  Collect is
 * a single PAGEMAP_SCAN that returns the pages in the PAGE_IS_WRITTEN
 * category (uffd-wp bit clear) and, with PM_SCAN_WP_MATCHING, protects them
 * again in the same pass.  WP_UNPOPULATED makes never-touched pages start
 * protected too (the kernel installs markers), so the first write to a
 * fresh page is caught.  Writes by the kernel (read(), recvmsg) into a
 * protected page go through the same fault path, so they are seen.
 * Transparent huge pages stay huge while protected (the protection is set
 * on the PMD); PAGEMAP_SCAN would report a written huge page as one
 * 512-page region, but on 6.18 the first write splits it, so the answer
 * stays per 4 KiB page (measured: one write in a THP range -> 1 page).
 *
 * fork(): both fds keep naming the parent's memory (the uffd is bound to
 * the mm that created it, /proc/self/pagemap to the process that opened
 * it), and the child's copy of a range is no longer registered (we do not
 * ask for UFFD_FEATURE_EVENT_FORK).  A child that used them would register
 * and re-protect the *parent's* pages, wiping writes the parent has not
 * collected yet.  So every entry point first checks the pid; in a child it
 * opens fresh fds, registers the ranges again, and reports each range
 * whole once (writes since the parent's last collect and since the fork
 * were seen by nobody).
 */
#define _GNU_SOURCE
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dirty_backend.h"

/* Kernel uapi values (Linux 6.7) missing from Debian 12's headers. */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef PAGEMAP_SCAN
struct page_region {
    uint64_t start, end, categories;
};
struct pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#endif

#define VEC_LEN 1024 /* regions per PAGEMAP_SCAN call; more just loops */

struct uffd_range {
    uintptr_t start;
    size_t npages;
    bool unseen; /* report whole at the next full collect (after fork) */
    struct uffd_range *prev, *next;
};

struct uffd_state {
    int uffd, pagemap;
    pid_t pid; /* both fds belong to this process's address space */
    struct uffd_range *ranges; /* every range of this instance */
    struct page_region vec[VEC_LEN];
};

/* A userfaultfd that has agreed on `features`, or -errno. */
static int uffd_with(uint64_t features)
{
    /* User-mode-only needs no privilege; async WP never delivers an event,
     * and kernel-mode writes are resolved the same way regardless. */
    int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd < 0)
        fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct uffdio_api api = {.api = UFFD_API, .features = features};
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
        int e = errno;
        close(fd); /* the handshake can be made only once per fd */
        return -e;
    }
    return fd;
}

static int open_uffd(char *why, size_t whylen)
{
    const uint64_t need = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
    /* Shared memory (shmem, hugetlbfs) too where the kernel can; a GC heap
     * is private anonymous memory, so that part is optional. */
    int fd = uffd_with(need | UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
    if (fd < 0)
        fd = uffd_with(need);
    if (fd == -EINVAL) {
        return dirty_fail(why, whylen, EINVAL,
                          "UFFDIO_API: no WP_ASYNC/WP_UNPOPULATED (needs Linux >= 6.7)");
    }
    if (fd < 0)
        return dirty_fail(why, whylen, -fd, "userfaultfd: %s", strerror(-fd));
    return fd;
}

/* One PAGEMAP_SCAN over [start, end).  With vec == NULL it only protects.
 *
 * The kernel's "written" means only that the page's uffd-wp bit is clear,
 * and two things clear it without a store:
 *  - madvise(MADV_DONTNEED), which libgc uses to "unmap" free heap blocks,
 *    drops an anonymous page together with its protection marker;
 *  - a read of such a page then maps the shared zero page, unprotected.
 * Neither stores anything (discarding is not a write for any backend:
 * mprotect, kvm and pte cannot see it either), and a later store to such
 * a page must first install a real page, which then shows as written.  So
 * only real pages count -- present or swapped out, not the zero page --
 * and the others are left unprotected.  (Counting them made the checking
 * mode report writes that mprotect "missed".) */
static long scan(int pagemap, uintptr_t start, uintptr_t end, struct page_region *vec,
                 size_t veclen, uint64_t *walk_end)
{
    struct pm_scan_arg a = {
        .size = sizeof(a),
        .flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
        .start = start,
        .end = end,
        .vec = (uintptr_t)vec,
        .vec_len = vec ? veclen : 0,
        .category_inverted = PAGE_IS_PFNZERO,
        .category_mask = PAGE_IS_WRITTEN | PAGE_IS_PFNZERO, /* written, not the zero page */
        .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED, /* a real page */
        .return_mask = PAGE_IS_WRITTEN,
    };
    long n = ioctl(pagemap, PAGEMAP_SCAN, &a);
    if (n < 0)
        return -errno;
    if (walk_end)
        *walk_end = a.walk_end;
    return n;
}

static int do_register(int uffd, uintptr_t start, size_t len)
{
    struct uffdio_register reg = {
        .range = {.start = start, .len = len},
        .mode = UFFDIO_REGISTER_MODE_WP,
    };
    return ioctl(uffd, UFFDIO_REGISTER, &reg) < 0 ? -errno : 0;
}

/* Functional probe: register two pages, clear, write one, expect exactly it. */
static int uffd_probe(char *why, size_t whylen)
{
    int fd = open_uffd(why, whylen);
    if (fd < 0)
        return fd;
    int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pm < 0) {
        int e = errno;
        close(fd);
        return dirty_fail(why, whylen, e, "/proc/self/pagemap: %s", strerror(e));
    }
    int err = 0;
    size_t len = 2 * DIRTY_PAGE_SIZE;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        err = dirty_fail(why, whylen, errno, "mmap: %s", strerror(errno));
        goto out;
    }
    err = do_register(fd, (uintptr_t)p, len);
    if (err) {
        dirty_fail(why, whylen, -err, "UFFDIO_REGISTER(WP): %s", strerror(-err));
        goto out_unmap;
    }
    long n = scan(pm, (uintptr_t)p, (uintptr_t)p + len, NULL, 0, NULL);
    if (n < 0) {
        err = dirty_fail(why, whylen, (int)-n, "PAGEMAP_SCAN unsupported (%s; needs Linux >= 6.7)",
                         strerror((int)-n));
        goto out_unmap;
    }
    p[DIRTY_PAGE_SIZE] = 1;
    struct page_region r[2];
    n = scan(pm, (uintptr_t)p, (uintptr_t)p + len, r, 2, NULL);
    if (n != 1 || r[0].start != (uintptr_t)p + DIRTY_PAGE_SIZE || r[0].end != (uintptr_t)p + len)
        err = dirty_fail(why, whylen, EIO, "PAGEMAP_SCAN gave a wrong answer in the self-test");
out_unmap:
    munmap(p, len);
out:
    close(pm);
    close(fd);
    return err;
}

static int uffd_open(void **state, char *why, size_t whylen)
{
    struct uffd_state *s = calloc(1, sizeof(*s));
    if (!s)
        return dirty_fail(why, whylen, ENOMEM, "out of memory");
    s->uffd = open_uffd(why, whylen);
    if (s->uffd < 0) {
        int e = s->uffd;
        free(s);
        return e;
    }
    s->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (s->pagemap < 0) {
        int e = errno;
        close(s->uffd);
        free(s);
        return dirty_fail(why, whylen, e, "/proc/self/pagemap: %s", strerror(e));
    }
    s->pid = getpid();
    *state = s;
    return 0;
}

static void uffd_close(void *state)
{
    struct uffd_state *s = state;
    /* In a forked child this drops only the child's references. */
    if (s->pagemap >= 0)
        close(s->pagemap);
    if (s->uffd >= 0)
        close(s->uffd); /* the last reference drops every registration */
    free(s);
}

/* Register and protect; pages written before registration start clean. */
static int arm(struct uffd_state *s, uintptr_t start, size_t len)
{
    int err = do_register(s->uffd, start, len);
    if (err)
        return err;
    long n = scan(s->pagemap, start, start + len, NULL, 0, NULL);
    return n < 0 ? (int)n : 0;
}

/* Make the instance this process's own (see fork() above).  0 or -errno;
 * on failure the pid stays stale, so the next call tries again, and until
 * then collects fail (dirty.c then reports every page). */
static int own(struct uffd_state *s)
{
    pid_t pid = getpid();
    if (s->pid == pid)
        return 0;
    if (s->pagemap >= 0)
        close(s->pagemap);
    if (s->uffd >= 0)
        close(s->uffd);
    s->pagemap = -1;
    s->uffd = open_uffd(NULL, 0);
    if (s->uffd < 0)
        return s->uffd;
    s->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (s->pagemap < 0)
        return -errno;
    s->pid = pid;
    for (struct uffd_range *r = s->ranges; r; r = r->next) {
        r->unseen = true;
        /* A failure shows up as -EPERM at collect, which arms again. */
        arm(s, r->start, r->npages << DIRTY_PAGE_SHIFT);
    }
    return 0;
}

static int uffd_track(void *state, uintptr_t start, size_t npages, void **range)
{
    struct uffd_state *s = state;
    int err = own(s);
    if (err)
        return err;
    struct uffd_range *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->start = start;
    r->npages = npages;
    err = arm(s, start, npages << DIRTY_PAGE_SHIFT);
    if (err) {
        free(r);
        return err;
    }
    r->next = s->ranges;
    if (s->ranges)
        s->ranges->prev = r;
    s->ranges = r;
    *range = r;
    return 0;
}

static void uffd_untrack(void *state, void *range)
{
    struct uffd_state *s = state;
    struct uffd_range *r = range;
    if (own(s) == 0) {
        struct uffdio_range ur = {.start = r->start, .len = r->npages << DIRTY_PAGE_SHIFT};
        ioctl(s->uffd, UFFDIO_UNREGISTER, &ur); /* fails harmlessly if unmapped */
    }
    if (r->prev)
        r->prev->next = r->next;
    else
        s->ranges = r->next;
    if (r->next)
        r->next->prev = r->prev;
    free(r);
}

/* Scan pages [from, to) of r (absolute indices, within [first, first+n),
 * the pages bitmap covers): set their written pages in bitmap and protect
 * them again.  0, 1 if the range was remapped (then everything is reported
 * and armed again), or -errno. */
static long scan_run(struct uffd_state *s, struct uffd_range *r, size_t first, size_t n,
                     size_t from, size_t to, uint64_t *bitmap)
{
    uintptr_t base = r->start + (first << DIRTY_PAGE_SHIFT);
    uintptr_t end = r->start + (to << DIRTY_PAGE_SHIFT);
    for (uintptr_t at = r->start + (from << DIRTY_PAGE_SHIFT); at < end;) {
        uint64_t walk_end = end;
        long got = scan(s->pagemap, at, end, s->vec, VEC_LEN, &walk_end);
        if (got == -EPERM) {
            /* Part of the range is no longer registered: it was unmapped
             * and mapped again.  Whatever is there now may have been
             * written unseen: report it all and arm the new mapping. */
            dirty_bits_set_range(bitmap, 0, n);
            arm(s, base, n << DIRTY_PAGE_SHIFT);
            return 1;
        }
        if (got < 0)
            return got;
        for (long i = 0; i < got; i++) {
            dirty_bits_set_range(bitmap, (s->vec[i].start - base) >> DIRTY_PAGE_SHIFT,
                                 (s->vec[i].end - base) >> DIRTY_PAGE_SHIFT);
        }
        if (walk_end <= at)
            break; /* no progress: should not happen */
        at = walk_end;
    }
    return 0;
}

/* Collect, leaving alone the pages set in skip (NULL: none); *guessed is
 * set when the answer is a precaution (remap, fork).  Each run of pages
 * not skipped is one PAGEMAP_SCAN; skipped pages are reported. */
static long collect(struct uffd_state *s, struct uffd_range *r, size_t first, size_t n,
                    uint64_t *bitmap, const uint64_t *skip, bool *guessed)
{
    memset(bitmap, 0, DIRTY_WORDS(n) * sizeof(uint64_t));
    *guessed = false;
    int err = own(s);
    if (err)
        return err;
    if (r->unseen) {
        /* First collect in a forked child: writes since the parent's last
         * collect went unseen.  Scan anyway, to re-protect. */
        dirty_bits_set_range(bitmap, 0, n);
        *guessed = true;
        if (first == 0 && n == r->npages)
            r->unseen = false;
    }
    for (size_t i = 0; i < n;) {
        size_t j = i;
        if (skip && dirty_bit_get(skip, i)) {
            while (j < n && dirty_bit_get(skip, j))
                j++;
            dirty_bits_set_range(bitmap, i, j);
            i = j;
            continue;
        }
        while (j < n && !(skip && dirty_bit_get(skip, j)))
            j++;
        long got = scan_run(s, r, first, n, first + i, first + j, bitmap);
        if (got < 0)
            return got;
        if (got > 0) {
            *guessed = true;
            return (long)n;
        }
        i = j;
    }
    return dirty_bits_count(bitmap, n);
}

/* Open: unprotect, so that writes take no fault (an exclusive page becomes
 * writable at once).  Arm: protect again; with WP_UNPOPULATED this also
 * covers pages not populated now, so a first write later is caught. */
static int uffd_set_open(void *state, void *range, size_t first, size_t n, bool open)
{
    struct uffd_state *s = state;
    struct uffd_range *r = range;
    int err = own(s);
    if (err)
        return err;
    struct uffdio_writeprotect wp = {
        .range = {.start = r->start + (first << DIRTY_PAGE_SHIFT), .len = n << DIRTY_PAGE_SHIFT},
        .mode = open ? 0 : UFFDIO_WRITEPROTECT_MODE_WP,
    };
    return ioctl(s->uffd, UFFDIO_WRITEPROTECT, &wp) < 0 ? -errno : 0;
}

static long uffd_collect_skip(void *state, void *range, size_t first, size_t n, uint64_t *bitmap,
                              const uint64_t *skip)
{
    bool guessed;
    return collect(state, range, first, n, bitmap, skip, &guessed);
}

static long uffd_collect(void *state, void *range, size_t first, size_t n, uint64_t *bitmap)
{
    bool guessed;
    return collect(state, range, first, n, bitmap, NULL, &guessed);
}

static long uffd_collect_certain(void *state, void *range, size_t first, size_t n,
                                 uint64_t *bitmap, uint64_t *certain)
{
    bool guessed;
    long r = collect(state, range, first, n, bitmap, NULL, &guessed);
    if (r >= 0 && !guessed)
        memcpy(certain, bitmap, DIRTY_WORDS(n) * sizeof(uint64_t));
    else
        memset(certain, 0, DIRTY_WORDS(n) * sizeof(uint64_t));
    return r;
}

const struct dirty_ops dirty_uffd_ops = {
    .name = "uffd",
    .id = DIRTY_UFFD,
    .probe = uffd_probe,
    .open = uffd_open,
    .close = uffd_close,
    .track = uffd_track,
    .untrack = uffd_untrack,
    .collect = uffd_collect,
    .collect_certain = uffd_collect_certain,
    .set_open = uffd_set_open,
    .collect_skip = uffd_collect_skip,
    .note_write = NULL, /* the kernel's own writes fault like the CPU's */
};
