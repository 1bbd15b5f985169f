#!/bin/sh
# Conformance run: bdwgc's other test programs (tests/*.c, tests/test_cpp.cc
# and cord/tests/cordtest.c of the libgc 8.2.2 source package; gctest itself
# is tests/gctest_dune.sh) against libgc-dune, in incremental mode, once per
# dirty-page source.
#
#   tests/bdwgc_tests.sh [BDWGC_SOURCE_DIR]      (from the top build dir)
#
# The source is fetched and configured as for gctest (tests/bdwgc_source.sh).
# Each program is built as bdwgc's tests.am builds it, against Debian's
# libgc.so (cordtest with the cord sources of the package, since Debian ships
# no libcord), and run under gc-dune-run with GC_ENABLE_INCREMENTAL=1.  The
# programs that write heap pointers with manual-VDB reports of their own
# (disclaim_test, disclaim_weakmap_test, staticrootslib) are compiled with
# -DTEST_MANUAL_VDB and those reports compiled out (gctest_no_barrier.h), as
# gctest is: libgc-dune's tracker is then the collector's only dirty source.
#
# Unlike gctest, none of these programs fails when the collector is told of
# no written page at all (manual VDB with nothing reported: tried for each,
# also with GC_FULL_FREQUENCY=1000, GC_PAUSE_TIME_TARGET=1, GC_MARKERS=1):
# they seldom write into objects that survived a collection, and check
# little of what they keep.  So a run's exit status shows that libgc-dune
# keeps each program working (threads, heap growth, huge and realloc'd
# objects, disclaim procs and finalizers, static roots in shared libraries,
# C++, cords), while the checking mode (GC_DUNE_CHECK: the reference backend
# runs alongside, and any page it saw written that the backend missed
# aborts the run) is what catches a missed page.
#
# Default runs, per program: uffd, mprotect, and uffd checked against
# mprotect natively; Dune + kvm; Dune + pte for the programs that take
# under 5 s inside Dune.  BDWGC_TESTS_SLOW=1 adds mprotect checked against
# uffd, Dune + pte for the rest, Dune + kvm checked against mprotect, and
# test_cpp's 10 iterations inside Dune too (2 by default there).
# Each passing run must also show (GC_DUNE_VERBOSE=1) that it ran with the
# backend it asked for (bdwgc_source.sh: verify).  Exit 77 (skip) when the
# source cannot be had or Dune cannot be used here.

bdwgc_name=bdwgc_tests.sh bdwgc_src=$1
. "$(dirname "$0")/bdwgc_source.sh"

slow=${BDWGC_TESTS_SLOW:-0}
t=$work/tests
mkdir -p "$t" || exit 1
log=$t/compile.log
: >"$log"
nobarrier="-DTEST_MANUAL_VDB -include $here/gctest_no_barrier.h"

# build NAME CFLAGS SOURCE... : one program linked with libgc only.
build() {
    name=$1 flags=$2
    shift 2
    gcc $bdwgc_cflags $flags -o "$t/$name" "$@" "$gc" -lpthread -ldl >>"$log" 2>&1 ||
        { echo "FAIL: building $name (see $log)"; exit 1; }
}

