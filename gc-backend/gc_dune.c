/*
 * gc_dune.c - feed Boehm GC's manual virtual-dirty-bit mode (libgc >= 8.2,
 * unpatched) from a dirty-page tracker (dirty.h).
 *
 * How it plugs in, using only libgc's public API:
 *  - GC_set_manual_vdb_allowed(1) before incremental mode is switched on:
 *    the collector then installs no write-fault handler and treats as dirty
 *    exactly the pages reported with GC_end_stubborn_change() (GC_dirty).
 *  - The GC_EVENT_MARK_START collection event fires with the world stopped
 *    and the allocation lock held, right before the collector reads its
 *    dirty bits.  There we read-and-clear the tracker and report each dirty
 *    heap page.  No allocation there: a stopped thread may hold malloc's
 *    lock.
 *  - Heap growth: libgc 8.2 has no public list of heap sections (free
 *    blocks have no per-page header, so GC_is_heap_ptr cannot find them),
 *    so we watch where its memory comes from: this library defines mmap(),
 *    which interposes libc's for every object loaded after it, and records
 *    the regions that libgc itself maps (caller inside libgc's image).  The
 *    heap-resize callback (allocation lock held, world running) then marks
 *    the region that became the new heap section and starts tracking it.
 *    Regions we do not track (libgc's internal "scratch" memory, part of
 *    which libgc may later recycle into the heap without any callback) are
 *    scanned page by page at every mark start and their heap pages
 *    reported dirty: never too few pages.
 *  - A newly tracked region starts clean in the tracker, so all its heap
 *    pages are reported once at the next mark start; that also covers the
 *    dirty-bit reset libgc does inside GC_enable_incremental().
 *  - Heap "unmapping" in libgc 8.2 on Linux is madvise(MADV_DONTNEED) on
 *    free blocks: the mapping stays, so tracking continues across it.
 *  - Applications may install their own collection-event and heap-resize
 *    callbacks: we interpose the public setters/getters and chain them.
 *  - GC_init and GC_enable_incremental are interposed too, so that setup
 *    happens even when another library's constructor initializes the
 *    collector before ours runs; a constructor covers everything else.
 */
#define _GNU_SOURCE
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <gc.h>

#include "dirty.h"
#include "gc_dune.h"
#ifdef HAVE_DUNE
#include "dune.h"
#endif

#define PAGE 4096UL
#define API __attribute__((visibility("default")))

/* ------------------------------------------------------------------ */
/* configuration and state                                              */

enum choice { CH_AUTO, CH_PTE, CH_KVM, CH_UFFD, CH_MPROTECT, CH_OFF };

static struct {
    enum choice choice;
    bool verbose;            /* GC_DUNE_VERBOSE */
    int verbose_level;       /* 2: also list the regions at exit */
    bool print_stats;        /* GC_PRINT_STATS */
    bool active;             /* manual VDB requested and tracker open */
    bool in_dune;
    struct dirty_tracker *tracker;
    char why[600];
} cfg;

/* libgc's own entry points behind the ones we interpose. */
static struct {
    void (*init)(void);
    void (*enable_incremental)(void);
    void (*set_event)(GC_on_collection_event_proc);
    GC_on_collection_event_proc (*get_event)(void);
    void (*set_resize)(GC_on_heap_resize_proc);
    GC_on_heap_resize_proc (*get_resize)(void);
} real;

/* The application's callbacks, which ours chain to. */
static _Atomic(GC_on_collection_event_proc) app_event;
static _Atomic(GC_on_heap_resize_proc) app_resize;

static struct {
    unsigned long collections, pages, last_pages, fresh, scanned;
    uint64_t ns, last_ns, max_ns;
} stats;

/* ------------------------------------------------------------------ */
/* regions libgc obtained with mmap                                     */

enum rstate {
    R_SCRATCH, /* not known to be a heap section: scanned at each mark start */
    R_HEAP,    /* a heap section, not tracked (yet): scanned likewise */
    R_TRACKED, /* a heap section under the tracker */
};

struct region {
    uintptr_t start;
    size_t len;
    enum rstate state;
    bool fresh;           /* tracked since the last mark start */
    atomic_bool ready;    /* fields above are valid */
};

/* libgc never unmaps what it maps (8.2), so the table only grows: one
 * entry per heap expansion, one per 256 KiB or larger piece of internal
 * memory (block headers take ~2% of the heap).  65536 entries (2 MiB of
 * address space, touched only as used) cover heaps of hundreds of GiB;
 * beyond that we stop rather than risk an unseen heap section. */
