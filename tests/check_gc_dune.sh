#!/bin/sh
# Run the libgc-dune stress test (tests/check_gc_dune.c) once per way in
# and per dirty-page source.  The Dune runs happen when tests/dune_usable.sh
# says Dune can be used here; then a run that does not get the backend it
# asked for fails.  When Dune cannot be used (DUNE_DISABLE, no read-write
# /dev/kvm, built without Dune) they are left out with the reason on one
# line and the native runs still count; `make check` then runs this suite
# inside the emulated-SVM guest too (tests/svm/check_gc_dune.dune).
# Run from the top build directory (as `make check` does).
srcdir=${srcdir:-.}
. "$srcdir/tests/dune_usable.sh"

linked=./tests/check_gc_dune
plain=./tests/check_gc_dune_plain
safety=./tests/check_gc_dune_safety
launcher=./gc-backend/gc-dune-run
failed=0 passed=0 skipped=0
# auto's measured costs are cached per machine: keep this run's apart.
XDG_CACHE_HOME=$(mktemp -d)
export XDG_CACHE_HOME
trap 'rm -rf "$XDG_CACHE_HOME"' EXIT
# Whether Dune can be used here: 0 yes, 77 no (its runs skip), 1 it should.
dune_usable
dune_rc=$?

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

# The uffd runs, only where the kernel has uffd's asynchronous write
# protection (Linux 6.7).  Elsewhere each says so in one line and is not
# counted: a source the kernel lacks is no failure of ours, and the suite
# does not turn into a skip for it (the other runs still count).
uffd_why=$(./tests/dirty-usable uffd)
uffd_ok=$?
urun() {
    if [ $uffd_ok -eq 0 ]; then
        run "$@"
    else
        echo "SKIP (not counted): $1: uffd: $uffd_why"
    fi
}

# Linked with -lgc-dune -lgc, native backends.
urun "linked, uffd" GC_DUNE_BACKEND=uffd GC_DUNE_EXPECT=uffd $linked
run "linked, mprotect" GC_DUNE_BACKEND=mprotect GC_DUNE_EXPECT=mprotect $linked
# Without Dune, auto takes the best native backend: uffd where it exists
# (then it must), else whichever it measured cheapest.
if [ $uffd_ok -eq 0 ]; then
    run "linked, auto without Dune" DUNE_DISABLE=1 GC_DUNE_STOCK_COST=1000 GC_DUNE_EXPECT=uffd \
        $linked
else
    run "linked, auto without Dune" DUNE_DISABLE=1 $linked
fi
urun "linked, uffd checked against mprotect" \
    GC_DUNE_BACKEND=uffd GC_DUNE_EXPECT=uffd GC_DUNE_CHECK=mprotect $linked
# Incremental mode switched on by the environment, as GC_ENABLE_INCREMENTAL
# users do, instead of by GC_enable_incremental().
run "linked, mprotect, GC_ENABLE_INCREMENTAL=1" \
    GC_ENABLE_INCREMENTAL=1 GC_DUNE_BACKEND=mprotect GC_DUNE_EXPECT=mprotect $linked
# Preloaded into a program linked with libgc only.
urun "gc-dune-run, uffd" GC_DUNE_BACKEND=uffd GC_DUNE_EXPECT=uffd $launcher $plain
# libgc reads the bits through its manual VDB instead of its soft-dirty one
# (the default): once linked, once preloaded, once checked.
urun "linked, uffd, manual VDB" GC_DUNE_FEED=manual GC_DUNE_BACKEND=uffd GC_DUNE_EXPECT=uffd $linked
urun "gc-dune-run, uffd, manual VDB" GC_DUNE_FEED=manual GC_DUNE_BACKEND=uffd \
    GC_DUNE_EXPECT=uffd $launcher $plain
run "linked, mprotect, manual VDB, GC_ENABLE_INCREMENTAL=1" GC_DUNE_FEED=manual \
    GC_ENABLE_INCREMENTAL=1 GC_DUNE_BACKEND=mprotect GC_DUNE_EXPECT=mprotect $linked
# Stock libgc (its own mprotect dirty bits) for comparison.
run "linked, GC_DUNE_BACKEND=off" GC_DUNE_BACKEND=off $linked
# A SIGSEGV handler installed after libgc-dune starts, and read(2) into
# pointer-free buffers: as with stock libgc, for every source.
for b in off uffd mprotect; do
    r=run
    [ $b = uffd ] && r=urun
    $r "safety, $b" GC_DUNE_BACKEND=$b GC_DUNE_EXPECT=$b $safety
done
urun "safety, uffd checked against mprotect" GC_DUNE_BACKEND=uffd GC_DUNE_EXPECT=uffd \
    GC_DUNE_CHECK=mprotect $safety
run "safety, mprotect, manual VDB" GC_DUNE_FEED=manual GC_DUNE_BACKEND=mprotect \
    GC_DUNE_EXPECT=mprotect $safety

