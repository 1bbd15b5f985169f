/*
 * check_dune.c - the Dune core: entering and leaving, forwarded system
 * calls, the address-space mirror, faults delivered as native signals,
 * privileged features and the KVM dirty log.  Each test runs in its own
 * process (Check's fork mode), so each enters a fresh VM.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdbool.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <linux/seccomp.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "dune.h"
#include "dune_test.h"

#define PAGE DUNE_PAGE_SIZE

/* Addresses nothing maps (hidden from the compiler's bounds checks). */
static volatile uintptr_t bad8 = 8, bad16 = 16, bad24 = 24, bad32 = 32;
#define BAD(a) (*(volatile int *)(a))

static unsigned cpl(void)
{
    unsigned short cs;

    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    return cs & 3;
}

/* ---- entering and leaving ---- */

START_TEST(test_enter_status)
{
    struct dune_status st;

    ck_assert_int_eq(dune_active(), 0);
    enter();
    ck_assert_int_eq(dune_active(), 1);
    dune_status(&st);
    ck_assert_int_eq(st.active, 1);
    ck_assert(st.mode == DUNE_MODE_CPL3 || st.mode == DUNE_MODE_CPL0);
    ck_assert_uint_eq(cpl(), st.mode == DUNE_MODE_CPL3 ? 3 : 0);
    ck_assert_uint_gt(st.memslots, 0);
    ck_assert_int_eq(dune_enter(NULL), -EALREADY);
}
END_TEST

START_TEST(test_leave_reenter)
{
    struct dune_status st;
    unsigned long before;
    pid_t ppid = getppid(); /* native */

    for (int i = 0; i < 5; i++) {
        enter();
        /* Each new VM forwards system calls with their native results. */
        /* (no ck_assert in between: in fork mode each one writes to Check's pipe) */
        dune_status(&st);
        before = st.syscalls;
        pid_t got = getppid();
        dune_status(&st);
        ck_assert_int_eq(got, ppid);
        ck_assert_uint_eq(st.syscalls, before + 1);
        before = st.syscalls + 2; /* the two asserts */
        ck_assert_int_eq(dune_leave(), 0);
        ck_assert_int_eq(dune_active(), 0);
        getppid(); /* native now: not counted */
        dune_status(&st);
        ck_assert_uint_eq(st.syscalls, before + 1); /* the leave hypercall itself */
    }
    ck_assert_int_eq(dune_leave(), -ENOTCONN);
}
END_TEST

START_TEST(test_bad_mode_env)
{
    struct dune_status st;

    setenv("DUNE_MODE", "ring2", 1);
    ck_assert_int_eq(dune_enter(NULL), -EINVAL);
    dune_status(&st);
    ck_assert_ptr_nonnull(strstr(st.reason, "DUNE_MODE=ring2"));
    ck_assert_int_eq(dune_active(), 0);
}
END_TEST

/* ---- system calls ---- */

START_TEST(test_syscall_results)
{
    pid_t pid = getpid(), ppid = getppid();
    int p[2], fd;
    char buf[16];

    enter();
    ck_assert_int_eq(getpid(), pid);
    ck_assert_int_eq(getppid(), ppid);
    ck_assert_int_eq(syscall(SYS_gettid), pid);
    errno = 0;
    ck_assert_int_eq(open("/nonexistent/x", O_RDONLY), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(syscall(99999), -1);
    ck_assert_int_eq(errno, ENOSYS);
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], "hello", 5), 5);
    ck_assert_int_eq(read(p[0], buf, sizeof buf), 5);
    ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
    fd = open("/proc/self/status", O_RDONLY);
    ck_assert_int_ge(fd, 0);
    close(fd);
}
END_TEST

/* The program's descriptors start where they would natively. */
START_TEST(test_fds_unchanged)
{
    int native = open("/dev/null", O_RDONLY), inside;

    close(native);
    enter();
    inside = open("/dev/null", O_RDONLY);
    ck_assert_int_eq(inside, native);
    ck_assert_int_eq(fcntl(inside, F_GETFD), 0);
}
END_TEST

