/* inject: emulate the crash of a rank inside a running job ("wipe"). A wiped
 * rank keeps only what a freshly started replacement process would have: its
 * registrations (name, base, count, type) and the plan it can recompute. */
#include "core/bigmem.h"
#include "proto/inject.h"
#include "comm/ft.h"

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
  if (a->cbase) poison(a->cbase, a->csize);
  fuze__big_free(a->shadow, a->bytes);
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
    if (access(path, F_OK) == 0) {
      ctx->cfg.inject[s].at_checkpoint = -1;
      ctx->cfg.inject[s].fired = 1; /* in the run that persisted this directory */
    }
  }
}

/* ULFM: a kill spec whose rank died at or before its checkpoint struck
 * there (its victim cannot say so at the end of the checkpoint). */
void fuze__inject_deaths(fuze_ctx *ctx, const int *dead) {
  for (int s = 0; s < ctx->cfg.ninject; s++) {
    fuze_inject_spec *sp = &ctx->cfg.inject[s];
    if (sp->kind != FUZE_INJECT_KILL || sp->at_checkpoint > ctx->ckpt_calls) continue;
    for (int r = 0; r < sp->nranks; r++)
      if (sp->ranks[r] >= 0 && sp->ranks[r] < ctx->size && dead[sp->ranks[r]]) sp->fired = 1;
  }
}

