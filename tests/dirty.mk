# Dirty-page tracking tests (included from tests/local.mk)
if HAVE_CHECK
check_PROGRAMS += tests/check_dirty
TESTS += tests/check_dirty
tests_check_dirty_SOURCES = tests/check_dirty.c
tests_check_dirty_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_dirty_LDADD = gc-backend/libdirty.la $(CHECK_LIBS)
if HAVE_DUNE
# With the Dune backends built into libdirty.la (gc-backend/local.mk), link
# the Dune core too: the pte/kvm cases then enter Dune and run.
# (libdirty.la carries the Dune core when HAVE_DUNE)
endif
endif