static int64_t ts_ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* The vDSO clock inside the guest advances, and agrees with the host's:
 * read through the vDSO, then by the system call (forwarded, so the host
 * kernel answers), then through the vDSO again, the three are in order.
 * A frozen or offset vDSO clock fails one of these. */
START_TEST(test_vdso_clock)
{
    struct timespec native, a, h, b;
    struct dune_status st;
    unsigned long before;
    long spins = 0;

    ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &native), 0);
    enter();
    /* (no ck_assert in between: in fork mode each one writes to Check's pipe) */
    dune_status(&st);
    before = st.syscalls;
    int ra = clock_gettime(CLOCK_MONOTONIC, &a);
    int rh = (int)syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &h);
    int rb;
    do
        rb = clock_gettime(CLOCK_MONOTONIC, &b);
    while (rb == 0 && ts_ns(&b) == ts_ns(&a) && ++spins < 100000000);
    dune_status(&st);
    ck_assert_int_eq(ra, 0);
    ck_assert_int_eq(rh, 0);
    ck_assert_int_eq(rb, 0);
    printf("vdso_clock: %lu system call(s) for the reads (1 with a working vDSO)\n",
           st.syscalls - before);
    ck_assert_int_ge(ts_ns(&a), ts_ns(&native));
    ck_assert_int_le(ts_ns(&a), ts_ns(&h));
    ck_assert_int_le(ts_ns(&h), ts_ns(&b));
    ck_assert_msg(ts_ns(&b) > ts_ns(&a), "the vDSO clock does not advance");
    /* the same wall clock too */
    ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &a), 0);
    ck_assert_int_eq(syscall(SYS_clock_gettime, CLOCK_REALTIME, &h), 0);
    ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &b), 0);
    ck_assert_int_le(ts_ns(&a), ts_ns(&h));
    ck_assert_int_le(ts_ns(&h), ts_ns(&b));
}
END_TEST

START_TEST(test_fpu_state_carried)
{
    volatile double x = 1.5;
    char s[64];

    enter();
    x *= 3.0;
    snprintf(s, sizeof s, "%.3f %s", x, "avx-strlen-check-string-long-enough-for-vectors");
    ck_assert_str_eq(s, "4.500 avx-strlen-check-string-long-enough-for-vectors");
    ck_assert_uint_eq(strlen(s), 53);
}
END_TEST

/* ---- the mirror ---- */

START_TEST(test_mmap_munmap_mprotect)
{
    char *p;

    enter();
    p = mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    for (int i = 0; i < 64; i++)
        p[i * PAGE] = (char)i;
    ck_assert_int_eq(p[63 * PAGE], 63);
    ck_assert_int_eq(mprotect(p, 64 * PAGE, PROT_READ), 0);
    ck_assert_int_eq(p[5 * PAGE], 5);
    ck_assert_int_eq(mprotect(p, 64 * PAGE, PROT_READ | PROT_WRITE), 0);
    p[5 * PAGE] = 9;
    p = mremap(p, 64 * PAGE, 1024 * PAGE, MREMAP_MAYMOVE);
    ck_assert_ptr_ne(p, MAP_FAILED);
    ck_assert_int_eq(p[5 * PAGE], 9);
    p[1000 * PAGE] = 1;
    ck_assert_int_eq(munmap(p, 1024 * PAGE), 0);
}
END_TEST

START_TEST(test_brk_malloc)
{
    char *a, *big;

    enter();
    a = sbrk(0);
    ck_assert_int_eq(brk(a + 300 * PAGE), 0);
    memset(a, 7, 300 * PAGE);
    ck_assert_int_eq(brk(a), 0);
    big = malloc(64 << 20);
    ck_assert_ptr_nonnull(big);
    memset(big, 1, 64 << 20);
    free(big);
}
END_TEST

/* A mapping made behind the mirror's back (a raw syscall it never saw is
 * impossible, so use a file mapping created before entering and grown
 * stack pages) is resolved lazily. */
START_TEST(test_stack_growth)
{
    enter();
    /* ~1 MiB of stack in one frame forces growth below the mirrored stack */
    volatile char big[1 << 20];
    big[0] = 1;
    big[sizeof big - 1] = 2;
    ck_assert_int_eq(big[0] + big[sizeof big - 1], 3);
}
END_TEST

