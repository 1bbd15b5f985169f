# Sourced (not run) by tests/gctest_dune.sh and tests/bdwgc_tests.sh, from
# the top build dir: get bdwgc's source, configure it like Debian's build
# for a matching config.h, and provide the run/skip bookkeeping both use.
# Works from a VPATH build: the source tree is only read, the work goes to
# the build dir.
#
#   bdwgc_name=NAME bdwgc_src=[BDWGC_SOURCE_DIR]; . "$(dirname "$0")/bdwgc_source.sh"
#
# (sh's `.` takes no arguments.)  Without a directory the Debian source is fetched with `apt-get source
# libgc` (needs a deb-src line; ./bootstrap adds one) into $GCTEST_WORK
# (default gctest-work/).  Exits 77 (skip) when the source cannot be had.
# Sets: top here libdir work src bld gc (libgc.so) bdwgc_cflags; run, skip,
# dune_runs (true when the Dune runs are to be made), finish.  The caller may define summarize() (prints the lines of
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

# The main process's totals lines (GC_DUNE_VERBOSE=1): a forked child's
# "[forked child N]" line, its backend line and its checking line, if any,
# are left out.
main_totals() {
    awk '/\[forked child/ { skip = 2; next }
         skip == 2 && /^gc-dune: backend / { skip = 1; next }
         skip == 1 && /^gc-dune: checking / { skip = 0; next }
         { if (!/^gc-dune: backend /) skip = 0 }
         /^gc-dune: (backend|checking)/' "$out"
}

# verify VAR=value... : for a run that passed, did it run with what it
# asked for?  With GC_DUNE_VERBOSE=1: GC_DUNE_BACKEND=name must be the
# backend the totals line names ("(in Dune)" for pte and kvm), and without
# it some backend other than "off"; GC_DUNE_CHECK=ref must have compared
# collects and missed none.  With DUNE_VERBOSE=1 the program must have run
# inside Dune.  Prints what is wrong, or nothing.
verify() {
    v_backend= v_check= v_gc= v_dune=
    for a; do
        case $a in
        GC_DUNE_BACKEND=*) v_backend=${a#*=} ;;
        GC_DUNE_CHECK=*) v_check=${a#*=} ;;
        GC_DUNE_VERBOSE=1) v_gc=1 ;;
        DUNE_VERBOSE=1) v_dune=1 ;;
        esac
    done
    if [ -n "$v_gc" ]; then
        totals=$(main_totals | grep '^gc-dune: backend ' | tail -1)
        case $v_backend in
        pte | kvm) pat="gc-dune: backend $v_backend (in Dune),*" ;;
        ?*) pat="gc-dune: backend $v_backend,*" ;;
        *) pat="gc-dune: backend *,*" ;;
        esac
        # shellcheck disable=SC2254
        case $totals in
        "gc-dune: backend off"*) echo "libgc-dune inactive: $totals" ;;
        $pat) ;;
        *) echo "wanted backend ${v_backend:-auto}, got: ${totals:-no totals line}" ;;
        esac
        if [ -n "$v_check" ] && ! main_totals | grep -q '^gc-dune: checking mode: .*[^0-9]0 missed'; then
            echo "checking against $v_check did not report 0 missed: $(main_totals | grep checking | tail -1)"
        fi
    fi
    if [ -n "$v_dune" ] && ! grep -q '^dune: mode=cpl[03] ' "$out"; then
        echo "did not run inside Dune: $(grep '^dune' "$out" | tail -1)"
    fi
}

# run pass|fail LABEL [VAR=value ...] PROGRAM [ARGS]: one run, with
# libgc-dune's build dir on the library path; prints ok or UNEXPECTED.
# A passing run must also have run as asked (verify).  RUN_TIMEOUT
# (seconds, default 300) bounds it.
run() {
    want=$1 label=$2
    shift 2
    t0=$(date +%s)
    # stderr apart, then appended: the program's stdout, fully buffered into
    # a file, is written in 4 KiB pieces, and one written after libgc-dune's
    # exit-time totals could land in the middle of their line.
    LD_LIBRARY_PATH=$libdir${RUN_LIBPATH:+:$RUN_LIBPATH} timeout "${RUN_TIMEOUT:-300}" \
        env "$@" >"$out" 2>"$out.err"
    rc=$?
    cat "$out.err" >>"$out"
    rm -f "$out.err"
    secs=$(($(date +%s) - t0))
    summary=$(summarize | tr '\n' ' ')
    wrong=
    [ $rc -eq 0 ] && wrong=$(verify "$@")
    if { [ "$want" = pass ] && [ $rc -eq 0 ] && [ -z "$wrong" ]; } ||
        { [ "$want" = fail ] && [ $rc -ne 0 ]; }; then
        passed=$((passed + 1)); verdict=ok
    else
        failed=$((failed + 1)); verdict=UNEXPECTED
        cp "$out" "$work/failed-$bdwgc_name-$passed-$failed.txt"
    fi
    echo "$verdict: $label (exit $rc, expected $want, ${secs} s) $summary"
    [ -z "$wrong" ] || echo "  $wrong"
}

# Dune runs happen when tests/dune_usable.sh says Dune can be used here
# (dune_rc 0); when it cannot (77) one line says so and the other runs
# still count; when it should and cannot (1) the suite fails.
. "$here/dune_usable.sh"
dune_usable
dune_rc=$?
skipped=0
dune_runs() {
    case $dune_rc in
    0) return 0 ;;
    77) dune_not_here "Dune runs" ;;
    *) echo "FAIL: Dune runs: $dune_why"; failed=$((failed + 1)) ;;
    esac
    return 1
}

skip() {
    echo "SKIP: $*"
}

finish() {
    echo "$bdwgc_name: $passed passed, $failed failed, $skipped skipped"
    [ $failed -eq 0 ] || exit 1
    [ $skipped -eq 0 ] || exit 77
    exit 0
}
