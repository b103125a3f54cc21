/* recovery: survivors + committed parity -> decode -> restored buffers, for
 * arrays (recovery.c) and fused stacks and maps (frecovery.c). Never installed. */
#ifndef FUZE_RECOVERY_H
#define FUZE_RECOVERY_H

#include "data/state.h"

/* Collective: restore every lost rank's state; *epoch_out = the epoch reached. */
int fuze__recover(fuze_ctx *ctx, const int *lost, uint64_t *epoch_out);
/* Collective: stacks and maps of the lost ranks (called by fuze__recover). */
int fuze__fobjs_repair(fuze_ctx *ctx, const int *lost);

#endif
