/* checkpoint: the two-phase commit of fuze_checkpoint (docs/design.md,
 * "Checkpoint"), and the entry into recovery when a rank was lost.
 *
 * Phase 1: every rank flushes its stack/map operations and sends its array
 * deltas into the working parity; one agreement says whether every rank is
 * alive and done. Phase 2: the hosts promote working to committed parity,
 * members update their committed copies, and the epoch advances. Fault
 * injection strikes at the named phases in between (proto/inject.c). */
#include "proto/checkpoint.h"

#include "comm/coll.h"
#include "data/array.h"
#include "data/fused.h"
#include "proto/byzantine.h"
#include "proto/inject.h"
#include "proto/persist.h"
#include "proto/recovery.h"
#include "proto/verify.h"

#include <stdlib.h>
#include <string.h>

int fuze__recover_if_lost(fuze_ctx *ctx) {
  int any = fuze__any_lost(&ctx->net, ctx->lost, ctx->rank_flags);
  return any > 0 ? fuze__recover(ctx, ctx->rank_flags, NULL) : any;
}

static int checkpoint_abort(fuze_ctx *ctx, int rc) {
  fuze__arrays_reset_working(ctx);
  for (int x = 0; x < ctx->narrays; x++) ctx->arrays[x]->ndirty = 0;
  return rc;
}

/* Check for lost ranks at an injection point; only where an injection can
 * strike (or where the protocol needs agreement anyway) does it cost a
 * collective. */
static int lost_at(fuze_ctx *ctx, int phase, int always) {
  fuze__inject_point(ctx, phase);
  if (!always && !fuze__inject_scheduled(ctx, phase)) return 0;
  int any = ctx->lost;
  int rc = fuze__max_int(&ctx->net, &any);
  return rc ? rc : any != 0;
}

/* The phase-1 agreement: one MPI_Allgather of every rank's (lost, sent array
 * deltas, did stack/map operations) flags. Returns whether a rank was lost
 * (FUZE_CHANGED_ANY doubles as "lost" in a rank's own flags), or an error;
 * otherwise ctx->changed says, per block, which hosted regions need a
 * promotion (a checkpoint with nothing changed copies no parity). */
static int gather_changes(fuze_ctx *ctx) {
  int mine = ctx->lost ? FUZE_CHANGED_ANY : 0, any = 0, *all = ctx->rank_flags;
  for (int x = 0; x < ctx->narrays && !ctx->lost; x++)
    if (ctx->arrays[x]->ndirty) mine |= FUZE_CHANGED_ARRAYS;
  if (!ctx->lost && fuze__fobjs_ops(ctx) != ctx->ops_committed) mine |= FUZE_CHANGED_FOBJS;
  int rc = FUZE_MPI(ctx->msg, MPI_Allgather(&mine, 1, MPI_INT, all, 1, MPI_INT, ctx->net.comm));
  if (rc) return rc;
  memset(ctx->changed, 0, (size_t)ctx->plan.nblocks);
  for (int r = 0; r < ctx->size; r++) {
    any |= all[r] & FUZE_CHANGED_ANY;
    if (ctx->plan.block_of[r] >= 0) ctx->changed[ctx->plan.block_of[r]] |= (unsigned char)all[r];
  }
  return any;
}

static int checkpoint_run(fuze_ctx *ctx);

/* Persist the committed epoch once more after the recovery of a rank lost
 * while persisting it, so that a wipe never costs the restart point (the
 * injections of this checkpoint do not fire twice). */
static int persist_again(fuze_ctx *ctx) {
  ctx->persist_retry = 1;
  int rc = fuze__persist_epoch(ctx);
  ctx->persist_retry = 0;
  if (rc == FUZE_PERSIST_LOST)
    rc = CTX_ERR(ctx, FUZE_ERR_STATE, "fuze_checkpoint: a rank was lost again while persisting "
                 "epoch %llu after a recovery", (unsigned long long)ctx->epoch);
  return rc;
}

/* persist=async: the epoch in flight completes first (its writer joined,
 * the manifest copies written); a failed write is reported once the new
 * epoch is committed. */
