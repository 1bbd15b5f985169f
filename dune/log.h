/*
 * log.h - where Dune's messages go (log.c).
 */
#ifndef DUNE_LOG_H
#define DUNE_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

enum dune_msg_level {
    DUNE_MSG_NOTE,  /* only with DUNE_VERBOSE: the summary, diagnostics */
    DUNE_MSG_WARN,  /* the program goes on, perhaps natively */
    DUNE_MSG_FATAL, /* Dune is about to kill the program */
};

void dune_log_init(void);
void dune_log_after_fork(void);
void dune_log_renumber(int oldfd, int newfd);
bool dune_verbose(void);

/* One message: a line without its newline, formatted or ready-made. */
void dune_msg(enum dune_msg_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void dune_log_line(enum dune_msg_level level, const char *line, size_t len);

/* Once per call site and process. */
#define dune_warn_once(...)                                                       \
    do {                                                                          \
        static atomic_flag said_ = ATOMIC_FLAG_INIT;                              \
        if (!atomic_flag_test_and_set(&said_))                                    \
            dune_msg(DUNE_MSG_WARN, __VA_ARGS__);                                 \
    } while (0)

#endif
