/*
 * gc_dune_soft.c - feed libgc through its own soft-dirty VDB instead of
 * its manual VDB.
 *
 * Why: in manual-VDB mode libgc 8.2 gives up its thread-local allocation
 * fast path: GC_generic_malloc_many() then hands out one object per call
 * (each under the allocation lock) and every GC_malloc() ends with an
 * atomic GC_end_stubborn_change().  On GCBench that alone costs more than
 * the dirty tracking itself.  libgc's soft-dirty VDB has neither cost: it
 * reads /proc/<pid>/pagemap (bit 55 of each entry: "written since the
 * last clear") for every page of its heap sections at each collection,
 * then writes "4" to /proc/<pid>/clear_refs.  The kernel here has no
 * soft-dirty bits (CONFIG_MEM_SOFT_DIRTY off), so libgc would fall back
 * to mprotect -- unless the two files it opens answer from our tracker.
 *
 * So this file interposes open() (only for libgc's own opens of those two
 * files), read(), lseek(), write() and close() (only on the two
 * descriptors handed out here; both are really /dev/null, so a read that
 * somehow bypassed us returns 0 bytes and libgc aborts instead of seeing
 * "clean").  A pagemap read answers, per page:
 *  - not in a tracked region: written (libgc rescans it; never too few);
 *  - in a tracked region: written iff the tracker saw a write since the
 *    last clear_refs write, or the region was tracked since then.
 * The tracker is read-and-cleared (dirty_collect_all, one pass over every
 * range) at the first pagemap read over tracked memory after a clear_refs
 * write or a mark start; the answers are accumulated per page in `acc`
 * until the next clear_refs write, which clears the tracker too (a pass
 * whose answers are dropped) if no read came since the last one.  Within one GC_read_dirty() libgc
 * reads with the world stopped, so one pass serves all its reads; a read
 * that found no pass due (only libgc's self-test of the bit, on untracked
 * scratch memory) answers "written" anyway.
 */
#define _GNU_SOURCE
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dirty.h"
#include "dune.h"
#include "gc_dune_soft.h"

#define API __attribute__((visibility("default")))
#define SPAGE DUNE_PAGE_SIZE
#define WORDS(npages) (((npages) + 63) / 64)
#define PM_PRESENT (1ULL << 63)
#define PM_SOFT_DIRTY (1ULL << 55)

struct sregion {
    uintptr_t start, end;
    uint64_t *acc; /* written since the last clear_refs write */
};

static struct {
    atomic_bool armed;        /* answer libgc's opens */
    atomic_int pm_fd, cr_fd;  /* our pagemap and clear_refs, or -1 */
    struct dirty_tracker *t;
    void (*on_run)(uintptr_t first, size_t npages);
    uintptr_t gc_lo, gc_hi;   /* libgc's image */
    off_t pos;                /* pagemap file position */
    bool pass_due;            /* read-and-clear the tracker at the next read */
    struct sregion *r;        /* tracked regions, sorted by start */
    size_t nr, cap;
    struct soft_feed_stats st;
} sf = {.pm_fd = -1, .cr_fd = -1, .pass_due = true};

/* ------------------------------------------------------------------ */
/* libc's functions behind ours                                         */

static ssize_t (*libc_read)(int, void *, size_t);
static ssize_t (*libc_write)(int, const void *, size_t);
static off_t (*libc_lseek)(int, off_t, int);
static int (*libc_close)(int);
static int (*libc_open)(const char *, int, ...);
static int (*libc_open_2)(const char *, int);

/* Resolved once at setup (soft_feed_resolve); until then, and if dlsym
 * fails, the raw system calls serve. */
