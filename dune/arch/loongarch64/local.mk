# dune/arch/loongarch64 build fragment (included from the top-level Makefile.am)
#
# The LoongArch64 guest runtime is cross-compiled with clang for a
# freestanding target (no LoongArch sysroot needed) by the explicit rules
# below; CC stays the host compiler.  Outputs:
#   dune/arch/loongarch64/la64-runtime.o     guest runtime, one relocatable object
#   dune/arch/loongarch64/kvm_loongarch.la64.o  host side (KVM API), compile-only
#   tests/loongarch/la64-test.elf            bare-metal QEMU test image, linked
#                                            with the same la64-runtime.o
# The host test tests/loongarch/check_loongarch_qemu (tests/local.mk
# style, defined here) boots the image under qemu-system-loongarch64.

LA64_DIR = dune/arch/loongarch64
LA64_TDIR = tests/loongarch
LA64_HDRS = $(LA64_DIR)/la64_regs.h $(LA64_DIR)/la64_guest.h $(LA64_DIR)/la64_csr.h \
	$(LA64_DIR)/la64_host.h $(LA64_DIR)/kvm_uapi.h
LA64_RUNTIME_NAMES = entry boot pgtable tlb dirty trap
LA64_TEST_NAMES = start la64_test minilib

EXTRA_DIST += $(LA64_HDRS) \
	$(LA64_DIR)/entry.S $(LA64_DIR)/boot.c $(LA64_DIR)/pgtable.c $(LA64_DIR)/tlb.c \
	$(LA64_DIR)/dirty.c $(LA64_DIR)/trap.c $(LA64_DIR)/kvm_loongarch.c \
	$(LA64_TDIR)/start.S $(LA64_TDIR)/la64_test.c $(LA64_TDIR)/minilib.c \
	$(LA64_TDIR)/link.ld $(LA64_TDIR)/checks.h \
	docs/loongarch.md m4/dune_loongarch.m4

# Freestanding LoongArch64 code: no libc headers, no builtins turned into
# libc calls, position-independent and hidden (la64_guest.h), so the same
# objects link into the bare-metal image and into a PIC library.
LA64_CFLAGS = --target=loongarch64-unknown-none -march=loongarch64 -mabi=lp64d \
	-ffreestanding -fno-builtin -nostdlibinc -fPIC -fno-stack-protector \
	-fno-asynchronous-unwind-tables -O2 -std=gnu11 -Wall -Wextra -Werror \
	-I$(top_srcdir)/$(LA64_DIR)

LA64_RUNTIME_OBJS = $(LA64_RUNTIME_NAMES:%=$(LA64_DIR)/%.la64.o)
LA64_TEST_OBJS = $(LA64_TEST_NAMES:%=$(LA64_TDIR)/%.la64.o)
LA64_OUTPUTS = $(LA64_DIR)/la64-runtime.o $(LA64_DIR)/kvm_loongarch.la64.o \
	$(LA64_TDIR)/la64-test.elf

CLEANFILES += $(LA64_RUNTIME_OBJS) $(LA64_TEST_OBJS) $(LA64_OUTPUTS)

if HAVE_LOONGARCH_CROSS
$(LA64_DIR)/%.la64.o: $(top_srcdir)/$(LA64_DIR)/%.c $(LA64_HDRS:%=$(top_srcdir)/%)
	$(AM_V_CC)$(MKDIR_P) $(@D) && $(LOONGARCH_CC) $(LA64_CFLAGS) -c -o $@ $<

$(LA64_DIR)/%.la64.o: $(top_srcdir)/$(LA64_DIR)/%.S $(top_srcdir)/$(LA64_DIR)/la64_regs.h
	$(AM_V_GEN)$(MKDIR_P) $(@D) && $(LOONGARCH_CC) $(LA64_CFLAGS) -c -o $@ $<

$(LA64_TDIR)/%.la64.o: $(top_srcdir)/$(LA64_TDIR)/%.c $(LA64_HDRS:%=$(top_srcdir)/%)
	$(AM_V_CC)$(MKDIR_P) $(@D) && $(LOONGARCH_CC) $(LA64_CFLAGS) -c -o $@ $<

$(LA64_TDIR)/%.la64.o: $(top_srcdir)/$(LA64_TDIR)/%.S
	$(AM_V_GEN)$(MKDIR_P) $(@D) && $(LOONGARCH_CC) $(LA64_CFLAGS) -c -o $@ $<

# The runtime as one relocatable object: what a LoongArch build of libdune
# links, and what the test image links.
$(LA64_DIR)/la64-runtime.o: $(LA64_RUNTIME_OBJS)
	$(AM_V_GEN)$(LOONGARCH_LD) -r -o $@ $(LA64_RUNTIME_OBJS)

$(LA64_TDIR)/la64-test.elf: $(LA64_TEST_OBJS) $(LA64_DIR)/la64-runtime.o $(top_srcdir)/$(LA64_TDIR)/link.ld
	$(AM_V_GEN)$(LOONGARCH_LD) -T $(top_srcdir)/$(LA64_TDIR)/link.ld -o $@ \
		$(LA64_TEST_OBJS) $(LA64_DIR)/la64-runtime.o

la64-all: $(LA64_OUTPUTS)
else
la64-all:
	@: LoongArch64 cross build disabled by configure
endif

# Built by `make` too, not only by `make check`.
all-local: la64-all
.PHONY: la64-all

if HAVE_CHECK
check_PROGRAMS += tests/loongarch/check_loongarch_qemu tests/loongarch/check_la64_pgtable
TESTS += tests/loongarch/check_loongarch_qemu tests/loongarch/check_la64_pgtable

tests_loongarch_check_loongarch_qemu_SOURCES = tests/loongarch/check_loongarch_qemu.c tests/loongarch/checks.h
tests_loongarch_check_loongarch_qemu_CPPFLAGS = $(AM_CPPFLAGS) \
	-DLA64_TEST_IMAGE='"$(abs_top_builddir)/$(LA64_TDIR)/la64-test.elf"' \
	-DLA64_QEMU='"$(QEMU_LOONGARCH)"' -DLA64_HAVE_CROSS=$(LA64_HAVE_CROSS)
tests_loongarch_check_loongarch_qemu_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_loongarch_check_loongarch_qemu_LDADD = $(CHECK_LIBS)
if HAVE_LOONGARCH_CROSS
LA64_HAVE_CROSS = 1
# make check builds the image (and the host object) before running the test.
EXTRA_tests_loongarch_check_loongarch_qemu_DEPENDENCIES = $(LA64_OUTPUTS)
else
LA64_HAVE_CROSS = 0
endif

# The portable parts (page tables, boot CSR values) also run on the host.
tests_loongarch_check_la64_pgtable_SOURCES = tests/loongarch/check_la64_pgtable.c \
	dune/arch/loongarch64/pgtable.c dune/arch/loongarch64/boot.c
tests_loongarch_check_la64_pgtable_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/$(LA64_DIR)
tests_loongarch_check_la64_pgtable_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_loongarch_check_la64_pgtable_LDADD = $(CHECK_LIBS)
endif
