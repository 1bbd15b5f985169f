# DUNE_CHECK_LOONGARCH
# --------------------
# Look for what the LoongArch64 pieces need: a clang that targets
# loongarch64 (freestanding, no sysroot needed), ld.lld, and
# qemu-system-loongarch64 for the bare-metal test.  Sets
# have_loongarch_cross=yes|no (clang and lld both work), AC_SUBSTs
# LOONGARCH_CC, LOONGARCH_LD and QEMU_LOONGARCH (their paths, or "no"),
# and defines the conditionals HAVE_LOONGARCH_CROSS and HAVE_QEMU_LOONGARCH.
# --disable-loongarch turns the whole thing off.
AC_DEFUN([DUNE_CHECK_LOONGARCH], [
  AC_ARG_ENABLE([loongarch],
    [AS_HELP_STRING([--disable-loongarch],
      [do not cross-build the LoongArch64 guest runtime and its QEMU test])],
    [enable_loongarch=$enableval], [enable_loongarch=auto])
  AC_ARG_VAR([LOONGARCH_CC], [clang able to target loongarch64 (default: clang-19)])
  AC_ARG_VAR([LOONGARCH_LD], [ld.lld for loongarch64 (default: ld.lld-19)])
  AC_ARG_VAR([QEMU_LOONGARCH], [qemu-system-loongarch64 for the bare-metal test])
  have_loongarch_cross=no
  AS_IF([test "x$enable_loongarch" != xno], [
    AC_PATH_PROGS([LOONGARCH_CC], [clang-19 clang], [no])
    AC_PATH_PROGS([LOONGARCH_LD], [ld.lld-19 ld.lld], [no])
    AC_PATH_PROG([QEMU_LOONGARCH], [qemu-system-loongarch64], [no])
    AS_IF([test "x$LOONGARCH_CC" != xno && test "x$LOONGARCH_LD" != xno], [
      AC_MSG_CHECKING([whether $LOONGARCH_CC can build freestanding loongarch64 objects])
      dune_la64_dir=`mktemp -d 2>/dev/null || echo conftest-la64.$$`
      mkdir -p "$dune_la64_dir"
      printf 'long f(long x) { long v; __asm__ volatile("csrrd %%0, 0x0" : "=r"(v)); return v + x; }\n' \
        > "$dune_la64_dir/t.c"
      AS_IF([$LOONGARCH_CC --target=loongarch64-unknown-none -ffreestanding -nostdlibinc \
               -c "$dune_la64_dir/t.c" -o "$dune_la64_dir/t.o" >&AS_MESSAGE_LOG_FD 2>&1 &&
             $LOONGARCH_LD -r "$dune_la64_dir/t.o" -o "$dune_la64_dir/r.o" >&AS_MESSAGE_LOG_FD 2>&1],
            [have_loongarch_cross=yes])
      rm -rf "$dune_la64_dir"
      AC_MSG_RESULT([$have_loongarch_cross])
    ])
    AS_IF([test "x$enable_loongarch" = xyes && test "x$have_loongarch_cross" = xno],
          [AC_MSG_ERROR([--enable-loongarch needs clang and ld.lld with LoongArch support (apt-get install clang-19 lld-19)])])
    AS_IF([test "x$QEMU_LOONGARCH" = xno],
          [AC_MSG_WARN([qemu-system-loongarch64 not found: the LoongArch test will be skipped (apt-get install qemu-system-misc)])])
  ])
  test -n "$LOONGARCH_CC" || LOONGARCH_CC=no
  test -n "$LOONGARCH_LD" || LOONGARCH_LD=no
  test -n "$QEMU_LOONGARCH" || QEMU_LOONGARCH=no
  AC_SUBST([LOONGARCH_CC])
  AC_SUBST([LOONGARCH_LD])
  AC_SUBST([QEMU_LOONGARCH])
  AM_CONDITIONAL([HAVE_LOONGARCH_CROSS], [test "x$have_loongarch_cross" = xyes])
  AM_CONDITIONAL([HAVE_QEMU_LOONGARCH], [test "x$QEMU_LOONGARCH" != xno])
])
