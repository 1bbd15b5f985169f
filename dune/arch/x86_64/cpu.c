/*
 * cpu.c - x86-64 guest CPU state: descriptor tables, control registers,
 * MSRs, CPUID, XCR0 and FPU state for a vCPU that continues a host thread,
 * and the per-VM structures (IDT, SYSCALL stub, MMIO window).
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "x86.h"

#define IST_SIZE (16UL << 10)

#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SFMASK 0xc0000084
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102

#define CR0_PE (1UL << 0)
#define CR0_MP (1UL << 1)
#define CR0_ET (1UL << 4)
#define CR0_NE (1UL << 5)
#define CR0_WP (1UL << 16)
#define CR0_AM (1UL << 18)
#define CR0_PG (1UL << 31)
#define CR4_PAE (1UL << 5)
#define CR4_OSFXSR (1UL << 9)
#define CR4_OSXMMEXCPT (1UL << 10)
#define CR4_FSGSBASE (1UL << 16)
#define CR4_OSXSAVE (1UL << 18)
#define EFER_SCE (1UL << 0)
#define EFER_LME (1UL << 8)
#define EFER_LMA (1UL << 10)
#define EFER_NXE (1UL << 11)

struct __attribute__((packed)) tss64 {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
};

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;

    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* Guest CPL0 is emulated instruction by instruction on a paravirtual KVM
 * (kvm_pvm), where SYSCALL at guest CPL3 also stays at CPL3.  Anywhere
 * else the KVM is taken to be hardware virtualization (VT-x or SVM), where
 * guest CPL0 runs natively and SYSCALL enters CPL0. */
static bool cpl0_is_emulated(void)
{
    return access("/sys/module/kvm_pvm", F_OK) == 0;
}

/*
 * Which modes can run here, and who asked.  CPL3 mode relies on SYSCALL
 * staying at CPL3 (its syscall stub cannot return from a handler with
 * rt_sigreturn nor take asynchronous signals when SYSCALL lands at CPL0),
 * so on hardware virtualization it would hang: refused, whoever asks.
 * CPL0 mode where CPL0 is emulated runs only code KVM's instruction
 * emulator can run -- no vector instructions, so no glibc (memset, the
 * lazy-binding resolver): an arbitrary program asking through DUNE_MODE
 * (dune-run, gc-dune-run) would die with "emulation failed", so that is
 * refused; a program that asks through the API (opts->mode) is taken to
 * know its CPL0 code is plain (raw syscalls), and gets it.
 */
int arch_mode_check(enum dune_mode m, bool from_env)
{
    if (m == DUNE_MODE_CPL3 && !cpl0_is_emulated()) {
        dune_set_error(-ENOTSUP, "cpl3 mode is not supported on hardware virtualization "
                       "(SYSCALL enters guest CPL0 there); use DUNE_MODE=auto or cpl0");
        return -ENOTSUP;
    }
    if (m == DUNE_MODE_CPL0 && from_env && cpl0_is_emulated()) {
        dune_set_error(-ENOTSUP, "DUNE_MODE=cpl0: guest CPL0 is emulated by this paravirtual "
                       "KVM (kvm_pvm), which cannot run glibc's vector code; use auto or cpl3");
        return -ENOTSUP;
    }
    return 0;
}

enum dune_mode arch_mode_auto(void)
{
    return cpl0_is_emulated() ? DUNE_MODE_CPL3 : DUNE_MODE_CPL0;
}

static void *map_pages(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

/* Reserve a 2 MiB-aligned window no host mapping will ever use: guest
 * accesses to it have no memslot behind them and exit to us as MMIO. */
static int reserve_mmio_window(void)
{
    size_t len = 2 * SLOT_ALIGN;
    uintptr_t p = (uintptr_t)mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                                  -1, 0);
    uintptr_t base;

    if (p == (uintptr_t)MAP_FAILED)
        return -errno;
    base = (p + SLOT_ALIGN - 1) & ~(SLOT_ALIGN - 1);
    if (base > p)
        munmap((void *)p, base - p);
    if (base + SLOT_ALIGN < p + len)
        munmap((void *)(base + SLOT_ALIGN), p + len - base - SLOT_ALIGN);
    dune_vm.mmio_base = base;
    return 0;
}

