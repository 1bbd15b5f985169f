#!/bin/sh
# Our libraries keep their writable data small.  Boehm's libgc scans the
# writable segments (data and bss) of every loaded library as roots at
# every collection, and sizes the interval between collections by the
# roots' size: libgc-dune and libdune once held 4.3 MB of tables there,
# and Guile then collected 50 times instead of 119, on a heap a third
# larger, scanning those tables each time.  Large tables belong in mapped
# memory (dune/table.c).  Fails when a library's writable PT_LOAD
# segments exceed LIMIT_KB.  Run from the top build directory.
LIMIT_KB=${LIMIT_KB:-64}
failed=0 passed=0
command -v readelf >/dev/null 2>&1 || { echo "SKIP: no readelf (binutils)"; exit 77; }

# Bytes of writable loadable segments (what libgc registers as roots).
writable() {
    n=0
    for sz in $(readelf -lW "$1" | awk '$1 == "LOAD" && $7 ~ /W/ { print $6 }'); do
        n=$((n + $(printf '%d' "$sz")))
    done
    echo "$n"
}

for lib in gc-backend/.libs/libgc-dune.so dune/.libs/libdune.so dune/.libs/libdune-preload.so; do
    if [ ! -f "$lib" ]; then
        case $lib in dune/*) [ -f config.h ] && ! grep -q '^#define HAVE_DUNE 1' config.h && continue ;; esac
        echo "FAIL: $lib not built"
        failed=$((failed + 1))
        continue
    fi
    n=$(writable "$lib")
    if [ "$n" -le $((LIMIT_KB * 1024)) ]; then
        echo "PASS: $lib: $((n / 1024)) KiB of writable data and bss (limit $LIMIT_KB KiB)"
        passed=$((passed + 1))
    else
        echo "FAIL: $lib: $((n / 1024)) KiB of writable data and bss, over $LIMIT_KB KiB: every"
        echo "      collection of a Boehm program scans it as roots; map large tables instead"
        echo "      (dune/table.c).  Largest:"
        nm -S --size-sort "$lib" | awk '$3 ~ /^[bBdD]$/' | tail -5 | sed 's/^/        /'
        failed=$((failed + 1))
    fi
done
echo "check_roots.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
