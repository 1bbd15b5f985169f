# Sourced (not run) by tests/gctest_dune.sh and tests/bdwgc_tests.sh, from
# the top build dir: get bdwgc's source, configure it like Debian's build
# for a matching config.h, and provide the run/skip bookkeeping both use.
#
#   bdwgc_name=NAME bdwgc_src=[BDWGC_SOURCE_DIR]; . "$(dirname "$0")/bdwgc_source.sh"
#
# (sh's `.` takes no arguments.)  Without a directory the Debian source is fetched with `apt-get source
# libgc` (needs a deb-src line; ./bootstrap adds one) into $GCTEST_WORK
# (default gctest-work/).  Exits 77 (skip) when the source cannot be had.
# Sets: top here libdir work src bld gc (libgc.so) bdwgc_cflags; run, skip,
# finish.  The caller may define summarize() (prints the lines of
# "$out" worth quoting after a run's verdict).

top=$(pwd)
here=$(cd "$(dirname "$0")" && pwd)
libdir=$top/gc-backend/.libs
work=${GCTEST_WORK:-$top/gctest-work}
src=$bdwgc_src
out=$work/out-$bdwgc_name.txt

mkdir -p "$work" || exit 1
# make -j check runs the scripts side by side: one fetch, one configure.
exec 9>"$work/.lock"
flock 9
if [ -z "$src" ]; then
    src=$(ls -d "$work"/libgc-*/ 2>/dev/null | head -1)
    if [ -z "$src" ]; then
        (cd "$work" && apt-get source -qq libgc >/dev/null 2>&1)
        src=$(ls -d "$work"/libgc-*/ 2>/dev/null | head -1)
    fi
    if [ -z "$src" ]; then
        echo "SKIP: no bdwgc source (apt-get source libgc failed: enable deb-src, or pass a directory)"
        exit 77
    fi
fi
[ -f "$src/tests/test.c" ] || { echo "SKIP: $src/tests/test.c not found"; exit 77; }
src=$(cd "$src" && pwd)

bld=$work/build
if [ ! -f "$bld/include/config.h" ]; then
    mkdir -p "$bld" && (cd "$bld" && "$src/configure" -q --enable-shared --disable-static \
        --with-libatomic-ops=none --disable-dependency-tracking) >"$work/configure.log" 2>&1 ||
        { echo "FAIL: configuring $src (see $work/configure.log)"; exit 1; }
fi
flock -u 9
exec 9>&-

bdwgc_cflags="-DHAVE_CONFIG_H -I$bld/include -I$src/include -DGC_PTHREAD_START_STANDALONE -g -O2
        -fno-strict-aliasing -include $bld/include/config.h"
gc=$(pkg-config --variable=libdir bdw-gc)/libgc.so

passed=0 failed=0

summarize() {
    tail -3 "$out"
}

# run pass|fail LABEL [VAR=value ...] PROGRAM [ARGS]: one run, with
# libgc-dune's build dir on the library path; prints ok or UNEXPECTED.
# RUN_TIMEOUT (seconds, default 300) bounds it.
run() {
    want=$1 label=$2
    shift 2
    t0=$(date +%s)
    LD_LIBRARY_PATH=$libdir${RUN_LIBPATH:+:$RUN_LIBPATH} timeout "${RUN_TIMEOUT:-300}" \
        env "$@" >"$out" 2>&1
    rc=$?
    secs=$(($(date +%s) - t0))
    summary=$(summarize | tr '\n' ' ')
    if { [ "$want" = pass ] && [ $rc -eq 0 ]; } || { [ "$want" = fail ] && [ $rc -ne 0 ]; }; then
        passed=$((passed + 1)); verdict=ok
    else
        failed=$((failed + 1)); verdict=UNEXPECTED
        cp "$out" "$work/failed-$bdwgc_name-$passed-$failed.txt"
    fi
    echo "$verdict: $label (exit $rc, expected $want, ${secs} s) $summary"
}

skip() {
    echo "SKIP: $*"
}

finish() {
    echo "$bdwgc_name: $passed passed, $failed failed"
    [ $failed -eq 0 ]
}
