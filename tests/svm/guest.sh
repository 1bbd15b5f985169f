#!/bin/sh
# Run one command inside a Linux guest whose /dev/kvm is backed by AMD SVM
# with nested paging, emulated by QEMU's TCG: the way to exercise Dune on
# hardware virtualization (real guest CPL0, page-walker A/D bits, nested
# page tables) from a machine whose own KVM is paravirtual or absent.
#
#   tests/svm/guest.sh [-b BITS] [-m MEM] [-t SECONDS] [VAR=value ...] COMMAND [ARG ...]
#
# BITS is the guest CPU's physical-address width (MAXPHYADDR): 48 like AMD
# EPYC, 46 like most Xeons, 39 like Intel client parts (default 48).  The
# guest mounts this machine's root over 9p and runs COMMAND chrooted into
# it, in the current directory, with the VAR=value settings: binaries built
# here run there unchanged, at the same paths.  /tmp inside is the guest's
# own tmpfs.  Times inside are emulated; compare counts and ratios only.
#
# Exit status: COMMAND's, read back from a status file the guest writes
# (the console line "svm-guest: exit status N" is for people); 1 if the
# guest hangs past SECONDS (default 1800) or dies without a status; 77,
# with one line saying why, when QEMU, the kernel or KVM in the guest is
# missing.  The kernel is Debian's own package (apt-get download), unpacked
# with an initramfs into $SVM_WORK (default ./svm-work), once.  SVM_MEM
# (default 2G) and SVM_TCG_THREAD (single or multi) tune the guest;
# COMMAND runs with the system's PATH (SVM_PATH overrides).  A guest
# kernel that locks up panics (softlockup_panic) and QEMU exits at once,
# so a lockup is a quick failure with the kernel's report, not a timeout.
here=$(cd "$(dirname "$0")" && pwd)
bits=48 mem=${SVM_MEM:-2G} tmo=1800
# single: both vCPUs take turns on one host thread; multi: one host thread
# per vCPU.  Multi-threaded TCG (QEMU 7.2) hangs the guest kernel when this
# machine is loaded: 3 of 4 smoke runs beside other builds stopped dead
# (an RCU stall and soft lockups, or both vCPU threads spinning silently),
# as did one CI run, while 15 of 15 single-threaded runs passed in 12-31 s.
tcg_thread=${SVM_TCG_THREAD:-single}
while getopts b:m:t: o; do
    case $o in
    b) bits=$OPTARG ;;
    m) mem=$OPTARG ;;
    t) tmo=$OPTARG ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-b BITS] [-m MEM] [-t SECONDS] [VAR=value ...] COMMAND" >&2; exit 2; }
case $bits in
*[!0-9]* | '') echo "svm: -b $bits: expected a number of physical-address bits" >&2; exit 2 ;;
esac

skip() {
    echo "SKIP: svm: $*"
    exit 77
}

command -v qemu-system-x86_64 >/dev/null 2>&1 ||
    skip "no qemu-system-x86_64 (Debian package qemu-system-x86; ./bootstrap installs it)"
work=${SVM_WORK:-$(pwd)/svm-work}
mkdir -p "$work" && work=$(cd "$work" && pwd) || skip "cannot create $work"
. "$here/image.sh"
image_prepare || skip "$image_error"

# The job: what the guest runs, as a script on the shared root.
job=$work/job-$$.sh status=$work/status-$$
rm -f "$status"
{
    # The system's PATH, not the caller's: version-manager shims (pyenv's
    # python3 is a bash script) would multiply every program's execs, each
    # of which re-enters Dune.
    echo "export HOME=/root PATH=$(quote "${SVM_PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}")"
    echo "cd $(quote "$(pwd)") || exit 1"
    while [ $# -gt 0 ]; do
        case $1 in
        [A-Za-z_]*=*) echo "export $(quote "$1")"; shift ;;
        *) break ;;
        esac
    done
    printf 'exec'
    for a in "$@"; do printf ' %s' "$(quote "$a")"; done
    echo
} >"$job"

# Host directories under /tmp that the guest must still see over its own
# tmpfs /tmp: the top entries holding the current directory and $work.
keep=
for d in "$(pwd)" "$work"; do
    case $d in
    /tmp/?*) t=$(echo "$d" | cut -d/ -f1-3)
        case ":$keep:" in *":$t:"*) ;; *) keep=${keep:+$keep:}$t ;; esac ;;
    esac
done

rcfile=$work/qemu-rc-$$
{
    timeout -k 10 "$tmo" qemu-system-x86_64 -machine q35 -accel tcg,thread="$tcg_thread" -cpu max,phys-bits="$bits" \
        -smp 2 -m "$mem" -display none -monitor none -serial stdio -no-reboot \
        -kernel "$image_kernel" -initrd "$image_initrd" \
        -append "console=ttyS0 quiet panic=-1 softlockup_panic=1 svmjob=$job svmstatus=$status${keep:+ svmkeep=$keep}" \
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,multidevs=remap </dev/null 2>&1
    echo $? >"$rcfile"
} | sed -u -E -e 's/\r//g' -e '/SeaBIOS|iPXE|Booting from|Press Ctrl|reboot: Power down|^.?\x1b\[/d'
qrc=$(cat "$rcfile" 2>/dev/null)
rc=$(cat "$status" 2>/dev/null)
rm -f "$job" "$status" "$rcfile"
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
    echo "svm: FAIL: the guest did not finish within $tmo s (bits=$bits); killed"
    exit 1
fi
case $rc in
'') echo "svm: FAIL: the guest stopped without an exit status (qemu exit $qrc; a kernel panic or lockup prints above)"; exit 1 ;;
nokvm*) skip "the guest has no /dev/kvm (${rc#nokvm })" ;;
*[!0-9]*) echo "svm: FAIL: unreadable guest status '$rc'"; exit 1 ;;
esac
exit "$rc"
