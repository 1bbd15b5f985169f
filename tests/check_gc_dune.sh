#!/bin/sh
# Run the libgc-dune stress test (tests/check_gc_dune.c) once per way in
# and per dirty-page source.  A run that cannot get its backend here
# (no /dev/kvm, Dune not built, ...) is reported as skipped with its
# reason; the script fails if any run fails, and skips if all skipped.
# Run from the top build directory (as `make check` does).

linked=./tests/check_gc_dune
plain=./tests/check_gc_dune_plain
launcher=./gc-backend/gc-dune-run
failed=0 passed=0 skipped=0

run() {
    label=$1
    shift
    echo "=== $label"
    start=$(date +%s)
    env "$@"
    rc=$?
    echo "--- $label: exit $rc after $(($(date +%s) - start)) s"
    case $rc in
    0) passed=$((passed + 1)) ;;
    77) skipped=$((skipped + 1)) ;;
    *) failed=$((failed + 1)) ;;
    esac
}

# Linked with -lgc-dune -lgc, native backends.
run "linked, uffd" GC_DUNE_BACKEND=uffd GC_DUNE_EXPECT=uffd $linked
run "linked, mprotect" GC_DUNE_BACKEND=mprotect GC_DUNE_EXPECT=mprotect $linked
# Without Dune, auto takes the best native backend: uffd here.
run "linked, auto without Dune" DUNE_DISABLE=1 GC_DUNE_EXPECT=uffd $linked
run "linked, uffd checked against mprotect" \
    GC_DUNE_BACKEND=uffd GC_DUNE_EXPECT=uffd GC_DUNE_CHECK=mprotect $linked
# Incremental mode switched on by the environment, as GC_ENABLE_INCREMENTAL
# users do, instead of by GC_enable_incremental().
run "linked, mprotect, GC_ENABLE_INCREMENTAL=1" \
    GC_ENABLE_INCREMENTAL=1 GC_DUNE_BACKEND=mprotect GC_DUNE_EXPECT=mprotect $linked
# Preloaded into a program linked with libgc only.
run "gc-dune-run, uffd" GC_DUNE_BACKEND=uffd GC_DUNE_EXPECT=uffd $launcher $plain
# libgc reads the bits through its manual VDB instead of its soft-dirty one
# (the default): once linked, once preloaded, once checked.
run "linked, uffd, manual VDB" GC_DUNE_FEED=manual GC_DUNE_BACKEND=uffd GC_DUNE_EXPECT=uffd $linked
run "gc-dune-run, uffd, manual VDB" GC_DUNE_FEED=manual GC_DUNE_BACKEND=uffd \
    GC_DUNE_EXPECT=uffd $launcher $plain
run "linked, mprotect, manual VDB, GC_ENABLE_INCREMENTAL=1" GC_DUNE_FEED=manual \
    GC_ENABLE_INCREMENTAL=1 GC_DUNE_BACKEND=mprotect GC_DUNE_EXPECT=mprotect $linked
# Stock libgc (its own mprotect dirty bits) for comparison.
run "linked, GC_DUNE_BACKEND=off" GC_DUNE_BACKEND=off $linked

# Inside Dune (two application threads, as natively).  The checked run is
# slow (inside the guest every write faults once per cycle), hence fewer
# steps.
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    run "linked, Dune + kvm dirty log" GC_DUNE_BACKEND=kvm GC_DUNE_EXPECT=kvm $linked
    # Every written page held (GC_DUNE_HOLD_ALL=1), for 2 collections.
    run "linked, Dune + kvm, all held 2, checked against mprotect" CHECK_GC_DUNE_STEPS=6000 \
        GC_DUNE_HOLD_ALL=1 GC_DUNE_HOLD=2 GC_DUNE_BACKEND=kvm GC_DUNE_EXPECT=kvm \
        GC_DUNE_CHECK=mprotect $linked
    run "gc-dune-run, Dune + kvm" GC_DUNE_BACKEND=kvm GC_DUNE_EXPECT=kvm $launcher $plain
    # Without holding rewritten pages (GC_DUNE_HOLD=0): every dirty page is
    # re-armed at every collection, as before holding existed.
    run "linked, Dune + pte, no holding" GC_DUNE_HOLD=0 GC_DUNE_BACKEND=pte GC_DUNE_EXPECT=pte \
        $linked
    # Two vCPUs: the D-bit clears reach the other one by a TLB shootdown.
    # Holding for 2 collections, so that the 14 or so collections of this
    # short run hold, release and re-arm pages many times.
    run "linked, Dune + pte held 2, checked against mprotect" CHECK_GC_DUNE_STEPS=6000 \
        GC_DUNE_HOLD=2 GC_DUNE_BACKEND=pte GC_DUNE_EXPECT=pte GC_DUNE_CHECK=mprotect $linked
else
    echo "=== Dune runs: SKIP (no read-write /dev/kvm)"
    skipped=$((skipped + 1))
fi

echo "check_gc_dune.sh: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] || exit 1
[ $passed -gt 0 ] || exit 77
exit 0
