#!/bin/sh
# Conformance run: bdwgc's own test program (gctest, tests/test.c of the
# libgc source package) against libgc-dune, once per dirty-page source.
#
#   tests/gctest_dune.sh [BDWGC_SOURCE_DIR]      (from the top build dir)
#
# Without a directory the Debian source is fetched with `apt-get source
# libgc` (needs a deb-src line).  gctest is compiled in manual-VDB mode
# (-DTEST_MANUAL_VDB) with its own GC_end_stubborn_change/GC_ptr_store_and_dirty
# calls compiled out (tests/gctest_no_barrier.h): libgc-dune's tracker is
# then the collector's only source of dirty pages.  A first run without
# libgc-dune must fail -- it shows that the harness can catch a missing page.
# Each passing run must also show (GC_DUNE_VERBOSE=1) that it ran with the
# backend it asked for (bdwgc_source.sh: verify).  Exit 77 (skip) when the
# source cannot be had or Dune cannot be used here.

bdwgc_name=gctest_dune.sh bdwgc_src=$1
. "$(dirname "$0")/bdwgc_source.sh"

cflags="$bdwgc_cflags -DTEST_MANUAL_VDB -include $here/gctest_no_barrier.h"
gcc $cflags -c -o "$work/test.o" "$src/tests/test.c" 2>"$work/compile.log" ||
    { echo "FAIL: compiling gctest (see $work/compile.log)"; exit 1; }
gcc -o "$work/gctest-plain" "$work/test.o" "$gc" -lpthread -ldl || exit 1
gcc -o "$work/gctest-linked" "$work/test.o" -L"$libdir" -lgc-dune "$gc" -lpthread -ldl || exit 1
# Stock gctest (the collector's own mprotect dirty bits), for the Dune core.
gcc $bdwgc_cflags -c -o "$work/test-stock.o" "$src/tests/test.c" 2>>"$work/compile.log" || exit 1
gcc -o "$work/gctest-plain-stock" "$work/test-stock.o" "$gc" -lpthread -ldl || exit 1

# The main process's verdict and totals (a forked child's totals follow
# its "[forked child N]" line and are left out).
summarize() {
    awk '/\[forked child/ { skip = 1; next }
         skip && /^gc-dune: (backend|checking)/ { next }
         { skip = 0 }
         /Collector appears to work|Test failed|gc-dune: (backend|checking)/' "$out" | tail -3
}

# uffd needs asynchronous write protection (Linux 6.7): its runs only
# where the kernel has it.  Not having it is no failure of ours, and the
# rest of the suite still counts, so the suite does not turn into a skip;
# the line says what did not run and why.
uffd_why=$("$top/tests/dirty-usable" uffd)
uffd_rc=$?
uffd_runs() {
    [ $uffd_rc -eq 0 ] && return 0
    echo "SKIP: the 3 uffd runs (not counted): $uffd_why"
    return 1
}

run fail "libgc only, no dirty source" "$work/gctest-plain"
run pass "linked, default source (auto)" GC_DUNE_VERBOSE=1 "$work/gctest-linked"
run pass "linked, auto without Dune" GC_DUNE_VERBOSE=1 DUNE_DISABLE=1 \
    "$work/gctest-linked"
run pass "linked, mprotect" GC_DUNE_VERBOSE=1 GC_DUNE_BACKEND=mprotect "$work/gctest-linked"
if uffd_runs; then
    run pass "linked, uffd" GC_DUNE_VERBOSE=1 GC_DUNE_BACKEND=uffd "$work/gctest-linked"
    # Checking mode, both ways round: abort on any page the reference saw
    # written and the backend missed.  (These runs found two uffd bugs: a
    # forked child re-registering through the parent's userfaultfd, and
    # discarded/zero pages counted as written.)
    run pass "linked, uffd checked against mprotect" GC_DUNE_VERBOSE=1 GC_DUNE_BACKEND=uffd \
        GC_DUNE_CHECK=mprotect "$work/gctest-linked"
    run pass "linked, mprotect checked against uffd" GC_DUNE_VERBOSE=1 GC_DUNE_BACKEND=mprotect \
        GC_DUNE_CHECK=uffd "$work/gctest-linked"
fi
run pass "gc-dune-run, default source (auto)" GC_DUNE_VERBOSE=1 \
    "$top/gc-backend/gc-dune-run" "$work/gctest-plain"
if dune_runs; then
    run pass "linked, Dune + kvm" GC_DUNE_VERBOSE=1 GC_DUNE_BACKEND=kvm "$work/gctest-linked"
    run pass "linked, Dune + pte" GC_DUNE_VERBOSE=1 GC_DUNE_BACKEND=pte "$work/gctest-linked"
    # Every write fault is a signal delivered in the guest: minutes on a
    # loaded machine, hence the longer bound (it guards against hangs).
    RUN_TIMEOUT=900
    run pass "stock libgc (mprotect) under dune-run" DUNE_VERBOSE=1 "$top/dune/dune-run" \
        "$work/gctest-plain-stock"
    RUN_TIMEOUT=
    # Dune sources checked against mprotect inside the guest: about 2 min 45 s
    # each here (every reference fault is three exits), so on request only.
    # They found the forked child reading its parent's /proc/self/maps.
    if [ "${GCTEST_SLOW:-0}" = 1 ]; then
        run pass "linked, Dune + kvm checked against mprotect" GC_DUNE_VERBOSE=1 \
            GC_DUNE_BACKEND=kvm GC_DUNE_CHECK=mprotect "$work/gctest-linked"
        run pass "linked, Dune + pte checked against mprotect" GC_DUNE_VERBOSE=1 \
            GC_DUNE_BACKEND=pte GC_DUNE_CHECK=mprotect "$work/gctest-linked"
    else
        echo "note: Dune checked runs skipped (about 6 minutes; GCTEST_SLOW=1 runs them)"
    fi
fi
finish
