/* Internal error recording. Never installed. */
#ifndef FUZE_ERROR_H
#define FUZE_ERROR_H

#include "fuze.h"
#include <stdarg.h>

#define FUZE_MSG_LEN 512

/* Record a formatted message for the calling thread (fuze_last_error(NULL))
 * and, when msgbuf is not NULL, copy it there too: msgbuf must hold
 * FUZE_MSG_LEN bytes (every context buffer does). Returns code. */
int fuze__error(char *msgbuf, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record without a context buffer. */
#define FUZE_ERR(code, ...) fuze__error(NULL, (code), __VA_ARGS__)

/* "<what>: out of memory" as FUZE_ERR_NOMEM, recorded in msgbuf. */
#define FUZE_NOMEM(msgbuf, what) fuze__error((msgbuf), FUZE_ERR_NOMEM, "%s: out of memory", (what))

/* Internal return values that travel between modules alongside the public
 * codes: distinct from every public code (error.c checks it at compile time). */
#define FUZE_INTERNAL_LOST 1000 /* a rank was lost while persisting (persist.h) */
/* A rank of the communicator died (ULFM: MPIX_ERR_PROC_FAILED or _REVOKED,
 * comm/ft.h). Negative, so that every `if (rc)` path stops and returns it. */
#define FUZE_INTERNAL_RANK_LOST (-1000)

/* The calling thread's last message buffer. */
char *fuze__thread_msg(void);

#endif