/* ---- faults as native signals ---- */

static sigjmp_buf jb;
static volatile int got_sig, got_code;
static void *volatile got_addr;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    got_sig = sig;
    got_code = si->si_code;
    got_addr = si->si_addr;
    siglongjmp(jb, 1);
}

static void catch_all(void)
{
    struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO };
    int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP };

    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    got_sig = got_code = 0;
    got_addr = NULL;
}

START_TEST(test_segv_maperr_accerr)
{
    char *p = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    catch_all();
    enter();
    if (!sigsetjmp(jb, 1))
        ((volatile char *)p)[100] = 1;
    ck_assert_int_eq(got_sig, SIGSEGV);
    ck_assert_int_eq(got_code, SEGV_ACCERR);
    ck_assert_ptr_eq(got_addr, p + 100);
    munmap(p, 2 * PAGE);
    if (!sigsetjmp(jb, 1))
        (void)((volatile char *)p)[PAGE + 3];
    ck_assert_int_eq(got_code, SEGV_MAPERR);
    ck_assert_ptr_eq(got_addr, p + PAGE + 3);
    ck_assert(dune_active());
}
END_TEST

START_TEST(test_sigfpe_sigill_sigtrap)
{
    volatile int zero = 0;

    catch_all();
    enter();
    if (!sigsetjmp(jb, 1))
        zero = 10 / zero;
    ck_assert_int_eq(got_sig, SIGFPE);
    ck_assert_int_eq(got_code, FPE_INTDIV);
    if (!sigsetjmp(jb, 1))
        __asm__ volatile("ud2");
    ck_assert_int_eq(got_sig, SIGILL);
    ck_assert_int_eq(got_code, ILL_ILLOPN);
    if (!sigsetjmp(jb, 1))
        __asm__ volatile("int3");
    ck_assert_int_eq(got_sig, SIGTRAP);
    ck_assert_int_eq(got_code, SI_KERNEL);
    if (!sigsetjmp(jb, 1))
        __asm__ volatile("hlt");
    ck_assert_int_eq(got_sig, SIGSEGV);
    ck_assert_int_eq(got_code, SI_KERNEL);
}
END_TEST

static volatile int skipped;
static void skip_insn(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;

    (void)sig, (void)si;
    skipped++;
    uc->uc_mcontext.gregs[REG_RIP] += 2; /* ud2 is two bytes */
    uc->uc_mcontext.gregs[REG_RBX] = 0x1234;
}

START_TEST(test_handler_edits_context)
{
    struct sigaction sa = { .sa_sigaction = skip_insn, .sa_flags = SA_SIGINFO };
    long rbx = 0;

    sigaction(SIGILL, &sa, NULL);
    enter();
    __asm__ volatile("xor %%ebx, %%ebx; ud2; mov %%rbx, %0" : "=r"(rbx) : : "rbx");
    ck_assert_int_eq(skipped, 1);
    ck_assert_int_eq(rbx, 0x1234);
}
END_TEST

static stack_t alt;
static volatile int on_alt;
static void alt_handler(int sig)
{
    char here;

    (void)sig;
    on_alt = &here >= (char *)alt.ss_sp && &here < (char *)alt.ss_sp + alt.ss_size;
    siglongjmp(jb, 1);
}

