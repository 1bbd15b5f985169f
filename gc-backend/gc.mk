# libgc-dune: Boehm GC fed by the dirty-page tracker (included from
# gc-backend/local.mk).  Needs bdw-gc (libgc-dev) at configure time.
if HAVE_BDWGC
lib_LTLIBRARIES += gc-backend/libgc-dune.la
include_HEADERS += gc-backend/gc_dune.h
gc_backend_libgc_dune_la_SOURCES = gc-backend/gc_dune.c gc-backend/gc_dune.h
gc_backend_libgc_dune_la_CFLAGS = $(AM_CFLAGS) $(BDWGC_CFLAGS)
# libdirty.la brings the Dune core along when HAVE_DUNE (gc-backend/local.mk).
gc_backend_libgc_dune_la_LIBADD = gc-backend/libdirty.la $(BDWGC_LIBS) -ldl
gc_backend_libgc_dune_la_LDFLAGS = -version-info 0:0:0

bin_PROGRAMS += gc-backend/gc-dune-run
gc_backend_gc_dune_run_SOURCES = gc-backend/gc-dune-run.c
gc_backend_gc_dune_run_CPPFLAGS = $(AM_CPPFLAGS) -DLIBDIR='"$(libdir)"'
endif
