#!/bin/sh
# gdb on a program inside Dune, and gdb itself inside Dune: the same
# transcript as natively.  Dune steps aside for a traced thread (dune/trace.c):
# at PTRACE_TRACEME, and at an int3 while a tracer is attached.
# Run from the top build directory (as `make check` does).

target=./tests/gdb_target
dunerun=./dune/dune-run
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

if ! command -v gdb >/dev/null 2>&1; then
    echo "SKIP: gdb is not installed (./bootstrap installs it)"
    exit 77
fi
# The one test of whether Dune can be used here (tests/dune_usable.sh).
. "${srcdir:-.}/tests/dune_usable.sh"
dune_usable
case $? in
0) ;;
77) echo "SKIP: $dune_why"; exit 77 ;;
*) echo "FAIL: Dune should work here and does not: $dune_why"; exit 1 ;;
esac

ok() { echo "PASS: $1"; passed=$((passed + 1)); }
ko() { echo "FAIL: $1"; failed=$((failed + 1)); }

# From the first stop at the breakpoint on; addresses and pids vary.  A
# process with a VM has one more thread (KVM's own worker, a kernel task in
# the thread group), so gdb names the thread that stopped.
normalize() {
    sed -e 's/^Thread [0-9]* "[^"]*" hit Breakpoint/Breakpoint/' "$1" |
        sed -n '/^Breakpoint 1, /,$p' |
        grep -v '^IN_DUNE' |
        sed -e 's/0x[0-9a-f]*/ADDR/g' -e 's/process [0-9]*/process PID/g' \
            -e 's/square (x=[0-9]*)/square (x=N)/' -e 's/\$[0-9]* = /$ = /'
}

# Was the inferior (or gdb itself) inside Dune?  It holds KVM descriptors.
cat >"$tmp/where.py" <<'PY'
import gdb, os
def in_dune(pid):
    d = "/proc/%d/fd" % pid
    for f in os.listdir(d):
        try:
            if "kvm" in os.readlink(os.path.join(d, f)):
                return True
        except OSError:
            pass
    return False
def native_threads():
    try:
        return int(gdb.parse_and_eval("(long)dune_native_threads()"))
    except gdb.error:
        return None
PY

cat >"$tmp/session" <<EOF2
set breakpoint pending on
set pagination off
source $tmp/where.py
break square
run
python print("IN_DUNE inferior", in_dune(gdb.selected_inferior().pid))
python print("IN_DUNE gdb", in_dune(os.getpid()))
python print("IN_DUNE native threads", native_threads())
bt
print x
next
print y
finish
continue
info breakpoints
delete
continue
EOF2

gdb -batch -nx -x "$tmp/session" $target >"$tmp/native" 2>&1
normalize "$tmp/native" >"$tmp/native.n"
if grep -q '^Breakpoint 1, square (x=1)' "$tmp/native" && grep -q 'total 14' "$tmp/native"; then
    ok "native transcript is sane"
else
    ko "native transcript is sane"; cat "$tmp/native"
fi

# 1. gdb runs dune-run, which execs the program inside Dune; the breakpoint
#    makes it step aside.
gdb -batch -nx -x "$tmp/session" --args $dunerun $target >"$tmp/dune" 2>&1
normalize "$tmp/dune" >"$tmp/dune.n"
# The thread that stepped aside counts as native, for the dirty trackers.
if grep -q '^IN_DUNE inferior True' "$tmp/dune" && grep -q '^IN_DUNE native threads 1' "$tmp/dune" &&
    diff -u "$tmp/native.n" "$tmp/dune.n"; then
    ok "gdb on a program inside Dune: same transcript"
else
    ko "gdb on a program inside Dune: same transcript"; cat "$tmp/dune"
fi

# 2. gdb itself inside Dune (its ptrace self-tests and its inferior step aside).
$dunerun gdb -batch -nx -x "$tmp/session" $target >"$tmp/gdbin" 2>&1
normalize "$tmp/gdbin" >"$tmp/gdbin.n"
if grep -q '^IN_DUNE gdb True' "$tmp/gdbin" && ! grep -q 'internal to GDB' "$tmp/gdbin" &&
    diff -u "$tmp/native.n" "$tmp/gdbin.n"; then
    ok "gdb inside Dune: same transcript"
else
    ko "gdb inside Dune: same transcript"; cat "$tmp/gdbin"
fi

# 3. gdb attaches to a program already running inside Dune.
cat >"$tmp/attach" <<EOF2
set pagination off
break square
continue
bt
next
print y == x * x
delete
detach
EOF2
attach() {
    "$@" $target 100000 >/dev/null & # 20 ms a loop: far longer than gdb takes to attach, even emulated; killed below
    pid=$!
    sleep 1
    gdb -batch -nx -x "$tmp/attach" -p $pid 2>&1
    kill $pid 2>/dev/null
    wait $pid 2>/dev/null
}
attach env >"$tmp/att-native"
normalize "$tmp/att-native" >"$tmp/att-native.n"
attach $dunerun >"$tmp/att-dune"
normalize "$tmp/att-dune" >"$tmp/att-dune.n"
if grep -q '^Breakpoint 1, square' "$tmp/att-native" && diff -u "$tmp/att-native.n" "$tmp/att-dune.n"; then
    ok "gdb attached to a program inside Dune: same transcript"
else
    ko "gdb attached to a program inside Dune: same transcript"; cat "$tmp/att-dune"
fi

echo "check_dune_gdb.sh: $passed passed, $failed failed"
[ $failed -eq 0 ]