/*
 * The SYSCALL target is generated at run time because it must name the MMIO
 * address without using a register: `movl %eax, moffs64` then `sysretq`.
 * The store exits to the host, which either sets rip itself (SYSCALL kept
 * the caller's privilege level) or lets sysretq return to CPL3 (hardware
 * SYSCALL from CPL3 lands at CPL0).
 */
static int make_syscall_stub(void)
{
    uint8_t *p = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t target = dune_vm.mmio_base;
    size_t i = 0;

    if (p == MAP_FAILED)
        return -errno;
    memset(p, 0xcc, PAGE_SIZE);
    p[i++] = 0xa3; /* mov %eax, moffs64 */
    memcpy(p + i, &target, 8);
    i += 8;
    p[i++] = 0x48; /* sysretq */
    p[i++] = 0x0f;
    p[i++] = 0x07;
    if (mprotect(p, PAGE_SIZE, PROT_READ | PROT_EXEC) < 0)
        return -errno;
    dune_vm.arch.syscall_stub = (uintptr_t)p;
    return 0;
}

/* The guest maps the window's first page (writable from CPL3) onto the
 * layout's MMIO address, where no memslot exists. */
static int map_mmio_window(void)
{
    uint64_t *pte = pt_lookup(dune_vm.mmio_base, true);

    if (!pte)
        return -ENOMEM;
    *pte = gpa_mmio() | pt_prot_bits(PROT_READ | PROT_WRITE, true);
    return 0;
}

static void set_gate(uint64_t *idt, unsigned vec, uintptr_t handler, unsigned dpl)
{
    idt[2 * vec] = (handler & 0xffff) | ((uint64_t)SEL_KCODE << 16) | (1ULL << 32) /* IST1 */ |
                   ((uint64_t)(0x8e | dpl << 5) << 40) | (((handler >> 16) & 0xffff) << 48);
    idt[2 * vec + 1] = handler >> 32;
}

static int make_idt(void)
{
    uint64_t *idt = map_pages(PAGE_SIZE);

    if (!idt)
        return -ENOMEM;
    for (unsigned v = 0; v < 32; v++)
        set_gate(idt, v, (uintptr_t)dune_exc_vectors + 16 * v, v == 3 || v == 4 ? 3 : 0);
    mprotect(idt, PAGE_SIZE, PROT_READ);
    dune_vm.arch.idt = idt;
    return 0;
}