START_TEST(test_sigaltstack_mask)
{
    struct sigaction sa = { .sa_handler = alt_handler, .sa_flags = SA_ONSTACK };
    sigset_t m;

    alt.ss_size = 64 * 1024;
    alt.ss_sp = malloc(alt.ss_size);
    sigaltstack(&alt, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    enter();
    if (!sigsetjmp(jb, 1))
        BAD(bad16) = 1;
    ck_assert_int_eq(on_alt, 1);
    sigprocmask(SIG_SETMASK, NULL, &m);
    ck_assert_int_eq(sigismember(&m, SIGSEGV), 0); /* siglongjmp restored it */
}
END_TEST

/* Without a handler the process dies by the signal, as natively. */
static int child_status(void (*fn)(void), bool in_dune)
{
    int st;
    pid_t pid = fork();

    if (pid == 0) {
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        if (in_dune && dune_enter(NULL) != 0)
            _exit(99);
        fn();
        _exit(0);
    }
    waitpid(pid, &st, 0);
    return st;
}

static void crash_segv(void) { BAD(bad8) = 1; }
static void crash_fpe(void) { volatile int z = 0; z = 1 / z; }
static void crash_ill(void) { __asm__ volatile("ud2"); }
static void exit_42(void) { exit(42); }

START_TEST(test_death_status)
{
    void (*fns[])(void) = { crash_segv, crash_fpe, crash_ill, exit_42 };

    for (unsigned i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        int native = child_status(fns[i], false), dune = child_status(fns[i], true);
        ck_assert_msg(native == dune, "case %u: native status %#x, dune %#x", i, native, dune);
    }
}
END_TEST

/* ---- privileged features ---- */

START_TEST(test_pte_lookup_protect)
{
    char *p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t *pte;

    p[0] = 1;
    catch_all();
    enter();
    pte = dune_pte_lookup(p);
    ck_assert_ptr_nonnull(pte);
    ck_assert((*pte & (DUNE_PTE_P | DUNE_PTE_W)) == (DUNE_PTE_P | DUNE_PTE_W));
    ck_assert_uint_lt(*pte & DUNE_PTE_ADDR, 1ULL << dune_gpa_bits());
    ck_assert_uint_eq(dune_gpa_to_va(*pte & DUNE_PTE_ADDR), (uintptr_t)p);
    ck_assert_int_eq(dune_protect(p, PAGE, PROT_READ), 0);
    ck_assert_uint_eq(*pte & DUNE_PTE_W, 0);
    ck_assert_int_eq(p[0], 1); /* still readable */
    if (!sigsetjmp(jb, 1))
        p[1] = 2;
    ck_assert_int_eq(got_sig, SIGSEGV);
    ck_assert_int_eq(got_code, SEGV_ACCERR);
    ck_assert_int_eq(dune_protect(p, PAGE, PROT_READ | PROT_WRITE), 0);
    p[1] = 2;
    ck_assert_int_eq(dune_flush_tlb(), 0);
    ck_assert_int_eq(dune_flush_tlb_page(p), 0);
}
END_TEST

static volatile int pgflt_calls;
static char *pgflt_page;
static int my_pgflt(uintptr_t addr, uint64_t err, void *uc)
{
    (void)uc;
    pgflt_calls++;
    if (addr - (uintptr_t)pgflt_page < PAGE && (err & 2)) {
        dune_protect(pgflt_page, PAGE, PROT_READ | PROT_WRITE);
        return 0; /* retry */
    }
    return 1;
}

START_TEST(test_pgflt_handler)
{
    pgflt_page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    catch_all();
    enter();
    dune_set_pgflt_handler(my_pgflt);
    ck_assert_int_eq(dune_protect(pgflt_page, PAGE, PROT_READ), 0);
    ((volatile char *)pgflt_page)[7] = 7; /* handled by my_pgflt, then retried */
    ck_assert_int_eq(pgflt_calls, 1);
    ck_assert_int_eq(pgflt_page[7], 7);
    if (!sigsetjmp(jb, 1))
        BAD(bad24) = 1; /* declined: becomes SIGSEGV */
    ck_assert_int_eq(got_sig, SIGSEGV);
    ck_assert_int_eq(pgflt_calls, 2);
}
END_TEST

/* ---- KVM dirty log ---- */

START_TEST(test_dirty_log_exact)
{
    size_t n = 512;
    char *p = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t bm[512 / 64];
    unsigned seed = 12345;

    memset(p, 0, n * PAGE);
    enter();
    ck_assert_int_eq(dune_dirty_log_enable(p, n * PAGE, 1), 0);
    ck_assert_int_ge(dune_dirty_log_read_clear(p, n * PAGE, bm), 0);
    for (int round = 0; round < 4; round++) {
        uint64_t want[512 / 64] = { 0 };
        long cnt = 0;
        for (int k = 0; k < 40; k++) {
            size_t pg = rand_r(&seed) % n;
            size_t off = (rand_r(&seed) & 1) ? 0 : PAGE - 1; /* page edges */
            p[pg * PAGE + off] = (char)k;
            if (!(want[pg / 64] >> (pg % 64) & 1))
                cnt++;
            want[pg / 64] |= 1ULL << (pg % 64);
        }
        ck_assert_int_eq(dune_dirty_log_read_clear(p, n * PAGE, bm), cnt);
        for (size_t w = 0; w < n / 64; w++)
            ck_assert_uint_eq(bm[w], want[w]);
    }
    ck_assert_int_eq(dune_dirty_log_read_clear(p, n * PAGE, bm), 0);
}
END_TEST

/* Read-and-clear except the pages of `keep`: those are reported and stay
 * dirty (the next read reports them again), the others are cleared.  For
 * the dirty log (_i = 0) and for the D bits (_i = 1). */
START_TEST(test_dirty_read_except)
{
    long (*fn)(void *, size_t, uint64_t *, const uint64_t *) =
        _i ? dune_dirty_read_clear_except : dune_dirty_log_read_clear_except;
    char *p = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t bm, keep = 1 | 1 << 3 | 1 << 5;

    memset(p, 0, 8 * PAGE);
    enter();
    if (_i == 0)
        ck_assert_int_eq(dune_dirty_log_enable(p, 8 * PAGE, 1), 0);
    ck_assert_int_ge(fn(p, 8 * PAGE, &bm, NULL), 0);
    p[0] = p[PAGE] = p[3 * PAGE] = 1;
    ck_assert_int_eq(fn(p, 8 * PAGE, &bm, &keep), 3);
    ck_assert_uint_eq(bm, 0x0b);
    ck_assert_int_eq(fn(p, 8 * PAGE, &bm, &keep), 2); /* 0 and 3 kept, still dirty */
    ck_assert_uint_eq(bm, 0x09);
    p[PAGE] = 2;
    ck_assert_int_eq(fn(p, 8 * PAGE, &bm, NULL), 3); /* kept ones until cleared */
    ck_assert_uint_eq(bm, 0x0b);
    ck_assert_int_eq(fn(p, 8 * PAGE, &bm, &keep), 0); /* keeping clean pages: nothing */
    p[5 * PAGE] = 1;
    ck_assert_int_eq(fn(p, 8 * PAGE, &bm, &keep), 1);
    ck_assert_uint_eq(bm, 0x20);
    ck_assert_int_eq(fn(p, 8 * PAGE, &bm, NULL), 1);
    ck_assert_int_eq(fn(p, 8 * PAGE, &bm, NULL), 0);
    munmap(p, 8 * PAGE);
}
END_TEST

/* ---- CPL0 mode (emulated here, so short) ---- */

static long raw_getpid(void)
{
    long r;

    __asm__ volatile("syscall" : "=a"(r) : "a"((long)SYS_getpid) : "rcx", "r11", "memory");
    return r;
}

/*
 * Guest CPL0 is emulated instruction by instruction on a paravirtual KVM,
 * and the emulator cannot run glibc's vector string routines: while inside,
 * this test runs only plain code and raw system calls (even Check's
 * ck_assert writes through libc), and checks its results after leaving.
 */
/* Signal handler that touches no libc: usable at emulated CPL0. */
static volatile int c0_sig, c0_code;
static void *volatile c0_addr;
static void skip2(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;

    c0_sig = sig, c0_code = si->si_code, c0_addr = si->si_addr;
    uc->uc_mcontext.gregs[REG_RIP] += 2; /* ud2 and movb %al,(%rdi) are 2 bytes */
}

START_TEST(test_cpl0_mode)
{
    struct sigaction sa = { .sa_sigaction = skip2, .sa_flags = SA_SIGINFO };
    char *ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int ill_sig, ill_code;
    char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t bm[1];
    long pid = getpid(), pid_in;
    long dirty_before, dirty_after;
    unsigned level;
    int left, entered;
    struct dune_options o = { .mode = DUNE_MODE_CPL0 };

    p[0] = 0;
    sigaction(SIGILL, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    entered = dune_enter(&o);
    level = cpl();
    pid_in = raw_getpid();
    dirty_before = dune_dirty_read_clear(p, 2 * PAGE, bm);
    p[PAGE] = 1;
    dirty_after = dune_dirty_read_clear(p, 2 * PAGE, bm);
    __asm__ volatile("ud2");
    ill_sig = c0_sig, ill_code = c0_code;
    __asm__ volatile("movb %%al, (%%rdi)" : : "D"(ro + 8), "a"(1) : "memory");
    left = dune_leave();
    ck_assert_int_eq(entered, 0);
    ck_assert_int_eq(left, 0);
    ck_assert_uint_eq(level, 0);
    ck_assert_int_eq(pid_in, pid);
    ck_assert_int_ge(dirty_before, 0);
    /* The D bit is set by guest writes where the CPU does it (CPL0 here). */
    ck_assert_int_eq(dirty_after, 1);
    ck_assert_uint_eq(bm[0], 2);
    /* Faults at CPL0 become the same signals, and handlers may skip. */
    ck_assert_int_eq(ill_sig, SIGILL);
    ck_assert_int_eq(ill_code, ILL_ILLOPN);
    ck_assert_int_eq(c0_sig, SIGSEGV);
    ck_assert_int_eq(c0_code, SEGV_ACCERR);
    ck_assert_ptr_eq(c0_addr, ro + 8);
}
END_TEST

/* ---- failures leave the program running natively ---- */

START_TEST(test_no_kvm_device)
{
    struct dune_status st;

    /* Hide /dev/kvm in a private mount namespace (we run as root). */
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", "/dev", "tmpfs", 0, NULL) != 0) {
        fprintf(stderr, "test_no_kvm_device: needs root for a mount namespace, skipped\n");
        return;
    }
    ck_assert_int_eq(dune_enter(NULL), -ENOENT);
    dune_status(&st);
    ck_assert_ptr_nonnull(strstr(st.reason, "/dev/kvm"));
    ck_assert_int_eq(dune_active(), 0);
    ck_assert_int_eq(getpid() > 0, 1); /* still running natively */
}
END_TEST

START_TEST(test_no_permission)
{
    struct dune_status st;

    if (getuid() != 0 || setuid(65534) != 0) {
        fprintf(stderr, "test_no_permission: needs root to drop privileges, skipped\n");
        return;
    }
    ck_assert_int_eq(dune_enter(NULL), -EACCES);
    dune_status(&st);
    ck_assert_ptr_nonnull(strstr(st.reason, "Permission denied"));
}
END_TEST

START_TEST(test_too_many_fds)
{
    struct rlimit rl = { 16, 16 }, now;
    struct dune_status st;
    /* With CAP_SYS_RESOURCE (root in the SVM guest, not in our sandbox)
     * the hard limit can be lifted, and Dune lifts it just long enough to
     * put its descriptors above the program's, then puts it back. */
    bool can_raise = dune_test_can_raise_nofile();

    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    while (open("/dev/null", O_RDONLY) >= 0)
        ;
    if (can_raise) {
        ck_assert_int_eq(dune_enter(NULL), 0);
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &now), 0);
        ck_assert_uint_eq(now.rlim_cur, 16);
        ck_assert_uint_eq(now.rlim_max, 16);
        ck_assert_int_eq(open("/dev/null", O_RDONLY), -1);
        ck_assert_int_eq(errno, EMFILE);
        return;
    }
    ck_assert_int_eq(dune_enter(NULL), -EMFILE);
    dune_status(&st);
    /* no room above the limit (check_dune_fds.c tests the rest) */
    ck_assert_ptr_nonnull(strstr(st.reason, "RLIMIT_NOFILE 16 (hard 16)"));
}
END_TEST