#define MAX_REGIONS 65536
static struct region regions[MAX_REGIONS];
static atomic_uint nregions;      /* entries claimed */
static atomic_bool regions_lost;  /* table overflowed */
static unsigned identified_upto;  /* entries already classified */

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
static void find_gc_image(void)
{
    if (atomic_load(&gc_hi))
        return;
    void *sym = dlsym(RTLD_DEFAULT, "GC_malloc");
    if (sym)
        dl_iterate_phdr(find_gc_image_cb, sym);
}

static void record_region(void *p, size_t len)
{
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

static unsigned regions_ready(void)
{
    unsigned n = atomic_load(&nregions);
    return n > MAX_REGIONS ? MAX_REGIONS : n;
}

/* ------------------------------------------------------------------ */
/* reporting (world stopped: no allocation, no locks libgc may hold)    */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Heap size as the resize callback will compare it.  Collections may
 * recycle scratch memory into the heap without a resize event (when the
 * mark stack grows); taking the size again after each one keeps such
 * bytes out of the next expansion's delta.  Allocation lock held. */
static size_t last_heap_total;

static void resync_heap_total(void)
{
    last_heap_total = GC_get_heap_size() + GC_get_unmapped_bytes();
}

/* Report the heap pages among [p, p+npages*PAGE).  Pages without a block
 * header are free-block interiors or not heap at all; libgc treats those
 * as dirty anyway, so skipping them loses nothing. */
static unsigned long report_pages(uintptr_t p, size_t npages)
{
    unsigned long n = 0;
    for (size_t i = 0; i < npages; i++, p += PAGE) {
        if (GC_is_heap_ptr((void *)p)) {
            GC_end_stubborn_change((void *)p);
            n++;
        }
    }
    return n;
}

static void report_run(void *first, size_t npages, void *arg)
{
    *(unsigned long *)arg += report_pages((uintptr_t)first, npages);
}

/* Untracked regions may hold heap blocks: report them whole; freshly
 * tracked ones were clean in the tracker from a moment libgc cannot
 * know about: report them whole once. */
static void report_untracked(unsigned long *fresh, unsigned long *scanned)
{
    unsigned n = regions_ready();
    for (unsigned i = 0; i < n; i++) {
        struct region *r = &regions[i];
        if (!atomic_load_explicit(&r->ready, memory_order_acquire))
            continue;
        if (r->state != R_TRACKED)
            *scanned += report_pages(r->start, r->len / PAGE);
        else if (r->fresh) {
            *fresh += report_pages(r->start, r->len / PAGE);
            r->fresh = false;
        }
    }
}

static void lost_regions_abort(void)
{
    /* Heap memory we cannot see could hold unreported writes. */
    static const char msg[] = "gc-dune: region table overflow: cannot track the heap; "
                              "aborting rather than risk freeing live objects\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
        /* nothing better to do */
    }
    abort();
}

/* Is libgc reading the dirty bits we report?  Only in incremental mode
 * with manual VDB; an application may turn manual VDB off itself (bdwgc's
 * gctest does), and libgc then keeps its own write barrier. */
static bool feeding(void)
{
    return cfg.active && GC_is_incremental_mode() && GC_get_manual_vdb_allowed();
}

static void on_mark_start(void)
{
    if (!feeding())
        return;
    if (atomic_load(&regions_lost))
        lost_regions_abort();
    uint64_t t0 = now_ns();
    unsigned long fresh = 0, scanned = 0, collected = 0;
    report_untracked(&fresh, &scanned);
    dirty_collect_all(cfg.tracker, report_run, &collected);
    uint64_t dt = now_ns() - t0;
    stats.collections++;
    stats.last_pages = fresh + scanned + collected;
    stats.pages += stats.last_pages;
    stats.fresh += fresh;
    stats.scanned += scanned;
    stats.last_ns = dt;
    stats.ns += dt;
    if (dt > stats.max_ns)
        stats.max_ns = dt;
}

static void GC_CALLBACK event_cb(GC_EventType ev)
{
    if (ev == GC_EVENT_MARK_START)
        on_mark_start();
    else if (ev == GC_EVENT_RECLAIM_END && cfg.active)
        resync_heap_total();
    GC_on_collection_event_proc app = atomic_load(&app_event);
    if (app)
        app(ev);
}

/* ------------------------------------------------------------------ */
/* heap growth (allocation lock held, world running: malloc is fine)    */

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
static void track_sections(void)
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
        } else if (cfg.verbose_level >= 2) {
            fprintf(stderr, "gc-dune: cannot track %#lx +%zu KiB: %s\n", (unsigned long)r->start,
                    r->len / 1024, strerror(-err));
        }
    }
}