static int get_cpuid(void)
{
    int n = 256;
    struct kvm_cpuid2 *c = calloc(1, sizeof *c + n * sizeof(struct kvm_cpuid_entry2));

    if (!c)
        return -ENOMEM;
    c->nent = n;
    if (ioctl(dune_vm.kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
        int e = errno;
        free(c);
        return -e;
    }
    dune_vm.arch.cpuid = c;
    return 0;
}

/* XCR0 of the guest = what the host uses, limited to what KVM supports:
 * glibc chose its string functions from the host's XCR0 before we entered. */
static int pick_xcr0(void)
{
    uint64_t supported = 0, host = xgetbv0();
    unsigned a, b, c, d;

    for (unsigned i = 0; i < dune_vm.arch.cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = &dune_vm.arch.cpuid->entries[i];
        if (e->function == 0xd && e->index == 0)
            supported = e->eax | ((uint64_t)e->edx << 32);
    }
    dune_vm.arch.xcr0 = host & supported;
    if ((dune_vm.arch.xcr0 & 3) != 3) {
        dune_set_error(-ENOTSUP, "KVM supports no usable XCR0 (host %#llx, KVM %#llx)",
                       (unsigned long long)host, (unsigned long long)supported);
        return -ENOTSUP;
    }
    /* Host bits KVM lacks (AMX tiles, which need a per-process permission
     * for guests) are never used by glibc; such state simply does not
     * exist inside the guest. */
    /* Size of the standard-format area for the guest's XCR0 (the host's
     * may include AMX state that KVM does not give the guest). */
    dune_vm.arch.xsave_size = 576;
    for (unsigned i = 2; i < 63; i++) {
        if (!(dune_vm.arch.xcr0 >> i & 1))
            continue;
        __cpuid_count(0xd, i, a, b, c, d);
        (void)c, (void)d;
        if (b + a > dune_vm.arch.xsave_size)
            dune_vm.arch.xsave_size = b + a;
    }
    if (dune_vm.arch.xsave_size > sizeof(struct kvm_xsave)) {
        dune_set_error(-ENOTSUP, "guest FPU state (%u bytes) exceeds KVM_GET_XSAVE's",
                       dune_vm.arch.xsave_size);
        return -ENOTSUP;
    }
    return 0;
}

static struct kvm_cpuid_entry2 *cpuid_entry(unsigned function)
{
    for (unsigned i = 0; i < dune_vm.arch.cpuid->nent; i++)
        if (dune_vm.arch.cpuid->entries[i].function == function)
            return &dune_vm.arch.cpuid->entries[i];
    return NULL;
}

/*
 * Physical-address width for the guest: the host CPU's (CPUID 0x80000008
 * EAX[7:0]) and no more than KVM would report to the guest, which without
 * that leaf is 36 bits.
 */
static unsigned cpu_phys_bits(void)
{
    struct kvm_cpuid_entry2 *e = cpuid_entry(0x80000008);
    unsigned a, b, c, d, host = 36, guest = e ? (e->eax & 0xff) : 36;

    if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000008) {
        __cpuid(0x80000008, a, b, c, d);
        host = a & 0xff;
    }
    return host < guest ? host : guest;
}

/* The guest's CPUID reports the width the layout uses (gpa.c). */
static void set_guest_phys_bits(unsigned bits)
{
    struct kvm_cpuid_entry2 *e = cpuid_entry(0x80000008);

    if (e)
        e->eax = (e->eax & ~0xffu) | bits;
}

#ifndef KVM_CAP_DISABLE_QUIRKS2
#define KVM_CAP_DISABLE_QUIRKS2 213
#endif
#define QUIRK_SLOT_ZAP_ALL (1ULL << 7)

/*
 * By default KVM drops every translation of the VM when any memslot is
 * deleted; we delete a slot whenever the memory under it goes, and under
 * shadow paging rebuilding everything afterwards costs milliseconds.
 * Where the kernel lets us, deleting a slot drops only its own.
 */
void arch_vm_tune(void)
{
    long q = dune_ioctl(dune_vm.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DISABLE_QUIRKS2);
    struct kvm_enable_cap cap = { .cap = KVM_CAP_DISABLE_QUIRKS2, .args = { QUIRK_SLOT_ZAP_ALL } };

    if (q > 0 && (q & QUIRK_SLOT_ZAP_ALL))
        dune_ioctl(dune_vm.vm_fd, KVM_ENABLE_CAP, &cap);
}

