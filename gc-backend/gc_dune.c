/*
 * gc_dune.c - feed Boehm GC's virtual dirty bits (libgc >= 8.2, unpatched)
 * from a dirty-page tracker (dirty.h): configuration, setup, the
 * interposed GC_* entry points and the gc_dune.h API.
 *
 * By default libgc reads the tracker's bits through its own soft-dirty
 * VDB, from /proc files that gc_dune_soft.c emulates: libgc then keeps its
 * allocation fast path.  Where that is not possible (or GC_DUNE_FEED=manual)
 * it plugs in through libgc's manual VDB, using only its public API:
 *  - GC_set_manual_vdb_allowed(1) before incremental mode is switched on:
 *    the collector then installs no write-fault handler and treats as dirty
 *    exactly the pages reported with GC_end_stubborn_change() (GC_dirty).
 *  - At each GC_EVENT_MARK_START collection event we read-and-clear the
 *    tracker and report each dirty heap page (gc_dune_report.c).
 *  - Heap growth: an mmap() interposer and the heap-resize callback find
 *    the heap sections and put them under the tracker (gc_dune_heap.c).
 *  - A newly tracked region starts clean in the tracker, so all its heap
 *    pages are reported once at the next mark start; that also covers the
 *    dirty-bit reset libgc does inside GC_enable_incremental().
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
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gc_dune.h"
#include "dirty_calibrate.h"
#include "gc_dune_internal.h"
#ifdef HAVE_DUNE
#include "dune.h"
#endif

struct gc_dune_cfg cfg;
struct gc_dune_real real;
_Atomic(GC_on_collection_event_proc) app_event;
_Atomic(GC_on_heap_resize_proc) app_resize;

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

/* One parser for every knob (dirty_env.c); GC_PRINT_STATS is libgc's. */
static void parse_env(void)
{
    dirty_env_read(&cfg.env);
    cfg.verbose = cfg.env.verbose > 0;
    cfg.verbose_level = (int)cfg.env.verbose;
    cfg.print_stats = getenv("GC_PRINT_STATS") != NULL;
}

/* Enter Dune, saying why not when it fails: 0 or -errno. */
static int enter_dune(void)
{
#ifdef HAVE_DUNE
    int r = dune_enter(NULL);
    cfg.in_dune = r == 0 || r == -EALREADY;
    if (!cfg.in_dune) {
        struct dune_status st;
        dune_status(&st);
        say("gc-dune: not entering Dune (%s); using a native dirty-page backend\n",
            st.reason[0] ? st.reason : strerror(-r));
    }
    return cfg.in_dune ? 0 : r;
#else
    return -ENOSYS;
#endif
}

/*
 * Stock libgc's own write barrier is auto's last candidate.  It pays for
 * a written page with an mprotect call (unprotecting a block it hands out
 * or sweeps) or a SIGSEGV; libgc-dune pays with a write fault of the
 * source, and with its own system calls for the pages it leaves open.
 * Counted in make bench QUICK=1 (page faults above stock full's, plus
 * system calls), stock's events cost at least STOCK_RATIO times ours in
 * units of one of its mprotect calls on every workload and client
 * (lowest: guile-compile and ECL, where the sweeper writes into old
 * blocks: ours are mostly faults there).  So a source whose cost per
 * written page is above STOCK_RATIO mprotect calls could lose to stock,
 * and auto keeps libgc as is instead.  docs/performance.md has the counts.
 * Not when GC_DUNE_CANDIDATES lists what auto may pick.
 */
#define STOCK_RATIO 1.25

/* The cost of one of libgc's mprotect calls, in us: GC_DUNE_STOCK_COST
 * (for tests, or a host you know), else measured; < 0 if neither. */
static double stock_call_us(void)
{
    const char *v = getenv("GC_DUNE_STOCK_COST");
    if (v && *v) {
        char *end;
        double us = strtod(v, &end);
        if (!*end && us >= 0)
            return us;
        say("gc-dune: GC_DUNE_STOCK_COST=%s: not a number of microseconds; measuring\n", v);
    }
    return dirty_mprotect_call_us();
}

/* Does stock libgc's own barrier beat `best` (by cost per written page)?
 * Notes the figures in cfg.auto_how. */
static bool stock_wins(const struct dirty_cost *best, enum dirty_backend b)
{
    double us = stock_call_us();
    if (us < 0)
        return false;
    double limit = STOCK_RATIO * us, score = dirty_cost_score(best);
    size_t len = strlen(cfg.auto_how);
    snprintf(cfg.auto_how + len, sizeof cfg.auto_how - len,
             "; stock libgc: %.2f us per mprotect call, so a source must cost under %.2f: %s %.2f",
             us, limit, dirty_backend_name(b), score);
    return score > limit;
}

