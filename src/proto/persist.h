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
/* ULFM repair (ctx/repair.c), local. A survivor: the epoch in flight
 * (persist=async) is dropped once its writer is done (the dead ranks' files
 * of it may be missing: it never becomes a restart point; the next persisted
 * epoch does). A replacement: its rank directory made and locked, as
 * fuze_init does. */
void fuze__persist_abandon(fuze_ctx *ctx);
int fuze__persist_join(fuze_ctx *ctx);
void fuze__persist_close(fuze_ctx *ctx); /* fuze_finalize: releases the dir's lock */
/* Restart: the registration of stored structure `name` (kind FUZE_PS_*) is
 * complete. Once every stored structure is registered again, a rank whose
 * file was rebuilt starts writing it back (local, in a thread). */
void fuze__persist_registered(fuze_ctx *ctx, const char *name, int kind);
/* Restart: the stored structure `name` of this rank (kind FUZE_PS_*), NULL if none. */
const struct fuze_pstruct *fuze__persist_find(const fuze_ctx *ctx, const char *name, int kind);

/* prestore.c. Collective in the restart of epoch E, after every rank checked
 * its own file (bad[r]: rank r's is missing or damaged; mine: this rank's
 * model, zeroed when bad): the files' shared metadata is agreed and checked,
 * and every bad rank's model is rebuilt by reductions over the blocks (lost
 * primaries decoded, lost backup regions encoded again). Agreed result. */
struct fuze_pfile;
int fuze__persist_rebuild(fuze_ctx *ctx, uint64_t E, const int *bad, struct fuze_pfile *mine);
/* Collective in fuze_protect after a restart, once the array has its window:
 * 1 when its committed copy and every hosted parity region were loaded from
 * the restarted files (nothing to encode), 0 when the caller must encode
 * (no restart, or some rank cannot load: verbose says why), or an error. */
int fuze__persist_load_array(fuze_ctx *ctx, struct fuze_array *a);
/* Collective in fuze_stack_create/fuze_map_create after a restart: the
 * stored state `ps` into the new structure, its hosted regions loaded from
 * the files (or, when some rank cannot, published and encoded again). */
struct fuze_fobj;
int fuze__persist_restore_fobj(struct fuze_fobj *f, const struct fuze_pstruct *ps);

#endif
