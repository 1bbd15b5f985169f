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
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
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

/* The file execvp would run for name, into out; -1 if none. */
static int find_program(const char *name, char *out, size_t size)
{
    const char *path = getenv("PATH");
    if (strchr(name, '/')) {
        snprintf(out, size, "%s", name);
        return 0;
    }
    for (const char *p = path ? path : "/usr/local/bin:/usr/bin:/bin"; *p;) {
        size_t n = strcspn(p, ":");
        if (snprintf(out, size, "%.*s/%s", (int)n, n ? p : ".", name) < (int)size &&
            access(out, X_OK) == 0)
            return 0;
        p += n + (p[n] == ':');
    }
    return -1;
}

/* 1 if path is an ELF executable without a program interpreter: a static
 * program, which no dynamic linker will ever preload anything into. */
static int is_static_elf(const char *path)
{
    unsigned char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : pread(fd, buf, sizeof buf, 0);
    if (fd >= 0)
        close(fd);
    if (n < (ssize_t)sizeof(Elf64_Ehdr) || memcmp(buf, ELFMAG, SELFMAG) != 0 ||
        buf[EI_CLASS] != ELFCLASS64)
        return 0; /* a script, or not something we can read: let exec decide */
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)buf;
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > (size_t)n ||
        eh->e_phnum > ((size_t)n - eh->e_phoff) / sizeof(Elf64_Phdr))
        return 0; /* program headers beyond the first page: not worth guessing */
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(buf + eh->e_phoff);
    for (unsigned i = 0; i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_INTERP)
            return 0;
    return 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: gc-dune-run [-i] PROGRAM [ARGS...]\n"
            "  -i                      set GC_ENABLE_INCREMENTAL=1\n"
            "  GC_DUNE_BACKEND=auto|pte|kvm|uffd|softdirty|mprotect|off\n"
            "  GC_DUNE_CHECK=1|name    compare with a reference (1: the default,\n"
            "                          uffd where usable), abort on a miss\n"
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
    char prog[PATH_MAX];
    if (find_program(argv[first], prog, sizeof prog) == 0 && is_static_elf(prog))
        fprintf(stderr, "gc-dune-run: %s is statically linked: libgc-dune cannot be preloaded "
                "into it; running it without\n", prog);
    old = getenv("LD_PRELOAD");
    if (asprintf(&val, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "") < 0)
        return 127;
    setenv("LD_PRELOAD", val, 1);
    free(val);
    execvp(argv[first], argv + first);
    fprintf(stderr, "gc-dune-run: %s: %s\n", argv[first], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
