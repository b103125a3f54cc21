/* persist: epochs to HDF5 rank files, the manifest, and restart. Never installed. */
#ifndef FUZE_PERSIST_H
#define FUZE_PERSIST_H

#include "data/state.h"

/* fuze__persist_epoch found a rank lost while persisting (not a public code). */
#define FUZE_PERSIST_LOST FUZE_INTERNAL_LOST

int fuze__persist_init(fuze_ctx *ctx);  /* collective in fuze_init: FUZE_RESTARTED or 0 */
/* Collective at a committed checkpoint: FUZE_SUCCESS, FUZE_PERSIST_LOST, or an error. */
int fuze__persist_epoch(fuze_ctx *ctx);
void fuze__persist_free(fuze_ctx *ctx);
/* persist=async, collective at the start of every checkpoint and in
 * fuze_finalize: wait for the epoch being written and make it complete. A
 * failed write leaves ctx->persist_failed and ctx->persist_msg set. */
int fuze__persist_complete(fuze_ctx *ctx);
void fuze__persist_close(fuze_ctx *ctx); /* fuze_finalize: releases the dir's lock */
/* Restart: the stored structure `name` of this rank (kind FUZE_PS_*), NULL if none. */
const struct fuze_pstruct *fuze__persist_find(const fuze_ctx *ctx, const char *name, int kind);

#endif