int arch_vm_setup(void)
{
    long sync = dune_ioctl(dune_vm.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
    int r;

    dune_vm.arch.sync_regs = sync > 0 && (sync & KVM_SYNC_X86_REGS);
    arch_vm_tune();

    if ((r = get_cpuid()) < 0) {
        dune_set_error(r, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(-r));
        return r;
    }
    if ((r = pick_xcr0()) < 0)
        return r;
    if ((r = gpa_init(cpu_phys_bits())) < 0)
        return r;
    set_guest_phys_bits(gpa_bits());
    if ((r = reserve_mmio_window()) < 0 || (r = make_syscall_stub()) < 0 || (r = make_idt()) < 0 ||
        (r = pt_init()) < 0 || (r = map_mmio_window()) < 0) {
        dune_set_error(r, "cannot set up guest structures: %s", strerror(-r));
        return r;
    }
    return 0;
}

/* Undo arch_vm_setup(): the VM is going away. */
void arch_vm_teardown(void)
{
    pt_free();
    if (dune_vm.arch.idt)
        munmap(dune_vm.arch.idt, PAGE_SIZE);
    if (dune_vm.arch.syscall_stub)
        munmap((void *)dune_vm.arch.syscall_stub, PAGE_SIZE);
    if (dune_vm.mmio_base)
        munmap((void *)dune_vm.mmio_base, SLOT_ALIGN);
    free(dune_vm.arch.cpuid);
    dune_vm.arch.idt = NULL;
    dune_vm.arch.syscall_stub = dune_vm.mmio_base = 0;
    dune_vm.arch.cpuid = NULL;
    dune_vm.arch.syscall_probed = false;
    dune_vm.arch.syscall_to_cpl0 = false;
}

static uint64_t fs_base(void)
{
    unsigned long base = 0;

    syscall(SYS_arch_prctl, ARCH_GET_FS, &base);
    return base;
}

static uint64_t gs_base(void)
{
    unsigned long base = 0;

    syscall(SYS_arch_prctl, ARCH_GET_GS, &base);
    return base;
}

/* GDT and TSS share one page per vCPU: the TSS holds this vCPU's IST. */
static void fill_gdt(struct dune_vcpu *v)
{
    uint64_t *gdt = v->arch.cpu_page;
    struct tss64 *tss = (struct tss64 *)((char *)v->arch.cpu_page + 2048);
    uint64_t tb = (uintptr_t)tss;

    memset(v->arch.cpu_page, 0, PAGE_SIZE);
    gdt[SEL_KCODE >> 3] = 0x00af9b000000ffffULL;
    gdt[SEL_KDATA >> 3] = 0x00cf93000000ffffULL;
    gdt[SEL_UCODE32 >> 3] = 0x00cffb000000ffffULL;
    gdt[SEL_UDATA >> 3] = 0x00cff3000000ffffULL;
    gdt[SEL_UCODE >> 3] = 0x00affb000000ffffULL;
    gdt[SEL_TSS >> 3] = (sizeof *tss - 1) | ((tb & 0xffffff) << 16) | (0x89ULL << 40) |
                        (((tb >> 24) & 0xff) << 56);
    gdt[(SEL_TSS >> 3) + 1] = tb >> 32;
    tss->rsp[0] = v->arch.ist_top;
    tss->ist[0] = v->arch.ist_top;
    tss->iomap_base = sizeof *tss; /* no I/O bitmap: `out` at CPL3 faults */
}

static struct kvm_segment code_seg(bool user)
{
    return (struct kvm_segment){ .base = 0, .limit = 0xffffffff,
                                 .selector = user ? SEL_UCODE : SEL_KCODE, .type = 11,
                                 .present = 1, .dpl = user ? 3 : 0, .s = 1, .l = 1, .g = 1 };
}

static struct kvm_segment data_seg(bool user)
{
    return (struct kvm_segment){ .base = 0, .limit = 0xffffffff,
                                 .selector = user ? SEL_UDATA : SEL_KDATA, .type = 3,
                                 .present = 1, .dpl = user ? 3 : 0, .s = 1, .db = 1, .g = 1 };
}

static int set_sregs(struct dune_vcpu *v)
{
    bool user = dune_vm.mode == DUNE_MODE_CPL3;
    struct kvm_sregs s;

    if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
        return -errno;
    s.cs = code_seg(user);
    s.ss = s.ds = s.es = s.gs = s.fs = data_seg(user);
    s.fs.base = fs_base();
    s.gs.base = gs_base();
    s.tr = (struct kvm_segment){ .base = (uintptr_t)v->arch.cpu_page + 2048,
                                 .limit = sizeof(struct tss64) - 1, .selector = SEL_TSS,
                                 .type = 11, .present = 1 };
    s.gdt.base = (uintptr_t)v->arch.cpu_page;
    s.gdt.limit = 16 * 8 - 1;
    s.idt.base = (uintptr_t)dune_vm.arch.idt;
    s.idt.limit = 256 * 16 - 1;
    s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
    s.cr3 = pt_root();
    s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_FSGSBASE | CR4_OSXSAVE;
    s.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
    return ioctl(v->fd, KVM_SET_SREGS, &s) < 0 ? -errno : 0;
}

static int set_msrs(struct dune_vcpu *v)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[5];
    } m = { .hdr.nmsrs = 5 };

    m.e[0] = (struct kvm_msr_entry){ .index = MSR_STAR,
                                     .data = ((uint64_t)SEL_UCODE32 << 48) |
                                             ((uint64_t)SEL_KCODE << 32) };
    m.e[1] = (struct kvm_msr_entry){ .index = MSR_LSTAR, .data = dune_vm.arch.syscall_stub };
    m.e[2] = (struct kvm_msr_entry){ .index = MSR_CSTAR, .data = 0 };
    /* Clear TF and DF on entry, as Linux does; the host restores rflags. */
    m.e[3] = (struct kvm_msr_entry){ .index = MSR_SFMASK, .data = X86_TF | X86_DF };
    m.e[4] = (struct kvm_msr_entry){ .index = MSR_KERNEL_GS_BASE, .data = 0 };
    return ioctl(v->fd, KVM_SET_MSRS, &m) == 5 ? 0 : -EINVAL;
}

