# tests build fragment (included from the top-level Makefile.am)

# The Dune suites, one automake test each (tests/svm/dune/*.dune, run by
# tests/svm/dune-suite.sh): natively where Dune can be used, else inside
# the emulated-SVM guest, PASS or FAIL either way.  First in TESTS, so that
# make -j starts the slow guests first.  The suites' programs are
# check_PROGRAMS below.
TEST_EXTENSIONS = .test .dune
DUNE_LOG_COMPILER = $(SHELL) $(srcdir)/tests/svm/dune-suite.sh
DUNE_SUITES = tests/svm/dune/check_dune_signals.dune tests/svm/dune/check_dune_mem.dune \
	tests/svm/dune/check_dune_threads.dune tests/svm/dune/check_dune_run.dune \
	tests/svm/dune/check_dune.dune tests/svm/dune/check_dune_tlb.dune \
	tests/svm/dune/check_dune_mode.dune tests/svm/dune/check_dune_fds.dune \
	tests/svm/dune/check_dune_gdb.dune tests/svm/dune/check_dirty.dune
DUNE_GC_SUITES = tests/svm/dune/check_gc_dune.dune tests/svm/dune/gctest.dune \
	tests/svm/dune/check_clients.dune
EXTRA_DIST += tests/svm/dune-suite.sh $(DUNE_SUITES) $(DUNE_GC_SUITES)
if HAVE_DUNE
if HAVE_CHECK
TESTS += $(DUNE_SUITES)
if HAVE_BDWGC
TESTS += $(DUNE_GC_SUITES)
endif
endif
endif

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
tests_check_dune_SOURCES = tests/check_dune.c tests/dune_test.h
tests_check_dune_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_dune_LDADD = dune/libdune-core.la $(CHECK_LIBS)
endif
endif

if HAVE_DUNE
if HAVE_CHECK
check_PROGRAMS += tests/check_dune_run
tests_check_dune_run_SOURCES = tests/check_dune_run.c
tests_check_dune_run_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -DDUNE_RUN='"$(abs_top_builddir)/dune/dune-run"'
tests_check_dune_run_LDADD = dune/libdune-core.la $(CHECK_LIBS)
EXTRA_tests_check_dune_run_DEPENDENCIES = dune/dune-run dune/libdune-preload.la
endif
endif

if HAVE_DUNE
if HAVE_CHECK
check_PROGRAMS += tests/check_dune_threads
tests_check_dune_threads_SOURCES = tests/check_dune_threads.c tests/dune_test.h
tests_check_dune_threads_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_dune_threads_LDADD = dune/libdune-core.la $(CHECK_LIBS)
check_PROGRAMS += tests/check_dune_fds
tests_check_dune_fds_SOURCES = tests/check_dune_fds.c tests/dune_test.h
tests_check_dune_fds_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_dune_fds_LDADD = dune/libdune-core.la $(CHECK_LIBS)
check_PROGRAMS += tests/check_dune_tlb
tests_check_dune_tlb_SOURCES = tests/check_dune_tlb.c tests/dune_test.h
tests_check_dune_tlb_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_dune_tlb_LDADD = dune/libdune-core.la $(CHECK_LIBS)
check_PROGRAMS += tests/check_dune_mem
tests_check_dune_mem_SOURCES = tests/check_dune_mem.c tests/dune_test.h
tests_check_dune_mem_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_dune_mem_LDADD = dune/libdune-core.la $(CHECK_LIBS)
endif
endif

# The shared libraries export only their documented API.
TESTS += tests/check_exports.sh
EXTRA_DIST += tests/check_exports.sh

# ... and keep their writable data small: a collector scans it as roots.
TESTS += tests/check_roots.sh
EXTRA_DIST += tests/check_roots.sh

# Whether Dune can be used here, for the shell suites (tests/dune_usable.sh):
# the same test as tests/dune_test.h.
if HAVE_DUNE
check_PROGRAMS += tests/dune-usable
tests_dune_usable_SOURCES = tests/dune_usable.c tests/dune_test.h
tests_dune_usable_LDADD = dune/libdune-core.la
endif
EXTRA_DIST += tests/dune_usable.sh