/* auto outside Dune: rank every candidate by measured cost, Dune's too
 * when /dev/kvm is usable (dirty_calibrate.c), enter Dune if a Dune source
 * wins, and note the figures in cfg.auto_how.  Returns what to open. */
static enum dirty_backend choose_auto(void)
{
    struct dirty_cost costs[DIRTY_NBACKENDS];
    enum dirty_backend order[DIRTY_NBACKENDS];
    bool cached = false, dune = false;
    unsigned mask = cfg.env.candidates;
#ifdef HAVE_DUNE
    const char *off = getenv("DUNE_DISABLE");
    dune = (mask & DIRTY_DUNE_MASK) && !(off && *off) &&
           access("/dev/kvm", R_OK | W_OK) == 0;
#endif
    if (!dune)
        mask &= ~DIRTY_DUNE_MASK;
    if (dirty_calibrate(mask, dune, costs, &cached) < 0)
        return DIRTY_AUTO; /* dirty_open's own choice */
    size_t n = dirty_rank(mask, costs, order);
    dirty_cost_format(costs, cached, cfg.auto_how, sizeof cfg.auto_how);
    /* A list of candidates (GC_DUNE_CANDIDATES) names dirty sources only:
     * whoever gives one wants one of them. */
    bool listed = getenv("GC_DUNE_CANDIDATES") || getenv("DIRTY_CANDIDATES");
    if (n && !listed && stock_wins(&costs[order[0]], order[0])) {
        cfg.stock = true;
        return DIRTY_AUTO;
    }
    for (size_t i = 0; i < n; i++) {
        if (!dirty_is_dune(order[i]))
            return order[i];
        if (cfg.in_dune || enter_dune() == 0)
            return order[i];
    }
    return DIRTY_AUTO;
}

/* What to open: pte and kvm need Dune (entered here when asked for);
 * auto is decided by measurement, or inside Dune by dirty.c's Dune order. */
static enum dirty_backend choose_backend(void)
{
    enum dirty_backend b = cfg.env.backend;
#ifdef HAVE_DUNE
    if (dune_active()) {
        cfg.in_dune = true; /* dune-run: the program chose Dune, keep it */
        return b;
    }
    if (dirty_is_dune(b))
        return enter_dune() == 0 ? b : DIRTY_AUTO;
#else
    if (dirty_is_dune(b)) {
        say("gc-dune: built without Dune support; using a native dirty-page backend\n");
        return DIRTY_AUTO;
    }
#endif
    return b == DIRTY_AUTO ? choose_auto() : b;
}

