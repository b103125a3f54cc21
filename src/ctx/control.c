/* control: context checks and the control message broadcast (control.h). */
#include "ctx/control.h"

#include <time.h>

int fuze__check_ctx(const fuze_ctx *ctx, const char *fn) {
  if (!ctx) return FUZE_ERR(FUZE_ERR_ARG, "%s: ctx is NULL (not initialised, or used after fuze_finalize)", fn);
  if (ctx->finalized) return FUZE_ERR(FUZE_ERR_STATE, "%s: called after fuze_finalize", fn);
  return FUZE_SUCCESS;
}

/* A spare rank may wait for hours: test the broadcast, then sleep, longer
 * each time (1 us doubling to FUZE_SPARE_SLEEP_MAX_US), so that an idle spare
 * uses a few percent of a core at most while still progressing MPI (one-sided
 * updates of the parity it hosts) every FUZE_SPARE_SLEEP_MAX_US. */
static int idle_wait(fuze_ctx *ctx, MPI_Request *req) {
  long us = 1;
  for (;;) {
    int done = 0;
    int rc = FUZE_MPI(ctx->msg, MPI_Test(req, &done, MPI_STATUS_IGNORE));
    if (rc || done) return rc;
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
    if (us < FUZE_SPARE_SLEEP_MAX_US) us = us * 2 < FUZE_SPARE_SLEEP_MAX_US ? us * 2 : FUZE_SPARE_SLEEP_MAX_US;
  }
}

int fuze__ctl_send(fuze_ctx *ctx, fuze_ctl *c) {
  MPI_Request req;
  int rc = FUZE_MPI(ctx->msg, MPI_Ibcast(c, (int)sizeof *c, MPI_BYTE, 0, ctx->net.comm, &req));
  if (rc) return rc;
  if (!ctx->is_spare) return FUZE_MPI(ctx->msg, MPI_Wait(&req, MPI_STATUS_IGNORE));
  return idle_wait(ctx, &req);
}
