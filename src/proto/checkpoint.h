/* checkpoint: the commit protocol and the entry into recovery. Never installed. */
#ifndef FUZE_CHECKPOINT_H
#define FUZE_CHECKPOINT_H

#include "data/state.h"

/* Collective: commit the current state as a new epoch, or recover when a
 * rank was lost (FUZE_RECOVERED). */
int fuze__checkpoint_collective(fuze_ctx *ctx);
/* Collective: restore lost ranks if any (FUZE_SUCCESS when none was lost). */
int fuze__recover_if_lost(fuze_ctx *ctx);

#endif
