# libgc-dune: Boehm GC fed by the dirty-page tracker (included from
# gc-backend/local.mk).  Needs bdw-gc (libgc-dev) at configure time.
if HAVE_BDWGC
lib_LTLIBRARIES += gc-backend/libgc-dune.la
pkginclude_HEADERS += gc-backend/gc_dune.h gc-backend/dirty.h
gc_backend_libgc_dune_la_SOURCES = gc-backend/gc_dune.c gc-backend/gc_dune.h \
	gc-backend/gc_dune_internal.h gc-backend/gc_dune_heap.c gc-backend/gc_dune_report.c gc-backend/gc_dune_ptrfree.c gc-backend/gc_dune_open.c \
	gc-backend/gc_dune_bench.c gc-backend/gc_dune_soft.c gc-backend/gc_dune_soft.h
gc_backend_libgc_dune_la_CFLAGS = $(AM_CFLAGS) $(BDWGC_CFLAGS) -fvisibility=hidden
# The Dune core comes from the shared libdune (one copy per process, also
# under dune-run).  The version script exports gc_dune.h, dirty.h and the
# symbols that must interpose libgc's and libc's (tests/check_exports.sh
# compares it with the headers and the API-marked definitions).
gc_backend_libgc_dune_la_LIBADD = gc-backend/libdirty.la $(BDWGC_LIBS) -ldl
if HAVE_DUNE
gc_backend_libgc_dune_la_LIBADD += dune/libdune.la
endif
gc_backend_libgc_dune_la_LDFLAGS = -version-info 0:0:0 \
	-Wl,--version-script=$(srcdir)/gc-backend/libgc-dune.map
EXTRA_gc_backend_libgc_dune_la_DEPENDENCIES = gc-backend/libgc-dune.map
EXTRA_DIST += gc-backend/libgc-dune.map

# pkg-config file (pc_subst: Makefile.am).
pkgconfig_DATA += gc-backend/gc-dune.pc
EXTRA_DIST += gc-backend/gc-dune.pc.in
CLEANFILES += gc-backend/gc-dune.pc
gc-backend/gc-dune.pc: $(srcdir)/gc-backend/gc-dune.pc.in Makefile
	$(pc_subst)

bin_PROGRAMS += gc-backend/gc-dune-run
gc_backend_gc_dune_run_SOURCES = gc-backend/gc-dune-run.c
gc_backend_gc_dune_run_CPPFLAGS = $(AM_CPPFLAGS) -DLIBDIR='"$(libdir)"'

if HAVE_CHECK
# The stress test, built twice: linked with libgc-dune (-lgc-dune -lgc), and
# with libgc only, for the run under gc-dune-run (LD_PRELOAD).
# tests/check_gc_dune.sh runs them once per dirty-page source.
check_PROGRAMS += tests/check_gc_dune tests/check_gc_dune_plain tests/check_gc_dune_safety \
	tests/check_gc_dune_static
TESTS += tests/check_gc_dune.sh tests/gctest_dune.sh tests/bdwgc_tests.sh
EXTRA_DIST += tests/check_gc_dune.sh tests/gctest_dune.sh tests/gctest_no_barrier.h \
	tests/bdwgc_tests.sh tests/bdwgc_source.sh
tests_check_gc_dune_SOURCES = tests/check_gc_dune.c
tests_check_gc_dune_CFLAGS = $(AM_CFLAGS) $(BDWGC_CFLAGS) $(CHECK_CFLAGS)
tests_check_gc_dune_LDADD = gc-backend/libgc-dune.la $(BDWGC_LIBS) $(CHECK_LIBS) -ldl
tests_check_gc_dune_plain_SOURCES = tests/check_gc_dune.c
tests_check_gc_dune_plain_CFLAGS = $(AM_CFLAGS) $(BDWGC_CFLAGS) $(CHECK_CFLAGS)
tests_check_gc_dune_plain_LDADD = $(BDWGC_LIBS) $(CHECK_LIBS) -ldl
# A late SIGSEGV handler and read(2) into atomic buffers, per backend.
tests_check_gc_dune_safety_SOURCES = tests/check_gc_dune_safety.c
tests_check_gc_dune_safety_CFLAGS = $(AM_CFLAGS) $(BDWGC_CFLAGS) $(CHECK_CFLAGS)
tests_check_gc_dune_safety_LDADD = gc-backend/libgc-dune.la $(BDWGC_LIBS) $(CHECK_LIBS)
# gc-dune-run must say that it cannot preload into a static program.
tests_check_gc_dune_static_SOURCES = tests/check_gc_dune_static.c
tests_check_gc_dune_static_LDFLAGS = -all-static
# The soft-dirty files emulated for libgc (gc_dune_soft.c), on their own.
check_PROGRAMS += tests/check_gc_soft
TESTS += tests/check_gc_soft
tests_check_gc_soft_SOURCES = tests/check_gc_soft.c gc-backend/gc_dune_soft.c \
	gc-backend/gc_dune_soft.h
tests_check_gc_soft_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/gc-backend
tests_check_gc_soft_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_gc_soft_LDADD = $(DIRTY_LIBS) $(CHECK_LIBS) -ldl
endif
# A SIGSEGV handler installed after libgc starts, on an alternate stack
# (Nix's), under gc-dune-run per dirty source (dirty_sigchain.c).
check_PROGRAMS += tests/check_gc_sigchain
TESTS += tests/check_gc_sigchain.sh
EXTRA_DIST += tests/check_gc_sigchain.sh
tests_check_gc_sigchain_SOURCES = tests/check_gc_sigchain.c
tests_check_gc_sigchain_CFLAGS = $(AM_CFLAGS) $(BDWGC_CFLAGS)
tests_check_gc_sigchain_LDADD = $(BDWGC_LIBS)
# One workload, every dirty source, side by side (README: libgc-dune).
compare-backends: tests/check_gc_dune
	$(srcdir)/tests/compare_backends.sh
EXTRA_DIST += tests/compare_backends.sh
# bdwgc's own gctest against libgc-dune (needs the libgc source package).
gctest-dune: gc-backend/libgc-dune.la gc-backend/gc-dune-run
	$(srcdir)/tests/gctest_dune.sh $(BDWGC_SRC)
# bdwgc's other test programs against libgc-dune; BDWGC_TESTS_SLOW=1 for all
# the variations.
bdwgc-tests: gc-backend/libgc-dune.la gc-backend/gc-dune-run
	$(srcdir)/tests/bdwgc_tests.sh $(BDWGC_SRC)
endif
