# AX_PTHREAD_SIMPLE: glibc >= 2.34 has pthreads in libc; still pass -pthread
# so older toolchains and static links work.
AC_DEFUN([AX_PTHREAD_SIMPLE], [
  PTHREAD_CFLAGS=-pthread
  PTHREAD_LIBS=-pthread
  AC_SUBST([PTHREAD_CFLAGS])
  AC_SUBST([PTHREAD_LIBS])
])
