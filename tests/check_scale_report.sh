#!/bin/sh
# bench/scale-report.awk (bench/run-scale's report) on made-up records:
# the growth per GiB is the least-squares slope of the 1-thread points, and
# a checksum that differs between sources at one point fails the report.
src=${srcdir:-.}
awkf=$src/bench/scale-report.awk
tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_scale_report.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
check() { if eval "$2"; then echo "PASS: $1"; passed=$((passed + 1));
          else echo "FAIL: $1"; failed=$((failed + 1)); fi; }

# rec SOURCE MIB THREADS CHECKSUM WALL PAUSE_TOTAL HEAP_MIB [READS READ_MS]
# (CPU time = half the wall time: user_s + sys_s)
rec() {
    printf 'ok\t%s\t%s\t%s\tchecksum=%s wall_s=%s user_s=%s sys_s=%s gcs=10 pause_total_ms=%s pauses=10 pause_max_ms=20 heap_peak_kb=%s%s\n' \
        "$1" "$2" "$3" "$4" "$5" "$(echo "$5" | awk '{ print $1 / 4 }')" "$(echo "$5" | awk '{ print $1 / 4 }')" \
        "$6" $(($7 * 1024)) "${8:+ dirty_reads=$8 dirty_read_ms=$9}"
}
report() { # TSV -> stdout, status
    awk -F'\t' -v sources="full uffd" -v tmib=64 -v header=test -v md="$tmp/md" \
        -v csv="$tmp/csv" -v datadir="$tmp" -f "$awkf" "$1"
}

# Linear in the heap: 1 GiB more live heap costs 4 s (2 s CPU), 40 ms per collection;
# uffd's read grows from 1 to 5 ms per read over 2 GiB more heap: 2 ms/GiB.
{
    rec full 64 1 0x1 1 100 128
    rec full 1088 1 0x2 5 500 2176
    rec full 64 4 0x9 2 100 128
    rec uffd 64 1 0x1 1 100 128 10 10
    rec uffd 1088 1 0x2 5 500 2176 10 50
} >"$tmp/good.tsv"
report "$tmp/good.tsv" >"$tmp/good.out"
rc=$?
check "consistent records: exit 0" "[ $rc -eq 0 ]"
check "wall and per-collection slopes" "grep -q '^| full | 64-1088 | 4.00 | 2.00 | 40.0 | 0.0 | - |' '$tmp/md'"
check "read-and-clear slope per GiB of heap" "grep -q '^| uffd | 64-1088 | 4.00 | 2.00 | 40.0 | 0.0 | 2.00 |' '$tmp/md'"
check "thread points only in the threads chart" \
    "[ \"\$(cat '$tmp/scale-threads-full.dat' | wc -l)\" -eq 2 ] && [ \"\$(wc -l <'$tmp/scale-heap-full.dat')\" -eq 2 ]"

sed 's/^\(ok\tuffd\t1088\t1\tchecksum=\)0x2/\10x3/' "$tmp/good.tsv" >"$tmp/bad.tsv"
report "$tmp/bad.tsv" >"$tmp/bad.out"
rc=$?
check "checksum differing between sources: exit 1" "[ $rc -eq 1 ]"
check "... and the row says so" "grep -q '| uffd | 1088 | 1 | FAIL: checksum 0x3 differs from full' '$tmp/md'"

{ cat "$tmp/good.tsv"; printf 'limit\tfull\t2048\t1\tstock libgc aborts\n'; } >"$tmp/limit.tsv"
report "$tmp/limit.tsv" >/dev/null
rc=$?
check "a known stock-libgc limit is reported, not failed" \
    "[ $rc -eq 0 ] && grep -q '^| full | 2048 | 1 | limit: stock libgc aborts |' '$tmp/md'"

printf 'fail\tfull\t64\t1\texit status 1\n' >"$tmp/fail.tsv"
report "$tmp/fail.tsv" >/dev/null
rc=$?
check "a failed run: exit 1" "[ $rc -eq 1 ]"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
