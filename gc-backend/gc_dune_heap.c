/*
 * gc_dune_heap.c - which memory is libgc's heap.
 *
 * libgc 8.2 has no public list of heap sections (free blocks have no
 * per-page header, so GC_is_heap_ptr cannot find them), so we watch where
 * its memory comes from: this library defines mmap(), which interposes
 * libc's for every object loaded after it, and records the regions that
 * libgc itself maps (caller inside libgc's image).  The heap-resize
 * callback (allocation lock held, world running) then marks the region
 * that became the new heap section and starts tracking it.  Regions we do
 * not track (libgc's internal "scratch" memory, part of which libgc may
 * later recycle into the heap without any callback) are scanned page by
 * page at every mark start (gc_dune_report.c): never too few pages.
 * Heap "unmapping" in libgc 8.2 on Linux is madvise(MADV_DONTNEED) on free
 * blocks: the mapping stays, so tracking continues across it.
 */
#define _GNU_SOURCE
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gc_dune_internal.h"

/* [MAX_REGIONS], mapped at the first record: in our bss it would be a root
 * that libgc scans at every collection and counts when it decides how
 * often to collect (1.5 MB; see dune/table.c).  Set before nregions
 * first grows, so whoever sees an entry sees the table. */
_Atomic(struct region *) regions;
atomic_uint nregions;
atomic_bool regions_lost;
static unsigned identified_upto; /* entries already classified */

static atomic_uintptr_t gc_lo, gc_hi; /* libgc's image in memory */

static int find_gc_image_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t want = (uintptr_t)arg, lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t s = info->dlpi_addr + ph->p_vaddr;
        if (s < lo)
            lo = s;
        if (s + ph->p_memsz > hi)
            hi = s + ph->p_memsz;
    }
    if (want < lo || want >= hi)
        return 0;
    atomic_store(&gc_lo, lo);
    atomic_store(&gc_hi, hi);
    return 1;
}

/* Locate the object that defines GC_malloc (libgc.so, or the executable
 * when libgc is linked statically into it). */
void find_gc_image(void)
{
    if (atomic_load(&gc_hi))
        return;
    void *sym = dlsym(RTLD_DEFAULT, "GC_malloc");
    if (sym)
        dl_iterate_phdr(find_gc_image_cb, sym);
}

static bool regions_alloc(void)
{
    struct region *none = NULL;
    void *t = (void *)syscall(SYS_mmap, NULL, MAX_REGIONS * sizeof(struct region),
                              PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                              -1, 0);
    if (t == MAP_FAILED)
        return false;
    if (!atomic_compare_exchange_strong(&regions, &none, t))
        syscall(SYS_munmap, t, MAX_REGIONS * sizeof(struct region)); /* another thread won */
    return true;
}

static void record_region(void *p, size_t len)
{
    if (!atomic_load(&regions) && !regions_alloc()) {
        atomic_store(&regions_lost, true);
        return;
    }
    unsigned i = atomic_fetch_add(&nregions, 1);
    if (i >= MAX_REGIONS) {
        atomic_store(&regions_lost, true);
        return;
    }
    regions[i].start = (uintptr_t)p;
    regions[i].len = (len + PAGE - 1) & ~(PAGE - 1);
    regions[i].state = R_SCRATCH;
    atomic_store_explicit(&regions[i].ready, true, memory_order_release);
}

/* Interposes libc's mmap.  The system call is made directly: asking the
 * dynamic linker for the next definition could allocate, and mmap can be
 * reached from inside the allocator. */
API void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    uintptr_t caller = (uintptr_t)__builtin_return_address(0);
    void *p = (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    if (p == MAP_FAILED || !(prot & PROT_WRITE) || (flags & MAP_SHARED))
        return p;
    if (!atomic_load_explicit(&gc_hi, memory_order_relaxed))
        find_gc_image();
    if (caller >= atomic_load(&gc_lo) && caller < atomic_load(&gc_hi))
        record_region(p, len);
    return p;
}

unsigned regions_ready(void)
{
    unsigned n = atomic_load(&nregions);
    return n > MAX_REGIONS ? MAX_REGIONS : n;
}

/* Heap size as the resize callback will compare it.  Collections may
 * recycle scratch memory into the heap without a resize event (when the
 * mark stack grows); taking the size again after each one keeps such
 * bytes out of the next expansion's delta.  Allocation lock held. */
static size_t last_heap_total;

void resync_heap_total(void)
{
    last_heap_total = GC_get_heap_size() + GC_get_unmapped_bytes();
}

/* ---- heap growth (allocation lock held, world running: malloc is fine) ---- */

static bool is_known_section_end(uintptr_t addr)
{
    unsigned n = regions_ready();
    for (unsigned i = 0; i < n; i++)
        if (atomic_load_explicit(&regions[i].ready, memory_order_acquire) &&
            regions[i].state != R_SCRATCH && regions[i].start + regions[i].len == addr)
            return true;
    return false;
}

