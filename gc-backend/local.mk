# gc-backend build fragment (included from the top-level Makefile.am)

# Dirty-page tracking (dirty.h): front end + native backends, as a
# convenience library linked into libgc-dune and the tests.  It does not
# carry the Dune core: libgc-dune links the shared libdune, tests and
# benchmarks link the core's convenience library ($(DIRTY_LIBS)), so that
# a process never holds two copies of the core.  Hidden visibility: dirty.h
# marks its declarations default, and libgc-dune's version script decides
# what is exported.
noinst_LTLIBRARIES += gc-backend/libdirty.la
gc_backend_libdirty_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
# Set in both configurations: defined only under HAVE_DUNE, automake would
# leave it empty (not AM_CPPFLAGS) without Dune.
gc_backend_libdirty_la_CPPFLAGS = $(AM_CPPFLAGS)
DIRTY_LIBS = gc-backend/libdirty.la
gc_backend_libdirty_la_SOURCES = \
	gc-backend/dirty.h \
	gc-backend/dirty_backend.h \
	gc-backend/dirty_tracker.h \
	gc-backend/dirty_env.h \
	gc-backend/dirty_calibrate.h \
	gc-backend/dirty_calibrate.c \
	gc-backend/dirty.c \
	gc-backend/dirty_registry.c \
	gc-backend/dirty_env.c \
	gc-backend/dirty_check.c \
	gc-backend/dirty_bits.c \
	gc-backend/dirty_rtable.c \
	gc-backend/dirty_hold.c \
	gc-backend/dirty_uffd.c \
	gc-backend/dirty_softdirty.c \
	gc-backend/dirty_mprotect.c \
	gc-backend/dirty_sigchain.c
if HAVE_DUNE
# The Dune backends (guest PTE D bits, KVM dirty log) implement struct
# dirty_ops from dirty_backend.h; they call the Dune core through dune.h
# only.
gc_backend_libdirty_la_SOURCES += gc-backend/dirty_pte.c gc-backend/dirty_kvm.c gc-backend/dirty_wp.c \
	gc-backend/dirty_dune.c
gc_backend_libdirty_la_CPPFLAGS += -DDIRTY_DUNE_BACKENDS
DIRTY_LIBS += dune/libdune-core.la
endif

include gc-backend/gc.mk
