/*
 * check_dune_threads.c - threads, signals, fork and leaving, inside Dune.
 * Each test runs in its own process (Check's fork mode) and enters Dune.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <linux/futex.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "dune.h"
#include "dune_test.h"

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* ---- threads ---- */

struct worker {
    int id, active, ok;
    long tid;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    unsigned seed = (unsigned)w->id;
    struct timespec t0, t;

    w->active = dune_active();
    w->tid = syscall(SYS_gettid);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    w->ok = 1;
    do {
        size_t n = 1 + rand_r(&seed) % 20000;
        unsigned char *p = malloc(n);
        memset(p, w->id, n);
        for (size_t i = 0; i < n; i += 997)
            if (p[i] != (unsigned char)w->id)
                w->ok = 0;
        free(p);
        if (getppid() <= 0)
            w->ok = 0;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 1500000000L);
    return w;
}

/* 8 threads x malloc/free/syscalls: every thread runs inside, on its own
 * vCPU; vCPUs and descriptors are reused, not leaked. */
START_TEST(test_thread_stress)
{
    struct dune_status st;
    int fds;

    enter();
    for (int round = 0; round < 3; round++) {
        pthread_t t[8];
        struct worker w[8];
        for (int i = 0; i < 8; i++) {
            w[i] = (struct worker){ .id = i + 1 };
            ck_assert_int_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
        }
        for (int i = 0; i < 8; i++) {
            ck_assert_int_eq(pthread_join(t[i], NULL), 0);
            ck_assert_int_eq(w[i].active, 1);
            ck_assert_int_eq(w[i].ok, 1);
            ck_assert_int_ne(w[i].tid, getpid());
        }
        if (round == 0)
            fds = count_fds();
        else
            ck_assert_int_eq(count_fds(), fds);
    }
    dune_status(&st);
    ck_assert_uint_le(st.vcpus, 9); /* reused: at most 8 workers + main at once */
    ck_assert_uint_gt(st.max_vcpus, 8);
    ck_assert_uint_eq(dune_active_vcpus(), 1);
    ck_assert_uint_eq(dune_native_threads(), 0);
}
END_TEST

/* ---- signals ---- */

static volatile int got;
static volatile uintptr_t handler_sp;
static volatile int handler_cpl;
static int wake_fd = -1;

static unsigned cpl(void)
{
    unsigned short cs;

    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    return cs & 3;
}

static void on_sig(int sig)
{
    char here;

    got = sig;
    handler_sp = (uintptr_t)&here;
    handler_cpl = (int)cpl();
    if (wake_fd >= 0)
        (void)!write(wake_fd, "x", 1);
}

static void install(int sig, int flags)
{
    struct sigaction sa = { .sa_handler = on_sig, .sa_flags = flags };

    sigaction(sig, &sa, NULL);
}

/* The handler runs in the guest, on the interrupted stack, at the
 * program's privilege level; sigaction reads back what was installed. */
/*
 * The write barrier of Boehm's mprotect mode, from two threads: one keeps
 * write-protecting a region while the other writes into it, and the
 * SIGSEGV handler opens each page it faults on.  Natively every write to a
 * protected page is a SIGSEGV.  Inside Dune the host's mprotect and our
 * copy of it into the guest page tables are two steps; a write on another
 * vCPU between them reaches a host page that is no longer writable, KVM_RUN
 * fails with EFAULT, and that must still end as the native SIGSEGV, never
 * as a SIGBUS with no address.
 */
#define RACE_PAGES 64
static char *race_area;
static atomic_ulong race_faults;
static atomic_bool race_stop;

static void race_segv(int sig, siginfo_t *si, void *uc)
{
    uintptr_t pg = (uintptr_t)si->si_addr & ~(uintptr_t)4095;

    (void)sig, (void)uc;
    if (pg < (uintptr_t)race_area || pg >= (uintptr_t)race_area + RACE_PAGES * 4096)
        abort();
    atomic_fetch_add(&race_faults, 1);
    mprotect((void *)pg, 4096, PROT_READ | PROT_WRITE);
}

static void *race_protector(void *arg)
{
    (void)arg;
    while (!atomic_load(&race_stop)) {
        mprotect(race_area, RACE_PAGES * 4096, PROT_READ);
        sched_yield();
    }
    return NULL;
}