static void GC_CALLBACK resize_cb(GC_word new_size)
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

static void *track_locked(void *arg)
{
    (void)arg;
    track_sections();
    return NULL;
}

/* ------------------------------------------------------------------ */
/* setup                                                                */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static void parse_env(void)
{
    static const char *const names[] = {"auto", "pte", "kvm", "uffd", "mprotect", "off"};
    const char *v = getenv("GC_DUNE_BACKEND");
    cfg.choice = CH_AUTO;
    if (v && *v) {
        size_t i;
        for (i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strcmp(v, names[i]) == 0)
                break;
        if (i == sizeof names / sizeof names[0])
            say("gc-dune: GC_DUNE_BACKEND=%s unknown (auto pte kvm uffd mprotect off); "
                "using auto\n", v);
        else
            cfg.choice = (enum choice)i;
    }
    v = getenv("GC_DUNE_VERBOSE");
    cfg.verbose = v && *v && strcmp(v, "0") != 0;
    cfg.verbose_level = cfg.verbose ? atoi(v) : 0;
    v = getenv("GC_PRINT_STATS");
    cfg.print_stats = v != NULL;
}

/* Enter Dune for auto/pte/kvm.  Without a usable /dev/kvm, auto quietly
 * stays native (said only when asked to talk); a failure to enter despite
 * /dev/kvm, or with pte/kvm asked for explicitly, is always said, once. */
static void maybe_enter_dune(void)
{
    bool talk = cfg.verbose || cfg.print_stats;
#ifdef HAVE_DUNE
    if (cfg.choice != CH_AUTO && cfg.choice != CH_PTE && cfg.choice != CH_KVM)
        return;
    if (dune_active()) {
        cfg.in_dune = true;
        return;
    }
    if (cfg.choice == CH_AUTO && access("/dev/kvm", R_OK | W_OK) != 0) {
        if (talk)
            say("gc-dune: no usable /dev/kvm (%s); staying native\n", strerror(errno));
        return;
    }
    int r = dune_enter(NULL);
    cfg.in_dune = r == 0 || r == -EALREADY;
    if (!cfg.in_dune) {
        struct dune_status st;
        dune_status(&st);
        say("gc-dune: not entering Dune (%s); using a native dirty-page backend\n",
            st.reason[0] ? st.reason : strerror(-r));
    }
#else
    if (cfg.choice == CH_PTE || cfg.choice == CH_KVM || (cfg.choice == CH_AUTO && talk))
        say("gc-dune: built without Dune support; using a native dirty-page backend\n");
#endif
}

/* pte and kvm need Dune; asked for outside it, the best native backend
 * (dirty.c's auto order) serves instead. */
static enum dirty_backend wanted_backend(void)
{
    switch (cfg.choice) {
    case CH_PTE:
        return cfg.in_dune ? DIRTY_PTE : DIRTY_AUTO;
    case CH_KVM:
        return cfg.in_dune ? DIRTY_KVM : DIRTY_AUTO;
    case CH_UFFD:
        return DIRTY_UFFD;
    case CH_MPROTECT:
        return DIRTY_MPROTECT;
    default:
        return DIRTY_AUTO;
    }
}

/* GC_DUNE_HOLD=n and GC_DUNE_HOLD_ALL=0|1 override how long, and which,
 * written pages are held (dirty.h). */
static void set_hold(void)
{
    const char *v = getenv("GC_DUNE_HOLD");
    char *end;
    if (v && *v) {
        unsigned long n = strtoul(v, &end, 10);
        if (*end || v[0] == '-' || dirty_set_hold(cfg.tracker, n > UINT_MAX ? UINT_MAX : n) == -EINVAL)
            say("gc-dune: GC_DUNE_HOLD=%s is not a number of collections (0-%d); ignored\n", v,
                DIRTY_HOLD_MAX);
    }
    v = getenv("GC_DUNE_HOLD_ALL");
    if (v && *v) {
        if (strcmp(v, "0") && strcmp(v, "1"))
            say("gc-dune: GC_DUNE_HOLD_ALL=%s is not 0 or 1; ignored\n", v);
        else
            dirty_set_hold_all(cfg.tracker, v[0] == '1');
    }
    unsigned hold = dirty_hold_of(cfg.tracker);
    if (hold) {
        size_t len = strlen(cfg.why);
        snprintf(cfg.why + len, sizeof cfg.why - len, "; %s pages held for %u collections",
                 dirty_hold_all_of(cfg.tracker) ? "written" : "rewritten", hold);
    }
}