# Whether a dirty-page source can be used here (uffd needs Linux 6.7,
# softdirty CONFIG_MEM_SOFT_DIRTY), for the shell suites.
check_PROGRAMS += tests/dirty-usable
tests_dirty_usable_SOURCES = tests/dirty_usable.c
tests_dirty_usable_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/gc-backend
tests_dirty_usable_LDADD = $(DIRTY_LIBS)

# make install DESTDIR=..., then a program built with pkg-config gc-dune.
TESTS += tests/check_install.sh
# `make install` relinks libraries in the build tree, and a test running
# beside it once found libdune.so.0 missing: install after every other test.
# (A variable names the log, so that this only adds prerequisites to the
# rule automake writes for it.)
install_test_log = tests/check_install.sh.log
$(install_test_log): $(filter-out $(install_test_log),$(TEST_LOGS))
EXTRA_DIST += tests/check_install.sh

if HAVE_DUNE
if HAVE_CHECK
check_PROGRAMS += tests/check_dune_signals
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
EXTRA_DIST += tests/check_dune_gdb.sh
EXTRA_tests_gdb_target_DEPENDENCIES = dune/dune-run dune/libdune-preload.la
endif

# Which privilege level dune_enter() picks and what it refuses, on this KVM.
if HAVE_DUNE
if HAVE_CHECK
check_PROGRAMS += tests/check_dune_mode
tests_check_dune_mode_SOURCES = tests/check_dune_mode.c tests/dune_test.h
tests_check_dune_mode_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -DDUNE_RUN='"$(abs_top_builddir)/dune/dune-run"'
tests_check_dune_mode_LDADD = dune/libdune-core.la $(CHECK_LIBS)
EXTRA_tests_check_dune_mode_DEPENDENCIES = dune/dune-run dune/libdune-preload.la
endif
endif

# Hardware virtualization, emulated: a Linux guest with SVM and nested
# paging under QEMU (docs/hardware-virtualization.md).  `make check` boots
# it once for a smoke run (SVM_SMOKE_BITS, default 39); `make check-svm`
# runs every Dune, dirty and libgc-dune suite inside it at SVM_BITS
# (default "48 46 39").  The kernel and initramfs are kept in SVM_WORK.
SVM_WORK = $(abs_top_builddir)/svm-work
SVM_TEST_FILES = tests/svm/guest.sh tests/svm/image.sh tests/svm/init tests/svm/suites.sh \
	tests/svm/check-svm.sh tests/svm/smoke.sh tests/svm/measure.sh
EXTRA_DIST += $(SVM_TEST_FILES)
if HAVE_DUNE
if HAVE_CHECK
TESTS += tests/svm/smoke.sh
endif
endif
# KVM's own exit and fault counters around page writes, per dirty source
# (docs/hardware-virtualization.md); built with the tests, run by hand or
# inside the guest: tests/svm/guest.sh tests/svm/kvm-counts.
if HAVE_DUNE
noinst_PROGRAMS += tests/svm/kvm-counts
tests_svm_kvm_counts_SOURCES = tests/svm/kvm_counts.c
tests_svm_kvm_counts_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/dune
tests_svm_kvm_counts_LDADD = $(DIRTY_LIBS)
endif
AM_TESTS_ENVIRONMENT = SVM_WORK="$${SVM_WORK:-$(SVM_WORK)}"; export SVM_WORK;
check-svm: all $(check_PROGRAMS)
	SVM_WORK="$${SVM_WORK:-$(SVM_WORK)}" $(SHELL) $(srcdir)/tests/svm/check-svm.sh
# The hardware path's counts and ratios (docs/hardware-virtualization.md),
# at the first width of SVM_BITS (default 48).
bench-svm: all $(check_PROGRAMS) $(BENCH_PROGRAMS) $(BENCH_MICRO)
	b=$${SVM_BITS:-48}; b=$${b%% *}; \
	SVM_WORK="$${SVM_WORK:-$(SVM_WORK)}" $(SHELL) $(srcdir)/tests/svm/guest.sh -b $$b \
	    -t $${SVM_TIMEOUT:-3600} SVM_LOG_DIR=svm-logs/measure-$$b \
	    sh $(srcdir)/tests/svm/measure.sh
.PHONY: check-svm bench-svm
clean-local: clean-svm
clean-svm:
	rm -rf svm-logs
distclean-local: distclean-svm
distclean-svm:
	rm -rf svm-work
.PHONY: clean-svm distclean-svm
