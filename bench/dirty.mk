# Dirty-tracking micro-benchmark (included from bench/local.mk)
noinst_PROGRAMS += bench/dirty-micro
BENCH_MICRO += bench/dirty-micro
bench_dirty_micro_SOURCES = bench/dirty_micro.c
bench_dirty_micro_LDADD = $(DIRTY_LIBS)
