#!/bin/sh
# A program's own SIGSEGV handler, installed after libgc started, on an
# alternate stack (as Nix's stack-overflow handler): tests/check_gc_sigchain.c
# under gc-dune-run, once per native dirty source and in checking mode.
# libgc-dune's mprotect handler must stay first and pass the program every
# fault that is not its own, with the program's flags.  A source the kernel
# lacks (uffd before Linux 6.7, softdirty) is said in one line, not counted.
# Run from the top build directory (as `make check` does).
prog=./tests/check_gc_sigchain
launcher=./gc-backend/gc-dune-run
failed=0 passed=0
XDG_CACHE_HOME=$(mktemp -d)
export XDG_CACHE_HOME
trap 'rm -rf "$XDG_CACHE_HOME"' EXIT

run() {
    label=$1
    shift
    echo "=== $label"
    env "$@" $launcher $prog
    rc=$?
    echo "--- $label: exit $rc"
    if [ $rc -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
usable() {
    why=$(./tests/dirty-usable "$1")
    rc=$?
    [ $rc -eq 0 ] || echo "SKIP (not counted): $1: $why"
    return $rc
}

run "mprotect" GC_DUNE_BACKEND=mprotect
# Stock libgc: its own mprotect dirty bits have the same problem, natively
# (the handler replaces libgc's): run without incremental mode, for the
# pass-through.
run "off (stock libgc, not incremental)" GC_DUNE_BACKEND=off SIGCHAIN_NO_INCREMENTAL=1
run "mprotect, manual VDB" GC_DUNE_BACKEND=mprotect GC_DUNE_FEED=manual
usable uffd && run "uffd" GC_DUNE_BACKEND=uffd
usable softdirty && run "softdirty" GC_DUNE_BACKEND=softdirty
run "mprotect, GC_DUNE_CHECK=1" GC_DUNE_BACKEND=mprotect GC_DUNE_CHECK=1
for ref in uffd softdirty; do
    usable $ref >/dev/null &&
        run "$ref, GC_DUNE_CHECK=mprotect" GC_DUNE_BACKEND=$ref GC_DUNE_CHECK=mprotect
done

echo "check_gc_sigchain.sh: $passed passed, $failed failed"
[ $failed -eq 0 ] || exit 1
[ $passed -gt 0 ] || { echo "no run"; exit 77; }
exit 0