/* ---- review findings: each once failed ---- */

/* Closing every descriptor (as daemons and subprocess close_fds do) must
 * not close Dune's: natively the program never had them. */
START_TEST(test_close_all_fds)
{
    struct rlimit rl;
    int fd;

    enter();
    getrlimit(RLIMIT_NOFILE, &rl);
    ck_assert_int_eq(syscall(SYS_close_range, 3, ~0U, 0), 0);
    for (unsigned i = 3; i < rl.rlim_cur; i++)
        close((int)i);
    fd = open("/dev/null", O_RDONLY);
    ck_assert_int_eq(fd, 3);
    ck_assert_int_eq(dup2(fd, (int)rl.rlim_cur - 1), (int)rl.rlim_cur - 1);
    ck_assert_int_eq(getppid() > 0, 1); /* still alive inside */
    ck_assert(dune_active());
}
END_TEST

START_TEST(test_seccomp_refused)
{
    enter();
    errno = 0;
    ck_assert_int_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(getppid() > 0, 1);
}
END_TEST

static volatile int alt_flags = -1;
static void alt_query(int sig)
{
    stack_t o;

    (void)sig;
    sigaltstack(NULL, &o);
    alt_flags = o.ss_flags;
}

START_TEST(test_sigaltstack_onstack)
{
    struct sigaction sa = { .sa_handler = alt_query, .sa_flags = SA_ONSTACK };
    stack_t ss = { .ss_size = 65536 };

    ss.ss_sp = malloc(ss.ss_size);
    ck_assert_int_eq(sigaltstack(&ss, NULL), 0);
    sigaction(SIGUSR1, &sa, NULL);
    enter();
    raise(SIGUSR1);
    ck_assert_int_eq(alt_flags, SS_ONSTACK);
}
END_TEST

