/*
 * gcstat.c - libgcstat.so: the suite's GC metrics for programs it did not
 * build (Guile, ECL ...), by LD_PRELOAD.
 *
 * The constructor hooks the collector's events as bench/workload.c does for
 * the suite's own workloads (chaining to whoever hooked in before, and
 * libgc-dune chains to us if it comes after).  At exit the metrics go, as
 * one line of key=value pairs, to the file named by BENCH_STAT_FILE
 * (appended, so that a program that runs others leaves one line each);
 * without BENCH_STAT_FILE the library does nothing.  bench/run-client
 * turns the line into a RESULT line.
 */
#define _GNU_SOURCE
#include "workload.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *stat_file;

__attribute__((constructor)) static void gcstat_init(void)
{
    stat_file = getenv("BENCH_STAT_FILE");
    if (!stat_file || !*stat_file) {
        stat_file = NULL;
        return;
    }
    wl_hooks();
}

__attribute__((destructor)) static void gcstat_fini(void)
{
    char line[1200];
    size_t n;
    int fd;

    if (!stat_file)
        return;
    n = (size_t)snprintf(line, sizeof line, "pid=%ld ", (long)getpid());
    n += wl_fields(line + n, sizeof line - n - 1);
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    fd = open(stat_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, line, n) != (ssize_t)n)
        fprintf(stderr, "gcstat: cannot write %s\n", stat_file);
    if (fd >= 0)
        close(fd);
}
