/* inject: emulate the crash of a rank inside a running job ("wipe"). A wiped
 * rank keeps only what a freshly started replacement process would have: its
 * registrations (name, base, count, type) and the plan it can recompute. */
#include "proto/inject.h"

#include "comm/coll.h"
#include "data/array.h"
#include "data/fused.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void poison(void *p, size_t n) {
  static const unsigned char pat[4] = {0xDE, 0xAD, 0xBE, 0xEF};
  unsigned char *c = p;
  for (size_t i = 0; i < n; i++) c[i] = pat[i & 3];
}

static void wipe_array(fuze_array *a) {
  if (a->base) poison(a->base, a->bytes);
  if (a->winbase) poison(a->winbase, a->winsize);
  free(a->shadow);
  free(a->rank_bytes);
  free(a->fused);
  free(a->hosted);
  free(a->dirty);
  a->shadow = NULL;
  a->rank_bytes = NULL;
  a->fused = NULL;
  a->hosted = NULL;
  a->dirty = NULL;
  a->nhosted = 0;
  a->ndirty = 0;
}

void fuze__wipe_self(fuze_ctx *ctx) {
  for (int x = 0; x < ctx->narrays; x++) wipe_array(ctx->arrays[x]);
  fuze__fobjs_wipe(ctx);
  ctx->lost = 1;
  ctx->epoch = ctx->decided = ctx->hosted_epoch = 0;
}

static int listed(const fuze_inject_spec *sp, int rank) {
  for (int r = 0; r < sp->nranks; r++)
    if (sp->ranks[r] == rank) return 1;
  return 0;
}

/* Marker of a kill that fired: DIR/.fuze-kill-rank<R>-ckpt<E>-<phase>.fired,
 * named after what the spec does, not its position. The rerun of the same
 * command line (a restart) must not kill again at the same point; another
 * kill spec stays armed. */
void fuze__kill_marker(const fuze_ctx *ctx, int spec, char *out, size_t len) {
  const fuze_inject_spec *sp = &ctx->cfg.inject[spec];
  snprintf(out, len, "%s/.fuze-kill-rank%d-ckpt%ld-%s.fired", ctx->cfg.dir,
           sp->nranks ? sp->ranks[0] : -1, sp->at_checkpoint, fuze__phase_name(sp->phase));
}

static void kill_self(fuze_ctx *ctx, int spec, int phase) {
  fprintf(stderr, "fuze: rank %d kills itself with SIGKILL (inject=kill, checkpoint %ld, "
          "phase %s)\n", ctx->rank, ctx->ckpt_calls, fuze__phase_name(phase));
  fflush(stderr);
  fflush(stdout);
  if (ctx->cfg.dir[0]) {
    char path[1200];
    fuze__kill_marker(ctx, spec, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      fsync(fd);
      close(fd);
    }
  }
  raise(SIGKILL);
}

/* Drop kill specs whose marker exists (they fired in an earlier run). */
void fuze__kill_disarm(fuze_ctx *ctx) {
  for (int s = 0; s < ctx->cfg.ninject && ctx->cfg.dir[0]; s++) {
    if (ctx->cfg.inject[s].kind != FUZE_INJECT_KILL) continue;
    char path[1200];
    fuze__kill_marker(ctx, s, path, sizeof path);
    if (access(path, F_OK) == 0) ctx->cfg.inject[s].at_checkpoint = -1;
  }
}

int fuze__inject_point(fuze_ctx *ctx, int phase) {
  for (int s = 0; s < ctx->cfg.ninject; s++) {
    const fuze_inject_spec *sp = &ctx->cfg.inject[s];
    if (sp->at_checkpoint != ctx->ckpt_calls || sp->phase != phase) continue;
    if (!listed(sp, ctx->rank) || ctx->lost) continue;
    if (sp->kind == FUZE_INJECT_KILL) kill_self(ctx, s, phase);
    if (ctx->cfg.verbose)
      printf("fuze: rank %d wiped (injected at checkpoint %ld, phase %s)\n", ctx->rank,
             ctx->ckpt_calls, fuze__phase_name(phase));
    fuze__wipe_self(ctx);
    return 1;
  }
  return 0;
}

int fuze__inject_kill_pending(const fuze_ctx *ctx, int phase) {
  for (int s = 0; s < ctx->cfg.ninject; s++) {
    const fuze_inject_spec *sp = &ctx->cfg.inject[s];
    if (sp->at_checkpoint == ctx->ckpt_calls && sp->phase == phase &&
        sp->kind == FUZE_INJECT_KILL && listed(sp, ctx->rank) && !ctx->lost)
      return s;
  }
  return -1;
}

