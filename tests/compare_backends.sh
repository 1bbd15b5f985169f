#!/bin/sh
# One workload, every dirty-page source, side by side: the libgc-dune
# stress test (tests/check_gc_dune.c: pointer forests mutated across many
# incremental cycles by two threads, with fixed seeds) run once per source,
# and a table of what the collector did and what survived.  Every run must
# end with the same live objects (count and digest of their contents) as
# stock libgc, and lose none; the script fails otherwise.
#
#   make compare-backends            (or tests/compare_backends.sh from the
#                                     top build dir; STEPS=n to change the
#                                     workload size, default 20000)

steps=${STEPS:-20000}
linked=./tests/check_gc_dune
[ -x $linked ] || { echo "build first: make check TESTS= (no $linked)"; exit 1; }
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
ref="" failed=0 rows=0

field() { # field LINE-PREFIX SED-EXPRESSION
    grep "^# $1" "$out" | head -1 | sed -E "$2"
}

run() {
    label=$1
    shift
    start=$(date +%s.%N)
    env CHECK_GC_DUNE_STEPS="$steps" "$@" $linked >"$out" 2>&1
    rc=$?
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    got=$(field "2 thread" 's/.*backend ([a-z]+( \(Dune\))?):.*/\1/')
    colls=$(field "2 thread" 's/.*: ([0-9]+) collections.*/\1/')
    pages=$(field "2 thread" 's/.* ([0-9]+) pages reported.*/\1/')
    objs=$(field "result" 's/.*forests of ([0-9]+) live.*/\1/')
    dig=$(field "result" 's/.*digest ([0-9a-f]+);.*/\1/')
    lost=$(field "result" 's/.*; ([0-9]+) objects lost.*/\1/')
    chk=$(field "checking mode:" 's/# checking mode: //')
    [ -n "$ref" ] || ref=$dig
    verdict=same
    if [ $rc -ne 0 ] || [ -z "$dig" ] || [ "$dig" != "$ref" ] || [ "${lost:-1}" != 0 ]; then
        verdict="DIFFERENT (exit $rc)"
        failed=$((failed + 1))
        cp "$out" "compare-backends-$rows.log"
    fi
    rows=$((rows + 1))
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "${got:-?}" \
        "$colls" "$pages" "$objs" "$dig" "$lost" "${chk:--}" "$secs" "$verdict"
}

echo "Stress workload, $steps mutation steps per thread, 2 threads"
echo
echo "| asked for | got | GCs | pages reported dirty | live objects | digest | lost | checking mode | s | vs stock libgc |"
echo "|---|---|---|---|---|---|---|---|---|---|"
run "stock libgc (its mprotect bits)" GC_DUNE_BACKEND=off
# GC_DUNE_EXPECT makes a run fail rather than quietly use another source.
run "mprotect" GC_DUNE_BACKEND=mprotect GC_DUNE_EXPECT=mprotect
run "uffd" GC_DUNE_BACKEND=uffd GC_DUNE_EXPECT=uffd
run "uffd, checked against mprotect" GC_DUNE_BACKEND=uffd GC_DUNE_EXPECT=uffd \
    GC_DUNE_CHECK=mprotect
run "mprotect, checked against uffd" GC_DUNE_BACKEND=mprotect GC_DUNE_EXPECT=mprotect \
    GC_DUNE_CHECK=uffd
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    run "Dune kvm" GC_DUNE_BACKEND=kvm GC_DUNE_EXPECT=kvm
    run "Dune kvm, checked against mprotect" GC_DUNE_BACKEND=kvm GC_DUNE_EXPECT=kvm \
        GC_DUNE_CHECK=mprotect
    run "Dune pte" GC_DUNE_BACKEND=pte GC_DUNE_EXPECT=pte
    run "Dune pte, checked against mprotect" GC_DUNE_BACKEND=pte GC_DUNE_EXPECT=pte \
        GC_DUNE_CHECK=mprotect
else
    echo "| Dune kvm, pte | skipped: no read-write /dev/kvm |||||||||"
fi
echo
echo "compare_backends.sh: $rows runs, $failed different"
[ $failed -eq 0 ]