START_TEST(test_mprotect_write_race)
{
    struct sigaction sa = { .sa_sigaction = race_segv, .sa_flags = SA_SIGINFO };
    struct timespec t0, t;
    unsigned long writes = 0;
    pthread_t th;

    race_area = mmap(NULL, RACE_PAGES * 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(race_area, MAP_FAILED);
    sigaction(SIGSEGV, &sa, NULL);
    enter();
    ck_assert_int_eq(pthread_create(&th, NULL, race_protector, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        for (int i = 0; i < RACE_PAGES; i++, writes++)
            race_area[i * 4096 + (writes & 4095)] = (char)writes;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (t.tv_sec - t0.tv_sec < 3);
    atomic_store(&race_stop, true);
    pthread_join(th, NULL);
    printf("mprotect_write_race: %lu writes, %lu write faults\n", writes,
           atomic_load(&race_faults));
    ck_assert_uint_gt(atomic_load(&race_faults), 0);
}
END_TEST

START_TEST(test_async_in_guest)
{
    struct sigaction old;
    char here;
    struct itimerval it = { { 0, 0 }, { 0, 100000 } };
    volatile unsigned long spin = 0;
    struct dune_status st;

    enter();
    install(SIGALRM, 0);
    sigaction(SIGALRM, NULL, &old);
    ck_assert_ptr_eq((void *)old.sa_handler, (void *)on_sig);
    setitimer(ITIMER_REAL, &it, NULL);
    while (!got)
        spin++; /* pure guest code: the signal must interrupt it */
    ck_assert_int_eq(got, SIGALRM);
    dune_status(&st);
    ck_assert_int_eq(handler_cpl, st.mode == DUNE_MODE_CPL3 ? 3 : 0);
    ck_assert_msg(handler_sp < (uintptr_t)&here && (uintptr_t)&here - handler_sp < 65536,
                  "handler stack %#lx far from the guest stack %p", (unsigned long)handler_sp,
                  (void *)&here);
}
END_TEST

START_TEST(test_eintr_and_restart)
{
    int p[2];
    char c;
    ssize_t r;

    enter();
    ck_assert_int_eq(pipe(p), 0);
    install(SIGALRM, 0);
    alarm(1);
    r = read(p[0], &c, 1);
    ck_assert_int_eq(r, -1);
    ck_assert_int_eq(errno, EINTR);
    ck_assert_int_eq(got, SIGALRM);
    /* With SA_RESTART the read goes on after the handler: the handler
     * itself makes it succeed. */
    got = 0;
    wake_fd = p[1];
    install(SIGALRM, SA_RESTART);
    alarm(1);
    r = read(p[0], &c, 1);
    ck_assert_int_eq(r, 1);
    ck_assert_int_eq(c, 'x');
    ck_assert_int_eq(got, SIGALRM);
}
END_TEST

START_TEST(test_mask_defers)
{
    sigset_t s;

    enter();
    install(SIGUSR1, 0);
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    raise(SIGUSR1);
    ck_assert_int_eq(got, 0);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    ck_assert_int_eq(got, SIGUSR1);
}
END_TEST

static void *wait_for_signal(void *arg)
{
    (void)arg;
    while (!got)
        ; /* guest code on another vCPU */
    return (void *)(long)dune_active();
}

/* A queued but blocked signal must not disturb system calls (they once
 * all failed with EINTR, so abort() could not even kill the process). */
START_TEST(test_blocked_signal_queued)
{
    sigset_t s;
    int p[2];
    char c;

    enter();
    install(SIGUSR1, 0);
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    pthread_kill(pthread_self(), SIGUSR1); /* queued on the host side, blocked */
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], "y", 1), 1);
    ck_assert_int_eq(read(p[0], &c, 1), 1);
    ck_assert_int_gt(getppid(), 0);
    ck_assert_int_eq(got, 0);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    ck_assert_int_eq(got, SIGUSR1);
}
END_TEST

/* The sigsuspend pattern (bdwgc's suspend handler waits like this): the
 * signal is blocked, queued, and must run its handler inside sigsuspend. */
START_TEST(test_sigsuspend_delivers)
{
    sigset_t s, none, now;

    enter();
    install(SIGUSR1, 0);
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    raise(SIGUSR1);
    ck_assert_int_eq(got, 0);
    sigemptyset(&none);
    ck_assert_int_eq(sigsuspend(&none), -1);
    ck_assert_int_eq(errno, EINTR);
    ck_assert_int_eq(got, SIGUSR1);
    sigprocmask(SIG_SETMASK, NULL, &now);
    ck_assert_int_eq(sigismember(&now, SIGUSR1), 1); /* restored after the call */
}
END_TEST

START_TEST(test_pthread_kill_thread_in_guest)
{
    pthread_t t;
    void *res;

    enter();
    install(SIGUSR2, 0);
    ck_assert_int_eq(pthread_create(&t, NULL, wait_for_signal, NULL), 0);
    usleep(100000);
    ck_assert_int_eq(pthread_kill(t, SIGUSR2), 0);
    ck_assert_int_eq(pthread_join(t, &res), 0);
    ck_assert_int_eq(got, SIGUSR2);
    ck_assert_ptr_eq(res, (void *)1L);
}
END_TEST

