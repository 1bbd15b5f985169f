#!/bin/sh
# Run the libgc-dune stress test (tests/check_gc_dune.c) once per way in
# and per dirty-page source.  The Dune runs happen when tests/dune_usable.sh
# says Dune can be used here; then a run that does not get the backend it
# asked for fails.  When Dune cannot be used (DUNE_DISABLE, no read-write
# /dev/kvm, built without Dune) they are skipped with the reason, and so is
# the suite (exit 77) unless a run failed: never a pass with runs missing.
# Run from the top build directory (as `make check` does).
srcdir=${srcdir:-.}
. "$srcdir/tests/dune_usable.sh"

linked=./tests/check_gc_dune
plain=./tests/check_gc_dune_plain
safety=./tests/check_gc_dune_safety
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
# Stock libgc (its own mprotect dirty bits) for comparison.
run "linked, GC_DUNE_BACKEND=off" GC_DUNE_BACKEND=off $linked
# A SIGSEGV handler installed after libgc-dune starts, and read(2) into
# pointer-free buffers: as with stock libgc, for every source.
for b in off uffd mprotect; do
    run "safety, $b" GC_DUNE_BACKEND=$b GC_DUNE_EXPECT=$b $safety
done
run "safety, uffd checked against mprotect" GC_DUNE_BACKEND=uffd GC_DUNE_EXPECT=uffd \
    GC_DUNE_CHECK=mprotect $safety

# Inside Dune (two application threads, as natively).  The checked run is
# slow (inside the guest every write faults once per cycle), hence fewer
# steps.
dune_usable
dune_rc=$?
if [ $dune_rc -eq 0 ]; then
    run "linked, Dune + kvm dirty log" GC_DUNE_BACKEND=kvm GC_DUNE_EXPECT=kvm $linked
    for b in kvm pte; do
        run "safety, Dune + $b checked against mprotect" GC_DUNE_BACKEND=$b GC_DUNE_EXPECT=$b \
            GC_DUNE_CHECK=mprotect $safety
    done
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
elif [ $dune_rc -eq 77 ]; then
    echo "=== Dune runs: SKIP ($dune_why)"
    skipped=$((skipped + 1))
else
    echo "=== Dune runs: FAIL ($dune_why)"
    failed=$((failed + 1))
fi

echo "check_gc_dune.sh: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] || exit 1
[ $skipped -eq 0 ] || exit 77
exit 0