# Knobs: a bad value is one line on stderr and the default, the same for
# GC_DUNE_* and DIRTY_*; the run itself is unaffected.
knob() {
    label=$1 want=$2
    shift 2
    echo "=== $label"
    err=$(env "$@" $safety 2>&1 >/dev/null)
    rc=$?
    lines=$(printf '%s\n' "$err" | grep -c "$want")
    other=$(printf '%s\n' "$err" | grep -F "$label" | grep -vc "$want")
    if [ $rc -eq 0 ] && [ "$lines" -eq 1 ] && [ "$other" -eq 0 ]; then
        passed=$((passed + 1))
    else
        echo "--- $label: exit $rc, $lines line(s) with '$want', $other other(s):"
        printf '%s\n' "$err"
        failed=$((failed + 1))
    fi
}
# The source is mprotect, which every kernel has (uffd needs 6.7).
knob "GC_DUNE_HOLD=abc" "gc-dune: GC_DUNE_HOLD=abc: not a number from 0 to 255; using 32" \
    GC_DUNE_BACKEND=mprotect GC_DUNE_HOLD=abc
knob "DIRTY_HOLD=abc" "dirty: DIRTY_HOLD=abc: not a number from 0 to 255; using 32" \
    GC_DUNE_BACKEND=mprotect DIRTY_HOLD=abc
knob "GC_DUNE_BACKEND=bogus" "gc-dune: GC_DUNE_BACKEND=bogus: not a backend" \
    GC_DUNE_BACKEND=bogus
knob "GC_DUNE_FEED=bogus" "gc-dune: GC_DUNE_FEED=bogus: not soft or manual; using soft" \
    GC_DUNE_BACKEND=mprotect GC_DUNE_FEED=bogus
knob "GC_DUNE_OPEN=abc" "gc-dune: GC_DUNE_OPEN=abc: not a number from 0 to 1048576; using 4" \
    GC_DUNE_BACKEND=mprotect GC_DUNE_OPEN=abc
knob "GC_DUNE_OPEN_PROBES=abc" "gc-dune: GC_DUNE_OPEN_PROBES=abc: not a number from 0 to 4096; using 64" \
    GC_DUNE_BACKEND=mprotect GC_DUNE_OPEN_PROBES=abc
knob "GC_DUNE_VERBOSE=loud" "gc-dune: GC_DUNE_VERBOSE=loud: not a number from 0 to 2; using 0" \
    GC_DUNE_BACKEND=mprotect GC_DUNE_VERBOSE=loud
# GC_DUNE_CHECK=1: the default reference, named in the verbose line: for
# mprotect, uffd where the kernel has it (6.7), else softdirty, else none
# (never mprotect itself).
echo "=== GC_DUNE_CHECK=1"
if [ $uffd_ok -eq 0 ]; then
    want="checked against uffd (the default reference)"
elif ./tests/dirty-usable softdirty >/dev/null; then
    want="checked against softdirty (the default reference)"
else
    want="checked against softdirty (the default reference), which is unusable"
fi
if GC_DUNE_BACKEND=mprotect GC_DUNE_CHECK=1 GC_DUNE_VERBOSE=1 $safety 2>&1 >/dev/null |
    grep -qF "$want"; then
    passed=$((passed + 1))
else
    echo "--- GC_DUNE_CHECK=1 with mprotect: no line with '$want'"
    failed=$((failed + 1))
fi
# A backend checked against itself is refused, in one line.
echo "=== GC_DUNE_CHECK=mprotect on mprotect"
if GC_DUNE_BACKEND=mprotect GC_DUNE_CHECK=mprotect $safety 2>&1 >/dev/null |
    grep -q "mprotect cannot be checked against itself"; then
    passed=$((passed + 1))
else
    echo "--- GC_DUNE_CHECK=mprotect on mprotect was not refused"
    failed=$((failed + 1))
fi

# auto by measured cost: the pick is one of the measured candidates, the
# cheapest of them by the figures in the verbose line (write + read-and-clear
# + clean read, per page); measured once, then from the cache; measured
# again when the machine's key changes.
pick_ok() { # $1: the verbose line; prints the pick if it is the cheapest measured
    # Stock libgc is the last candidate (unless GC_DUNE_CANDIDATES lists
    # them): picked exactly when no source costs under the limit the line
    # gives (STOCK_RATIO mprotect calls).  Fields: pick, limit, figures.
    printf '%s\n' "$1" |
        sed -n -e 's/^gc-dune: dirty pages from \([a-z]*\)[a-z ]* (auto by cost (measured[^:]*: \([^;]*\); stock libgc: [0-9.]* us per mprotect call, so a source must cost under \([0-9.]*\):.*/\1 \3 \2/p' \
            -e 't' -e 's/^gc-dune: dirty pages from \([a-z]*\) (auto by cost (measured[^:]*: \([^;)]*\)): .*/\1 1e9 \2/p' |
        awk '{ best = ""; for (i = 3; i < NF; i += 2) if ($(i + 1) != "unusable") {
                   split($(i + 1), f, "+"); c = f[1] + f[2] + f[3];
                   if (best == "" || c < min) { min = c; best = $i } }
               if (best == "") next
               if ($1 == "stock" && min > $2 + 0) print "stock"
               else if (best == $1 && min <= $2 + 0) print $1 }'
}
auto_run() {
    env GC_DUNE_VERBOSE=1 "$@" $safety 2>&1 >/dev/null | grep '^gc-dune: dirty pages from'
}
echo "=== auto by measured cost"
line=$(auto_run)
echo "$line"
first=$(pick_ok "$line")
line2=$(auto_run)
cache=$XDG_CACHE_HOME/libgc-dune/costs
# Only figures that include Dune are cached (the native ones take a few
# milliseconds to measure again).
cached_ok=yes
if [ $dune_rc -eq 0 ] && ! printf '%s\n' "$line2" | grep -q "measured (cached)"; then
    cached_ok=no
