#!/bin/sh
# The part of check-svm that `make check` runs: boot the SVM guest at
# SVM_SMOKE_BITS physical-address bits (default 39, an Intel client part,
# the narrowest common width) and run one Dune suite, check_dune, inside.
# Skips (77) with the reason when QEMU or KVM in the guest cannot run.
here=$(cd "$(dirname "$0")" && pwd)
b=${SVM_SMOKE_BITS:-39}
logs=svm-logs/smoke-$b
rm -rf "$logs" && mkdir -p "$logs" || exit 1
echo "svm smoke: phys-bits=$b, suite check_dune (logs in $logs)"
exec "$here/guest.sh" -b "$b" -t "${SVM_SMOKE_TIMEOUT:-1800}" SVM_LOG_DIR="$logs" \
    sh "$here/suites.sh" check_dune
