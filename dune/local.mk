# dune/ build fragment (included from the top-level Makefile.am)
include_HEADERS += dune/include/dune.h

if HAVE_DUNE
noinst_LTLIBRARIES += dune/libdune-core.la
dune_libdune_core_la_SOURCES = \
	dune/dune_internal.h \
	dune/vm.c \
	dune/memslot.c \
	dune/mirror.c \
	dune/vcpu.c \
	dune/syscall.c \
	dune/syscall_out.c \
	dune/signal.c \
	dune/trace.c \
	dune/fds.c \
	dune/enter.c \
	dune/priv.c \
	dune/arch/x86_64/cpu.c \
	dune/arch/x86_64/pgtable.c \
	dune/arch/x86_64/entry.S
dune_libdune_core_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/dune
dune_libdune_core_la_CFLAGS = $(AM_CFLAGS) -fno-stack-protector -fPIC -fvisibility=hidden
dune_libdune_core_la_CCASFLAGS = -fPIC

lib_LTLIBRARIES += dune/libdune.la
dune_libdune_la_SOURCES =
dune_libdune_la_LIBADD = dune/libdune-core.la
dune_libdune_la_LDFLAGS = -version-info 0:0:0

pkglib_LTLIBRARIES = dune/libdune-preload.la
dune_libdune_preload_la_SOURCES = dune/preload.c
dune_libdune_preload_la_LIBADD = dune/libdune-core.la
dune_libdune_preload_la_LDFLAGS = -module -avoid-version -shared

bin_PROGRAMS += dune/dune-run
dune_dune_run_SOURCES = dune/dune-run.c
dune_dune_run_CPPFLAGS = $(AM_CPPFLAGS) -DPKGLIBDIR='"$(pkglibdir)"'
endif

if HAVE_DUNE
noinst_PROGRAMS += bench/dune-micro
BENCH_MICRO += bench/dune-micro
bench_dune_micro_SOURCES = bench/dune_micro.c
bench_dune_micro_LDADD = dune/libdune-core.la
endif
