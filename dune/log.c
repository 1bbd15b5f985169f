/*
 * log.c - where Dune's messages go.
 *
 * A program under Dune must print what it prints natively, so Dune speaks
 * on stderr only from the process the user started: the one dune-run
 * exec'd (it names itself in DUNE_RUN_PID), or without dune-run the first
 * process to enter.  Its children, forked or exec'd, say nothing there:
 * test suites compare a child's stderr, and a child that dropped its
 * privileges cannot open /dev/kvm.  With DUNE_LOG=file every process
 * appends its lines to that file instead, each after its pid, and stderr
 * stays as it would be natively.  A fatal error is the exception: the
 * process that dies of it says why on stderr too.
 *
 * The DUNE_VERBOSE summary is written at exit_group, when programs such as
 * coreutils have already closed fd 2: the speaker keeps a copy of its
 * stderr for it, above the soft RLIMIT_NOFILE like Dune's other
 * descriptors (fds.c).  Only then: a held copy would keep a pipe open
 * after the program closed its end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dune_internal.h"

static pid_t speaker;   /* the process that may write to stderr */
static pid_t set_up;    /* the process the fields below belong to */
static pid_t checked;   /* the process dune_log_init ran in */
static int err_fd = -1; /* the speaker's stderr, kept for the summary */
static char log_path[4096];

bool dune_verbose(void)
{
    const char *v = getenv("DUNE_VERBOSE");

    return v && *v && strcmp(v, "0") != 0;
}

static pid_t self(void)
{
    return (pid_t)dune_sys3(SYS_getpid, 0, 0, 0);
}

static void put(int fd, const char *s, size_t n)
{
    while (n) {
        long w = dune_sys3(SYS_write, fd, s, n);
        if (w == -EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static long open_log(void)
{
    long fd = dune_sys6(SYS_openat, AT_FDCWD, (long)log_path, O_WRONLY | O_APPEND | O_CLOEXEC,
                        0, 0, 0);

    /* O_CREAT only when needed: in a sticky /tmp it is refused on a file
     * another user made (protected_regular), as after setuid. */
    if (fd == -ENOENT)
        fd = dune_sys6(SYS_openat, AT_FDCWD, (long)log_path,
                       O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644, 0, 0);
    return fd;
}

/* Open, append one line, close: a held descriptor would be one more the
 * program can see, and the lines are few.  O_APPEND with one write keeps
 * lines from several processes whole. */
static int append(const char *s, size_t n)
{
    long fd = open_log();
    struct rlimit rl;

    if (fd == -EMFILE && dune_fd_begin(&rl, false) == 0) {
        /* The program uses all of its descriptors: borrow one above. */
        fd = open_log();
        dune_fd_end(&rl, -1);
    }
    if (fd < 0)
        return (int)fd;
    put((int)fd, s, n);
    dune_sys3(SYS_close, fd, 0, 0);
    return 0;
}

/* Who speaks and where the log is; the stderr copy comes separately. */
static void set_up_basics(void)
{
    const char *run = getenv("DUNE_RUN_PID"), *log = getenv("DUNE_LOG");
    pid_t me = self();
    char cwd[2048];
    int saved = errno;

    if (set_up == me)
        return;
    if (set_up && err_fd >= 0) {
        /* A forked child: the copy of its parent's stderr is not its. */
        dune_fd_forget(err_fd);
        dune_sys3(SYS_close, err_fd, 0, 0);
        err_fd = -1;
    }
    set_up = me;
    if (run && *run)
        speaker = (pid_t)strtol(run, NULL, 10);
    else if (!speaker)
        speaker = me;
    log_path[0] = 0;
    if (log && *log) {
        /* Absolute, because the program may chdir before it exits. */
        if (log[0] == '/' || !getcwd(cwd, sizeof cwd))
            snprintf(log_path, sizeof log_path, "%s", log);
        else
            snprintf(log_path, sizeof log_path, "%s/%s", cwd, log);
    }
    errno = saved;
}

/*
 * At dune_enter: settle who speaks, check that DUNE_LOG can be written,
 * and give the speaker its stderr copy if a summary will be printed.
 */
void dune_log_init(void)
{
    struct rlimit rl;
    char msg[160];
    int r;

    if (checked == self())
        return;
    set_up_basics();
    checked = set_up;
    if (log_path[0] && (r = append("", 0)) < 0) {
        if (speaker == set_up) {
            int n = snprintf(msg, sizeof msg, "dune: cannot write DUNE_LOG=%.80s: %s\n",
                             getenv("DUNE_LOG"), strerror(-r));
            put(2, msg, n < (int)sizeof msg ? (size_t)n : sizeof msg - 1);
        }
        log_path[0] = 0;
    }
    if (speaker != set_up || log_path[0] || !dune_verbose() || err_fd >= 0)
        return;
    if (dune_fd_begin(&rl, true) == 0)
        err_fd = dune_fd_end(&rl, dune_sys3(SYS_fcntl, 2, F_DUPFD_CLOEXEC, 0));
    if (err_fd < 0)
        err_fd = -1; /* stderr closed, or no room above the limit: use fd 2 */
}

void dune_log_after_fork(void)
{
    dune_fd_after_fork();
    set_up_basics();
}

void dune_log_renumber(int oldfd, int newfd)
{
    if (err_fd == oldfd)
        err_fd = newfd;
}

void dune_log_line(enum dune_msg_level level, const char *line, size_t len)
{
    char buf[640];
    pid_t me;
    int n;

    if (level == DUNE_MSG_NOTE && !dune_verbose())
        return;
    set_up_basics();
    me = set_up;
    while (len && line[len - 1] == '\n')
        len--;
    if (len > sizeof buf - 32)
        len = sizeof buf - 32;
    if (log_path[0]) {
        n = snprintf(buf, sizeof buf, "[%d] %.*s\n", (int)me, (int)len, line);
        append(buf, (size_t)n);
        if (level != DUNE_MSG_FATAL)
            return;
    }
    if (me != speaker && level != DUNE_MSG_FATAL)
        return;
    n = snprintf(buf, sizeof buf, "%.*s\n", (int)len, line);
    put(err_fd >= 0 ? err_fd : 2, buf, (size_t)n);
}

static void vmsg(enum dune_msg_level level, const char *fmt, va_list ap)
{
    char buf[512];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);

    if (n >= 0)
        dune_log_line(level, buf, n < (int)sizeof buf ? (size_t)n : sizeof buf - 1);
}

void dune_msg(enum dune_msg_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vmsg(level, fmt, ap);
    va_end(ap);
}

DUNE_API void dune_message(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vmsg(DUNE_MSG_WARN, fmt, ap);
    va_end(ap);
}