int fuze__inject_point(fuze_ctx *ctx, int phase) {
  for (int s = 0; s < ctx->cfg.ninject; s++) {
    fuze_inject_spec *sp = &ctx->cfg.inject[s];
    if (sp->at_checkpoint != ctx->ckpt_calls || sp->phase != phase) continue;
    if (!listed(sp, ctx->rank) || ctx->lost) continue;
    sp->fired = 1;
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

/* FUZE_DEBUG_NOMEM=<site>[:<rank>[:<nth>]] (tests): the nth allocation
 * (default the first) at that site, on that rank or on every rank, fails
 * as if memory ran out; once. */
int fuze__debug_nomem_arm(fuze_ctx *ctx) {
  static const char *sites[] = {NULL, "protect", "layout", "create"};
  const char *v = getenv("FUZE_DEBUG_NOMEM");
  ctx->debug_nomem_site = 0;
  ctx->debug_nomem_rank = -1;
  ctx->debug_nomem_nth = 1;
  if (!v || !*v) return FUZE_SUCCESS;
  for (int s = 1; s < (int)(sizeof sites / sizeof *sites); s++) {
    size_t n = strlen(sites[s]);
    if (strncmp(v, sites[s], n) || (v[n] && v[n] != ':')) continue;
    char *end = (char *)v + n;
    long r = -1, nth = 1;
    if (*end) {
      const char *p = end + 1;
      r = strtol(p, &end, 10);
      if (end == p || r < 0 || r >= ctx->size) break;
    }
    if (*end == ':') {
      const char *p = end + 1;
      nth = strtol(p, &end, 10);
      if (end == p || nth < 1 || nth > 1000000) break;
    }
    if (*end) break;
    ctx->debug_nomem_site = s;
    ctx->debug_nomem_rank = (int)r;
    ctx->debug_nomem_nth = (int)nth;
    return FUZE_SUCCESS;
  }
  return CTX_ERR(ctx, FUZE_ERR_CONFIG, "FUZE_DEBUG_NOMEM='%s': expected protect, layout or create, "
                 "optionally followed by :RANK with RANK in 0..%d and :N, the N-th such allocation "
                 "(1..1000000)", v, ctx->size - 1);
}

/* The data path's named points (data/state.h). */
int fuze__inject_hook(fuze_ctx *ctx, int point, int arg) {
  switch (point) {
    case FUZE_HOOK_ARRAYS_PARTIAL: return fuze__inject_point(ctx, FUZE_PHASE_PARTIAL);
    case FUZE_HOOK_ALLOC: /* FUZE_DEBUG_NOMEM: this allocation fails, once */
      if (!ctx->debug_nomem_site || ctx->debug_nomem_site != arg) return 0;
      if (ctx->debug_nomem_rank >= 0 && ctx->debug_nomem_rank != ctx->rank) return 0;
      if (--ctx->debug_nomem_nth > 0) return 0;
      ctx->debug_nomem_site = 0;
      return 1;
    case FUZE_HOOK_OP_HOSTS: /* fuze_inject_op: crash after `arg` backups of an operation */
      if (ctx->op_inject_hosts != arg) return 0;
      ctx->op_inject_hosts = -1;
      if (fuze__ft_enabled()) { /* ULFM: a real death, inside the operation */
        fprintf(stderr, "fuze: rank %d kills itself with SIGKILL inside a stack/map operation, "
                "after %d of its backups (fuze_inject_op under ULFM)\n", ctx->rank, arg);
        fflush(stderr);
        raise(SIGKILL);
      }
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

static int inject_check(fuze_ctx *ctx, const char *fn, const int *ranks, int n) {
  if (n == FUZE_INJECT_RANKS_NULL)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "%s: ranks is NULL but nranks is not 0 (pass an array of "
                   "nranks ranks, or nranks 0)", fn);
  if (n < 0 || n > FUZE_MAX_INJECT_RANKS)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "%s: nranks must be 0..%d, got %d", fn,
                   FUZE_MAX_INJECT_RANKS, n);
  for (int r = 0; r < n; r++)
    if (ranks[r] < 0 || ranks[r] >= ctx->size)
      return CTX_ERR(ctx, FUZE_ERR_ARG, "%s: rank %d does not exist (the job has %d ranks)", fn,
                     ranks[r], ctx->size);
  return FUZE_SUCCESS;
}

int fuze__inject_wipe_collective(fuze_ctx *ctx, const int *ranks, int n) {
  int rc = fuze__agree(&ctx->net, inject_check(ctx, "fuze_inject", ranks, n));
  if (rc) return rc;
  for (int r = 0; r < n; r++)
    if (ranks[r] == ctx->rank && !ctx->lost) {
      if (ctx->cfg.verbose) printf("fuze: rank %d wiped (fuze_inject)\n", ctx->rank);
      fuze__wipe_self(ctx);
    }
  return FUZE_SUCCESS;
}

/* ---- specs that never fire ---- */

/* Whether a wipe or kill strikes before checkpoint `at`: then epochs and
 * checkpoint calls part, and only the run can tell which epoch `at` commits. */
static int failure_before(const fuze_config *cfg, long at) {
  for (int s = 0; s < cfg->ninject; s++)
    if (cfg->inject[s].kind != FUZE_INJECT_CORRUPT && cfg->inject[s].at_checkpoint > 0 &&
        cfg->inject[s].at_checkpoint < at)
      return 1;
  return 0;
}

static int never_fires(fuze_ctx *ctx, const fuze_inject_spec *sp, const char *why) {
  char text[FUZE_MSG_LEN / 2];
  return CTX_ERR(ctx, FUZE_ERR_CONFIG, "config: inject spec '%s' can never fire: %s",
                 fuze__inject_spec_text(sp, text, sizeof text), why);
}

int fuze__inject_check(fuze_ctx *ctx) {
  const fuze_config *cfg = &ctx->cfg;
  for (int s = 0; s < cfg->ninject; s++) {
    const fuze_inject_spec *sp = &cfg->inject[s];
    int persisting = sp->kind != FUZE_INJECT_CORRUPT &&
                     (sp->phase == FUZE_PHASE_PERSIST || sp->phase == FUZE_PHASE_PERSISTED);
    char why[192];
    if (sp->at_checkpoint < 0) continue; /* a kill that fired before this restart */
    if (persisting && !cfg->dir[0]) {
      snprintf(why, sizeof why, "phase=%s strikes while an epoch is persisted, and without dir=PATH "
               "nothing is", fuze__phase_name(sp->phase));
      return never_fires(ctx, sp, why);
    }
    /* Checkpoint E commits epoch (restarted epoch + E) when nothing fails before. */
    uint64_t epoch = ctx->epoch + (uint64_t)sp->at_checkpoint;
    if (persisting && epoch % (uint64_t)cfg->persist_every && !failure_before(cfg, sp->at_checkpoint)) {
      snprintf(why, sizeof why, "checkpoint %ld commits epoch %llu, which persist_every=%d does not "
               "persist", sp->at_checkpoint, (unsigned long long)epoch, cfg->persist_every);
      return never_fires(ctx, sp, why);
    }
    if (sp->kind == FUZE_INJECT_CORRUPT && sp->target == FUZE_TARGET_REPLICA &&
        cfg->mode != FUZE_MODE_BYZANTINE)
      return never_fires(ctx, sp, "target=replica needs code=byzantine (only it keeps replicas)");
  }
  return FUZE_SUCCESS;
}

int fuze__inject_sync(fuze_ctx *ctx) {
  int n = ctx->cfg.ninject, fired[FUZE_MAX_INJECT];
  if (!n) return FUZE_SUCCESS;
  for (int s = 0; s < n; s++) fired[s] = ctx->cfg.inject[s].fired;
  int rc = FUZE_MPI(ctx->msg, MPI_Allreduce(MPI_IN_PLACE, fired, n, MPI_INT, MPI_MAX, ctx->net.comm));
  for (int s = 0; s < n && !rc; s++) ctx->cfg.inject[s].fired = fired[s];
  return rc;
}

uint64_t fuze__inject_unfired(const fuze_ctx *ctx) {
  uint64_t n = ctx->inject_unfired_dropped;
  for (int s = 0; s < ctx->cfg.ninject; s++) n += !ctx->cfg.inject[s].fired;
  return n;
}

/* Rank 0, on stderr, always (a test that injects nothing tests nothing). */
static void report_unfired(fuze_ctx *ctx, const fuze_inject_spec *sp) {
  if (ctx->rank != 0) return;
  char text[FUZE_MSG_LEN / 2], why[FUZE_MSG_LEN / 2];
  if (sp->at_checkpoint > ctx->ckpt_calls)
    snprintf(why, sizeof why, "the run made %ld fuze_checkpoint() call(s)", ctx->ckpt_calls);
  else if (sp->kind == FUZE_INJECT_CORRUPT)
    snprintf(why, sizeof why, "after checkpoint %ld rank %d held no %s bytes of a structure named "
             "'%s'", sp->at_checkpoint, sp->ranks[0], fuze__name_of(&fuze__names_target, sp->target),
             sp->name);
  else
    snprintf(why, sizeof why, "at checkpoint %ld its rank(s) were already lost%s", sp->at_checkpoint,
             sp->phase >= FUZE_PHASE_PERSIST ? ", or that epoch was not persisted" : "");
  fprintf(stderr, "fuze: inject spec '%s' never fired: %s\n",
          fuze__inject_spec_text(sp, text, sizeof text), why);
  fflush(stderr);
}

void fuze__inject_report(fuze_ctx *ctx) {
  for (int s = 0; s < ctx->cfg.ninject; s++)
    if (!ctx->cfg.inject[s].fired) report_unfired(ctx, &ctx->cfg.inject[s]);
}

/* Append a spec for the next checkpoint call; every rank appends the same. */
int fuze__inject_at_collective(fuze_ctx *ctx, const int *ranks, int n, const char *phase_name) {
  int rc = inject_check(ctx, "fuze_inject_at", ranks, n);
  int phase = fuze__name_value(&fuze__names_phase, phase_name);
  if (!rc && phase < 0) {
    char list[256]; /* every phase of names.h, so the list cannot drift */
    rc = CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_inject_at: unknown phase '%s' (accepted: %s)", phase_name,
                 fuze__name_list(&fuze__names_phase, ", ", list, sizeof list));
  }
  if (!rc && ctx->cfg.ninject >= FUZE_MAX_INJECT) {
    /* Specs of past checkpoints can never fire again: drop them (reporting
     * those that never fired now: finalize will not see them). */
    int kept = 0;
    for (int s = 0; s < ctx->cfg.ninject; s++)
      if (ctx->cfg.inject[s].at_checkpoint > ctx->ckpt_calls) ctx->cfg.inject[kept++] = ctx->cfg.inject[s];
      else if (!ctx->cfg.inject[s].fired) {
        report_unfired(ctx, &ctx->cfg.inject[s]);
        ctx->inject_unfired_dropped++;
      }
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
