# Dirty-page tracking tests (included from tests/local.mk)
if HAVE_CHECK
check_PROGRAMS += tests/check_dirty
TESTS += tests/check_dirty
tests_check_dirty_SOURCES = tests/check_dirty.c tests/dune_test.h
tests_check_dirty_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_dirty_LDADD = $(DIRTY_LIBS) $(CHECK_LIBS)
if HAVE_DUNE
# $(DIRTY_LIBS) carries the Dune core, so the pte/kvm cases enter Dune and
# run.  The wrap lets t_collect_all_fails make the end of pte's TLB batch
# fail, which the real one does only when KVM misbehaves.
tests_check_dirty_LDFLAGS = -Wl,--wrap=dune_tlb_batch_end
endif
endif