/* The guest continues with the host thread's FPU/SSE/AVX state. */
static void host_fpu_save(struct arch_fpu *f)
{
    uint32_t lo = (uint32_t)dune_vm.arch.xcr0, hi = (uint32_t)(dune_vm.arch.xcr0 >> 32);

    memset(f, 0, sizeof *f);
    __asm__ volatile("xsave %0" : "+m"(*f->x.region) : "a"(lo), "d"(hi) : "memory");
}

void arch_fpu_restore_host(const struct arch_fpu *f)
{
    uint32_t lo = (uint32_t)dune_vm.arch.xcr0, hi = (uint32_t)(dune_vm.arch.xcr0 >> 32);

    __asm__ volatile("xrstor %0" : : "m"(*f->x.region), "a"(lo), "d"(hi) : "memory");
}

int arch_fpu_save(struct dune_vcpu *v)
{
    return dune_ioctl(v->fd, KVM_GET_XSAVE, &v->fpu->x) < 0 ? -EIO : 0;
}

int arch_vcpu_set_fpu(struct dune_vcpu *v, const struct arch_fpu *f)
{
    return dune_ioctl(v->fd, KVM_SET_XSAVE, &f->x) < 0 ? -EIO : 0;
}

static int set_fpu(struct dune_vcpu *v)
{
    struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs = { { .xcr = 0, .value = dune_vm.arch.xcr0 } } };

    if (ioctl(v->fd, KVM_SET_XCRS, &xcrs) < 0)
        return -errno;
    host_fpu_save(v->fpu);
    return ioctl(v->fd, KVM_SET_XSAVE, &v->fpu->x) < 0 ? -errno : 0;
}

/* The thread pointer is the FS base. */
int arch_set_tls(struct dune_vcpu *v, uint64_t base)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[1];
    } m = { .hdr.nmsrs = 1, .e = { { .index = MSR_FS_BASE, .data = base } } };

    return dune_ioctl(v->fd, KVM_SET_MSRS, &m) == 1 ? 0 : -EINVAL;
}

