# Sourced by the shell suites (from the top build dir): the same test as
# tests/dune_test.h for whether Dune can be used here.
#
#   . "$srcdir/tests/dune_usable.sh"; dune_usable; rc=$?
#
# rc 0: usable.  77: cannot be used here (DUNE_DISABLE set, no read-write
# /dev/kvm, built without Dune): skip the Dune runs and say why.  1: /dev/kvm
# is usable but dune_enter fails: the suite must fail.  $dune_why holds the
# reason.
# dune_not_here WHAT: dune_usable returned 77.  Says why WHAT does not run
# here, on one line.  The suite's other runs still count (not a skip of the
# suite); `make check` runs the Dune parts of the suites that need them
# inside the emulated-SVM guest where this machine cannot (tests/svm/*.dune).
dune_not_here() {
    echo "SKIP (not counted): $1: $dune_why"
}

dune_usable() {
    if [ ! -x ./tests/dune-usable ]; then
        dune_why="built without Dune"
        return 77
    fi
    dune_why=$(./tests/dune-usable)
    return $?
}