static volatile uint32_t h_mxcsr, fp_magic;
static void fpu_probe(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;

    (void)sig, (void)si;
    __asm__ volatile("stmxcsr %0" : "=m"(h_mxcsr));
    fp_magic = *(uint32_t *)((char *)uc->uc_mcontext.fpregs + 464);
}

START_TEST(test_handler_fpu_state)
{
    struct sigaction sa = { .sa_sigaction = fpu_probe, .sa_flags = SA_SIGINFO | SA_RESETHAND };
    struct sigaction now;
    uint32_t m = 0x7f80; /* all exceptions masked, round toward zero */

    sigaction(SIGUSR2, &sa, NULL);
    enter();
    __asm__ volatile("ldmxcsr %0" : : "m"(m));
    raise(SIGUSR2);
    ck_assert_uint_eq(h_mxcsr, 0x1f80);     /* a clean FPU, as the kernel gives */
    ck_assert_uint_eq(fp_magic, 0x46505853); /* FP_XSTATE_MAGIC1 */
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    ck_assert_uint_eq(m, 0x7f80);            /* restored by sigreturn */
    sigaction(SIGUSR2, NULL, &now);
    ck_assert_ptr_eq((void *)now.sa_handler, (void *)SIG_DFL);
    ck_assert(now.sa_flags & SA_SIGINFO);    /* SA_RESETHAND resets the handler only */
}
END_TEST