static int open_tracker(void)
{
    enum dirty_backend want = wanted_backend(), ref;
    const char *chk = getenv("GC_DUNE_CHECK");
    int r;
    if (chk && *chk) {
        if (dirty_backend_from_name(chk, &ref) < 0 || ref == DIRTY_AUTO) {
            say("gc-dune: GC_DUNE_CHECK=%s is not a backend\n", chk);
            return -EINVAL;
        }
        r = dirty_open_checked(want, ref, 1, &cfg.tracker);
    } else {
        r = dirty_open(want, &cfg.tracker);
    }
    snprintf(cfg.why, sizeof cfg.why, "%s", r == 0 ? dirty_why(cfg.tracker) : dirty_last_error());
    if (r == 0)
        set_hold();
    return r;
}

static void resolve_real(void)
{
    real.init = (void (*)(void))dlsym(RTLD_NEXT, "GC_init");
    real.enable_incremental = (void (*)(void))dlsym(RTLD_NEXT, "GC_enable_incremental");
    real.set_event = (void (*)(GC_on_collection_event_proc))dlsym(RTLD_NEXT,
                                                                   "GC_set_on_collection_event");
    real.get_event = (GC_on_collection_event_proc(*)(void))dlsym(RTLD_NEXT,
                                                                  "GC_get_on_collection_event");
    real.set_resize = (void (*)(GC_on_heap_resize_proc))dlsym(RTLD_NEXT, "GC_set_on_heap_resize");
    real.get_resize = (GC_on_heap_resize_proc(*)(void))dlsym(RTLD_NEXT, "GC_get_on_heap_resize");
}

static void print_totals(void)
{
    struct gc_dune_stats st;
    gc_dune_stats(&st);
    fprintf(stderr,
            "gc-dune: backend %s%s, %lu dirty reads, %lu pages reported (%lu fresh, %lu "
            "scanned), %.3f ms reading (max %.3f ms), %zu KiB tracked in %u regions\n",
            st.backend, st.in_dune ? " (in Dune)" : "", st.collections, st.pages,
            st.fresh_pages, st.scanned_pages, st.ns / 1e6, st.max_ns / 1e6,
            st.tracked_bytes / 1024, st.regions);
    struct dirty_check_stats ck;
    if (cfg.tracker && dirty_check_stats(cfg.tracker, &ck) == 0) {
        fprintf(stderr,
                "gc-dune: checking mode: %lu range reads compared (%lu pages), %lu missed, "
                "%lu extra\n",
                ck.cycles, ck.pages_checked, ck.missed, ck.extra);
    }
}

/* GC_DUNE_VERBOSE=2: one line per region libgc mapped. */
static void dump_regions(void)
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

static pid_t setup_pid;

static void at_exit(void)
{
    if (!cfg.verbose)
        return;
    if (getpid() != setup_pid)
        fprintf(stderr, "gc-dune: [forked child %ld]\n", (long)getpid());
    if (cfg.verbose_level >= 2)
        dump_regions();
    print_totals();
}

/* Install our callbacks, keeping whatever was installed before. */
static void hook_callbacks(void)
{
    if (real.get_event)
        atomic_store(&app_event, real.get_event());
    if (real.get_resize)
        atomic_store(&app_resize, real.get_resize());
    if (real.set_event)
        real.set_event(event_cb);
    if (real.set_resize)
        real.set_resize(resize_cb);
}

static void setup_once(void)
{
    parse_env();
    resolve_real();
    find_gc_image();
    if (cfg.choice == CH_OFF) {
        snprintf(cfg.why, sizeof cfg.why, "GC_DUNE_BACKEND=off");
        return;
    }
    if (!real.set_event || !real.set_resize || !real.init || !real.enable_incremental) {
        say("gc-dune: libgc's entry points not found (%s); libgc left as is\n", dlerror());
        return;
    }
    maybe_enter_dune();
    if (open_tracker() < 0) {
        say("gc-dune: no dirty-page tracker (%s); libgc left as is\n", cfg.why);
        return;
    }
    if (GC_is_init_called() && GC_is_incremental_mode() && !GC_get_manual_vdb_allowed()) {
        /* Too late: libgc already runs its own write barrier. */
        say("gc-dune: libgc was already in incremental mode; left as is\n");
        dirty_close(cfg.tracker);
        cfg.tracker = NULL;
        return;
    }
    GC_set_manual_vdb_allowed(1);
    cfg.active = true;
    hook_callbacks();
    if (cfg.verbose || cfg.print_stats)
        say("gc-dune: dirty pages from %s (%s)\n", dirty_backend_name(dirty_backend_of(cfg.tracker)),
            cfg.why);
    setup_pid = getpid();
    atexit(at_exit);
}

