/*
 * gc-dune-run - run a program that uses Boehm GC (dynamically linked
 * libgc) with libgc-dune preloaded: its collector's dirty bits then come
 * from libgc-dune's tracker, inside Dune when possible.
 *
 *   gc-dune-run [-i] PROGRAM [ARGS...]
 *     -i   also switch incremental mode on (GC_ENABLE_INCREMENTAL=1)
 *
 * The library is looked up in GC_DUNE_PRELOAD, then in .libs/ next to this
 * launcher (build tree), then in the installed libdir.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LIBNAME "libgc-dune.so"

static int usable(const char *path)
{
    return access(path, R_OK) == 0;
}

static int locate_library(char *out, size_t size)
{
    const char *env = getenv("GC_DUNE_PRELOAD");
    char self[PATH_MAX];
    ssize_t n;

    if (env && *env) {
        snprintf(out, size, "%s", env);
        return usable(out) ? 0 : -1;
    }
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        char *dir_end;
        self[n] = '\0';
        dir_end = strrchr(self, '/');
        if (dir_end) {
            /* libtool may have put the real launcher in .libs/ itself */
            *dir_end = '\0';
            if (snprintf(out, size, "%s/.libs/%s", self, LIBNAME) < (int)size && usable(out))
                return 0;
            if (snprintf(out, size, "%s/%s", self, LIBNAME) < (int)size && usable(out))
                return 0;
        }
    }
    snprintf(out, size, "%s/%s", LIBDIR, LIBNAME);
    return usable(out) ? 0 : -1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: gc-dune-run [-i] PROGRAM [ARGS...]\n"
            "  -i                      set GC_ENABLE_INCREMENTAL=1\n"
            "  GC_DUNE_BACKEND=auto|pte|kvm|uffd|mprotect|off\n"
            "  GC_DUNE_CHECK=mprotect  compare with a reference, abort on a miss\n"
            "  GC_DUNE_VERBOSE=1       backend and totals on stderr\n"
            "  GC_DUNE_PRELOAD=path    library to preload\n");
}

int main(int argc, char **argv)
{
    char lib[PATH_MAX];
    const char *old;
    char *val;
    int first = 1;

    if (argc > 1 && strcmp(argv[1], "-i") == 0) {
        setenv("GC_ENABLE_INCREMENTAL", "1", 1);
        first = 2;
    }
    if (first >= argc || !strcmp(argv[first], "-h") || !strcmp(argv[first], "--help")) {
        usage();
        return first >= argc ? 2 : 0;
    }
    if (locate_library(lib, sizeof lib) < 0) {
        fprintf(stderr, "gc-dune-run: %s not found (set GC_DUNE_PRELOAD)\n", LIBNAME);
        return 127;
    }
    old = getenv("LD_PRELOAD");
    if (asprintf(&val, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "") < 0)
        return 127;
    setenv("LD_PRELOAD", val, 1);
    free(val);
    execvp(argv[first], argv + first);
    fprintf(stderr, "gc-dune-run: %s: %s\n", argv[first], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
