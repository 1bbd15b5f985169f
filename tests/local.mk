# tests build fragment (included from the top-level Makefile.am)
include tests/dirty.mk

if HAVE_DUNE
if HAVE_CHECK
check_PROGRAMS += tests/check_dune
TESTS += tests/check_dune
tests_check_dune_SOURCES = tests/check_dune.c tests/dune_test.h
tests_check_dune_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_dune_LDADD = dune/libdune-core.la $(CHECK_LIBS)
endif
endif

if HAVE_DUNE
if HAVE_CHECK
check_PROGRAMS += tests/check_dune_run
TESTS += tests/check_dune_run
tests_check_dune_run_SOURCES = tests/check_dune_run.c
tests_check_dune_run_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -DDUNE_RUN='"$(abs_top_builddir)/dune/dune-run"'
tests_check_dune_run_LDADD = $(CHECK_LIBS)
EXTRA_tests_check_dune_run_DEPENDENCIES = dune/dune-run dune/libdune-preload.la
endif
endif

if HAVE_DUNE
if HAVE_CHECK
check_PROGRAMS += tests/check_dune_threads
TESTS += tests/check_dune_threads
tests_check_dune_threads_SOURCES = tests/check_dune_threads.c tests/dune_test.h
tests_check_dune_threads_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_dune_threads_LDADD = dune/libdune-core.la $(CHECK_LIBS)
check_PROGRAMS += tests/check_dune_tlb
TESTS += tests/check_dune_tlb
tests_check_dune_tlb_SOURCES = tests/check_dune_tlb.c tests/dune_test.h
tests_check_dune_tlb_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_dune_tlb_LDADD = dune/libdune-core.la $(CHECK_LIBS)
endif
endif

if HAVE_DUNE
if HAVE_CHECK
check_PROGRAMS += tests/check_dune_signals
TESTS += tests/check_dune_signals
tests_check_dune_signals_SOURCES = tests/check_dune_signals.c tests/dune_test.h
tests_check_dune_signals_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_dune_signals_LDADD = dune/libdune-core.la $(CHECK_LIBS) -lpthread
endif
endif

# gdb on a program inside Dune, and gdb inside Dune (dune/trace.c)
if HAVE_DUNE
check_PROGRAMS += tests/gdb_target
tests_gdb_target_SOURCES = tests/gdb_target.c
tests_gdb_target_CFLAGS = $(AM_CFLAGS) -g
TESTS += tests/check_dune_gdb.sh
EXTRA_DIST += tests/check_dune_gdb.sh
EXTRA_tests_gdb_target_DEPENDENCIES = dune/dune-run dune/libdune-preload.la
endif