static pthread_once_t setup_done = PTHREAD_ONCE_INIT;

static void setup(void)
{
    pthread_once(&setup_done, setup_once);
}

static void __attribute__((constructor(102))) gc_dune_ctor(void)
{
    setup();
}

/* ------------------------------------------------------------------ */
/* interposed libgc entry points                                        */

API void GC_CALL GC_init(void)
{
    setup();
    if (real.init)
        real.init();
}

API void GC_CALL GC_enable_incremental(void)
{
    setup();
    if (real.enable_incremental)
        real.enable_incremental();
    /* Heap sections known before incremental mode were not tracked. */
    if (cfg.active && GC_is_init_called())
        GC_call_with_alloc_lock(track_locked, NULL);
}

API void GC_CALL GC_set_on_collection_event(GC_on_collection_event_proc fn)
{
    setup();
    if (cfg.active)
        atomic_store(&app_event, fn);
    else if (real.set_event)
        real.set_event(fn);
}

API GC_on_collection_event_proc GC_CALL GC_get_on_collection_event(void)
{
    setup();
    if (cfg.active)
        return atomic_load(&app_event);
    return real.get_event ? real.get_event() : NULL;
}

API void GC_CALL GC_set_on_heap_resize(GC_on_heap_resize_proc fn)
{
    setup();
    if (cfg.active)
        atomic_store(&app_resize, fn);
    else if (real.set_resize)
        real.set_resize(fn);
}

API GC_on_heap_resize_proc GC_CALL GC_get_on_heap_resize(void)
{
    setup();
    if (cfg.active)
        return atomic_load(&app_resize);
    return real.get_resize ? real.get_resize() : NULL;
}

/* ------------------------------------------------------------------ */
/* gc_dune.h                                                            */

API void gc_dune_stats(struct gc_dune_stats *st)
{
    setup();
    memset(st, 0, sizeof *st);
    st->active = cfg.active;
    st->in_dune = cfg.in_dune;
    st->backend = cfg.tracker ? dirty_backend_name(dirty_backend_of(cfg.tracker)) : "off";
    st->collections = stats.collections;
    st->pages = stats.pages;
    st->last_pages = stats.last_pages;
    st->fresh_pages = stats.fresh;
    st->scanned_pages = stats.scanned;
    st->ns = stats.ns;
    st->last_ns = stats.last_ns;
    st->max_ns = stats.max_ns;
    unsigned n = regions_ready();
    st->regions = n;
    for (unsigned i = 0; i < n; i++)
        if (atomic_load(&regions[i].ready) && regions[i].state == R_TRACKED)
            st->tracked_bytes += regions[i].len;
}

API const char *gc_dune_why(void)
{
    setup();
    return cfg.why;
}

API int gc_dune_check_stats(unsigned long *cycles, unsigned long *missed, unsigned long *extra)
{
    struct dirty_check_stats st;
    setup();
    if (!cfg.tracker || dirty_check_stats(cfg.tracker, &st) < 0)
        return -EINVAL;
    *cycles = st.cycles;
    *missed = st.missed;
    *extra = st.extra;
    return 0;
}

API void gc_dune_note_write(const void *addr, size_t len)
{
    dirty_note_write(addr, len);
}

API void gc_dune_print_stats(void)
{
    print_totals();
}

/*
 * Extra key=value fields for the benchmark workloads' RESULT line
 * (bench/workload.h declares this weak): which dirty source fed the
 * collector and what it cost, and inside Dune the exits behind it.
 */
size_t gc_dune_bench_fields(char *buf, size_t len);
API size_t gc_dune_bench_fields(char *buf, size_t len)
{
    struct gc_dune_stats st;
    int n;

    gc_dune_stats(&st);
    n = snprintf(buf, len, "dirty_src=%s dirty_reads=%lu dirty_pages=%lu dirty_pages_per_read=%.1f "
                 "dirty_read_ms=%.2f",
                 st.active ? st.backend : "off", st.collections, st.pages,
                 st.collections ? (double)st.pages / st.collections : 0.0, st.ns / 1e6);
#ifdef HAVE_DUNE
    if (st.in_dune && n >= 0 && (size_t)n < len) {
        struct dune_status ds;
        dune_status(&ds);
        n += snprintf(buf + n, len - (size_t)n, " dune_syscalls=%lu dune_exits=%lu dune_faults=%lu",
                      ds.syscalls, ds.exits, ds.faults);
    }
#endif
    return n < 0 ? 0 : (size_t)n;
}
