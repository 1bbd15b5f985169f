/*
 * dirty.h - dirty-page tracking: one API, several backends.
 *
 * A tracker watches page-aligned ranges of the process's memory and answers
 * "which pages were written since I last asked?" (read-and-clear).  Backends:
 *   pte       guest page-table dirty bits (inside Dune only)
 *   kvm       the hypervisor's dirty log for the memslots under the range (inside Dune only)
 *   uffd      userfaultfd write-protect (async) + PAGEMAP_SCAN (native, Linux >= 6.7)
 *   softdirty /proc/self/clear_refs + pagemap soft-dirty bit (native, if the kernel has it)
 *   mprotect  write-protect + SIGSEGV (native reference, works everywhere)
 *   wp        guest page protection, faults resolved in the guest (inside Dune only)
 * Reporting too many pages is allowed; missing a written page never is.
 * "Written" means stored to, by the CPU or by the kernel on the program's
 * behalf (see dirty_note_write); discarding a page (MADV_DONTNEED) is not
 * a write for any backend.
 * fork(): a child may keep using an inherited tracker; it reports every
 * range whole once and tracks the child's own writes from then on, and
 * nothing it does touches the parent's tracking.
 * All functions are thread-safe.  Errors are negative errno values.
 */
#ifndef DIRTY_H
#define DIRTY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The public API: exported although libdirty is built hidden. */
#pragma GCC visibility push(default)

enum dirty_backend {
    DIRTY_AUTO = 0,
    DIRTY_PTE,
    DIRTY_KVM,
    DIRTY_UFFD,
    DIRTY_SOFTDIRTY,
    DIRTY_MPROTECT,
    DIRTY_WP,
    DIRTY_NBACKENDS
};

struct dirty_tracker;

/* Open a tracker.  DIRTY_AUTO measures the native backends that work here
 * (in a forked child, a few milliseconds) and takes the cheapest per
 * written page and per read-and-clear; dirty_why() gives the figures.
 * Inside Dune it takes the first usable of pte, kvm, uffd, softdirty,
 * mprotect.  The environment variable DIRTY_BACKEND=name (or
 * GC_DUNE_BACKEND) overrides `want`; DIRTY_CANDIDATES=a,b limits what auto
 * may pick.  A bad value in any variable is said on one line of stderr and
 * replaced by its default.  On failure *out is NULL and the reason is kept
 * for dirty_last_error(). */
int dirty_open(enum dirty_backend want, struct dirty_tracker **out);
void dirty_close(struct dirty_tracker *t);

/* Start / stop tracking [start, start+len).  Both must be page-aligned.
 * A newly tracked range starts clean; ranges of one tracker must not
 * overlap (-EEXIST); untrack takes exactly a tracked range (-ENOENT).
 * Every backend answers alike for a range it cannot track: -EINVAL for a
 * NULL start, a zero length or a misaligned one, -ENOMEM for a range not
 * wholly mapped.
 * Untrack before unmapping or remapping tracked memory and track again
 * after: only uffd notices a remap on its own (it then reports the whole
 * range dirty).  After fork(), see the top of this file. */
int dirty_track(struct dirty_tracker *t, void *start, size_t len);
int dirty_untrack(struct dirty_tracker *t, void *start, size_t len);

/* Read-and-clear for one tracked range [start, start+len): set bit i of
 * `bitmap` (1 bit per page, LSB first, zero-filled by the caller or not --
 * the function overwrites every word it covers) for each page written since
 * the previous collect.  Returns the number of dirty pages, or -errno. */
long dirty_collect(struct dirty_tracker *t, void *start, size_t len, uint64_t *bitmap);

/* Read-and-clear over every tracked range: calls fn once per run of
 * consecutive dirty pages.  Must not allocate in the hot path (it is called
 * from a GC callback with the world stopped).  Returns pages reported. */
typedef void (*dirty_fn)(void *first_page, size_t npages, void *arg);
long dirty_collect_all(struct dirty_tracker *t, dirty_fn fn, void *arg);

/* Report that something other than the tracked CPU path (e.g. the host
 * kernel writing a syscall's output buffer for a Dune guest) wrote to
 * [addr, addr+len).  Makes those pages dirty in every open tracker.
 * Lock-free; may be called before or after the write.  Natively, uffd and
 * softdirty see kernel writes by themselves, but mprotect does not: a
 * system call writing into a write-protected page fails with EFAULT, so
 * with mprotect call this *before* such a call (it also unprotects).
 * With mprotect, a collect of the same pages running at the same time may
 * leave them protected but dirty until the next collect: serialise the two
 * where that matters (gc_dune_note_write does, under libgc's lock). */
