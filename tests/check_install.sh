#!/bin/sh
# An installed tree works: `make install DESTDIR=...` from this build, then
# a tiny program compiled and linked with `pkg-config gc-dune` against that
# tree only, run with libgc-dune active; the installed libraries must not
# point back into the build tree, and the tools and man pages must work.
# The installed dune-run is run when Dune can be used (else SKIP).
# Run from the top build directory, as `make check` does.
failed=0 passed=0 skipped=0
top=$(pwd)
dest=$(mktemp -d) || exit 99
trap 'rm -rf "$dest"' EXIT

ok() { echo "PASS: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

if [ ! -f gc-backend/libgc-dune.la ]; then
    echo "SKIP: check_install.sh: libgc-dune not built (no bdw-gc)"
    exit 77
fi
# A make of our own, not a part of the make check that runs us.
if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL ${MAKE:-make} -s install DESTDIR="$dest" \
    >"$dest.log" 2>&1; then
    sed 's/^/  /' "$dest.log"
    rm -f "$dest.log"
    echo "FAIL: make install DESTDIR=$dest"
    exit 1
fi
rm -f "$dest.log"
ok "make install DESTDIR"

pc=$(find "$dest" -name gc-dune.pc | head -1)
[ -n "$pc" ] || { echo "FAIL: no gc-dune.pc installed"; exit 1; }
libdir=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=libdir gc-dune)
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$dest \
    pkg-config --cflags --libs gc-dune) || { echo "FAIL: pkg-config gc-dune"; exit 1; }
echo "pkg-config gc-dune: $flags"

cat >"$dest/tiny.c" <<'PROG'
#include <stdio.h>
#include <gc.h>
#include <gc_dune.h>
#include <dirty.h>

int main(void)
{
    struct gc_dune_stats st;
    void **keep;
    int i;

    GC_INIT();
    GC_enable_incremental();
    keep = GC_MALLOC(100 * sizeof *keep);
    for (i = 0; i < 100000; i++)
        keep[i % 100] = GC_MALLOC(64);
    GC_gcollect();
    gc_dune_stats(&st);
    printf("active=%d backend=%s tracker=%s\n", st.active, st.backend,
           dirty_backend_name(DIRTY_MPROTECT));
    return st.active ? 0 : 1;
}
PROG
# -rpath-link: libgc-dune's own run path names the real libdir, not DESTDIR.
if ${CC:-cc} -o "$dest/tiny" "$dest/tiny.c" $flags -Wl,-rpath-link,"$dest$libdir" \
    2>"$dest/cc.log"; then
    ok "a program compiles and links with pkg-config gc-dune"
else
    sed 's/^/  /' "$dest/cc.log"
    bad "compiling with pkg-config gc-dune"
fi
if [ -x "$dest/tiny" ]; then
    libs=$(LD_LIBRARY_PATH=$dest$libdir ldd "$dest/tiny")
    if echo "$libs" | grep -q "libgc-dune.so.* => $dest$libdir/"; then
        ok "it loads the installed libgc-dune"
    else
        bad "it does not load the installed libgc-dune:"; echo "$libs"
    fi
    out=$(LD_LIBRARY_PATH=$dest$libdir GC_DUNE_BACKEND=mprotect "$dest/tiny" 2>&1)
    case $out in
    *"active=1 backend=mprotect tracker=mprotect"*) ok "it runs with libgc-dune active: $out" ;;
    *) bad "it did not run with libgc-dune active: $out" ;;
    esac
fi

# Installed libraries were relinked: no run path into the build tree.
for lib in "$dest$libdir"/lib*.so "$dest$libdir"/*/lib*.so; do
    [ -f "$lib" ] || continue
    if readelf -d "$lib" | grep -E 'RPATH|RUNPATH' | grep -q "$top"; then
        bad "$(basename "$lib") has a run path into the build tree"
    else
        ok "$(basename "$lib"): no run path into the build tree"
    fi
done

for tool in gc-dune-run dune-run; do
    bin=$(find "$dest" -path "*/bin/$tool" | head -1)
    [ -n "$bin" ] || { [ $tool = dune-run ] && [ ! -x dune/dune-run ] && continue; bad "$tool not installed"; continue; }
    if "$bin" --help 2>&1 | grep -q "usage: $tool"; then ok "$tool --help"; else bad "$tool --help"; fi
done

# The installed dune-run enters Dune with the installed preload library
# (DUNE_PRELOAD: its built-in path is the real pkglibdir, not DESTDIR).
srcdir=${srcdir:-.}
. "$srcdir/tests/dune_usable.sh"
dune_usable
case $? in
0)
    preload=$(find "$dest" -name libdune-preload.so | head -1)
    out=$(LD_LIBRARY_PATH=$dest$libdir DUNE_PRELOAD=$preload DUNE_VERBOSE=1 \
        "$(find "$dest" -path '*/bin/dune-run')" /bin/true 2>&1)
    case $out in
    *"dune: mode=cpl"*) ok "installed dune-run runs a program inside Dune" ;;
    *) bad "installed dune-run did not enter Dune: $out" ;;
    esac ;;
77) dune_not_here "installed dune-run" ;;
*) bad "Dune unusable: $dune_why" ;;
esac

for page in $(find "$dest" -path '*/man/man[13]/*' -type f); do
    if ! command -v groff >/dev/null 2>&1; then
        echo "note: no groff: man pages not rendered"
        break
    fi
    warn=$(groff -man -ww -z "$page" 2>&1)
    if [ -z "$warn" ] && ! grep -q '@[A-Z_]*@' "$page"; then
        ok "man page $(basename "$page")"
    else
        bad "man page $(basename "$page"): $warn"
    fi
done
[ -n "$(find "$dest" -path '*/man/man1/gc-dune-run.1')" ] || bad "gc-dune-run.1 not installed"
[ -n "$(find "$dest" -path '*/man/man3/gc_dune.3')" ] || bad "gc_dune.3 not installed"

echo "check_install.sh: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] || exit 1
[ $skipped -eq 0 ] || exit 77
exit 0
