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

/* Return code with a recorded message when cond holds. */
#define FUZE_RETURN_IF(cond, msgbuf, code, ...)                                  \
  do {                                                                           \
    if (cond) return fuze__error((msgbuf), (code), __VA_ARGS__);                 \
  } while (0)

/* The calling thread's last message buffer. */
char *fuze__thread_msg(void);

#endif