START_TEST(test_sigchld_and_fork_wait)
{
    int st;
    pid_t pid;

    enter();
    install(SIGCHLD, SA_RESTART);
    pid = fork();
    if (pid == 0)
        _exit(7);
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 7);
    ck_assert_int_eq(got, SIGCHLD);
}
END_TEST

/* Run n threads of fn at once; each must return want. */
static void run_threads(int n, void *(*fn)(void *), void *want)
{
    pthread_t t[8];
    void *res;

    ck_assert_int_le(n, 8);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, fn, NULL), 0);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(pthread_join(t[i], &res), 0);
        ck_assert_ptr_eq(res, want);
    }
}

static void *fork_in_thread(void *arg)
{
    int st;
    pid_t pid = fork();

    (void)arg;
    if (pid == 0)
        _exit(3);
    waitpid(pid, &st, 0);
    return (void *)(long)(WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

START_TEST(test_fork_in_threads)
{
    enter();
    run_threads(4, fork_in_thread, (void *)3L);
}
END_TEST

/* A forked child stays inside Dune, in a VM of its own; with the native
 * policy it leaves.  Either way it sees the parent's memory as natively. */
static int fork_child_active(void)
{
    static int shared = 42;
    int st;
    pid_t pid = fork();

    if (pid == 0) {
        char *m = malloc(1 << 20);
        m[12345] = 1;
        _exit(shared == 42 && m[12345] == 1 ? 10 + dune_active() : 1);
    }
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_fork_stays_inside)
{
    enter();
    ck_assert_int_eq(fork_child_active(), 11);
    dune_set_fork_policy(DUNE_FORK_NATIVE);
    ck_assert_int_eq(fork_child_active(), 10);
    dune_set_fork_policy(DUNE_FORK_STAY);
    ck_assert_int_eq(fork_child_active(), 11);
}
END_TEST

/* A forked child inside Dune resolves its lazy faults against its *own*
 * mappings: it once read them through the parent's /proc/self/maps, so a
 * large (lazily mirrored) mapping made by the child faulted with SIGSEGV,
 * and a write to a page the child had made read-only came as SEGV_MAPERR
 * instead of SEGV_ACCERR (Boehm GC's mprotect tracking then gave up). */
static volatile int segv_code;
static char *segv_page;
static void on_segv_code(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    segv_code = si->si_code;
    mprotect(segv_page, 4096, PROT_READ | PROT_WRITE);
}

static int child_uses_own_mappings(void)
{
    size_t big = 256UL << 20; /* above the eager-mirror limit */
    char *m = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    struct sigaction sa;

    if (m == MAP_FAILED)
        return 2;
    m[0] = 1;
    m[big - 1] = 2;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv_code;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    segv_page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (segv_page == MAP_FAILED)
        return 3;
    (void)*(volatile char *)segv_page; /* mirrored read-only */
    segv_page[0] = 1;
    return segv_code == SEGV_ACCERR && m[0] + m[big - 1] == 3 ? 0 : 4;
}

START_TEST(test_fork_child_sees_own_mappings)
{
    pid_t pid;
    int status;

    enter();
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(child_uses_own_mappings());
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}
END_TEST

/* The child's fresh VM has no dirty log of the parent's writes: its first
 * read must report every logged page, never fewer. */
START_TEST(test_fork_dirty_log_conservative)
{
    size_t n = 64;
    char *p = mmap(NULL, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t bm[1];
    int st;
    pid_t pid;

    enter();
    ck_assert_int_eq(dune_dirty_log_enable(p, n * 4096, 1), 0);
    dune_dirty_log_read_clear(p, n * 4096, bm);
    p[3 * 4096] = 1; /* dirty in the parent, unread at fork */
    pid = fork();
    if (pid == 0) {
        long a = dune_dirty_log_read_clear(p, n * 4096, bm);
        long b = dune_dirty_log_read_clear(p, n * 4096, bm);
        p[5 * 4096] = 1;
        long c = dune_dirty_log_read_clear(p, n * 4096, bm);
        _exit(a == (long)n && b == 0 && c == 1 && bm[0] == (1ULL << 5) ? 0 : 1);
    }
    waitpid(pid, &st, 0);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    ck_assert_int_eq(dune_dirty_log_read_clear(p, n * 4096, bm), 1); /* the parent's own */
}
END_TEST

/* Default actions stay native: the same wait status as natively. */
static int status_of(int sig, bool in_dune)
{
    int st;
    pid_t pid = fork();

    if (pid == 0) {
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        /* Check's runner leaves a SIGTERM handler of its own behind. */
        signal(sig, SIG_DFL);
        if (in_dune && dune_enter(NULL) != 0)
            _exit(99);
        raise(sig);
        _exit(0);
    }
    waitpid(pid, &st, 0);
    return st;
}

START_TEST(test_default_actions)
{
    int sigs[] = { SIGTERM, SIGUSR1, SIGABRT, SIGCHLD, SIGWINCH };

    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        ck_assert_int_eq(status_of(sigs[i], false), status_of(sigs[i], true));
}
END_TEST

static void *leave_in_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        if (dune_leave() != 0 || dune_active() || dune_enter(NULL) != 0 || !dune_active())
            return NULL;
    }
    return (void *)1L;
}

START_TEST(test_leave_reenter_threads)
{
    enter();
    run_threads(2, leave_in_thread, (void *)1L);
}
END_TEST

/* ---- stop and continue ---- */

struct sc_child {
    bool in_dune;
    int out, ctl_main, ctl_thread; /* pipe ends */
};
static struct sc_child sc;

/* Two-byte tokens, so the parent can read them one at a time.  "1" means
 * "as expected for this run": inside Dune when the run is in Dune. */
static void sc_say(char what, bool ok)
{
    char tok[2] = { what, ok ? '1' : '0' };

    (void)!write(sc.out, tok, 2);
}

static void sc_on_cont(int sig)
{
    (void)sig;
    sc_say('C', dune_active() == sc.in_dune); /* the handler runs in the guest */
}

/* A thread inside Dune, blocked in read() across the stops. */
static void *sc_thread(void *arg)
{
    sigset_t cont;
    char c;

    (void)arg;
    sigemptyset(&cont);
    sigaddset(&cont, SIGCONT);
    pthread_sigmask(SIG_BLOCK, &cont, NULL); /* the handler runs on main */
    sc_say('W', read(sc.ctl_thread, &c, 1) == 1 && dune_active() == sc.in_dune);
    return NULL;
}

static void __attribute__((noreturn)) sc_child_main(void)
{
    struct sigaction sa = { .sa_handler = sc_on_cont, .sa_flags = SA_RESTART };
    pthread_t t;
    char c;

    signal(SIGTSTP, SIG_DFL);
    if (sc.in_dune && dune_enter(NULL) != 0)
        _exit(99);
    sigaction(SIGCONT, &sa, NULL);
    if (pthread_create(&t, NULL, sc_thread, NULL) != 0)
        _exit(98);
    sc_say('R', dune_active() == sc.in_dune);
    if (read(sc.ctl_main, &c, 1) != 1) /* stopped and continued meanwhile */
        _exit(97);
    raise(SIGTSTP); /* default action: stop */
    sc_say('T', true);
    pthread_join(t, NULL);
    sc_say('D', dune_active() == sc.in_dune);
    _exit(0);
}

static void sc_expect_token(int fd, char *log, size_t len)
{
    char tok[3] = "";

    ck_assert_int_eq(read(fd, tok, 2), 2);
    strncat(log, tok, len - strlen(log) - 1);
    strncat(log, " ", len - strlen(log) - 1);
}

/* What the parent sees: wait statuses and the child's tokens, in order. */
static void sc_status(pid_t pid, int opts, char *log, size_t len)
{
    char b[16];
    int st;

    ck_assert_int_eq(waitpid(pid, &st, opts), pid);
    if (WIFSTOPPED(st))
        snprintf(b, sizeof b, "stop%d ", WSTOPSIG(st));
    else if (WIFCONTINUED(st))
        snprintf(b, sizeof b, "cont ");
    else if (WIFEXITED(st))
        snprintf(b, sizeof b, "exit%d ", WEXITSTATUS(st));
    else
        snprintf(b, sizeof b, "sig%d ", WTERMSIG(st));
    strncat(log, b, len - strlen(log) - 1);
}

static void stop_cont_run(bool in_dune, char *log, size_t len)
{
    int out[2], cm[2], ct[2];
    pid_t pid;

    ck_assert(pipe(out) == 0 && pipe(cm) == 0 && pipe(ct) == 0);
    log[0] = 0;
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        sc = (struct sc_child){ in_dune, out[1], cm[0], ct[0] };
        sc_child_main();
    }
    close(out[1]);
    sc_expect_token(out[0], log, len);          /* R: running, thread started */
    kill(pid, SIGSTOP);
    sc_status(pid, WUNTRACED, log, len);
    kill(pid, SIGCONT);
    sc_status(pid, WCONTINUED, log, len);
    sc_expect_token(out[0], log, len);          /* C: the SIGCONT handler */
    ck_assert_int_eq(write(cm[1], "t", 1), 1);  /* now stop yourself */
    sc_status(pid, WUNTRACED, log, len);
    kill(pid, SIGCONT);
    sc_status(pid, WCONTINUED, log, len);
    sc_expect_token(out[0], log, len);          /* C */
    sc_expect_token(out[0], log, len);          /* T: raise returned */
    ck_assert_int_eq(write(ct[1], "g", 1), 1);  /* the thread's read */
    sc_expect_token(out[0], log, len);          /* W */
    sc_expect_token(out[0], log, len);          /* D */
    sc_status(pid, 0, log, len);
    close(out[0]);
    close(cm[1]);
    close(ct[1]);
}

