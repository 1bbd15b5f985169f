/*
 * dirty_dune.c - what the two Dune backends (pte, kvm) share: a tracked
 * range and the VM whose bits describe it.
 *
 * Both read dirty bits that belong to one VM: its guest page tables (pte)
 * or its KVM dirty log (kvm).  When the last thread leaves Dune the VM is
 * released, and the next dune_enter() builds one whose bits start clean;
 * writes made in between, natively, were seen by no VM.  So each range
 * remembers the VM it last read from, and after a change owes every one of
 * its pages once.  Collecting only part of a range pays only that part of
 * the debt, hence a bitmap rather than a flag.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "dirty_backend.h"
#include "dune.h"

struct dune_range *dune_range_new(uintptr_t start, size_t npages)
{
    struct dune_range *r = calloc(1, sizeof *r);

    if (!r)
        return NULL;
    r->owed = calloc(DIRTY_WORDS(npages), sizeof *r->owed);
    if (!r->owed) {
        free(r);
        return NULL;
    }
    r->start = start;
    r->npages = npages;
    r->gen = dune_vm_generation();
    r->log_gen = 0; /* no VM logs it yet */
    return r;
}

void dune_range_free(struct dune_range *r)
{
    if (r)
        free(r->owed);
    free(r);
}

/* Has the VM changed since the last call?  If so every page is owed. */
bool dune_range_vm_changed(struct dune_range *r)
{
    unsigned long gen = dune_vm_generation();

    if (gen == r->gen)
        return false;
    r->gen = gen;
    dirty_bits_set_range(r->owed, 0, r->npages);
    r->nowed = r->npages;
    return true;
}

/*
 * Finish a collect of pages [first, first+n) that read `got` dirty pages
 * into bitmap: add the owed ones (and pay them), and if the VM changed
 * while we read, whatever we read is worthless: fail, so that dirty.c
 * reports every page.  So it does when threads run natively: they write
 * without guest page tables or the dirty log, and we cannot know.
 */
long dune_range_finish(struct dune_range *r, size_t first, size_t n, uint64_t *bitmap, long got)
{
    bool any = false;

    if (dune_range_vm_changed(r) || got < 0)
        return got < 0 ? got : -ESTALE; /* the debt stays for the next collect */
    for (size_t i = 0; i < n && r->nowed; i++) {
        size_t p = first + i;
        if (!dirty_bit_get(r->owed, p))
            continue;
        r->owed[p / 64] &= ~(1ULL << (p % 64));
        r->nowed--;
        dirty_bit_set(bitmap, i);
        any = true;
    }
    if (dune_native_threads())
        return -EXDEV;
    return any ? dirty_bits_count(bitmap, n) : got;
}

/* ---- the parts of dirty_ops both Dune backends share ---- */

/* Open after a successful probe: host-kernel writes into guest memory are
 * invisible to both bits, so the syscall layer reports them to dirty.c. */
int dune_backend_open(int (*probe)(char *, size_t), void **state, char *why, size_t whylen)
{
    int r = probe(why, whylen);

    if (r < 0)
        return r;
    dune_set_host_write_hook(dirty_note_write);
    *state = NULL;
    return 0;
}

void dune_backend_close(void *state)
{
    (void)state;
}

void dune_backend_untrack(void *state, void *range)
{
    (void)state;
    dune_range_free(range);
}

/* A range starts clean: read and drop what its bits hold already. */
void dune_range_start_clean(struct dune_range *r,
                            long (*read_clear)(void *, size_t, uint64_t *))
{
    uint64_t *scratch = calloc(DIRTY_WORDS(r->npages), sizeof *scratch);

    if (scratch)
        read_clear((void *)r->start, r->npages * DIRTY_PAGE_SIZE, scratch);
    free(scratch);
}

/* pte and wp: a collect of every range flushes once, at the end: one
 * local flush and one shootdown per collection instead of per range with
 * dirty pages.  If the caller already holds a batch open, its end does
 * the flushing. */
static __thread bool batch_mine;

void dune_backend_batch_begin(void *state)
{
    (void)state;
    batch_mine = dune_tlb_batch_begin() == 0;
}

int dune_backend_batch_end(void *state)
{
    (void)state;
    if (!batch_mine)
        return 0;
    batch_mine = false;
    return dune_tlb_batch_end();
}
