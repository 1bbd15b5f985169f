# bench build fragment (included from the top-level Makefile.am)
#
# GC benchmark suite (issue 6): four workloads on the ordinary Boehm API, the
# shared metrics code (bench/workload.[ch]), the runner bench/run-suite and
# its gnuplot script.  `make bench` builds and runs the suite; `make bench
# QUICK=1` runs it at small sizes.  Extra runner options: BENCH_ARGS="...".

# BENCH_PROGRAMS is an automake program list whose directory is BENCHdir:
# `make` builds them, `make install` puts them (with nothing else of the
# suite) under $(pkglibexecdir)/bench.
BENCHdir = $(pkglibexecdir)/bench

BENCH_WORKLOAD_SRC = bench/workload.c bench/workload.h
BENCH_WORKLOAD_CPPFLAGS = $(AM_CPPFLAGS) $(BDWGC_CFLAGS)

if HAVE_BDWGC
BENCH_PROGRAMS += bench/gcbench bench/list bench/hashmap
bench_gcbench_SOURCES = bench/gcbench.c $(BENCH_WORKLOAD_SRC)
bench_gcbench_CPPFLAGS = $(BENCH_WORKLOAD_CPPFLAGS)
bench_gcbench_LDADD = $(BDWGC_LIBS)
bench_list_SOURCES = bench/list.c $(BENCH_WORKLOAD_SRC)
bench_list_CPPFLAGS = $(BENCH_WORKLOAD_CPPFLAGS)
bench_list_LDADD = $(BDWGC_LIBS)
bench_hashmap_SOURCES = bench/hashmap.c $(BENCH_WORKLOAD_SRC)
bench_hashmap_CPPFLAGS = $(BENCH_WORKLOAD_CPPFLAGS)
bench_hashmap_LDADD = $(BDWGC_LIBS)
# Live heap and threads grown for bench/run-scale.
BENCH_PROGRAMS += bench/scale
bench_scale_SOURCES = bench/scale.c $(BENCH_WORKLOAD_SRC)
bench_scale_CPPFLAGS = $(BENCH_WORKLOAD_CPPFLAGS)
bench_scale_LDADD = $(BDWGC_LIBS)
# The suite's metrics preloaded into real clients (bench/run-client); a
# module that is never installed, so -rpath only makes libtool build it shared.
noinst_LTLIBRARIES += bench/libgcstat.la
bench_libgcstat_la_SOURCES = bench/gcstat.c $(BENCH_WORKLOAD_SRC)
bench_libgcstat_la_CPPFLAGS = $(BENCH_WORKLOAD_CPPFLAGS)
bench_libgcstat_la_LDFLAGS = -module -avoid-version -shared -rpath $(abs_builddir)/bench
bench_libgcstat_la_LIBADD = $(BDWGC_LIBS)
if HAVE_LIBXML2
BENCH_PROGRAMS += bench/xml
bench_xml_SOURCES = bench/xml.c $(BENCH_WORKLOAD_SRC)
bench_xml_CPPFLAGS = $(BENCH_WORKLOAD_CPPFLAGS) $(LIBXML2_CFLAGS)
bench_xml_LDADD = $(BDWGC_LIBS) $(LIBXML2_LIBS)
endif HAVE_LIBXML2

if HAVE_CHECK
# Runs every workload at a tiny size in full and mprotect modes.
check_PROGRAMS += tests/check_bench
TESTS += tests/check_bench
tests_check_bench_SOURCES = tests/check_bench.c
tests_check_bench_CPPFLAGS = $(AM_CPPFLAGS) $(CHECK_CFLAGS) \
	-DBENCH_DIR='"$(abs_top_builddir)/bench"'
tests_check_bench_LDADD = $(CHECK_LIBS)
endif HAVE_CHECK
endif HAVE_BDWGC

EXTRA_DIST += bench/run-suite bench/suite.gp bench/hold-modes bench/run-client \
	bench/clients/binary-trees.scm bench/clients/binary-trees.lsp bench/run-scale bench/scale.gp bench/scale-report.awk

.PHONY: bench bench-hold
# The micro-benchmarks first (Dune vs native, dirty-tracking backends),
# then the GC suite.
bench: $(BENCH_PROGRAMS) $(BENCH_MICRO) bench/libgcstat.la
	@if test -x bench/dune-micro; then ./bench/dune-micro $${QUICK:+-q}; \
	 else echo "dune-micro: not built (configured without Dune)"; fi
	@if test -x bench/dirty-micro && test -z "$(QUICK)"; then ./bench/dirty-micro; \
	 ./bench/dirty-micro -d -s 64 -w 1024 -r 3 -R 2; \
	 ./bench/dirty-micro -d -b kvm -s 1024 -w 256 -r 3 -R 2; \
	 elif test -x bench/dirty-micro; then ./bench/dirty-micro -s 64 -w 1024 -r 2 -R 1; fi
	QUICK="$(QUICK)" $(SHELL) $(top_srcdir)/bench/run-suite \
	    --builddir "$(abs_top_builddir)" --srcdir "$(abs_top_srcdir)" $(BENCH_ARGS)
	QUICK="$(QUICK)" $(SHELL) $(top_srcdir)/bench/run-scale \
	    --builddir "$(abs_top_builddir)" --srcdir "$(abs_top_srcdir)" $(SCALE_ARGS)

# How long to hold rewritten pages (GC_DUNE_HOLD): the suite in one run with
# several settings side by side; results in bench/results/hold/.
bench-hold: $(BENCH_PROGRAMS)
	BENCH_MODES_FILE="$(abs_top_srcdir)/bench/hold-modes" QUICK="$(QUICK)" \
	    BENCH_WORKLOADS="$${BENCH_WORKLOADS:-gcbench list hashmap xml}" \
	    $(SHELL) $(top_srcdir)/bench/run-suite --builddir "$(abs_top_builddir)" \
	    --srcdir "$(abs_top_srcdir)" --out "$(abs_top_builddir)/bench/results/hold" $(BENCH_ARGS)


include bench/dirty.mk
