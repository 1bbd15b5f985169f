#!/bin/sh
# Run inside the SVM guest (tests/svm/guest.sh), from the top build dir:
# the Dune, dirty-tracking and libgc-dune suites, one after another, each
# with its counts on one line ("svm-suite: NAME: ... PASS|FAIL"), then a
# total.  Fails if any suite fails.
#
#   tests/svm/suites.sh [SUITE ...]
#
# SUITEs: check_dune check_dune_run check_dune_threads check_dune_tlb
# check_dune_mode check_dune_signals check_dune_mem check_dune_fds
# check_dune_gdb check_dirty check_gc_dune gctest check_clients (default:
# all; check_clients runs Guile and ECL with the Dune sources only).  Under emulation they
# run 10-50 times slower than natively, so the two libgc-dune scripts run
# their quick variants: check_gc_dune.sh with CHECK_GC_DUNE_STEPS (default
# here 4000) and gctest_dune.sh without its slow checked runs.
# SVM_SUITE_TIMEOUT (seconds, default 1500) bounds each suite; Check's own
# per-test timeouts are stretched (CK_TIMEOUT_MULTIPLIER, default 10 here).
# A suite that skips (exit 77) is reported as skipped with its reason.
all="check_dune check_dune_run check_dune_threads check_dune_tlb check_dune_mode check_dune_signals check_dune_mem check_dune_fds check_dune_gdb check_dirty check_gc_dune gctest check_clients"
[ $# -gt 0 ] || set -- $all
tmo=${SVM_SUITE_TIMEOUT:-1500}
# Check's per-test timeouts are set for native speed.
CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-10}
export CK_TIMEOUT_MULTIPLIER
log=${SVM_LOG_DIR:-svm-logs}
mkdir -p "$log" || exit 1
bits=$(sed -n 's/^address sizes[^:]*: \([0-9]*\) bits physical.*/\1/p' /proc/cpuinfo | head -1)
echo "svm-suites: MAXPHYADDR $bits bits, $(nproc) CPUs, DUNE_MODE=${DUNE_MODE:-auto}, kernel $(uname -r)"
passed=0 failed=0 skipped=0

# The counts a suite printed: a shell suite's total (its runs print Check
# summaries of their own), else Check's summary.
counts() {
    c=$(sed -n 's/^[a-z_.]*: \([0-9]* passed, [0-9]* failed.*\)/\1/p' "$1" | tail -1)
    [ -n "$c" ] || c=$(sed -n 's/^[0-9]*%: \(Checks: .*\)/\1/p' "$1" | tail -1)
    echo "${c:-no counts}"
}

suite() {
    name=$1
    shift
    start=$(date +%s)
    timeout -k 10 "$tmo" env "$@" >"$log/$name.log" 2>&1 </dev/null
    rc=$?
    secs=$(($(date +%s) - start))
    case $rc in
    0) verdict=PASS passed=$((passed + 1)) ;;
    124 | 137) verdict="FAIL (timed out after $tmo s)" failed=$((failed + 1)) ;;
    77) verdict="SKIP ($(grep -m1 -i skip "$log/$name.log"))" skipped=$((skipped + 1)) ;;
    *) verdict="FAIL (exit $rc)" failed=$((failed + 1)) ;;
    esac
    echo "svm-suite: $name: $(counts "$log/$name.log"), ${secs} s emulated: $verdict"
    # Skipped cases, failures and Dune fallbacks are worth seeing here.
    grep -E '^SKIP|:[EF]:|running natively|dune: .*(refused|cannot)|Test failed|UNEXPECTED|^FAIL' \
        "$log/$name.log" | head -20 | sed 's/^/    /'
}

for s in "$@"; do
    case $s in
    check_dune | check_dune_run | check_dune_threads | check_dune_tlb | check_dune_mode | \
        check_dune_signals | check_dune_mem | check_dune_fds | check_dirty)
        suite "$s" "./tests/$s" ;;
    check_gc_dune)
        suite "$s" CHECK_GC_DUNE_STEPS="${CHECK_GC_DUNE_STEPS:-4000}" sh tests/check_gc_dune.sh ;;
    check_dune_gdb)
        suite "$s" sh tests/check_dune_gdb.sh ;;
    check_clients)
        suite "$s" CHECK_CLIENTS_BACKENDS="pte kvm wp" sh tests/check_clients.sh ;;
    gctest)
        suite "$s" GCTEST_SLOW=0 RUN_TIMEOUT="$tmo" sh tests/gctest_dune.sh ;;
    *)
        echo "svm-suites: unknown suite '$s' (known: $all)"
        failed=$((failed + 1)) ;;
    esac
done
echo "svm-suites: $passed passed, $failed failed, $skipped skipped (logs in $log)"
[ "$failed" -eq 0 ]