static int checkpoint_persisting(fuze_ctx *ctx) {
  int rc = fuze__persist_complete(ctx);
  if (rc) return rc;
  rc = checkpoint_run(ctx);
  if (ctx->persist_redo) { /* a rank was lost as epoch E's files became durable */
    int prc = 0;
    if (rc == FUZE_RECOVERED && ctx->epoch == ctx->persist_redo && !ctx->persist_inflight)
      prc = persist_again(ctx);
    if (prc) rc = prc;
    ctx->persist_redo = 0;
  }
  if (ctx->persist_failed && (rc == FUZE_SUCCESS || rc == FUZE_RECOVERED)) {
    rc = CTX_ERR(ctx, ctx->persist_failed, "fuze_checkpoint: epoch %llu is committed in memory, "
                 "but %s", (unsigned long long)ctx->epoch, ctx->persist_msg);
    ctx->persist_failed = 0;
  }
  return rc;
}

static int checkpoint_run(fuze_ctx *ctx) {
  ctx->ckpt_calls++;
  fuze__persist_free(ctx); /* registrations after a restart are done */
  int rc = lost_at(ctx, FUZE_PHASE_BEFORE, 1);
  if (rc) return rc < 0 ? rc : fuze__recover_if_lost(ctx);
  /* Stacks and maps: complete batched operations, then make room for the
   * largest member (this also sends slots that were deferred for lack of it). */
  rc = fuze__agree(&ctx->net, fuze__fobjs_flush(ctx));
  if (rc || (rc = fuze__fobjs_grow(ctx))) return rc;
  rc = fuze__arrays_send(ctx, ctx->arrays, ctx->narrays, 1);
  /* Phase-1 agreement: every rank alive and flushed, or nobody commits. */
  fuze__inject_point(ctx, FUZE_PHASE_SENT);
  int lost = gather_changes(ctx);
  if (lost) return lost < 0 ? checkpoint_abort(ctx, lost) : fuze__recover_if_lost(ctx);
  if ((rc = fuze__agree(&ctx->net, rc))) return checkpoint_abort(ctx, rc);
  ctx->decided = ctx->epoch + 1;
  fuze__arrays_promote(ctx, ctx->arrays, ctx->narrays, ctx->changed);
  fuze__fobjs_promote(ctx, ctx->changed);
  ctx->hosted_epoch = ctx->decided;
  if ((lost = lost_at(ctx, FUZE_PHASE_PROMOTED, 0))) return lost < 0 ? lost : fuze__recover_if_lost(ctx);
  fuze__arrays_update_shadow(ctx, ctx->arrays, ctx->narrays);
  fuze__fobjs_commit_logs(ctx);
  ctx->ops_committed = fuze__fobjs_ops(ctx);
  ctx->epoch = ctx->decided;
  if ((lost = lost_at(ctx, FUZE_PHASE_AFTER, 0))) return lost < 0 ? lost : fuze__recover_if_lost(ctx);
  if ((rc = fuze__byz_refresh(ctx))) return rc;         /* code=byzantine: replicas */
  if ((rc = fuze__verify_after_commit(ctx))) return rc; /* corrupt injection, verify_every */
  int byz = fuze__byz_check(ctx);                        /* code=byzantine: Fig. 6 */
  if (byz < 0) return byz;
  rc = fuze__persist_epoch(ctx);
  if (rc == FUZE_PERSIST_LOST) {
    /* A rank was lost while persisting: recover it, then persist again. */
    if ((rc = fuze__recover_if_lost(ctx)) != FUZE_RECOVERED) return rc;
    int prc = persist_again(ctx);
    return prc ? prc : FUZE_RECOVERED;
  }
  if (rc) return rc;
  /* No operation of the next epoch may reach a host still promoting. */
  if (ctx->nfobjs && (rc = fuze__barrier(&ctx->net))) return rc;
  return byz;
}

/* Every path of a checkpoint ends here on every rank: which injections
 * struck is exchanged (only when any are configured), for the count in
 * fuze_get_stats and the report of those that never fire. */
int fuze__checkpoint_collective(fuze_ctx *ctx) {
  int rc = checkpoint_persisting(ctx);
  int src = fuze__inject_sync(ctx);
  return rc < 0 || !src ? rc : src;
}