START_TEST(test_sigbus_past_eof)
{
    char path[] = "/tmp/check_dune_bus.XXXXXX";
    int fd = mkstemp(path);
    char *p;

    ck_assert_int_eq(ftruncate(fd, PAGE), 0);
    p = mmap(NULL, 3 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    unlink(path);
    /* (9p without a cache refuses shared maps of a writable file) */
    ck_assert_ptr_ne(p, MAP_FAILED);
    catch_all();
    enter();
    if (!sigsetjmp(jb, 1))
        (void)((volatile char *)p)[2 * PAGE];
    ck_assert_int_eq(got_sig, SIGBUS);
    ck_assert(dune_active());
}
END_TEST

/* mprotect over a hole fails, but natively changes the part before it. */
START_TEST(test_mprotect_partial_failure)
{
    char *p = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    catch_all();
    enter();
    /* the hole is made inside, so that nothing of Dune's can fill it */
    ck_assert_int_eq(munmap(p + PAGE, PAGE), 0);
    ck_assert_int_eq(mprotect(p, 3 * PAGE, PROT_READ), -1);
    ck_assert_int_eq(errno, ENOMEM);
    if (!sigsetjmp(jb, 1))
        p[0] = 1;
    ck_assert_int_eq(got_sig, SIGSEGV);
    ck_assert_int_eq(got_code, SEGV_ACCERR);
}
END_TEST

/* A huge reservation is mirrored lazily: cheap to map, usable anywhere. */
START_TEST(test_huge_noreserve)
{
    size_t len = 1UL << 40;
    struct timespec a, b;
    char *p;

    enter();
    clock_gettime(CLOCK_MONOTONIC, &a);
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
             0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    ck_assert_ptr_ne(p, MAP_FAILED);
    ck_assert_int_lt(b.tv_sec - a.tv_sec, 2);
    p[0] = 1;
    p[len / 2] = 2;
    p[len - 1] = 3;
    ck_assert_int_eq(p[0] + p[len / 2] + p[len - 1], 6);
    ck_assert_int_eq(mprotect(p, len, PROT_READ), 0);
    ck_assert_int_eq(p[len - 1], 3);
    ck_assert_int_eq(munmap(p, len), 0);
}
END_TEST

/* Out of descriptors, a lazily mirrored stack still grows. */
START_TEST(test_stack_growth_without_fds)
{
    struct rlimit rl = { 64, 64 };

    enter();
    setrlimit(RLIMIT_NOFILE, &rl);
    while (open("/dev/null", O_RDONLY) >= 0)
        ;
    volatile char big[2 << 20];
    big[0] = 1;
    big[sizeof big - 1] = 2;
    ck_assert_int_eq(big[0] + big[sizeof big - 1], 3);
}
END_TEST

static Suite *dune_suite(void)
{
    Suite *s = suite_create("dune");
    TCase *core = tcase_create("core"), *faults = tcase_create("faults"),
          *priv = tcase_create("privileged"), *errs = tcase_create("errors"),
          *review = tcase_create("native-semantics");

    tcase_set_timeout(core, 120);
    tcase_set_timeout(faults, 120);
    tcase_set_timeout(priv, 120);
    tcase_set_timeout(errs, 60);
    tcase_set_timeout(review, 120);
    tcase_add_test(core, test_enter_status);
    tcase_add_test(core, test_leave_reenter);
    tcase_add_test(core, test_bad_mode_env);
    tcase_add_test(core, test_syscall_results);
    tcase_add_test(core, test_fds_unchanged);
    tcase_add_test(core, test_vdso_clock);
    tcase_add_test(core, test_fpu_state_carried);
    tcase_add_test(core, test_mmap_munmap_mprotect);
    tcase_add_test(core, test_brk_malloc);
    tcase_add_test(core, test_stack_growth);
    tcase_add_test(faults, test_segv_maperr_accerr);
    tcase_add_test(faults, test_sigfpe_sigill_sigtrap);
    tcase_add_test(faults, test_handler_edits_context);
    tcase_add_test(faults, test_sigaltstack_mask);
    tcase_add_test(faults, test_death_status);
    tcase_add_test(priv, test_pte_lookup_protect);
    tcase_add_test(priv, test_pgflt_handler);
    tcase_add_test(priv, test_dirty_log_exact);
    tcase_add_loop_test(priv, test_dirty_read_except, 0, 2);
    tcase_add_test(priv, test_cpl0_mode);
    tcase_add_test(errs, test_no_kvm_device);
    tcase_add_test(errs, test_no_permission);
    tcase_add_test(errs, test_too_many_fds);
    tcase_add_test(review, test_close_all_fds);
    tcase_add_test(review, test_seccomp_refused);
    tcase_add_test(review, test_sigaltstack_onstack);
    tcase_add_test(review, test_handler_fpu_state);
    tcase_add_test(review, test_sigbus_past_eof);
    tcase_add_test(review, test_mprotect_partial_failure);
    tcase_add_test(review, test_huge_noreserve);
    tcase_add_test(review, test_stack_growth_without_fds);
    suite_add_tcase(s, review);
    suite_add_tcase(s, core);
    suite_add_tcase(s, faults);
    suite_add_tcase(s, priv);
    suite_add_tcase(s, errs);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    dune_test_require("check_dune");
    sr = srunner_create(dune_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
