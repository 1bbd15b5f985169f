/*
 * dune-run - run a dynamically linked program inside Dune from before main.
 *
 *   dune-run PROGRAM [ARGS...]
 *
 * Preloads libdune-preload.so, whose constructor enters Dune; the exit
 * status is the program's own.  Children started with exec inherit the
 * preload and enter Dune too.  DUNE_RUN_PID names the process we become:
 * only it prints Dune's messages on stderr, its children stay quiet (or
 * write to DUNE_LOG, as it does when that is set).
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PRELOAD_NAME "libdune-preload.so"

static bool readable(const char *p)
{
    return access(p, R_OK) == 0;
}

/* Why the program will run natively: on stderr, or in DUNE_LOG. */
static void say(const char *fmt, ...)
{
    const char *log = getenv("DUNE_LOG");
    FILE *f = log && *log ? fopen(log, "ae") : NULL;
    va_list ap;

    if (f)
        fprintf(f, "[%d] ", (int)getpid());
    va_start(ap, fmt);
    vfprintf(f ? f : stderr, fmt, ap);
    va_end(ap);
    if (f)
        fclose(f);
}

/* Next to the binary in a build tree (.libs/), in the installed pkglibdir,
 * or wherever DUNE_PRELOAD says. */
static int find_preload(char *out, size_t len)
{
    char exe[PATH_MAX - 64], *slash;
    ssize_t n;
    const char *env = getenv("DUNE_PRELOAD");

    if (env && *env) {
        snprintf(out, len, "%s", env);
        return readable(out) ? 0 : -1;
    }
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(out, len, "%s/.libs/%s", exe, PRELOAD_NAME);
            if (readable(out))
                return 0;
        }
    }
    snprintf(out, len, "%s/%s", PKGLIBDIR, PRELOAD_NAME);
    return readable(out) ? 0 : -1;
}

/* Resolve PROGRAM as execvp would, to look at its ELF headers. */
static int resolve(const char *prog, char *out, size_t len)
{
    const char *path = getenv("PATH");

    if (strchr(prog, '/')) {
        snprintf(out, len, "%s", prog);
        return 0;
    }
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t l = strcspn(path, ":");
        snprintf(out, len, "%.*s/%s", (int)l, path, prog);
        if (access(out, X_OK) == 0)
            return 0;
        path += l + (path[l] == ':');
    }
    return -1;
}

/* A static executable ignores LD_PRELOAD: it would silently run natively. */
static bool is_static_elf(const char *file)
{
    Elf64_Ehdr eh;
    Elf64_Phdr ph;
    bool has_interp = false;
    int fd = open(file, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return false;
    if (pread(fd, &eh, sizeof eh, 0) != sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
        eh.e_ident[EI_CLASS] != ELFCLASS64) {
        close(fd);
        return false; /* a script or something else: its interpreter decides */
    }
    for (int i = 0; i < eh.e_phnum; i++) {
        if (pread(fd, &ph, sizeof ph, eh.e_phoff + (off_t)i * eh.e_phentsize) != sizeof ph)
            break;
        if (ph.p_type == PT_INTERP)
            has_interp = true;
    }
    close(fd);
    return !has_interp;
}

int main(int argc, char **argv)
{
    char preload[PATH_MAX], file[PATH_MAX], *val;
    const char *old = getenv("LD_PRELOAD");

    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(stderr, "usage: dune-run PROGRAM [ARGS...]\n"
                        "  DUNE_MODE=auto|cpl0|cpl3  privilege level inside the guest\n"
                        "  DUNE_VERBOSE=1            print a summary line at exit\n"
                        "  DUNE_LOG=FILE             Dune's messages from every process go to\n"
                        "                            FILE (appended, each after its pid), not\n"
                        "                            to stderr\n");
        return argc < 2 ? 2 : 0;
    }
    if (find_preload(preload, sizeof preload) < 0) {
        say("dune-run: cannot find %s (set DUNE_PRELOAD): running %s natively\n", PRELOAD_NAME,
            argv[1]);
    } else {
        if (resolve(argv[1], file, sizeof file) == 0 && is_static_elf(file))
            say("dune-run: %s is statically linked: running natively\n", argv[1]);
        if (asprintf(&val, "%s%s%s", preload, old && *old ? ":" : "", old ? old : "") < 0)
            return 127;
        setenv("LD_PRELOAD", val, 1);
    }
    snprintf(file, sizeof file, "%d", (int)getpid());
    setenv("DUNE_RUN_PID", file, 1);
    execvp(argv[1], argv + 1);
    fprintf(stderr, "dune-run: cannot run %s: %s\n", argv[1], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
