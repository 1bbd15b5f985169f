/* Forced include for bdwgc's tests/test.c (gctest), used by tests/gctest_dune.sh:
 * drop the test's own manual-VDB reports (GC_end_stubborn_change and
 * GC_ptr_store_and_dirty) so that only libgc-dune's tracker tells the
 * collector which pages were written. */
#include "gc.h"
#undef GC_END_STUBBORN_CHANGE
#undef GC_PTR_STORE_AND_DIRTY
#define GC_END_STUBBORN_CHANGE(p) ((void)(p))
#define GC_PTR_STORE_AND_DIRTY(p, q) ((void)(*(void **)(p) = (void *)(q)))
#define GC_end_stubborn_change(p) ((void)(p))
#define GC_ptr_store_and_dirty(p, q) ((void)(*(void **)(p) = (void *)(q)))
#define GC_debug_end_stubborn_change(p) ((void)(p))
#define GC_debug_ptr_store_and_dirty(p, q) ((void)(*(void **)(p) = (void *)(q)))
