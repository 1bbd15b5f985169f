/*
 * gc_dune_ptrfree.c - keep pointer-free heap memory writable when the
 * mprotect backend is in use (as the dirty source or as checking mode's
 * reference).
 *
 * The mprotect backend write-protects clean pages, and the kernel does not
 * fault on them: a system call writing there (read(2) into a GC buffer)
 * fails with EFAULT.  Stock libgc's mprotect mode never protects
 * pointer-free ("atomic") blocks, which is where such buffers usually
 * live (Guile's port buffers, ECL's strings), and unprotects a block when
 * it is allocated.  libgc does not tell us about its blocks, so we do the
 * same from outside, through its public API:
 *  - after each read-and-clear, a dirty heap page whose block is
 *    pointer-free is made writable again at once (dirty_note_write, which
 *    also reports it again next time: a page that stays writable stays
 *    dirty, so nothing is missed if the block is later reused for another
 *    kind);
 *  - a region just put under the tracker has its pointer-free pages made
 *    writable likewise;
 *  - a large object from a pointer-free allocator is made writable when
 *    allocated: large blocks are not written by libgc before they are
 *    handed out (small objects are: building a free list writes each one,
 *    so their pages are already writable).  GC_malloc_kind is left alone:
 *    libgc's GC_malloc calls it through the PLT, and every allocation would
 *    pay for the detour; GC_malloc_atomic and GC_generic_malloc cover the
 *    pointer-free entry points programs use.
 * libgc never scans pointer-free blocks, so reporting their pages costs it
 * nothing.  Other heap memory behaves as with stock libgc's mprotect mode:
 * a system call writing into it needs gc_dune_note_write() first.
 */
#define _GNU_SOURCE
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <dlfcn.h>

#include <gc/gc_inline.h> /* GC_I_PTRFREE */
#include <gc/gc_mark.h>

#include "gc_dune_internal.h"

/* Object kinds known to be pointer-free: PTRFREE, and any kind that an
 * atomic allocator returned or that GC_new_kind created without a
 * descriptor. */
static atomic_uint_fast64_t ptrfree_kinds = 1u << GC_I_PTRFREE;

static void learn_kind(int k)
{
    if (k >= 0 && k < 64)
        atomic_fetch_or_explicit(&ptrfree_kinds, (uint64_t)1 << k, memory_order_relaxed);
}

static bool kind_ptrfree(int k)
{
    return k >= 0 && k < 64 &&
           (atomic_load_explicit(&ptrfree_kinds, memory_order_relaxed) >> k & 1);
}

/* Is the heap page at p part of a pointer-free block?  A page starts
 * either a small-object block (its first object starts there) or a page of
 * a large object: GC_base finds the object's start in both cases, and
 * returns NULL for free blocks and non-heap memory. */
static bool page_ptrfree(uintptr_t p)
{
    void *base = GC_base((void *)p);
    return base && kind_ptrfree(GC_get_kind_and_size(base, NULL));
}

bool page_to_refill(uintptr_t p, unsigned probes)
{
    void *base = GC_base((void *)p);
    size_t sz = 0;
    if (!base)
        return true;
    if (kind_ptrfree(GC_get_kind_and_size(base, &sz)))
        return true;
    if ((uintptr_t)base != p || sz == 0 || sz > PAGE / 2)
        return false; /* a large object, or not a block's first page */
    for (unsigned i = 0; i < probes && (i + 1) * sz <= PAGE; i++)
        if (!GC_is_marked((char *)p + i * sz))
            return true;
    return false;
}

void ptrfree_reopen(uintptr_t p, size_t npages)
{
    uintptr_t run = 0;
    for (size_t i = 0; i <= npages; i++, p += PAGE) {
        bool keep = i < npages && page_ptrfree(p);
        if (keep && !run)
            run = p;
        else if (!keep && run) {
            dirty_note_write((void *)run, p - run);
            run = 0;
        }
    }
}

/* A pointer-free object the program is about to use: writable now. */
static void *opened(void *obj, size_t lb)
{
    if (obj && cfg.keep_ptrfree && lb >= PAGE / 4)
        dirty_note_write(obj, lb);
    return obj;
}

/* libgc's definition behind ours, looked up on first use. */
#define NEXT(name)                                                                            \
    static __typeof__(&name) real_##name;                                                     \
    if (!real_##name)                                                                         \
    real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

API void *GC_CALL GC_malloc_atomic(size_t lb)
{
    NEXT(GC_malloc_atomic);
    return opened(real_GC_malloc_atomic(lb), lb);
}

API void *GC_CALL GC_malloc_atomic_ignore_off_page(size_t lb)
{
    NEXT(GC_malloc_atomic_ignore_off_page);
    return opened(real_GC_malloc_atomic_ignore_off_page(lb), lb);
}

API void *GC_CALL GC_malloc_atomic_uncollectable(size_t lb)
{
    NEXT(GC_malloc_atomic_uncollectable);
    void *p = real_GC_malloc_atomic_uncollectable(lb);
    if (p)
        learn_kind(GC_get_kind_and_size(p, NULL));
    return opened(p, lb);
}

API void *GC_CALL GC_generic_malloc(size_t lb, int k)
{
    NEXT(GC_generic_malloc);
    void *p = real_GC_generic_malloc(lb, k);
    return kind_ptrfree(k) ? opened(p, lb) : p;
}

API void *GC_CALL GC_generic_malloc_ignore_off_page(size_t lb, int k)
{
    NEXT(GC_generic_malloc_ignore_off_page);
    void *p = real_GC_generic_malloc_ignore_off_page(lb, k);
    return kind_ptrfree(k) ? opened(p, lb) : p;
}

API void *GC_CALL GC_realloc(void *old, size_t lb)
{
    NEXT(GC_realloc);
    void *p = real_GC_realloc(old, lb);
    if (p && cfg.keep_ptrfree && lb >= PAGE / 4 && kind_ptrfree(GC_get_kind_and_size(p, NULL)))
        opened(p, lb);
    return p;
}

API unsigned GC_CALL GC_new_kind(void **fl, GC_word descr, int adjust, int clear)
{
    NEXT(GC_new_kind);
    unsigned k = real_GC_new_kind(fl, descr, adjust, clear);
    if (descr == 0 && !adjust) /* libgc's test for a pointer-free block */
        learn_kind((int)k);
    return k;
}
