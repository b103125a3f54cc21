/* inject: fault injection, one module with named points. The checkpoint
 * protocol calls fuze__inject_point at its phases; the data path reaches the
 * same module through the context's hook (data/state.h). Never installed. */
#ifndef FUZE_INJECT_H
#define FUZE_INJECT_H

#include "data/state.h"

int fuze__inject_point(fuze_ctx *ctx, int phase);            /* 1: this rank was wiped */
int fuze__inject_scheduled(const fuze_ctx *ctx, int phase);  /* a spec strikes here now */
/* The kill spec that strikes this rank here now (-1: none), without firing it
 * (persist=async: the writer thread kills the process at that point). */
int fuze__inject_kill_pending(const fuze_ctx *ctx, int phase);
int fuze__inject_hook(fuze_ctx *ctx, int point, int arg);
/* ULFM: kill specs of ranks that died (dead: ctx->size flags) count as fired. */
void fuze__inject_deaths(fuze_ctx *ctx, const int *dead);    /* the data path's hook */
void fuze__wipe_self(fuze_ctx *ctx);
void fuze__kill_marker(const fuze_ctx *ctx, int spec, char *out, size_t len);
void fuze__kill_disarm(fuze_ctx *ctx); /* restart: kills that fired before do not fire again */
int fuze__debug_nomem_arm(fuze_ctx *ctx);
/* Specs that can never fire: FUZE_ERR_CONFIG naming the spec (fuze_init,
 * after a restart set the epoch). Local; the caller agrees. */
int fuze__inject_check(fuze_ctx *ctx);
/* Collective: every rank learns which specs fired on any rank (the end of
 * every checkpoint, and fuze_finalize). */
int fuze__inject_sync(fuze_ctx *ctx);
uint64_t fuze__inject_unfired(const fuze_ctx *ctx); /* as of the last sync */
void fuze__inject_report(fuze_ctx *ctx); /* rank 0: every unfired spec on stderr */ /* FUZE_DEBUG_NOMEM (FUZE_ERR_CONFIG when malformed) */

/* The n of a collective below when the caller's ranks array was NULL with
 * nranks > 0 (so that the message can say so, not show a count). */
#define FUZE_INJECT_RANKS_NULL (-0x7fffffff)

/* Collectives (every rank, same arguments; validated and agreed). */
int fuze__inject_wipe_collective(fuze_ctx *ctx, const int *ranks, int n);  /* now */
int fuze__inject_at_collective(fuze_ctx *ctx, const int *ranks, int n,     /* next checkpoint */
                               const char *phase_name);
int fuze__inject_op_collective(fuze_ctx *ctx, uint64_t rank, uint64_t backups);

#endif