fi
if [ -n "$first" ] && [ "$(pick_ok "$line2")" = "$first" ] && [ $cached_ok = yes ]; then
    passed=$((passed + 1))
else
    echo "--- auto: not the cheapest measured candidate, or not cached: $line / $line2"
    failed=$((failed + 1))
fi
if [ $dune_rc -eq 0 ]; then
    echo "=== auto measures Dune's sources too, and a changed machine key re-measures"
    sed -i '1s/^/other machine: /' "$cache"
    line=$(auto_run)
    if printf '%s\n' "$line" | grep -q " pte [0-9.]*+.* kvm [0-9.]*+" &&
        ! printf '%s\n' "$line" | grep -q "(cached)" && ! grep -q "^other machine" "$cache"; then
        passed=$((passed + 1))
    else
        echo "--- auto with Dune: $line"
        failed=$((failed + 1))
    fi
fi
# Stock libgc's own barrier wins when every source costs more per page
# than STOCK_RATIO of its mprotect calls: libgc is left as is, and says so.
# (Not with a list of candidates: below, where stock would win, it names
# only mprotect and gets it.)
knob "GC_DUNE_STOCK_COST=0" "gc-dune: dirty pages from stock libgc (auto by cost" \
    GC_DUNE_STOCK_COST=0 GC_DUNE_VERBOSE=1
knob "GC_DUNE_STOCK_COST=abc" "gc-dune: GC_DUNE_STOCK_COST=abc: not a number of microseconds; measuring" \
    GC_DUNE_STOCK_COST=abc
echo "=== auto picks stock libgc when nothing beats it"
line=$(env GC_DUNE_VERBOSE=1 GC_DUNE_STOCK_COST=0 $safety 2>&1 >/dev/null | grep '^gc-dune: dirty pages from')
if [ "$(pick_ok "$line")" = stock ]; then
    passed=$((passed + 1))
else
    echo "--- stock: $line"
    failed=$((failed + 1))
fi
echo "=== auto with one candidate left"
line=$(auto_run DUNE_DISABLE=1 GC_DUNE_STOCK_COST=0 GC_DUNE_CANDIDATES=pte,kvm,mprotect)
if [ "$(pick_ok "$line")" = mprotect ] && ! printf '%s\n' "$line" | grep -q " uffd \| pte "; then
    passed=$((passed + 1))
else
    echo "--- one candidate: $line"
    failed=$((failed + 1))
fi

# gc-dune-run says when it cannot preload (a static program), and only then.
echo "=== gc-dune-run, static program"
err=$($launcher ./tests/check_gc_dune_static 2>&1 >/dev/null)
if printf '%s\n' "$err" | grep -q "statically linked: libgc-dune cannot be preloaded" &&
    [ -z "$($launcher $safety 2>&1 >/dev/null | grep 'cannot be preloaded')" ]; then
    passed=$((passed + 1))
else
    echo "--- static program: stderr was: $err"
    failed=$((failed + 1))
fi

# Inside Dune (two application threads, as natively).  The checked run is
# slow (inside the guest every write faults once per cycle), hence fewer
# steps.
if [ $dune_rc -eq 0 ]; then
    run "linked, Dune + kvm dirty log" GC_DUNE_BACKEND=kvm GC_DUNE_EXPECT=kvm $linked
    for b in kvm pte wp; do
        run "safety, Dune + $b checked against mprotect" GC_DUNE_BACKEND=$b GC_DUNE_EXPECT=$b \
            GC_DUNE_CHECK=mprotect $safety
    done
    # wp: two threads writing protected pages, checked; once with the
    # faults resolved by the guest's own #PF handler (the CPL0 path, taken
    # in CPL3 mode too with DUNE_WP_FAST=1).
    run "linked, Dune + wp, checked against mprotect" CHECK_GC_DUNE_STEPS=6000 \
        GC_DUNE_BACKEND=wp GC_DUNE_EXPECT=wp GC_DUNE_CHECK=mprotect $linked
    run "linked, Dune + wp, guest #PF path, checked against mprotect" CHECK_GC_DUNE_STEPS=6000 \
        DUNE_WP_FAST=1 GC_DUNE_BACKEND=wp GC_DUNE_EXPECT=wp GC_DUNE_CHECK=mprotect $linked
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
    dune_not_here "Dune runs"
else
    echo "=== Dune runs: FAIL ($dune_why)"
    failed=$((failed + 1))
fi

echo "check_gc_dune.sh: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] || exit 1
[ $skipped -eq 0 ] || exit 77
exit 0