/* Among the regions mapped since the previous resize event, find the new
 * heap section of `delta` bytes.  Taking libgc's internal memory for heap
 * would be dangerous, not just slow: the mprotect backend would
 * write-protect, say, a parallel marker's mark stack, and marker threads
 * run with every signal blocked, so their first write would kill the
 * process.  Hence only an unambiguous match counts: the single region of
 * exactly that size whose first page is a heap block -- or was merged into
 * the free block that ends a section just below it, the only way it can
 * have lost its header.  Anything else stays "scratch": not tracked, but
 * scanned at each mark start, so nothing is missed, it only costs time. */
static bool looks_like_section(const struct region *r, size_t delta)
{
    return atomic_load_explicit(&r->ready, memory_order_acquire) && r->len == delta &&
           (GC_is_heap_ptr((void *)r->start) || is_known_section_end(r->start));
}

static void identify_sections(size_t delta)
{
    unsigned n = regions_ready(), matches = 0, pick = 0;
    for (unsigned i = identified_upto; i < n; i++) {
        if (looks_like_section(&regions[i], delta)) {
            matches++;
            pick = i;
        }
    }
    identified_upto = n;
    if (matches == 1)
        regions[pick].state = R_HEAP;
}

/* Put every known heap section under the tracker, once libgc reads the
 * bits (before, tracking would cost without use). */
void track_sections(void)
{
    if (!feeding())
        return;
    unsigned n = regions_ready();
    for (unsigned i = 0; i < n; i++) {
        struct region *r = &regions[i];
        if (!atomic_load_explicit(&r->ready, memory_order_acquire) || r->state != R_HEAP)
            continue;
        /* The region is scanned whole at each mark start until this
         * succeeds, so a failure only costs time. */
        int err = dirty_track(cfg.tracker, (void *)r->start, r->len);
        if (err == 0) {
            r->fresh = true;
            r->state = R_TRACKED;
            if (cfg.keep_ptrfree)
                ptrfree_reopen(r->start, r->len / PAGE);
            /* On failure the region answers "written" at every read. */
            if (cfg.soft)
                soft_feed_track(r->start, r->len);
        } else if (cfg.verbose_level >= 2) {
            fprintf(stderr, "gc-dune: cannot track %#lx +%zu KiB: %s\n", (unsigned long)r->start,
                    r->len / 1024, strerror(-err));
        }
    }
}

/* Soft-dirty feed: libgc asks only about its heap sections and anything
 * untracked answers "written", so a region libgc mapped may be tracked as
 * soon as it holds a heap block, whatever else it holds -- such as the
 * scratch memory libgc recycles into its heap without telling anyone,
 * which would otherwise be rescanned at every collection.  Not under the
 * mprotect backend, whose faults libgc's own marker threads cannot take.
 * World running, allocation lock held (after a collection). */
void adopt_heap_regions(void)
{
    if (!feeding_soft() || dirty_backend_of(cfg.tracker) == DIRTY_MPROTECT)
        return;
    unsigned n = regions_ready();
    bool any = false;
    for (unsigned i = 0; i < n; i++) {
        struct region *r = &regions[i];
        if (!atomic_load_explicit(&r->ready, memory_order_acquire) || r->state != R_SCRATCH)
            continue;
        for (uintptr_t p = r->start; p < r->start + r->len; p += PAGE) {
            if (GC_is_heap_ptr((void *)p)) {
                r->state = R_HEAP;
                any = true;
                break;
            }
        }
    }
    if (any)
        track_sections();
}

void GC_CALLBACK resize_cb(GC_word new_size)
{
    if (cfg.active) {
        size_t delta = new_size > last_heap_total ? new_size - last_heap_total : 0;
        last_heap_total = new_size;
        if (delta)
            identify_sections(delta);
        track_sections();
    }
    GC_on_heap_resize_proc app = atomic_load(&app_resize);
    if (app)
        app(new_size);
}

void *track_locked(void *arg)
{
    (void)arg;
    track_sections();
    return NULL;
}

/* GC_DUNE_VERBOSE=2: one line per region libgc mapped. */
void dump_regions(void)
{
    static const char *const names[] = {"scratch", "heap", "tracked"};
    unsigned n = regions_ready();
    for (unsigned i = 0; i < n; i++) {
        const struct region *r = &regions[i];
        unsigned long heap = 0;
        for (uintptr_t p = r->start; p < r->start + r->len; p += PAGE)
            heap += GC_is_heap_ptr((void *)p) != 0;
        fprintf(stderr, "gc-dune: region %u %#lx +%zu KiB %s, %lu heap pages\n", i,
                (unsigned long)r->start, r->len / 1024, names[r->state], heap);
    }
}
