/* control: context checks and the control message broadcast (control.h). */
#include "ctx/control.h"

int fuze__check_ctx(const fuze_ctx *ctx, const char *fn) {
  if (!ctx) return FUZE_ERR(FUZE_ERR_ARG, "%s: ctx is NULL (not initialised, or used after fuze_finalize)", fn);
  if (ctx->finalized) return FUZE_ERR(FUZE_ERR_STATE, "%s: called after fuze_finalize", fn);
  return FUZE_SUCCESS;
}

int fuze__ctl_send(fuze_ctx *ctx, fuze_ctl *c) {
  return FUZE_MPI(ctx->msg, MPI_Bcast(c, (int)sizeof *c, MPI_BYTE, 0, ctx->net.comm));
}
