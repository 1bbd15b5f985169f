/*
 * dirty_calibrate.c - DIRTY_AUTO by measured cost.
 *
 * Which source is cheapest depends on the machine: on a paravirtual KVM a
 * Dune dirty fault costs ~23 us against ~1 us for native uffd, on hardware
 * virtualization the page walker sets D bits for free.  So auto measures
 * each candidate: the cost of a first write to a tracked page, of a
 * read-and-clear per dirty page, and per clean page, on a few dozen pages,
 * and ranks the candidates by their sum.
 *
 * The measurements run in a forked child, so that the process keeps no
 * trace of them (no SIGSEGV handler installed ahead of the program's own,
 * no userfaultfd, no VM): the child measures the native candidates, then,
 * if asked, enters Dune and measures pte and kvm, writing one line per
 * backend to a pipe.  The parent waits at most CALIBRATE_MS.  Natively the
 * whole thing takes a few milliseconds; entering Dune takes longer, so
 * figures that include Dune are kept in a cache file keyed by the kernel,
 * the CPU and this library's version ($XDG_CACHE_HOME/libgc-dune/costs,
 * or ~/.cache/...), and measured again when the key changes.
 */
#define _GNU_SOURCE
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dirty_calibrate.h"
#include "dirty_tracker.h"
#ifdef HAVE_DUNE
#include "dune.h"
#ifndef DIRTY_DUNE_BACKENDS
extern int dune_enter(const struct dune_options *opts) __attribute__((weak));
#endif
#endif

#define NPAGES 64
#define ROUNDS 3
#define CALIBRATE_MS 5000 /* give up on the child after this long */

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static double write_pages(volatile char *m)
{
    double t0 = now_us();
    for (size_t i = 0; i < NPAGES; i++)
        m[i * DIRTY_PAGE_SIZE]++;
    return (now_us() - t0) / NPAGES;
}

double dirty_mprotect_call_us(void)
{
    size_t len = NPAGES * DIRTY_PAGE_SIZE;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    madvise(m, len, MADV_NOHUGEPAGE);
    write_pages(m); /* populated, as heap pages are */
    double best = 1e9;
    for (int r = 0; r < ROUNDS; r++) {
        /* libgc's pattern: protect the heap in long runs, then unprotect
         * one block at a time as it is written or handed out. */
        double t0 = now_us();
        mprotect(m, len, PROT_READ);
        for (size_t i = 0; i < NPAGES; i++)
            mprotect(m + i * DIRTY_PAGE_SIZE, DIRTY_PAGE_SIZE, PROT_READ | PROT_WRITE);
        double us = (now_us() - t0) / (NPAGES + 1);
        best = us < best ? us : best;
    }
    munmap(m, len);
    return best;
}

