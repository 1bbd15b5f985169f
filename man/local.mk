# man/ build fragment (included from the top-level Makefile.am): the two
# tools in section 1, the libgc-dune and dirty-tracking APIs in section 3,
# generated from man/*.in to carry the version and installation directories.
man_MANS =
if HAVE_BDWGC
man_MANS += man/gc-dune-run.1 man/gc_dune.3 man/dirty.3
endif
if HAVE_DUNE
man_MANS += man/dune-run.1
endif
EXTRA_DIST += man/dune-run.1.in man/gc-dune-run.1.in man/gc_dune.3.in man/dirty.3.in
CLEANFILES += man/dune-run.1 man/gc-dune-run.1 man/gc_dune.3 man/dirty.3

man_subst = $(AM_V_GEN)$(MKDIR_P) man && sed -e 's|@VERSION[@]|$(PACKAGE_VERSION)|g' \
	-e 's|@LIBDIR[@]|$(libdir)|g' -e 's|@PKGLIBDIR[@]|$(pkglibdir)|g' $(srcdir)/$@.in >$@
man/dune-run.1: $(srcdir)/man/dune-run.1.in Makefile
	$(man_subst)
man/gc-dune-run.1: $(srcdir)/man/gc-dune-run.1.in Makefile
	$(man_subst)
man/gc_dune.3: $(srcdir)/man/gc_dune.3.in Makefile
	$(man_subst)
man/dirty.3: $(srcdir)/man/dirty.3.in Makefile
	$(man_subst)
