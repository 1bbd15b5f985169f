#!/bin/sh
# The test driver (LOG_COMPILER) of tests/svm/dune/*.dune: one Dune suite,
# where it can run.  Each .dune file sets `suite` (a name tests/svm/suites.sh
# knows) and `native`: the command that runs the same suite on this machine,
# or empty when the suite's native test (its other automake test) already
# ran its Dune parts wherever Dune works here.  It may set `kernel`, a
# Debian kernel package for the guest (SVM_KERNEL_PKG, unpacked into its own
# $SVM_WORK-PACKAGE): linux-image-6.12-amd64 for the suites that run uffd
# (Linux 6.7's asynchronous write protection) beside the Dune sources.
#
# Where Dune can be used on this machine (tests/dune_usable.sh) the suite
# runs natively, or is a skip saying which native test ran it.  Where it
# cannot (no /dev/kvm, as on some of our hosts) it runs inside the
# emulated-SVM guest (tests/svm/guest.sh) at SVM_DUNE_BITS physical-address
# bits (default 39), and its result is this test's: PASS or FAIL.  Only
# where neither works is it a skip, with both reasons.
#   SVM_SUITE_TIMEOUT  seconds for the suite inside (default 1500)
here=$(cd "$(dirname "$0")" && pwd)
srcdir=${srcdir:-.}
file=$1
[ -r "$file" ] || { echo "FAIL: $file: no such suite file"; exit 1; }
suite= native= kernel=
. "$file"
[ -n "$suite" ] || { echo "FAIL: $file sets no suite"; exit 1; }
. "$srcdir/tests/dune_usable.sh"
dune_usable
rc=$?
case $rc in
0)
    if [ -n "$native" ]; then
        echo "dune-suite: $suite: Dune works here: natively"
        exec sh -c "$native"
    fi
    echo "SKIP: $suite: Dune works here: its native test ran its Dune runs"
    exit 77 ;;
77) ;;
*) echo "FAIL: $suite: Dune should work here and does not: $dune_why"; exit 1 ;;
esac
# gctest's source comes from `apt-get source`, which the guest (no network)
# cannot do: fetch and configure it here first (as check-svm.sh does).
[ "$suite" != gctest ] ||
    (bdwgc_name=dune-suite bdwgc_src=${BDWGC_SRC:-}; . "$srcdir/tests/bdwgc_source.sh") >/dev/null 2>&1
if [ -n "$kernel" ]; then
    SVM_KERNEL_PKG=$kernel SVM_WORK=${SVM_WORK:-$(pwd)/svm-work}-${kernel#linux-image-}
    export SVM_KERNEL_PKG SVM_WORK
fi
b=${SVM_DUNE_BITS:-39}
logs=svm-logs/dune-$b/$suite
rm -rf "$logs" && mkdir -p "$logs" || exit 1
echo "dune-suite: $suite: Dune cannot run here ($dune_why): inside the SVM guest, phys-bits=$b${kernel:+, $kernel} (logs in $logs)"
"$here/guest.sh" -b "$b" -t $((${SVM_SUITE_TIMEOUT:-1500} + 300)) SVM_LOG_DIR="$logs" \
    SVM_SUITE_TIMEOUT="${SVM_SUITE_TIMEOUT:-1500}" sh "$here/suites.sh" "$suite"
rc=$?
# The suite's own log, whole: its counts and any failure are read here.
for f in "$logs"/*.log; do
    [ -f "$f" ] || continue
    echo "---- $f"
    cat "$f"
done
if [ "$rc" -eq 77 ]; then
    echo "SKIP: $suite: Dune cannot run here ($dune_why) and the SVM guest cannot either (above)"
fi
exit "$rc"