/* Measure backend b in this process. */
static int measure(enum dirty_backend b, struct dirty_cost *c, char *why, size_t len)
{
    const struct dirty_ops *ops = dirty_ops_of(b);
    void *state, *range;
    uint64_t bits[DIRTY_WORDS(NPAGES)];
    int err = dirty_probe(b, why, len);
    if (err)
        return err;
    char *m = mmap(NULL, NPAGES * DIRTY_PAGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return dirty_fail(why, len, errno, "mmap: %s", strerror(errno));
    madvise(m, NPAGES * DIRTY_PAGE_SIZE, MADV_NOHUGEPAGE);
    double base = 1e9;
    for (int r = 0; r < ROUNDS; r++) { /* first touch, then untracked writes */
        double w = write_pages(m);
        if (r && w < base)
            base = w;
    }
    err = ops->open(&state, why, len);
    if (err == 0) {
        err = ops->track(state, (uintptr_t)m, NPAGES, &range);
        if (err == 0) {
            c->write_us = c->collect_us = c->clean_us = 1e9;
            for (int r = 0; r < ROUNDS && err == 0; r++) {
                double w = write_pages(m) - base, t0 = now_us();
                long n = ops->collect(state, range, 0, NPAGES, bits);
                double k = (now_us() - t0) / NPAGES;
                t0 = now_us();
                long n2 = ops->collect(state, range, 0, NPAGES, bits);
                double cl = (now_us() - t0) / NPAGES;
                if (n < NPAGES || n2 < 0)
                    err = dirty_fail(why, len, EIO, "missed writes while calibrating");
                c->write_us = w < c->write_us ? w : c->write_us;
                c->collect_us = k < c->collect_us ? k : c->collect_us;
                c->clean_us = cl < c->clean_us ? cl : c->clean_us;
            }
            if (c->write_us < 0)
                c->write_us = 0;
            ops->untrack(state, range);
        }
        ops->close(state);
    }
    munmap(m, NPAGES * DIRTY_PAGE_SIZE);
    c->ok = err == 0;
    return err;
}

static void child(int fd, unsigned mask, bool dune)
{
    static const enum dirty_backend native[] = {DIRTY_UFFD, DIRTY_SOFTDIRTY, DIRTY_MPROTECT};
    char line[300], why[200];
    struct dirty_cost c;
    for (size_t i = 0; i < 3; i++) {
        if (!(mask & 1u << native[i]))
            continue;
        memset(&c, 0, sizeof c);
        why[0] = '\0';
        if (measure(native[i], &c, why, sizeof why) == 0)
            snprintf(line, sizeof line, "%s %.3f %.3f %.3f\n", dirty_backend_name(native[i]),
                     c.write_us, c.collect_us, c.clean_us);
        else
            snprintf(line, sizeof line, "%s x %s\n", dirty_backend_name(native[i]), why);
        if (write(fd, line, strlen(line)) < 0)
            _exit(1);
    }
#ifdef HAVE_DUNE
    if (dune && (mask & DIRTY_DUNE_MASK)) {
#ifndef DIRTY_DUNE_BACKENDS
        if (!dune_enter)
            _exit(0);
#endif
        int r = dune_enter(NULL);
        for (enum dirty_backend b = 0; b < DIRTY_NBACKENDS; b++) {
            if (!(mask & DIRTY_DUNE_MASK & 1u << b))
                continue;
            memset(&c, 0, sizeof c);
            snprintf(why, sizeof why, "cannot enter Dune (%s)", strerror(-r));
            if (r == 0 && measure(b, &c, why, sizeof why) == 0)
                snprintf(line, sizeof line, "%s %.3f %.3f %.3f\n", dirty_backend_name(b),
                         c.write_us, c.collect_us, c.clean_us);
            else
                snprintf(line, sizeof line, "%s x %s\n", dirty_backend_name(b), why);
            if (write(fd, line, strlen(line)) < 0)
                _exit(1);
        }
    }
#else
    (void)dune;
#endif
    _exit(0);
}

/* Parse one "name w c k" or "name x why" line into costs. */
static void parse_line(char *line, struct dirty_cost costs[DIRTY_NBACKENDS])
{
    char name[32];
    struct dirty_cost c = {0};
    enum dirty_backend b;
    if (sscanf(line, "%31s %lf %lf %lf", name, &c.write_us, &c.collect_us, &c.clean_us) < 1 ||
        dirty_backend_from_name(name, &b) < 0 || b == DIRTY_AUTO)
        return;
    c.ok = sscanf(line, "%*s %lf %lf %lf", &c.write_us, &c.collect_us, &c.clean_us) == 3;
    c.measured = true;
    costs[b] = c;
}

static int run_child(unsigned mask, bool dune, struct dirty_cost costs[DIRTY_NBACKENDS])
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(fds[0]);
        close(fds[1]);
        return err;
    }
    if (pid == 0) {
        close(fds[0]);
        child(fds[1], mask, dune);
    }
    close(fds[1]);
    char buf[2048];
    size_t used = 0;
    double deadline = now_us() + CALIBRATE_MS * 1000.0;
    for (;;) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int left = (int)((deadline - now_us()) / 1000);
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t n = read(fds[0], buf + used, sizeof buf - 1 - used);
        if (n <= 0)
            break;
        used += (size_t)n;
        if (used == sizeof buf - 1)
            break;
    }
    close(fds[0]);
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    buf[used] = '\0';
    for (char *s = buf, *nl; (nl = strchr(s, '\n')); s = nl + 1) {
        *nl = '\0';
        parse_line(s, costs);
    }
    return 0;
}

/* ---- the cache (only for figures that include Dune) ---- */

