#!/bin/sh
# The part of check-svm that `make check` runs: boot the SVM guest at
# SVM_SMOKE_BITS physical-address bits (default 39, an Intel client part,
# the narrowest common width) and run one Dune suite, check_dune, inside.
# Skips (77) with the reason when QEMU or KVM in the guest cannot run.
# It takes 15-60 s; the bounds below only stop a hang: the suite inside
# gets SVM_SUITE_TIMEOUT (default 600 s), the whole guest
# SVM_SMOKE_TIMEOUT (default 900 s).  On failure the suite's log is shown.
here=$(cd "$(dirname "$0")" && pwd)
b=${SVM_SMOKE_BITS:-39}
logs=svm-logs/smoke-$b
rm -rf "$logs" && mkdir -p "$logs" || exit 1
echo "svm smoke: phys-bits=$b, suite check_dune (logs in $logs)"
"$here/guest.sh" -b "$b" -t "${SVM_SMOKE_TIMEOUT:-900}" SVM_LOG_DIR="$logs" \
    SVM_SUITE_TIMEOUT="${SVM_SUITE_TIMEOUT:-600}" sh "$here/suites.sh" check_dune
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    for f in "$logs"/*.log; do
        [ -f "$f" ] || continue
        echo "---- last lines of $f"
        tail -n 25 "$f"
    done
fi
exit "$rc"
