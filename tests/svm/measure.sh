#!/bin/sh
# Run inside the SVM guest (make bench-svm), from the top build dir: the
# hardware path's event counts and mode-to-mode ratios, labelled "SVM under
# emulation" -- absolute times under TCG mean nothing.
#
#   1. tests/svm/kvm-counts: KVM exits and page faults per written page,
#      per dirty source, from KVM's own statistics;
#   2. bench/dune-micro -q: syscall/exit/fault counts, TLB flush and
#      shootdown (read the counts and the ratios between rows);
#   3. bench/dirty-micro -d at small sizes: first-write cost per backend
#      relative to mprotect;
#   4. the GC suite at its quick sizes, one run, a few workloads and modes
#      (SVM_BENCH_WORKLOADS, SVM_BENCH_MODES), for the dune/mprotect ratios.
# Output under SVM_LOG_DIR (default svm-logs/measure).
out=${SVM_LOG_DIR:-svm-logs/measure}
mkdir -p "$out" || exit 1
echo "measure: SVM under emulation, MAXPHYADDR" \
    "$(sed -n 's/^address sizes[^:]*: \([0-9]*\) bits physical.*/\1/p' /proc/cpuinfo | head -1)" \
    "bits, kernel $(uname -r)"
rc=0
step() {
    name=$1
    shift
    echo "=== $name: $*"
    "$@" >"$out/$name.txt" 2>&1 </dev/null
    r=$?
    cat "$out/$name.txt"
    [ $r -eq 0 ] || { echo "=== $name: exit $r"; rc=1; }
}
step kvm-counts ./tests/svm/kvm-counts -n "${SVM_COUNT_PAGES:-2048}" -r 3
step dune-micro ./bench/dune-micro -q
step dirty-micro ./bench/dirty-micro -d -b pte,kvm,wp,uffd,mprotect -s 16 -w 256 -r 2 -R 1
step gc-suite env RUNS=1 QUICK=1 sh bench/run-suite --no-charts --out "$out/suite" \
    --workloads "${SVM_BENCH_WORKLOADS:-gcbench list}" \
    --modes "${SVM_BENCH_MODES:-full mprotect uffd dune dune-kvm dune-pte dune-wp}"
exit $rc