s=$src/tests
build hugetest "" "$s/huge_test.c"
build middletest "" "$s/middle.c"
build realloc_test "" "$s/realloc_test.c"
build smashtest "" "$s/smash_test.c"
build threadkey_test "" "$s/threadkey_test.c"
build subthreadcreate_test "" "$s/subthread_create.c"
build initsecondarythread_test "" "$s/initsecondarythread.c"
build disclaim_test "$nobarrier" "$s/disclaim_test.c"
build disclaim_weakmap_test "$nobarrier" "$s/disclaim_weakmap_test.c"
build disclaim_bench "" "$s/disclaim_bench.c"
# staticrootstest: two shared libraries whose static data hold the roots.
# Its sources define GC_DEBUG before including gc.h; the forced include of
# gctest_no_barrier.h comes first, hence -DGC_DEBUG here.
for lib in staticrootslib_test:"" staticrootslib2_test:-DSTATICROOTSLIB2; do
    gcc $bdwgc_cflags $nobarrier -DGC_DEBUG ${lib#*:} -fPIC -shared \
        -o "$t/lib${lib%%:*}.so" "$s/staticrootslib.c" "$gc" >>"$log" 2>&1 ||
        { echo "FAIL: building lib${lib%%:*}.so (see $log)"; exit 1; }
done
build staticrootstest "-DSTATICROOTSLIB2 -L$t -Wl,-rpath,$t" "$s/staticrootstest.c" \
    -lstaticrootslib_test -lstaticrootslib2_test
build cordtest "-I$src/include/gc" "$src/cord/tests/cordtest.c" "$src/cord/cordbscs.c" \
    "$src/cord/cordxtra.c" "$src/cord/cordprnt.c"
have_cpp=no
if command -v g++ >/dev/null 2>&1; then
    gccpp=$(pkg-config --variable=libdir bdw-gc)/libgccpp.so
    g++ $bdwgc_cflags -o "$t/test_cpp" "$s/test_cpp.cc" "$gccpp" "$gc" -lpthread >>"$log" 2>&1 ||
        { echo "FAIL: building test_cpp (see $log)"; exit 1; }
    have_cpp=yes
fi

# What bdwgc's tests.am would run but cannot be run meaningfully here.
skip "tracetest: needs a collector built with KEEP_BACK_PTRS (--enable-gc-debug);" \
    "Debian's libgc is not, and bdwgc's own 'make check' does not build it then." \
    "KEEP_BACK_PTRS also disables incremental mode in GC_enable_incremental()"
skip "test_atomic_ops: tests the atomic primitives only; it allocates nothing," \
    "so no dirty bit is ever consulted"
skip "leaktest, threadleaktest: leak-detection mode (GC_set_find_leak(1)) never" \
    "frees an object, so a missed page cannot free a live one; it could only add a" \
    "false report to the conservative leak reports these programs print and do not" \
    "check (and GC_enable_incremental() refuses incremental mode with find-leak on)"
[ $have_cpp = yes ] || skip "test_cpp: no C++ compiler (g++)"

launcher=$top/gc-backend/gc-dune-run
summarize() {
    grep -E '^gc-dune: (backend|checking)|[Ff]ail|[Aa]bort|corrupt|[Ss]mash|created [0-9]+ threads|added,' \
        "$out" | tail -3
}

# NAME:HEAVY -- heavy programs take 5 s or more inside Dune (pte there only
# when slow).  test_cpp runs bdwgc's default 10 iterations natively.
progs="hugetest:- middletest:- realloc_test:heavy smashtest:- threadkey_test:-
    subthreadcreate_test:- initsecondarythread_test:- disclaim_test:-
    disclaim_weakmap_test:heavy disclaim_bench:heavy staticrootstest:- cordtest:-"
[ $have_cpp = yes ] && progs="$progs test_cpp:-"

kvm=no
dune_runs && kvm=yes

inc="GC_ENABLE_INCREMENTAL=1 GC_DUNE_VERBOSE=1"
for p in $progs; do
    name=${p%%:*} heavy=${p#*:}
    prog="$t/$name"
    args= dargs=
    if [ "$name" = test_cpp ]; then
        args=10 dargs=2
        [ "$slow" = 1 ] && dargs=10
    fi
    run pass "$name${args:+ $args}: uffd" $inc GC_DUNE_BACKEND=uffd "$launcher" "$prog" $args
    run pass "$name${args:+ $args}: mprotect" $inc GC_DUNE_BACKEND=mprotect "$launcher" "$prog" $args
    run pass "$name${args:+ $args}: uffd checked against mprotect" $inc GC_DUNE_BACKEND=uffd \
        GC_DUNE_CHECK=mprotect "$launcher" "$prog" $args
    [ "$slow" = 1 ] && run pass "$name${args:+ $args}: mprotect checked against uffd" $inc \
        GC_DUNE_BACKEND=mprotect GC_DUNE_CHECK=uffd "$launcher" "$prog" $args
    [ $kvm = yes ] || continue
    run pass "$name${dargs:+ $dargs}: Dune + kvm" $inc GC_DUNE_BACKEND=kvm "$launcher" "$prog" $dargs
    if [ "$heavy" != heavy ] || [ "$slow" = 1 ]; then
        run pass "$name${dargs:+ $dargs}: Dune + pte" $inc GC_DUNE_BACKEND=pte "$launcher" "$prog" $dargs
    fi
    if [ "$slow" = 1 ]; then
        # Inside Dune each mprotect fault costs three exits: disclaim_bench
        # needs more than 5 minutes checked, hence the longer bound.
        RUN_TIMEOUT=1800
        run pass "$name${dargs:+ $dargs}: Dune + kvm checked against mprotect" $inc \
            GC_DUNE_BACKEND=kvm GC_DUNE_CHECK=mprotect "$launcher" "$prog" $dargs
        RUN_TIMEOUT=
    fi
done
[ "$slow" = 1 ] || echo "(not run: BDWGC_TESTS_SLOW=1 adds mprotect checked against uffd," \
    "Dune + pte for the heavy programs, Dune + kvm checked against mprotect)"
finish
