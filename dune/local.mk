# dune/ build fragment (included from the top-level Makefile.am)
pkginclude_HEADERS += dune/include/dune.h
EXTRA_DIST += dune/libdune.map dune/libdune-preload.map dune/dune.pc.in

if HAVE_DUNE
noinst_LTLIBRARIES += dune/libdune-core.la
dune_libdune_core_la_SOURCES = \
	dune/dune_internal.h \
	dune/arch.h \
	dune/vm.c \
	dune/gpa.c \
	dune/memslot.c \
	dune/mirror.c \
	dune/vcpu.c \
	dune/syscall.c \
	dune/syscall_out.c \
	dune/signal.c \
	dune/trace.c \
	dune/fds.c \
	dune/log.c \
	dune/table.c \
	dune/log.h \
	dune/enter.c \
	dune/priv.c \
	dune/arch/x86_64/arch_defs.h \
	dune/arch/x86_64/x86.h \
	dune/arch/x86_64/cpu.c \
	dune/arch/x86_64/exits.c \
	dune/arch/x86_64/traps.c \
	dune/arch/x86_64/signal_frame.c \
	dune/arch/x86_64/pgtable.c \
	dune/arch/x86_64/entry.S
dune_libdune_core_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/dune
dune_libdune_core_la_CFLAGS = $(AM_CFLAGS) -fno-stack-protector -fPIC -fvisibility=hidden
dune_libdune_core_la_CCASFLAGS = -fPIC

# The one shared copy of the core: libgc-dune and the preload library link
# it.  The core is built with hidden visibility; the version script exports
# exactly dune.h (tests/check_exports.sh checks both against the header).
lib_LTLIBRARIES += dune/libdune.la
dune_libdune_la_SOURCES =
dune_libdune_la_LIBADD = dune/libdune-core.la
dune_libdune_la_LDFLAGS = -version-info 0:0:0 \
	-Wl,--version-script=$(srcdir)/dune/libdune.map
EXTRA_dune_libdune_la_DEPENDENCIES = dune/libdune.map

pkglib_LTLIBRARIES = dune/libdune-preload.la
dune_libdune_preload_la_SOURCES = dune/preload.c
dune_libdune_preload_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
dune_libdune_preload_la_LIBADD = dune/libdune.la
dune_libdune_preload_la_LDFLAGS = -module -avoid-version -shared \
	-Wl,--version-script=$(srcdir)/dune/libdune-preload.map
EXTRA_dune_libdune_preload_la_DEPENDENCIES = dune/libdune-preload.map

pkgconfig_DATA += dune/dune.pc
CLEANFILES += dune/dune.pc
dune/dune.pc: $(srcdir)/dune/dune.pc.in Makefile
	$(pc_subst)

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