/* SIGSTOP from the parent, SIGTSTP's default action, SIGCONT with a
 * handler (run in the guest): a Dune process, and its thread blocked in a
 * forwarded read, behave as the same program natively. */
START_TEST(test_stop_continue)
{
    char native[256], dune[256];

    stop_cont_run(false, native, sizeof native);
    stop_cont_run(true, dune, sizeof dune);
    printf("stop_continue: native: %s\nstop_continue: dune:   %s\n", native, dune);
    ck_assert_str_eq(native, "R1 stop19 cont C1 stop20 cont C1 T1 W1 D1 exit0 ");
    ck_assert_str_eq(dune, native);
}
END_TEST

/* ---- CPL0 mode (emulated here: raw code and raw system calls only) ---- */

#define C0_STACK (64 << 10)

static long raw3(long nr, long a, long b, long c)
{
    long r;

    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

/* What a raw thread saw; plain stores only. */
struct c0_result {
    volatile long pid, tid, cpl, active, wrote;
};
static struct c0_result c0_res[2];
static volatile int c0_which;
static int c0_pipe[2];
/* CPL0 through the API: DUNE_MODE=cpl0 is refused where CPL0 is emulated. */
static const struct dune_options c0_opts = { .mode = DUNE_MODE_CPL0 };

static void c0_thread_fn(void)
{
    struct c0_result *r = &c0_res[c0_which];
    unsigned short cs;

    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    r->cpl = cs & 3;
    r->active = dune_active(); /* reads this thread's own TLS */
    r->pid = raw3(SYS_getpid, 0, 0, 0);
    r->tid = raw3(SYS_gettid, 0, 0, 0);
    r->wrote = raw3(SYS_write, c0_pipe[1], (long)"t", 1);
}

/*
 * clone() a thread without glibc (pthread_create runs vector code, see
 * test_cpl0_pthread_create): its own stack, its own TLS block (Dune's
 * host side keeps per-thread state there), cleared *ctid at exit.
 */
static long c0_clone(char *stack, char *tls, volatile int *ctid)
{
    unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                          CLONE_SYSVSEM | CLONE_SETTLS | CLONE_CHILD_CLEARTID;
    register long r10 __asm__("r10") = (long)ctid;
    register long r8 __asm__("r8") = (long)tls;
    register long r9 __asm__("r9") = (long)c0_thread_fn;
    long ret;

    *(void **)tls = tls; /* TCB self pointer, as the ABI has it */
    __asm__ volatile("syscall\n\t"
                     "testq %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "xorl %%ebp, %%ebp\n\t"
                     "call *%%r9\n\t"
                     "movl $60, %%eax\n\t"
                     "xorl %%edi, %%edi\n\t"
                     "syscall\n\t"
                     "1:"
                     : "=a"(ret)
                     : "a"((long)SYS_clone), "D"(flags), "S"(stack + C0_STACK), "d"(0L),
                       "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

static void c0_join(volatile int *ctid)
{
    int v;

    while ((v = *ctid) != 0)
        raw3(SYS_futex, (long)ctid, FUTEX_WAIT, v);
}

/* Two raw threads in turn inside a CPL0-mode Dune: each runs at CPL0 on
 * a vCPU, forwards its system calls, and the second reuses the first's
 * vCPU.  Results are checked after leaving (Check's asserts use libc). */
START_TEST(test_cpl0_threads)
{
    char *mem = mmap(NULL, 4 * C0_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    volatile int ctid[2] = { 1, 1 };
    long tids[2], entered, left, pid = getpid();
    struct timespec t0, t1;
    char buf[2];

    ck_assert_ptr_ne(mem, MAP_FAILED);
    ck_assert_int_eq(pipe(c0_pipe), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    entered = dune_enter(&c0_opts);
    for (int i = 0; i < 2 && entered == 0; i++) {
        c0_which = i;
        tids[i] = c0_clone(mem + 2 * i * C0_STACK, mem + (2 * i + 1) * C0_STACK + C0_STACK / 2,
                           &ctid[i]);
        if (tids[i] > 0)
            c0_join(&ctid[i]);
    }
    left = dune_leave();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_int_eq(entered, 0);
    ck_assert_int_eq(left, 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_gt(tids[i], 0);
        ck_assert_int_eq(c0_res[i].cpl, 0);
        ck_assert_int_eq(c0_res[i].active, 1);
        ck_assert_int_eq(c0_res[i].pid, pid);
        ck_assert_int_eq(c0_res[i].tid, tids[i]);
        ck_assert_int_eq(c0_res[i].wrote, 1);
    }
    ck_assert_int_eq(read(c0_pipe[0], buf, 2), 2);
    printf("cpl0_threads: enter + 2 raw threads + leave: %.1f ms\n",
           (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
}
END_TEST

/* The same VM's vCPU count, read while inside: main + one reused. */
START_TEST(test_cpl0_vcpu_reuse)
{
    char *mem = mmap(NULL, 4 * C0_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    volatile int ctid[3] = { 1, 1, 1 };
    volatile unsigned vcpus[3];
    long entered, left;

    ck_assert_int_eq(pipe(c0_pipe), 0);
    entered = dune_enter(&c0_opts);
    for (int i = 0; i < 3 && entered == 0; i++) {
        c0_which = i & 1;
        if (c0_clone(mem, mem + 3 * C0_STACK, &ctid[i]) > 0)
            c0_join(&ctid[i]);
        /* dune_status() would run libc: read the count it reports */
        vcpus[i] = dune_active_vcpus();
    }
    left = dune_leave();
    ck_assert_int_eq(entered, 0);
    ck_assert_int_eq(left, 0);
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(vcpus[i], 1); /* the thread's vCPU went back */
    ck_assert_int_eq(c0_res[0].active, 1);
}
END_TEST

static void *c0_nothing(void *arg)
{
    return arg;
}

/*
 * pthread_create at emulated CPL0.  On bare metal it must simply work.
 * Here KVM's instruction emulator runs every CPL0 instruction and cannot
 * run vector code: it stops (KVM_INTERNAL_ERROR_EMULATION) in glibc, at
 * the lazy-binding resolver's xsavec or in memset, whose every x86-64
 * variant (even __memset_sse2_unaligned: movd %esi,%xmm0) uses vector
 * registers.  The child reports where; we print that as the SKIP reason.
 */
START_TEST(test_cpl0_pthread_create)
{
    int err[2], st;
    char msg[256] = "";
    unsigned long rip = 0;
    pid_t pid;
    ssize_t n;

    ck_assert_int_eq(pipe(err), 0);
    pid = fork();
    if (pid == 0) {
        struct dune_options o = { .mode = DUNE_MODE_CPL0 };
        pthread_t t;
        void *res = NULL;
        /* Bind pthread_create natively first: otherwise the lazy-binding
         * resolver's xsavec is what stops first. */
        if (pthread_create(&t, NULL, c0_nothing, NULL) == 0)
            pthread_join(t, NULL);
        dup2(err[1], 2);
        if (dune_enter(&o) != 0)
            _exit(90);
        if (pthread_create(&t, NULL, c0_nothing, (void *)7L) != 0 || pthread_join(t, &res))
            _exit(91);
        dune_leave();
        _exit(res == (void *)7L ? 0 : 92);
    }
    close(err[1]);
    n = read(err[0], msg, sizeof msg - 1);
    msg[n > 0 ? n : 0] = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return; /* it works here */
    ck_assert_msg(strstr(msg, "emulation failed"), "pthread_create at CPL0 failed otherwise: %s",
                  msg);
    {
        char *at = strstr(msg, "rip ");
        Dl_info dl = { 0 };
        const unsigned char *ip;
        if (at)
            rip = strtoul(at + 4, NULL, 16);
        ck_assert(dladdr((void *)rip, &dl)); /* fork kept the same addresses */
        ip = (const unsigned char *)rip;
        printf("SKIP cpl0_pthread_create: KVM's instruction emulator (guest CPL0 is emulated "
               "on kvm_pvm) cannot run glibc's vector code: pthread_create stopped at "
               "%s+%#lx (%s), instruction bytes %02x %02x %02x %02x\n",
               dl.dli_fname, rip - (unsigned long)dl.dli_fbase,
               dl.dli_sname ? dl.dli_sname : "a local symbol", ip[0], ip[1], ip[2], ip[3]);
    }
}
END_TEST

/* ---- the last leave releases the VM ---- */

/* Descriptors that are Dune's: /dev/kvm, the VM and its vCPUs (anonymous
 * inodes "kvm-vm", "kvm-vcpu:N") and the /proc/self/maps reader. */
static int count_dune_fds(int *kvm_dev)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char path[300], target[256];
    int n = 0;

    *kvm_dev = 0;
    while ((e = readdir(d))) {
        ssize_t len;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        len = readlink(path, target, sizeof target - 1);
        if (len < 0)
            continue;
        target[len] = 0;
        if (!strcmp(target, "/dev/kvm"))
            (*kvm_dev)++;
        if (!strcmp(target, "/dev/kvm") || strstr(target, "kvm-") || strstr(target, "/maps"))
            n++;
    }
    closedir(d);
    return n;
}

/* Bytes of address space mapped: what the VM's page tables, stubs and
 * vCPU stacks would leak if they stayed behind. */
static unsigned long mapped_bytes(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    unsigned long a, b, total = 0;
    char line[512];

    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%lx-%lx", &a, &b) == 2)
            total += b - a;
    fclose(f);
    return total;
}

static sigjmp_buf fault_jb;
static void on_segv_jump(int sig)
{
    (void)sig;
    siglongjmp(fault_jb, 1);
}

static void *in_dune_thread(void *arg)
{
    (void)arg;
    return (void *)(long)(dune_active() && getppid() > 0 ? 1 : 0);
}

/* What a program does inside: syscalls, a fault caught by its handler,
 * a thread of its own (also inside).  Returns 0 or the failing step. */
static int work_inside(char *noaccess)
{
    int p[2];
    char c = 0;
    pthread_t t;
    void *res = NULL;

    if (!dune_active() || pipe(p) != 0)
        return 1;
    if (write(p[1], "k", 1) != 1 || read(p[0], &c, 1) != 1 || c != 'k')
        return 2;
    close(p[0]);
    close(p[1]);
    if (sigsetjmp(fault_jb, 1) == 0) {
        *(volatile char *)noaccess = 1;
        return 3; /* no SIGSEGV */
    }
    if (pthread_create(&t, NULL, in_dune_thread, NULL) != 0 || pthread_join(t, &res) != 0)
        return 4;
    return res == (void *)1L ? 0 : 5;
}

/* Enter and leave 20 times: after each last leave no Dune descriptor is
 * open, the vCPUs are gone and the address space is back to its size;
 * every entry builds a new VM in which the program works as before. */
START_TEST(test_last_leave_releases_vm)
{
    char *noaccess = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct sigaction sa = { .sa_handler = on_segv_jump };
    unsigned long gen = dune_vm_generation(), bytes = 0;
    int fds0 = count_fds(), kvm;
    struct dune_status st;
    struct timespec t0, t1;

    sigaction(SIGSEGV, &sa, NULL);
    ck_assert_int_eq(count_dune_fds(&kvm), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 20; i++) {
        enter();
        ck_assert_uint_gt(count_dune_fds(&kvm), 2);
        ck_assert_int_eq(kvm, 1);
        ck_assert_uint_eq(dune_vm_generation(), gen + 1 + i);
        ck_assert_int_eq(work_inside(noaccess), 0);
        ck_assert_int_eq(dune_leave(), 0);
        ck_assert_int_eq(count_dune_fds(&kvm), 0);
        ck_assert_int_eq(kvm, 0);
        ck_assert_int_eq(count_fds(), fds0);
        dune_status(&st);
        ck_assert_uint_eq(st.vcpus, 0);
        ck_assert_uint_eq(st.memslots, 0);
        /* The first round leaves glibc's cached thread stack behind. */
        if (i == 1)
            bytes = mapped_bytes();
        else if (i > 1)
            ck_assert_uint_eq(mapped_bytes(), bytes);
        ck_assert_int_eq(work_inside(noaccess) == 1, 1); /* natively: not active */
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("last_leave_releases_vm: %.2f ms per enter+work+leave cycle\n",
           ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6) / 20);
}
END_TEST

static void *exit_inside(void *arg)
{
    int *go = arg;

    while (!__atomic_load_n(go, __ATOMIC_ACQUIRE))
        sched_yield();
    return (void *)(long)dune_active();
}

/* A thread still inside keeps the VM; when it exits as the last one
 * inside, the VM goes with it. */
START_TEST(test_last_exit_releases_vm)
{
    pthread_t t;
    void *res;
    int go = 0, kvm;
    pid_t ppid = getppid(); /* native */
    struct dune_status st;
    unsigned long before;

    enter();
    ck_assert_int_eq(pthread_create(&t, NULL, exit_inside, &go), 0);
    ck_assert_int_eq(dune_leave(), 0);
    ck_assert_uint_gt(count_dune_fds(&kvm), 0); /* the thread is inside */
    ck_assert_uint_eq(dune_active_vcpus(), 1);
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    ck_assert_int_eq(pthread_join(t, &res), 0);
    ck_assert_ptr_eq(res, (void *)1L);
    ck_assert_int_eq(count_dune_fds(&kvm), 0);
    ck_assert_uint_eq(dune_active_vcpus(), 0);
    enter(); /* and a new VM works: it forwards a system call */
    dune_status(&st);
    before = st.syscalls;
    pid_t got = getppid(); /* no ck_assert before the count: each writes to Check's pipe */
    dune_status(&st);
    ck_assert_int_eq(got, ppid);
    ck_assert_uint_eq(st.syscalls, before + 1);
    ck_assert_int_eq(dune_leave(), 0);
    ck_assert_int_eq(count_dune_fds(&kvm), 0);
}
END_TEST

static void *enter_leave_loop(void *arg)
{
    long ok = 1;

    (void)arg;
    for (int i = 0; i < 15 && ok; i++) {
        ok = dune_enter(NULL) == 0 && dune_active() && getppid() > 0 && getpid() > 0;
        ok = dune_leave() == 0 && ok && !dune_active();
    }
    return (void *)ok;
}

/* Threads entering and leaving at once, while another thread never
 * enters: each leave may be the last one and tear the VM down under a
 * concurrent enter.  Nobody may crash or fail, and at the end no Dune
 * descriptor is left and the next enter builds a new VM.  How often the
 * two threads' visits overlapped is up to the scheduler, so the number
 * of VMs built during the race is printed, not asserted. */
START_TEST(test_concurrent_enter_leave)
{
    struct worker native = { .id = 3 };
    pthread_t nt;
    unsigned long g0 = dune_vm_generation(), g1;
    int kvm;

    ck_assert_int_eq(pthread_create(&nt, NULL, work, &native), 0);
    run_threads(2, enter_leave_loop, (void *)1L);
    ck_assert_int_eq(pthread_join(nt, NULL), 0);
    ck_assert_int_eq(native.ok, 1);
    ck_assert_int_eq(native.active, 0);
    ck_assert_int_eq(count_dune_fds(&kvm), 0);
    g1 = dune_vm_generation();
    ck_assert_uint_gt(g1, g0);
    printf("concurrent_enter_leave: 2 threads x 15 visits built %lu VM(s)\n", g1 - g0);
    enter();
    ck_assert_uint_eq(dune_vm_generation(), g1 + 1);
    ck_assert_int_eq(dune_leave(), 0);
    ck_assert_int_eq(count_dune_fds(&kvm), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dune-threads");
    TCase *tc = tcase_create("threads-signals"), *rel, *c0;
    SRunner *sr;
    int failed;

    dune_test_require("check_dune_threads");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_thread_stress);
    tcase_add_test(tc, test_async_in_guest);
    tcase_add_test(tc, test_mprotect_write_race);
    tcase_add_test(tc, test_eintr_and_restart);
    tcase_add_test(tc, test_mask_defers);
    tcase_add_test(tc, test_blocked_signal_queued);
    tcase_add_test(tc, test_sigsuspend_delivers);
    tcase_add_test(tc, test_pthread_kill_thread_in_guest);
    tcase_add_test(tc, test_sigchld_and_fork_wait);
    tcase_add_test(tc, test_fork_in_threads);
    tcase_add_test(tc, test_default_actions);
    tcase_add_test(tc, test_fork_stays_inside);
    tcase_add_test(tc, test_fork_dirty_log_conservative);
    tcase_add_test(tc, test_fork_child_sees_own_mappings);
    tcase_add_test(tc, test_leave_reenter_threads);
    tcase_add_test(tc, test_stop_continue);
    suite_add_tcase(s, tc);
    rel = tcase_create("release");
    tcase_set_timeout(rel, 120);
    tcase_add_test(rel, test_last_leave_releases_vm);
    tcase_add_test(rel, test_last_exit_releases_vm);
    tcase_add_test(rel, test_concurrent_enter_leave);
    suite_add_tcase(s, rel);
    c0 = tcase_create("cpl0");
    tcase_set_timeout(c0, 60);
    tcase_add_test(c0, test_cpl0_threads);
    tcase_add_test(c0, test_cpl0_vcpu_reuse);
    tcase_add_test(c0, test_cpl0_pthread_create);
    suite_add_tcase(s, c0);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
