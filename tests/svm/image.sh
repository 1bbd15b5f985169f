# Sourced by tests/svm/guest.sh: the guest's kernel and initramfs.
#
# image_prepare: in $work, fetch Debian's kernel package with apt-get
# download (once), unpack it, and build an initramfs from busybox and the
# modules for virtio-pci, 9p and kvm-amd.  Sets image_kernel and
# image_initrd, or image_error (one line) and returns 1.
# quote STRING: STRING as one single-quoted sh word.

quote() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

image_have() {
    command -v "$1" >/dev/null 2>&1 || [ -x "/sbin/$1" ] || [ -x "/usr/sbin/$1" ]
}

image_build() {
    export PATH="$PATH:/sbin:/usr/sbin"
    for t in busybox cpio depmod modprobe dpkg-deb apt-get; do
        image_have $t || { image_error="no $t (./bootstrap installs busybox-static, cpio, kmod)"; return 1; }
    done
    busybox --list 2>/dev/null | grep -qx insmod ||
        { image_error="busybox has no insmod (Debian's busybox-static has)"; return 1; }
    [ "$(cat "$work/meta" 2>/dev/null)" = "$meta" ] || rm -rf "$work/root" "$work/initrd.gz"
    if [ ! -d "$work/root/boot" ]; then
        # The metapackage depends on the real one.
        pkg=$(apt-cache depends "$meta" 2>/dev/null |
            sed -n 's/.*Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -1)
        [ -n "$pkg" ] || { image_error="apt-cache knows no $meta (apt-get update?)"; return 1; }
        rm -f "$work"/linux-image-*.deb
        (cd "$work" && { apt-get download -q "$pkg" || apt-get download -q "$pkg-unsigned"; }) \
            >"$work/download.log" 2>&1 ||
            { image_error="apt-get download $pkg failed (see $work/download.log)"; return 1; }
        rm -rf "$work/root.tmp"
        dpkg-deb -x "$work"/linux-image-*.deb "$work/root.tmp" &&
            mv "$work/root.tmp" "$work/root" && echo "$meta" >"$work/meta" ||
            { image_error="cannot unpack $work/linux-image-*.deb"; return 1; }
        rm -f "$work"/linux-image-*.deb
    fi
    kver=$(ls "$work/root/lib/modules" | head -1)
    [ -f "$work/root/boot/vmlinuz-$kver" ] || { image_error="no kernel in $work/root/boot"; return 1; }
    [ -f "$work/root/lib/modules/$kver/modules.dep" ] || depmod -b "$work/root" "$kver" ||
        { image_error="depmod failed for $kver"; return 1; }

    d=$work/initrd.tmp
    rm -rf "$d" && mkdir -p "$d/bin" "$d/dev" "$d/proc" "$d/sys" "$d/mnt" "$d/mods" || return 1
    cp "$(command -v busybox)" "$d/bin/busybox" || return 1
    # Dependency order, each module once (built-in ones print no insmod line).
    for m in virtio_pci 9pnet_virtio 9p kvm-amd; do
        modprobe -d "$work/root" -S "$kver" --show-depends "$m" ||
            { image_error="no module $m for $kver"; return 1; }
    done | sed -n 's/^insmod \([^ ]*\).*/\1/p' | awk '!seen[$0]++' >"$work/modules.order"
    # Newer Debian kernels compress their modules; busybox insmod takes
    # them plain.
    while read -r f; do
        m=$(basename "$f")
        case $m in
        *.xz) xz -dc "$f" >"$d/mods/${m%.xz}" && m=${m%.xz} ;;
        *.zst) zstd -qdc "$f" >"$d/mods/${m%.zst}" && m=${m%.zst} ;;
        *) cp "$f" "$d/mods/" ;;
        esac || { image_error="cannot unpack module $f"; return 1; }
        echo "$m" >>"$d/mods/order"
    done <"$work/modules.order"
    cp "$here/init" "$d/init" && chmod +x "$d/init" || return 1
    (cd "$d" && find . | cpio -o -H newc 2>/dev/null | gzip) >"$work/initrd.gz.tmp" &&
        mv "$work/initrd.gz.tmp" "$work/initrd.gz" && rm -rf "$d" || return 1
    echo "$kver" >"$work/kver"
}

image_prepare() {
    image_error=
    case $work in
    *[[:space:]]*) image_error="SVM_WORK '$work' has a space (the kernel command line cannot carry it)"; return 1 ;;
    esac
    # One builder at a time; rebuilt when these scripts change.
    exec 8>"$work/.lock" && flock 8 || { image_error="cannot lock $work/.lock"; return 1; }
    # Debian 12's default kernel (6.1).  SVM_KERNEL_PKG=linux-image-6.12-amd64
    # takes the newer one, which the uffd backend needs (userfaultfd's
    # asynchronous write protection came in 6.7) -- but under QEMU 7.2's
    # multi-threaded TCG it has died of a kernel oops (int3 in __schedule,
    # text patching racing another vCPU; guest.sh now defaults to
    # single-threaded TCG).  Changing the package replaces the unpacked
    # kernel.
    meta=${SVM_KERNEL_PKG:-linux-image-amd64}
    if [ ! -f "$work/initrd.gz" ] || [ ! -f "$work/kver" ] || [ "$here/init" -nt "$work/initrd.gz" ] ||
        [ "$here/image.sh" -nt "$work/initrd.gz" ] ||
        [ "$(cat "$work/meta" 2>/dev/null)" != "$meta" ]; then
        image_build || { exec 8>&-; [ -n "$image_error" ] || image_error="cannot build the initramfs"; return 1; }
    fi
    exec 8>&-
    image_kernel=$work/root/boot/vmlinuz-$(cat "$work/kver")
    image_initrd=$work/initrd.gz
}