static int open_tracker(void)
{
    enum dirty_backend want = choose_backend();
    if (cfg.stock) {
        snprintf(cfg.why, sizeof cfg.why, "auto by cost (%s)", cfg.auto_how);
        return -ENOTSUP;
    }
    const char *origin = cfg.env.backend_var[0] ? cfg.env.backend_var : "default";
    char by[sizeof cfg.auto_how + 32] = "";
    if (cfg.auto_how[0] && want != DIRTY_AUTO) {
        snprintf(by, sizeof by, "auto by cost (%s)", cfg.auto_how);
        origin = by;
    }
    int r = dirty_open_env(want, origin, &cfg.env, &cfg.tracker);
    snprintf(cfg.why, sizeof cfg.why, "%s", r == 0 ? dirty_why(cfg.tracker) : dirty_last_error());
    unsigned hold = r == 0 ? dirty_hold_of(cfg.tracker) : 0;
    if (hold) {
        size_t len = strlen(cfg.why);
        snprintf(cfg.why + len, sizeof cfg.why - len, "; %s pages held for %u collections",
                 dirty_hold_all_of(cfg.tracker) ? "written" : "rewritten", hold);
    }
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

void print_totals(void)
{
    struct gc_dune_stats st;
    gc_dune_stats(&st);
    fprintf(stderr,
            "gc-dune: backend %s%s, %lu dirty reads, %lu pages reported (%lu fresh, %lu "
            "scanned), %.3f ms reading (max %.3f ms), %zu KiB tracked in %u regions\n",
            st.backend, st.in_dune ? " (in Dune)" : "", st.collections, st.pages,
            st.fresh_pages, st.scanned_pages, st.ns / 1e6, st.max_ns / 1e6,
            st.tracked_bytes / 1024, st.regions);
    if (feeding_soft()) {
        struct soft_feed_stats ss;
        soft_feed_stats(&ss);
        fprintf(stderr, "gc-dune: soft-dirty feed: %lu passes, %lu clears, %lu pagemap entries "
                "read (%lu in tracked regions, %lu of those written)\n", ss.passes, ss.clears,
                ss.answered, ss.answered_tracked, ss.answered_dirty);
    }
    if (open_stats.passes) {
        fprintf(stderr, "gc-dune: open pages: %lu passes over %lu pages (%.3f ms), %lu runs of "
                "%lu pages opened, %lu pages armed again, %lu failures\n", open_stats.passes,
                open_stats.pages_classified, open_stats.ns / 1e6, open_stats.runs,
                open_stats.opened, open_stats.rearmed, open_stats.failed);
    }
    struct dirty_check_stats ck;
    if (cfg.tracker && dirty_check_stats(cfg.tracker, &ck) == 0) {
        fprintf(stderr,
                "gc-dune: checking mode: %lu range reads compared (%lu pages), %lu missed, "
                "%lu extra\n",
                ck.cycles, ck.pages_checked, ck.missed, ck.extra);
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

/* How libgc reads our bits: through its soft-dirty VDB where it has one
 * (the default: its allocation fast path stays on), else, or with
 * GC_DUNE_FEED=manual, through its manual VDB. */
static void choose_feed(void)
{
    const char *why = "GC_DUNE_FEED=manual";
    const char *v = getenv("GC_DUNE_FEED");
    if (v && *v && strcmp(v, "soft") && strcmp(v, "manual"))
        say("gc-dune: GC_DUNE_FEED=%s: not soft or manual; using soft\n", v);
    if (!(v && strcmp(v, "manual") == 0))
        cfg.soft = soft_feed_arm(cfg.tracker, &why) == 0;
    size_t len = strlen(cfg.why);
    snprintf(cfg.why + len, sizeof cfg.why - len, "; %s VDB: %s",
             cfg.soft ? "soft-dirty" : "manual", why);
    if (!cfg.soft)
        GC_set_manual_vdb_allowed(1);
    else if (cfg.keep_ptrfree)
        soft_feed_on_run(ptrfree_reopen); /* what report_run does for manual VDB */
}

static void setup_once(void)
{
    soft_feed_resolve();
    parse_env();
    resolve_real();
    find_gc_image();
    if (cfg.env.off) {
        snprintf(cfg.why, sizeof cfg.why, "%s=off", cfg.env.backend_var);
        return;
    }
    if (!real.set_event || !real.set_resize || !real.init || !real.enable_incremental) {
        say("gc-dune: libgc's entry points not found (%s); libgc left as is\n", dlerror());
        return;
    }
    if (open_tracker() < 0) {
        if (!cfg.stock)
            say("gc-dune: no dirty-page tracker (%s); libgc left as is\n", cfg.why);
        else if (cfg.verbose || cfg.print_stats)
            say("gc-dune: dirty pages from stock libgc (%s): libgc left as is\n", cfg.why);
        return;
    }
    if (GC_is_init_called() && GC_is_incremental_mode() && !GC_get_manual_vdb_allowed()) {
        /* Too late: libgc already runs its own write barrier. */
        say("gc-dune: libgc was already in incremental mode; left as is\n");
        dirty_close(cfg.tracker);
        cfg.tracker = NULL;
        return;
    }
    cfg.keep_ptrfree = dirty_backend_of(cfg.tracker) == DIRTY_MPROTECT ||
                       dirty_reference_of(cfg.tracker) == DIRTY_MPROTECT;
    choose_feed();
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
    if (feeding_soft()) {
        struct soft_feed_stats ss;
        soft_feed_stats(&ss);
        st->collections = ss.passes;
        st->pages = ss.pages;
        st->last_pages = ss.last_pages;
        st->ns = ss.ns;
        st->last_ns = ss.last_ns;
        st->max_ns = ss.max_ns;
    }
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

struct note_span {
    const void *addr;
    size_t len;
};

static void *GC_CALLBACK note_locked(void *arg)
{
    const struct note_span *n = arg;
    dirty_note_write(n->addr, n->len);
    return NULL;
}

/* Under libgc's allocation lock, which every collection holds while it
 * reads and clears the dirty bits: mprotect's clear-then-protect could
 * otherwise run between the note's unprotect and its mark, and leave the
 * pages protected yet marked dirty, which its fast path takes for
 * writable (a read(2) there then failed with EFAULT until the next
 * collection: 2 in 30 stress runs on a loaded machine). */
API void gc_dune_note_write(const void *addr, size_t len)
{
    struct note_span n = { addr, len };

    if (GC_is_init_called())
        GC_call_with_alloc_lock(note_locked, &n);
    else
        dirty_note_write(addr, len);
}

API void gc_dune_print_stats(void)
{
    print_totals();
}