static void cache_key(char *key, size_t len)
{
    struct utsname u;
    char model[128] = "?", line[256];
    FILE *f = fopen("/proc/cpuinfo", "re");
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
    uname(&u);
    /* The sources measured are part of the key: a cache from a build
     * with fewer of them is measured again. */
    snprintf(key, len, "libgc-dune %s (pte kvm wp); %s %s %s %s; %s", PACKAGE_VERSION, u.sysname,
             u.release, u.version, u.machine, model);
}

static int cache_path(char *path, size_t len)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg == '/')
        return snprintf(path, len, "%s/libgc-dune/costs", xdg) < (int)len ? 0 : -1;
    if (home && *home == '/')
        return snprintf(path, len, "%s/.cache/libgc-dune/costs", home) < (int)len ? 0 : -1;
    return -1;
}

static bool cache_read(const char *key, struct dirty_cost costs[DIRTY_NBACKENDS])
{
    char path[512], line[512];
    if (cache_path(path, sizeof path) < 0)
        return false;
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool hit = fgets(line, sizeof line, f) && (line[strcspn(line, "\n")] = '\0', 1) &&
               strcmp(line, key) == 0;
    while (hit && fgets(line, sizeof line, f))
        parse_line(line, costs);
    fclose(f);
    return hit;
}

static void cache_write(const char *key, const struct dirty_cost costs[DIRTY_NBACKENDS])
{
    char path[512], tmp[530];
    if (cache_path(path, sizeof path) < 0)
        return;
    char *slash = strrchr(path, '/');
    *slash = '\0';
    char *parent = strrchr(path, '/');
    *parent = '\0';
    mkdir(path, 0700); /* $XDG_CACHE_HOME or ~/.cache */
    *parent = '/';
    mkdir(path, 0700);
    *slash = '/';
    snprintf(tmp, sizeof tmp, "%s.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "we");
    if (!f)
        return;
    fprintf(f, "%s\n", key);
    for (int b = 1; b < DIRTY_NBACKENDS; b++) {
        if (!costs[b].measured)
            continue;
        if (costs[b].ok)
            fprintf(f, "%s %.3f %.3f %.3f\n", dirty_backend_name(b), costs[b].write_us,
                    costs[b].collect_us, costs[b].clean_us);
        else
            fprintf(f, "%s x\n", dirty_backend_name(b));
    }
    if (fclose(f) == 0)
        rename(tmp, path);
    else
        unlink(tmp);
}

double dirty_cost_score(const struct dirty_cost *c)
{
    return c->write_us + c->collect_us + c->clean_us;
}

int dirty_calibrate(unsigned mask, bool dune, struct dirty_cost costs[DIRTY_NBACKENDS],
                    bool *cached)
{
    char key[600];
    memset(costs, 0, DIRTY_NBACKENDS * sizeof costs[0]);
    *cached = false;
    if (dune) {
        cache_key(key, sizeof key);
        if (cache_read(key, costs)) {
            *cached = true;
            return 0;
        }
        memset(costs, 0, DIRTY_NBACKENDS * sizeof costs[0]);
    }
    int err = run_child(mask, dune, costs);
    if (err == 0 && dune)
        cache_write(key, costs);
    return err;
}

size_t dirty_rank(unsigned mask, const struct dirty_cost costs[DIRTY_NBACKENDS],
                  enum dirty_backend *order)
{
    size_t n = 0;
    for (int b = 1; b < DIRTY_NBACKENDS; b++) {
        if (!(mask & 1u << b) || !costs[b].ok)
            continue;
        size_t i = n++;
        for (; i > 0 && dirty_cost_score(&costs[order[i - 1]]) > dirty_cost_score(&costs[b]); i--)
            order[i] = order[i - 1];
        order[i] = (enum dirty_backend)b;
    }
    return n;
}

void dirty_cost_format(const struct dirty_cost costs[DIRTY_NBACKENDS], bool cached, char *buf,
                       size_t len)
{
    snprintf(buf, len, "measured%s, us per page (write + read-and-clear + clean read):",
             cached ? " (cached)" : "");
    for (int b = 1; b < DIRTY_NBACKENDS; b++) {
        if (!costs[b].measured)
            continue;
        if (costs[b].ok)
            dirty_append(buf, len, " %s %.2f+%.2f+%.2f", dirty_backend_name(b),
                         costs[b].write_us, costs[b].collect_us, costs[b].clean_us);
        else
            dirty_append(buf, len, " %s unusable", dirty_backend_name(b));
    }
}