void dirty_note_write(const void *addr, size_t len);

/* Leaving pages open: with open != 0, pages [start, start+len) (page-
 * aligned, within one tracked range) are no longer armed: writes there
 * cost nothing, and every collect reports the pages dirty.  With open ==
 * 0 they are armed again: the next collect still reports them (writes
 * while open were not seen), later ones only what was written.  For memory
 * whose dirty bits nobody needs for a while (a collector's free and
 * pointer-free blocks), where a write fault would be wasted.  0, -ENOENT
 * outside one tracked range, -ENOTSUP where the backend cannot (mprotect,
 * softdirty; dirty_can_open tells), or the backend's error (then pages
 * being opened stay armed, pages being armed stay open). */
int dirty_set_open(struct dirty_tracker *t, void *start, size_t len, int open);
int dirty_can_open(const struct dirty_tracker *t);

enum dirty_backend dirty_backend_of(const struct dirty_tracker *t);
/* Checking mode's reference backend, or DIRTY_AUTO when not checking. */
enum dirty_backend dirty_reference_of(const struct dirty_tracker *t);
const char *dirty_backend_name(enum dirty_backend b);
int dirty_backend_from_name(const char *name, enum dirty_backend *out);

/* Human-readable: why the tracker got the backend it has, and why the
 * preferred ones were not used ("uffd: PAGEMAP_SCAN unsupported (EINVAL)"). */
const char *dirty_why(const struct dirty_tracker *t);
/* Reason the last dirty_open() failed, or "" */
const char *dirty_last_error(void);

/* Can backend b run here, now?  Returns 0 or -errno and a reason. */
int dirty_probe(enum dirty_backend b, char *why, size_t whylen);

/* Checking mode: run `want` (or DIRTY_AUTO) and a reference backend `ref`
 * side by side over the same ranges.  Every collect compares the two: a page
 * the reference saw written that the backend missed is reported on stderr
 * and, if abort_on_miss, aborts the process; pages only the backend reported
 * are counted as extra.  The two collects cannot be simultaneous, so a page
 * counts as missed only if the backend has not reported it within two
 * further collects of that range (a miss surfaces up to two collects late;
 * one still pending at untrack is not judged).  The environment variable
 * DIRTY_CHECK=refname (or 1 for the default reference) turns this on for
 * dirty_open() (aborting on a miss).  ref == DIRTY_AUTO means the default
 * reference: uffd, which cannot make the program fail, unless uffd is
 * unusable or is the backend checked (a page can be registered with one
 * userfaultfd only); then mprotect. */
int dirty_open_checked(enum dirty_backend want, enum dirty_backend ref, int abort_on_miss,
                       struct dirty_tracker **out);

/* Holding (pte and kvm, which can leave a page dirty while reading it):
 * a page written again after a collect re-armed it is left dirty and
 * writable for the next `collects` collects, and reported dirty at each;
 * then it is re-armed.  This trades rescans of pages that went quiet for
 * write faults on pages that keep being written (see dirty_hold.c).  0
 * turns it off.  With hold_all on, every written page is held from the
 * collect that first reports it, not only a rewritten one: fewer faults
 * still, more rescans, longer pauses after bursts of writes.  Trackers
 * from dirty_open() and dirty_open_checked() start with DIRTY_HOLD_DEFAULT
 * and hold_all off, or with the environment's DIRTY_HOLD=n and
 * DIRTY_HOLD_ALL=0|1 (a bad value is said on stderr; the default stays).
 * -ENOTSUP (for n > 0) with a backend that cannot hold; -EINVAL for n >
 * DIRTY_HOLD_MAX. */
#define DIRTY_HOLD_DEFAULT 32
#define DIRTY_HOLD_MAX 255
int dirty_set_hold(struct dirty_tracker *t, unsigned collects);
unsigned dirty_hold_of(const struct dirty_tracker *t);
int dirty_set_hold_all(struct dirty_tracker *t, int on);
int dirty_hold_all_of(const struct dirty_tracker *t);

struct dirty_check_stats {
    unsigned long cycles;        /* range collects compared */
    unsigned long pages_checked; /* pages compared */
    unsigned long missed;        /* reference saw it, backend did not */
    unsigned long extra;         /* backend reported it, reference did not */
};
/* -EINVAL unless t is in checking mode. */
int dirty_check_stats(const struct dirty_tracker *t, struct dirty_check_stats *st);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
