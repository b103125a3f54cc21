/* array: protected arrays. Layout of the parity regions a rank hosts, the
 * dirty scan, the delta path into the backups and the commit-time copies.
 * Never installed. */
#ifndef FUZE_ARRAY_H
#define FUZE_ARRAY_H

#include "comm/transport.h"
#include "data/state.h"

int fuze__array_layout(fuze_ctx *ctx, fuze_array *a);
int fuze__array_sizes(fuze_ctx *ctx, fuze_array *a); /* collective, no window */
unsigned char *fuze__array_map(const fuze_array *a, int h); /* hosted region h's chunk map */
unsigned char *fuze__array_committed(const fuze_array *a, int h); /* its committed parity */
int fuze__arrays_reset_working(fuze_ctx *ctx); /* a failed MPI_Win_sync */
size_t fuze__array_region(const fuze_ctx *ctx, const fuze_array *a, int host, int block,
                          int j);
/* Send every array's deltas; with hook, FUZE_HOOK_ARRAYS_PARTIAL fires halfway. */
int fuze__arrays_send(fuze_ctx *ctx, fuze_array **arrays, int n, int hook);
/* changed: per block, skip hosted regions of blocks without FUZE_CHANGED_ARRAYS (NULL: all).
 * Local; returns a failed MPI_Win_sync (FUZE_ERR_MPI) after copying everything. */
int fuze__arrays_promote(fuze_ctx *ctx, fuze_array **arrays, int n, const unsigned char *changed);
void fuze__arrays_update_shadow(fuze_ctx *ctx, fuze_array **arrays, int n);
void fuze__array_free(fuze_array *a);
/* Collective over the repaired communicator (ULFM): hosted bytes move from
 * the old window into a new one (comm/ft.h, ctx/repair.c), which *old then
 * describes (the caller frees it, or puts it back). On an error the old one
 * stays in place (old->win MPI_WIN_NULL). */
int fuze__array_rewin(fuze_ctx *ctx, fuze_array *a, fuze_oldwin *old);
/* Fault injection: this rank's arrays lose their bytes, shadows and hosted parity. */
void fuze__array_wipe(fuze_array *a);

#endif
