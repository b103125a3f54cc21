/* repair: a real process death survived in the job (ULFM, comm/ft.h).
 *
 * A collective of a fuze call that reports FUZE_RANK_LOST ends in
 * fuze__ft_repair on every survivor (compute ranks and spares): every
 * communicator of the context is revoked, so that every survivor, wherever it
 * waits, comes here too; comm/ft.c shrinks the pool and puts an idle
 * replacement rank in each dead rank's place (same size, same rank order);
 * fuze__ft_rejoin then rebuilds the context on the new communicator with the
 * replacements, which take the dead ranks' roles in the plan (their
 * structures empty, ctx->lost set: exactly a wiped rank), moves every hosted
 * region into new windows and runs the recovery of the wipe model
 * (proto/recovery.c). Never installed. */
#ifndef FUZE_REPAIR_H
#define FUZE_REPAIR_H

#include "data/state.h"

/* Survivors, on FUZE_RANK_LOST from a collective: FUZE_RECOVERED, or an
 * error (FUZE_ERR_UNRECOVERABLE: no replacement left, replacements=0, or
 * more than f lost domains in a block) with the survivors' state untouched. */
int fuze__ft_repair(fuze_ctx *ctx);

/* A replacement chosen for a dead rank (rank, size, cfg and the new
 * communicators set, dead: ctx->size flags), collective with the survivors
 * in fuze__ft_repair: every structure's layout from the lowest surviving
 * rank, block communicators, windows, the application's communicator
 * (ctx->app), then the recovery; in rounds, like the survivors, when
 * another process dies meanwhile. FUZE_RECOVERED or an error. */
int fuze__ft_join(fuze_ctx *ctx, const int *dead);

/* A replacement after fuze_init returned FUZE_RECOVERED: its registration
 * calls (same order as at the start) bind its recovered structures, locally. */
int fuze__replay_protect(fuze_ctx *ctx, const char *name, void *base, size_t count,
                         MPI_Datatype type, fuze_array **array);
int fuze__replay_create(fuze_ctx *ctx, const char *name, int kind, size_t kb, size_t nb,
                        struct fuze_fobj **out);
/* FUZE_ERR_STATE when fn is not a registration and registrations are due. */
int fuze__replay_check(fuze_ctx *ctx, const char *fn);
/* fuze_stored_count on a replacement (ctx->joined): 1 and *count when known. */
int fuze__replay_count(const fuze_ctx *ctx, const char *name, size_t *count);

/* context.c: what a replacement computes itself from the shared layout. */
int fuze__ctx_plan(fuze_ctx *ctx);
int fuze__ctx_block_comms(fuze_ctx *ctx);
/* context.c: a repair that failed tells the idle replacement ranks (they
 * return from fuze_init with code and ctx->msg); later, nothing more. */
int fuze__ctx_pool_fail(fuze_ctx *ctx, int code);

#endif
