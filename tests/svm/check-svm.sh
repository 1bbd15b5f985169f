#!/bin/sh
# make check-svm: the Dune, dirty-tracking and libgc-dune suites inside a
# Linux guest with SVM and nested paging (QEMU TCG), once per guest
# physical-address width.  Run from the top build dir.
#
#   SVM_BITS      widths to run (default "48 46 39")
#   SVM_SUITES    suites (default: all of tests/svm/suites.sh)
#   SVM_TIMEOUT   seconds per boot before the guest counts as hung (3600)
#   SVM_WORK      kernel, initramfs and job files (default ./svm-work)
#   SVM_MEM       guest memory (default 2G)
#   DUNE_MODE     passed to the guest when set
#
# Each suite's counts are printed per width; logs go to svm-logs/bits-N/.
# Exit 0 if all passed, 1 if any failed or hung, 77 (with the reason) if
# the guest cannot run here at all.
here=$(cd "$(dirname "$0")" && pwd)
bits_list=${SVM_BITS:-48 46 39}
tmo=${SVM_TIMEOUT:-3600}
set -- ${SVM_SUITES:-}
pass=0 fail=0 skip=0 summary=

# gctest's source comes from `apt-get source`, which the guest (no network)
# cannot do: fetch and configure it here first.  Failure only makes the
# guest's gctest run skip, loudly.
(bdwgc_name=check-svm bdwgc_src=${BDWGC_SRC:-}; . "$here/../bdwgc_source.sh") >/dev/null 2>&1

for b in $bits_list; do
    logs=svm-logs/bits-$b
    rm -rf "$logs" && mkdir -p "$logs" || exit 1
    echo "=== check-svm: phys-bits=$b"
    # The console goes to the log and here; the guest's exit status comes
    # back through guest.sh's status file.
    { "$here/guest.sh" -b "$b" -t "$tmo" SVM_LOG_DIR="$logs" ${DUNE_MODE:+DUNE_MODE=$DUNE_MODE} \
        sh "$here/suites.sh" "$@"; echo $? >"$logs/rc"; } | tee "$logs/console.log"
    rc=$(cat "$logs/rc")
    case $rc in
    0) pass=$((pass + 1)) v=PASS ;;
    77) skip=$((skip + 1)) v="SKIP ($(grep -m1 '^SKIP' "$logs/console.log"))" ;;
    *) fail=$((fail + 1)) v="FAIL (exit $rc)" ;;
    esac
    summary="$summary
phys-bits=$b: $v
$(grep '^svm-suite:' "$logs/console.log" | sed 's/^svm-suite: /    /')"
done
echo "=== check-svm summary (SVM under emulation)$summary"
echo "check-svm: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ] || exit 1
[ $pass -gt 0 ] || exit 77
exit 0