void soft_feed_resolve(void)
{
    libc_read = (ssize_t(*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
    libc_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    libc_lseek = (off_t(*)(int, off_t, int))dlsym(RTLD_NEXT, "lseek");
    libc_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
    libc_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
    libc_open_2 = (int (*)(const char *, int))dlsym(RTLD_NEXT, "__open_2");
}

/* ------------------------------------------------------------------ */
/* regions                                                              */

/* Index of the first region whose end is above addr. */
static size_t first_above(uintptr_t addr)
{
    size_t lo = 0, hi = sf.nr;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sf.r[mid].end <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int soft_feed_track(uintptr_t start, size_t len)
{
    size_t npages = len / SPAGE;
    if (sf.nr == sf.cap) {
        size_t cap = sf.cap ? 2 * sf.cap : 64;
        struct sregion *r = realloc(sf.r, cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        sf.r = r;
        sf.cap = cap;
    }
    uint64_t *acc = malloc(WORDS(npages) * sizeof(uint64_t));
    if (!acc)
        return -ENOMEM;
    /* Written before tracking began, for all we know. */
    memset(acc, 0xff, WORDS(npages) * sizeof(uint64_t));
    size_t at = first_above(start);
    memmove(&sf.r[at + 1], &sf.r[at], (sf.nr - at) * sizeof(*sf.r));
    sf.r[at] = (struct sregion){.start = start, .end = start + len, .acc = acc};
    sf.nr++;
    return 0;
}

/* ------------------------------------------------------------------ */
/* the emulated files                                                   */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void set_bits(uint64_t *b, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        b[i / 64] |= 1ULL << (i % 64);
}

static bool get_bit(const uint64_t *b, size_t i)
{
    return b[i / 64] >> (i % 64) & 1;
}

static void acc_run(void *first, size_t npages, void *arg)
{
    unsigned long *pages = arg;
    uintptr_t a = (uintptr_t)first;
    size_t i = first_above(a);
    *pages += npages;
    if (sf.on_run)
        sf.on_run(a, npages);
    if (i == sf.nr || sf.r[i].start > a)
        return; /* not one of ours: answered "written" anyway */
    struct sregion *r = &sf.r[i];
    size_t from = (a - r->start) / SPAGE;
    set_bits(r->acc, from, from + npages);
}

/* One read-and-clear pass over the tracker into the regions' acc. */
static void pass(void)
{
    uint64_t t0 = now_ns();
    unsigned long pages = 0;
    if (dirty_collect_all(sf.t, acc_run, &pages) < 0) {
        for (size_t i = 0; i < sf.nr; i++)
            set_bits(sf.r[i].acc, 0, (sf.r[i].end - sf.r[i].start) / SPAGE);
    }
    uint64_t dt = now_ns() - t0;
    sf.st.passes++;
    sf.st.pages += pages;
    sf.st.last_pages = pages;
    sf.st.ns += dt;
    sf.st.last_ns = dt;
    if (dt > sf.st.max_ns)
        sf.st.max_ns = dt;
}

/* Entries for pages [page, page + n) of the address space. */
static void answer(uint64_t *e, uintptr_t page, size_t n)
{
    uintptr_t lo = page * SPAGE, hi = lo + n * SPAGE;
    size_t i = first_above(lo);
    if (sf.pass_due && i < sf.nr && sf.r[i].start < hi) {
        pass();
        sf.pass_due = false;
    }
    for (size_t k = 0; k < n; k++)
        e[k] = PM_PRESENT | PM_SOFT_DIRTY;
    sf.st.answered += n;
    for (; i < sf.nr && sf.r[i].start < hi; i++) {
        const struct sregion *r = &sf.r[i];
        uintptr_t s = r->start > lo ? r->start : lo;
        uintptr_t end = r->end < hi ? r->end : hi;
        size_t base = (s - r->start) / SPAGE, k0 = (s - lo) / SPAGE;
        sf.st.answered_tracked += (end - s) / SPAGE;
        for (size_t k = 0; k < (end - s) / SPAGE; k++) {
            if (!get_bit(r->acc, base + k))
                e[k0 + k] = PM_PRESENT;
            else
                sf.st.answered_dirty++;
        }
    }
}

static ssize_t pagemap_read(void *buf, size_t count)
{
    size_t n = count / sizeof(uint64_t);
    if (sf.pos < 0 || sf.pos % sizeof(uint64_t)) {
        errno = EINVAL;
        return -1;
    }
    answer(buf, (uintptr_t)sf.pos / sizeof(uint64_t), n);
    sf.pos += (off_t)(n * sizeof(uint64_t));
    return (ssize_t)(n * sizeof(uint64_t));
}

static void clear_refs(void)
{
    /* No read since the last clear (GC_read_dirty(TRUE), before a full
     * mark): the real bits would be cleared now, so are the tracker's --
     * else they would all come back at the next read as extra rescans. */
    if (sf.pass_due && sf.nr)
        pass();
    for (size_t i = 0; i < sf.nr; i++)
        memset(sf.r[i].acc, 0, WORDS((sf.r[i].end - sf.r[i].start) / SPAGE) * sizeof(uint64_t));
    sf.pass_due = true;
    sf.st.clears++;
}

void soft_feed_on_run(void (*fn)(uintptr_t first, size_t npages))
{
    sf.on_run = fn;
}

void soft_feed_mark_start(void)
{
    sf.pass_due = true;
}

/* Which of our files path names (1 pagemap, 2 clear_refs), if opened by
 * libgc itself while armed; else 0. */
static int ours(const char *path, uintptr_t caller)
{
    if (!atomic_load_explicit(&sf.armed, memory_order_relaxed) || !path ||
        caller < sf.gc_lo || caller >= sf.gc_hi || strncmp(path, "/proc/", 6))
        return 0;
    const char *p = path + 6;
    if (strncmp(p, "self/", 5) == 0) {
        p += 5;
    } else {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p || *end != '/' || pid != (long)getpid())
            return 0;
        p = end + 1;
    }
    if (strcmp(p, "pagemap") == 0)
        return 1;
    if (strcmp(p, "clear_refs") == 0)
        return 2;
    return 0;
}

static int open_ours(int which)
{
    int fd = libc_open ? libc_open("/dev/null", O_RDWR | O_CLOEXEC)
                       : (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return fd;
    if (which == 1) {
        sf.pos = 0;
        atomic_store(&sf.pm_fd, fd);
    } else {
        atomic_store(&sf.cr_fd, fd);
    }
    return fd;
}

API int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    int which = ours(path, (uintptr_t)__builtin_return_address(0));
    if (which)
        return open_ours(which);
    if (libc_open)
        return libc_open(path, flags, mode);
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

API int __open_2(const char *path, int flags)
{
    int which = ours(path, (uintptr_t)__builtin_return_address(0));
    if (which)
        return open_ours(which);
    if (libc_open_2)
        return libc_open_2(path, flags);
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, 0);
}

static bool is_pm(int fd)
{
    return fd >= 0 && fd == atomic_load_explicit(&sf.pm_fd, memory_order_relaxed);
}

static bool is_cr(int fd)
{
    return fd >= 0 && fd == atomic_load_explicit(&sf.cr_fd, memory_order_relaxed);
}

API ssize_t read(int fd, void *buf, size_t count)
{
    if (is_pm(fd))
        return pagemap_read(buf, count);
    if (libc_read)
        return libc_read(fd, buf, count);
    return syscall(SYS_read, fd, buf, count);
}

API ssize_t write(int fd, const void *buf, size_t count)
{
    if (is_cr(fd)) {
        clear_refs();
        return (ssize_t)count;
    }
    if (libc_write)
        return libc_write(fd, buf, count);
    return syscall(SYS_write, fd, buf, count);
}

API off_t lseek(int fd, off_t off, int whence)
{
    if (is_pm(fd)) {
        off_t to = whence == SEEK_SET ? off : whence == SEEK_CUR ? sf.pos + off : -1;
        if (to < 0) {
            errno = EINVAL;
            return -1;
        }
        sf.pos = to;
        return to;
    }
    if (libc_lseek)
        return libc_lseek(fd, off, whence);
    return syscall(SYS_lseek, fd, off, whence);
}

API int close(int fd)
{
    if (is_pm(fd))
        atomic_store(&sf.pm_fd, -1);
    else if (is_cr(fd))
        atomic_store(&sf.cr_fd, -1);
    if (libc_close)
        return libc_close(fd);
    return (int)syscall(SYS_close, fd);
}

/* ------------------------------------------------------------------ */
/* setup                                                                */

struct image_scan {
    uintptr_t want, lo, hi;
    bool soft_vdb; /* the image holds libgc's soft-dirty code */
};

static int scan_image(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct image_scan *s = arg;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    if (s->want < lo || s->want >= hi)
        return 0;
    s->lo = lo;
    s->hi = hi;
    /* libgc's soft-dirty VDB opens "clear_refs"; look for the name in its
     * read-only data (each loaded segment is mapped whole). */
    static const char key[] = "clear_refs";
    for (int i = 0; i < info->dlpi_phnum && !s->soft_vdb; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_R) && !(ph->p_flags & PF_W))
            s->soft_vdb = memmem((void *)(info->dlpi_addr + ph->p_vaddr), ph->p_filesz, key,
                                 sizeof key - 1) != NULL;
    }
    return 1;
}

int soft_feed_arm(struct dirty_tracker *t, const char **why)
{
    struct image_scan s = {.want = (uintptr_t)dlsym(RTLD_DEFAULT, "GC_malloc")};
    const char *v = getenv("GC_USE_GETWRITEWATCH");
    if (v && strcmp(v, "0") == 0) {
        *why = "GC_USE_GETWRITEWATCH=0 turns libgc's soft-dirty reader off";
        return -ENOTSUP;
    }
    if (!s.want || !dl_iterate_phdr(scan_image, &s)) {
        *why = "libgc's image not found";
        return -ENOTSUP;
    }
    if (!s.soft_vdb) {
        *why = "this libgc has no soft-dirty reader";
        return -ENOTSUP;
    }
    soft_feed_arm_image(t, s.lo, s.hi);
    *why = "libgc reads our bits through its soft-dirty interface";
    return 0;
}

void soft_feed_arm_image(struct dirty_tracker *t, uintptr_t lo, uintptr_t hi)
{
    sf.gc_lo = lo;
    sf.gc_hi = hi;
    sf.t = t;
    atomic_store(&sf.armed, true);
}

bool soft_feed_armed(void)
{
    return atomic_load(&sf.armed);
}

bool soft_feed_in_use(void)
{
    return atomic_load(&sf.armed) && atomic_load(&sf.cr_fd) >= 0 && atomic_load(&sf.pm_fd) >= 0;
}

void soft_feed_stats(struct soft_feed_stats *st)
{
    *st = sf.st;
}
