#!/bin/sh
# The shared libraries export exactly their documented API: what the
# public headers declare, plus the symbols libgc-dune must export to
# interpose libgc's and libc's (the definitions marked API in
# gc-backend/*.c) and the benchmark hook gc_dune_bench_fields.  Fails on a
# symbol exported but not documented (a leak of the core's internals) and on
# one documented but not exported (a version script that fell behind).
# Run from the top build directory, as `make check` does.
srcdir=${srcdir:-.}
failed=0 passed=0 skipped=0
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

exports() {
    nm -D --defined-only "$1" | awk '$2 ~ /^[TtWwDdBbRrVvi]$/ { print $3 }' | sed 's/@.*//' | sort -u
}

# Function names declared at the start of a line in a header (comments and
# typedefs of function pointers do not match).
declared() {
    sed -n 's/^[A-Za-z_].*[ *]\([a-z_][a-z0-9_]*\)(.*/\1/p' "$1" | grep -v '^typedef' | sort -u
}

check() {
    label=$1 lib=$2 expected=$3
    if [ ! -f "$lib" ]; then
        echo "FAIL: $label: $lib not built"
        failed=$((failed + 1))
        return
    fi
    exports "$lib" >"$tmp/actual"
    sort -u "$expected" >"$tmp/expected"
    if cmp -s "$tmp/expected" "$tmp/actual"; then
        echo "PASS: $label: $(wc -l <"$tmp/actual") symbols, as documented"
        passed=$((passed + 1))
    else
        echo "FAIL: $label: exports differ from the documented API (- documented only, + exported only):"
        diff "$tmp/expected" "$tmp/actual" | sed -n 's/^</  -/p; s/^>/  +/p'
        failed=$((failed + 1))
    fi
}

if [ -f dune/.libs/libdune.so ] || [ -f dune/libdune.la ]; then
    grep 'DUNE_API' "$srcdir/dune/include/dune.h" | grep -v define |
        sed 's/.*[ *]\(dune_[a-z0-9_]*\)(.*/\1/' >"$tmp/dune"
    check libdune dune/.libs/libdune.so "$tmp/dune"
    echo gc_dune_bench_fields >"$tmp/preload"
    check libdune-preload dune/.libs/libdune-preload.so "$tmp/preload"
else
    echo "SKIP: libdune, libdune-preload: configured without Dune"
    skipped=$((skipped + 1))
fi

if [ -f gc-backend/libgc-dune.la ]; then
    { declared "$srcdir/gc-backend/gc_dune.h"; declared "$srcdir/gc-backend/dirty.h"
      cat "$srcdir"/gc-backend/*.c | sed -n 's/^API .*[ *]\([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p'
      echo gc_dune_bench_fields; } >"$tmp/gcdune"
    check libgc-dune gc-backend/.libs/libgc-dune.so "$tmp/gcdune"
else
    echo "SKIP: libgc-dune: configured without bdw-gc"
    skipped=$((skipped + 1))
fi

echo "check_exports.sh: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] || exit 1
[ $passed -gt 0 ] || exit 77
exit 0
