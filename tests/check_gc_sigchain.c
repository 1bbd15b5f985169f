/*
 * check_gc_sigchain.c - a program that installs its own SIGSEGV handler
 * after libgc started, on an alternate stack, as Nix does for its
 * stack-overflow detection, and relies on it, while the GC heap keeps
 * being written and collected.  Linked with libgc only; run under
 * gc-dune-run by tests/check_gc_sigchain.sh, once per dirty source.
 * Cases: a fault on a PROT_NONE page reaches the handler with its address,
 * on the alternate stack; deep recursion is caught there; signal()'s plain
 * handler; the program's previous disposition is what sigaction() reports;
 * SA_RESETHAND and SIG_DFL end the process with SIGSEGV (in a child).
 * A fault the handler did not expect (a GC heap write stolen from
 * libgc-dune) exits 2.
 */
#define _GNU_SOURCE
#include <gc.h>

#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct cell {
    struct cell *next;
    uintptr_t v;
};

#define NCELLS 20000
static struct cell *head;
static uintptr_t bumps;
static int failed, passed;

static char *guard;
static sigjmp_buf jb;
static volatile sig_atomic_t expect; /* 0 none, 1 guard page, 2 overflow */
static volatile sig_atomic_t got, on_alt, addr_ok, plain_got;
static char *altstack;

static void say(const char *s)
{
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static void app_segv(int sig, siginfo_t *si, void *uc)
{
    stack_t ss;
    (void)uc;
    if (sig != SIGSEGV || !expect) {
        say("check_gc_sigchain: unexpected SIGSEGV reached the program's handler\n");
        _exit(2);
    }
    got++;
    on_alt = sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK);
    addr_ok = expect == 1 ? (char *)si->si_addr == guard + 16 : si->si_addr != NULL;
    siglongjmp(jb, 1);
}

static void app_plain(int sig)
{
    if (sig != SIGSEGV || !expect) {
        say("check_gc_sigchain: unexpected SIGSEGV reached the plain handler\n");
        _exit(2);
    }
    plain_got++;
    siglongjmp(jb, 1);
}

static void check(int ok, const char *what)
{
    printf("%s: %s\n", ok ? "PASS" : "FAIL", what);
    fflush(stdout);
    if (ok)
        passed++;
    else
        failed++;
}

/* Write every cell of the old list, collect, check that it is all there. */
static int heap_ok(void)
{
    for (struct cell *c = head; c; c = c->next)
        c->v++;
    bumps++;
    GC_gcollect();
    for (int i = 0; i < 1000; i++)
        (void)GC_MALLOC(64); /* garbage */
    uintptr_t n = 0, sum = 0;
    for (struct cell *c = head; c; c = c->next, n++)
        sum += c->v;
    return n == NCELLS && sum == (uintptr_t)NCELLS * (NCELLS - 1) / 2 + bumps * NCELLS;
}

static void install(int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = app_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | flags;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) < 0) {
        perror("sigaction");
        exit(99);
    }
}

static volatile unsigned long depth, limit = ~0UL; /* overflows first */
__attribute__((noinline)) static unsigned long recurse(unsigned long n)
{
    volatile char buf[512];
    buf[0] = (char)n;
    depth = n;
    if (n < limit)
        return recurse(n + 1) + buf[0];
    return buf[0];
}

/* In a child: one fault caught by a SA_RESETHAND handler, then the next one
 * with SIG_DFL must kill it; with reset = 0 the disposition is SIG_DFL
 * from the start.  The child writes the heap between. */
static int dies_by_segv(int reset)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (reset) {
            install(SA_RESETHAND);
            expect = 1;
            got = 0;
            if (sigsetjmp(jb, 1) == 0)
                *(volatile char *)(guard + 16) = 1;
            expect = 0;
            if (got != 1)
                _exit(3);
            struct sigaction q;
            /* The kernel resets the handler only (flags are kept). */
            if (sigaction(SIGSEGV, NULL, &q) < 0 || q.sa_handler != SIG_DFL)
                _exit(4);
        } else {
            signal(SIGSEGV, SIG_DFL);
        }
        if (!heap_ok())
            _exit(5);
        *(volatile char *)(guard + 16) = 1;
        _exit(6);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return 0;
    if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV))
        printf("# child: %s %d\n", WIFSIGNALED(st) ? "signal" : "exit",
               WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV;
}

int main(void)
{
    GC_INIT();
    /* Not with stock libgc's own mprotect dirty bits (GC_DUNE_BACKEND=off):
     * natively, the program's handler replaces libgc's there. */
    if (!getenv("SIGCHAIN_NO_INCREMENTAL"))
        GC_enable_incremental();
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (uintptr_t i = 0; i < NCELLS; i++) {
        struct cell *c = GC_MALLOC(sizeof *c);
        if (!c)
            return 99;
        c->v = i;
        c->next = head;
        head = c;
    }
    GC_gcollect();
    check(heap_ok(), "heap before the program's handler");

    /* As Nix: an alternate stack and a SIGSEGV handler on it, after GC
     * init. */
    size_t altsize = 64 * 1024;
    altstack = malloc(altsize);
    stack_t ss = { .ss_sp = altstack, .ss_size = altsize, .ss_flags = 0 };
    guard = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!altstack || guard == MAP_FAILED || sigaltstack(&ss, NULL) < 0) {
        perror("check_gc_sigchain: setup");
        return 99;
    }
    struct sigaction q;
    install(0);
    check(sigaction(SIGSEGV, NULL, &q) == 0 && (q.sa_flags & SA_SIGINFO) &&
              q.sa_sigaction == app_segv && (q.sa_flags & SA_ONSTACK),
          "sigaction() reports the program's own handler");
    check(heap_ok(), "heap after the program's handler");

    /* (a) a PROT_NONE page */
    for (int round = 0; round < 3; round++) {
        got = on_alt = addr_ok = 0;
        expect = 1;
        if (sigsetjmp(jb, 1) == 0)
            *(volatile char *)(guard + 16) = 1;
        expect = 0;
        check(got == 1 && addr_ok && on_alt, "PROT_NONE fault: handler, si_addr, alternate stack");
        check(heap_ok(), "heap after a fault of the program's");
    }

    /* (b) stack overflow */
    got = on_alt = addr_ok = 0;
    expect = 2;
    if (sigsetjmp(jb, 1) == 0)
        recurse(0);
    expect = 0;
    printf("# overflow at depth %lu\n", (unsigned long)depth);
    check(got == 1 && on_alt && addr_ok, "stack overflow caught on the alternate stack");
    check(heap_ok(), "heap after the stack overflow");

    /* a plain handler through signal(), which returns the previous one */
    sighandler_t old = signal(SIGSEGV, app_plain);
    check(old == (sighandler_t)(void (*)(void))app_segv, "signal() returns the previous handler");
    plain_got = 0;
    expect = 1;
    if (sigsetjmp(jb, 1) == 0)
        *(volatile char *)(guard + 16) = 1;
    expect = 0;
    check(plain_got == 1, "signal()'s plain handler called");
    check(heap_ok(), "heap after the plain handler");
    install(0);

    /* (c) SA_RESETHAND, and SIG_DFL */
    check(dies_by_segv(1), "SA_RESETHAND: second fault kills with SIGSEGV");
    check(dies_by_segv(0), "SIG_DFL: a fault kills with SIGSEGV");
    check(heap_ok(), "heap at the end");

    printf("check_gc_sigchain: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
