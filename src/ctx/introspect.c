/* introspect: what a running job can ask about itself: the job-wide sum of
 * fuze_stats (spare ranks answer through the control channel), the memory
 * fields of fuze_stats, and the effective configuration. */
#include "ctx/control.h"
#include "data/threads.h"

#include "comm/coll.h"
#include "data/fused.h"
#include "proto/byzantine.h"

#include <string.h>

void fuze__stats_memory(const fuze_ctx *ctx, fuze_stats *st) {
  uint64_t held = 0; /* stacks' and maps' element, key and index storage */
  for (int x = 0; x < ctx->nfobjs; x++) {
    const fuze_fobj *f = ctx->fobjs[x];
    st->undo_bytes += f->loglen;
    held += f->vcap * (f->kb + f->nb) + f->tsize * sizeof *f->table;
  }
  st->replica_bytes = fuze__byz_replica_bytes(ctx);
  st->process_failures = ctx->ft_repairs;
  for (int i = 0; i < 4; i++) st->repair_seconds[i] = ctx->ft_seconds[i];
  st->total_bytes = st->shadow_bytes + st->parity_bytes + st->working_bytes + st->undo_bytes +
                    st->replica_bytes + held;
}

/* The byte and traffic counters, summed; the others are the job's (max). */
enum { SUMS = 11, MAXES = 7 };

static void pack(const fuze_stats *s, uint64_t *sum, uint64_t *max) {
  const uint64_t v[SUMS] = {s->protected_bytes, s->parity_bytes, s->working_bytes, s->shadow_bytes,
                            s->sent_bytes, s->recovered_bytes, s->undo_bytes, s->replica_bytes,
                            s->total_bytes, s->persisted_bytes, s->persisted_last_bytes};
  memcpy(sum, v, sizeof v);
  max[0] = s->epoch;
  max[1] = s->recoveries;
  max[2] = (uint64_t)s->nblocks;
  max[3] = (uint64_t)s->nbackups;
  max[4] = s->injections_unfired;
  max[5] = s->persisted_epochs;
  max[6] = s->persisted_increments;
}

static void unpack(fuze_stats *s, const uint64_t *sum, const uint64_t *max) {
  memset(s, 0, sizeof *s);
  s->protected_bytes = sum[0];
  s->parity_bytes = sum[1];
  s->working_bytes = sum[2];
  s->shadow_bytes = sum[3];
  s->sent_bytes = sum[4];
  s->recovered_bytes = sum[5];
  s->undo_bytes = sum[6];
  s->replica_bytes = sum[7];
  s->total_bytes = sum[8];
  s->epoch = max[0];
  s->recoveries = max[1];
  s->nblocks = (int)max[2];
  s->nbackups = (int)max[3];
  s->injections_unfired = max[4];
  s->persisted_bytes = sum[9];
  s->persisted_last_bytes = sum[10];
  s->persisted_epochs = max[5];
  s->persisted_increments = max[6];
}

int fuze__job_stats_collective(fuze_ctx *ctx, fuze_stats *out) {
  int rc = ctx->is_spare || out ? FUZE_SUCCESS
                                : CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_get_job_stats: sum is NULL");
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  fuze_stats mine;
  if ((rc = fuze__stats_fill(ctx, &mine))) return rc;
  uint64_t sum[SUMS], max[MAXES], jsum[SUMS], jmax[MAXES];
  pack(&mine, sum, max);
  if ((rc = FUZE_MPI(ctx->msg, MPI_Allreduce(sum, jsum, SUMS, MPI_UINT64_T, MPI_SUM, ctx->net.comm))) ||
      (rc = FUZE_MPI(ctx->msg, MPI_Allreduce(max, jmax, MAXES, MPI_UINT64_T, MPI_MAX, ctx->net.comm))))
    return rc;
  if (out) unpack(out, jsum, jmax);
  return FUZE_SUCCESS;
}

int fuze_get_job_stats(fuze_ctx *ctx, fuze_stats *sum) {
  int rc = fuze__check_ctx(ctx, "fuze_get_job_stats");
  if (rc) return rc;
  if ((rc = fuze__coll_enter(ctx, "fuze_get_job_stats"))) return rc; /* data/threads.h */
  fuze_ctl c = {.op = FUZE_OP_JOB_STATS};
  if (!(rc = fuze__ctl_send(ctx, &c))) rc = fuze__job_stats_collective(ctx, sum);
  fuze__coll_leave(ctx);
  return rc;
}

int fuze_config_string(const fuze_ctx *ctx, char *buf, size_t len) {
  if (!ctx) return FUZE_ERR(FUZE_ERR_ARG, "fuze_config_string: ctx is NULL");
  if (!buf || !len) return FUZE_ERR(FUZE_ERR_ARG, "fuze_config_string: buf is NULL or len is 0");
  size_t need = fuze__config_format(&ctx->cfg, buf, len);
  if (need >= len)
    return FUZE_ERR(FUZE_ERR_ARG, "fuze_config_string: the buffer holds %zu bytes, the "
                    "configuration needs %zu (FUZE_CONFIG_STRING_MAX always fits)", len, need + 1);
  return FUZE_SUCCESS;
}

const char *fuze_config_source(const fuze_ctx *ctx, const char *key) {
  return ctx && key ? fuze__config_source(&ctx->cfg, key) : NULL;
}
