/*
 * table.c - memory for the core's large tables (memslots, free
 * guest-physical ranges, freed page tables).
 *
 * They live in anonymous mappings, not in the library's data or bss: a
 * garbage collector in the process (Boehm's libgc) scans the writable data
 * of every loaded library as roots at every collection, and sizes the
 * interval between collections by the size of its roots.  With 4.3 MB of
 * our tables there, Guile collected 50 times instead of 119 on a heap a
 * third larger, and each collection scanned them.  A mapping costs only
 * the pages a table touches; it is never given back (the tables outlive
 * a VM) and a forked child inherits it like the rest of memory.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/syscall.h>

#include "dune_internal.h"

void *dune_table_alloc(size_t bytes)
{
    long p = dune_sys6(SYS_mmap, 0, (long)bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    return p < 0 && p > -4096 ? NULL : (void *)p;
}