int fuze__inject_scheduled(const fuze_ctx *ctx, int phase) {
  for (int s = 0; s < ctx->cfg.ninject; s++)
    if (ctx->cfg.inject[s].at_checkpoint == ctx->ckpt_calls && ctx->cfg.inject[s].phase == phase)
      return 1;
  return 0;
}

/* The data path's named points (data/state.h). */
int fuze__inject_hook(fuze_ctx *ctx, int point, int arg) {
  switch (point) {
    case FUZE_HOOK_ARRAYS_PARTIAL: return fuze__inject_point(ctx, FUZE_PHASE_PARTIAL);
    case FUZE_HOOK_OP_HOSTS: /* fuze_inject_op: crash after `arg` backups of an operation */
      if (ctx->op_inject_hosts != arg) return 0;
      ctx->op_inject_hosts = -1;
      fuze__wipe_self(ctx);
      return 1;
    default: return 0;
  }
}

/* ---- the collectives behind fuze_inject, fuze_inject_at, fuze_inject_op ---- */

/* fuze_inject_op: the next stack/map operation of `rank` wipes it after reaching
 * `backups` of its backups (0: before any). */
int fuze__inject_op_collective(fuze_ctx *ctx, uint64_t rank, uint64_t backups) {
  int rc = FUZE_SUCCESS;
  if (rank >= (uint64_t)ctx->size || backups > (uint64_t)ctx->plan.f)
    rc = CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_inject_op: rank must be < %d and backups <= faults=%d",
                 ctx->size, ctx->plan.f);
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  if ((uint64_t)ctx->rank == rank) ctx->op_inject_hosts = (int)backups;
  return FUZE_SUCCESS;
}

static int inject_check(fuze_ctx *ctx, const int *ranks, int n) {
  if (n < 0 || n > FUZE_MAX_INJECT_RANKS)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_inject: nranks must be 0..%d (and ranks not NULL), got %d",
                   FUZE_MAX_INJECT_RANKS, n);
  for (int r = 0; r < n; r++)
    if (ranks[r] < 0 || ranks[r] >= ctx->size)
      return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_inject: rank %d does not exist (the job has %d ranks)",
                     ranks[r], ctx->size);
  return FUZE_SUCCESS;
}

int fuze__inject_wipe_collective(fuze_ctx *ctx, const int *ranks, int n) {
  int rc = fuze__agree(&ctx->net, inject_check(ctx, ranks, n));
  if (rc) return rc;
  for (int r = 0; r < n; r++)
    if (ranks[r] == ctx->rank && !ctx->lost) {
      if (ctx->cfg.verbose) printf("fuze: rank %d wiped (fuze_inject)\n", ctx->rank);
      fuze__wipe_self(ctx);
    }
  return FUZE_SUCCESS;
}

/* Append a spec for the next checkpoint call; every rank appends the same. */
int fuze__inject_at_collective(fuze_ctx *ctx, const int *ranks, int n, const char *phase_name) {
  int rc = inject_check(ctx, ranks, n), phase = -1;
  for (int p = 0; p < FUZE_PHASE_COUNT; p++)
    if (!strcmp(phase_name, fuze__phase_name(p))) phase = p;
  if (!rc && phase < 0)
    rc = CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_inject_at: unknown phase '%s' (accepted: before, "
                 "partial, sent, promoted, after)", phase_name);
  if (!rc && ctx->cfg.ninject >= FUZE_MAX_INJECT) {
    /* Specs of past checkpoints can never fire again: drop them. */
    int kept = 0;
    for (int s = 0; s < ctx->cfg.ninject; s++)
      if (ctx->cfg.inject[s].at_checkpoint > ctx->ckpt_calls) ctx->cfg.inject[kept++] = ctx->cfg.inject[s];
    ctx->cfg.ninject = kept;
    if (kept >= FUZE_MAX_INJECT) rc = CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_inject_at: too many pending injections");
  }
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  fuze_inject_spec *sp = &ctx->cfg.inject[ctx->cfg.ninject++];
  memset(sp, 0, sizeof *sp);
  sp->nranks = n;
  memcpy(sp->ranks, ranks, sizeof(int) * (size_t)n);
  sp->at_checkpoint = ctx->ckpt_calls + 1;
  sp->phase = phase;
  return FUZE_SUCCESS;
}