/*
 * The guest reads the host kernel's vDSO clock, which counts from the TSC:
 * the guest's TSC must be the host's.  KVM starts a new vCPU's TSC near 0
 * (or at its VM's other vCPUs'); the vDSO then sees a count before its last
 * update and returns that update's time, a clock that stands still between
 * ticks (under SVM with kernel 6.12, a vDSO read came 3 ms behind the
 * system call's before it).  Where KVM has no TSC-offset attribute (before
 * 5.16), the TSC is left as KVM set it.
 */
static void set_tsc_offset(struct dune_vcpu *v)
{
    uint64_t zero = 0;
    struct kvm_device_attr a = { .group = KVM_VCPU_TSC_CTRL,
                                 .attr = KVM_VCPU_TSC_OFFSET,
                                 .addr = (uintptr_t)&zero };

    if (ioctl(v->fd, KVM_HAS_DEVICE_ATTR, &a) == 0)
        ioctl(v->fd, KVM_SET_DEVICE_ATTR, &a);
}

/* Everything but the general registers, which the caller sets. */
int arch_vcpu_setup(struct dune_vcpu *v)
{
    int r;

    fill_gdt(v);
    /* Write-protect faults resolved in the guest: where CPL0 runs
     * natively.  A paravirtual KVM emulates CPL0, and there the exit is
     * cheaper (GCBench QUICK: 0.60-0.84 s against 0.84-0.98 s);
     * DUNE_WP_FAST=1 takes the guest's path anyway, to test it there. */
    const char *fast = getenv("DUNE_WP_FAST");
    pt_wp_fast(dune_vm.mode == DUNE_MODE_CPL0 || (fast && strcmp(fast, "1") == 0));
    /* KVM refuses to change CPUID once a vCPU has run: set it once. */
    if (!v->arch.cpuid_set) {
        if (ioctl(v->fd, KVM_SET_CPUID2, dune_vm.arch.cpuid) < 0)
            return -errno;
        v->arch.cpuid_set = true;
    }
    if ((r = set_sregs(v)) < 0 || (r = set_msrs(v)) < 0 || (r = set_fpu(v)) < 0)
        return r;
    set_tsc_offset(v);
    return 0;
}

static void *map_anon(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

/* A vCPU's GDT/TSS page, exception stack and FPU scratch; the guest needs
 * the first two mapped. */
int arch_vcpu_init(struct dune_vcpu *v)
{
    int r;

    v->arch.cpu_page = map_anon(PAGE_SIZE);
    v->arch.ist_stack = map_anon(IST_SIZE);
    v->fpu = map_anon(sizeof *v->fpu);
    if (!v->arch.cpu_page || !v->arch.ist_stack || !v->fpu)
        return -ENOMEM;
    v->arch.ist_top = (uintptr_t)v->arch.ist_stack + IST_SIZE;
    r = mirror_range((uintptr_t)v->arch.cpu_page, (uintptr_t)v->arch.cpu_page + PAGE_SIZE,
                     PROT_READ | PROT_WRITE);
    if (r == 0)
        r = mirror_range((uintptr_t)v->arch.ist_stack, v->arch.ist_top, PROT_READ | PROT_WRITE);
    return r;
}

static void unmap(void *p, size_t len)
{
    if (p)
        dune_sys3(SYS_munmap, p, len, 0);
}

void arch_vcpu_free(struct dune_vcpu *v)
{
    unmap(v->arch.cpu_page, PAGE_SIZE);
    unmap(v->arch.ist_stack, IST_SIZE);
    unmap(v->fpu, sizeof *v->fpu);
}

/* Flush one page (va != 0) or everything, from guest code. */
int arch_flush_tlb(uintptr_t va)
{
    if (dune_vm.mode == DUNE_MODE_CPL0) {
        if (va) {
            __asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
        } else {
            unsigned long cr3;
            __asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
        }
    } else {
        /* step over the red zone: the caller may keep data there */
        __asm__ volatile("sub $128, %%rsp; call dune_gate; add $128, %%rsp" : : "D"(va) : "memory");
    }
    return 0;
}
