# tests build fragment (included from the top-level Makefile.am)
include tests/dirty.mk

# Guile and ECL (Debian's, linked with Debian's libgc) under gc-dune-run with
# every dirty-page source, output compared with stock libgc's.
if HAVE_BDWGC
TESTS += tests/check_clients.sh
endif
EXTRA_DIST += tests/check_clients.sh
# bench/run-scale's report: slopes per GiB and checksum comparison.
TESTS += tests/check_scale_report.sh
EXTRA_DIST += tests/check_scale_report.sh

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
tests_check_dune_run_LDADD = dune/libdune-core.la $(CHECK_LIBS)
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
check_PROGRAMS += tests/check_dune_fds
TESTS += tests/check_dune_fds
tests_check_dune_fds_SOURCES = tests/check_dune_fds.c tests/dune_test.h
tests_check_dune_fds_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_dune_fds_LDADD = dune/libdune-core.la $(CHECK_LIBS)
check_PROGRAMS += tests/check_dune_tlb
TESTS += tests/check_dune_tlb
tests_check_dune_tlb_SOURCES = tests/check_dune_tlb.c tests/dune_test.h
tests_check_dune_tlb_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_dune_tlb_LDADD = dune/libdune-core.la $(CHECK_LIBS)
check_PROGRAMS += tests/check_dune_mem
TESTS += tests/check_dune_mem
tests_check_dune_mem_SOURCES = tests/check_dune_mem.c tests/dune_test.h
tests_check_dune_mem_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_dune_mem_LDADD = dune/libdune-core.la $(CHECK_LIBS)
endif
endif

# The shared libraries export only their documented API.
TESTS += tests/check_exports.sh
EXTRA_DIST += tests/check_exports.sh

# Whether Dune can be used here, for the shell suites (tests/dune_usable.sh):
# the same test as tests/dune_test.h.
if HAVE_DUNE
check_PROGRAMS += tests/dune-usable
tests_dune_usable_SOURCES = tests/dune_usable.c tests/dune_test.h
tests_dune_usable_LDADD = dune/libdune-core.la
endif
EXTRA_DIST += tests/dune_usable.sh

# make install DESTDIR=..., then a program built with pkg-config gc-dune.
TESTS += tests/check_install.sh
EXTRA_DIST += tests/check_install.sh

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
