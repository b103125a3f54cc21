/* The status table and error messages. */
#include "core/error.h"

/* No public status has an internal value. */
#define FUZE_XX_DISTINCT(name, val, desc) \
  _Static_assert((val) != FUZE_INTERNAL_LOST, "FUZE_" #name " collides with FUZE_INTERNAL_LOST"); \
  _Static_assert((val) != FUZE_INTERNAL_RANK_LOST, "FUZE_" #name " collides with FUZE_INTERNAL_RANK_LOST");
FUZE_STATUS_MAP(FUZE_XX_DISTINCT)
#undef FUZE_XX_DISTINCT

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char thread_msg[FUZE_MSG_LEN];
/* A context's message buffer is shared by the threads that use the context
 * (MPI_THREAD_MULTIPLE): copies into it are serialised. Each thread's own
 * message (fuze_last_error(NULL)) needs no lock. */
static pthread_mutex_t msgbuf_mu = PTHREAD_MUTEX_INITIALIZER;

char *fuze__thread_msg(void) { return thread_msg; }

int fuze__error(char *msgbuf, int code, const char *fmt, ...) {
  /* Format first, copy after: an argument may be the thread message itself
   * ("%s (from ...)", fuze__thread_msg()), and vsnprintf into its own source
   * would overwrite it while reading it. */
  char buf[FUZE_MSG_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  memcpy(thread_msg, buf, sizeof thread_msg);
  if (msgbuf && msgbuf != thread_msg) {
    pthread_mutex_lock(&msgbuf_mu);
    snprintf(msgbuf, FUZE_MSG_LEN, "%s", thread_msg);
    pthread_mutex_unlock(&msgbuf_mu);
  }
  return code;
}

const char *fuze_strerror(int code) {
  switch (code) {
#define FUZE_XX_DESC(name, val, desc) case FUZE_##name: return desc;
    FUZE_STATUS_MAP(FUZE_XX_DESC)
#undef FUZE_XX_DESC
  }
  return "unknown status code";
}

const char *fuze_err_name(int code) {
  switch (code) {
#define FUZE_XX_NAME(name, val, desc) case FUZE_##name: return "FUZE_" #name;
    FUZE_STATUS_MAP(FUZE_XX_NAME)
#undef FUZE_XX_NAME
  }
  return "FUZE_UNKNOWN";
}
