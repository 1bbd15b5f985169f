/*
 * pgtable.c - 4-level LoongArch page tables with 16 KiB pages (the page
 * size LoongArch Linux uses; LA64_PAGE_SHIFT), in 4 KiB tables.
 *
 * Layout matches what lddir/ldpte expect with LA64_PWCL_VALUE and
 * LA64_PWCH_VALUE: PGD (VA bits 47:41) -> PUD (40:32) -> PMD (31:23) ->
 * PTE table (22:14) -> 16 KiB page; 4 KiB tables of 512 eight-byte
 * entries holding physical addresses.
 *
 * lddir does not check whether a directory entry is present: it just
 * loads from (entry + index * 8).  So an empty directory slot must point
 * at a real table, never 0.  We keep one shared all-empty table per level
 * (invalid_pa[]): empty PGD slots point at the empty PUD, whose slots point
 * at the empty PMD, whose slots point at the empty PTE table (all zeros).
 * A walk of an unmapped address then ends in PTE 0 (V=0), which makes the
 * CPU raise page-invalid instead of reading random memory.
 *
 * Portable C: also compiled for the host (tests, and a host that builds
 * guest tables in its own memory, where virt_offset is 0).
 */
#include "la64_guest.h"

static uint64_t *table_va(const struct la64_pgtable *pt, uint64_t pa)
{
    return (uint64_t *)(uintptr_t)(pa + pt->virt_offset);
}

static unsigned table_index(uint64_t va, int level)
{
    return (unsigned)(va >> LA64_PT_SHIFT(level)) & (LA64_PT_ENTRIES - 1);
}

/* Allocate a table and point all its slots at `fill` (an empty table of
 * the level below, or 0 for a PTE table).  Returns its physical address. */
static uint64_t new_table(struct la64_pgtable *pt, uint64_t fill)
{
    uint64_t *t = pt->alloc_page(pt->alloc_ctx);
    if (!t || ((uintptr_t)t & (LA64_TABLE_SIZE - 1)))
        return 0;
    for (int i = 0; i < LA64_PT_ENTRIES; i++)
        t[i] = fill;
    pt->pages_used++;
    return (uint64_t)(uintptr_t)t - pt->virt_offset;
}

int la64_pt_init(struct la64_pgtable *pt, uint64_t virt_offset,
                 la64_alloc_page_fn alloc, void *ctx)
{
    pt->virt_offset = virt_offset;
    pt->alloc_page = alloc;
    pt->alloc_ctx = ctx;
    pt->pages_used = 0;
    /* Build the empty chain bottom-up: PTE table, PMD, PUD. */
    uint64_t below = 0;
    for (int level = 0; level < LA64_PT_LEVELS - 1; level++) {
        pt->invalid_pa[level] = new_table(pt, below);
        if (!pt->invalid_pa[level])
            return -1;
        below = pt->invalid_pa[level];
    }
    pt->invalid_pa[LA64_PT_LEVELS - 1] = 0;   /* the root is never shared */
    pt->root_pa = new_table(pt, below);
    return pt->root_pa ? 0 : -1;
}

/* Walk to the PTE table for va.  With `create`, replace empty-table links
 * by fresh tables on the way; without, stop (NULL) at the first one. */
static uint64_t *pte_table(struct la64_pgtable *pt, uint64_t va, int create)
{
    uint64_t *dir = table_va(pt, pt->root_pa);
    for (int level = LA64_PT_LEVELS - 1; level >= 1; level--) {
        uint64_t *slot = &dir[table_index(va, level)];
        uint64_t empty = pt->invalid_pa[level - 1];
        if (*slot == empty) {
            if (!create)
                return NULL;
            uint64_t fill = level >= 2 ? pt->invalid_pa[level - 2] : 0;
            uint64_t t = new_table(pt, fill);
            if (!t)
                return NULL;
            *slot = t;
        }
        dir = table_va(pt, *slot);
    }
    return dir;
}

uint64_t la64_pt_make_pte(uint64_t pa, unsigned flags)
{
    uint64_t pte = (pa & LA64_PTE_PPN_MASK) | LA64_PTE_V | LA64_PTE_P |
                   LA64_PTE_PLV3 | LA64_PTE_MAT_CC;
    if (flags & LA64_MAP_WRITE)
        pte |= LA64_PTE_W;
    /* D=1 only when asked and writable: D is the hardware write permission. */
    if ((flags & LA64_MAP_DIRTY) && (flags & LA64_MAP_WRITE))
        pte |= LA64_PTE_D;
    if (!(flags & LA64_MAP_EXEC))
        pte |= LA64_PTE_NX;
    return pte;
}

int la64_pt_map(struct la64_pgtable *pt, uint64_t va, uint64_t pa, unsigned flags)
{
    if ((va | pa) & (LA64_PAGE_SIZE - 1))
        return -1;
    uint64_t *table = pte_table(pt, va, 1);
    if (!table)
        return -1;
    table[table_index(va, 0)] = flags ? la64_pt_make_pte(pa, flags) : 0;
    return 0;
}

uint64_t *la64_pt_lookup(const struct la64_pgtable *pt, uint64_t va)
{
    uint64_t *table = pte_table((struct la64_pgtable *)pt, va, 0);
    return table ? &table[table_index(va, 0)] : NULL;
}

uint64_t la64_pt_walk(const struct la64_pgtable *pt, uint64_t va)
{
    /* Follow the links blindly, as lddir does: the empty chain makes
     * this end in a zero PTE for unmapped addresses. */
    uint64_t base = pt->root_pa;
    for (int level = LA64_PT_LEVELS - 1; level >= 1; level--)
        base = table_va(pt, base)[table_index(va, level)] & LA64_PTE_PPN_MASK;
    return table_va(pt, base)[table_index(va, 0)];
}
